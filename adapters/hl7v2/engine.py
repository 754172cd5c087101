"""The v2 mapping engine: a parsed message + the rules files → a canonical-visit dict.

It also keeps, for every canonical path it sets, the HL7 path it came from (so a
validation error on ``fees[2].amount`` is reported at ``FT1[3]-11``), and the list of
non-empty input fields no rule read (``unread``), as FHIR-Converter reports unused
segments.

The rules are compiled once per rule set and message type into a plan (which field rules
run on which segment, the components each reads, the target paths parsed); a message is
then mapped in one pass over its segments, reading each field straight from the
segment's raw text (only the components a rule names are split out and unescaped).
Where each value came from (``provenance``, ``members``) is only needed to report a
problem, so it is worked out when first asked for, by mapping the same message again
with the bookkeeping on — the mapping is a pure function of the message, the sender and
the rules, so both passes set the same values in the same order.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from itertools import compress
from collections.abc import Iterator, Sequence
from typing import Any

from adapters.hl7v2 import functions
from adapters.hl7v2.rules import FieldRule, MessageRule, RuleSet, SegmentRule, datatypes, standard
from adapters.paths import set_path, setter
from gateway.hl7.escape import unescape

# Fields that are structure, not content (what the protocol layer reads in MSH, the set ids
# that only number repeated segments) are listed per rule set: ``RuleSet.protocol``.
DEFAULT_OFFSET = timezone(timedelta(hours=8))
_DEFAULT_SUFFIX = (DEFAULT_OFFSET, datetime(2000, 1, 1, tzinfo=DEFAULT_OFFSET).isoformat()[19:])


class UnsupportedMessage(LookupError):
    pass


class Mapped:
    """What mapping one message produced.

    ``data`` the canonical-visit dict; ``issues`` (hl7 path, table 0357 code, text);
    ``unread`` the non-empty input fields no rule read (an ``Unread``); ``z_segments``;
    ``provenance`` (canonical path → HL7 path) and ``members`` (list item → its segments),
    worked out on first use.
    """

    __slots__ = ("_members", "_provenance", "_replay", "data", "issues", "rule", "rules",
                 "unread", "z_segments")

    def __init__(self, rule: MessageRule, data: dict[str, Any],
                 provenance: dict[str, str] | None = None,
                 issues: list[tuple[str, str, str]] | None = None,
                 unread: Unread | None = None, z_segments: list[Any] | None = None,
                 members: dict[str, list[str]] | None = None, rules: RuleSet | None = None,
                 replay: Any = None) -> None:
        self.rule = rule
        self.data = data
        self.issues = [] if issues is None else issues
        self.unread = Unread(()) if unread is None else unread
        self.z_segments = [] if z_segments is None else z_segments
        self.rules = rules
        self._replay = replay  # () -> Mapped with the bookkeeping on, or None
        self._provenance = provenance if provenance is not None or replay else {}
        self._members = members if members is not None or replay else {}

    def _track(self) -> None:
        tracked = self._replay()
        self._replay = None
        if self._provenance is None:
            self._provenance = tracked.provenance
        if self._members is None:
            self._members = tracked.members

    @property
    def provenance(self) -> dict[str, str]:
        """Canonical path → the HL7 path it was read from."""
        if self._provenance is None:
            self._track()
        return self._provenance

    @property
    def members(self) -> dict[str, list[str]]:
        """List item (``fees[2]``) → the segments it was built from."""
        if self._members is None:
            self._track()
        return self._members

    def hl7_path(self, canonical_path: str) -> str | None:
        """The HL7 path a canonical path came from — or, for a value that is missing, the
        field the rules would have read it from (within the same segment for list items)."""
        provenance = self.provenance
        if canonical_path in provenance:
            return provenance[canonical_path]
        path = canonical_path
        while path:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
            if path in provenance:
                rest = canonical_path[len(path):].lstrip(".")
                for segment in self.members.get(path, ()):  # an item: one of its segments
                    source = _sources(self.rules or standard()).get((segment.split("[")[0], rest))
                    if source:
                        return segment + source[source.index("-"):]
                return provenance[path]
        source = _sources(self.rules or standard()).get((None, canonical_path))
        return source

    def __repr__(self) -> str:
        return (f"Mapped({'/'.join(self.rule.messages)}, {len(self.issues)} issue(s), "
                f"{len(self.unread)} unread)")


class Unread(Sequence[str]):
    """The non-empty input fields no rule read (``PID-2``, ``FT1[3]-4``), in message order:
    an immutable sequence of str, equal to the tuple of them, worked out when first read.
    Finding them means looking at every field of every segment, and most messages' are
    never read (an MLLP sender is not told them; an adapter's caller and ``gateway
    adapters check`` are); the segments it looks at are the message's own, unchanged."""

    __slots__ = ("_items", "_segments")

    def __init__(self, segments: Any) -> None:
        # (segment name, its number among those of the name, its fields, the field numbers
        # never reported, the fields a named function read or None), one per segment
        self._segments = segments
        self._items: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        items = self._items
        if items is None:
            out: list[str] = []
            for name, n, fields, known, extra in self._segments:
                # the non-empty fields (compress skips the empty ones in C) no rule read
                for number in [i for i in compress(range(len(fields)), fields)
                               if i not in known]:
                    if extra is None or number not in extra:
                        out.append(f"{name}[{n}]-{number}" if n > 1 else f"{name}-{number}")
            items = self._items = tuple(out)
            self._segments = ()
        return items

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Unread):
            other = other._all()
        if isinstance(other, (tuple, list)):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())


