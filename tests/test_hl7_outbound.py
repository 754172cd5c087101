"""Canonical visit → HL7 v2.5 (gateway.hl7.outbound): positions per adapters/hl7v2/FIELDS.md.

Every message is parsed back with hl7apy (structure and version checked, then validated
again), and fields are read from the parsed message.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hl7apy.core import SubComponent
from hl7apy.parser import parse_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import synth
from gateway.hl7.outbound import MESSAGES, escape, to_v2, validate
from gateway.identifiers import CardType
from gateway.visit import (
    CardIdentifier,
    Coded,
    Diagnosis,
    FeeItem,
    LabResult,
    OutpatientVisit,
    ReferenceRange,
    ServiceOrder,
    VisitType,
)

BASIC = Path(__file__).parent / "golden" / "canonical" / "basic" / "input.json"
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 1, 10, 0, 5, tzinfo=CST)
STRUCTURES = {"ADT^A04": "ADT_A01", "ORU^R01": "ORU_R01", "DFT^P03": "DFT_P03",
              "ORM^O01": "ORM_O01", "RDE^O11": "RDE_O11", "ADT^A08": "ADT_A01"}


@pytest.fixture(scope="module")
def basic() -> OutpatientVisit:
    return OutpatientVisit.model_validate_json(BASIC.read_text(encoding="utf-8"))


def _with(visit: OutpatientVisit, **changes) -> OutpatientVisit:
    """A changed copy, validated again."""
    return OutpatientVisit.model_validate({**visit.model_dump(), **changes})


def _patient(visit: OutpatientVisit, **changes) -> OutpatientVisit:
    return _with(visit, patient={**visit.patient.model_dump(), **changes})


def build(visit: OutpatientVisit, message: str, charset: str = "utf-8", **kwargs):
    """(ER7 text, hl7apy message parsed back from it), after the structure checks."""
    data = to_v2(visit, message, control_id=kwargs.pop("control_id", "CTRL0001"), now=NOW,
                 charset=charset, **kwargs)
    assert isinstance(data, bytes)
    text = data.decode(charset)
    assert text.endswith("\r") and "\n" not in text
    msg = parse_message(text, find_groups=True)
    assert msg.name == STRUCTURES[message]
    assert msg.version == "2.5"
    assert msg.msh.msh_9.to_er7() == f"{message}^{STRUCTURES[message]}"
    if message != "RDE^O11":  # hl7apy's parser files RDE's TQ1 (after RXE) under ORDER.TIMING
        validate(msg)  # still valid once parsed by someone else (hl7apy; choice-group fix)
    return text, msg


def segment_names(text: str) -> list[str]:
    return [line.split("|", 1)[0] for line in text.split("\r") if line]


def raw(element) -> str:
    """The leaf text as it stands in the message (hl7apy keeps escape sequences as read)."""
    while not isinstance(element, SubComponent):
        assert len(element.children) == 1, f"{element} was split into {len(element.children)}"
        element = element.children[0]
    return element.value.value


_UNESCAPE = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", ".br": "\n"}


def unescape(text: str) -> str:
    return re.sub(r"\\(F|S|T|R|E|\.br)\\", lambda m: _UNESCAPE[m.group(1)], text)


def observations(msg):
    """[(ORC-2, OBR, [OBX, ...]), ...] of a parsed ORU^R01."""
    out = []
    for group in msg.oru_r01_patient_result.oru_r01_order_observation:
        orcs = group.children.get("ORC")
        obxs = [o.obx for o in group.children.get("ORU_R01_OBSERVATION")]
        out.append((orcs[0].orc_2.to_er7() if orcs else None, group.obr, obxs))
    return out


# -------------------------------------------------------------------------- MSH
def test_msh_exact(basic):
    text, msg = build(basic, "ADT^A04", receiving_application="EMPI", receiving_facility="CITY")
    assert text.split("\r")[0] == (
        "MSH|^~\\&|YKT-GATEWAY|H11010101|EMPI|CITY|20260301100005+0800||ADT^A04^ADT_A01"
        "|CTRL0001|P|2.5||||||UNICODE UTF-8")
    assert msg.msh.msh_4.hd_1.to_er7() == basic.org.code
    assert msg.msh.msh_10.to_er7() == "CTRL0001"
    assert msg.msh.msh_18.to_er7() == "UNICODE UTF-8"
    assert msg.msh.msh_17.to_er7() == ""


def test_msh_time_keeps_its_offset(basic):
    text = to_v2(basic, "ADT^A08", control_id="1",
                 now=datetime(2026, 3, 1, 2, 0, 5, tzinfo=UTC)).decode()
    assert "|20260301020005+0000||ADT^A08^ADT_A01|" in text


@pytest.mark.parametrize("message, names", [
    ("ADT^A04", ["MSH", "EVN", "PID", "PV1", "PV2", "DG1", "DG1"]),
    ("ADT^A08", ["MSH", "EVN", "PID", "PV1"]),
    ("ORU^R01", ["MSH", "PID", "PV1", "ORC", "OBR", "OBX", "OBX"]),
    ("DFT^P03", ["MSH", "EVN", "PID", "PV1", "FT1", "FT1", "FT1", "FT1"]),
    ("ORM^O01", ["MSH", "PID", "PV1", "ORC", "OBR", "ORC", "OBR"]),
    ("RDE^O11", ["MSH", "PID", "PV1", "ORC", "RXE", "TQ1", "RXR"]),
])
def test_segments(basic, message, names):
    text, _ = build(basic, message)
    assert segment_names(text) == names


def test_evn(basic):
    _, msg = build(basic, "DFT^P03")
    assert msg.evn.evn_1.to_er7() == "P03"
    assert msg.evn.evn_2.to_er7() == "20260301100005+0800"


# -------------------------------------------------------------------------- PID
def test_pid_identifiers(basic):
    _, msg = build(basic, "ADT^A04")
    assert [rep.to_er7() for rep in msg.pid.pid_3] == [
        "JZK00088123^^^H11010101^PI",  # hospital card without issuer: the sender's
        "110101198506150019^^^CITIZEN&2.16.156.10011.1.3&ISO^NNCHN",
        "X00000019^^^SSC^SS",
        "110100D156000005000000000000A1B2^^^SSCID^SS",
        "104450000000198^^^YLM^PI",
    ]
    citizen = msg.pid.pid_3[1]
    assert citizen.cx_1.to_er7() == "110101198506150019"
    assert citizen.cx_4.hd_1.to_er7() == "CITIZEN"
    assert citizen.cx_4.hd_2.to_er7() == "2.16.156.10011.1.3"
    assert citizen.cx_4.hd_3.to_er7() == "ISO"
    assert citizen.cx_5.to_er7() == "NNCHN"


def test_pid_every_card_type(basic):
    cards = [
        CardIdentifier(type=CardType.HEALTH_CARD, value="HC1"),
        CardIdentifier(type=CardType.EHEALTH_CARD, value="EHC1"),
        CardIdentifier(type=CardType.NHSA_EVOUCHER, value="EV1"),
        CardIdentifier(type=CardType.HOSPITAL_CARD, value="OTHER1", issuer="H99"),
        CardIdentifier(type=CardType.SSC_CARD_ID, value="SID1"),
    ]
    visit = _patient(basic, cards=[c.model_dump() for c in cards])
    _, msg = build(visit, "ADT^A04")
    assert [rep.to_er7() for rep in msg.pid.pid_3] == [
        "HC1^^^HEALTHCARD^HC", "EHC1^^^EHC^HC", "EV1^^^NHSAEV^PI", "OTHER1^^^H99^PI",
        "SID1^^^SSCID^SS"]


def test_pid_demographics(basic):
    _, msg = build(basic, "ADT^A04")
    pid = msg.pid
    assert pid.pid_1.to_er7() == "1"
    assert pid.pid_5.xpn_1.to_er7() == "张伟"
    assert pid.pid_5.to_er7() == "张伟"  # no 5.2: Chinese name whole in 5.1
    assert pid.pid_7.to_er7() == "19850615"
    assert pid.pid_8.to_er7() == "M"
    assert pid.pid_11.xad_1.to_er7() == "北京市东城区和平里街道1号"
    assert pid.pid_13.xtn_1.to_er7() == "13812345678"
    assert pid.pid_22.ce_1.to_er7() == "01"


def test_pid_optional_demographics_absent(basic):
    visit = _patient(basic, birth_date=None, phone=None, address=None, ethnicity=None)
    text, msg = build(visit, "ADT^A04")
    pid = next(line for line in text.split("\r") if line.startswith("PID|"))
    assert pid.split("|")[7:] == ["", "M"]  # nothing after PID-8, PID-7 empty
    assert msg.pid.pid_8.to_er7() == "M"


@pytest.mark.parametrize("system, code, expected", [
    ("urn:oid:2.16.156.10011.2.3.3.4", "1", "M"),
    ("urn:oid:2.16.156.10011.2.3.3.4", "2", "F"),
    ("urn:oid:2.16.156.10011.2.3.3.4", "0", "U"),
    ("urn:oid:2.16.156.10011.2.3.3.4", "9", "U"),
    ("GB/T 2261.1", "2", "F"),
    ("http://terminology.hl7.org/CodeSystem/v2-0001", "F", "F"),
    ("http://terminology.hl7.org/CodeSystem/v2-0001", "A", "A"),  # v2 codes are kept
    ("HL70001", "O", "O"),
    ("http://hl7.org/fhir/administrative-gender", "female", "F"),
    ("http://hl7.org/fhir/administrative-gender", "male", "M"),
    ("local-sex-table", "X", "U"),  # unmapped
])
def test_pid_8_sex(basic, system, code, expected):
    visit = _patient(basic, sex=Coded(system=system, code=code).model_dump())
    _, msg = build(visit, "ADT^A08")
    assert msg.pid.pid_8.to_er7() == expected


# -------------------------------------------------------------------------- PV1 / PV2
def test_pv1(basic):
    _, msg = build(basic, "ADT^A04")
    pv1 = msg.pv1
    assert pv1.pv1_2.to_er7() == "O"
    assert pv1.pv1_3.pl_1.to_er7() == "0301"
    assert pv1.pv1_3.pl_9.to_er7() == "呼吸内科"
    assert pv1.pv1_7.xcn_1.to_er7() == "D0457"
    assert pv1.pv1_7.xcn_2.to_er7() == "王建国"
    assert pv1.pv1_19.cx_1.to_er7() == "MZ20260301000123"
    assert pv1.pv1_19.to_er7() == "MZ20260301000123"
    assert pv1.pv1_20.fc_1.to_er7() == "310"
    assert pv1.pv1_44.to_er7() == "20260301093000+0800"


@pytest.mark.parametrize("payment, expected", [
    ({"kind": "self_pay"}, "SP"),
    ({"kind": "insured"}, "INS"),
    ({"kind": "insured", "insurance_type": "390"}, "390"),
    (None, ""),
])
def test_pv1_20_payment(basic, payment, expected):
    _, msg = build(_with(basic, payment=payment), "ADT^A04")
    assert msg.pv1.pv1_20.to_er7() == expected


def test_pv1_emergency_and_own_offset(basic):
    visit = _with(basic, visit_type=VisitType.EMERGENCY,
                  visit_time=datetime(2026, 3, 1, 1, 30, tzinfo=UTC))
    _, msg = build(visit, "ADT^A04")
    assert msg.pv1.pv1_2.to_er7() == "E"
    assert msg.pv1.pv1_44.to_er7() == "20260301013000+0000"


def test_pv2_chief_complaint(basic):
    _, msg = build(basic, "ADT^A04")
    assert msg.pv2.pv2_3.ce_2.to_er7() == "咳嗽、发热3天"
    assert msg.pv2.pv2_3.ce_1.to_er7() == ""
    text, _ = build(_with(basic, chief_complaint=None), "ADT^A04")
    assert "PV2" not in segment_names(text)


# -------------------------------------------------------------------------- DG1
def test_dg1(basic):
    _, msg = build(basic, "ADT^A04")
    dg1 = msg.children.get("DG1")
    assert [d.dg1_1.to_er7() for d in dg1] == ["1", "2"]
    assert dg1[0].dg1_3.to_er7() == "J06.900^急性上呼吸道感染^I10"
    assert dg1[0].dg1_3.ce_3.to_er7() == "I10"
    assert [d.dg1_6.to_er7() for d in dg1] == ["F", "F"]
    assert [d.dg1_15.to_er7() for d in dg1] == ["1", ""]


def test_dg1_other_system_kept(basic):
    visit = _with(basic, diagnoses=[
        Diagnosis(system="GB/T 15657", code="BNP010", name="感冒", primary=False).model_dump()])
    _, msg = build(visit, "ADT^A04")
    assert msg.dg1.dg1_3.to_er7() == "BNP010^感冒^GB/T 15657"
    assert msg.dg1.dg1_15.to_er7() == ""


# -------------------------------------------------------------------------- ORU
def test_oru_observations(basic):
    _, msg = build(basic, "ORU^R01")
    assert msg.oru_r01_patient_result.oru_r01_patient.pid.pid_5.to_er7() == "张伟"
    assert msg.oru_r01_patient_result.oru_r01_patient.oru_r01_visit.pv1.pv1_19.to_er7() \
        == "MZ20260301000123"
    [(orc_2, obr, obxs)] = observations(msg)
    assert orc_2 == "LB001"
    assert obr.obr_2.to_er7() == "LB001"
    assert obr.obr_4.to_er7() == "JY0001^血常规"
    assert obr.obr_24.to_er7() == "LAB"
    wbc, hgb = obxs
    assert [wbc.obx_1.to_er7(), hgb.obx_1.to_er7()] == ["1", "2"]
    assert wbc.obx_2.to_er7() == "NM"
    assert wbc.obx_3.to_er7() == "WBC^白细胞计数"
    assert wbc.obx_5.to_er7() == "11.2"
    assert wbc.obx_6.ce_1.to_er7() == "10*9/L"
    assert wbc.obx_7.to_er7() == "3.5-9.5"
    assert wbc.obx_8.to_er7() == "H"
    assert wbc.obx_11.to_er7() == "F"
    assert hgb.obx_5.to_er7() == "145"
    assert hgb.obx_8.to_er7() == "N"


def test_oru_text_result_ranges_and_issued(basic):
    issued = datetime(2026, 3, 1, 11, 5, 30, tzinfo=CST)
    results = [
        LabResult(order_no="LB001", code="UPRO", name="尿蛋白", value_text="阴性",
                  reference_range=ReferenceRange(text="阴性"), abnormal_flag="N", issued=issued),
        LabResult(order_no="LB001", code="CRP", name="C反应蛋白", value=Decimal("3.20"),
                  unit="mg/L", reference_range=ReferenceRange(high=Decimal(10)), abnormal_flag="N"),
        LabResult(order_no="LB001", code="HDL", name="高密度脂蛋白", value=Decimal("0.90"),
                  unit="mmol/L", reference_range=ReferenceRange(low=Decimal("1.04")),
                  abnormal_flag="L"),
    ]
    visit = _with(basic, results=[r.model_dump() for r in results])
    _, msg = build(visit, "ORU^R01")
    [(_, _, (upro, crp, hdl))] = observations(msg)
    assert upro.obx_2.to_er7() == "ST"
    assert upro.obx_5.to_er7() == "阴性"
    assert upro.obx_7.to_er7() == "阴性"
    assert upro.obx_14.to_er7() == "20260301110530+0800"
    assert crp.obx_5.to_er7() == "3.20"
    assert crp.obx_7.to_er7() == "<10"
    assert crp.obx_14.to_er7() == ""
    assert hdl.obx_7.to_er7() == ">1.04"
    assert hdl.obx_8.to_er7() == "L"


def test_oru_results_without_their_order(basic):
    """Unordered results get an OBR each (OBR-4 = own code); exam results go under the exam."""
    results = [
        LabResult(order_no=None, code="GLU", name="葡萄糖", value=Decimal("5.6")),
        LabResult(order_no="LB001", code="WBC", name="白细胞计数", value=Decimal("6.1")),
        LabResult(order_no="EX001", code="IMP", name="印象", value_text="两肺纹理增粗"),
        LabResult(order_no="LB999", code="K", name="钾", value=Decimal("4.1")),
        LabResult(order_no="LB999", code="NA", name="钠", value=Decimal(140)),
        LabResult(order_no=None, code="CL", name="氯", value=Decimal(101)),
    ]
    visit = _with(basic, results=[r.model_dump() for r in results])
    text, msg = build(visit, "ORU^R01")
    groups = observations(msg)
    summary = [(orc_2, obr.obr_2.to_er7(), obr.obr_4.to_er7(), obr.obr_24.to_er7(),
                [o.obx_3.ce_1.to_er7() for o in obxs])
               for orc_2, obr, obxs in groups]
    assert summary == [
        ("LB001", "LB001", "JY0001^血常规", "LAB", ["WBC"]),
        ("EX001", "EX001", "JC0101^胸部正位X线摄影", "OTH", ["IMP"]),
        ("LB999", "LB999", "K^钾", "LAB", ["K", "NA"]),
        (None, "", "GLU^葡萄糖", "LAB", ["GLU"]),
        (None, "", "CL^氯", "LAB", ["CL"]),
    ]
    assert [obr.obr_1.to_er7() for _, obr, _ in groups] == ["1", "2", "3", "4", "5"]
    assert segment_names(text).count("ORC") == 3


def test_oru_lab_without_results_still_written(basic):
    labs = [*basic.labs, ServiceOrder(order_no="LB002", code="JY0002", name="尿常规")]
    _, msg = build(_with(basic, labs=[lab.model_dump() for lab in labs]), "ORU^R01")
    assert [(orc, len(obxs)) for orc, _, obxs in observations(msg)] == [("LB001", 2), ("LB002", 0)]


def test_oru_needs_something_to_report(basic):
    with pytest.raises(ValueError, match="no lab orders and no results"):
        to_v2(_with(basic, labs=[], results=[]), "ORU^R01", control_id="1", now=NOW)


# -------------------------------------------------------------------------- DFT
def test_ft1(basic):
    _, msg = build(basic, "DFT^P03")
    ft1 = [group.ft1 for group in msg.dft_p03_financial]
    assert len(ft1) == 4
    drug = ft1[1]
    assert drug.ft1_1.to_er7() == "2"
    assert drug.ft1_2.to_er7() == "2"
    assert drug.ft1_4.to_er7() == "20260301093000+0800"
    assert drug.ft1_6.to_er7() == "CG"
    assert drug.ft1_7.to_er7() == "YP0012^阿莫西林胶囊^^XJ01CAA040A001010104346^^NHSA"
    assert drug.ft1_7.ce_4.to_er7() == "XJ01CAA040A001010104346"
    assert drug.ft1_7.ce_6.to_er7() == "NHSA"
    assert drug.ft1_10.to_er7() == "30"
    assert drug.ft1_11.cp_1.to_er7() == "10.50"
    assert drug.ft1_12.cp_1.to_er7() == "0.35"
    assert drug.ft1_14.ce_1.to_er7() == "01"
    assert drug.ft1_17.to_er7() == "09"
    assert ft1[0].ft1_7.to_er7() == "GH001^普通门诊挂号费"  # no national code: no 7.4/7.6
    assert ft1[3].ft1_14.to_er7() == "02"
    assert [f.ft1_17.to_er7() for f in ft1] == ["14", "09", "04", "03"]


def test_dft_needs_fees(basic):
    with pytest.raises(ValueError, match="no fee items"):
        to_v2(_with(basic, fees=[]), "DFT^P03", control_id="1", now=NOW)


def test_decimals_keep_their_digits(basic):
    fee = FeeItem(line_no="9", item_code="X1", name="棉签", category="08",
                  unit_price=Decimal("0.3500"), quantity=Decimal("2.000"), amount=Decimal("0.70"))
    results = [LabResult(order_no="LB001", code="A", name="甲", value=Decimal("5.20"),
                         reference_range=ReferenceRange(low=Decimal("3.50"), high=Decimal("9.50"))),
               LabResult(order_no="LB001", code="B", name="乙", value=Decimal("1E+2")),
               LabResult(order_no="LB001", code="C", name="丙", value=Decimal("0.0000010"))]
    visit = _with(basic, fees=[fee.model_dump()], results=[r.model_dump() for r in results])
    _, dft = build(visit, "DFT^P03")
    ft1 = dft.dft_p03_financial.ft1
    assert (ft1.ft1_10.to_er7(), ft1.ft1_11.to_er7(), ft1.ft1_12.to_er7()) == \
        ("2.000", "0.70", "0.3500")
    _, oru = build(visit, "ORU^R01")
    [(_, _, obxs)] = observations(oru)
    assert [o.obx_5.to_er7() for o in obxs] == ["5.20", "100", "0.0000010"]
    assert obxs[0].obx_7.to_er7() == "3.50-9.50"


# -------------------------------------------------------------------------- ORM / RDE
def test_orm(basic):
    _, msg = build(basic, "ORM^O01")
    orders = [(g.orc.orc_1.to_er7(), g.orc.orc_2.to_er7(),
               g.orm_o01_order_detail.orm_o01_obrrqdrq1rxoodsodt_suppgrp.obr)
              for g in msg.orm_o01_order]
    assert [(c, n, obr.obr_2.to_er7(), obr.obr_4.to_er7(), obr.obr_24.to_er7())
            for c, n, obr in orders] == [
        ("NW", "EX001", "EX001", "JC0101^胸部正位X线摄影", "OTH"),
        ("NW", "LB001", "LB001", "JY0001^血常规", "LAB")]


def test_rde(basic):
    _, msg = build(basic, "RDE^O11")
    order = msg.rde_o11_order
    assert order.orc.orc_2.to_er7() == "RX001"
    rxe = order.rxe
    assert rxe.rxe_1.to_er7() == "^tid^D5"
    assert rxe.rxe_2.to_er7() == "YP0012^阿莫西林胶囊"
    assert (rxe.rxe_3.to_er7(), rxe.rxe_5.to_er7()) == ("0.5", "g")
    assert (rxe.rxe_10.to_er7(), rxe.rxe_11.to_er7()) == ("30", "粒")
    assert (rxe.rxe_25.to_er7(), rxe.rxe_26.to_er7()) == ("0.25", "g")
    assert order.rxr.rxr_1.ce_1.to_er7() == "口服"


def test_rde_strength_written_only_as_number_and_unit(basic):
    drug = {**basic.drugs[0].model_dump(), "strength": "160μg/4.5μg×60吸"}
    _, msg = build(_with(basic, drugs=[drug]), "RDE^O11")
    assert (msg.rde_o11_order.rxe.rxe_25.to_er7(), msg.rde_o11_order.rxe.rxe_26.to_er7()) == ("", "")


def test_rde_needs_dose_and_route(basic):
    drug = {**basic.drugs[0].model_dump(), "route": None}
    with pytest.raises(ValueError, match="route"):
        to_v2(_with(basic, drugs=[drug]), "RDE^O11", control_id="1", now=NOW)


# -------------------------------------------------------------------------- encoding
@pytest.mark.parametrize("charset", ["gb18030", "GB18030"])
def test_gb18030(basic, charset):
    data = to_v2(basic, "ADT^A04", control_id="1", now=NOW, charset=charset)
    assert "张伟".encode("gb18030") in data
    assert "张伟".encode() not in data
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("gb18030")
    assert "|张伟|" in text
    msg = parse_message(text, find_groups=True)
    assert msg.msh.msh_18.to_er7() == "GB 18030-2000"
    assert msg.pid.pid_5.to_er7() == "张伟"
    assert msg.pv1.pv1_3.pl_9.to_er7() == "呼吸内科"


def test_utf8(basic):
    data = to_v2(basic, "ADT^A04", control_id="1", now=NOW)
    assert "张伟".encode() in data


# -------------------------------------------------------------------------- escaping
def test_escape():
    assert escape("a|b^c&d~e\\f") == r"a\F\b\S\c\T\d\R\e\E\f"
    assert escape(r"literal \F\ stays text") == r"literal \E\F\E\ stays text"
    assert escape("line1\nline2\r\nline3\rline4") == r"line1\.br\line2\.br\line3\.br\line4"
    assert escape("张伟") == "张伟"


def test_delimiters_survive_hl7apy(basic):
    name = "O'Brien^Jr|X&Y~Z\\F\\ 张"
    complaint = "咳嗽\n发热|3天^&~\\"
    diagnosis = Diagnosis(code="J06.9", name="感染^上|呼吸道&~", primary=True)
    fee = {**basic.fees[0].model_dump(), "name": "挂号费|急^诊"}
    visit = _patient(basic, name=name, address="和平里~1号&2号")
    visit = _with(visit, chief_complaint=complaint, diagnoses=[diagnosis.model_dump()],
                  fees=[fee])
    text, msg = build(visit, "ADT^A04")
    assert segment_names(text) == ["MSH", "EVN", "PID", "PV1", "PV2", "DG1"]
    assert len(msg.pid.pid_5.children) == 1  # nothing split into components
    assert raw(msg.pid.pid_5) == r"O'Brien\S\Jr\F\X\T\Y\R\Z\E\F\E\ 张"
    assert unescape(raw(msg.pid.pid_5)) == name
    assert unescape(raw(msg.pid.pid_11)) == "和平里~1号&2号"
    assert len(msg.pid.pid_11.children) == 1 and len(msg.pid.pid_11.children[0].children) == 1
    assert raw(msg.pv2.pv2_3.ce_2) == "咳嗽\\.br\\发热\\F\\3天\\S\\\\T\\\\R\\\\E\\"
    assert unescape(raw(msg.pv2.pv2_3.ce_2)) == complaint
    assert unescape(raw(msg.dg1.dg1_3.ce_2)) == diagnosis.name
    assert msg.dg1.dg1_3.ce_3.to_er7() == "I10"  # the name's ^ did not shift the system
    _, dft = build(visit, "DFT^P03")
    ft1 = dft.dft_p03_financial.ft1
    assert unescape(raw(ft1.ft1_7.ce_2)) == "挂号费|急^诊"
    assert ft1.ft1_10.to_er7() == "1"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from("|^~\\&\n\r#aZ张伟 .brFSTRE"), min_size=1, max_size=40)
       .filter(lambda s: s.strip()))
def test_any_text_round_trips_through_hl7apy(basic, text):
    visit = _with(basic, chief_complaint=text)
    er7, msg = build(visit, "ADT^A04")
    assert segment_names(er7) == ["MSH", "EVN", "PID", "PV1", "PV2", "DG1", "DG1"]
    expected = text.strip().replace("\r\n", "\n").replace("\r", "\n")
    assert unescape(raw(msg.pv2.pv2_3.ce_2)) == expected


# -------------------------------------------------------------------------- synthetic
@pytest.fixture(scope="module")
def synthetic() -> list[OutpatientVisit]:
    return list(synth.generate(50, seed=20261123))


def test_synthetic_visits_build_and_validate(synthetic):
    built = {"ADT^A04": 0, "ORU^R01": 0, "DFT^P03": 0}
    for i, visit in enumerate(synthetic):
        for message in built:
            if message == "ORU^R01" and not visit.labs and not visit.results:
                with pytest.raises(ValueError):
                    to_v2(visit, message, control_id=str(i), now=NOW, charset="gb18030")
                continue
            text, msg = build(visit, message, charset="gb18030", control_id=f"C{i}")
            built[message] += 1
            names = segment_names(text)
            assert msg.msh.msh_10.to_er7() == f"C{i}"
            assert msg.msh.msh_4.to_er7() == visit.org.code
            assert names.count("PID") == 1 and names.count("PV1") == 1
            pid = msg.pid if message != "ORU^R01" else \
                msg.oru_r01_patient_result.oru_r01_patient.pid
            assert len(pid.pid_3) == len(visit.patient.cards)
            assert unescape(raw(pid.pid_5)) == visit.patient.name
            assert pid.pid_8.to_er7() in {"M", "F"}
            if message == "ADT^A04":
                assert names.count("DG1") == len(visit.diagnoses)
                primary = [d.dg1_3.ce_1.to_er7() for d in msg.children.get("DG1")
                           if d.dg1_15.to_er7() == "1"]
                assert primary == [d.code for d in visit.diagnoses if d.primary]
            elif message == "DFT^P03":
                ft1 = [g.ft1 for g in msg.dft_p03_financial]
                assert [f.ft1_11.to_er7() for f in ft1] == [format(f.amount, "f")
                                                            for f in visit.fees]
                assert [f.ft1_7.ce_1.to_er7() for f in ft1] == [f.item_code for f in visit.fees]
            else:
                assert names.count("OBX") == len(visit.results)
                assert names.count("OBR") == len(visit.labs)  # synth results all have a lab
                values = [obx.obx_5.to_er7() for _, _, obxs in observations(msg) for obx in obxs]
                assert values == [r.value_text if r.value is None else format(r.value, "f")
                                  for r in visit.results]
    assert built["ADT^A04"] == built["DFT^P03"] == 50
    assert built["ORU^R01"] >= 20


# -------------------------------------------------------------------------- errors
def test_bad_arguments(basic):
    with pytest.raises(ValueError, match="unsupported message"):
        to_v2(basic, "ADT^A99", control_id="1", now=NOW)
    with pytest.raises(ValueError, match="charset"):
        to_v2(basic, "ADT^A04", control_id="1", now=NOW, charset="latin-1")
    with pytest.raises(ValueError, match="UTC offset"):
        to_v2(basic, "ADT^A04", control_id="1", now=datetime(2026, 3, 1, 10, 0))
    assert set(STRUCTURES) == set(MESSAGES)


def test_birth_date_format(basic):
    _, msg = build(_patient(basic, birth_date=date(2001, 1, 9)), "ADT^A04")
    assert msg.pid.pid_7.to_er7() == "20010109"
