"""The reference insurance center's rules (``insurance_rules.toml``) and its arithmetic.

Pure functions over ``Decimal``: what the rules file's header documents, line by line.
No I/O besides loading the file; the peer (``insurance.py``) keeps the state.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).with_name("insurance_rules.toml")
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def text(value: Decimal) -> str:
    return str(money(value))


@dataclass(frozen=True)
class Fund:
    deductible: Decimal
    fund_ratio: Decimal
    annual_cap: Decimal
    account_balance: Decimal


@dataclass(frozen=True)
class ItemRule:
    lv: str  # 01 甲, 02 乙, 03 丙
    selfpay_prop: Decimal = Decimal("0")


@dataclass(frozen=True)
class Rules:
    mdtrtarea_admvs: str
    sign_ttl_seconds: int
    auto_enrol: bool
    auto_enrol_insutype: str
    hmac_key: str
    funds: dict[str, Fund]
    catalogue: dict[str, ItemRule]
    prefixes: dict[str, ItemRule]
    unknown: ItemRule = field(default_factory=lambda: ItemRule("03"))

    def item(self, code: str) -> ItemRule:
        if code in self.catalogue:
            return self.catalogue[code]
        for size in range(len(code), 0, -1):
            rule = self.prefixes.get(code[:size])
            if rule is not None:
                return rule
        return self.unknown

    def fund(self, insutype: str) -> Fund:
        return self.funds.get(insutype) or Fund(ZERO, Decimal("0"), ZERO, ZERO)


def _item(spec: dict[str, Any], where: str) -> ItemRule:
    lv = str(spec.get("lv", ""))
    if lv not in ("01", "02", "03"):
        raise ValueError(f"{where}: lv must be 01, 02 or 03")
    prop = Decimal(str(spec.get("selfpay_prop", "0")))
    if not Decimal("0") <= prop <= Decimal("1"):
        raise ValueError(f"{where}: selfpay_prop must be between 0 and 1")
    return ItemRule(lv, prop)


def load_rules(path: Path | None = None) -> Rules:
    data = tomllib.loads((path or RULES_FILE).read_text(encoding="utf-8"))
    funds = {}
    for insutype, spec in data.get("insutype", {}).items():
        funds[str(insutype)] = Fund(money(spec["deductible"]), Decimal(str(spec["fund_ratio"])),
                                    money(spec["annual_cap"]),
                                    money(spec.get("account_balance", "0")))
    return Rules(
        mdtrtarea_admvs=str(data.get("mdtrtarea_admvs", "110000")),
        sign_ttl_seconds=int(data.get("sign_ttl_seconds", 43200)),
        auto_enrol=bool(data.get("auto_enrol", True)),
        auto_enrol_insutype=str(data.get("auto_enrol_insutype", "310")),
        hmac_key=str(data.get("hmac_key", "")),
        funds=funds,
        catalogue={k: _item(v, f"catalogue.{k}") for k, v in data.get("catalogue", {}).items()},
        prefixes={k: _item(v, f"prefix.{k}") for k, v in data.get("prefix", {}).items()},
        unknown=_item(data.get("unknown", {"lv": "03"}), "unknown"),
    )


def classify(rules: Rules, line: dict[str, Any]) -> dict[str, Any]:
    """One 2204 fee line → its result row (class, self-pay parts, in-scope amount)."""
    amount = money(line["det_item_fee_sumamt"])
    rule = rules.item(str(line.get("med_list_codg", "")))
    fulamt = preself = ZERO
    if rule.lv == "03":
        fulamt = amount
    elif rule.lv == "02":
        preself = money(amount * rule.selfpay_prop)
    return {
        "feedetl_sn": line["feedetl_sn"], "det_item_fee_sumamt": text(amount),
        "cnt": str(line.get("cnt", "")), "pric": str(line.get("pric", "")),
        "pric_uplmt_amt": "0.00", "selfpay_prop": str(rule.selfpay_prop),
        "fulamt_ownpay_amt": text(fulamt), "overlmt_amt": "0.00",
        "preselfpay_amt": text(preself), "inscp_scp_amt": text(amount - fulamt - preself),
        "chrgitm_lv": rule.lv, "med_chrgitm_type": str(line.get("med_chrgitm_type", "")),
        "lmt_used_flag": "0",
    }


@dataclass(frozen=True)
class Accumulators:
    dedc_used: Decimal = ZERO
    fund_paid: Decimal = ZERO


def settle(fund: Fund, rows: list[dict[str, Any]], acc: Accumulators, balance: Decimal,
           acct_used: bool) -> dict[str, str]:
    """The settlement figures (setlinfo, without ids) for uploaded fee rows."""
    medfee = sum((money(r["det_item_fee_sumamt"]) for r in rows), ZERO)
    fulamt = sum((money(r["fulamt_ownpay_amt"]) for r in rows), ZERO)
    preself = sum((money(r["preselfpay_amt"]) for r in rows), ZERO)
    inscp = sum((money(r["inscp_scp_amt"]) for r in rows), ZERO)
    dedc = min(inscp, max(ZERO, fund.deductible - acc.dedc_used))
    eligible = inscp - dedc
    hifp = min(money(eligible * fund.fund_ratio), max(ZERO, fund.annual_cap - acc.fund_paid))
    psn_part = medfee - hifp
    acct = min(psn_part, max(ZERO, balance)) if acct_used else ZERO
    return {k: text(v) for k, v in {
        "medfee_sumamt": medfee, "fulamt_ownpay_amt": fulamt, "overlmt_selfpay": ZERO,
        "preselfpay_amt": preself, "inscp_scp_amt": inscp, "act_pay_dedc": dedc,
        "hifp_pay": hifp, "pool_prop_selfpay": eligible - hifp, "cvlserv_pay": ZERO,
        "hifes_pay": ZERO, "hifmi_pay": ZERO, "hifob_pay": ZERO, "maf_pay": ZERO,
        "fund_pay_sumamt": hifp, "psn_part_amt": psn_part, "acct_pay": acct,
        "psn_cash_pay": psn_part - acct, "hosp_part_amt": ZERO, "balc": balance - acct,
        "acct_mulaid_pay": ZERO,
    }.items()}
