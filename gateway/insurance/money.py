"""Money: ``Decimal`` rounded to 0.01 with ROUND_HALF_UP, and the per-item view of a settlement.

The insurer answers with totals (2206/2207 ``setlinfo``) and per-line classes (2204
``result``). The gateway apportions the totals to the fee lines, in line order, so that
every column sums exactly to its total:

* ``act_pay_dedc``: consumed line by line from each line's in-scope amount;
* ``fund_pay_sumamt``: shared in proportion to each line's in-scope amount above the
  deductible, rounded; the last such line takes the remainder;
* ``psn_part_amt`` = line amount − its fund share;
* ``acct_pay``: consumed line by line from each line's ``psn_part_amt``;
* ``psn_cash_pay`` = ``psn_part_amt`` − ``acct_pay``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
TOTAL_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "preselfpay_amt", "inscp_scp_amt",
                "act_pay_dedc", "hifp_pay", "pool_prop_selfpay", "fund_pay_sumamt",
                "psn_part_amt", "acct_pay", "psn_cash_pay", "balc")


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def totals(setlinfo: dict[str, Any]) -> dict[str, str]:
    return {k: str(money(setlinfo.get(k) or "0")) for k in TOTAL_FIELDS}


def apportion(rows: list[dict[str, Any]], setlinfo: dict[str, Any]) -> list[dict[str, str]]:
    """Per-line figures for 2204 result ``rows`` (in line order) and the totals."""
    dedc_left = money(setlinfo.get("act_pay_dedc", "0"))
    fund = money(setlinfo.get("fund_pay_sumamt", "0"))
    acct_left = money(setlinfo.get("acct_pay", "0"))
    lines = []
    for row in rows:
        inscp = money(row["inscp_scp_amt"])
        dedc = min(inscp, dedc_left)
        dedc_left -= dedc
        lines.append({"amount": money(row["det_item_fee_sumamt"]), "inscp": inscp,
                      "dedc": dedc, "eligible": inscp - dedc})
    eligible = sum((x["eligible"] for x in lines), ZERO)
    last = max((i for i, x in enumerate(lines) if x["eligible"] > 0), default=-1)
    shared = ZERO
    for i, x in enumerate(lines):
        if i == last:
            x["fund"] = fund - shared
        elif eligible > 0:
            x["fund"] = money(fund * x["eligible"] / eligible)
        else:
            x["fund"] = ZERO
        shared += x["fund"]
    out = []
    for row, x in zip(rows, lines, strict=True):
        part = x["amount"] - x["fund"]
        acct = min(part, acct_left)
        acct_left -= acct
        out.append({
            "feedetl_sn": str(row["feedetl_sn"]), "chrgitm_lv": str(row.get("chrgitm_lv", "")),
            "selfpay_prop": str(row.get("selfpay_prop", "")),
            "medfee_sumamt": str(x["amount"]),
            "fulamt_ownpay_amt": str(money(row.get("fulamt_ownpay_amt", "0"))),
            "preselfpay_amt": str(money(row.get("preselfpay_amt", "0"))),
            "inscp_scp_amt": str(x["inscp"]), "act_pay_dedc": str(x["dedc"]),
            "fund_pay_sumamt": str(x["fund"]), "psn_part_amt": str(part),
            "acct_pay": str(acct), "psn_cash_pay": str(part - acct),
        })
    return out
