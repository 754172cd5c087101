"""Parse for HL7 v2: the message → the canonical visit through the declarative rules in
``adapters/hl7v2/`` (see its FIELDS.md), or a v2 dialect adapter's overlay of them when the
sender is configured for one. Errors name HL7 paths (``PID-3[2].1``, ``ZFE[2]-5``)."""

from __future__ import annotations

import orjson
from pydantic import BaseModel, ValidationError

from adapters.hl7v2.engine import UnsupportedMessage, map_message
from adapters.sdk.registry import v2_mapper
from gateway import errors
from gateway.envelope import Envelope
from gateway.visit import OutpatientVisit

_V2_CODE = {"required": "101", "code-invalid": "103", "too-long": "104"}
_VALIDATE_VISIT = OutpatientVisit.__pydantic_validator__.validate_python


def run(env: Envelope, ctx) -> Envelope:
    msg = env.message
    try:
        mapper = v2_mapper(env.adapter) if env.adapter else map_message
        mapped = mapper(msg, sender_org=env.sender.org)
    except UnsupportedMessage as exc:
        raise errors.GatewayError.of(str(exc), "MSH-9", code="not-supported", error_code="2012",
                                     v2_code="200", status=400) from None
    if mapped.issues:
        raise errors.GatewayError(errors.outcome(
            errors.issue(text, where, code="required" if code == "101" else "value",
                         error_code="2013", v2_code=code)
            for where, code, text in mapped.issues), status=422)
    data = mapped.data
    if mapped.rule.kind == "merge":
        return env.with_(event="merge", merge=data, unread=mapped.unread)
    data["org"] = {"code": env.sender.org, "name": env.sender.key_name or env.sender.org}
    validated, unknown, fragments = _KNOWN.stand_in(data)
    try:
        # what OutpatientVisit.model_validate(validated) does, without its keyword handling
        visit = _VALIDATE_VISIT(validated)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            canonical = errors.pydantic_path(err.get("loc", ()))
            where = mapped.hl7_path(canonical) or canonical or None
            msg_text = errors.pydantic_message(err)
            code = "required" if err.get("type") == "missing" else "value"
            issues.append(errors.issue(f"{where}: {msg_text} ({canonical})", where, code=code,
                                       error_code="2001", v2_code=_V2_CODE.get(code, "102")))
        raise errors.GatewayError(errors.outcome(issues), status=422) from None
    _KNOWN.remember(visit, unknown)
    event = "update" if mapped.rule.kind == "update" else "visit"
    # the JSON the visit was read from (as for a canonical JSON submission; decimals as
    # strings, every digit kept): it reads back as the same visit, and costs a tenth of
    # serialising the model (the settlement copy). The parts KnownParts wrote out already
    # go in as they were written (the same bytes).
    visit_json = orjson.dumps({**data, **fragments} if fragments else data, default=str)
    return env.with_(visit=visit, event=event, unread=mapped.unread,
                     visit_json=visit_json)


class KnownParts:
    """Sub-models already validated, remembered by their input.

    Every message of a visit (ADT^A04, DFT^P03, ORU^R01, ...) carries the same patient,
    department and doctor, and a hospital's fee lines and diagnoses repeat from visit to
    visit (the registration fee, a common diagnosis). Validating the same input gives the
    same model, and pydantic takes an instance of a field's own model class as it is
    (``revalidate_instances`` is 'never'): a remembered model stands in for its input dict,
    the visit validates to what it would have, and a remembered part, valid by
    construction, adds no error. Relies on the models being frozen
    (``gateway.visit._Model``): one instance is shared by the visits that carry it, and
    none can change it.

    Only inputs made of exactly ``dict`` (str keys), ``list`` and ``str`` are remembered,
    by a key that cannot confuse inputs pydantic would read differently (as it could ``1``
    and ``True``, or a str and a UUID): their JSON.
    At most ``limit`` per field; the oldest are forgotten first.
    """

    def __init__(self, fields: tuple[str, ...], lists: tuple[str, ...],
                 limit: int = 2048) -> None:
        self.fields = fields  # a model each
        self.lists = lists  # a list of models each
        self.limit = limit
        self._known: dict[str, dict[object, BaseModel]] = {
            name: {} for name in fields + lists}

    def stand_in(self, data: dict) -> tuple[dict, list[tuple[str, int, object]], dict]:
        """What to validate: ``data`` with the remembered parts in place of their dicts (a
        copy when any is; ``data`` itself is left as it is). Also the parts to remember once
        the visit is valid (field, index in its list or -1, key) and the JSON of the fields'
        parts read (field → ``orjson.Fragment``), for writing ``data`` out without
        serialising them again."""
        validated: dict | None = None
        unknown: list[tuple[str, int, object]] = []
        fragments: dict = {}
        for name in self.fields:
            value = data.get(name)
            if type(value) is not dict:
                continue
            key = _input_key(value)
            if key is None:
                continue
            fragments[name] = orjson.Fragment(key)
            model = self._known[name].get(key)
            if model is None:
                unknown.append((name, -1, key))
                continue
            if validated is None:
                validated = dict(data)
            validated[name] = model
        for name in self.lists:
            items = data.get(name)
            if type(items) is not list:
                continue
            known = self._known[name]
            standing: list | None = None
            for i, value in enumerate(items):
                key = _input_key(value) if type(value) is dict else None
                if key is None:
                    continue
                model = known.get(key)
                if model is None:
                    unknown.append((name, i, key))
                    continue
                if standing is None:
                    standing = list(items)
                standing[i] = model
            if standing is not None:
                if validated is None:
                    validated = dict(data)
                validated[name] = standing
        return (data if validated is None else validated), unknown, fragments

    def remember(self, visit: BaseModel, unknown: list[tuple[str, int, object]]) -> None:
        """Keep the parts of a valid ``visit`` that ``stand_in`` did not know."""
        for name, index, key in unknown:
            known = self._known[name]
            if len(known) >= self.limit:
                del known[next(iter(known))]
            part = getattr(visit, name)
            known[key] = part if index < 0 else part[index]


def _input_key(value: dict) -> bytes | None:
    """The key of an input dict made of exactly dict (with str keys), list and str: its JSON
    (it tells any two such inputs apart; serialising a small dict costs less than a tuple
    of its items to make, hash and compare, and a part's JSON is also what ``visit_json``
    takes as it is); None for any other input."""
    if not _plain(value):
        return None
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # a str that is not valid Unicode (a lone surrogate)
        return None


def _plain(value: dict | list) -> bool:
    """Whether ``value`` is made of exactly dict (with str keys), list and str."""
    if type(value) is dict:
        for name, item in value.items():
            if type(name) is not str:
                return False
            if type(item) is not str and not (type(item) in _CONTAINERS and _plain(item)):
                return False
        return True
    for item in value:
        if type(item) is not str and not (type(item) in _CONTAINERS and _plain(item)):
            return False
    return True


_CONTAINERS = (dict, list)

# the parts every message of a visit repeats, and the lines a hospital's visits repeat
_KNOWN = KnownParts(("org", "patient", "department", "doctor", "payment"),
                    ("fees", "diagnoses"))
