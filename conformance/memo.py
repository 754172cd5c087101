"""Remember which values were found clean, so a value seen again costs a set lookup.

``Clean`` is one such set. Primitive fields keep strings in them (``fields.py``), and
``memoised`` keeps complex values, keyed by their JSON: codings, extensions, participants
and whole resources repeat across the resources of a visit and across visits, and what the
checks of such a value decide depends on the value alone (the compiler memoises only
checkers whose constraints look no further than their value; the references a value's
check records for the Bundle's reference checks are remembered with it and recorded again
each time). A key costs about 14 instructions a byte (the dump and its hash), so values
whose check costs less and which rarely repeat — identifiers, names, periods, quantities,
references — are not memoised at all (``compiler.PER_EVENT``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Check = Callable[[Any, str, Any], None]


class Clean(set):
    """Values found clean by one checker; emptied when full. ``remember=False`` (a place
    whose values must be checked each time): it stays empty."""

    def __init__(self, remember: bool = True, limit: int = 20_000) -> None:
        super().__init__()
        self.remember = remember
        self.limit = limit

    def note(self, value: Any) -> None:
        if self.remember:
            if len(self) >= self.limit:
                self.clear()
            self.add(value)


def _float(v: Any) -> float:
    """A Decimal (a rendered Bundle holds them) keys as the float it serialises to: same
    verdicts. One beyond a float's range does not key at all (it would read as null)."""
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise TypeError("not a finite number")
    return f


def memoised(check: Check) -> Check:
    """``check`` skipping values found clean before (no issue). A value whose check records
    references for the Bundle's reference checks (an identifier's assigner, a participant's
    individual) is remembered with them, relative to its place, and a value seen again
    records them again at its own place; one that records a ``#`` reference is checked each
    time (ref-1 depends on the container). Values of more than ``_MEMO_MAX`` bytes are
    checked each time, and so are all values of an element where, once ``_TRIAL`` were
    seen, fewer than one in four repeated (a charge item, an observation: unique by design;
    looking them up costs more than it saves)."""
    clean: dict[bytes, tuple] = {}  # value → the references its check records (path suffixes)
    dumps = orjson.dumps
    hits = misses = size = 0
    trying = True

    def memo(v, p, ctx):
        nonlocal hits, misses, size, trying
        if not trying:
            return check(v, p, ctx)
        try:
            key = dumps(v, default=_float)
        except TypeError:
            return check(v, p, ctx)
        if key in clean:  # (never a value the lines below refuse to remember)
            hits += 1
            refs = clean[key]  # (`in` and `[]`: the bytes' hash is computed once)
            if refs:
                ctx.refs.extend([(ref, p + rest, targets) for ref, rest, targets in refs])
            return
        if len(key) > _MEMO_MAX:
            return check(v, p, ctx)
        misses += 1
        if hits * 4 < misses + hits and misses + hits >= _TRIAL:
            trying = False  # this element's values do not repeat: stop trying
        n, m = len(ctx.out), len(ctx.refs)
        check(v, p, ctx)
        if len(ctx.out) != n:
            return
        refs = ()
        if len(ctx.refs) != m:  # (most values record none: nothing to look at)
            recorded = ctx.refs[m:]
            if any(ref.startswith("#") or not where.startswith(p) for ref, where, _t in recorded):
                return
            k = len(p)
            refs = tuple((ref, where[k:], targets) for ref, where, targets in recorded)
        if len(clean) >= _LIMIT or size >= _BUDGET:
            clean.clear()
            size = 0
        clean[bytes(memoryview(key))] = refs  # a copy: orjson's bytes keep a 4 KB buffer
        size += len(key)
    return memo


_MEMO_MAX = 4096
_TRIAL = 200  # values seen before deciding that an element's values never repeat
_LIMIT = 5_000  # values remembered per element
_BUDGET = 2_000_000  # bytes of values remembered per element
