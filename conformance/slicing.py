"""Slicing: which slice each item of a sliced array belongs to (value, pattern, type and
exists discriminators), each slice's own checks and cardinality, open and closed rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.elements import Node
from conformance.fields import steps
from conformance.patterns import getter, pattern_matcher
from gateway.errors import issue

Check = Callable[[Any, str, Any], None]
Slice = tuple[str, Callable[[Any], bool], Check, int, float]  # name, matcher, check, min, max


def slicer(label: str, closed: bool, slices: list[Slice],
           base_item: Check) -> Callable[[list, str, Any], None]:
    """The check of a sliced array's items (``p``: the array's path)."""
    which = _which(slices)
    checks = [check for _name, _m, check, _mn, _mx in slices]

    def run(values, p, ctx):
        counts = [0] * len(slices)
        for step, v in zip(steps(len(values)), values):
            pi = p + step
            j = which(v)
            if j is not None:
                counts[j] += 1
                checks[j](v, pi, ctx)
            else:
                if closed:
                    ctx.out.append(issue(f"matches no slice of {label}, and the slicing "
                                         f"is closed", pi, code="structure", error_code="6001"))
                base_item(v, pi, ctx)
        for j, (name, _m, _c, mn, mx) in enumerate(slices):
            if counts[j] < mn:
                ctx.out.append(issue(f"{label}:{name}: minimum required = {mn}, but only found "
                                     f"{counts[j]}", p, code="required", error_code="6001"))
            elif counts[j] > mx:
                ctx.out.append(issue(f"{label}:{name}: maximum allowed = {int(mx)}, but found "
                                     f"{counts[j]}", p, code="structure", error_code="6001"))
    return run


def _which(slices: list[Slice]) -> Callable[[Any], int | None]:
    """item → the index of the first slice it matches, or None. When every slice is told
    apart by a fixed string at one key (extensions by url), that string finds the slice."""
    matchers = [m for _name, m, _c, _mn, _mx in slices]

    def first(v):
        for j, matches in enumerate(matchers):
            if matches(v):
                return j
        return None

    fixed = [getattr(m, "fixed", None) for m in matchers]
    if not fixed or None in fixed or len({key for key, _v in fixed}) != 1 or any(
            type(value) is not str for _k, value in fixed):
        return first
    key = fixed[0][0]
    index: dict[str, int] = {}
    for j, (_k, value) in enumerate(fixed):
        index.setdefault(value, j)

    def by_value(v):
        if type(v) is not dict or key not in v:
            return None  # no slice's test holds
        x = v[key]
        return index.get(x) if type(x) is str else first(v)
    return by_value


def matcher(s: Node, discriminators: list) -> Callable[[Any], bool]:
    """Does an item belong to slice ``s``? (All of its discriminators say so.)"""
    tests = [t for kind, dpath in discriminators
             if (t := _test(s, kind, dpath)) is not None]
    if not tests:
        return lambda v: False
    if len(tests) == 1:
        return tests[0]

    def match(v):
        for test in tests:
            if not test(v):
                return False
        return True
    return match


def _test(s: Node, kind: str, dpath: str) -> Callable[[Any], bool] | None:
    """One discriminator of slice ``s`` as a test of an item; None: it says nothing."""
    if kind in ("exists", "type"):
        target = _discriminated(s, dpath)
        if target is None:
            return None
        if kind == "exists":
            present = target.el["min"] > 0 or target.el["max"] != "0"
            return _on_values(dpath, lambda got: bool(got) == present)
        codes = {t["code"] for t in target.el.get("types", ())}  # resources by resourceType
        return _on_values(dpath, lambda got: any(
            type(g) is dict and g.get("resourceType") in codes for g in got))
    expected = _discriminator_value(s, dpath)
    if expected is None:
        return None
    how, value = expected
    if kind == "value" and how == "fixed":
        if "." not in dpath and dpath not in ("$this", ""):
            return _fixed_at(dpath, value)
        return _on_values(dpath, lambda got: value in got)
    m = pattern_matcher(value)
    if "." not in dpath and dpath not in ("$this", ""):
        return _pattern_at(dpath, m)
    return _on_values(dpath, lambda got: any(m(g) for g in got))


def _on_values(dpath: str, test: Callable[[list], bool]) -> Callable[[Any], bool]:
    """``test`` of the values at ``dpath`` in an item (arrays flattened)."""
    get = getter(dpath)
    return lambda v: test(get(v))


def _fixed_at(key: str, value: Any) -> Callable[[Any], bool]:
    """``_on_values(key, lambda got: value in got)`` for a path of one key, without a list.
    The test says what it is (``fixed``), for the slicer's lookup by value."""
    def test(v):
        if type(v) is dict and key in v:
            x = v[key]
            return value in x if type(x) is list else value in (x,)
        return False
    test.fixed = (key, value)  # type: ignore[attr-defined]
    return test


def _pattern_at(key: str, m: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``_on_values(key, lambda got: any(m(g) for g in got))`` for a path of one key."""
    def test(v):
        if type(v) is dict and key in v:
            x = v[key]
            return any(m(g) for g in x) if type(x) is list else bool(m(x))
        return False
    return test


def _discriminated(s: Node, dpath: str) -> Node | None:
    """The element a discriminator path names inside slice ``s``."""
    node: Node | None = s
    if dpath not in ("$this", ""):
        for part in dpath.split("."):
            node = next((c for c in node.children if c.name == part), None)
            if node is None:
                break
    return node


def _discriminator_value(s: Node, dpath: str) -> tuple[str, Any] | None:
    node = _discriminated(s, dpath)
    if node is not None:
        if "fixed" in node.el:
            return "fixed", node.el["fixed"][1]
        if "pattern" in node.el:
            return "pattern", node.el["pattern"][1]
    if dpath == "url":  # an extension slice: its url is the extension's canonical
        for t in s.el.get("types", ()):
            for prof in t.get("profile", ()):
                return "fixed", prof
    return None
