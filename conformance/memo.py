"""Remember which complex values were found clean, so a value seen before costs one
serialisation and one set lookup.

Codings, references, quantities and identifiers repeat across the resources of a visit and
across visits; what the checks of such a value decide depends on the value alone (the
compiler memoises only checkers whose constraints look no further than their value, and a
value that records a reference is never remembered: the Bundle's reference checks need it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Check = Callable[[Any, str, Any], None]


def _float(v: Any) -> float:
    """A Decimal (a rendered Bundle holds them) keys as the float it serialises to: same
    verdicts. One beyond a float's range does not key at all (it would read as null)."""
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise TypeError("not a finite number")
    return f


class _Clean:
    """The values found clean, for every memoised checker: one bounded set, keyed by the
    checker's tag and the value's JSON bytes; emptied when full."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self.keys: set[bytes] = set()
        self.tags = 0

    def tag(self) -> bytes:
        self.tags += 1
        return b"%d|" % self.tags


_CLEAN = _Clean()


def memoised(check: Check, reference: bool) -> Check:
    """``check`` skipping values found clean before (no issue, no reference recorded).
    Values of more than ``_MEMO_MAX`` bytes are checked each time, and so are all values of
    an element where fewer than one in ten of the first ``_TRIAL`` repeated (identifiers,
    request URLs: unique by design)."""
    clean = _CLEAN.keys
    tag = _CLEAN.tag()
    dumps = orjson.dumps
    limit = _CLEAN.LIMIT
    longest = len(tag) + _MEMO_MAX
    hits = misses = 0
    trying = True

    def memo(v, p, ctx):
        nonlocal hits, misses, trying
        if not trying:
            return check(v, p, ctx)
        try:
            key = tag + dumps(v, default=_float)
        except TypeError:
            return check(v, p, ctx)
        if key in clean:  # (never a value the lines below refuse to remember)
            hits += 1
            return
        if len(key) > longest or reference and type(v) is dict and str(
                v.get("reference", "")).startswith("#"):  # ref-1 depends on the container
            return check(v, p, ctx)
        misses += 1
        if hits * 10 < misses + hits and misses + hits >= _TRIAL:
            trying = False  # this element's values do not repeat: stop trying
        n, m = len(ctx.out), len(ctx.refs)
        check(v, p, ctx)
        if len(ctx.out) == n and len(ctx.refs) == m:
            if len(clean) >= limit:
                clean.clear()
            clean.add(key)
    return memo


_MEMO_MAX = 512
_TRIAL = 500  # values seen before deciding that an element's values never repeat
