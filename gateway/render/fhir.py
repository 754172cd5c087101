"""Canonical visit → FHIR R4 transaction Bundle.

Rendered straight to JSON-ready dicts (the validate stage then checks the whole Bundle
against the ``yikatong-visit-bundle`` profile). Every resource has a business identifier; its
``fullUrl`` is ``urn:uuid:`` + uuid5 of that identifier, and it is sent as a conditional
create (``ifNoneExist``) on it, so re-sending a visit creates nothing new. Provenance,
which has no identifier, is a PUT to a deterministic id. No clock, no random: the same
envelope always renders the same bytes.

A rendered Bundle is never changed afterwards (validate reads it, route serialises it):
its fixed parts — codings and categories that are the same in every Bundle — are built
once and shared by all Bundles, and the references to the visit's Patient, Encounter,
Organization and Practitioner are shared by its resources. Whoever wants to change a
Bundle must change a deep copy (``copy.deepcopy``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from pydantic_core import TzInfo

from gateway.envelope import Envelope
from gateway.identifiers import (
    BASE,
    ICD10,
    ORGANIZATION,
    OUTPATIENT_NO,
    deterministic_id,
    name_based_id,
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
_UNIT_PRICE = f"{EXT}/chargeitem-unit-price"
_CATEGORY = f"{EXT}/chargeitem-category"
_INSURANCE_CLASS = f"{EXT}/chargeitem-insurance-class"
_ETHNICITY = f"{EXT}/patient-ethnicity"
ICD10_ALIASES = {"ICD-10", "ICD10", "icd-10", "icd10", ICD10, "2.16.156.10011.2.3.3.11.1"}

# The fixed parts of the resources, built once and shared by every Bundle (see above: a
# rendered Bundle is never changed).
_ACTIVE = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
_CONFIRMED = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]}
_DIAGNOSIS_CATEGORY = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
    "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}]
_SYMPTOM_CATEGORY = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
    "code": "problem-list-item"}, {"system": f"{BASE}/CodeSystem/condition-category",
                                   "code": "symptom", "display": "symptom"}]}]
_AMBULATORY = {"system": V3_ACT, "code": "AMB", "display": "ambulatory"}
_EMERGENCY = {"system": V3_ACT, "code": "EMER", "display": "emergency"}
_ATTENDER = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "code": "ATND", "display": "attender"}]}]
_LAB_CATEGORY = [{"coding": [{"system": "http://snomed.info/sct",
                              "code": "108252007", "display": "Laboratory procedure"}]}]
_EXAM_CATEGORY = [{"coding": [{"system": "http://snomed.info/sct",
                               "code": "103693007", "display": "Diagnostic procedure"}]}]
_LABORATORY = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "laboratory", "display": "Laboratory"}]}]
_CREATE = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]}
_AUTHOR = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
    "code": "author"}]}


_TWO = tuple(f"{i:02d}" for i in range(100))  # 7 → "07": months, days, hours, ...
# A UTC offset → how isoformat() writes it ("+08:00"); None (no offset) → nothing. Filled
# as offsets are met (whole minutes, well under a hundred in practice; bounded all the same).
_OFFSETS: dict[timedelta | None, str] = {None: "", timedelta(0): "+00:00",
                                          timedelta(hours=8): "+08:00"}


def _ts(value: datetime) -> str:
    """``value.isoformat()``, the same text at a fraction of the cost (``isoformat`` formats
    each field with printf): a four-digit year and an offset met before take the short
    way, anything else ``isoformat`` itself."""
    tz = value.tzinfo
    if type(tz) is TzInfo or type(tz) is timezone:
        # a fixed offset (pydantic's zone for the visit's times, datetime's for the receipt
        # time): asked of the zone itself, the same timedelta as value.utcoffset() at less
        # than half the cost (datetime calls the zone's method by name, with checks)
        offset = tz.utcoffset(value)
    else:
        offset = value.utcoffset()
    suffix = _OFFSETS[offset] if offset in _OFFSETS else None  # (see _keys)
    year = value.year
    if suffix is None or year < 1000 or type(value) is not datetime:
        return _isoformat(value, offset)
    micro = value.microsecond
    if micro:
        # ".ffffff": the digits of 1000000 + micro after its "1" (format's "06d" costs
        # three times as much)
        suffix = f".{str(1000000 + micro)[1:]}{suffix}"
    return (f"{year}-{_TWO[value.month]}-{_TWO[value.day]}T{_TWO[value.hour]}:"
            f"{_TWO[value.minute]}:{_TWO[value.second]}{suffix}")


def _isoformat(value: datetime, offset: timedelta | None) -> str:
    text = value.isoformat()
    if value.year >= 1000 and len(_OFFSETS) < 256:  # learn how the offset is written:
        # after "YYYY-MM-DDTHH:MM:SS" and, when there are microseconds, ".ffffff"
        _OFFSETS[offset] = text[26:] if value.microsecond else text[19:]
    return text


def _day(value: date) -> str:
    """``value.isoformat()`` of a date, the same way as :func:`_ts`."""
    year = value.year
    if year < 1000 or type(value) is not date:
        return value.isoformat()
    return f"{year}-{_TWO[value.month]}-{_TWO[value.day]}"


_PLAIN = re.compile(r"[A-Za-z0-9._~/-]*")  # what quote() leaves as it is, and "/"
_plain = _PLAIN.fullmatch  # bound once (no method looked up and bound for each value)
_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]")  # what quote(…, safe="") encodes
_PERCENT = {chr(i): f"%{i:02X}" for i in range(128)}
_QUOTED: dict[str, str] = {}  # identifier system → quoted (a few dozen: bounded anyway)


def _percent(match: re.Match) -> str:
    char = match[0]
    return _PERCENT.get(char) or quote(char, safe="")


def _if_none_exist(system: str, value: str) -> str:
    """``identifier=system|value``, URL-encoded as ``quote(…, safe="")`` does. The common
    plain values — an order or fee line number is often ``visit/line`` — only have their
    "/" replaced; others ("NEUT%") have each character quote() would encode replaced by
    its encoding (the UTF-8 of a string is that of its characters one after another), at
    a fraction of quote()'s cost."""
    if system in _QUOTED:  # (see _keys)
        quoted = _QUOTED[system]
    else:
        if len(_QUOTED) >= 4096:
            _QUOTED.clear()
        quoted = _QUOTED[system] = quote(system, safe="")
    if _plain(value):
        v = value.replace("/", "%2F")
    else:
        v = _UNSAFE.sub(_percent, value)
    return f"identifier={quoted}%7C{v}"


