"""The compiled object walker: one JSON object against one element's children.

``Shape`` is what the compiler worked out for an element with children — a field checker
per JSON key (``fields.py``), the required children, the choice groups, the primitive
arrays whose nulls must align with ``_name`` — and ``walker`` turns it into the checker
``check(obj, path, ctx)``: a dict lookup and a call per key, then the object's own rules.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.constraints import MALFORMED, Invariant
from conformance.fields import steps
from conformance.memo import Clean
from gateway.errors import issue

Check = Callable[[Any, str, Any], None]
ELE_1_TEXT = "All FHIR elements must have a @value or children (ele-1)"


@dataclass
class Shape:
    fields: dict[str, Check] = field(default_factory=dict)
    must: tuple[str, ...] = ()  # children required once, under one JSON name (the usual case)
    required: tuple[tuple[str, tuple[str, ...], int], ...] = ()  # (element path, names, min)
    choice_of: dict[str, str] = field(default_factory=dict)  # JSON name → its choice element
    prim_arrays: tuple[str, ...] = ()  # may hold null where `_name` has an item
    extras: tuple[Check, ...] = ()  # fixed / pattern / binding of the element itself
    invariants: tuple[Invariant, ...] = ()
    # the element's own checks on a value that is not an object (all of them for an element
    # of a resource or type, which judge any value; none for a type's root)
    not_object: tuple[Check, ...] = ()


def walker(shape: Shape) -> Check:
    # The names are interned: the keys of a rendered object are (they are literals), and a
    # lookup of the very same string object skips comparing the characters. The shape is
    # copied into a dict and tuples: the compiled module then knows their types, and a
    # lookup or an emptiness test is a direct one, not a generic call. (The shape is
    # complete when its walker is made and is not changed after.)
    fields = {sys.intern(k): f for k, f in shape.fields.items()}
    # The commonest fields are tested here, without a call; ``fields`` holds their test and
    # ``own`` their checker, called for a value that fails the test (it reports what is
    # wrong): True or False for a string free of a few ASCII whitespace characters (space
    # allowed or not: ``fields.printable_single``), a ``Clean`` for a string found clean
    # there before (``fields.primitive_single``).
    # A ``_Single`` for a complex value (``fields.complex_single``): its item's check called
    # from here.
    # An ``_Array`` for an array of complex values (``fields.complex_array``) likewise.
    own = {k: f for k, f in fields.items() if any(
        getattr(f, a, None) is not None for a in ("printable", "clean", "single", "array"))}
    for k, f in own.items():
        if getattr(f, "printable", None) is not None:
            fields[k] = f.printable
        elif getattr(f, "clean", None) is not None:
            fields[k] = f.clean
        elif getattr(f, "single", None) is not None:
            fields[k] = _Single(*f.single)
        else:
            fields[k] = _Array(*f.array)
    must = tuple(map(sys.intern, shape.must))
    # (element path, its JSON names, the same with their `_name` beside, min)
    required = tuple((epath, tuple(map(sys.intern, names)), _with_extensions(names), mn)
                     for epath, names, mn in shape.required)
    # the others: a choice, a child needed more than once, or one a profile counts
    counted = tuple((pairs, mn) for _p, names, pairs, mn in required
                    if not (mn == 1 and len(names) == 1))
    choice_of = {sys.intern(k): epath for k, epath in shape.choice_of.items()}
    prim_arrays = tuple(map(sys.intern, shape.prim_arrays))
    extras = tuple(shape.extras)
    # (guard, test, decide): plain tuples, which the compiled loop unpacks directly (an
    # Invariant, a NamedTuple, it would unpack through an iterator)
    invariants = tuple((guard, test, decide) for guard, test, decide, _any in shape.invariants)
    not_object = tuple(shape.not_object)

    table = _Table(fields, own, must, required, counted, choice_of, prim_arrays, extras,
                   invariants)

    def check(obj, path, ctx):
        if type(obj) is not dict:
            ctx.out.append(issue("expected a JSON object", path, code="structure",
                                 error_code="6001"))
            for x in not_object:
                x(obj, path, ctx)
            return
        _walk(obj, path, ctx, table)
    return check


class _Table:
    """A shape as the compiled walk reads it (``objects.pxd`` makes this an extension type
    with typed attributes: reading one is a field access)."""

    def __init__(self, fields: dict, own: dict, must: tuple, required: tuple, counted: tuple,
                 choice_of: dict, prim_arrays: tuple, extras: tuple, invariants: tuple):
        self.fields = fields
        self.own = own
        self.must = must
        self.required = required
        self.counted = counted
        self.choice_of = choice_of
        self.choice_keys = frozenset(choice_of)
        self.prim_arrays = prim_arrays
        self.extras = extras
        self.invariants = invariants


class _Single:
    """What ``fields.complex_single`` checks a value with (typed: ``objects.pxd``)."""

    def __init__(self, dotkey: str, item: Check, targets: tuple[str, ...] | None):
        self.dotkey = dotkey
        self.item = item
        self.targets = targets


def _single(single: _Single, value: Any, path: str, ctx: Any) -> None:
    """``fields.complex_single``'s check of a value that is not an array."""
    p = path + single.dotkey
    single.item(value, p, ctx)
    if single.targets is not None and type(value) is dict and "reference" in value:
        ref = value["reference"]
        if type(ref) is str:
            ctx.refs.append((ref, p, single.targets))


