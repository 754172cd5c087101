"""Canonical visit → HL7 v2.5 messages (ER7), built and structure-checked with hl7apy.

    to_v2(visit, "ADT^A04", control_id="…", now=datetime.now(CST)) -> bytes

Every position follows ``adapters/hl7v2/FIELDS.md`` (the inbound mapping reads the same
table, so v2 → canonical → v2 keeps the fields listed there). One small function per
segment, named after it.

Supported messages (MSH-9 → hl7apy structure):

* ``ADT^A04`` (ADT_A01): MSH, EVN, PID, PV1, PV2 (when there is a chief complaint), DG1*
* ``ADT^A08`` (ADT_A01): MSH, EVN, PID, PV1
* ``ORU^R01`` (ORU_R01): MSH, PID, PV1, then per order ORC, OBR, OBX*. Every lab order is
  written, with the results whose ``order_no`` is its number; an exam order only when
  results point at it (OBR-24 ``OTH``). Results whose ``order_no`` names no order of the
  visit are grouped under an ORC/OBR carrying that number, with OBR-4 = the first such
  result's code/name; results without an ``order_no`` each get an OBR of their own (no
  ORC, no OBR-2) whose OBR-4 is the result's own code/name. A visit with neither lab
  orders nor results has nothing to report: ``ValueError``.
* ``DFT^P03`` (DFT_P03): MSH, EVN, PID, PV1, FT1* (in the FINANCIAL group); at least one fee
  is required by the structure, else ``ValueError``.
* ``ORM^O01`` (ORM_O01): MSH, PID, PV1, (ORC, OBR)* — exam orders, then lab orders.
* ``RDE^O11`` (RDE_O11): MSH, PID, PV1, (ORC, RXE, TQ1, RXR)* — one per drug. v2.5 requires
  RXE-3/RXE-5 (dose) and RXR-1 (route): a drug without them gives ``ValueError``.

Text is escaped here, not by hl7apy: hl7apy's own escaping leaves a literal ``\\F\\`` in a
value unescaped and turns ``\\.br\\`` into ``\\E\\.br\\E\\``. Values are escaped with
:func:`escape` and handed to hl7apy as already-encoded leaves (:class:`_Encoded`), so the
ER7 text is exactly what this module wrote. After building, hl7apy's validator checks the
structure (segments, groups, cardinalities, required fields, datatypes) — see
:func:`validate`; hl7apy reports lengths and table values only as warnings, not raised.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from hl7apy.base_datatypes import TextualDataType
from hl7apy.core import Message, Segment, is_base_datatype
from hl7apy.exceptions import ValidationError
from hl7apy.validation import Validator

from gateway.identifiers import CardType
from gateway.visit import (
    CardIdentifier,
    Coded,
    DrugOrder,
    FeeItem,
    LabResult,
    OutpatientVisit,
    ReferenceRange,
    ServiceOrder,
    VisitType,
)
from terminology.translate import GBT_2261_1, V2_0001, translate

__all__ = ["MESSAGES", "escape", "to_v2", "validate"]

VERSION = "2.5"
SENDING_APPLICATION = "YKT-GATEWAY"

# Python codec name → MSH-18 (HL7 table 0211).
CHARSETS = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000"}

# PID-3: card type → (assigning authority, identifier type); see FIELDS.md.
CITIZEN_ID_AUTHORITY = ("CITIZEN", "2.16.156.10011.1.3", "ISO")
CARD_AUTHORITIES: dict[CardType, tuple[str, str]] = {
    CardType.SSC_CARD_NO: ("SSC", "SS"),
    CardType.SSC_CARD_ID: ("SSCID", "SS"),
    CardType.HEALTH_CARD: ("HEALTHCARD", "HC"),
    CardType.EHEALTH_CARD: ("EHC", "HC"),
    CardType.NHSA_EVOUCHER: ("NHSAEV", "PI"),
    CardType.YILIAN_CODE: ("YLM", "PI"),
}

DIAGNOSIS_SYSTEMS = {"ICD-10": "I10"}  # canonical system → DG1-3.3; others written as they are

# A field value: a string, or a tuple of components (each a string or a tuple of
# subcomponents); None or "" leaves a position empty. A string given for a composite
# element goes to its first component (and subcomponent): HL7's own reading.
Value = str | tuple | None


# ----------------------------------------------------------------------- encoding
_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})
_NEWLINE = re.compile(r"\r\n|\r|\n")


def escape(text: str) -> str:
    """HL7 v2 escaping with the default delimiters ``|^~\\&``; line breaks become ``\\.br\\``."""
    return _NEWLINE.sub(lambda _: "\\.br\\", text.translate(_ESCAPES))


class _Encoded(TextualDataType):
    """A leaf value that is already ER7 text: hl7apy writes it as it is.

    ``classname`` answers the element's own datatype, which hl7apy uses when it wraps a
    value into a component or subcomponent.
    """

    def __init__(self, er7: str, datatype: str | None):
        super().__init__(er7, max_length=None)
        self._datatype = datatype or "ST"

    @property
    def classname(self) -> str:
        return self._datatype

    def to_er7(self, encoding_chars=None) -> str:
        return self.value


def _empty(value: Value) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, tuple) and all(_empty(v) for v in value)


def _fill(element, value: Value) -> None:
    """Write ``value`` (raw text, escaped here) into a field, component or subcomponent."""
    datatype = element.datatype
    if datatype == "varies":  # OBX-5: let hl7apy make its one component, then set the leaf
        element.value = "x"
        leaf = element.children[0].children[0]
        leaf.value = _Encoded(escape(value), leaf.datatype)
        return
    if isinstance(value, str) and datatype and not is_base_datatype(datatype, VERSION):
        value = (value,)
    if isinstance(value, str):
        element.value = _Encoded(escape(value), datatype)
        return
    for index, part in enumerate(value, 1):
        if not _empty(part):
            _fill(getattr(element, f"{datatype.lower()}_{index}"), part)


def _segment(name: str, fields: dict[int, Value | list[Value]],
             segment: Segment | None = None) -> Segment:
    """A segment from {field number: value, or a list of repetitions}."""
    segment = segment or Segment(name, version=VERSION)
    for number, value in fields.items():
        for repetition in value if isinstance(value, list) else [value]:
            if not _empty(repetition):
                _fill(segment.add_field(f"{name}_{number}"), repetition)
    return segment


def _dtm(moment: datetime) -> str:
    """YYYYMMDDHHMMSS+ZZZZ with the moment's own offset (none when it has none)."""
    return moment.strftime("%Y%m%d%H%M%S%z")


