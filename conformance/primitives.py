"""FHIR primitive values in JSON: the JSON type each primitive must have, and its format
(the ``regex`` the core definitions give ``<type>.value``, matched in full). Strings found
valid are remembered where they were met (``fields.Clean``), not here.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from collections.abc import Callable

from gateway.errors import issue

NUMBER = {"integer": (-2**31, 2**31 - 1), "positiveInt": (1, 2**31 - 1),
          "unsignedInt": (0, 2**31 - 1), "integer64": (-2**63, 2**63 - 1)}
_NUMBERS = (int, float, Decimal)  # a rendered Bundle holds Decimals until it is serialised


_DATES = ("date", "dateTime", "instant")
# The core regexes of string and markdown (``[ \r\n\t\S]+``) and of uri, url and canonical
# (``\S*``) only exclude ASCII whitespace, all of it but the space unprintable: a printable
# string passes them without the regex engine (with no space, for ``\S*``). Value: may it
# hold a space?
_PRINTABLE_PASSES = {"[ \\r\\n\\t\\S]+": True, "\\S*": False}
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
    dates = type_code in _DATES
    spaces = _PRINTABLE_PASSES.get(regex)  # None: the regex decides every value

    def text(v: object) -> str | None:
        if type(v) is not str:
            return "must be a JSON string"
        if not v:
            return "must not be empty"
        if pattern is not None and not (spaces is not None and v.isprintable() and (
                spaces or " " not in v)) and pattern(v) is None:
            return f"is not a valid {type_code}"
        if dates and len(v) >= 10 and not _real_day(v[:10]):
            return "is not a real calendar date"
        return None
    return text


def printable_passes(regex: str | None) -> bool | None:
    """Is every printable string a valid value, for a type of this ``regex``: True (string,
    markdown), or only those with no space: False (uri, url, canonical); None: no."""
    return _PRINTABLE_PASSES.get(regex)


def problem(value: object, reason: str, path: str) -> dict:
    """The issue for a primitive value that is not valid (``reason``: what ``problem_function``
    said)."""
    if isinstance(value, str):
        shown = repr(value if len(value) <= 40 else value[:40] + "…")
    elif isinstance(value, (int, float, bool)):
        shown = repr(value)
    else:
        shown = f"a JSON {_JSON_NAMES.get(type(value), type(value).__name__)}"
    return issue(f"the value {shown} {reason}", path, code="value", error_code="6001")


def checker(why: Callable[[object], str | None]):
    """A checker (value, path, ctx) for one primitive item (``why``: a ``problem_function``)."""
    def check(value, path, ctx):
        reason = why(value)
        if reason is not None:
            ctx.out.append(problem(value, reason, path))
    return check
