"""Synthetic hospitals: realistic, deterministic outpatient visits for demos, tests and load.

``generate(n, seed=...)`` yields ``OutpatientVisit`` objects sent by a few synthetic
hospitals (or one given organisation). A pool of about n/2 patients is shared by all
hospitals, so patients come back and visit several of them; each patient carries a
valid citizen ID and a realistic set of cards (social security card, resident health
card, e-health card, NHSA e-voucher, 医联码, and a different visit card at every
hospital). Clinical content comes from tables in ``gateway.synth_data``: diagnoses
with consistent chief complaints, symptoms, drugs, exams, labs with results whose flags
match their reference ranges, and fee lines with NHSA categories.

Everything is driven by ``random.Random(seed)``: the same arguments always give the same
visits, byte for byte. Visit times fall on a fixed 2026 date range in +08:00.

``v2_messages`` gives the same visits as the HL7 v2.5 messages a HIS sends for them
(``gateway synth --format v2``).

    python -m gateway.synth 1000 --seed 7 > visits.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import IO

from stdnum.cn import ric

from gateway import synth_data as data
from gateway.identifiers import CardType
from gateway.visit import (
    AbnormalFlag,
    CardIdentifier,
    Coded,
    Department,
    Diagnosis,
    Doctor,
    DrugOrder,
    FeeItem,
    LabResult,
    Organization,
    OutpatientVisit,
    Patient,
    Payment,
    Quantity,
    ReferenceRange,
    ServiceOrder,
    Symptom,
    VisitType,
)

__all__ = ["generate", "hospitals", "write_jsonl"]

CST = timezone(timedelta(hours=8))
FIRST_DAY = date(2026, 3, 2)  # a Monday
LAST_DAY = date(2026, 6, 28)
AGE_REFERENCE = date(2026, 1, 1)
CENT = Decimal("0.01")

_WEEKDAY_WEIGHT = (1.0, 1.0, 1.0, 1.0, 1.0, 0.45, 0.3)
_DAYS = [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
_SURNAMES = [s for s, _ in data.SURNAMES]
_SURNAME_CUM = list(itertools.accumulate(w for _, w in data.SURNAMES))
_ETHNICITIES = [e for e, _ in data.ETHNICITIES]
_ETHNICITY_CUM = list(itertools.accumulate(w for _, w in data.ETHNICITIES))
_TITLES = [t for t, _ in data.DOCTOR_TITLES]
_TITLE_CUM = list(itertools.accumulate(w for _, w in data.DOCTOR_TITLES))
_ORG_CODE = re.compile(r"^H(\d{6})\d+$")


# ------------------------------------------------------------------------- hospitals
@dataclass
class _Hospital:
    code: str
    name: str
    region: data.Region
    doctors: dict[str, list[tuple[str, str, str]]]  # dept → [(code, name, title)]
    card_prefix: str
    card_digits: int
    cards: dict[int, str] = field(default_factory=dict)  # patient index → card number
    card_numbers: set[str] = field(default_factory=set)
    daily: dict[date, int] = field(default_factory=dict)  # visits registered per day


def _city_regions(city: str) -> list[data.Region]:
    return [r for r in data.REGIONS if data.city_of(r) == city]


def _hospital_candidates(rng: random.Random) -> Iterator[tuple[data.Region, str]]:
    """(region, name) pairs: the seed's city first, then the other hospital cities."""
    cities = list(data.HOSPITAL_CITIES)
    first = rng.choice(cities)
    cities.remove(first)
    rng.shuffle(cities)
    for city in [first, *cities]:
        pairs = [(r, f"{city}{r.district}{s}") for r in _city_regions(city) for s in data.HOSPITAL_SUFFIXES]
        rng.shuffle(pairs)
        yield from pairs
    for i in itertools.count(1):  # more hospitals than names: number them
        region = rng.choice(data.REGIONS)
        yield region, f"{data.city_of(region)}{region.district}第{i}门诊部"


