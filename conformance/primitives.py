"""FHIR primitive values in JSON: the JSON type each primitive must have, and its format
(the ``regex`` the core definitions give ``<type>.value``, matched in full). Verdicts are
cached per distinct value, so a value seen before costs one dict lookup.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from collections.abc import Callable

from gateway.errors import issue

NUMBER = {"integer": (-2**31, 2**31 - 1), "positiveInt": (1, 2**31 - 1),
          "unsignedInt": (0, 2**31 - 1), "integer64": (-2**63, 2**63 - 1)}
_LIMIT = 20_000
_NUMBERS = (int, float, Decimal)  # a rendered Bundle holds Decimals until it is serialised


_DATES = ("date", "dateTime", "instant")
_JSON_NAMES = {dict: "object", list: "array", type(None): "null"}


def _real_day(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def problem_function(type_code: str, regex: str | None) -> Callable[[object], str | None]:
    """value → why it is not a valid ``type_code``, or None."""
    if type_code == "boolean":
        return lambda v: None if v is True or v is False else "must be a JSON boolean"
    if type_code in NUMBER:
        lo, hi = NUMBER[type_code]

        def integer(v: object) -> str | None:
            if type(v) is not int:
                return "must be a JSON integer"
            return None if lo <= v <= hi else f"{v} is out of range for {type_code}"
        return integer
    if type_code == "decimal":
        return lambda v: None if type(v) in _NUMBERS else "must be a JSON number"
    pattern = re.compile(regex, re.ASCII).fullmatch if regex else None  # \s as in Java: ASCII
    cache: dict[str, str | None] = {}

    def text(v: object) -> str | None:
        if type(v) is not str:
            return "must be a JSON string"
        try:
            return cache[v]
        except KeyError:
            pass
        why = None
        if not v:
            why = "must not be empty"
        elif pattern is not None and pattern(v) is None:
            why = f"is not a valid {type_code}"
        elif type_code in _DATES and len(v) >= 10 and not _real_day(v[:10]):
            why = "is not a real calendar date"
        if len(cache) >= _LIMIT:
            cache.clear()
        cache[v] = why
        return why
    return text


def checker(type_code: str, regex: str | None):
    """A checker (value, path, ctx) for one primitive item."""
    why = problem_function(type_code, regex)

    def check(value, path, ctx):
        reason = why(value)
        if reason is not None:
            if isinstance(value, str):
                shown = repr(value if len(value) <= 40 else value[:40] + "…")
            elif isinstance(value, (int, float, bool)):
                shown = repr(value)
            else:
                shown = f"a JSON {_JSON_NAMES.get(type(value), type(value).__name__)}"
            ctx.out.append(issue(f"the value {shown} {reason}", path, code="value",
                                 error_code="6001"))
    return check
