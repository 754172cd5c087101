"""The synthetic-hospital generator: deterministic, valid and realistic visits."""

from __future__ import annotations

import io
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric

from gateway import synth, synth_data
from gateway.identifiers import CardType, citizen_id_problem
from gateway.visit import AbnormalFlag, OutpatientVisit, VisitType


def _dump(visits) -> list[str]:
    return [v.model_dump_json() for v in visits]


def _card(visit: OutpatientVisit, card_type: CardType):
    return [c for c in visit.patient.cards if c.type is card_type]


@pytest.fixture(scope="module")
def visits_200() -> list[OutpatientVisit]:
    return list(synth.generate(200, seed=11, orgs=3))


@pytest.fixture(scope="module")
def visits_1000() -> list[OutpatientVisit]:
    return list(synth.generate(1000, seed=3))


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_json():
    assert _dump(synth.generate(50, seed=42)) == _dump(synth.generate(50, seed=42))
    assert synth.hospitals(4, 42) == synth.hospitals(4, 42)


def test_different_seed_different_json():
    assert _dump(synth.generate(50, seed=1)) != _dump(synth.generate(50, seed=2))


def test_hospitals_are_a_stable_prefix_and_match_the_senders():
    three, five = synth.hospitals(3, 9), synth.hospitals(5, 9)
    assert five[:3] == three
    assert len({c for c, _ in five}) == 5 and len({n for _, n in five}) == 5
    for code, name in five:
        assert code.startswith("H") and len(code) == 12 and code[1:].isdigit()
        assert synth_data.REGION_BY_CODE[code[1:7]]
        assert name.endswith(("医院", "门诊部"))
    senders = {(v.org.code, v.org.name) for v in synth.generate(60, seed=9, orgs=3)}
    assert senders == set(three)


# ----------------------------------------------------------------------- validity
def _check_visit(visit: OutpatientVisit) -> None:
    # re-validating from the dump proves the object is what the model accepts
    again = OutpatientVisit.model_validate_json(visit.model_dump_json())
    assert again.model_dump_json() == visit.model_dump_json()
    assert visit.visit_time.utcoffset().total_seconds() == 8 * 3600
    assert visit.visit_time.year == 2026

    patient = visit.patient
    assert patient.cards[0].type is CardType.CITIZEN_ID
    citizen_id = patient.cards[0].value
    assert citizen_id_problem(citizen_id) is None
    assert citizen_id[6:14] == patient.birth_date.strftime("%Y%m%d")
    assert int(citizen_id[16]) % 2 == (1 if patient.sex.code == "1" else 0)
    assert citizen_id[17] == ric.calc_check_digit(citizen_id)
    assert patient.sex.system == "urn:oid:2.16.156.10011.2.3.3.4" and patient.sex.code in ("1", "2")
    assert patient.phone and len(patient.phone) == 11 and patient.phone[0] == "1" and patient.phone[1] in "3456789"
    region = synth_data.REGION_BY_CODE[citizen_id[:6]]
    assert patient.address.startswith(region.province)
    assert region.district in patient.address

    hospital_cards = _card(visit, CardType.HOSPITAL_CARD)
    assert len(hospital_cards) == 1 and hospital_cards[0].issuer == visit.org.code
    for card in _card(visit, CardType.HEALTH_CARD):
        assert card.value == citizen_id
    for card in _card(visit, CardType.SSC_CARD_NO):
        assert len(card.value) == 9 and card.value[0].isalpha() and card.value[1:].isdigit()
    for card in _card(visit, CardType.SSC_CARD_ID):
        assert len(card.value) == 32 and card.value[6:16] == "D156000005"
        int(card.value, 16)
        assert synth_data.REGION_BY_CODE[card.value[:6]]
    for card in _card(visit, CardType.YILIAN_CODE):
        assert len(card.value) == 15 and card.value.isdigit()

    assert (visit.visit_type is VisitType.EMERGENCY) == (visit.department.name == "急诊科")
    assert 1 <= len(visit.diagnoses) <= 3
    assert sum(d.primary for d in visit.diagnoses) == 1
    primary = next(d for d in visit.diagnoses if d.primary)
    assert visit.diagnoses[0] is primary and primary.system == "ICD-10"
    assert synth_data.DIAGNOSES[primary.code].name == primary.name
    assert 1 <= len(visit.symptoms) <= 3
    assert visit.chief_complaint and visit.symptoms[0].text in visit.chief_complaint
    assert len(visit.drugs) <= 4 and len(visit.exams) <= 2 and len(visit.labs) <= 2

    for fee in visit.fees:
        assert fee.amount == (fee.unit_price * fee.quantity).quantize(Decimal("0.01"))
        assert fee.category in {f"{i:02d}" for i in range(1, 15)}
        assert fee.insurance_class in ("01", "02", "03")
    assert [f.line_no for f in visit.fees] == [str(i) for i in range(1, len(visit.fees) + 1)]
    billed = {f.item_code for f in visit.fees}
    assert {f.category for f in visit.fees[:2]} == {"13", "02"}
    for order in [*visit.drugs, *visit.exams, *visit.labs]:
        assert order.code in billed

    lab_orders = {lab.order_no for lab in visit.labs}
    for result in visit.results:
        assert result.order_no in lab_orders
        if result.value is not None:
            low, high = result.reference_range.low, result.reference_range.high
            if high is not None and result.value > high:
                assert result.abnormal_flag is AbnormalFlag.HIGH
            elif low is not None and result.value < low:
                assert result.abnormal_flag is AbnormalFlag.LOW
            else:
                assert result.abnormal_flag is AbnormalFlag.NORMAL
        else:
            normal = result.value_text == "阴性"
            assert result.abnormal_flag is (AbnormalFlag.NORMAL if normal else AbnormalFlag.ABNORMAL)

    assert visit.payment is not None
    if visit.payment.kind == "insured":
        assert visit.payment.insurance_type in ("310", "390")
    else:
        assert visit.payment.insurance_type is None


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), n=st.integers(min_value=1, max_value=15),
       orgs=st.integers(min_value=1, max_value=4))