def _date(day: date) -> str:
    return day.strftime("%Y%m%d")


def _number(value: Decimal) -> str:
    """A decimal with the digits the canonical has (never float, never exponent form)."""
    return format(value, "f")


# ----------------------------------------------------------------------- segments
def _msh(visit: OutpatientVisit, msh_9: tuple[str, str, str], control_id: str, now: datetime,
         receiving_application: str, receiving_facility: str, charset: str) -> Segment:
    segment = Segment("MSH", version=VERSION)
    segment.msh_1 = "|"  # MSH-1 and MSH-2 are the delimiters themselves, never escaped
    segment.msh_2 = "^~\\&"
    return _segment("MSH", {
        3: SENDING_APPLICATION,
        4: visit.org.code,
        5: receiving_application,
        6: receiving_facility,
        7: _dtm(now),
        9: msh_9,
        10: control_id,
        11: "P",
        12: VERSION,
        18: CHARSETS[charset],
    }, segment)


def _evn(trigger: str, now: datetime) -> Segment:
    return _segment("EVN", {1: trigger, 2: _dtm(now)})


def _cx(card: CardIdentifier, org_code: str) -> tuple:
    """PID-3 repetition: value^^^authority^type."""
    if card.type is CardType.CITIZEN_ID:
        return (card.value, None, None, CITIZEN_ID_AUTHORITY, "NNCHN")
    if card.type is CardType.HOSPITAL_CARD:  # issuer defaults to the sending organisation
        return (card.value, None, None, card.issuer or org_code, "PI")
    namespace, identifier_type = CARD_AUTHORITIES[card.type]
    return (card.value, None, None, namespace, identifier_type)


def _sex(sex: Coded) -> str:
    """PID-8 (table 0001): kept when already v2-0001, else via GB/T 2261.1; U if unmapped."""
    direct = translate(sex.system, sex.code, V2_0001)
    if direct:
        return direct.code
    national = translate(sex.system, sex.code, GBT_2261_1)
    v2 = translate(GBT_2261_1, national.code, V2_0001) if national else None
    return v2.code if v2 else "U"