def hospitals(orgs: int = 3, seed: int = 0) -> list[tuple[str, str]]:
    """The (organisation code, name) of the ``orgs`` synthetic hospitals for ``seed``.

    Codes have the NHSA fixmedins shape: ``H`` + the GB/T 2260 code of the district + a
    5-digit serial, e.g. ``H11010100231``. ``hospitals(k, s)`` is a prefix of
    ``hospitals(k + 1, s)``, and ``generate(..., seed=s, orgs=k)`` sends from exactly these.
    """
    return [(h.code, h.name) for h in _hospitals(orgs, seed)]


def _hospitals(orgs: int, seed: int) -> list[_Hospital]:
    if orgs < 1:
        raise ValueError("orgs must be at least 1")
    rng = random.Random(f"synth-hospitals:{seed}")
    result: list[_Hospital] = []
    codes: set[str] = set()
    names: set[str] = set()
    for region, name in _hospital_candidates(rng):
        if len(result) == orgs:
            break
        if name in names:
            continue
        code = f"H{region.code}{rng.randrange(1, 100000):05d}"
        while code in codes:
            code = f"H{region.code}{rng.randrange(1, 100000):05d}"
        codes.add(code)
        names.add(name)
        result.append(_make_hospital(code, name, region, seed))
    return result


def _make_hospital(code: str, name: str, region: data.Region, seed: int) -> _Hospital:
    rng = random.Random(f"synth-hospital:{seed}:{code}")
    staff: set[str] = set()
    doctors: dict[str, list[tuple[str, str, str]]] = {}
    for dept in data.DEPARTMENTS:
        team = []
        for _ in range(rng.randint(2, 4)):
            number = f"{rng.randrange(10000, 100000)}"
            while number in staff:
                number = f"{rng.randrange(10000, 100000)}"
            staff.add(number)
            sex = rng.choice("12")
            title = _TITLES[bisect.bisect(_TITLE_CUM, rng.random() * _TITLE_CUM[-1])]
            team.append((number, _person_name(rng, sex), title))
        doctors[dept] = team
    prefix = rng.choice(["", "", "8", "JZ", f"{region.code[2:4]}"])
    return _Hospital(code, name, region, doctors, prefix, rng.choice([8, 9, 10]))


def _org_hospital(org: str, seed: int, orgs: int) -> _Hospital:
    """The hospital for an explicit organisation code: a known synthetic one, else a new one."""
    for hospital in _hospitals(max(orgs, 1), seed):
        if hospital.code == org:
            return hospital
    rng = random.Random(f"synth-org:{seed}:{org}")
    match = _ORG_CODE.match(org)
    region = data.REGION_BY_CODE.get(match.group(1)) if match else None
    if region is None:
        region = rng.choice(_city_regions(rng.choice(data.HOSPITAL_CITIES)))
    name = f"{data.city_of(region)}{region.district}{rng.choice(data.HOSPITAL_SUFFIXES)}"
    return _make_hospital(org, name, region, seed)


# -------------------------------------------------------------------------- patients
@dataclass
class _Person:
    name: str
    sex: str  # GB/T 2261.1
    birth_date: date
    region: data.Region
    citizen_id: str
    ethnicity: str
    phone: str
    address: str
    cards: list[CardIdentifier]  # national cards (citizen ID first), no hospital card
    insutype: str | None  # 310 / 390, None = uninsured
    migrant: bool
    chronic: list[str]
    home: int  # index of the usual hospital
    weight: float

    @property
    def age(self) -> int:
        return _age(self.birth_date, AGE_REFERENCE)


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _person_name(rng: random.Random, sex: str) -> str:
    surname = _SURNAMES[bisect.bisect(_SURNAME_CUM, rng.random() * _SURNAME_CUM[-1])]
    chars = data.GIVEN_MALE if sex == "1" else data.GIVEN_FEMALE
    size = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(chars) for _ in range(size))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}X}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _citizen_id(rng: random.Random, region: data.Region, birth: date, sex: str) -> str:
    sequence = rng.randrange(0, 499) * 2 + (1 if sex == "1" else 2)  # odd male, even female
    body = f"{region.code}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def _address(rng: random.Random, region: data.Region) -> str:
    place = f"{region.province}{region.city}{region.district}"
    road = rng.choice(data.ROADS)
    if rng.random() < 0.6:
        return (f"{place}{road}{rng.randint(1, 300)}号{rng.choice(data.COMPOUNDS)}"
                f"{rng.randint(1, 30)}号楼{rng.randint(1, 6)}单元{rng.randint(1, 28)}{rng.randint(1, 4):02d}室")
    return f"{place}{road}{rng.randint(1, 300)}号院{rng.randint(1, 20)}号楼{rng.randint(1, 24)}{rng.randint(1, 6):02d}"


