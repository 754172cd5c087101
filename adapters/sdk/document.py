"""Reading one vendor document (XML or JSON) with a mapping: the common path of
declarative adapters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.sdk.fields import Mapping, apply
from adapters.sdk.reading import Reading, finish
from adapters.sdk.sources import JsonDocument, XmlDocument
from gateway.errors import GatewayError


def read_with(doc: XmlDocument | JsonDocument, mapping: Mapping, *, org: str | None,
              functions: dict[str, Callable[..., Any]] | None = None) -> Reading:
    mapped = apply(mapping, doc.record(), org=org, functions=functions)
    return finish(mapped, f"visit {mapped.data.get('visit_no', '?')}", doc.unread)


def read_xml(raw: bytes, mapping: Mapping, *, org: str | None = None,
             functions: dict[str, Callable[..., Any]] | None = None) -> Reading:
    try:
        doc = XmlDocument(raw, mapping.namespaces)
    except GatewayError as err:
        return Reading(error=err)
    return read_with(doc, mapping, org=org, functions=functions)


def read_json(raw: bytes, mapping: Mapping, *, org: str | None = None,
              functions: dict[str, Callable[..., Any]] | None = None) -> Reading:
    try:
        doc = JsonDocument(raw)
    except GatewayError as err:
        return Reading(error=err)
    return read_with(doc, mapping, org=org, functions=functions)


def visit_of(reading: Reading):
    """``to_canonical`` from ``read``: the visit, or the error raised."""
    if reading.error is not None:
        raise reading.error
    return reading.visit
