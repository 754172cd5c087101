"""When real-time settlement is impossible (seed 004): the patient pays in full now and
claims later at the insurance office. Each case has a stable reason code:

    NO_CARD                      no insured card (social security card or NHSA e-voucher)
                                 among the cards presented, or only a cancelled one — e.g.
                                 newly insured, card not yet issued; an insured patient who
                                 does not show the card
    EMERGENCY_NO_CARD            emergency visit at a designated hospital without the card
    CARD_LOST                    the card presented is reported lost (card status)
    CARD_REPLACING               the card is frozen while being replaced (card status
                                 ``frozen``, or the insurer says the card is frozen)
    MANUAL_PERIOD                the insurer says the person is in a manual-reimbursement period
    ARREARS                      the insurer says contributions are in arrears
    FAMILY_PLANNING_NO_MATERNITY family-planning surgery (ICD-10 Z30.*, O04.*) without
                                 maternity insurance (insutype 510)
    OUT_OF_AREA                  the insurer says the person is insured elsewhere and not
                                 filed for out-of-area care
    DRUGS_BOUGHT_OUTSIDE         the cashier says the drugs were bought outside
                                 (``drugs_bought_outside: true`` in the request)
    NOT_INSURED                  a self-pay visit, or the insurer does not know the person

The insurer's refusals are recognised by the phrases of their ``err_msg`` (``INSURER_PHRASES``,
data: regions word them differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.identifiers import CardType

INSURED_CARDS = (CardType.SSC_CARD_NO, CardType.SSC_CARD_ID, CardType.NHSA_EVOUCHER)
FAMILY_PLANNING_ICD10 = ("Z30", "O04")

REASONS: dict[str, str] = {
    "NO_CARD": "未持社会保障卡或医保电子凭证 (no insured card presented)",
    "EMERGENCY_NO_CARD": "急诊未持卡 (emergency visit without the card)",
    "CARD_LOST": "社会保障卡已挂失 (the card is reported lost)",
    "CARD_REPLACING": "社会保障卡补换中或已冻结 (the card is being replaced or frozen)",
    "MANUAL_PERIOD": "处于手工报销期 (manual-reimbursement period)",
    "ARREARS": "医保欠费期间 (insurance contributions in arrears)",
    "FAMILY_PLANNING_NO_MATERNITY": "计划生育手术未参加生育保险 (family-planning surgery "
                                    "without maternity insurance)",
    "OUT_OF_AREA": "异地就医未备案 (care outside the insured area without filing)",
    "DRUGS_BOUGHT_OUTSIDE": "外购药品 (drugs bought outside)",
    "NOT_INSURED": "非医保结算 (not settled as insured: self-pay, or unknown to the insurer)",
}

INSURER_PHRASES: tuple[tuple[str, str], ...] = (
    ("欠费", "ARREARS"), ("手工报销", "MANUAL_PERIOD"), ("异地", "OUT_OF_AREA"),
    ("冻结", "CARD_REPLACING"), ("挂失", "CARD_LOST"), ("人员信息不存在", "NOT_INSURED"),
    ("未参保", "NOT_INSURED"),
)


@dataclass(frozen=True)
class NoRealtime(Exception):
    code: str
    expression: str = ""
    detail: str = ""

    def message(self, amount: Decimal) -> str:
        text = REASONS[self.code]
        extra = f" — {self.detail}" if self.detail else ""
        return (f"{text}{extra}. 不能实时结算：患者全额自付 {amount} 元，凭票据回参保地手工报销。"
                f" Real-time settlement is not possible: the patient pays the full {amount} "
                "now and claims reimbursement later with the receipts.")


def from_insurer(err_msg: str) -> str | None:
    for phrase, code in INSURER_PHRASES:
        if phrase in err_msg:
            return code
    return None


def is_family_planning(visit) -> bool:
    return any(d.code.upper().startswith(FAMILY_PLANNING_ICD10) for d in visit.diagnoses)


def check_visit(visit, statuses: dict[int, str], *, drugs_bought_outside: bool) -> None:
    """The cases the gateway can see itself. ``statuses``: card index → status in force."""
    if visit.payment is not None and visit.payment.kind == "self_pay":
        raise NoRealtime("NOT_INSURED", "payment.kind", "the visit was submitted as self-pay")
    insured = [i for i, c in enumerate(visit.patient.cards)
               if c.type in INSURED_CARDS and statuses.get(i) != "cancelled"]
    if not insured:
        emergency = visit.visit_type.value == "emergency"
        raise NoRealtime("EMERGENCY_NO_CARD" if emergency else "NO_CARD", "patient.cards")
    for i in insured:
        status = statuses.get(i)
        if status == "lost":
            raise NoRealtime("CARD_LOST", f"patient.cards[{i}]")
        if status == "frozen":
            raise NoRealtime("CARD_REPLACING", f"patient.cards[{i}]")
    if drugs_bought_outside:
        raise NoRealtime("DRUGS_BOUGHT_OUTSIDE", "drugs_bought_outside")
