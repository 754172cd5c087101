"""Canonical visit → FHIR R4 transaction Bundle.

Rendered straight to JSON-ready dicts (the validate stage then checks the whole Bundle
against the ``yikatong-visit-bundle`` profile). Every resource has a business identifier; its
``fullUrl`` is ``urn:uuid:`` + uuid5 of that identifier, and it is sent as a conditional
create (``ifNoneExist``) on it, so re-sending a visit creates nothing new. Provenance,
which has no identifier, is a PUT to a deterministic id. No clock, no random: the same
envelope always renders the same bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from gateway.envelope import Envelope
from gateway.identifiers import (
    BASE,
    ICD10,
    ORGANIZATION,
    OUTPATIENT_NO,
    deterministic_id,
    org_scoped,
)
from gateway.visit import LabResult, OutpatientVisit, VisitType

J = dict[str, Any]
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CARD_TYPE = f"{BASE}/CodeSystem/card-type"
EMPI_SYSTEM = f"{BASE}/sid/empi"  # the master patient index's person id
NHSA_LIST = f"{BASE}/CodeSystem/nhsa-medical-list"
NHSA_CHRGITM_TYPE = f"{BASE}/CodeSystem/nhsa-med-chrgitm-type"
NHSA_CHRGITM_LV = f"{BASE}/CodeSystem/nhsa-chrgitm-lv"
NHSA_INSUTYPE = f"{BASE}/CodeSystem/nhsa-insutype"
GBT_3304 = f"{BASE}/CodeSystem/gbt-3304-ethnicity"
PAYMENT_KIND = f"{BASE}/CodeSystem/payment-kind"
EXT = f"{BASE}/StructureDefinition"
ICD10_ALIASES = {"ICD-10", "ICD10", "icd-10", "icd10", ICD10, "2.16.156.10011.2.3.3.11.1"}


def _ts(value: datetime) -> str:
    return value.isoformat()


_PLAIN = re.compile(r"[A-Za-z0-9._~/-]*")  # what quote() leaves as it is, and "/"


@lru_cache(maxsize=4096)
def _quoted_system(system: str) -> str:
    return quote(system, safe="")


def _if_none_exist(system: str, value: str) -> str:
    """``identifier=system|value``, URL-encoded (the common plain values — an order or fee
    line number is often ``visit/line`` — skip the encoder)."""
    v = value.replace("/", "%2F") if _PLAIN.fullmatch(value) else quote(value, safe="")
    return f"identifier={_quoted_system(system)}%7C{v}"


def _entry(resource: J, system: str, value: str) -> J:
    rid = deterministic_id(system, value)
    return {
        "fullUrl": f"urn:uuid:{rid}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"],
                    "ifNoneExist": _if_none_exist(system, value)},
    }


def _ident(system: str, value: str) -> J:
    return {"system": system, "value": value}


def _ref(entry: J) -> J:
    return {"reference": entry["fullUrl"]}


def _local(org: str, kind: str, code: str, display: str) -> J:
    return {"coding": [{"system": org_scoped(org, kind), "code": code, "display": display}],
            "text": display}


def _qty(value: Decimal, unit: str | None) -> J:
    q: J = {"value": value}
    if unit:
        q["unit"] = unit
    return q


class _Visit:
    """Renders one visit; holds the shared references while the resources are built."""

    def __init__(self, env: Envelope):
        self.env = env
        self.v: OutpatientVisit = env.visit
        self.org = self.v.org.code
        self.when = _ts(self.v.visit_time)
        self.tr = env.translated

    # -- participants --------------------------------------------------------------------
    def organization(self) -> J:
        o = self.v.org
        res = {"resourceType": "Organization", "identifier": [_ident(ORGANIZATION, o.code)],
               "active": True, "name": o.name}
        return _entry(res, ORGANIZATION, o.code)

    def practitioner(self) -> J:
        d, system = self.v.doctor, org_scoped(self.org, "practitioner")
        res = {"resourceType": "Practitioner", "identifier": [_ident(system, d.code)],
               "name": [{"text": d.name}]}
        return _entry(res, system, d.code)

    def patient(self) -> J:
        p, ident, tr = self.v.patient, self.env.identity, self.env.translated
        res: J = {
            "resourceType": "Patient",
            "identifier": [
                {"type": {"coding": [{"system": CARD_TYPE, "code": ctype}]},
                 "system": system, "value": value}
                for ctype, system, value in ident.identifiers
            ] + [{"system": EMPI_SYSTEM, "value": ident.person_id}],
            "name": [{"use": "official", "text": p.name}],
            "gender": tr.gender,
        }
        if p.ethnicity:
            res = {"resourceType": "Patient", "extension": [{
                "url": f"{EXT}/patient-ethnicity",
                "valueCoding": {"system": GBT_3304, "code": p.ethnicity}}], **res}
        if p.birth_date:
            res["birthDate"] = p.birth_date.isoformat()
        if p.phone:
            res["telecom"] = [{"system": "phone", "value": p.phone, "use": "mobile"}]
        if p.address:
            res["address"] = [{"use": "home", "text": p.address}]
        _ctype, system, value = ident.identifiers[0]
        entry = _entry(res, system, value)
        entry["fullUrl"] = f"urn:uuid:{ident.person_id}"
        if self.env.event == "update":  # ADT^A08: the details change — a conditional update
            entry["request"] = {"method": "PUT",
                                "url": f"Patient?{entry['request']['ifNoneExist']}"}
        return entry

    # -- the visit ---------------------------------------------------------------------
    def encounter(self, patient: J, org: J, doctor: J, diagnoses: list[J]) -> J:
        v, system = self.v, org_scoped(self.org, "visit")
        emergency = v.visit_type is VisitType.EMERGENCY
        res: J = {
            "resourceType": "Encounter",
            "identifier": [_ident(system, v.visit_no),
                           {"system": OUTPATIENT_NO, "value": v.visit_no, "assigner": _ref(org)}],
            "status": "finished",
            "class": {"system": V3_ACT, "code": "EMER" if emergency else "AMB",
                      "display": "emergency" if emergency else "ambulatory"},
            "serviceType": _local(self.org, "department", v.department.code, v.department.name),
            "subject": _ref(patient),
            "participant": [{"type": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "ATND", "display": "attender"}]}], "individual": _ref(doctor)}],
            "period": {"start": self.when},
            "serviceProvider": _ref(org),
        }
        if v.payment:
            parts: list[J] = [{"url": "kind", "valueCode": v.payment.kind}]
            if v.payment.insurance_type:
                parts.append({"url": "insuranceType", "valueCoding": {
                    "system": NHSA_INSUTYPE, "code": v.payment.insurance_type}})
            res = {"resourceType": "Encounter",
                   "extension": [{"url": f"{EXT}/encounter-payment", "extension": parts}], **res}
        if v.chief_complaint:
            res["reasonCode"] = [{"text": v.chief_complaint}]
        if diagnoses:
            res["diagnosis"] = [
                {"condition": _ref(e), "rank": i + 1} for i, e in enumerate(diagnoses)
            ]
        return _entry(res, system, v.visit_no)

    def _condition(self, key: str, code: J, category: J, patient: J, encounter_url: str) -> J:
        system = org_scoped(self.org, "condition")
        value = f"{self.v.visit_no}/{key}"
        res = {
            "resourceType": "Condition",
            "identifier": [_ident(system, value)],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            "category": [category],
            "code": code,
            "subject": _ref(patient),
            "encounter": {"reference": encounter_url},
            "recordedDate": self.when,
        }
        return _entry(res, system, value)

    def diagnoses(self, patient: J, encounter_url: str) -> list[J]:
        # The primary diagnosis first: Encounter.diagnosis.rank follows this order.
        ordered = sorted(self.v.diagnoses, key=lambda d: not d.primary)
        category = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}
        out = []
        for d in ordered:
            system = ICD10 if d.system in ICD10_ALIASES else d.system
            code = {"coding": [{"system": system, "code": d.code, "display": d.name}], "text": d.name}
            if d.code in self.tr.diagnosis_codes and system != ICD10:
                code["coding"].append({"system": ICD10, "code": self.tr.diagnosis_codes[d.code]})
            out.append(self._condition(f"dx/{d.code}", code, category, patient, encounter_url))
        return out

    def symptoms(self, patient: J, encounter_url: str) -> list[J]:
        category = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "problem-list-item"}, {"system": f"{BASE}/CodeSystem/condition-category",
                                           "code": "symptom", "display": "symptom"}]}
        out = []
        for i, s in enumerate(self.v.symptoms):
            code: J = {"text": s.text}
            if s.code:
                code["coding"] = [{"system": s.code.system, "code": s.code.code,
                                   **({"display": s.code.display} if s.code.display else {})}]
            entry = self._condition(f"symptom/{i + 1}", code, category, patient, encounter_url)
            if s.onset:
                entry["resource"]["onsetDateTime"] = s.onset.isoformat()
            out.append(entry)
        return out

    # -- orders and results ------------------------------------------------------------
    def service_requests(self, patient: J, encounter_url: str, doctor: J) -> dict[str, J]:
        system = org_scoped(self.org, "order")
        out: dict[str, J] = {}
        for kind, orders, cat in (
            ("lab", self.v.labs, ("108252007", "Laboratory procedure")),
            ("exam", self.v.exams, ("103693007", "Diagnostic procedure")),
        ):
            for o in orders:
                res = {
                    "resourceType": "ServiceRequest",
                    "identifier": [_ident(system, o.order_no)],
                    "status": "active", "intent": "order",
                    "category": [{"coding": [{"system": "http://snomed.info/sct",
                                              "code": cat[0], "display": cat[1]}]}],
                    "code": _local(self.org, f"{kind}-item", o.code, o.name),
                    "subject": _ref(patient),
                    "encounter": {"reference": encounter_url},
                    "authoredOn": self.when,
                    "requester": _ref(doctor),
                }
                out[o.order_no] = _entry(res, system, o.order_no)
        return out

    def medication_requests(self, patient: J, encounter_url: str, doctor: J) -> list[J]:
        system = org_scoped(self.org, "order")
        out = []
        for d in self.v.drugs:
            dosage: J = {}
            text = " ".join(x for x in (
                f"{d.dose.value}{d.dose.unit or ''}" if d.dose else None, d.route, d.frequency) if x)
            if text:
                dosage["text"] = text
            if d.frequency:
                dosage["timing"] = {"code": {"text": d.frequency}}
            if d.route:
                dosage["route"] = {"text": d.route}
            if d.dose:
                dosage["doseAndRate"] = [{"doseQuantity": _qty(d.dose.value, d.dose.unit)}]
            med = _local(self.org, "drug", d.code, d.name)
            if d.order_no in self.tr.drug_codes:
                med["coding"].append({"system": NHSA_LIST, "code": self.tr.drug_codes[d.order_no]})
            if d.strength:
                med["text"] = f"{d.name} {d.strength}"
            res: J = {
                "resourceType": "MedicationRequest",
                "identifier": [_ident(system, d.order_no)],
                "status": "active", "intent": "order",
                "medicationCodeableConcept": med,
                "subject": _ref(patient),
                "encounter": {"reference": encounter_url},
                "authoredOn": self.when,
                "requester": _ref(doctor),
            }
            if dosage:
                res["dosageInstruction"] = [dosage]
            dispense: J = {}
            if d.quantity:
                dispense["quantity"] = _qty(d.quantity.value, d.quantity.unit)
            if d.days is not None:
                dispense["expectedSupplyDuration"] = {
                    "value": d.days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
            if dispense:
                res["dispenseRequest"] = dispense
            out.append(_entry(res, system, d.order_no))
        return out

    def observation(self, r: LabResult, i: int, patient: J, encounter_url: str,
                    orders: dict[str, J]) -> J:
        system = org_scoped(self.org, "observation")
        value = f"{self.v.visit_no}/{r.order_no or '-'}/{r.code}/{i + 1}"
        res: J = {
            "resourceType": "Observation",
            "identifier": [_ident(system, value)],
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory", "display": "Laboratory"}]}],
            "code": _local(self.org, "lab-result", r.code, r.name),
            "subject": _ref(patient),
            "encounter": {"reference": encounter_url},
            "effectiveDateTime": _ts(r.issued) if r.issued else self.when,
        }
        if r.order_no and r.order_no in orders:
            res["basedOn"] = [_ref(orders[r.order_no])]
        if r.value is not None:
            res["valueQuantity"] = _qty(r.value, r.unit)
        else:
            res["valueString"] = r.value_text
        if r.abnormal_flag:
            res["interpretation"] = [{"coding": [{"system": V3_INTERP, "code": r.abnormal_flag.value}]}]
        if r.reference_range:
            rr: J = {}
            if r.reference_range.low is not None:
                rr["low"] = _qty(r.reference_range.low, r.unit)
            if r.reference_range.high is not None:
                rr["high"] = _qty(r.reference_range.high, r.unit)
            if r.reference_range.text:
                rr["text"] = r.reference_range.text
            if rr:
                res["referenceRange"] = [rr]
        return _entry(res, system, value)

    def charge_items(self, patient: J, encounter_url: str, org: J) -> list[J]:
        system = org_scoped(self.org, "fee")
        out = []
        for f in self.v.fees:
            value = f"{self.v.visit_no}/{f.line_no}"
            code = _local(self.org, "fee-item", f.item_code, f.name)
            national = f.national_code or self.tr.fee_codes.get(f.line_no)
            if national:
                code["coding"].append({"system": NHSA_LIST, "code": national})
            ext = [
                {"url": f"{EXT}/chargeitem-unit-price",
                 "valueMoney": {"value": f.unit_price, "currency": "CNY"}},
                {"url": f"{EXT}/chargeitem-category",
                 "valueCoding": {"system": NHSA_CHRGITM_TYPE, "code": f.category}},
            ]
            if f.insurance_class:
                ext.append({"url": f"{EXT}/chargeitem-insurance-class",
                            "valueCoding": {"system": NHSA_CHRGITM_LV, "code": f.insurance_class}})
            res = {
                "resourceType": "ChargeItem",
                "extension": ext,
                "identifier": [_ident(system, value)],
                "status": "billable",
                "code": code,
                "subject": _ref(patient),
                "context": {"reference": encounter_url},
                "occurrenceDateTime": self.when,
                "performingOrganization": _ref(org),
                "quantity": {"value": f.quantity},
                "priceOverride": {"value": f.amount, "currency": "CNY"},
            }
            out.append(_entry(res, system, value))
        return out

    def provenance(self, targets: list[J], org: J) -> J:
        rid = deterministic_id(org_scoped(self.org, "visit-provenance"), self.v.visit_no)
        entity = [{"role": "source", "what": {"identifier": {
            "system": org_scoped(self.org, "submission"), "value": self.env.tracking_id}}}]
        res: J = {
            "resourceType": "Provenance",
            "id": rid,
            "target": [_ref(t) for t in targets],
            "recorded": _ts(self.env.received_at),
            "activity": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]},
            "agent": [{"type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author"}]}, "who": _ref(org)}],
            "entity": entity,
        }
        policies = [v for v in (self.env.translated.map_versions if self.env.translated else ())]
        if policies:
            res["policy"] = policies
        return {"fullUrl": f"urn:uuid:{rid}", "resource": res,
                "request": {"method": "PUT", "url": f"Provenance/{rid}"}}

    def bundle(self) -> J:
        org, doctor, patient = self.organization(), self.practitioner(), self.patient()
        enc_system = org_scoped(self.org, "visit")
        encounter_url = f"urn:uuid:{deterministic_id(enc_system, self.v.visit_no)}"
        diagnoses = self.diagnoses(patient, encounter_url)
        encounter = self.encounter(patient, org, doctor, diagnoses)
        orders = self.service_requests(patient, encounter_url, doctor)
        clinical = [
            *diagnoses,
            *self.symptoms(patient, encounter_url),
            *self.medication_requests(patient, encounter_url, doctor),
            *orders.values(),
            *(self.observation(r, i, patient, encounter_url, orders)
              for i, r in enumerate(self.v.results)),
            *self.charge_items(patient, encounter_url, org),
        ]
        entries = [org, doctor, patient, encounter, *clinical]
        entries.append(self.provenance([patient, encounter, *clinical], org))
        return {
            "resourceType": "Bundle",
            "identifier": _ident(org_scoped(self.org, "submission"), self.env.tracking_id),
            "type": "transaction",
            "timestamp": _ts(self.env.received_at),
            "entry": entries,
        }


def render_bundle(env: Envelope) -> J:
    """The FHIR R4 transaction Bundle for an identified, translated visit."""
    return _Visit(env).bundle()
