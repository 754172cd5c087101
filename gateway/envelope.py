"""The envelope: one immutable record that passes through the pipeline.

Each stage returns a copy with its own part filled in (``Envelope.with_``); no stage
changes what an earlier one wrote, and no stage calls another.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from gateway.visit import OutpatientVisit

_set = object.__setattr__  # the classes here are frozen: their own __setattr__ refuses
_NEW: Any = object()  # a default standing for "a new dict"


@dataclass(frozen=True, slots=True)
class Sender:
    org: str
    key_name: str = ""
    role: str = "hospital"  # hospital | admin


@dataclass(frozen=True)
class Identity:
    """What the identify stage found: the person and every identifier with its system."""

    person_id: str
    identifiers: tuple[tuple[str, str, str], ...]  # (card type, system, value), strongest first

    def __init__(self, person_id: str, identifiers: tuple[tuple[str, str, str], ...]) -> None:
        # written here (the dataclass then makes none) to be compiled, and the fields set in
        # one piece (no __slots__, for that): the one a frozen dataclass makes is
        # interpreted, one object.__setattr__ per field (about 4.5 k instructions)
        _set(self, "__dict__", {"person_id": person_id, "identifiers": identifiers})


@dataclass(frozen=True)
class Translated:
    """National codes the translate stage found for codes sent in local or other systems."""

    gender: str  # FHIR administrative-gender
    sex_gb: str  # GB/T 2261.1
    map_versions: tuple[str, ...] = ()  # "ConceptMap url|version" of every map used
    fee_codes: dict[str, str] = field(default_factory=dict)  # fee line_no → NHSA list code
    drug_codes: dict[str, str] = field(default_factory=dict)  # drug order_no → NHSA list code
    diagnosis_codes: dict[str, str] = field(default_factory=dict)  # local code → ICD-10
    unmapped: tuple[dict[str, Any], ...] = ()  # issues for codes no map translates
    gaps: tuple[tuple[str, str, str], ...] = ()  # (map, system, code) of each: counted on commit

    def __init__(self, gender: str, sex_gb: str, map_versions: tuple[str, ...] = (),
                 fee_codes: dict[str, str] = _NEW, drug_codes: dict[str, str] = _NEW,
                 diagnosis_codes: dict[str, str] = _NEW,
                 unmapped: tuple[dict[str, Any], ...] = (),
                 gaps: tuple[tuple[str, str, str], ...] = ()) -> None:
        # written here as Identity's is (about 14 k instructions interpreted: eight
        # fields); a code map not given is a new dict, as default_factory makes it
        _set(self, "__dict__", {
            "gender": gender, "sex_gb": sex_gb, "map_versions": map_versions,
            "fee_codes": {} if fee_codes is _NEW else fee_codes,
            "drug_codes": {} if drug_codes is _NEW else drug_codes,
            "diagnosis_codes": {} if diagnosis_codes is _NEW else diagnosis_codes,
            "unmapped": unmapped, "gaps": gaps})


@dataclass(frozen=True)
class Envelope:
    tracking_id: str
    received_at: datetime
    raw: bytes = b""
    content_type: str = "application/json"
    adapter: str = ""  # the adapter that reads ``raw`` (adapters/); empty: canonical JSON / standard v2
    credentials: str | None = None
    sender: Sender | None = None
    message: Any = None  # the parsed native message (e.g. gateway.hl7.message.Message)
    event: str = "visit"  # visit | update (ADT^A08: the patient's details change) | merge
    unread: tuple[str, ...] = ()  # input fields no mapping rule read
    merge: dict[str, Any] | None = None  # ADT^A40: identifiers that belong to one person
    visit: OutpatientVisit | None = None
    visit_json: bytes = b""  # the canonical JSON ``visit`` was read from, as sent (parse stage)
    identity: Identity | None = None
    translated: Translated | None = None
    bundle: dict[str, Any] | None = None
    destinations: tuple[str, ...] = ()
    outbox: Any = None  # gateway.store.Outbox: what the edge must commit before accepting
    held: bool = False  # quarantined (for some destination): accepted, waiting for a code map
    only_destinations: tuple[str, ...] | None = None  # a released visit goes only where it was held
    warnings: tuple[dict[str, Any], ...] = field(default=())

    def with_(self, **changes: Any) -> Envelope:
        """A copy with ``changes``: ``dataclasses.replace`` without re-running ``__init__``
        — one merge of the instance dicts (a visit makes about ten copies; this takes a
        sixth of the time). The dict is copied then updated in place (a ``{**a, **b}``
        merge costs several times as much, ``|=`` a little less than ``update``), and the
        names are checked after it: every envelope's dict holds exactly the fields
        (``__init__`` sets each, a copy keeps them, and a frozen dataclass takes no other
        attribute), so a name that is not a field makes it longer — one length, where
        checking each name cost a fifth of the copy."""
        state = self.__dict__.copy()
        state |= changes
        if len(state) != _NFIELDS:
            unknown = changes.keys() - _FIELDS
            raise TypeError(f"Envelope has no field {', '.join(sorted(unknown))}")
        new = _new(Envelope)
        _set_state(new, state)
        return new


_FIELDS = frozenset(f.name for f in fields(Envelope))
_NFIELDS = len(_FIELDS)
_new = object.__new__
# the instance dict's own setter (the class's ``__dict__`` descriptor): the dataclass is
# frozen, its ``__setattr__`` refuses; and ``object.__setattr__`` would look the
# descriptor up on every call
_set_state = Envelope.__dict__["__dict__"].__set__