# (system, value) → (fullUrl, ifNoneExist) of a business identifier. The hospital, its
# doctors, the patient, the visit and its diagnoses come again in each message of a visit;
# strings only (immutable), so sharing them between Bundles is safe. Emptied when full.
_KEYS: dict[tuple[str, str], tuple[str, str]] = {}
_KEYS_MAX = 65536


def _keys(system: str, value: str) -> tuple[str, str]:
    key = (system, value)
    # `in` and a subscript, not .get(): compiled, a dict's .get is a Python method call
    # (the name looked up, a bound method made) that costs several times both
    if key in _KEYS:
        return _KEYS[key]
    if len(_KEYS) >= _KEYS_MAX:
        _KEYS.clear()
    found = _KEYS[key] = (f"urn:uuid:{name_based_id(system, value)}",
                          _if_none_exist(system, value))
    return found


def _entry(resource: J, system: str, value: str) -> J:
    full_url, if_none_exist = _keys(system, value)
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"],
                    "ifNoneExist": if_none_exist},
    }


def _ident(system: str, value: str) -> J:
    return {"system": system, "value": value}


def _ref(entry: J) -> J:
    return {"reference": entry["fullUrl"]}


def _concept(system: str, code: str, display: str) -> J:
    """A new CodeableConcept of one code (the caller may still add to it)."""
    return {"coding": [{"system": system, "code": code, "display": display}],
            "text": display}


# Parts made of a few codes, which come again in visit after visit (a hospital's fee items
# and lab tests, the charge categories, the card types): each made once and shared by the
# Bundles (which are never changed). Key → part; emptied when full.
_SHARED: dict[tuple, J] = {}
_SHARED_MAX = 65536


def _share(key: tuple, part: J) -> J:
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[key] = part
    return part