class _Array:
    """What ``fields.complex_array`` checks an array's items with (typed: ``objects.pxd``)."""

    def __init__(self, dotkey: str, item: Check, targets: tuple[str, ...] | None, mx: float,
                 skip_none: bool):
        self.dotkey = dotkey
        self.item = item
        self.targets = targets
        self.mx = mx
        self.skip_none = skip_none


def _array(array: _Array, values: list, path: str, ctx: Any) -> bool:
    """``fields.complex_array``'s check of a non-empty array; False (nothing done) for one
    of more than ``mx`` items (the field reports that)."""
    if len(values) > array.mx:
        return False
    p = path + array.dotkey
    item, targets = array.item, array.targets
    for step, v in zip(steps(len(values)), values):
        if v is None and array.skip_none:
            continue
        pi = p + step
        item(v, pi, ctx)
        if targets is not None and type(v) is dict and "reference" in v:
            ref = v["reference"]
            if type(ref) is str:
                ctx.refs.append((ref, pi, targets))
    return True


def _walk(obj: dict, path: str, ctx: Any, table: _Table) -> None:
    """The walker's check of a JSON object. A module function, not the closure itself:
    ``objects.pxd`` types its arguments, so the compiled loop reads the object and the
    shape with direct dict and tuple calls."""
    fields, own = table.fields, table.own
    if len(obj) < 2 and (len(obj) == 0 or "id" in obj):
        ctx.out.append(issue(ELE_1_TEXT, path, code="invariant", error_code="6005"))
    for key, value in obj.items():
        f = fields.get(key)
        if f is None:
            ctx.out.append(issue(f"unrecognised property {key!r}", f"{path}.{key}",
                                 code="structure", error_code="6001"))
            continue
        if f is True:  # fields.printable_single's test, inlined
            if type(value) is str and value and _no_vt_ff(value):
                continue
            f = own[key]
        elif f is False:
            if type(value) is str and value and _no_whitespace(value):
                continue
            f = own[key]
        elif type(f) is Clean:  # fields.primitive_single's lookup, inlined
            if type(value) is str and value in f:
                continue
            f = own[key]
        elif type(f) is _Single:  # fields.complex_single, inlined
            if type(value) is not list:
                _single(f, value, path, ctx)
                continue
            f = own[key]
        elif type(f) is _Array:  # fields.complex_array, inlined
            if type(value) is list and value and _array(f, value, path, ctx):
                continue
            f = own[key]
        f(value, path, ctx)
    # what follows is mostly absent: each part is tested for before its loop
    if table.must:
        for key in table.must:
            if key not in obj:
                _required(obj, table.required, path, ctx)
                break
        else:
            if table.counted and _short(obj, table.counted):
                _required(obj, table.required, path, ctx)
    elif table.counted and _short(obj, table.counted):
        _required(obj, table.required, path, ctx)
    choice_keys = table.choice_keys
    if choice_keys and len(obj) > 1 and len(present := choice_keys & obj.keys()) > 1:
        _one_choice(present, table.choice_of, path, ctx)
    if table.prim_arrays:
        for k in table.prim_arrays:
            if k in obj and type(v := obj[k]) is list and None in v:
                _nulls_aligned(obj, k, path, ctx)
    if table.extras:
        for x in table.extras:
            x(obj, path, ctx)
    if table.invariants:
        last = None  # the guard looked up last (dom-2 to dom-5 share one: looked up once)
        has = False
        for guard, test, decide in table.invariants:
            if guard is not None:
                if guard is not last:
                    last = guard
                    has = guard in obj
                if not has:
                    continue
            try:
                ok = test(obj, ctx)
            except MALFORMED:
                ok = None
            if ok is not True:
                decide(ok, obj, path, ctx)


