"""The compiled glue between checkers: a resource met inside another (a Bundle entry's,
a contained one, a parameter's), checked against the definition of its resourceType; an
element's own checks chained after its type's; a stand-in for a checker still being
compiled (a recursive type). ``compiler.py`` decides what goes where; these closures run
once per value, so they are compiled with the other hot-path modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.errors import issue

Check = Callable[[Any, str, Any], None]
# resourceType → (the checker of the resource, the same remembering those found clean), or
# None for a type with no definition here
Resolve = Callable[[Any], "tuple[Check, Check] | None"]


def enter(ctx: Any, value: dict, path: str, fn: Check) -> None:
    """Check a resource met inside another (Bundle entry, contained, parameter): its own
    checker, then those of the profiles it names in ``meta.profile``."""
    outer, outer_root = ctx.resource, ctx.root
    ctx.resource = value
    if outer_root is None:
        ctx.root = value
    fn(value, path, ctx)
    if "meta" in value:
        for extra in ctx.validator.declared(value, path, skip=fn):
            extra(value, path, ctx)
    ctx.resource, ctx.root = outer, outer_root


def entered(fn: Check) -> Check:
    """``fn`` as the check of a resource met inside another (``enter``)."""
    def check(v, p, ctx):
        enter(ctx, v, p, fn)
    return check


def resource_item(resolve: Resolve, unknown_type: Callable[[Any, str], dict]) -> Check:
    """The checker of an element whose values are resources: each against the definition
    of its resourceType (``resolve``, asked once per type)."""
    resolved: dict[str, Any] = {}

    def check(value, path, ctx):
        if type(value) is not dict:
            ctx.out.append(issue("a resource must be a JSON object", path,
                                 code="structure", error_code="6001"))
            return
        rtype = value["resourceType"] if "resourceType" in value else None
        if type(rtype) is str:
            if rtype in resolved:
                found = resolved[rtype]
            else:
                found = resolved[rtype] = resolve(rtype)
        else:
            found = resolve(rtype)
        if found is None:
            ctx.out.append(unknown_type(rtype, path))
            return
        if "meta" in value:  # profiles it names may look outside it: checked in full
            enter(ctx, value, path, found[0])
        else:
            found[1](value, path, ctx)
    return check


def chained(base: Check, extras: list[Check]) -> Check:
    """``base``, then each of ``extras``, on the same value."""
    if not extras:
        return base
    if len(extras) == 1:
        only = extras[0]

        def both(v, p, ctx):
            base(v, p, ctx)
            only(v, p, ctx)
        return both
    rest = tuple(extras)

    def all_of(v, p, ctx):
        base(v, p, ctx)
        for x in rest:
            x(v, p, ctx)
    return all_of


def forward(cell: list) -> Check:
    """A stand-in for a checker being compiled, calling it once it is (``cell[0]``)."""
    def check(v, p, ctx):
        cell[0](v, p, ctx)
    return check


def nothing(v: Any, p: str, ctx: Any) -> None:
    """The checker of a type with no definition here: nothing to check against."""