def _local(system: str, code: str, display: str, national: str | None = None) -> J:
    """The CodeableConcept of a hospital's own code, with its NHSA list code when there is
    one; shared."""
    key = ("local", system, code, display, national)
    if key in _SHARED:  # (see _keys)
        return _SHARED[key]
    found = _concept(system, code, display)
    if national:
        found["coding"].append({"system": NHSA_LIST, "code": national})
    return _share(key, found)


def _coded_extension(url: str, system: str, code: str) -> J:
    """``{"url": url, "valueCoding": {"system": system, "code": code}}``, shared."""
    key = ("extension", url, system, code)
    if key in _SHARED:  # (see _keys)
        return _SHARED[key]
    return _share(key, {"url": url, "valueCoding": {"system": system, "code": code}})


def _card_type(ctype: str) -> J:
    """A Patient identifier's type: the card it is from; shared."""
    key = ("card", ctype)
    if key in _SHARED:  # (see _keys)
        return _SHARED[key]
    return _share(key, {"coding": [{"system": CARD_TYPE, "code": ctype}]})


def _qty(value: Decimal, unit: str | None) -> J:
    q: J = {"value": value}
    if unit:
        q["unit"] = unit
    return q


# The systems of the numbers a hospital assigns itself (org_scoped), made once per
# organisation: org code → kind → system. Strings only, and the inner dicts are only
# read, so a visit shares its organisation's. Emptied when full.
_KINDS = ("practitioner", "visit", "department", "condition", "order", "lab-item",
          "exam-item", "drug", "observation", "lab-result", "fee", "fee-item",
          "visit-provenance", "submission")
_ORG_SYSTEMS: dict[str, dict[str, str]] = {}


def org_systems(org: str) -> dict[str, str]:
    if org in _ORG_SYSTEMS:  # (see _keys)
        return _ORG_SYSTEMS[org]
    if len(_ORG_SYSTEMS) >= 4096:
        _ORG_SYSTEMS.clear()
    found = _ORG_SYSTEMS[org] = {kind: org_scoped(org, kind) for kind in _KINDS}
    return found


