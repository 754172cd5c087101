"""The FHIR view of a settlement: Coverage, Claim and ClaimResponse, in a transaction Bundle
queued to the regional platform after the visit's own Bundle (same patient shard).

Patient, Encounter and the hospital's Organization are referenced through conditional
creates on the same business identifiers (and the same ``urn:uuid`` ids) the visit Bundle
uses, so they resolve to the resources already there. Coverage, Claim and ClaimResponse
are conditional updates on their own identifiers: a reversal (2208/2601) re-sends them
with status ``cancelled``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

from gateway.identifiers import (
    BASE,
    ORGANIZATION,
    STRENGTH,
    CardType,
    card_system,
    deterministic_id,
    org_scoped,
)
from gateway.render.fhir import EMPI_SYSTEM, NHSA_CHRGITM_LV, NHSA_LIST
from gateway.visit import OutpatientVisit, VisitType

J = dict[str, Any]
INSUTYPE = f"{BASE}/CodeSystem/nhsa-insutype"
PSN_NO = f"{BASE}/sid/nhsa-psn-no"
SETL_ID = f"{BASE}/sid/nhsa-setl-id"
ADMDVS = f"{BASE}/sid/nhsa-admdvs"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
NHSA_FIGURE = f"{BASE}/CodeSystem/nhsa-settlement-figure"


def _if_none_exist(system: str, value: str) -> str:
    return f"identifier={quote(system, safe='')}%7C{quote(value, safe='')}"


def _entry(resource: J, system: str, value: str) -> J:
    """A conditional create on a business identifier, with the visit Bundle's uuid5 fullUrl."""
    return {"fullUrl": f"urn:uuid:{deterministic_id(system, value)}", "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"],
                        "ifNoneExist": _if_none_exist(system, value)}}


def _money(value: str) -> J:
    return {"value": Decimal(value), "currency": "CNY"}


def _update(resource: J, system: str, value: str) -> J:
    rid = deterministic_id(system, value)
    return {"fullUrl": f"urn:uuid:{rid}", "resource": resource,
            "request": {"method": "PUT",
                        "url": f"{resource['resourceType']}?{_if_none_exist(system, value)}"}}


def _strongest(visit: OutpatientVisit) -> tuple[str, str]:
    cards = sorted(visit.patient.cards, key=lambda c: STRENGTH.index(c.type))
    c = cards[0]
    issuer = c.issuer or (visit.org.code if c.type is CardType.HOSPITAL_CARD else None)
    return card_system(c.type, issuer), c.value


