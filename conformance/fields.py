"""Field checkers: what the object walker (``objects.py``) calls for one JSON key.

A field checker is ``field(value, path, ctx)``, ``path`` being the FHIRPath of the object
that holds the key. The key's own path (``path.key``, ``path.key[i]``) is built only where
it is needed: for a complex value (its children's paths start with it) or for an issue.

Primitive fields check strings against a set of values found clean before at the same
place (``Clean``), so a repeated code, system or date costs one set lookup and no call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.memo import Clean
from conformance.primitives import problem
from gateway.errors import issue

Check = Callable[[Any, str, Any], None]
Why = Callable[[Any], "str | None"]  # a primitive value → what is wrong with it (primitives.py)
_STEPS = tuple(f"[{i}]" for i in range(100))


def steps(n: int) -> tuple[str, ...]:
    """The path steps of an array's items, ``[0]`` to ``[n-1]`` (and maybe more)."""
    return _STEPS if n <= len(_STEPS) else tuple(f"[{i}]" for i in range(n))


_NEVER = Clean(remember=False)


def _checked(why: Why, extras: tuple[Check, ...], value: Any, p: str, ctx: Any,
             clean: Clean) -> None:
    """The full check of a primitive value: its JSON type and format (``why``), then what
    the element adds (``extras``); a string with no issue joins ``clean``."""
    reason = why(value)
    if reason is not None:
        ctx.out.append(problem(value, reason, p))
    if extras:
        n = len(ctx.out)
        for x in extras:
            x(value, p, ctx)
        if len(ctx.out) != n:
            return
    if reason is None and type(value) is str:
        clean.note(value)


def _not_single(p: str, ctx: Any) -> None:
    ctx.out.append(issue("must be a single value, not an array", p, code="structure",
                         error_code="6001"))


def _array_shape(value: Any, p: str, mx: float, label: str, ctx: Any) -> bool:
    """Issues for what is wrong with an array as a whole; False when its items cannot be
    checked (not an array, or empty)."""
    if type(value) is not list:
        ctx.out.append(issue("must be an array", p, code="structure", error_code="6001"))
        return False
    if not value:
        ctx.out.append(issue("an array must not be empty", p, code="structure",
                             error_code="6001"))
        return False
    if len(value) > mx:
        ctx.out.append(issue(f"{label}: maximum allowed = {int(mx)}, but found {len(value)}",
                             p, code="structure", error_code="6001"))
    return True


def primitive_single(key: str, why: Why, extras: tuple[Check, ...], clean: Clean) -> Check:
    """(The object walker looks a string up in ``field.clean`` itself, and calls this only
    for a value not found there.)"""
    dotkey = "." + key

    def field(value, path, ctx):
        if type(value) is str and value in clean:
            return
        if type(value) is list:
            _not_single(path + dotkey, ctx)
        else:
            _checked(why, extras, value, path + dotkey, ctx, clean)
    field.clean = clean
    return field


def printable_single(key: str, why: Why, spaces: bool) -> Check:
    """A primitive whose format is a string free of a few ASCII whitespace characters (all
    six, unless ``spaces``: ``primitives.plain``, inlined), where the element adds nothing:
    such a string is valid, without a call or a set. (The object walker makes the same test
    itself, ``field.printable`` being ``spaces``, and calls this only for what fails it.)"""
    dotkey = "." + key

    def field(value, path, ctx):
        if type(value) is str and value and ("\x0b" not in value and "\x0c" not in value and (
                spaces or " " not in value and "\t" not in value and "\n" not in value
                and "\r" not in value)):
            return
        if type(value) is list:
            _not_single(path + dotkey, ctx)
        else:
            _checked(why, (), value, path + dotkey, ctx, _NEVER)
    field.printable = spaces
    return field