# -- conversions -------------------------------------------------------------------------

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def _ts(text: str) -> str:
    if len(text) in _TS_LENGTHS and text.isascii():
        quick = _ts_quick(text)
        if quick is not None:
            return quick
    m = _TS.match(text)
    if not m or m.group(4) is None:
        raise functions.MappingProblem(f"{text!r} is not a timestamp YYYYMMDDHHMM[SS][+ZZZZ]")
    y, mo, d, h, mi, s, off = m.groups()
    tz = _offset(off)[0] if off else DEFAULT_OFFSET
    try:
        value = datetime(int(y), int(mo), int(d), int(h), int(mi or 0), int(s or 0), tzinfo=tz)
    except ValueError as exc:
        raise functions.MappingProblem(f"{text!r} is not a valid time: {exc}") from None
    return value.isoformat()


# YYYYMMDDHHMM[SS] with or without +ZZZZ: the forms senders use
_TS_LENGTHS = frozenset((12, 14, 17, 19))


def _ts_quick(text: str) -> str | None:
    """``_ts`` of an ASCII text in one of the usual forms, written out without the regular
    expression, ``datetime`` and ``isoformat`` (a fraction of the instructions): the digits
    as they are, once checked as ``datetime`` would check them. None for anything else,
    which ``_ts`` reads the long way (a time that is not valid, say, to report it as it
    does)."""
    size = len(text)
    if size > 14:
        stamp, off = text[:size - 5], text[size - 5:]
        if off[0] not in "+-" or not off[1:].isdigit():
            return None
    else:
        stamp, off = text, ""
    if not stamp.isdigit():
        return None
    # the offset first: one out of range raises ValueError here, as it always has
    suffix = _offset(off)[1] if off else _DEFAULT_SUFFIX[1]
    day = _day(stamp[:8])
    if day is None:
        return None
    # the rest is two ASCII digits each (the text is ASCII, the stamp all digits), which
    # compare as their numbers do: what datetime() accepts for hour, minute and second
    h, mi = stamp[8:10], stamp[10:12]
    s = stamp[12:14] or "00"
    if h > "23" or mi > "59" or s > "59":
        return None
    # what isoformat writes: the fields zero-padded to the widths they already have
    return f"{day}{h}:{mi}:{s}{suffix}"


_DAYS: dict[str, str] = {}


def _day(digits: str) -> str | None:
    """"YYYY-MM-DDT" for eight ASCII digits that make a valid date (as ``date`` checks
    them), None for any other; a message's times share a few days, each remembered (at
    most 4096, then forgotten all at once)."""
    found = _DAYS.get(digits)
    if found is None:
        try:
            date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            return None
        found = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}T"
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        _DAYS[digits] = found
    return found


_OFFSETS: dict[str, tuple[timezone, str]] = {}


def _offset(off: str) -> tuple[timezone, str]:
    """The time zone of an offset "+0800" and how ``isoformat`` writes it ("+08:00"); a few
    offsets ever occur, each is remembered (one that is out of range raises ValueError, as
    ``timezone`` does, and is not)."""
    found = _OFFSETS.get(off)
    if found is None:
        sign = 1 if off[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5])))
        found = (tz, datetime(2000, 1, 1, tzinfo=tz).isoformat()[19:])
        if len(_OFFSETS) < 256:
            _OFFSETS[off] = found
    return found


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


