"""Remember which values were found clean, so a value seen again costs a set lookup.

``Clean`` is one such set. Primitive fields keep strings in them (``fields.py``), and
``memoised`` keeps complex values, keyed by their JSON: codings, references, quantities and
identifiers repeat across the resources of a visit and across visits, and what the checks
of such a value decide depends on the value alone (the compiler memoises only checkers
whose constraints look no further than their value, and a value that records a reference
is never remembered: the Bundle's reference checks need it).
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


def memoised(check: Check, reference: bool) -> Check:
    """``check`` skipping values found clean before (no issue, no reference recorded).
    Values of more than ``_MEMO_MAX`` bytes are checked each time, and so are all values of
    an element where, once ``_TRIAL`` were seen, fewer than one in four repeated (identifiers,
    references to the resources of one visit: unique by design; looking them up costs more
    than it saves)."""
    clean = Clean(limit=_LIMIT)
    dumps = orjson.dumps
    hits = misses = 0
    trying = True

    def memo(v, p, ctx):
        nonlocal hits, misses, trying
        if not trying:
            return check(v, p, ctx)
        try:
            key = dumps(v, default=_float)
        except TypeError:
            return check(v, p, ctx)
        if key in clean:  # (never a value the lines below refuse to remember)
            hits += 1
            return
        if len(key) > _MEMO_MAX or reference and type(v) is dict and str(
                v.get("reference", "")).startswith("#"):  # ref-1 depends on the container
            return check(v, p, ctx)
        misses += 1
        if hits * 4 < misses + hits and misses + hits >= _TRIAL:
            trying = False  # this element's values do not repeat: stop trying
        n, m = len(ctx.out), len(ctx.refs)
        check(v, p, ctx)
        if len(ctx.out) == n and len(ctx.refs) == m:
            clean.note(bytes(memoryview(key)))  # a copy: orjson's bytes keep a 4 KB buffer
    return memo


_MEMO_MAX = 512
_TRIAL = 200  # values seen before deciding that an element's values never repeat
_LIMIT = 5_000  # values remembered per element
