"""Local value-set expansion for binding checks — no terminology server.

A value set is *expandable locally* when every ``compose.include`` can be enumerated here:
a list of concepts, or a whole code system (or an ``is-a`` / ``descendent-of`` filter on
one) whose CodeSystem is present with ``content = complete``, or other value sets that are
themselves expandable. Anything else — SNOMED CT, LOINC, UCUM, BCP-47, a code system that
is only a fragment locally (the ICD-10 (China) sample), other filters — makes the value
set *not expandable*, and then a binding to it is never reported: no false errors from
knowledge the gateway does not have. ``exclude`` is ignored (accepting too much, never
rejecting a valid code). The policy is the same for core and project value sets.

The ``terminology/`` content is the source for the project's value sets, with the code
systems a user loads (e.g. a full ICD-10 edition) included — so loading a complete
ICD-10 turns the diagnosis binding on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

J = dict[str, Any]
Expansion = frozenset[tuple[str, str]] | None


def _walk(concepts: list[J], out: dict[str, list[str]], parent: str | None) -> None:
    for c in concepts:
        out.setdefault(c["code"], [])
        if parent is not None:
            out[c["code"]].append(parent)
        for p in c.get("property", ()):
            if p.get("code") in ("subsumedBy", "parent") and p.get("valueCode"):
                out[c["code"]].append(p["valueCode"])
        _walk(c.get("concept", ()), out, c["code"])


def _codes(cs: J) -> dict[str, list[str]]:
    """code → its parents."""
    out: dict[str, list[str]] = {}
    _walk(cs.get("concept", ()), out, None)
    return out


def _descendants(tree: dict[str, list[str]], root: str, include_self: bool) -> set[str]:
    children: dict[str, list[str]] = {}
    for code, parents in tree.items():
        for p in parents:
            children.setdefault(p, []).append(code)
    found, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in found:
                found.add(c)
                todo.append(c)
    if include_self and root in tree:
        found.add(root)
    return found


def expand(url: str, valuesets: Mapping[str, J], codesystems: Mapping[str, J],
           _seen: frozenset[str] = frozenset()) -> Expansion:
    """The (system, code) pairs of value set ``url``, or None when not expandable locally."""
    vs = valuesets.get(url.split("|")[0])
    if vs is None or url in _seen:
        return None
    compose = vs.get("compose") or {}
    if not compose.get("include"):
        return None
    out: set[tuple[str, str]] = set()
    for inc in compose["include"]:
        system = inc.get("system")
        part: set[tuple[str, str]] | None = None
        if system:
            cs = codesystems.get(system)
            if inc.get("concept"):
                part = {(system, c["code"]) for c in inc["concept"]}
            elif cs is None or cs.get("content", "complete") != "complete":
                return None
            else:
                tree = _codes(cs)
                codes = set(tree)
                for f in inc.get("filter", ()):
                    op, prop, value = f.get("op"), f.get("property"), f.get("value")
                    if op in ("is-a", "descendent-of") and prop == "concept":
                        codes &= _descendants(tree, value, op == "is-a")
                    else:
                        return None
                part = {(system, c) for c in codes}
        for ref in inc.get("valueSet", ()):
            sub = expand(ref, valuesets, codesystems, _seen | {url})
            if sub is None:
                return None
            part = set(sub) if part is None else part & sub
        if part is None:
            return None
        out |= part
    return frozenset(out)