class _Memo(dict):
    """A conversion with its results remembered: ``memo[text]`` is the converted ``text``,
    worked out once (a message repeats its times, a patient's birth date comes with every
    message, fee lines repeat their prices) and then a dictionary lookup. A text that does
    not convert raises each time and is not remembered. At most ``LIMIT`` results are kept:
    the memo is emptied when full. Every conversion is a pure function of the text."""

    __slots__ = ("convert",)
    LIMIT = 4096

    def __init__(self, convert: Any) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, text: str) -> str:
        value = self.convert(text)
        if len(self) >= self.LIMIT:
            self.clear()
        self[text] = value
        return value


# by the rules' `as`: "st" is the text itself (None: nothing to convert)
_CONVERT = {"st": None, "id": _Memo(str.strip), "nm": _Memo(_nm), "dt": _Memo(_dt),
            "ts": _Memo(_ts)}
_NEVER_FAIL = frozenset(("st", "id"))  # conversions that cannot raise MappingProblem


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


# -- the compiled rules ------------------------------------------------------------------

class _FieldPlan:
    """One field rule, ready to run: what it reads, where it writes, what it calls.

    ``step`` is what ``_run`` needs of it for every segment, in one tuple (unpacked at once:
    cheaper than reading a dozen attributes for every field of every message); ``slow``
    what it needs besides for a field that is more than a plain move, the same way."""

    __slots__ = ("constant", "default", "fast", "first_only", "map", "number", "origin",
                 "reads", "repeat", "required", "rule", "set_default", "set_to", "simple",
                 "slow", "step", "straight", "targets", "to", "use", "when")

    def __init__(self, rule: FieldRule, required: bool, ruleset: RuleSet) -> None:
        comps = datatypes()[rule.type]
        self.rule = rule
        self.number = rule.number
        self.repeat = rule.repeat
        self.required = required
        # (component name, component index, subcomponent index, conversion or None): a
        # conversion is a _Memo, read as conv[text]
        self.reads = tuple((name, comp - 1, sub - 1, _CONVERT[conv])
                           for name, comp, sub, conv in rule.components)
        self.to = rule.to
        # the named functions, looked up once (a name the rule set lacks fails when called,
        # as looking it up then would)
        self.use = _named(ruleset.use, rule.use) if rule.use else None
        self.when = _named(ruleset.when, rule.when) if rule.when else None
        self.constant = rule.constant
        self.map = rule.map
        self.default = rule.default
        # (component name, parent, key, setter, table or None, target path, suffix): where
        # each component goes (see _place)
        self.targets: tuple[tuple[str, str | None, str | None, Any, Any, str, str], ...] | None
        self.targets = None
        self.set_to = self.set_default = None
        parent = key = None  # where a scalar target goes (see _place)
        if isinstance(rule.to, dict):
            table_of = rule.map or {}
            targets = []
            for cname, target in rule.to.items():
                comp = comps[cname]
                suffix = (f".{comp.comp}" + (f".{comp.sub}" if comp.sub > 1 else "")
                          if comp.comp > 1 or comp.sub > 1 else "")
                table = table_of.get(cname)
                targets.append((cname, *_place(target), setter(target),
                                table if isinstance(table, dict) else None, target, suffix))
            self.targets = tuple(targets)
        else:
            to = rule.to
            self.set_to = (setter(to) if isinstance(to, str)
                           else lambda item, value: set_path(item, to, value))
            parent, key = _place(to)
            if rule.default is not None and isinstance(to, str):
                self.set_default = self.set_to
        # Only the first non-empty component matters (a plain move or a constant), and no
        # later component's conversion could fail: stop reading at the first value.
        self.first_only = (not isinstance(rule.to, dict) and not rule.use and not rule.when
                           and all(conv in _NEVER_FAIL for _n, _c, _s, conv in rule.components))
        # a plain move or a constant (scalar target, no function): the first value is the value
        self.simple = isinstance(rule.to, str) and not rule.use and not rule.when
        # the components read at 1.1: all a repetition without delimiters can hold
        self.origin = tuple((name, conv) for name, ci, si, conv in self.reads
                            if ci == 0 and si == 0)
        # a plain move whose value, when the field holds no delimiter, is component 1 as it is
        # (converted): nothing else could be read, or fail to convert
        self.fast = self.simple and bool(self.origin) and (self.first_only or len(self.origin) == 1)
        # components → their own paths, nothing run on them, no conversion that can fail:
        # each component read goes straight to its place, no dict of values in between
        # (the reads are the targets' components, in the same order: rules.py)
        self.straight = None
        if (self.targets is not None and not rule.use and not rule.when
                and all(conv in _NEVER_FAIL for _n, _c, _s, conv in rule.components)):
            assert [r[0] for r in self.reads] == [t[0] for t in self.targets]
            self.straight = tuple((ci, si, conv, *target[1:])
                                  for (_n, ci, si, conv), target in zip(self.reads, self.targets))
        self.slow = (self.simple, self.use, self.when, self.straight, self.reads,
                     self.first_only, self.origin, self.targets, self.repeat)
        self.step = (self, self.number, self.fast, self.origin[0][1] if self.fast else None,
                     self.constant, self.map, parent, key, self.set_to)

    def mapped(self, value: Any) -> Any:
        """A value through the rule's map: closed (``_UNMAPPED`` for a value it does not
        list) unless the rule has a default, which other values take."""
        table = self.map
        key = str(value)
        if key in table:
            return table[key]
        if self.default is not None:
            return self.default
        return _UNMAPPED

    def unmapped(self, seg_path: str, r: int, value: Any) -> tuple[str, str, str]:
        where = f"{seg_path}-{self.number}" + (f"[{r + 1}]" if r else "")
        return (where, "103", f"{where}: {value!r} is not one of "
                f"{', '.join(sorted(map(str, self.map)))}")


