"""What an element adds to its type: a fixed or pattern value, and invariants (bindings:
``bindings.py``). Each becomes a check built once per element.

An invariant is kept as ``Invariant`` (guard, test, decide, any_value) so the object
walker can run an object's own invariants in one loop, calling only the native test
(``invariants.py``) while it holds: ``guard`` — a key without which the test holds (not
called at all); ``test(node, ctx)`` — True, False, or None (undecided); ``decide`` —
fhirpathpy for undecided, the issue for a failure (and, with warnings wanted, an
information issue for an invariant fhirpathpy cannot evaluate either).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from conformance.invariants import GUARDS, PRIMITIVE_CONTEXT, FhirPath, native
from conformance.patterns import pattern_matcher
from gateway.errors import issue

Check = Callable[[Any, str, Any], None]

# what a native test raises on malformed JSON (a string where an object belongs):
# undecided, fhirpathpy decides; the structure checks report the malformation itself
MALFORMED = (AttributeError, TypeError, KeyError, ValueError)


class Invariant(NamedTuple):
    guard: str | None
    test: Callable[[Any, Any], "bool | None"]
    decide: Callable[[Any, Any, str, Any], None]
    any_value: bool  # also run on a value that is not a JSON object


def _undecided(node: Any, ctx: Any) -> None:
    return None


def invariant(con: list, base_path: str, fhirpath: FhirPath,
              project_expressions: dict[str, str], warnings: bool) -> Invariant | None:
    """``con``: [key, severity, human, expression]. None: a warning not wanted."""
    key, severity, human, expression = con
    if severity != "error" and not warnings:
        return None
    fn = native(key, expression, project_expressions)
    if severity not in ("error", "warning"):
        severity = "warning"
    text = f"{human} ({key})"
    unchecked = f"{text} was not checked: the FHIRPath engine cannot evaluate {expression!r}"

    def decide(ok, v, p, ctx):
        if ok is None:
            ok = fhirpath.holds(expression, base_path, v, ctx)
            if ok is None:  # said, not passed silently (only where warnings are wanted)
                if warnings:
                    ctx.out.append(issue(unchecked, p, code="informational",
                                         severity="information", error_code="6006"))
                return
        if ok is False:
            ctx.out.append(issue(text, p, code="invariant", severity=severity,
                                 error_code="6005"))

    if fn is None:
        return Invariant(None, _undecided, decide, True)
    return Invariant(GUARDS.get(key), fn, decide, key in PRIMITIVE_CONTEXT)


def invariant_check(inv: Invariant) -> Check:
    """An invariant as a check of any value (an element's, beside its type's checks)."""
    guard, test, decide, any_value = inv

    def check(v, p, ctx):
        if type(v) is dict:
            if guard is not None and guard not in v:
                return
        elif not any_value:
            return
        try:
            ok = test(v, ctx)
        except MALFORMED:
            ok = None
        if ok is not True:
            decide(ok, v, p, ctx)
    return check


def fixed_check(fixed: Any) -> Check:
    def check(v, p, ctx):
        if v != fixed:
            ctx.out.append(issue(f"the value must be exactly {show(fixed)}", p,
                                 code="value", error_code="6001"))
    return check


def pattern_check(pattern: Any) -> Check:
    matcher = pattern_matcher(pattern)

    def check(v, p, ctx):
        if not matcher(v):
            ctx.out.append(issue(f"the value must match the pattern {show(pattern)}", p,
                                 code="value", error_code="6001"))
    return check


def show(v: Any) -> str:
    return orjson.dumps(v).decode()