def _pid(visit: OutpatientVisit) -> Segment:
    patient = visit.patient
    return _segment("PID", {
        1: "1",
        3: [_cx(card, visit.org.code) for card in patient.cards],
        5: patient.name,  # whole name in PID-5.1 (XPN.1.1)
        7: _date(patient.birth_date) if patient.birth_date else None,
        8: _sex(patient.sex),
        11: patient.address,  # PID-11.1 (XAD.1.1)
        13: patient.phone,
        22: patient.ethnicity,
    })


def _pv1(visit: OutpatientVisit) -> Segment:
    payment = visit.payment
    if payment is None:
        financial_class = None
    elif payment.kind == "self_pay":
        financial_class = "SP"
    else:
        financial_class = payment.insurance_type or "INS"
    location = (visit.department.code, *[None] * 7, visit.department.name)  # PV1-3.1, PV1-3.9
    return _segment("PV1", {
        1: "1",
        2: "E" if visit.visit_type is VisitType.EMERGENCY else "O",
        3: location,
        7: (visit.doctor.code, visit.doctor.name),
        19: visit.visit_no,
        20: financial_class,
        44: _dtm(visit.visit_time),
    })


def _pv2(visit: OutpatientVisit) -> Segment:
    return _segment("PV2", {3: (None, visit.chief_complaint)})


def _dg1(visit: OutpatientVisit) -> Iterator[Segment]:
    for set_id, diagnosis in enumerate(visit.diagnoses, 1):
        system = DIAGNOSIS_SYSTEMS.get(diagnosis.system, diagnosis.system)
        yield _segment("DG1", {
            1: str(set_id),
            3: (diagnosis.code, diagnosis.name, system),
            6: "F",
            15: "1" if diagnosis.primary else None,
        })


def _orc(order_control: str, order_no: str | None) -> Segment:
    return _segment("ORC", {1: order_control, 2: order_no})


def _obr(set_id: int, order_no: str | None, code: str, name: str, section: str) -> Segment:
    return _segment("OBR", {1: str(set_id), 2: order_no, 4: (code, name), 24: section})


def _reference_range(reference: ReferenceRange | None) -> str | None:
    """OBX-7: ``low-high``; one-sided ranges as HL7 writes them (``>low``, ``<high``)."""
    if reference is None:
        return None
    if reference.low is not None and reference.high is not None:
        return f"{_number(reference.low)}-{_number(reference.high)}"
    if reference.low is not None:
        return f">{_number(reference.low)}"
    if reference.high is not None:
        return f"<{_number(reference.high)}"
    return reference.text


def _obx(set_id: int, result: LabResult) -> Segment:
    numeric = result.value is not None
    return _segment("OBX", {
        1: str(set_id),
        2: "NM" if numeric else "ST",
        3: (result.code, result.name),
        5: _number(result.value) if numeric else result.value_text,
        6: result.unit,
        7: _reference_range(result.reference_range),
        8: result.abnormal_flag.value if result.abnormal_flag else None,
        11: "F",
        14: _dtm(result.issued) if result.issued else None,
    })


_STRENGTH = re.compile(r"^(\d+(?:\.\d+)?)\s*([A-Za-zµμ%/\u4e00-\u9fff]+)$")


def _rxe(drug: DrugOrder) -> Segment:
    strength = _STRENGTH.match(drug.strength or "")  # written only as number + unit
    return _segment("RXE", {
        1: (None, drug.frequency, f"D{drug.days}" if drug.days is not None else None),
        2: (drug.code, drug.name),
        3: _number(drug.dose.value) if drug.dose else None,
        5: drug.dose.unit if drug.dose else None,
        10: _number(drug.quantity.value) if drug.quantity else None,
        11: drug.quantity.unit if drug.quantity else None,
        25: strength.group(1) if strength else None,
        26: strength.group(2) if strength else None,
    })


def _tq1(drug: DrugOrder) -> Segment:
    """The v2.5 timing segment RDE^O11 requires: frequency and duration again."""
    days = (str(drug.days), "d") if drug.days is not None else None
    return _segment("TQ1", {1: "1", 3: drug.frequency, 6: days})