_UNMAPPED = object()


def _place(path: Any) -> tuple[str | None, str | None]:
    """Where ``_run`` sets a path itself, without calling its setter: (None, key) for a key
    of the item (``visit_no``), (parent, key) for a key of a dict in it (``patient.name``:
    ``item.setdefault(parent, {})[key]``, what the setter does); (None, None) for any other
    path (``patient.cards[]``), which the setter sets."""
    if not isinstance(path, str) or "[" in path or path.count(".") > 1:
        return None, None
    if "." not in path:
        return None, path
    parent, _, key = path.partition(".")
    return parent, key


def _named(functions_: dict[str, Any], name: str) -> Any:
    """The function ``name`` of a rule set; for a name it does not have, one that raises the
    KeyError looking it up would."""
    found = functions_.get(name)
    if found is not None:
        return found

    def missing(*_args: Any) -> Any:
        raise KeyError(name)
    return missing


class _SegmentPlan:
    __slots__ = ("fields", "inherit", "into", "joins", "known", "list_name", "run", "steps")

    def __init__(self, srule: SegmentRule | None, fields: tuple[_FieldPlan, ...],
                 protocol: frozenset[int]) -> None:
        self.fields = fields
        self.steps = tuple(f.step for f in fields)
        self.into = srule.into if srule is not None else None
        self.list_name = self.into.removesuffix("[]") if self.into else ""
        self.joins = srule.joins if srule is not None else None
        self.inherit = tuple(srule.inherit.items()) if srule is not None else ()
        # field numbers never reported as unread: 0 (the segment id), protocol fields and
        # every field a rule reads (read whether or not it holds anything)
        self.known = frozenset({0, *protocol, *(f.number for f in fields)})
        # what _run reads of it for every segment, in one tuple (unpacked at once)
        self.run = (self.into, self.list_name, self.joins, self.inherit, self.steps,
                    self.known)


class _MessagePlan:
    __slots__ = ("finish", "other", "rule", "ruleset", "segments", "required_segments")

    def __init__(self, rule: MessageRule, ruleset: RuleSet) -> None:
        self.rule = rule
        self.ruleset = ruleset
        self.finish = rule.finish
        self.required_segments = tuple(s.name for s in rule.segments if s.required)
        self.segments: dict[str, _SegmentPlan] = {}
        for srule in rule.segments:
            if srule.name in self.segments:  # the first rule for a segment applies
                continue
            fields = tuple(
                _FieldPlan(f, f.source in rule.required_fields
                           if rule.required_fields is not None else f.required, ruleset)
                for f in ruleset.segments.get(srule.name, ()))
            self.segments[srule.name] = _SegmentPlan(
                srule, fields, ruleset.protocol.get(srule.name, frozenset()))
        self.other: dict[str, _SegmentPlan] = {}  # segments without a rule: only unread

    def unmapped(self, name: str) -> _SegmentPlan:
        plan = self.other.get(name)
        if plan is None:
            plan = _SegmentPlan(None, (), self.ruleset.protocol.get(name, frozenset()))
            if len(self.other) < 256:
                self.other[name] = plan
        return plan