def _no_vt_ff(v: str) -> bool:
    """Is ``v`` free of \\v and \\f? (Two searches: compiled with ``v`` typed, direct ones.)"""
    return "\x0b" not in v and "\x0c" not in v


def _no_whitespace(v: str) -> bool:
    """Is ``v`` free of ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r)? One pass over the
    characters: compiled (``objects.pxd``), a C loop that costs less than looking for each
    of the six in turn."""
    for c in v:
        if c <= " " and (c == " " or "\t" <= c <= "\r"):
            return False
    return True


def _required(obj: dict, required: tuple, path: str, ctx: Any) -> None:
    """Minimum cardinality, in the order of the definition (a required child may be absent
    under its own name and present only as `_name`, or be a choice)."""
    for epath, names, pairs, mn in required:
        if mn == 1 and len(names) == 1 and names[0] in obj:
            continue  # present (whatever its value: the field's checks judge that)
        n = _count(obj, pairs)
        if n < mn:
            ctx.out.append(issue(f"{epath}: minimum required = {mn}, but only found {n}",
                                 path, code="required", error_code="6001"))


def _short(obj: dict, counted: tuple) -> bool:
    """Is one of these required children there fewer times than it must be?"""
    for pairs, mn in counted:
        if _count(obj, pairs) < mn:
            return True
    return False


def _with_extensions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each JSON name with its ``_name`` (made once, not per object counted)."""
    return tuple((sys.intern(k), sys.intern("_" + k)) for k in names)


def _count(obj: dict, pairs: tuple[tuple[str, str], ...]) -> int:
    """How many values a required child has (``pairs``: its names, ``_with_extensions``)."""
    n = 0
    for k, under in pairs:
        if k in obj:
            v = obj[k]
            n += len(v) if type(v) is list else 1
        elif under in obj:
            n += 1
    return n


def _one_choice(present: set, choice_of: dict, path: str, ctx: Any) -> None:
    hit = [choice_of[k] for k in present]
    if len(set(hit)) < len(hit):
        for epath in sorted({e for e in hit if hit.count(e) > 1}):
            ctx.out.append(issue(f"{epath}: only one of the types may be present", path,
                                 code="structure", error_code="6001"))


def _nulls_aligned(obj: dict, key: str, path: str, ctx: Any) -> None:
    """``"given": ["a", null], "_given": [null, {...}]``: a null item needs an extension
    item at the same index."""
    values = obj[key]
    ext = obj.get("_" + key)
    for i, v in enumerate(values):
        if v is None and not (type(ext) is list and i < len(ext) and ext[i] is not None):
            p = f"{path}.{key}[{i}]"
            ctx.out.append(issue(f"null here needs an extension at _{key}[{i}]", p,
                                 code="structure", error_code="6001"))
