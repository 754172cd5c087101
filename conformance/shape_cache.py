"""Validate each *shape* of a FHIR resource with the ``fhir.resources`` models once.

Parsing a Bundle with the models costs ~0.4 ms per resource, all of it Python-level
validators. But rendered resources come in few shapes: the same elements, nested the
same way, differing only in their values. A resource's validity under the models
depends only on

* its shape — which elements are present, how they nest, which items a list holds,
  which are empty, and the ``resourceType`` of every (contained) resource; and
* for each primitive value, which FHIR primitive types accept it.

So the shape signature records both: the structure, and for each primitive value a
bitmask saying which of the ``fhir_core`` primitive types (string, code, id, uri, date,
dateTime, instant, decimal, …) accept it — computed with those types' own validators
and cached per distinct value. Two resources with the same signature get the same
verdict from the models; only signatures never seen before are validated in full.
No library does this; it is what makes validation affordable on the hot path.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from fhir_core import types as ft
from pydantic import TypeAdapter, ValidationError

_STRING_TYPES = (
    ft.StringType, ft.CodeType, ft.IdType, ft.UriType, ft.CanonicalType, ft.OidType,
    ft.UrlType, ft.MarkdownType, ft.DateType, ft.DateTimeType, ft.InstantType, ft.TimeType,
    ft.DecimalType, ft.Base64BinaryType, ft.UuidType, ft.IntegerType, ft.UnsignedIntType,
    ft.PositiveIntType, ft.Integer64Type, ft.XhtmlType,
)
_NUMBER_TYPES = (
    ft.DecimalType, ft.IntegerType, ft.UnsignedIntType, ft.PositiveIntType, ft.Integer64Type,
    ft.StringType,
)
_STRING_ADAPTERS = tuple(TypeAdapter(t) for t in _STRING_TYPES)
_NUMBER_ADAPTERS = tuple(TypeAdapter(t) for t in _NUMBER_TYPES)


def _accepts(adapter: TypeAdapter, value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


@lru_cache(maxsize=200_000)
def _mask(kind: type, text: str) -> int:
    value: Any
    if kind is str:
        value, adapters = text, _STRING_ADAPTERS
    elif kind is bool:
        return 1 if text == "True" else 2
    else:
        value = kind(text)
        adapters = _NUMBER_ADAPTERS
    mask = 0
    for bit, adapter in enumerate(adapters):
        if _accepts(adapter, value):
            mask |= 1 << bit
    return mask


def shape(node: Any) -> Any:
    """The validity-relevant signature of a JSON value (see the module docstring)."""
    if isinstance(node, dict):
        return tuple((k, v if k == "resourceType" else shape(v)) for k, v in node.items())
    if isinstance(node, list):
        return ("[]", frozenset(shape(item) for item in node))
    if node is None:
        return None
    kind = type(node)
    if kind in (str, int, float, bool, Decimal):
        return (kind.__name__, _mask(kind, str(node)))
    return ("?", kind.__name__, repr(node))  # anything unexpected is its own shape


class ShapeCache:
    """Signatures already validated; bounded, cleared when full."""

    def __init__(self, limit: int = 50_000):
        self.limit = limit
        self._seen: set[Any] = set()
        self.hits = 0
        self.misses = 0

    def known(self, signature: Any) -> bool:
        if signature in self._seen:
            self.hits += 1
            return True
        self.misses += 1
        return False

    def add(self, signature: Any) -> None:
        if len(self._seen) >= self.limit:
            self._seen.clear()
        self._seen.add(signature)
