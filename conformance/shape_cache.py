"""Validate each *shape* of a FHIR resource with the ``fhir.resources`` models once.

Parsing a Bundle with the models costs ~0.3 ms per resource, nearly all of it in
Python-level validators. Yet rendered resources come in few shapes — the same elements
nested the same way, only the values differ. What the models decide depends on

* the shape: which elements are present, how they nest, which kinds of item a list
  holds, what is empty, the ``resourceType`` of every (contained) resource — this is
  where cardinality, choice types, required elements and empty-element rules live; and
* each primitive value against its own element's primitive type (string, code, id, uri,
  date, dateTime, decimal, …).

So a resource is walked once beside its model class: every primitive value is checked
with the TypeAdapter of its element's declared type (cached per distinct value), and the
walk yields the shape signature. A signature seen before already passed the full models;
an unseen one is validated with the models in full and remembered. Anything the walk does
not understand (an unknown element, a list where a single value belongs) falls back to
the full models. No library does this; it is what makes validation affordable on the hot
path, and ``tests/test_units.py`` checks that its verdicts agree with the models'.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import TypeAdapter, ValidationError


class Unsure(Exception):
    """The walk cannot vouch for this node; validate it with the full models."""


_PRIM, _MODEL, _RESOURCE = 0, 1, 2


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


class _Primitive:
    """A primitive element type: its TypeAdapter and the verdicts on values seen so far."""

    __slots__ = ("adapter", "verdicts")
    LIMIT = 100_000

    def __init__(self, annotation: Any):
        self.adapter = TypeAdapter(annotation)
        self.verdicts: dict[Any, bool] = {}

    def accepts(self, value: Any) -> bool:
        # str values key by themselves; others by (type, value), so 1, 1.0 and True differ
        key = value if type(value) is str else (type(value), value)
        ok = self.verdicts.get(key)
        if ok is None:
            try:
                self.adapter.validate_python(value)
                ok = True
            except (ValidationError, ValueError, TypeError):
                ok = False
            if len(self.verdicts) >= self.LIMIT:
                self.verdicts.clear()
            self.verdicts[key] = ok
        return ok


@lru_cache(maxsize=None)
def _adapter(annotation: Any) -> _Primitive:
    return _Primitive(annotation)


def _classify(annotation: Any) -> tuple[bool, int, Any]:
    """(is a list, kind, target) for a model field's annotation."""
    annotation = _unwrap_optional(annotation)
    is_list = typing.get_origin(annotation) in (list, typing.List)
    if is_list:
        annotation = _unwrap_optional(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is typing.Annotated or annotation in (str, int, bool, float):
        return is_list, _PRIM, _adapter(annotation)
    name = getattr(annotation, "__name__", "")
    if isinstance(annotation, type) and name.endswith("Type"):
        if name in ("ResourceType", "DomainResourceType"):
            return is_list, _RESOURCE, None
        try:
            return is_list, _MODEL, get_fhir_model_class(name[:-4])
        except (KeyError, ValueError):
            pass
    return is_list, _PRIM, _adapter(annotation)  # anything else: validate the value as declared


@lru_cache(maxsize=None)
def _fields(model: type) -> dict[str, tuple[bool, int, Any]]:
    return {(f.alias or name): _classify(f.annotation) for name, f in model.model_fields.items()}


def _item(value: Any, kind: int, target: Any, refs: list[str], shallow: bool) -> Any:
    if value is None:
        return None
    if kind == _PRIM:
        kind_of = type(value)
        if kind_of is dict or kind_of is list or not target.accepts(value):
            raise Unsure
        return kind_of
    if not isinstance(value, dict):
        raise Unsure
    if kind == _RESOURCE:
        if shallow:
            return ("R", value.get("resourceType"))
        try:
            target = get_fhir_model_class(value.get("resourceType"))
        except (KeyError, ValueError, TypeError):
            raise Unsure from None
    return signature(value, target, shallow, refs)


# Signatures are interned bottom-up to small ints, so comparing and hashing a resource's
# signature costs one pass over it (a nested tuple would be re-hashed at every level).
_INTERNED: dict[tuple, int] = {}
_INTERN_LIMIT = 1_000_000


def _intern(key: tuple) -> int:
    sid = _INTERNED.get(key)
    if sid is None:
        sid = _INTERNED[key] = len(_INTERNED) + _generation[0]
    return sid


_generation = [0]


def signature(node: dict[str, Any], model: type, shallow_resources: bool = False,
              refs: list[str] | None = None) -> int:
    """The shape signature of ``node`` as an instance of ``model``; raises Unsure.

    With ``shallow_resources``, nested resources (Bundle.entry.resource) count only by
    their type: they are validated on their own. Every ``reference`` string met on the
    way is appended to ``refs``, so reference checks need no walk of their own.
    """
    if refs is None:
        refs = []
    fields = _fields(model)
    out: list[Any] = [model]
    for key, value in node.items():
        if key == "resourceType":
            out.append(value)
            continue
        spec = fields.get(key)
        if spec is None:
            raise Unsure
        is_list, kind, target = spec
        if key == "reference" and type(value) is str:
            refs.append(value)
        if is_list:
            if not isinstance(value, list):
                raise Unsure
            out.append((key, frozenset([_item(v, kind, target, refs, shallow_resources)
                                        for v in value])))
        else:
            out.append((key, _item(value, kind, target, refs, shallow_resources)))
    return _intern(tuple(out))


class ShapeCache:
    """Signatures that passed the full models; bounded, cleared when full."""

    def __init__(self, limit: int = 50_000):
        self.limit = limit
        self._seen: set[Any] = set()
        self.hits = 0
        self.misses = 0

    def known(self, sig: Any) -> bool:
        if sig in self._seen:
            self.hits += 1
            return True
        self.misses += 1
        return False

    def add(self, sig: Any) -> None:
        if len(self._seen) >= self.limit or len(_INTERNED) >= _INTERN_LIMIT:
            # Interned ids restart above every id handed out so far: no stale id can match.
            _generation[0] += len(_INTERNED) + 1
            _INTERNED.clear()
            self._seen.clear()
        self._seen.add(sig)
