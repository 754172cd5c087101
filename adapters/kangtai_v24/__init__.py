"""康泰 HIS 5 (KangTai), HL7 v2.4 over MLLP with vendor Z-segments: ZPI carries the
hospital card, the social security card and the insurance class; ZFE carries fee lines
(see DIALECT.md).

The standard v2 rules (``adapters/hl7v2``) with this folder's ``messages/`` and
``segments/`` laid over them; the functions below are the ZPI fields that are more than
moving a value. A hospital sends with it once configured:
``gateway orgs adapter H11010103 kangtai_v24``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.hl7v2 import engine
from adapters.hl7v2.functions import MappingProblem, payment
from adapters.hl7v2.rules import overlay
from adapters.sdk.hl7 import read_v2, visit_of
from adapters.sdk.manifest import Manifest
from adapters.sdk.reading import Reading

HERE = Path(__file__).parent
CHARSET = "gb18030"  # 康泰 leaves MSH-18 empty and writes GBK (a subset of GB 18030)
MANIFEST = Manifest(
    id="kangtai_v24", vendor="康泰医疗 KangTai HIS 5", formats=("hl7v2",), versions=("2.4",),
    contact="hl7@kangtai-med.cn",
    description="HL7 v2.4 ADT^A04 / DFT^P03 with Z-segments ZPI (cards, insurance) and ZFE (fees)",
    content_types=("application/hl7-v2",))


def zpi_hospital_card(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    text = (v.get("text") or "").strip()
    return {"type": "hospital_card", "value": text, "issuer": ctx["sender_org"]} if text else None


def zpi_ssc_card(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    text = (v.get("text") or "").strip()
    return {"type": "ssc_card_no", "value": text} if text else None


def zpi_ehealth_card(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    text = (v.get("text") or "").strip()
    return {"type": "ehealth_card", "value": text} if text else None


def zpi_insurance(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    """ZPI-4: ZF 自费 (self-pay), else an NHSA insutype code (PV1-20's table)."""
    code = (v.get("code") or "").strip()
    if code.upper() == "ZF":
        return {"kind": "self_pay"}
    if code and not code.isdigit():
        raise MappingProblem(f"{code!r} is neither ZF nor an NHSA insurance type code")
    return payment({"code": code}, ctx)


RULES = overlay(HERE, use={f.__name__: f for f in (zpi_hospital_card, zpi_ssc_card,
                                                   zpi_ehealth_card, zpi_insurance)},
                protocol={"ZPI": {1}, "ZFE": {1}})


def map_message(msg: Any, *, sender_org: str) -> engine.Mapped:
    return engine.map_message(msg, sender_org=sender_org, rules=RULES)


def read(raw: bytes, org: str | None = None) -> Reading:
    return read_v2(raw, MANIFEST.id, org, charset=CHARSET)


def to_canonical(raw: bytes, org: str | None = None):
    return visit_of(read(raw, org))