_PLANS: dict[int, tuple[RuleSet, dict[str, _MessagePlan | None]]] = {}


def _plan(ruleset: RuleSet, key: str) -> _MessagePlan | None:
    entry = _PLANS.get(id(ruleset))
    if entry is None or entry[0] is not ruleset:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        entry = _PLANS[id(ruleset)] = (ruleset, {})
    plans = entry[1]
    try:
        return plans[key]
    except KeyError:
        pass
    rule = ruleset.messages.get(key)
    plan = _MessagePlan(rule, ruleset) if rule is not None else None
    if plan is not None or len(plans) < 256:
        plans[key] = plan
    return plan


# -- running a plan ----------------------------------------------------------------------

def _seg_path(name: str, n: int) -> str:
    return f"{name}[{n}]" if n > 1 else name


def _field_path(name: str, n: int, number: int, r: int = 0) -> str:
    """Where a value was read: ``PID-3``, ``OBX[2]-5``, ``PID-3[2]`` (a later repetition)."""
    return f"{_seg_path(name, n)}-{number}" + (f"[{r + 1}]" if r else "")


def _read_values(plan: _FieldPlan, rep: str, csep: str, ssep: str, esc: str, enc: Any,
                 charset: str) -> dict[str, Any]:
    """The named components of one repetition (raw, escaped text) that holds a subcomponent
    separator or an escape character, unescaped and converted; empty ones left out. Raises
    MappingProblem from a conversion. (A repetition with components only is read in
    ``_run``.)"""
    comps = rep.split(csep) if csep in rep else (rep,)
    ncomps = len(comps)
    values: dict[str, Any] = {}
    for cname, ci, si, conv in plan.reads:
        if ci >= ncomps:
            continue
        text = comps[ci]
        if ssep in text:
            subs = text.split(ssep)
            if si >= len(subs):
                continue
            text = subs[si]
        elif si:
            continue
        if not text:
            continue
        if esc in text:
            text = unescape(text, enc, charset=charset)
            if not text:
                continue
        values[cname] = text if conv is None else conv[text]
        if plan.first_only:
            break
    return values


def _nested_values(plan: _FieldPlan, rep: list[list[str]]) -> dict[str, Any]:
    """The same from an already split repetition (MSH-1 / MSH-2, which are not split)."""
    values: dict[str, Any] = {}
    for cname, ci, si, conv in plan.reads:
        if ci < len(rep) and si < len(rep[ci]):
            text = rep[ci][si]
            if text:
                values[cname] = text if conv is None else conv[text]
                if plan.first_only:
                    break
    return values