def _birth_date(rng: random.Random) -> date:
    band = rng.random()
    if band < 0.08:
        age = rng.randint(0, 13)
    elif band < 0.38:
        age = rng.randint(14, 39)
    elif band < 0.73:
        age = rng.randint(40, 64)
    else:
        age = rng.randint(65, 92)
    return AGE_REFERENCE - timedelta(days=age * 365 + rng.randrange(365) + age // 4 + 1)


def _make_person(rng: random.Random, home: int, home_region: data.Region, used_ids: set[str]) -> _Person:
    sex = rng.choice("12")
    birth = _birth_date(rng)
    valid = [r for r in data.REGIONS if r.since <= birth.year]
    local = [r for r in valid if data.city_of(r) == data.city_of(home_region)]
    migrant = not local or rng.random() < 0.15
    if migrant:
        others = [r for r in valid if data.city_of(r) != data.city_of(home_region)] or valid
        region = rng.choice(others)
    else:
        region = rng.choice(local)
    citizen_id = _citizen_id(rng, region, birth, sex)
    while citizen_id in used_ids:
        citizen_id = _citizen_id(rng, region, birth, sex)
    used_ids.add(citizen_id)
    age = _age(birth, AGE_REFERENCE)

    roll = rng.random()
    if roll < 0.06:
        insutype = None
    elif 18 <= age and rng.random() < (0.65 if age < 60 else 0.5):
        insutype = "310"  # employees and retirees
    else:
        insutype = "390"

    cards = [CardIdentifier(type=CardType.CITIZEN_ID, value=citizen_id)]
    if rng.random() < (0.92 if insutype else 0.3):
        letter = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
        cards.append(CardIdentifier(type=CardType.SSC_CARD_NO, value=f"{letter}{_digits(rng, 8)}"))
        cards.append(CardIdentifier(type=CardType.SSC_CARD_ID,
                                    value=f"{region.code}D156000005{_hex(rng, 16)}"))
    if rng.random() < 0.3:
        cards.append(CardIdentifier(type=CardType.HEALTH_CARD, value=citizen_id))
    if rng.random() < 0.4:
        cards.append(CardIdentifier(type=CardType.EHEALTH_CARD, value=_hex(rng, 64)))
    if insutype and rng.random() < 0.5:
        cards.append(CardIdentifier(type=CardType.NHSA_EVOUCHER,
                                    value=f"{region.code}{_hex(rng, 26)}"))
    if rng.random() < (0.35 if home_region.province == "北京市" else 0.15):
        cards.append(CardIdentifier(type=CardType.YILIAN_CODE, value=f"10{_digits(rng, 13)}"))

    chronic = []
    for code, (min_age, probability) in data.CHRONIC_PREVALENCE.items():
        dx = data.DIAGNOSES[code]
        if age >= max(min_age, dx.min_age) and (dx.sex is None or dx.sex == sex):
            if rng.random() < probability * (1.5 if age >= 65 else 1.0):
                chronic.append(code)
    ethnicity = _ETHNICITIES[bisect.bisect(_ETHNICITY_CUM, rng.random() * _ETHNICITY_CUM[-1])]
    phone = f"1{rng.choice('3456789')}{_digits(rng, 9)}"
    weight = (1.0 + 0.8 * len(chronic) + (0.5 if age >= 65 else 0)) * rng.uniform(0.3, 1.7)
    return _Person(_person_name(rng, sex), sex, birth, region, citizen_id, ethnicity, phone,
                   _address(rng, region), cards, insutype, migrant, chronic, home, weight)


# ---------------------------------------------------------------------------- visits
def _visit_time(rng: random.Random, emergency: bool) -> datetime:
    if emergency:
        day = rng.choice(_DAYS)
        hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5,
                                               4, 4, 4, 4, 5, 5, 5, 5, 4, 3, 2, 2])[0]
        minute = rng.randrange(60)
    else:
        day = rng.choices(_DAYS, weights=[_WEEKDAY_WEIGHT[d.weekday()] for d in _DAYS])[0]
        if rng.random() < 0.62:
            start = 7 * 60 + 30 + int(abs(rng.gauss(0, 75)))  # morning rush after 07:30
            start = min(start, 11 * 60 + 45)
        else:
            start = rng.randint(13 * 60 + 30, 16 * 60 + 45)
        hour, minute = divmod(start, 60)
    return datetime.combine(day, time(hour, minute, rng.randrange(60)), tzinfo=CST)