def _rxr(drug: DrugOrder) -> Segment:
    return _segment("RXR", {1: drug.route})


def _ft1(set_id: int, fee: FeeItem, visit: OutpatientVisit) -> Segment:
    national = (fee.national_code, None, "NHSA") if fee.national_code else ()
    return _segment("FT1", {
        1: str(set_id),
        2: fee.line_no,
        4: _dtm(visit.visit_time),  # transaction date: required by v2.5, not mapped inbound
        6: "CG",
        7: (fee.item_code, fee.name, None, *national),
        10: _number(fee.quantity),
        11: _number(fee.amount),
        12: _number(fee.unit_price),
        14: fee.insurance_class,
        17: fee.category,
    })


# ----------------------------------------------------------------------- messages
def _adt(message: Message, visit: OutpatientVisit, trigger: str, now: datetime) -> None:
    message.add(_evn(trigger, now))
    message.add(_pid(visit))
    message.add(_pv1(visit))
    if trigger == "A04":
        if visit.chief_complaint:
            message.add(_pv2(visit))
        for segment in _dg1(visit):
            message.add(segment)


def _observation_orders(visit: OutpatientVisit
                        ) -> Iterator[tuple[str | None, str, str, str, list[LabResult]]]:
    """(order_no, OBR-4 code, OBR-4 name, OBR-24, results) for each ORU order group."""
    by_order: dict[str | None, list[LabResult]] = {}
    for result in visit.results:
        by_order.setdefault(result.order_no, []).append(result)
    for lab in visit.labs:
        yield lab.order_no, lab.code, lab.name, "LAB", by_order.pop(lab.order_no, [])
    for exam in visit.exams:
        if exam.order_no in by_order:
            yield exam.order_no, exam.code, exam.name, "OTH", by_order.pop(exam.order_no)
    unordered = by_order.pop(None, [])
    for order_no, results in by_order.items():  # numbers that name no order of this visit
        yield order_no, results[0].code, results[0].name, "LAB", results
    for result in unordered:
        yield None, result.code, result.name, "LAB", [result]


def _oru(message: Message, visit: OutpatientVisit, trigger: str, now: datetime) -> None:
    orders = list(_observation_orders(visit))
    if not orders:
        raise ValueError("ORU^R01: the visit has no lab orders and no results")
    patient_result = message.add_group("ORU_R01_PATIENT_RESULT")
    patient = patient_result.add_group("ORU_R01_PATIENT")
    patient.add(_pid(visit))
    patient.add_group("ORU_R01_VISIT").add(_pv1(visit))
    for set_id, (order_no, code, name, section, results) in enumerate(orders, 1):
        group = patient_result.add_group("ORU_R01_ORDER_OBSERVATION")
        if order_no is not None:
            group.add(_orc("RE", order_no))
        group.add(_obr(set_id, order_no, code, name, section))
        for obx_id, result in enumerate(results, 1):
            group.add_group("ORU_R01_OBSERVATION").add(_obx(obx_id, result))


def _dft(message: Message, visit: OutpatientVisit, trigger: str, now: datetime) -> None:
    if not visit.fees:
        raise ValueError("DFT^P03: the visit has no fee items (FT1 is required)")
    message.add(_evn(trigger, now))
    message.add(_pid(visit))
    message.add(_pv1(visit))
    for set_id, fee in enumerate(visit.fees, 1):
        message.add_group("DFT_P03_FINANCIAL").add(_ft1(set_id, fee, visit))


def _patient_groups(message: Message, visit: OutpatientVisit, structure: str) -> None:
    patient = message.add_group(f"{structure}_PATIENT")
    patient.add(_pid(visit))
    patient.add_group(f"{structure}_PATIENT_VISIT").add(_pv1(visit))


def _orm(message: Message, visit: OutpatientVisit, trigger: str, now: datetime) -> None:
    orders: list[tuple[ServiceOrder, str]] = [(e, "OTH") for e in visit.exams]
    orders += [(lab, "LAB") for lab in visit.labs]
    if not orders:
        raise ValueError("ORM^O01: the visit has no exam or lab orders")
    _patient_groups(message, visit, "ORM_O01")
    for set_id, (order, section) in enumerate(orders, 1):
        group = message.add_group("ORM_O01_ORDER")
        group.add(_orc("NW", order.order_no))
        detail = group.add_group("ORM_O01_ORDER_DETAIL")
        choice = detail.add_group("ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP")
        choice.add(_obr(set_id, order.order_no, order.code, order.name, section))