def _run(msg: Any, plan: _MessagePlan, sender_org: str, track: bool) -> Mapped:
    """Map ``msg`` by ``plan``; with ``track``, also record provenance and members."""
    ruleset = plan.ruleset
    data: dict[str, Any] = {}
    issues: list[tuple[str, str, str]] = []
    segments: list[tuple[str, int, list[str], frozenset[int], set[int] | None]] = []
    z_segments: list[Any] = []
    provenance: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    current: dict[str, int] = {}  # list name → index of its current item
    enc = msg.encoding
    rsep, csep, ssep, esc = enc.repetition, enc.component, enc.subcomponent, enc.escape
    charset = msg.charset
    segment_plans = plan.segments
    previous: str | None = None
    for seg in msg.segments:
        name = seg.name
        n = counts[name] = counts.get(name, 0) + 1
        if name[:1] == "Z":
            z_segments.append(seg)
        fields = seg._f  # split on first use (raw_fields)
        if fields is None:
            fields = seg.raw_fields()
        splan = segment_plans.get(name)
        extra: set[int] | None = None  # fields a named function read besides its own
        if splan is None:
            splan = plan.unmapped(name)
            known = splan.known
        else:
            item = data
            prefix = ""
            into, lname, joins, inherit, steps, known = splan.run
            if into:  # each segment is (or continues) an item of a list
                items = data.setdefault(lname, [])
                if not (joins is not None and items and (joins == "any" or joins == previous)):
                    items.append({})
                    if track:
                        provenance[f"{lname}[{len(items) - 1}]"] = _seg_path(name, n)
                index = current[lname] = len(items) - 1
                if track:
                    members.setdefault(f"{lname}[{index}]", []).append(_seg_path(name, n))
                    prefix = f"{lname}[{index}]."
                item = items[-1]
                for key, source in inherit:
                    if source in current:
                        inherited = data[source][current[source]].get(key)
                        if inherited is not None:
                            item[key] = inherited
            nfields = len(fields)
            header = seg._header
            # a segment without repetition, subcomponent or escape characters anywhere
            # (most of them): a field of it only needs looking at for components
            line = seg._line
            plain = not (rsep in line or ssep in line or esc in line)
            read = None  # ctx["read"] for the named functions, made once per segment
            for fplan, number, fast, conv, constant, table, parent, key, set_to in steps:
                raw = fields[number] if number < nfields else ""
                produced = False
                if not raw:
                    pass
                elif fast and (csep not in raw if plain else not (
                        rsep in raw or csep in raw or ssep in raw or esc in raw)) and not (
                        header and number <= 2):
                    # the common case: a plain move of a value that holds no delimiter
                    try:
                        value = raw if conv is None else conv[raw]
                    except functions.MappingProblem as exc:
                        where = _field_path(name, n, number)
                        issues.append((where, "102", f"{where}: {exc}"))
                    else:
                        produced = True
                        if constant is not None:
                            value = constant
                        if table is not None and not isinstance(value, (dict, list)):
                            mapped = fplan.mapped(value)
                            if mapped is _UNMAPPED:
                                issues.append(fplan.unmapped(_seg_path(name, n), 0, value))
                                continue
                            value = mapped
                        if track:
                            provenance[prefix + set_path(item, fplan.to, value)] = _field_path(
                                name, n, number)
                        elif key is None:
                            set_to(item, value)
                        elif parent is None:
                            item[key] = value
                        else:
                            item.setdefault(parent, {})[key] = value
                else:
                    (simple, use, when, straight, reads, first_only, origin, targets,
                     repeat) = fplan.slow
                    if header and number <= 2:  # MSH-1 / MSH-2: never split
                        reps: Any = seg.field(number)
                        nested = True
                    else:
                        nested = False
                        if not plain and rsep in raw:
                            reps = raw.split(rsep) if repeat else (raw.split(rsep, 1)[0],)
                        else:
                            reps = (raw,)
                    ctx: dict[str, Any] | None = None
                    r = -1
                    for rep in reps:
                        r += 1
                        if not rep:
                            continue
                        if straight is not None and not nested and (
                                plain or not (ssep in rep or esc in rep)):
                            # components → their own paths, read straight from the split
                            # repetition (nothing to unescape, no conversion that can fail)
                            comps = rep.split(csep) if csep in rep else (rep,)
                            ncomps = len(comps)
                            for (ci, si, cconv, tparent, tkey, tset, ttable, target,
                                 suffix) in straight:
                                if si or ci >= ncomps:
                                    continue
                                text = comps[ci]
                                if not text:
                                    continue
                                value = text if cconv is None else cconv[text]
                                if ttable is not None:
                                    value = ttable.get(value, value)
                                if track:
                                    where = _field_path(name, n, number, r)
                                    provenance[prefix + set_path(item, target, value)] = (
                                        where + suffix)
                                # the value put in place written out here and below, not
                                # called: a function per value cost 11 k per message
                                elif tkey is None:
                                    tset(item, value)
                                elif tparent is None:
                                    item[tkey] = value
                                else:
                                    item.setdefault(tparent, {})[tkey] = value
                                produced = True
                            continue
                        # the named components of this repetition (or, for a plain move, the
                        # first of them), unescaped and converted
                        try:
                            if nested:
                                values = _nested_values(fplan, rep)
                                if not values:
                                    continue
                                if simple:
                                    first = next(iter(values.values()))
                            elif plain or not (ssep in rep or esc in rep):
                                if csep in rep:  # components only: nothing to unescape
                                    comps = rep.split(csep)
                                    ncomps = len(comps)
                                    values = {}
                                    for cname, ci, si, cconv in reads:
                                        if si or ci >= ncomps:
                                            continue
                                        text = comps[ci]
                                        if text:
                                            values[cname] = text if cconv is None else cconv[text]
                                            if first_only:
                                                break
                                    if not values:
                                        continue
                                    if simple:
                                        first = next(iter(values.values()))
                                else:  # the whole repetition is component 1, subcomponent 1
                                    if not origin:
                                        continue
                                    if fast:
                                        first = rep if conv is None else conv[rep]
                                    else:
                                        values = {}
                                        for cname, cconv in origin:
                                            values[cname] = rep if cconv is None else cconv[rep]
                                        first = values[origin[0][0]]
                            else:
                                values = _read_values(fplan, rep, csep, ssep, esc, enc, charset)
                                if not values:
                                    continue
                                if simple:
                                    first = next(iter(values.values()))
                        except functions.MappingProblem as exc:
                            where = _field_path(name, n, number, r)
                            issues.append((where, "102", f"{where}: {exc}"))
                            continue
                        if simple:  # a plain move, or a constant
                            value = first if constant is None else constant
                        else:
                            if ctx is None and (use is not None or when is not None):
                                if read is None:
                                    extra = set()
                                    read = _reader(seg, extra)
                                ctx = {"read": read, "item": item, "sender_org": sender_org}
                            if when is not None and not when(values, ctx):
                                continue
                            if targets is not None:  # components → their own paths
                                for (cname, tparent, tkey, tset, ttable, target,
                                     suffix) in targets:
                                    if cname in values:
                                        value = values[cname]
                                        if ttable is not None:
                                            value = ttable.get(value, value)
                                        if track:
                                            where = _field_path(name, n, number, r)
                                            provenance[prefix + set_path(item, target, value)] = (
                                                where + suffix)
                                        elif tkey is None:
                                            tset(item, value)
                                        elif tparent is None:
                                            item[tkey] = value
                                        else:
                                            item.setdefault(tparent, {})[tkey] = value
                                        produced = True
                                continue
                            if constant is not None:
                                value = constant
                            elif use is not None:
                                try:
                                    value = use(values, ctx)
                                except functions.MappingProblem as exc:
                                    where = _field_path(name, n, number, r)
                                    issues.append((where, "102", f"{where}: {exc}"))
                                    produced = True
                                    continue
                            else:
                                value = next(iter(values.values()))
                            if value is None:
                                continue
                        produced = True
                        if table is not None and not isinstance(value, (dict, list)):
                            mapped = fplan.mapped(value)
                            if mapped is _UNMAPPED:
                                issues.append(fplan.unmapped(_seg_path(name, n), r, value))
                                continue
                            value = mapped
                        if track:
                            where = _field_path(name, n, number, r)
                            provenance[prefix + set_path(item, fplan.to, value)] = where
                        elif key is None:
                            set_to(item, value)
                        elif parent is None:
                            item[key] = value
                        else:
                            item.setdefault(parent, {})[key] = value
                if not produced:
                    if fplan.set_default is not None:
                        fplan.set_default(item, fplan.default)
                    elif fplan.required:
                        where = _field_path(name, n, number)
                        issues.append((where, "101", f"{where} is required and empty"))
        previous = name
        segments.append((name, n, fields, known, extra))  # for unread, when asked
    for required in plan.required_segments:
        if required not in counts:
            issues.append((required, "100", f"required segment {required} is missing"))
    if plan.finish:
        ruleset.finish[plan.finish](data, provenance, members)
    if track:
        return Mapped(plan.rule, data, provenance, issues, Unread(segments), z_segments,
                      members, ruleset)
    return Mapped(plan.rule, data, None, issues, Unread(segments), z_segments, None, ruleset,
                  replay=lambda: _run(msg, plan, sender_org, True))


def _reader(seg: Any, extra: set[int]) -> Any:
    """``ctx["read"]`` for a named function: another field of the segment, marked read."""
    def read(number: int, comp: int = 1) -> str:
        extra.add(number)
        return seg.get(number, comp)

    return read


def map_message(msg: Any, *, sender_org: str, rules: RuleSet | None = None) -> Mapped:
    """Map a parsed v2 message with the rules for its type (the standard rules, or a
    dialect's overlay). Raises UnsupportedMessage."""
    ruleset = rules or standard()
    key = f"{msg.message_type}^{msg.trigger}"
    plan = _plan(ruleset, key)
    if plan is None:
        raise UnsupportedMessage(
            f"message type {key} is not supported; supported: {', '.join(sorted(ruleset.messages))}")
    return _run(msg, plan, sender_org, False)