def _eligible(dx: data.Dx, person: _Person, age: int) -> bool:
    if dx.sex is not None and dx.sex != person.sex:
        return False
    if age < 14:
        return bool(dx.kids)
    return dx.min_age <= age <= dx.max_age


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _num(value: float | int | Decimal) -> Decimal:
    return Decimal(str(value)).normalize() if not isinstance(value, Decimal) else value


class _Builder:
    """Builds one visit's content from its own random stream."""

    def __init__(self, rng: random.Random, person: _Person, hospital: _Hospital,
                 when: datetime, emergency: bool, visit_no: str, card_no: str, org: Organization):
        self.rng = rng
        self.person = person
        self.hospital = hospital
        self.when = when
        self.emergency = emergency
        self.visit_no = visit_no
        self.card_no = card_no
        self.org = org
        self.age = _age(person.birth_date, when.date())
        self.fees: list[FeeItem] = []
        self.orders = itertools.count(1)

    # -- diagnosis and department
    def _pick_primary(self) -> tuple[data.Dx, str]:
        rng, person, age = self.rng, self.person, self.age
        if self.emergency:
            pool = [d for d in data.DIAGNOSES.values()
                    if data.EMERGENCY_DEPT in d.depts and _eligible(d, person, age)]
            return rng.choices(pool, weights=[d.weight for d in pool])[0], data.EMERGENCY_DEPT
        chronic = [data.DIAGNOSES[c] for c in person.chronic]
        if chronic and rng.random() < 0.55:
            dx = rng.choice(chronic)
        else:
            pool = [d for d in data.DIAGNOSES.values()
                    if not d.chronic and _eligible(d, person, age) and d.depts != (data.EMERGENCY_DEPT,)]
            if age >= 14:
                pool += [d for d in chronic if d not in pool]
            dx = rng.choices(pool, weights=[d.weight for d in pool])[0]
        if age < 14:
            return dx, data.PEDIATRIC_DEPT
        clinics = [d for d in dx.depts if d != data.EMERGENCY_DEPT]
        dept = clinics[0] if rng.random() < 0.7 else rng.choice(clinics)
        return dx, dept

    # -- fees
    def _fee(self, item: tuple, quantity: Decimal | int = 1, unit_price: Decimal | None = None,
             name: str | None = None, national: str | None = None) -> None:
        code, national_code, item_name, price, category, level = item
        unit_price = Decimal(price) if unit_price is None else unit_price
        quantity = _num(quantity)
        self.fees.append(FeeItem(
            line_no=str(len(self.fees) + 1), item_code=code,
            national_code=national if national is not None else national_code,
            name=name or item_name, category=category, unit_price=unit_price, quantity=quantity,
            amount=_money(unit_price * quantity), insurance_class=level,
        ))

    def _order_no(self) -> str:
        return f"{self.visit_no}-{next(self.orders):02d}"

    # -- drugs
    def _drugs(self, dx: data.Dx, extra: list[data.Dx]) -> list[DrugOrder]:
        rng = self.rng
        choices = list(dx.kids if self.age < 14 else dx.drugs)
        if not choices:
            return []
        count = rng.choices([0, 1, 2, 3, 4], weights=[8, 30, 32, 20, 10])[0]
        if self.emergency:
            count = max(count, 1)
        keys = rng.sample(choices, min(count, len(choices)))
        # a chronic comorbidity's usual drug now and then, if there is room
        for other in extra:
            if len(keys) < 4 and other.drugs and rng.random() < 0.3 and self.age >= 14:
                key = other.drugs[0]
                if key not in keys:
                    keys.append(key)
        # an IV antibiotic needs its carrier infusion, in the same four slots
        for key in list(keys):
            solvent = data.DRUGS[key].solvent
            if solvent and solvent not in keys:
                if len(keys) >= 4:
                    keys.remove(next(k for k in keys if k != key))
                keys.insert(keys.index(key) + 1, solvent)
        orders, iv_sessions = [], 0
        shared_days = None
        for key in keys:
            drug = data.DRUGS[key]
            days = rng.randint(*drug.days)
            if drug.route == "静脉滴注":  # an IV drug and its carrier share one course
                shared_days = shared_days or days
                days = shared_days
            per_day = data.FREQUENCIES[drug.frequency]
            if drug.fixed_packs or per_day == 0:
                packs = drug.fixed_packs or 1
            else:
                packs = max(1, math.ceil(drug.units_per_dose * per_day * days / drug.pack_size - 1e-9))
            dose = None
            if re.fullmatch(r"\d+(\.\d+)?", drug.dose):
                dose = Quantity(value=Decimal(drug.dose), unit=drug.dose_unit)
            orders.append(DrugOrder(
                order_no=self._order_no(), code=drug.code, name=drug.name, strength=drug.strength,
                dose=dose, route=drug.route, frequency=drug.frequency, days=days,
                quantity=Quantity(value=Decimal(packs), unit=drug.pack_unit),
            ))
            item = (drug.code, data.national_drug_code(drug), drug.name, drug.pack_price,
                    drug.category, drug.insurance_class)
            if drug.bill_by_unit and drug.pack_size > 1:
                unit_price = (Decimal(drug.pack_price) / drug.pack_size).quantize(Decimal("0.0001"))
                self._fee(item, packs * drug.pack_size, unit_price,
                          name=f"{drug.name}({drug.strength}/{drug.form_unit})")
            else:
                self._fee(item, packs, name=f"{drug.name}({drug.strength}×{drug.pack_size}{drug.form_unit}/{drug.pack_unit})"
                          if drug.pack_size > 1 else None)
            if drug.solvent:
                iv_sessions = max(iv_sessions, int(per_day * days))
        if iv_sessions:
            self._fee(data.INFUSION_FEE, iv_sessions)
            self._fee(data.INFUSION_SET_FEE, iv_sessions)
        return orders

    # -- labs
    def _result(self, analyte: data.Analyte, bias: str | None, order_no: str,
                issued: datetime) -> LabResult:
        rng = self.rng
        female = self.person.sex == "2" and analyte.female is not None
        low_s, high_s = analyte.female if female else (analyte.low, analyte.high)
        if analyte.qualitative:
            positive = bias == "+" and rng.random() < 0.75 or rng.random() < 0.04
            value = rng.choice(["+", "+", "++", "+++"]) if positive else "阴性"
            return LabResult(order_no=order_no, code=analyte.code, name=analyte.name,
                             value_text=value, reference_range=ReferenceRange(text="阴性"),
                             abnormal_flag=AbnormalFlag.ABNORMAL if positive else AbnormalFlag.NORMAL,
                             issued=issued)
        low = float(low_s) if low_s is not None else None
        high = float(high_s) if high_s is not None else None
        want = bias if bias in ("H", "L") and rng.random() < 0.75 else None
        if want is None and rng.random() < 0.06:  # the occasional incidental abnormal
            want = "H" if high is not None and (low is None or rng.random() < 0.5) else "L"
        if low is not None and high is not None:
            width = high - low
            if want == "H":
                value = high + width * rng.uniform(0.08, 0.9)
            elif want == "L":
                value = max(low - width * rng.uniform(0.05, 0.3), low * rng.uniform(0.55, 0.92))
            else:
                value = rng.uniform(low + 0.1 * width, high - 0.1 * width)
        elif high is not None:  # "< high", e.g. CRP, triglycerides
            if want == "H":
                value = high * rng.uniform(1.1, 4.0)
            else:
                value = high * rng.uniform(0.05, 0.8)
        else:  # "> low", e.g. HDL cholesterol
            assert low is not None
            if want == "L":
                value = low * rng.uniform(0.6, 0.92)
            else:
                value = low * rng.uniform(1.05, 1.7)
        value = max(value, 0.0)
        quantum = Decimal(1).scaleb(-analyte.decimals)
        number = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
        low_d = Decimal(low_s) if low_s is not None else None
        high_d = Decimal(high_s) if high_s is not None else None
        if high_d is not None and number > high_d:
            flag = AbnormalFlag.HIGH
        elif low_d is not None and number < low_d:
            flag = AbnormalFlag.LOW
        else:
            flag = AbnormalFlag.NORMAL
        return LabResult(order_no=order_no, code=analyte.code, name=analyte.name, value=number,
                         unit=analyte.unit, reference_range=ReferenceRange(low=low_d, high=high_d),
                         abnormal_flag=flag, issued=issued)

    def build(self) -> OutpatientVisit:
        rng, person, hospital = self.rng, self.person, self.hospital
        dx, dept = self._pick_primary()
        emergency = dept == data.EMERGENCY_DEPT
        doctor_code, doctor_name, title = rng.choice(hospital.doctors[dept])

        # diagnoses: the primary, then up to two of the patient's other chronic conditions
        others = [data.DIAGNOSES[c] for c in person.chronic if c != dx.code]
        extra = rng.sample(others, min(len(others), rng.choice([0, 1, 1, 2])))
        diagnoses = [Diagnosis(code=dx.code, name=dx.name, primary=True)]
        diagnoses += [Diagnosis(code=d.code, name=d.name) for d in extra]

        # complaint and symptoms, consistent with the primary diagnosis
        rest = dx.symptoms[1:]
        symptoms = [dx.symptoms[0], *rng.sample(rest, rng.randint(0, min(2, len(rest))))]
        symptoms.sort(key=dx.symptoms.index)
        unit, lo, hi = dx.duration
        amount = rng.randint(lo, hi)
        duration = f"{amount}{'个月' if unit == '月' else unit}"
        complaint = dx.complaint.format(s="、".join(symptoms), d=duration)
        days_ago = {"小时": 0, "天": amount, "周": 7 * amount}.get(unit)
        onset = self.when.date() - timedelta(days=days_ago) if days_ago is not None else None
        if unit == "小时" and self.when.hour < amount:
            onset = self.when.date() - timedelta(days=1)

        # fees: registration, consultation
        self._fee(data.REGISTRATION_FEE)
        self._fee(data.CONSULTATION_FEES["急诊" if emergency else title])

        drugs = self._drugs(dx, extra)

        exam_keys = rng.sample(dx.exams, min(len(dx.exams), rng.choices([0, 1, 2], weights=[45, 40, 15])[0]))
        exams = []
        for key in exam_keys:
            svc = data.EXAMS[key]
            exams.append(ServiceOrder(order_no=self._order_no(), code=svc.code, name=svc.name))
            self._fee((svc.code, svc.national_code, svc.name, svc.price, svc.category,
                       svc.insurance_class))

        lab_count = rng.choices([0, 1, 2], weights=[35, 40, 25])[0]
        if self.age < 14:
            lab_count = min(lab_count, 1)
        lab_keys = rng.sample(dx.labs, min(len(dx.labs), lab_count))
        labs, results = [], []
        bias = dict(dx.bias)
        for other in extra:
            for analyte, direction in other.bias:
                bias.setdefault(analyte, direction)
        issued = self.when + timedelta(minutes=rng.randint(40, 180))
        for key in lab_keys:
            lab = data.LABS[key]
            svc = lab.service
            order_no = self._order_no()
            labs.append(ServiceOrder(order_no=order_no, code=svc.code, name=svc.name))
            self._fee((svc.code, svc.national_code, svc.name, svc.price, svc.category,
                       svc.insurance_class))
            for code in lab.analytes:
                results.append(self._result(data.ANALYTES[code], bias.get(code), order_no, issued))
        if any(data.LABS[k].blood for k in lab_keys):
            self._fee(data.BLOOD_DRAW_FEE)

        if person.insutype and rng.random() < (0.55 if person.migrant else 0.92):
            payment = Payment(kind="insured", insurance_type=person.insutype)
        else:
            payment = Payment(kind="self_pay")

        cards = [*person.cards,
                 CardIdentifier(type=CardType.HOSPITAL_CARD, value=self.card_no, issuer=hospital.code)]
        patient = Patient(
            name=person.name,
            sex=Coded(system=data.SEX_SYSTEM, code=person.sex, display=data.SEX_DISPLAY[person.sex]),
            birth_date=person.birth_date, phone=person.phone, address=person.address,
            ethnicity=person.ethnicity, cards=cards,
        )
        return OutpatientVisit(
            org=self.org, visit_no=self.visit_no, visit_time=self.when,
            visit_type=VisitType.EMERGENCY if emergency else VisitType.OUTPATIENT,
            department=Department(code=dept, name=data.DEPARTMENTS[dept]),
            doctor=Doctor(code=doctor_code, name=doctor_name),
            patient=patient, chief_complaint=complaint,
            symptoms=[Symptom(text=s, onset=onset) for s in symptoms],
            diagnoses=diagnoses, drugs=drugs, exams=exams, labs=labs, results=results,
            fees=self.fees, payment=payment,
        )


