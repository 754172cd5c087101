"""Binding checks: a code, Coding or CodeableConcept against a value set's local expansion
(``conformance/valuesets.py``). Required: an error; extensible: a warning; a value set that
cannot be expanded locally: nothing (no false errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.errors import issue

Check = Callable[[Any, str, Any], None]


def binding_check(strength: str, url: str, expansion: frozenset[tuple[str, str]] | None,
                  code: str) -> Check | None:
    if expansion is None:
        return None  # not expandable locally: never reported (conformance/valuesets.py)
    severity = "error" if strength == "required" else "warning"
    codes_only = frozenset(c for _s, c in expansion)

    def report(p, ctx, shown):
        ctx.out.append(issue(f"{shown} is not in the value set {url} ({strength})", p,
                             code="code-invalid", severity=severity, error_code="6004"))

    if code == "code":
        def check_code(v, p, ctx):
            if type(v) is str and v not in codes_only:
                report(p, ctx, repr(v))
        return check_code
    if code == "Coding":
        def check_coding(v, p, ctx):
            if _coded(v) and (v.get("system"), v["code"]) not in expansion:
                report(p, ctx, f"{v.get('system')}#{v['code']}")
        return check_coding

    def check_cc(v, p, ctx):
        if type(v) is not dict or type(v.get("coding")) is not list:
            return
        codings = [c for c in v["coding"] if _coded(c)]
        if codings and not any((c.get("system"), c["code"]) in expansion for c in codings):
            report(p, ctx, ", ".join(f"{c.get('system')}#{c['code']}" for c in codings))
    return check_cc



def _coded(c: Any) -> bool:
    """A Coding whose system and code can be looked up (others: the structure checks)."""
    return type(c) is dict and type(c.get("code")) is str and type(c.get("system", "")) is str
