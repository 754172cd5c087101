"""The canonical outpatient visit: what every adapter produces and every renderer reads.

One pydantic model. Field names are the gateway's own (snake_case, English); code values
keep the system they were sent in, and the translate stage maps them to national codes.
Validation here is about shape and self-consistency (a citizen ID's check digit, a fee
line's amount); terminology and identity are later stages.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.identifiers import CardType, citizen_id_problem
from gateway.jsonio import dumps

Text = Annotated[str, Field(min_length=1, max_length=200)]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
LongText = Annotated[str, Field(min_length=1, max_length=4000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Coded(_Model):
    """A code as the sender sent it, with the system it belongs to."""

    system: Code = Field(description="code system URI or the sender's local table name")
    code: Code
    display: Text | None = None


class CardIdentifier(_Model):
    type: CardType
    value: Code
    issuer: Code | None = Field(
        None, description="issuing organisation code; for hospital cards, defaults to the sender"
    )

    @field_validator("value")
    @classmethod
    def _check_citizen_id(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("type") is CardType.CITIZEN_ID:
            problem = citizen_id_problem(value)
            if problem:
                raise ValueError(f"invalid citizen ID number: {problem}")
        return value


class Organization(_Model):
    code: Code = Field(description="organisation code (机构代码)")
    name: Text


class Department(_Model):
    code: Code
    name: Text


class Doctor(_Model):
    code: Code
    name: Text


class Patient(_Model):
    name: Text
    sex: Coded = Field(description="sex as sent, e.g. GB/T 2261.1 or a local table")
    birth_date: date | None = None
    phone: Annotated[str, Field(max_length=32)] | None = None
    address: Text | None = None
    ethnicity: Annotated[str, Field(pattern=r"^(0[1-9]|[1-4]\d|5[0-6]|9[78])$")] | None = Field(
        None, description="GB/T 3304 two-digit code: 01-56, 97 other, 98 foreign-born Chinese citizen"
    )
    cards: list[CardIdentifier] = Field(min_length=1, max_length=20)


class VisitType(StrEnum):
    OUTPATIENT = "outpatient"
    EMERGENCY = "emergency"


class Symptom(_Model):
    text: LongText
    code: Coded | None = None
    onset: date | None = None


class Diagnosis(_Model):
    system: Code = Field("ICD-10", description="ICD-10 (China clinical or NHSA edition), or a URI")
    code: Code
    name: Text
    primary: bool = False


class Quantity(_Model):
    value: Decimal = Field(ge=0)
    unit: Annotated[str, Field(max_length=32)] | None = None


class DrugOrder(_Model):
    order_no: Code
    code: Code
    name: Text
    strength: Text | None = None
    dose: Quantity | None = None
    route: Text | None = None
    frequency: Text | None = None
    days: int | None = Field(None, ge=0, le=366)
    quantity: Quantity | None = None


class ServiceOrder(_Model):
    """An exam or lab order."""

    order_no: Code
    code: Code
    name: Text


class ReferenceRange(_Model):
    low: Decimal | None = None
    high: Decimal | None = None
    text: Text | None = None


class AbnormalFlag(StrEnum):
    NORMAL = "N"
    HIGH = "H"
    LOW = "L"
    ABNORMAL = "A"
    CRITICAL_HIGH = "HH"
    CRITICAL_LOW = "LL"


class LabResult(_Model):
    order_no: Code | None = Field(None, description="the lab order this result answers")
    code: Code
    name: Text
    # A numeric result and a text one are different fields (as FHIR's valueQuantity and
    # valueString are): "145" sent as text stays text, and 5.60 keeps its digits.
    value: Decimal | None = Field(None, description="a numeric result (valueQuantity)")
    value_text: Text | None = Field(None, description="a text result, e.g. 阴性 (valueString)")
    unit: Annotated[str, Field(max_length=32)] | None = None
    reference_range: ReferenceRange | None = None
    abnormal_flag: AbnormalFlag | None = None
    issued: datetime | None = None

    @model_validator(mode="after")
    def _one_value(self) -> LabResult:
        if (self.value is None) == (self.value_text is None):
            raise ValueError("a result has either a numeric value or a value_text, not both "
                             "or neither")
        return self


_CENT = Decimal("0.01")


class FeeItem(_Model):
    line_no: Code
    item_code: Code = Field(description="the hospital's own item code")
    national_code: Code | None = Field(None, description="NHSA list code (医保目录编码) if known")
    name: Text
    category: Code = Field(description="NHSA med_chrgitm_type, e.g. 09 西药费")
    unit_price: Decimal = Field(ge=0, max_digits=16, decimal_places=4)
    quantity: Decimal = Field(gt=0, max_digits=16, decimal_places=4)
    amount: Decimal = Field(ge=0, max_digits=16, decimal_places=2)
    insurance_class: Code | None = Field(None, description="NHSA chrgitm_lv: 01 甲 02 乙 03 丙")

    # pydantic runs an "after" model validator on an instance passed as a field's value too
    # (gateway.stages.parse_v2.KnownParts passes remembered ones): it runs for every fee line
    @model_validator(mode="after")
    def _check_amount(self) -> FeeItem:
        expected = (self.unit_price * self.quantity).quantize(_CENT)
        if abs(expected - self.amount) > _CENT:
            raise ValueError(
                f"amount {self.amount} is not unit_price × quantity ({expected})"
            )
        return self


class Payment(_Model):
    kind: Literal["insured", "self_pay"]
    insurance_type: Code | None = Field(None, description="NHSA insutype, e.g. 310 职工基本医疗保险")


class OutpatientVisit(_Model):
    """One outpatient or emergency visit, as a hospital sends it."""

    org: Organization
    visit_no: Code = Field(description="门(急)诊号, unique within the organisation")
    visit_time: datetime = Field(description="registration time, with its UTC offset")
    visit_type: VisitType = VisitType.OUTPATIENT
    department: Department
    doctor: Doctor
    patient: Patient
    chief_complaint: LongText | None = None
    symptoms: list[Symptom] = Field(default_factory=list, max_length=100)
    diagnoses: list[Diagnosis] = Field(default_factory=list, max_length=100)
    drugs: list[DrugOrder] = Field(default_factory=list, max_length=500)
    exams: list[ServiceOrder] = Field(default_factory=list, max_length=200)
    labs: list[ServiceOrder] = Field(default_factory=list, max_length=200)
    results: list[LabResult] = Field(default_factory=list, max_length=2000)
    fees: list[FeeItem] = Field(default_factory=list, max_length=2000)
    payment: Payment | None = None

    def to_json(self, *, pretty: bool = False) -> bytes:
        """The visit as canonical JSON (decimals as strings, so every digit is kept)."""
        return dumps(self.model_dump(mode="json", exclude_none=True), pretty=pretty)

    @model_validator(mode="after")
    def _check_consistency(self) -> OutpatientVisit:
        if self.visit_time.tzinfo is None:
            raise ValueError("visit_time needs a UTC offset, e.g. 2026-11-23T09:30:00+08:00")
        for name, items, key in (
            ("drugs", self.drugs, "order_no"),
            ("exams", self.exams, "order_no"),
            ("labs", self.labs, "order_no"),
            ("fees", self.fees, "line_no"),
        ):
            if len(items) < 2:  # nothing to repeat (most visits' lists)
                continue
            seen: set[str] = set()
            for item in items:
                value = getattr(item, key)
                if value in seen:
                    raise ValueError(f"{name}: {key} {value!r} appears more than once")
                seen.add(value)
        if len(self.diagnoses) > 1 and sum(d.primary for d in self.diagnoses) > 1:
            raise ValueError("diagnoses: at most one may be primary")
        return self
