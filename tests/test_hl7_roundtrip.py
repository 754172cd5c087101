"""Round trips: canonical → v2 (outbound) → canonical (inbound rules) keeps every field the
message carries, and v2 → canonical → v2 → canonical is stable (FIELDS.md is one table)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.convert import convert_envelope
from gateway.hl7.outbound import to_v2
from gateway.orgs import Org
from gateway.synth import generate
from gateway.visit import OutpatientVisit

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
GOLDEN = Path(__file__).parent / "golden" / "hl7v2"


def _back(visit: OutpatientVisit, message: str, charset: str) -> object:
    raw = to_v2(visit, message, control_id="RT1", now=NOW, charset=charset)
    return convert_envelope(raw, org=Org(visit.org.code, visit.org.name))


def _common(visit: OutpatientVisit, env) -> None:
    back = env.visit
    assert back.visit_no == visit.visit_no
    assert back.visit_time == visit.visit_time
    assert back.visit_type == visit.visit_type
    assert back.department == visit.department
    assert back.doctor == visit.doctor
    assert back.patient.name == visit.patient.name
    assert back.patient.birth_date == visit.patient.birth_date
    assert back.patient.phone == visit.patient.phone
    assert back.patient.address == visit.patient.address
    assert back.patient.ethnicity == visit.patient.ethnicity
    assert back.payment == visit.payment
    # the same cards, with the same systems (hospital cards default to the sender)
    original = convert_envelope(visit.to_json())
    assert env.identity == original.identity
    assert env.translated.gender == original.translated.gender


@pytest.mark.parametrize("charset", ["utf-8", "gb18030"])
def test_canonical_to_v2_and_back(charset):
    counted = {"ADT^A04": 0, "DFT^P03": 0, "ORU^R01": 0, "ORM^O01": 0, "RDE^O11": 0}
    for visit in generate(40, seed=31, orgs=2):
        env = _back(visit, "ADT^A04", charset)
        _common(visit, env)
        assert env.visit.chief_complaint == visit.chief_complaint
        assert env.visit.diagnoses == sorted(visit.diagnoses, key=lambda d: not d.primary) or \
            env.visit.diagnoses == visit.diagnoses
        counted["ADT^A04"] += 1
        if visit.fees:
            env = _back(visit, "DFT^P03", charset)
            _common(visit, env)
            assert env.visit.fees == visit.fees
            counted["DFT^P03"] += 1
        if visit.labs and all(r.order_no in {o.order_no for o in visit.labs} for r in visit.results):
            env = _back(visit, "ORU^R01", charset)
            _common(visit, env)
            assert env.visit.labs == visit.labs
            assert env.visit.results == visit.results
            counted["ORU^R01"] += 1
        if visit.labs or visit.exams:
            env = _back(visit, "ORM^O01", charset)
            assert env.visit.labs == visit.labs and env.visit.exams == visit.exams
            counted["ORM^O01"] += 1
        if visit.drugs and all(d.dose and d.route for d in visit.drugs):
            env = _back(visit, "RDE^O11", charset)
            expected = [d.model_copy(update={"strength": d.strength if _plain(d.strength) else None})
                        for d in visit.drugs]
            assert env.visit.drugs == expected
            counted["RDE^O11"] += 1
    assert all(n > 3 for n in counted.values()), counted


def _plain(strength: str | None) -> bool:
    """Strengths written to RXE-25/26: a number and a unit (FIELDS.md)."""
    import re

    return bool(strength) and bool(re.fullmatch(r"\d+(\.\d+)?[^\d.:/]+", strength))


@pytest.mark.parametrize("case,message", [
    ("adt_a04_utf8", "ADT^A04"), ("adt_a04_gb18030", "ADT^A04"), ("dft_p03", "DFT^P03"),
    ("oru_r01", "ORU^R01"), ("orm_o01", "ORM^O01"), ("rde_o11", "RDE^O11"),
])
def test_v2_to_canonical_to_v2_is_stable(case, message):
    org = Org("H11010101", "北京市东城区第一人民医院")
    first = convert_envelope((GOLDEN / case / "input.hl7").read_bytes(), org=org).visit
    raw = to_v2(first, message, control_id="RT2", now=NOW)
    second = convert_envelope(raw, org=org).visit
    assert second.model_dump(exclude={"patient": {"cards"}}) == first.model_dump(
        exclude={"patient": {"cards"}})
    assert [(c.type, c.value) for c in second.patient.cards] == [
        (c.type, c.value) for c in first.patient.cards]
