"""The named functions the v2 rules files refer to (``use``, ``when``, ``finish``): the
parts of the mapping that are more than moving a value. Each is small and says which
table of ``FIELDS.md`` it implements.

A function gets the field's components by name (``v``) and a context: ``ctx["read"](n)``
reads another field of the same segment (and counts it as read), ``ctx["item"]`` is the
item being built, ``ctx["sender_org"]`` the sending organisation.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from gateway.identifiers import CITIZEN_ID, CardType


class MappingProblem(ValueError):
    """A value that cannot be mapped; the engine reports it at the field's HL7 path."""


_CITIZEN_OID = CITIZEN_ID.removeprefix("urn:oid:")
_NAMESPACES = {
    "CITIZEN": CardType.CITIZEN_ID, "SSC": CardType.SSC_CARD_NO, "SSCID": CardType.SSC_CARD_ID,
    "HEALTHCARD": CardType.HEALTH_CARD, "EHC": CardType.EHEALTH_CARD,
    "NHSAEV": CardType.NHSA_EVOUCHER, "YLM": CardType.YILIAN_CODE,
}
# The namespace the outbound mapping writes for each card type (FIELDS.md, PID-3).
NAMESPACE_OF = {v: k for k, v in _NAMESPACES.items()}
ID_TYPE_OF = {CardType.CITIZEN_ID: "NNCHN", CardType.SSC_CARD_NO: "SS", CardType.SSC_CARD_ID: "SS",
              CardType.HEALTH_CARD: "HC", CardType.EHEALTH_CARD: "HC",
              CardType.NHSA_EVOUCHER: "PI", CardType.YILIAN_CODE: "PI",
              CardType.HOSPITAL_CARD: "PI"}


_TYPE_OF_NAMESPACE = {ns: t.value for ns, t in _NAMESPACES.items()}
_CITIZEN, _HOSPITAL_CARD = CardType.CITIZEN_ID.value, CardType.HOSPITAL_CARD.value


def card(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    """PID-3 / MRG-1 (CX) → a card identifier, by assigning authority and type (FIELDS.md)."""
    value = v.get("id")
    if not value:
        return None
    ns, kind = _authority(v.get("authority"))
    if kind == _CITIZEN or v.get("authority_uid") == _CITIZEN_OID or v.get("type") == "NNCHN":
        return {"type": _CITIZEN, "value": value}
    if kind is not None:
        return {"type": kind, "value": value}
    return {"type": _HOSPITAL_CARD, "value": value, "issuer": ns or ctx["sender_org"]}


_AUTHORITIES: dict[str | None, tuple[str, str | None]] = {}


def _authority(authority: str | None) -> tuple[str, str | None]:
    """A CX assigning authority as sent → (the namespace, stripped; the card type its
    namespace names, or None). A hospital's cards carry a few authorities, each worked out
    once (at most 4096 remembered, then all forgotten at once)."""
    found = _AUTHORITIES.get(authority)
    if found is None:
        ns = (authority or "").strip()
        found = (ns, _TYPE_OF_NAMESPACE.get(ns.upper()))
        if len(_AUTHORITIES) >= 4096:
            _AUTHORITIES.clear()
        _AUTHORITIES[authority] = found
    return found


_LATIN = re.compile(r"^[A-Za-z .'-]+$")


def person_name(v: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    """PID-5 (XPN): Chinese names are usually whole in 5.1; 5.1 + 5.2 otherwise."""
    family, given = v.get("family") or "", v.get("given") or ""
    if family and given:
        sep = " " if _LATIN.match(family) and _LATIN.match(given) else ""
        return f"{family}{sep}{given}"
    return family or given or None


def payment(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    """PV1-20: SP self-pay, INS insured, or an NHSA insutype code (insured with that type)."""
    code = v.get("code")
    if not code:
        return None
    if code.upper() == "SP":
        return {"kind": "self_pay"}
    if code.upper() == "INS":
        return {"kind": "insured"}
    return {"kind": "insured", "insurance_type": code}


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def number(v: dict[str, Any], ctx: dict[str, Any]) -> Decimal | None:
    """A value that must be a number (OBX-5 when OBX-2 is NM)."""
    text = (v.get("text") or "").strip()
    if not text:
        return None
    if not _NUMBER.match(text):
        raise MappingProblem(f"{text!r} is not a number")
    return Decimal(text)


_RANGE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*[-~]\s*([+-]?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*$")


def reference_range(v: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any] | None:
    """OBX-7: "low-high" → low and high; "<high" → high; ">low" → low; else text."""
    text = v.get("text")
    if not text:
        return None
    m = _RANGE.match(text)
    if m:
        return {"low": m.group(1), "high": m.group(2)}
    m = _BOUND.match(text)
    if m:
        return {"high" if m.group(1) == "<" else "low": m.group(2)}
    return {"text": text}


def duration_days(v: dict[str, Any], ctx: dict[str, Any]) -> int | None:
    """TQ duration "D5" → 5 days."""
    text = (v.get("duration") or "").strip().upper()
    if not text:
        return None
    if text.startswith("D") and text[1:].isdigit():
        return int(text[1:])
    raise MappingProblem(f"duration {text!r} is not of the form D<days>")


def strength(v: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    """RXE-25 (number) + RXE-26.1 (unit) → "0.25g"."""
    value = v.get("value")
    if value is None:
        return None
    return f"{value}{ctx['read'](26)}"


# -- conditions (``when``) ---------------------------------------------------------------

def numeric_result(v: dict[str, Any], ctx: dict[str, Any]) -> bool:
    return ctx["read"](2) == "NM"


def text_result(v: dict[str, Any], ctx: dict[str, Any]) -> bool:
    return ctx["read"](2) != "NM"


def order_no_unset(v: dict[str, Any], ctx: dict[str, Any]) -> bool:
    return not ctx["item"].get("order_no")


def alt_system_is_nhsa(v: dict[str, Any], ctx: dict[str, Any]) -> bool:
    return (v.get("alt_system") or "").upper() == "NHSA"


# -- finishers (``finish``) --------------------------------------------------------------

def split_orders(data: dict[str, Any], provenance: dict[str, str],
                 members: dict[str, list[str]]) -> None:
    """orders[] → labs[] (OBR-24 LAB) and exams[] (anything else); keeps provenance."""
    orders = data.pop("orders", [])
    for i, order in enumerate(orders):
        kind = (order.pop("kind", "") or "").upper()
        target = "labs" if kind == "LAB" else "exams"
        items = data.setdefault(target, [])
        old, new = f"orders[{i}]", f"{target}[{len(items)}]"
        for table in (provenance, members):
            for path in [p for p in table if p == old or p.startswith((old + ".", old + "["))]:
                table[new + path[len(old):]] = table.pop(path)
        items.append(order)


USE = {f.__name__: f for f in (card, person_name, payment, number, reference_range,
                               duration_days, strength)}
WHEN = {f.__name__: f for f in (numeric_result, text_result, order_no_unset, alt_system_is_nhsa)}
FINISH = {f.__name__: f for f in (split_orders,)}