class _Visit:
    """Renders one visit; holds the shared references while the resources are built.

    Each resource is built as the dict it is sent as, keys in their final order (the same
    order gives the same bytes); the visit's fields are read once into locals (a pydantic
    model's attribute costs some ten times a local's)."""

    def __init__(self, env: Envelope):
        self.env = env
        v = self.v = env.visit
        self.org = v.org.code
        self.sys = org_systems(self.org)
        self.visit_no = v.visit_no
        self.when = _ts(v.visit_time)
        self.tr = env.translated

    # -- participants --------------------------------------------------------------------
    def organization(self) -> J:
        o = self.v.org
        code = o.code
        res = {"resourceType": "Organization", "identifier": [_ident(ORGANIZATION, code)],
               "active": True, "name": o.name}
        return _entry(res, ORGANIZATION, code)

    def practitioner(self) -> J:
        d, system = self.v.doctor, self.sys["practitioner"]
        code = d.code
        res = {"resourceType": "Practitioner", "identifier": [_ident(system, code)],
               "name": [{"text": d.name}]}
        return _entry(res, system, code)

    def patient(self) -> J:
        p, ident, tr = self.v.patient, self.env.identity, self.tr
        res: J = {"resourceType": "Patient"}
        ethnicity = p.ethnicity
        if ethnicity:
            res["extension"] = [_coded_extension(_ETHNICITY, GBT_3304, ethnicity)]
        identifiers = ident.identifiers
        res["identifier"] = [
            {"type": _card_type(ctype), "system": system, "value": value}
            for ctype, system, value in identifiers
        ] + [{"system": EMPI_SYSTEM, "value": ident.person_id}]
        res["name"] = [{"use": "official", "text": p.name}]
        res["gender"] = tr.gender
        birth_date, phone, address = p.birth_date, p.phone, p.address
        if birth_date:
            res["birthDate"] = _day(birth_date)
        if phone:
            res["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
        if address:
            res["address"] = [{"use": "home", "text": address}]
        # the person's id is the Patient's: the conditional create is on the strongest card
        _ctype, system, value = identifiers[0]
        if_none_exist = _keys(system, value)[1]
        if self.env.event == "update":  # ADT^A08: the details change — a conditional update
            request = {"method": "PUT", "url": f"Patient?{if_none_exist}"}
        else:
            request = {"method": "POST", "url": "Patient", "ifNoneExist": if_none_exist}
        return {"fullUrl": f"urn:uuid:{ident.person_id}", "resource": res, "request": request}

    # -- the visit ---------------------------------------------------------------------
    def encounter(self, patient: J, org: J, doctor: J, diagnoses: list[J]) -> J:
        """``patient``, ``org``, ``doctor``: the references to them."""
        v, visit_no = self.v, self.visit_no
        system = self.sys["visit"]
        emergency = v.visit_type is VisitType.EMERGENCY
        res: J = {"resourceType": "Encounter"}
        payment = v.payment
        if payment:
            parts: list[J] = [{"url": "kind", "valueCode": payment.kind}]
            insurance_type = payment.insurance_type
            if insurance_type:
                parts.append({"url": "insuranceType", "valueCoding": {
                    "system": NHSA_INSUTYPE, "code": insurance_type}})
            res["extension"] = [{"url": f"{EXT}/encounter-payment", "extension": parts}]
        department = v.department
        res["identifier"] = [_ident(system, visit_no),
                             {"system": OUTPATIENT_NO, "value": visit_no, "assigner": org}]
        res["status"] = "finished"
        res["class"] = _EMERGENCY if emergency else _AMBULATORY
        res["serviceType"] = _local(self.sys["department"], department.code, department.name)
        res["subject"] = patient
        res["participant"] = [{"type": _ATTENDER, "individual": doctor}]
        res["period"] = {"start": self.when}
        res["serviceProvider"] = org
        chief_complaint = v.chief_complaint
        if chief_complaint:
            res["reasonCode"] = [{"text": chief_complaint}]
        if diagnoses:
            res["diagnosis"] = [
                {"condition": _ref(e), "rank": i + 1} for i, e in enumerate(diagnoses)
            ]
        return _entry(res, system, visit_no)

    def _condition(self, system: str, key: str, code: J, category: list[J], patient: J,
                   encounter: J) -> J:
        value = f"{self.visit_no}/{key}"
        res = {
            "resourceType": "Condition",
            "identifier": [_ident(system, value)],
            "clinicalStatus": _ACTIVE,
            "verificationStatus": _CONFIRMED,
            "category": category,
            "code": code,
            "subject": patient,
            "encounter": encounter,
            "recordedDate": self.when,
        }
        return _entry(res, system, value)

    def diagnoses(self, patient: J, encounter: J) -> list[J]:
        out: list[J] = []
        if not self.v.diagnoses:
            return out
        # The primary diagnosis first: Encounter.diagnosis.rank follows this order.
        ordered = sorted(self.v.diagnoses, key=lambda d: not d.primary)
        system = self.sys["condition"]
        to_icd10 = self.tr.diagnosis_codes
        for d in ordered:
            code, name = d.code, d.name
            coding_system = ICD10 if d.system in ICD10_ALIASES else d.system
            coded = {"coding": [{"system": coding_system, "code": code, "display": name}],
                     "text": name}
            if coding_system != ICD10 and code in to_icd10:
                coded["coding"].append({"system": ICD10, "code": to_icd10[code]})
            out.append(self._condition(system, f"dx/{code}", coded, _DIAGNOSIS_CATEGORY,
                                       patient, encounter))
        return out

    def symptoms(self, patient: J, encounter: J) -> list[J]:
        out: list[J] = []
        if not self.v.symptoms:
            return out
        system = self.sys["condition"]
        for i, s in enumerate(self.v.symptoms):
            code: J = {"text": s.text}
            sc = s.code
            if sc:
                display = sc.display
                code["coding"] = [{"system": sc.system, "code": sc.code,
                                   **({"display": display} if display else {})}]
            entry = self._condition(system, f"symptom/{i + 1}", code, _SYMPTOM_CATEGORY,
                                    patient, encounter)
            onset = s.onset
            if onset:
                entry["resource"]["onsetDateTime"] = _day(onset)
            out.append(entry)
        return out

    # -- orders and results ------------------------------------------------------------
    def service_requests(self, patient: J, encounter: J, doctor: J) -> dict[str, J]:
        out: dict[str, J] = {}
        v = self.v
        labs, exams = v.labs, v.exams
        if not labs and not exams:
            return out
        when = self.when
        system = self.sys["order"]
        for item_system, orders, category in (
            (self.sys["lab-item"], labs, _LAB_CATEGORY),
            (self.sys["exam-item"], exams, _EXAM_CATEGORY),
        ):
            for o in orders:
                order_no = o.order_no
                res = {
                    "resourceType": "ServiceRequest",
                    "identifier": [_ident(system, order_no)],
                    "status": "active", "intent": "order",
                    "category": category,
                    "code": _local(item_system, o.code, o.name),
                    "subject": patient,
                    "encounter": encounter,
                    "authoredOn": when,
                    "requester": doctor,
                }
                out[order_no] = _entry(res, system, order_no)
        return out

    def medication_requests(self, patient: J, encounter: J, doctor: J) -> list[J]:
        out: list[J] = []
        drugs = self.v.drugs
        if not drugs:
            return out
        when = self.when
        system = self.sys["order"]
        to_nhsa, drug_system = self.tr.drug_codes, self.sys["drug"]
        for d in drugs:
            dose, route, frequency = d.dose, d.route, d.frequency
            order_no, name, strength = d.order_no, d.name, d.strength
            dosage: J = {}
            text = " ".join(x for x in (
                f"{dose.value}{dose.unit or ''}" if dose else None, route, frequency) if x)
            if text:
                dosage["text"] = text
            if frequency:
                dosage["timing"] = {"code": {"text": frequency}}
            if route:
                dosage["route"] = {"text": route}
            if dose:
                dosage["doseAndRate"] = [{"doseQuantity": _qty(dose.value, dose.unit)}]
            med = _concept(drug_system, d.code, name)
            if order_no in to_nhsa:
                med["coding"].append({"system": NHSA_LIST, "code": to_nhsa[order_no]})
            if strength:
                med["text"] = f"{name} {strength}"
            res: J = {
                "resourceType": "MedicationRequest",
                "identifier": [_ident(system, order_no)],
                "status": "active", "intent": "order",
                "medicationCodeableConcept": med,
                "subject": patient,
                "encounter": encounter,
                "authoredOn": when,
                "requester": doctor,
            }
            if dosage:
                res["dosageInstruction"] = [dosage]
            dispense: J = {}
            quantity, days = d.quantity, d.days
            if quantity:
                dispense["quantity"] = _qty(quantity.value, quantity.unit)
            if days is not None:
                dispense["expectedSupplyDuration"] = {
                    "value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
            if dispense:
                res["dispenseRequest"] = dispense
            out.append(_entry(res, system, order_no))
        return out

    def observations(self, patient: J, encounter: J, orders: dict[str, J]) -> list[J]:
        out: list[J] = []
        results = self.v.results
        if not results:
            return out
        system = self.sys["observation"]
        based_on = {order_no: [_ref(entry)] for order_no, entry in orders.items()}
        for i, r in enumerate(results):
            out.append(self.observation(system, r, i, patient, encounter, based_on))
        return out

    def observation(self, system: str, r: LabResult, i: int, patient: J, encounter: J,
                    based_on: dict[str, list[J]]) -> J:
        """``based_on``: order number → the basedOn of the results of that order."""
        order_no, code, unit, issued = r.order_no, r.code, r.unit, r.issued
        value = f"{self.visit_no}/{order_no or '-'}/{code}/{i + 1}"
        res: J = {
            "resourceType": "Observation",
            "identifier": [_ident(system, value)],
            "status": "final",
            "category": _LABORATORY,
            "code": _local(self.sys["lab-result"], code, r.name),
            "subject": patient,
            "encounter": encounter,
            "effectiveDateTime": _ts(issued) if issued else self.when,
        }
        if order_no and order_no in based_on:
            res["basedOn"] = based_on[order_no]
        number = r.value
        if number is not None:
            res["valueQuantity"] = _qty(number, unit)
        else:
            res["valueString"] = r.value_text
        flag = r.abnormal_flag
        if flag:
            res["interpretation"] = [{"coding": [{"system": V3_INTERP, "code": flag.value}]}]
        ref_range = r.reference_range
        if ref_range:
            rr: J = {}
            low, high, text = ref_range.low, ref_range.high, ref_range.text
            if low is not None:
                rr["low"] = _qty(low, unit)
            if high is not None:
                rr["high"] = _qty(high, unit)
            if text:
                rr["text"] = text
            if rr:
                res["referenceRange"] = [rr]
        return _entry(res, system, value)

    def charge_items(self, patient: J, encounter: J, org: J) -> list[J]:
        out: list[J] = []
        fees = self.v.fees
        if not fees:
            return out
        visit_no, when = self.visit_no, self.when
        system = self.sys["fee"]
        to_nhsa, item_system = self.tr.fee_codes, self.sys["fee-item"]
        for f in fees:
            line_no, insurance_class = f.line_no, f.insurance_class
            value = f"{visit_no}/{line_no}"
            code = _local(item_system, f.item_code, f.name,
                          f.national_code or (to_nhsa[line_no] if line_no in to_nhsa else None))
            ext = [
                {"url": _UNIT_PRICE, "valueMoney": {"value": f.unit_price, "currency": "CNY"}},
                _coded_extension(_CATEGORY, NHSA_CHRGITM_TYPE, f.category),
            ]
            if insurance_class:
                ext.append(_coded_extension(_INSURANCE_CLASS, NHSA_CHRGITM_LV, insurance_class))
            res = {
                "resourceType": "ChargeItem",
                "extension": ext,
                "identifier": [_ident(system, value)],
                "status": "billable",
                "code": code,
                "subject": patient,
                "context": encounter,
                "occurrenceDateTime": when,
                "performingOrganization": org,
                "quantity": {"value": f.quantity},
                "priceOverride": {"value": f.amount, "currency": "CNY"},
            }
            out.append(_entry(res, system, value))
        return out

    def provenance(self, targets: list[J], org: J, recorded: str) -> J:
        """``org``: the reference to the organisation."""
        env = self.env
        rid = deterministic_id(self.sys["visit-provenance"], self.visit_no)
        entity = [{"role": "source", "what": {"identifier": {
            "system": self.sys["submission"], "value": env.tracking_id}}}]
        res: J = {
            "resourceType": "Provenance",
            "id": rid,
            "target": [{"reference": t["fullUrl"]} for t in targets],
            "recorded": recorded,
            "activity": _CREATE,
            "agent": [{"type": _AUTHOR, "who": org}],
            "entity": entity,
        }
        tr = self.tr
        policies = list(tr.map_versions) if tr else []
        if policies:
            res["policy"] = policies
        return {"fullUrl": f"urn:uuid:{rid}", "resource": res,
                "request": {"method": "PUT", "url": f"Provenance/{rid}"}}

    def bundle(self) -> J:
        org, doctor, patient = self.organization(), self.practitioner(), self.patient()
        # one reference to each, shared by the resources that refer to it
        org_ref, doctor_ref, patient_ref = _ref(org), _ref(doctor), _ref(patient)
        encounter_ref = {"reference": _keys(self.sys["visit"], self.visit_no)[0]}
        diagnoses = self.diagnoses(patient_ref, encounter_ref)
        encounter = self.encounter(patient_ref, org_ref, doctor_ref, diagnoses)
        orders = self.service_requests(patient_ref, encounter_ref, doctor_ref)
        clinical = [
            *diagnoses,
            *self.symptoms(patient_ref, encounter_ref),
            *self.medication_requests(patient_ref, encounter_ref, doctor_ref),
            *orders.values(),
            *self.observations(patient_ref, encounter_ref, orders),
            *self.charge_items(patient_ref, encounter_ref, org_ref),
        ]
        entries = [org, doctor, patient, encounter, *clinical]
        env = self.env
        recorded = _ts(env.received_at)
        entries.append(self.provenance([patient, encounter, *clinical], org_ref, recorded))
        return {
            "resourceType": "Bundle",
            "identifier": _ident(self.sys["submission"], env.tracking_id),
            "type": "transaction",
            "timestamp": recorded,
            "entry": entries,
        }


def render_bundle(env: Envelope) -> J:
    """The FHIR R4 transaction Bundle for an identified, translated visit."""
    return _Visit(env).bundle()