def test_every_visit_is_valid(seed, n, orgs):
    visits = list(synth.generate(n, seed=seed, orgs=orgs))
    assert len(visits) == n
    for visit in visits:
        _check_visit(visit)


def test_a_thousand_visits_are_valid_and_fast(visits_1000):
    start = time.perf_counter()
    again = list(synth.generate(1000, seed=3))
    assert time.perf_counter() - start < 3.0
    assert len(again) == 1000
    for visit in visits_1000:
        _check_visit(visit)
    times = [v.visit_time for v in visits_1000]
    assert times == sorted(times)


def test_regions_validate_from_their_first_birth_year():
    assert len(synth_data.REGIONS) >= 40
    assert len({r.province for r in synth_data.REGIONS}) >= 15
    for region in synth_data.REGIONS:
        for year in (region.since, (region.since + 2026) // 2, 2026):
            body = f"{region.code}{year}0615123"
            assert ric.is_valid(body + ric.calc_check_digit(body + "0")), (region, year)


# ------------------------------------------------------------------------ realism
def test_patients_recur_across_hospitals(visits_200):
    orgs_by_patient = defaultdict(set)
    visits_by_patient = defaultdict(int)
    for visit in visits_200:
        citizen_id = _card(visit, CardType.CITIZEN_ID)[0].value
        orgs_by_patient[citizen_id].add(visit.org.code)
        visits_by_patient[citizen_id] += 1
    assert len({v.org.code for v in visits_200}) == 3
    assert 30 <= len(orgs_by_patient) <= 100  # a pool of about n/2
    assert sum(len(o) >= 2 for o in orgs_by_patient.values()) >= 10
    assert max(visits_by_patient.values()) >= 3


def test_patient_details_are_stable_and_hospital_cards_per_hospital(visits_200):
    by_patient = defaultdict(list)
    for visit in visits_200:
        by_patient[_card(visit, CardType.CITIZEN_ID)[0].value].append(visit)
    card_owner: dict[tuple[str, str], str] = {}
    for citizen_id, visits in by_patient.items():
        first = visits[0].patient
        cards_at = {}
        for visit in visits:
            p = visit.patient
            assert (p.name, p.sex, p.birth_date, p.phone, p.address) == (
                first.name, first.sex, first.birth_date, first.phone, first.address)
            national = [c for c in p.cards if c.type is not CardType.HOSPITAL_CARD]
            assert national == [c for c in first.cards if c.type is not CardType.HOSPITAL_CARD]
            card = _card(visit, CardType.HOSPITAL_CARD)[0]
            assert cards_at.setdefault(visit.org.code, card.value) == card.value
            assert card_owner.setdefault((visit.org.code, card.value), citizen_id) == citizen_id
        values = list(cards_at.values())
        assert len(set(values)) == len(values)  # a different card at each hospital


def test_visit_numbers_unique_per_org(visits_1000):
    seen = set()
    for visit in visits_1000:
        key = (visit.org.code, visit.visit_no)
        assert key not in seen
        seen.add(key)


def test_card_mix_and_code_lists(visits_1000):
    people = {}
    for visit in visits_1000:
        people[_card(visit, CardType.CITIZEN_ID)[0].value] = visit.patient
    n = len(people)
    share = {t: sum(any(c.type is t for c in p.cards) for p in people.values()) / n for t in CardType}
    assert share[CardType.CITIZEN_ID] == 1
    assert share[CardType.SSC_CARD_NO] > 0.6 and share[CardType.SSC_CARD_ID] == share[CardType.SSC_CARD_NO]
    for card_type in (CardType.HEALTH_CARD, CardType.EHEALTH_CARD, CardType.NHSA_EVOUCHER,
                      CardType.YILIAN_CODE):
        assert 0.05 < share[card_type] < 0.8, card_type
    assert sum(p.ethnicity == "01" for p in people.values()) / n > 0.8
    assert {p.sex.code for p in people.values()} == {"1", "2"}
    assert any(len(p.name) == 2 for p in people.values()) and any(len(p.name) == 3 for p in people.values())

    kinds = [(v.payment.kind, v.payment.insurance_type) for v in visits_1000]
    assert kinds.count(("insured", "310")) > 150 and kinds.count(("insured", "390")) > 150
    assert 20 < kinds.count(("self_pay", None)) < 400

    emergency = [v for v in visits_1000 if v.visit_type is VisitType.EMERGENCY]
    assert 30 < len(emergency) < 300
    assert len({v.diagnoses[0].code for v in visits_1000}) >= 25
    categories = {f.category for v in visits_1000 for f in v.fees}
    assert {"02", "03", "04", "05", "08", "09", "11", "13"} <= categories
    assert any(f.national_code for v in visits_1000 for f in v.fees)
    assert any(f.national_code is None for v in visits_1000 for f in v.fees)
    assert any(f.unit_price.as_tuple().exponent == -4 for v in visits_1000 for f in v.fees)
    flags = {r.abnormal_flag for v in visits_1000 for r in v.results}
    assert {AbnormalFlag.NORMAL, AbnormalFlag.HIGH, AbnormalFlag.LOW, AbnormalFlag.ABNORMAL} <= flags
    assert {len(v.drugs) for v in visits_1000} == {0, 1, 2, 3, 4}
    assert {len(v.diagnoses) for v in visits_1000} == {1, 2, 3}


def test_clinical_content_is_consistent(visits_1000):
    for visit in visits_1000:
        dx = synth_data.DIAGNOSES[visit.diagnoses[0].code]
        age = visit.visit_time.date().year - visit.patient.birth_date.year
        if dx.sex:
            assert visit.patient.sex.code == dx.sex
        allowed = set(dx.kids) | set(dx.drugs)
        for other in visit.diagnoses[1:]:
            allowed |= set(synth_data.DIAGNOSES[other.code].drugs)
        allowed |= {d.solvent for d in synth_data.DRUGS.values() if d.solvent}
        codes = {synth_data.DRUGS[k].code: k for k in synth_data.DRUGS}
        for drug in visit.drugs:
            assert codes[drug.code] in allowed
            assert drug.frequency in synth_data.FREQUENCIES
            assert drug.route in ("口服", "静脉滴注", "吸入", "鼻腔喷入", "外用", "舌下含服")
        if visit.department.name == "儿科":
            assert age <= 15
        if any(d.route == "静脉滴注" for d in visit.drugs):
            assert any(f.category == "05" for f in visit.fees) and any(f.category == "08" for f in visit.fees)
        for symptom in visit.symptoms:
            assert symptom.text in dx.symptoms
            if symptom.onset:
                assert symptom.onset <= visit.visit_time.date()


def test_write_jsonl_round_trips(visits_200):
    buffer = io.StringIO()
    assert synth.write_jsonl(visits_200, buffer) == 200
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 200
    for line, visit in zip(lines, visits_200, strict=True):
        again = OutpatientVisit.model_validate_json(line)
        assert again == visit
        assert again.to_json().decode() == line


# ---------------------------------------------------------------------- org option
def test_org_restricts_the_sender_to_a_synthesized_hospital():
    visits = list(synth.generate(40, org="H11010800042", seed=5))
    assert len(visits) == 40
    assert {v.org.code for v in visits} == {"H11010800042"}
    names = {v.org.name for v in visits}
    assert len(names) == 1 and names.pop().startswith("北京市海淀区")
    assert {_card(v, CardType.HOSPITAL_CARD)[0].issuer for v in visits} == {"H11010800042"}
    assert len({v.visit_no for v in visits}) == 40


def test_org_uses_the_known_name_and_any_code():
    code, name = synth.hospitals(3, 4)[1]
    visits = list(synth.generate(10, org=code, seed=4))
    assert {(v.org.code, v.org.name) for v in visits} == {(code, name)}
    shenzhen = list(synth.generate(30, org="H44030500007", seed=4))
    assert shenzhen[0].org.name.startswith("深圳市南山区")
    for visit in shenzhen:
        _check_visit(visit)
    odd = list(synth.generate(5, org="ORG-TEST-1", seed=4))
    assert {v.org.code for v in odd} == {"ORG-TEST-1"}
    assert odd[0].org.name.endswith("医院")


def test_small_and_bad_arguments():
    assert list(synth.generate(0)) == []
    one = list(synth.generate(1, seed=8))
    assert len(one) == 1
    _check_visit(one[0])
    with pytest.raises(ValueError):
        synth.generate(-1)
    with pytest.raises(ValueError):
        synth.generate(3, orgs=0)


def test_visit_dates_fall_in_the_fixed_2026_range(visits_1000):
    days = {v.visit_time.date() for v in visits_1000}
    assert min(days) >= date(2026, 3, 2) and max(days) <= date(2026, 6, 28)


def test_the_demo_fee_map_covers_every_synthetic_fee_item_without_a_national_code():
    from gateway.synth import generate
    from gateway.synth_data import demo_fee_item_map
    from terminology.local_maps import parse_csv

    rows = parse_csv(demo_fee_item_map(), "DEMO0001", "fee-item")
    mapped = {r["source_code"] for r in rows}
    unmapped = {f.item_code for v in generate(300, seed=3, orgs=2) for f in v.fees
                if not f.national_code}
    assert unmapped and unmapped <= mapped