def render(visit: OutpatientVisit, person_id: str, state: dict[str, Any], result: dict[str, Any],
           *, cancelled: bool, tracking_id: str) -> J:
    org_code = visit.org.code
    system, value = _strongest(visit)
    patient = _entry({"resourceType": "Patient", "identifier": [
        {"system": system, "value": value}, {"system": EMPI_SYSTEM, "value": person_id}]},
        system, value)
    patient["fullUrl"] = f"urn:uuid:{person_id}"
    org = _entry({"resourceType": "Organization", "identifier": [
        {"system": ORGANIZATION, "value": org_code}], "active": True, "name": visit.org.name},
        ORGANIZATION, org_code)
    admdvs = state.get("insuplc_admdvs") or "000000"
    insurer = _entry({"resourceType": "Organization", "identifier": [
        {"system": ADMDVS, "value": admdvs}], "active": True,
        "name": f"医疗保障经办机构 {admdvs}"}, ADMDVS, admdvs)
    enc_system = org_scoped(org_code, "visit")
    emergency = visit.visit_type is VisitType.EMERGENCY
    encounter = _entry({
        "resourceType": "Encounter", "identifier": [{"system": enc_system, "value": visit.visit_no}],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                  "code": "EMER" if emergency else "AMB"},
        "subject": {"reference": patient["fullUrl"]}}, enc_system, visit.visit_no)

    psn_no, insutype = state["psn_no"], state["insutype"]
    coverage = _update({
        "resourceType": "Coverage", "identifier": [{"system": PSN_NO, "value": f"{psn_no}/{insutype}"}],
        "status": "active",
        "type": {"coding": [{"system": INSUTYPE, "code": insutype}]},
        "subscriberId": psn_no,
        "beneficiary": {"reference": patient["fullUrl"]},
        "payor": [{"reference": insurer["fullUrl"]}]}, PSN_NO, f"{psn_no}/{insutype}")
    claim_system = org_scoped(org_code, "claim")
    claim_value = f"{visit.visit_no}/{state['chrg_bchno']}"
    status = "cancelled" if cancelled else "active"
    items, by_sn = [], {i["feedetl_sn"]: i for i in result.get("items", [])}
    for n, fee in enumerate(visit.fees, start=1):
        figures = by_sn.get(fee.line_no, {})
        codings = [{"system": org_scoped(org_code, "fee-item"), "code": fee.item_code,
                    "display": fee.name}]
        if figures.get("med_list_codg"):
            codings.append({"system": NHSA_LIST, "code": figures["med_list_codg"]})
        item: J = {"sequence": n, "productOrService": {"coding": codings, "text": fee.name},
                   "quantity": {"value": fee.quantity}, "unitPrice": _money(str(fee.unit_price)),
                   "net": _money(str(fee.amount)),
                   "encounter": [{"reference": encounter["fullUrl"]}]}
        if figures.get("chrgitm_lv"):
            item["modifier"] = [{"coding": [{"system": NHSA_CHRGITM_LV, "code": figures["chrgitm_lv"]}]}]
        items.append(item)
    t = result["totals"]
    claim = _update({
        "resourceType": "Claim", "identifier": [{"system": claim_system, "value": claim_value}],
        "status": status,
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]},
        "use": "claim", "patient": {"reference": patient["fullUrl"]},
        "created": visit.visit_time.isoformat(),
        "insurer": {"reference": insurer["fullUrl"]},
        "provider": {"reference": org["fullUrl"]},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                 "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage["fullUrl"]}}],
        "item": items, "total": _money(t["medfee_sumamt"])}, claim_system, claim_value)

    setl_id = result.get("setl_id") or state.get("setl_id", "")

    def adj(code: str, amount: str, system: str = NHSA_FIGURE) -> J:
        return {"category": {"coding": [{"system": system, "code": code}]}, "amount": _money(amount)}

    response = _update({
        "resourceType": "ClaimResponse", "identifier": [{"system": SETL_ID, "value": setl_id}],
        "status": status,
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]},
        "use": "claim", "patient": {"reference": patient["fullUrl"]},
        "created": result.get("settled_at") or visit.visit_time.isoformat(),
        "insurer": {"reference": insurer["fullUrl"]},
        "requestor": {"reference": org["fullUrl"]},
        "request": {"reference": claim["fullUrl"]},
        "outcome": "complete",
        "disposition": "结算已撤销 (settlement cancelled)" if cancelled else "已结算 (settled)",
        "item": [{"itemSequence": n, "adjudication": [
            adj("submitted", i["medfee_sumamt"], ADJUDICATION),
            adj("benefit", i["fund_pay_sumamt"], ADJUDICATION),
            adj("deductible", i["act_pay_dedc"], ADJUDICATION),
            adj("psn_part_amt", i["psn_part_amt"]), adj("acct_pay", i["acct_pay"]),
            adj("psn_cash_pay", i["psn_cash_pay"])]}
            for n, i in enumerate(result.get("items", []), start=1)],
        "total": [adj("submitted", t["medfee_sumamt"], ADJUDICATION),
                  adj("benefit", t["fund_pay_sumamt"], ADJUDICATION),
                  adj("deductible", t["act_pay_dedc"], ADJUDICATION),
                  adj("psn_part_amt", t["psn_part_amt"]), adj("acct_pay", t["acct_pay"]),
                  adj("psn_cash_pay", t["psn_cash_pay"])],
        "payment": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-paymenttype",
                                         "code": "complete"}]},
                    "amount": _money("0.00" if cancelled else t["fund_pay_sumamt"])},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage["fullUrl"]}}],
    }, SETL_ID, setl_id)
    return {"resourceType": "Bundle", "type": "transaction",
            "identifier": {"system": org_scoped(org_code, "settlement-submission"),
                           "value": tracking_id},
            "entry": [org, insurer, patient, encounter, coverage, claim, response]}
