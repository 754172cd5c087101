"""恒通 HIS (HengTong) visit export, XML 3.x: one GBK document per visit, the vendor's own
element names in its namespace, the vendor's local codes (see DIALECT.md).

The mapping is data (``mapping.toml``); the functions below are the parts that are more
than moving a value. Local codes (sex table XB, diagnoses, drugs, fee items) stay local
here: the gateway's translate stage maps them through the hospital's code maps (``maps/``
holds the vendor's standard tables, to import with ``gateway terminology import``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.sdk import Manifest, Problem, Reading, load
from adapters.sdk.document import read_xml, visit_of
from adapters.sdk.fields import Context
from gateway.identifiers import org_scoped
from gateway.visit import OutpatientVisit

HERE = Path(__file__).parent
MANIFEST = Manifest(
    id="hengtong_xml", vendor="恒通软件 HengTong HIS", formats=("xml",), versions=("3.1", "3.2"),
    contact="interfaces@hengtong-soft.cn",
    description="visit export: one XML document per outpatient visit (GBK)",
    content_types=("application/xml", "text/xml"))
MAPPING = load(HERE / "mapping.toml")


def hospital_card(value: Any, ctx: Context) -> dict[str, Any] | None:
    """his:CardNo: the hospital's own visit card (就诊卡), issued by the exporting hospital."""
    if value is None:
        return None
    return {"type": "hospital_card", "value": value, "issuer": ctx.org}


def settlement(value: Any, ctx: Context) -> dict[str, Any] | None:
    """his:Settlement/@type: ZF 自费 (self-pay), or an NHSA insutype code (e.g. 310)."""
    if value is None:
        return None
    if value.upper() == "ZF":
        return {"kind": "self_pay"}
    if not value.isdigit():
        raise Problem(f"{value!r} is neither ZF nor an NHSA insurance type code")
    return {"kind": "insured", "insurance_type": value}


def flag(value: Any, ctx: Context) -> bool:
    """@main="1": the primary diagnosis."""
    return value == "1"


def diagnosis_system(value: Any, ctx: Context) -> str:
    """Diagnoses are in the hospital's own table, mapped to ICD-10 by its diagnosis map."""
    return org_scoped(ctx.org or "unknown", "diagnosis")


FUNCTIONS = {f.__name__: f for f in (hospital_card, settlement, flag, diagnosis_system)}


def read(raw: bytes, org: str | None = None) -> Reading:
    return read_xml(raw, MAPPING, org=org, functions=FUNCTIONS)


def to_canonical(raw: bytes, org: str | None = None) -> OutpatientVisit:
    return visit_of(read(raw, org))
