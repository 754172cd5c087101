"""HL7 v2.3–2.5 (the standard mapping): ADT, ORM, RDE, ORU and DFT messages → the canonical
visit, by the rules in ``messages/``, ``segments/`` and ``datatypes/`` (FIELDS.md).

Under the adapter SDK it is the adapter ``hl7v2``; v2 dialects (vendor Z-segments) lay
their own rules over it (``rules.overlay``), e.g. ``adapters/kangtai_v24``."""

from __future__ import annotations

from adapters.hl7v2.engine import map_message
from adapters.sdk.hl7 import read_v2, visit_of
from adapters.sdk.manifest import Manifest
from adapters.sdk.reading import Reading

MANIFEST = Manifest(
    id="hl7v2", vendor="HL7 v2 (standard)", formats=("hl7v2",),
    versions=("2.3", "2.3.1", "2.4", "2.5", "2.5.1"), contact="",
    description="ADT^A04/A08/A40, ORM^O01, RDE^O11, ORU^R01, DFT^P03 over MLLP (FIELDS.md)",
    content_types=("application/hl7-v2", "x-application/hl7-v2+er7"))

__all__ = ["MANIFEST", "map_message", "read", "to_canonical"]


def read(raw: bytes, org: str | None = None) -> Reading:
    return read_v2(raw, MANIFEST.id, org)


def to_canonical(raw: bytes, org: str | None = None):
    return visit_of(read(raw, org))