def printable_array(key: str, why: Why, spaces: bool, mx: float, label: str) -> Check:
    dotkey = "." + key

    def field(value, path, ctx):
        if (type(value) is not list or not value or len(value) > mx) and \
                not _array_shape(value, path + dotkey, mx, label, ctx):
            return
        for step, v in zip(steps(len(value)), value):
            if v is None or type(v) is str and v and "\x0b" not in v and "\x0c" not in v and (
                    spaces or " " not in v and "\t" not in v and "\n" not in v
                    and "\r" not in v):
                continue  # None: a null aligned with `_key`, the object's check decides
            _checked(why, (), v, path + dotkey + step, ctx, _NEVER)
    return field


def primitive_array(key: str, why: Why, extras: tuple[Check, ...], clean: Clean, mx: float,
                    label: str) -> Check:
    dotkey = "." + key

    def field(value, path, ctx):
        if (type(value) is not list or not value or len(value) > mx) and \
                not _array_shape(value, path + dotkey, mx, label, ctx):
            return
        for step, v in zip(steps(len(value)), value):
            if v is None or type(v) is str and v in clean:
                continue  # None: a null aligned with `_key`, the object's check decides
            _checked(why, extras, v, path + dotkey + step, ctx, clean)
    return field


def complex_single(key: str, item: Check, targets: tuple[str, ...] | None) -> Check:
    """``targets``: a Reference, recorded for the Bundle's reference checks. (The object
    walker does the same itself for a value that is not an array, ``field.single`` being
    ``(dotkey, item, targets)``.)"""
    dotkey = "." + key

    def field(value, path, ctx):
        p = path + dotkey
        if type(value) is list:
            _not_single(p, ctx)
            return
        item(value, p, ctx)
        if targets is not None and type(value) is dict and "reference" in value:
            ref = value["reference"]
            if type(ref) is str:
                ctx.refs.append((ref, p, targets))
    field.single = (dotkey, item, targets)
    return field


def complex_array(key: str, item: Check, targets: tuple[str, ...] | None, mx: float,
                  label: str, skip_none: bool = False) -> Check:
    """``skip_none``: a primitive element a profile gave children to (a null beside `_key`).
    (The object walker does the same itself for an array of at most ``mx`` items,
    ``field.array`` being ``(dotkey, item, targets, mx, skip_none)``.)"""
    dotkey = "." + key

    def field(value, path, ctx):
        p = path + dotkey
        if (type(value) is not list or not value or len(value) > mx) and \
                not _array_shape(value, p, mx, label, ctx):
            return
        for step, v in zip(steps(len(value)), value):
            if v is None and skip_none:
                continue
            pi = p + step
            item(v, pi, ctx)
            if targets is not None and type(v) is dict and "reference" in v:
                ref = v["reference"]
                if type(ref) is str:
                    ctx.refs.append((ref, pi, targets))
    field.array = (dotkey, item, targets, mx, skip_none)
    return field


def sliced_array(key: str, slicer: Callable[[list, str, Any], None], mx: float,
                 label: str) -> Check:
    dotkey = "." + key

    def field(value, path, ctx):
        p = path + dotkey
        if (type(value) is not list or not value or len(value) > mx) and \
                not _array_shape(value, p, mx, label, ctx):
            return
        slicer(value, p, ctx)
    return field


def resource_type(rtype: str) -> Check:
    def field(value, path, ctx):
        if value != rtype:
            ctx.out.append(issue(f"resourceType must be {rtype!r}", path + ".resourceType",
                                 code="structure", error_code="6001"))
    return field


def forbidden(key: str) -> Check:
    dotkey = "." + key

    def field(value, path, ctx):
        ctx.out.append(issue("this element is not allowed here (max = 0)", path + dotkey,
                             code="structure", error_code="6001"))
    return field


def primitive_extension(name: str, element_check: Check) -> Check:
    """``_name``: the id and extensions of a primitive (an array of them beside an array)."""
    dotkey = "._" + name

    def field(value, path, ctx):
        p = path + dotkey
        if type(value) is list:
            for step, v in zip(steps(len(value)), value):
                if v is not None:
                    element_check(v, p + step, ctx)
        elif value is not None:
            element_check(value, p, ctx)
    return field
