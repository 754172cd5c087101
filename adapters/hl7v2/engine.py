"""The v2 mapping engine: a parsed message + the rules files → a canonical-visit dict.

It also keeps, for every canonical path it sets, the HL7 path it came from (so a
validation error on ``fees[2].amount`` is reported at ``FT1[3]-11``), and the list of
non-empty input fields no rule read (``unread``), as FHIR-Converter reports unused
segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.hl7v2 import functions
from adapters.hl7v2.rules import FieldRule, MessageRule, RuleSet, datatypes, standard
from adapters.paths import set_path

# Fields that are structure, not content (what the protocol layer reads in MSH, the set ids
# that only number repeated segments) are listed per rule set: ``RuleSet.protocol``.
DEFAULT_OFFSET = timezone(timedelta(hours=8))


class UnsupportedMessage(LookupError):
    pass


@dataclass
class Mapped:
    rule: MessageRule
    data: dict[str, Any]
    provenance: dict[str, str] = field(default_factory=dict)  # canonical path → HL7 path
    issues: list[tuple[str, str, str]] = field(default_factory=list)  # (hl7 path, code, text)
    unread: list[str] = field(default_factory=list)
    z_segments: list[Any] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)  # list item → its segments
    rules: RuleSet | None = None

    def hl7_path(self, canonical_path: str) -> str | None:
        """The HL7 path a canonical path came from — or, for a value that is missing, the
        field the rules would have read it from (within the same segment for list items)."""
        if canonical_path in self.provenance:
            return self.provenance[canonical_path]
        path = canonical_path
        while path:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
            if path in self.provenance:
                rest = canonical_path[len(path):].lstrip(".")
                for segment in self.members.get(path, ()):  # an item: one of its segments
                    source = _sources(self.rules or standard()).get((segment.split("[")[0], rest))
                    if source:
                        return segment + source[source.index("-"):]
                return self.provenance[path]
        source = _sources(self.rules or standard()).get((None, canonical_path))
        return source


# -- conversions -------------------------------------------------------------------------

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def _ts(text: str) -> str:
    m = _TS.match(text)
    if not m or m.group(4) is None:
        raise functions.MappingProblem(f"{text!r} is not a timestamp YYYYMMDDHHMM[SS][+ZZZZ]")
    y, mo, d, h, mi, s, off = m.groups()
    tz = DEFAULT_OFFSET
    if off:
        sign = 1 if off[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5])))
    try:
        value = datetime(int(y), int(mo), int(d), int(h), int(mi or 0), int(s or 0), tzinfo=tz)
    except ValueError as exc:
        raise functions.MappingProblem(f"{text!r} is not a valid time: {exc}") from None
    return value.isoformat()


def _dt(text: str) -> str:
    if len(text) < 8 or not text[:8].isdigit():
        raise functions.MappingProblem(f"{text!r} is not a date YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError as exc:
        raise functions.MappingProblem(f"{text!r} is not a valid date: {exc}") from None


def _nm(text: str) -> str:
    try:
        Decimal(text)
    except InvalidOperation:
        raise functions.MappingProblem(f"{text!r} is not a number") from None
    return text


_CONVERT = {"st": lambda t: t, "id": str.strip, "nm": _nm, "dt": _dt, "ts": _ts}


_SOURCES: dict[int, dict[tuple[str | None, str], str]] = {}


def _sources(ruleset: RuleSet) -> dict[tuple[str | None, str], str]:
    """Where each canonical path comes from, by the rules: (segment of a list item or None
    for the visit itself, path) → "SEG-n[.c]". For naming the field of a missing value."""
    if id(ruleset) in _SOURCES:
        return _SOURCES[id(ruleset)]
    types = datatypes()
    item_segments = {s.name for r in ruleset.messages.values() for s in r.segments if s.into}
    out: dict[tuple[str | None, str], str] = {}
    _SOURCES[id(ruleset)] = out
    for seg, rules in ruleset.segments.items():
        owner = seg if seg in item_segments else None
        for rule in rules:
            targets = rule.to.items() if isinstance(rule.to, dict) else [(None, rule.to)]
            for comp_name, target in targets:
                where = rule.source
                comp = types[rule.type].get(comp_name) if comp_name else None
                if comp and comp.comp > 1:
                    where += f".{comp.comp}"
                out.setdefault((owner, target.replace("[]", "")), where)
    return out


class _Run:
    def __init__(self, msg: Any, rule: MessageRule, sender_org: str, ruleset: RuleSet):
        self.msg = msg
        self.rule = rule
        self.sender_org = sender_org
        self.ruleset = ruleset
        self.out = Mapped(rule=rule, data={}, rules=ruleset)
        self.read: set[tuple[str, int, int]] = set()  # (segment, occurrence, field)
        self.current: dict[str, int] = {}  # list name → index of its current item
        self.types = datatypes()
        self.fields = ruleset.segments

    def issue(self, where: str, code: str, text: str) -> None:
        self.out.issues.append((where, code, text))

    def run(self) -> Mapped:
        counts: dict[str, int] = {}
        previous: str | None = None
        seen: set[str] = set()
        for seg in self.msg.segments:
            n = counts[seg.name] = counts.get(seg.name, 0) + 1
            seen.add(seg.name)
            srule = self.rule.segment(seg.name)
            if seg.name.startswith("Z"):
                self.out.z_segments.append(seg)
            if srule is not None:
                self.segment(seg, n, srule, previous)
            previous = seg.name
            self.note_unread(seg, n)
        for srule in self.rule.segments:
            if srule.required and srule.name not in seen:
                self.issue(srule.name, "100", f"required segment {srule.name} is missing")
        if self.rule.finish:
            self.ruleset.finish[self.rule.finish](self.out.data, self.out.provenance,
                                               self.out.members)
        return self.out

    def segment(self, seg: Any, n: int, srule: Any, previous: str | None) -> None:
        seg_path = f"{seg.name}[{n}]" if n > 1 else seg.name
        prefix = ""
        item: dict[str, Any] = self.out.data
        if srule.into:
            name = srule.into.removesuffix("[]")
            items = self.out.data.setdefault(name, [])
            joins = srule.joins is not None and items and (
                srule.joins == "any" or srule.joins == previous)
            if not joins:
                items.append({})
                self.out.provenance[f"{name}[{len(items) - 1}]"] = seg_path
            self.out.members.setdefault(f"{name}[{len(items) - 1}]", []).append(seg_path)
            self.current[name] = len(items) - 1
            prefix = f"{name}[{len(items) - 1}]."
            item = items[-1]
            for key, source in srule.inherit.items():
                if source in self.current:
                    inherited = self.out.data[source][self.current[source]].get(key)
                    if inherited is not None:
                        item[key] = inherited
        for frule in self.fields.get(seg.name, ()):
            self.field(seg, n, seg_path, frule, prefix, item)

    def required(self, frule: FieldRule) -> bool:
        if self.rule.required_fields is not None:
            return frule.source in self.rule.required_fields
        return frule.required

    def field(self, seg: Any, n: int, seg_path: str, frule: FieldRule, prefix: str,
              item: dict[str, Any]) -> None:
        self.read.add((seg.name, n, frule.number))
        reps = seg.field(frule.number)  # repetitions → components → subcomponents, unescaped
        if not frule.repeat:
            reps = reps[:1]
        produced = False
        ctx: dict[str, Any] | None = None
        for r, rep in enumerate(reps):
            where = f"{seg_path}-{frule.number}" + (f"[{r + 1}]" if r else "")
            values: dict[str, Any] = {}
            try:
                for cname, comp, sub, conv in frule.components:
                    if comp <= len(rep) and sub <= len(rep[comp - 1]):
                        text = rep[comp - 1][sub - 1]
                        if text:
                            values[cname] = text if conv == "st" else _CONVERT[conv](text)
            except functions.MappingProblem as exc:
                self.issue(where, "102", f"{where}: {exc}")
                continue
            if not values:
                continue
            if ctx is None and (frule.use or frule.when):
                ctx = self.context(seg, n, item)
            if frule.when and not self.ruleset.when[frule.when](values, ctx):
                continue
            produced |= self.assign(frule, values, ctx, item, prefix, where)
        if not produced:
            if frule.default is not None and isinstance(frule.to, str):
                set_path(item, frule.to, frule.default)
            elif self.required(frule):
                self.issue(f"{seg_path}-{frule.number}", "101",
                           f"{seg_path}-{frule.number} is required and empty")

    def context(self, seg: Any, n: int, item: dict[str, Any]) -> dict[str, Any]:
        """What a named function may use: other fields of the segment (marked read), the
        item being built, the sender."""
        def read(number: int, comp: int = 1) -> str:
            self.read.add((seg.name, n, number))
            return seg.get(number, comp)

        return {"read": read, "item": item, "sender_org": self.sender_org}

    def assign(self, frule: FieldRule, values: dict[str, Any], ctx: dict[str, Any],
               item: dict[str, Any], prefix: str, where: str) -> bool:
        """Set the field's value(s) into ``item``; provenance keeps ``prefix`` + the path."""
        comps = self.types[frule.type]
        if isinstance(frule.to, dict):
            done = False
            for cname, target in frule.to.items():
                if cname in values:
                    value = values[cname]
                    table = (frule.map or {}).get(cname)
                    if isinstance(table, dict):
                        value = table.get(value, value)
                    concrete = prefix + set_path(item, target, value)
                    comp = comps[cname]
                    self.out.provenance[concrete] = where + (
                        f".{comp.comp}" + (f".{comp.sub}" if comp.sub > 1 else "") if comp.comp > 1
                        or comp.sub > 1 else "")
                    done = True
            return done
        if frule.constant is not None:
            value: Any = frule.constant
        elif frule.use:
            try:
                value = self.ruleset.use[frule.use](values, ctx)
            except functions.MappingProblem as exc:
                self.issue(where, "102", f"{where}: {exc}")
                return True
        else:
            value = next(iter(values.values()))
        if value is None:
            return False
        if frule.map is not None and not isinstance(value, (dict, list)):
            # a map with a default is open (other values take the default); without, closed
            if str(value) in frule.map:
                value = frule.map[str(value)]
            elif frule.default is not None:
                value = frule.default
            else:
                self.issue(where, "103", f"{where}: {value!r} is not one of "
                           f"{', '.join(sorted(map(str, frule.map)))}")
                return True
        concrete = prefix + set_path(item, frule.to, value)
        self.out.provenance[concrete] = where
        return True

    def note_unread(self, seg: Any, n: int) -> None:
        protocol = self.ruleset.protocol.get(seg.name, ())
        read = self.read
        for number in seg.present():
            if number not in protocol and (seg.name, n, number) not in read:
                self.out.unread.append(f"{seg.name}[{n}]-{number}" if n > 1 else f"{seg.name}-{number}")


def map_message(msg: Any, *, sender_org: str, rules: RuleSet | None = None) -> Mapped:
    """Map a parsed v2 message with the rules for its type (the standard rules, or a
    dialect's overlay). Raises UnsupportedMessage."""
    ruleset = rules or standard()
    key = f"{msg.message_type}^{msg.trigger}"
    rule = ruleset.messages.get(key)
    if rule is None:
        raise UnsupportedMessage(
            f"message type {key} is not supported; supported: {', '.join(sorted(ruleset.messages))}")
    return _Run(msg, rule, sender_org, ruleset).run()