def _can_be_emergency(person: _Person, age: int) -> bool:
    return any(data.EMERGENCY_DEPT in d.depts and _eligible(d, person, age)
               for d in data.DIAGNOSES.values())


def generate(n: int, org: str | None = None, seed: int = 0, orgs: int = 3) -> Iterator[OutpatientVisit]:
    """Yield ``n`` realistic outpatient visits in chronological order.

    With ``org`` every visit is sent by that organisation (its name is taken from the
    synthetic hospitals when the code is one of them, otherwise made up); without it the
    visits are spread over the ``orgs`` hospitals of ``hospitals(orgs, seed)``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if org is None and orgs < 1:
        raise ValueError("orgs must be at least 1")
    if n == 0:
        return iter(())
    return _generate(n, org, seed, orgs)


def _generate(n: int, org: str | None, seed: int, orgs: int) -> Iterator[OutpatientVisit]:
    rng = random.Random(f"synth:{seed}")
    sites = [_org_hospital(org, seed, orgs)] if org else _hospitals(orgs, seed)
    org_models = [Organization(code=h.code, name=h.name) for h in sites]

    used_ids: set[str] = set()
    people = []
    for _ in range(max(1, n // 2)):
        home = rng.randrange(len(sites))
        people.append(_make_person(rng, home, sites[home].region, used_ids))
    cum_weights = list(itertools.accumulate(p.weight for p in people))

    # plan every visit (who, where, when), then build them in time order
    plan = []
    for index in range(n):
        p = bisect.bisect(cum_weights, rng.random() * cum_weights[-1])
        p = min(p, len(people) - 1)
        person = people[p]
        site = person.home if rng.random() < 0.6 else rng.randrange(len(sites))
        emergency = rng.random() < 0.12
        when = _visit_time(rng, emergency)
        if emergency and not _can_be_emergency(person, _age(person.birth_date, when.date())):
            emergency = False
        plan.append((when, index, p, site, emergency, rng.getrandbits(64)))
    plan.sort(key=lambda item: (item[0], item[1]))

    for when, _, p, site, emergency, visit_seed in plan:
        hospital = sites[site]
        day = when.date()
        hospital.daily[day] = hospital.daily.get(day, 0) + 1
        visit_no = f"{'JZ' if emergency else 'MZ'}{day:%y%m%d}{hospital.daily[day]:05d}"
        card_no = hospital.cards.get(p)
        if card_no is None:
            card_no = _new_card(hospital, visit_seed)
            hospital.cards[p] = card_no
        yield _Builder(random.Random(visit_seed), people[p], hospital, when, emergency,
                       visit_no, card_no, org_models[site]).build()


def _new_card(hospital: _Hospital, salt: int) -> str:
    rng = random.Random(f"{hospital.code}:{salt}")
    while True:
        number = f"{hospital.card_prefix}{_digits(rng, hospital.card_digits)}"
        if number not in hospital.card_numbers and number.lstrip("0"):
            hospital.card_numbers.add(number)
            return number


def write_jsonl(visits: Iterable[OutpatientVisit], fp: IO[str]) -> int:
    """Write one visit per line as JSON; returns how many were written."""
    count = 0
    for visit in visits:
        fp.write(visit.to_json().decode())
        fp.write("\n")
        count += 1
    return count


def _v2_kinds(visit: OutpatientVisit) -> list[str]:
    """The HL7 v2 messages a HIS sends for ``visit``: ADT^A04 (registration), DFT^P03 when
    it has fee lines, ORU^R01 when it has lab results."""
    return ["ADT^A04"] + (["DFT^P03"] if visit.fees else []) + (
        ["ORU^R01"] if visit.labs and visit.results else [])


def v2_messages(visits: Iterable[OutpatientVisit], *, prefix: str = "S",
                charsets: tuple[str, ...] = ("utf-8",),
                now: datetime | None = None) -> Iterator[bytes]:
    """Each visit as its HL7 v2.5 messages (``_v2_kinds``; ER7, a CR after each segment):
    MSH-10 ``{prefix}-{i}-ADT`` for visit ``i``, visit ``i`` encoded in
    ``charsets[i % len(charsets)]`` (``utf-8`` / ``gb18030``), MSH-7 ``now`` or else the
    visit's registration time (the same visits give the same bytes)."""
    from gateway.hl7.outbound import to_v2  # hl7apy: loaded only when messages are wanted

    for i, visit in enumerate(visits):
        for kind in _v2_kinds(visit):
            yield to_v2(visit, kind, control_id=f"{prefix}-{i}-{kind[:3]}",
                        now=now or visit.visit_time, charset=charsets[i % len(charsets)])


def write_v2(messages: Iterable[bytes], fp: IO[bytes]) -> int:
    """Messages one after another, each followed by a line feed (a file of messages as
    integration engines read one, e.g. HAPI's message iterator); returns how many."""
    count = 0
    for message in messages:
        fp.write(message)
        fp.write(b"\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write synthetic outpatient visits as JSON lines.")
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--orgs", type=int, default=3)
    parser.add_argument("--org")
    parser.add_argument("--hospitals", action="store_true", help="list the hospitals and exit")
    args = parser.parse_args(argv)
    if args.hospitals:
        for code, name in hospitals(args.orgs, args.seed):
            print(f"{code}\t{name}")
        return
    write_jsonl(generate(args.n, org=args.org, seed=args.seed, orgs=args.orgs), sys.stdout)


if __name__ == "__main__":
    main()
