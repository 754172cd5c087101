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
# (``\S*``) only exclude some ASCII whitespace (``\s`` as in Java: ASCII): \v and \f, or all
# six of it. A string free of those characters matches, so they are looked for instead of
# running the regex engine (``str.__contains__`` is a memchr; ``isprintable`` costs a call
# per character). Value: may such a string hold a space (and \t, \n, \r)?
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
        if spaces is not None:
            if not plain(v, spaces):
                return f"is not a valid {type_code}"
        elif pattern is not None and pattern(v) is None:
            return f"is not a valid {type_code}"
        if dates and len(v) >= 10 and not _real_day(v[:10]):
            return "is not a real calendar date"
        return None
    return text


def printable_passes(regex: str | None) -> bool | None:
    """Is a type of this ``regex`` decided by ``plain``: True (string, markdown: may hold a
    space), False (uri, url, canonical: may not); None: the regex decides."""
    return _PRINTABLE_PASSES.get(regex)


def plain(v: str, spaces: bool) -> bool:
    """Does a non-empty string match the core regex of string / markdown (``spaces``) or of
    uri / url / canonical (``_PRINTABLE_PASSES``)? (The field checkers inline this test.)"""
    if spaces:
        return "\x0b" not in v and "\x0c" not in v
    return " " not in v and "\t" not in v and "\n" not in v and "\r" not in v \
        and "\x0b" not in v and "\x0c" not in v


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