def _rde(message: Message, visit: OutpatientVisit, trigger: str, now: datetime) -> None:
    if not visit.drugs:
        raise ValueError("RDE^O11: the visit has no drug orders")
    for drug in visit.drugs:
        missing = [what for what, value in (("dose (RXE-3/RXE-5)", drug.dose and drug.dose.unit),
                                            ("route (RXR-1)", drug.route)) if not value]
        if missing:
            raise ValueError(f"RDE^O11: drug order {drug.order_no} has no {' or '.join(missing)},"
                             " which v2.5 requires")
    _patient_groups(message, visit, "RDE_O11")
    for drug in visit.drugs:
        group = message.add_group("RDE_O11_ORDER")
        group.add(_orc("NW", drug.order_no))
        group.add(_rxe(drug))
        group.add_group("RDE_O11_TIMING_ENCODED").add(_tq1(drug))
        group.add(_rxr(drug))


# Choice groups hl7apy validates as if they were sequences (every alternative required).
_CHOICE_GROUPS = ("ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP",)


def validate(msg: Message, message: str = "") -> None:
    """hl7apy's structural validation (also of parsed messages); ``ValueError`` on the first
    real error. hl7apy's false alarm on choice groups (``_CHOICE_GROUPS``) is ignored."""
    message = message or msg.name
    try:
        msg.validate()
        return
    except ValidationError as exc:
        first = str(exc)
    if not first.startswith(tuple(f"Missing required child {g}." for g in _CHOICE_GROUPS)):
        raise ValueError(f"{message}: hl7apy validation failed: {first}")
    # Only the choice-group false alarm was raised: read every error from a report.
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.txt"
        try:
            Validator.validate(msg, reference=msg.reference, report_file=str(report))
        except ValidationError:
            pass
        errors = [line.removeprefix("Error: ") for line in report.read_text().splitlines()
                  if line.startswith("Error: ")]
    for error in errors:
        if not any(error.startswith(f"Missing required child {g}.") for g in _CHOICE_GROUPS):
            raise ValueError(f"{message}: hl7apy validation failed: {error}")


Builder = Callable[[Message, OutpatientVisit, str, datetime], None]

# MSH-9 "type^trigger" → (hl7apy structure, builder)
MESSAGES: dict[str, tuple[str, Builder]] = {
    "ADT^A04": ("ADT_A01", _adt),
    "ADT^A08": ("ADT_A01", _adt),
    "ORU^R01": ("ORU_R01", _oru),
    "DFT^P03": ("DFT_P03", _dft),
    "ORM^O01": ("ORM_O01", _orm),
    "RDE^O11": ("RDE_O11", _rde),
}


def to_v2(visit: OutpatientVisit, message: str, *, control_id: str, now: datetime,
          receiving_application: str = "", receiving_facility: str = "",
          charset: str = "utf-8") -> bytes:
    """One HL7 v2.5 message for ``visit``, ER7 with ``\\r`` after every segment, encoded.

    ``message`` is MSH-9 type^trigger (see ``MESSAGES``); ``charset`` is a Python codec
    name, ``utf-8`` or ``gb18030`` (MSH-18 says which). ``now`` (MSH-7, EVN-2) must carry
    its UTC offset. Raises ``ValueError`` for an unknown message or charset, a visit with
    nothing for that message, or a message hl7apy finds structurally invalid.
    """
    try:
        structure, build = MESSAGES[message]
    except KeyError:
        raise ValueError(f"unsupported message {message!r}; one of {', '.join(MESSAGES)}") from None
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        codec = charset
    if codec not in CHARSETS:
        raise ValueError(f"unsupported charset {charset!r}; one of {', '.join(CHARSETS)}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now needs a UTC offset (MSH-7 is written with it)")
    message_type, trigger = message.split("^")

    msg = Message(structure, version=VERSION)
    msg.msh = _msh(visit, (message_type, trigger, structure), control_id, now,
                   receiving_application, receiving_facility, codec)
    build(msg, visit, trigger, now)
    validate(msg, message)
    return (msg.to_er7() + "\r").encode(codec)

