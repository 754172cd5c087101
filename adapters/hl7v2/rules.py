"""Loading the declarative v2 mapping rules (``messages/``, ``segments/``, ``datatypes/``).

The files use a fixed vocabulary — nothing else is accepted, so logic cannot creep into
them (see ``FIELDS.md`` for the table they implement):

    datatypes/types.toml   TYPE.component = { at = "4.2", as = st|id|nm|dt|ts }
    segments/XXX.toml      [[field]] from, type, to (path or {component = path}),
                           required, repeat, map (closed; open when a default is given),
                           default, constant, use, when
    messages/XXX_YYY.toml  message, description, kind (visit | update | merge), finish,
                           required_fields,
                           [[segment]] name, required, into, joins, inherit

``use``, ``when`` and ``finish`` name Python functions in ``functions.py``.

A dialect adapter adds an *overlay*: a folder with its own ``messages/`` and ``segments/``
(e.g. vendor Z-segments) and a few more named functions; :func:`overlay` merges them over
the standard rules into one :class:`RuleSet` (an overlay's message file replaces the
standard one for the same message type).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

FIELD_KEYS = {"from", "type", "to", "required", "repeat", "map", "default", "constant",
              "use", "when"}
SEGMENT_KEYS = {"name", "required", "into", "joins", "inherit"}
MESSAGE_KEYS = {"message", "description", "kind", "finish", "required_fields", "segment"}
CONVERSIONS = {"st", "id", "nm", "dt", "ts"}


class RuleError(ValueError):
    """A rules file says something outside the vocabulary."""


@dataclass(frozen=True)
class Component:
    comp: int
    sub: int
    conv: str


@dataclass(frozen=True)
class FieldRule:
    source: str               # "PID-3"
    segment: str
    number: int
    type: str
    to: str | dict[str, str]
    required: bool = False
    repeat: bool = False
    map: dict[str, Any] | None = None
    default: Any = None
    constant: Any = None
    use: str | None = None
    when: str | None = None
    # (component name, component, subcomponent, conversion) the engine reads, in order
    components: tuple[tuple[str, int, int, str], ...] = ()


@dataclass(frozen=True)
class SegmentRule:
    name: str
    required: bool = False
    into: str | None = None   # "diagnoses[]": each segment is one item of that list
    joins: str | None = None  # a segment name, or "any": continue the current item
    inherit: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageRule:
    messages: tuple[str, ...]
    description: str
    kind: str
    finish: str | None
    required_fields: tuple[str, ...] | None
    segments: tuple[SegmentRule, ...]

    def segment(self, name: str) -> SegmentRule | None:
        return next((s for s in self.segments if s.name == name), None)


def _check(keys: set[str], allowed: set[str], where: str) -> None:
    extra = keys - allowed
    if extra:
        raise RuleError(f"{where}: unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")


@lru_cache
def datatypes() -> dict[str, dict[str, Component]]:
    raw = tomllib.loads((HERE / "datatypes" / "types.toml").read_text(encoding="utf-8"))
    out: dict[str, dict[str, Component]] = {}
    for type_name, comps in raw.items():
        out[type_name] = {}
        for name, spec in comps.items():
            _check(set(spec), {"at", "as"}, f"datatypes {type_name}.{name}")
            if spec["as"] not in CONVERSIONS:
                raise RuleError(f"datatypes {type_name}.{name}: unknown conversion {spec['as']!r}")
            comp, _, sub = spec["at"].partition(".")
            out[type_name][name] = Component(int(comp), int(sub or 1), spec["as"])
    return out


@lru_cache
def segment_rules() -> dict[str, tuple[FieldRule, ...]]:
    return _segment_rules(HERE)


def _segment_rules(root: Path) -> dict[str, tuple[FieldRule, ...]]:
    types = datatypes()
    out: dict[str, tuple[FieldRule, ...]] = {}
    for path in sorted((root / "segments").glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        name = raw["segment"]
        rules = []
        for i, spec in enumerate(raw.get("field", ())):
            where = f"{path.name} field {i + 1}"
            _check(set(spec), FIELD_KEYS, where)
            seg, _, num = spec["from"].partition("-")
            if seg != name or not num.isdigit():
                raise RuleError(f"{where}: 'from' must be {name}-<n>, not {spec['from']!r}")
            if spec["type"] not in types:
                raise RuleError(f"{where}: unknown type {spec['type']!r}")
            to = spec["to"]
            if isinstance(to, dict):
                unknown = set(to) - set(types[spec["type"]])
                if unknown:
                    raise RuleError(f"{where}: {spec['type']} has no component(s) {sorted(unknown)}")
            comps = types[spec["type"]]
            wanted = (to.keys() if isinstance(to, dict) and not (spec.get("use") or spec.get("when"))
                      else comps.keys())
            rules.append(FieldRule(
                source=spec["from"], segment=seg, number=int(num), type=spec["type"], to=to,
                required=spec.get("required", False), repeat=spec.get("repeat", False),
                map=spec.get("map"), default=spec.get("default"), constant=spec.get("constant"),
                use=spec.get("use"), when=spec.get("when"),
                components=tuple((c, comps[c].comp, comps[c].sub, comps[c].conv) for c in wanted)))
        out[name] = tuple(rules)
    return out


@lru_cache
def message_rules() -> dict[str, MessageRule]:
    return _message_rules(HERE)


def _message_rules(root: Path) -> dict[str, MessageRule]:
    out: dict[str, MessageRule] = {}
    for path in sorted((root / "messages").glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        _check(set(raw), MESSAGE_KEYS, path.name)
        segs = []
        for spec in raw.get("segment", ()):
            _check(set(spec), SEGMENT_KEYS, f"{path.name} segment {spec.get('name')}")
            segs.append(SegmentRule(name=spec["name"], required=spec.get("required", False),
                                    into=spec.get("into"), joins=spec.get("joins"),
                                    inherit=spec.get("inherit", {})))
        rule = MessageRule(
            messages=tuple(raw["message"]), description=raw.get("description", ""),
            kind=raw.get("kind", "visit"), finish=raw.get("finish"),
            required_fields=tuple(raw["required_fields"]) if "required_fields" in raw else None,
            segments=tuple(segs))
        for m in rule.messages:
            out[m] = rule
    return out


@dataclass(frozen=True)
class RuleSet:
    """Everything the engine maps with: message and segment rules, the named functions they
    may refer to, and the fields that are protocol (never reported as unread)."""

    messages: dict[str, MessageRule]
    segments: dict[str, tuple[FieldRule, ...]]
    use: dict[str, Any]
    when: dict[str, Any]
    finish: dict[str, Any]
    protocol: dict[str, frozenset[int]]


@lru_cache
def standard() -> RuleSet:
    from adapters.hl7v2 import functions

    protocol = {"MSH": frozenset({1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 18}),
                **{s: frozenset({1}) for s in ("PID", "PV1", "DG1", "OBR", "OBX", "FT1")}}
    return RuleSet(message_rules(), segment_rules(), dict(functions.USE), dict(functions.WHEN),
                   dict(functions.FINISH), protocol)


def overlay(root: Path, *, use: dict[str, Any] | None = None, when: dict[str, Any] | None = None,
            protocol: dict[str, set[int]] | None = None) -> RuleSet:
    """The standard rules with ``root/messages`` and ``root/segments`` laid over them."""
    base = standard()
    segments = {**base.segments, **_segment_rules(root)}
    messages = {**base.messages, **_message_rules(root)}
    use_all, when_all = {**base.use, **(use or {})}, {**base.when, **(when or {})}
    for seg, rules in segments.items():
        for r in rules:
            if r.use and r.use not in use_all:
                raise RuleError(f"segment {seg}: {r.source} uses unknown function {r.use!r}")
            if r.when and r.when not in when_all:
                raise RuleError(f"segment {seg}: {r.source} has unknown condition {r.when!r}")
    prot = dict(base.protocol)
    for seg, numbers in (protocol or {}).items():
        prot[seg] = prot.get(seg, frozenset()) | frozenset(numbers)
    return RuleSet(messages, segments, use_all, when_all, dict(base.finish), prot)
