"""The NHSA transaction inputs, built from the canonical visit and the settlement state.
Pure functions: no I/O, the same visit and state give the same input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.identifiers import CardType
from gateway.insurance.envelope import CHINA
from gateway.insurance.money import ZERO, money
from gateway.visit import OutpatientVisit

J = dict[str, Any]


def ts(value: datetime) -> str:
    return f"{value.astimezone(CHINA):%Y-%m-%d %H:%M:%S}"


def person_query(visit: OutpatientVisit) -> J:
    """1101 ``data``: the social security card (03) first, else the NHSA e-voucher (01)."""
    by = {c.type: c.value for c in visit.patient.cards}
    if CardType.SSC_CARD_NO in by or CardType.SSC_CARD_ID in by:
        cert_type, cert_no = "03", by.get(CardType.SSC_CARD_NO) or by[CardType.SSC_CARD_ID]
    else:
        cert_type, cert_no = "01", by.get(CardType.NHSA_EVOUCHER, "")
    return {"mdtrt_cert_type": cert_type, "mdtrt_cert_no": cert_no,
            "card_sn": by.get(CardType.SSC_CARD_ID, ""), "begntime": ts(visit.visit_time),
            "psn_cert_type": "01" if CardType.CITIZEN_ID in by else "",
            "certno": by.get(CardType.CITIZEN_ID, ""), "psn_name": visit.patient.name}


def register(visit: OutpatientVisit, st: dict[str, str]) -> J:
    """2201 input."""
    return {"data": {
        "psn_no": st["psn_no"], "insutype": st["insutype"], "begntime": ts(visit.visit_time),
        "mdtrt_cert_type": st["mdtrt_cert_type"], "mdtrt_cert_no": st["mdtrt_cert_no"],
        "ipt_otp_no": visit.visit_no, "atddr_no": visit.doctor.code, "dr_name": visit.doctor.name,
        "dept_code": visit.department.code, "dept_name": visit.department.name,
        "caty": visit.department.code}}


def _primary(visit: OutpatientVisit):
    return next((d for d in visit.diagnoses if d.primary),
                visit.diagnoses[0] if visit.diagnoses else None)


def visit_info(visit: OutpatientVisit, st: dict[str, str]) -> J:
    """2203 input: the visit and its diagnoses."""
    primary = _primary(visit)
    return {
        "mdtrtinfo": {"mdtrt_id": st["mdtrt_id"], "psn_no": st["psn_no"],
                      "med_type": st["med_type"], "begntime": ts(visit.visit_time),
                      "main_cond_dscr": visit.chief_complaint or "",
                      "dise_codg": primary.code if primary else "",
                      "dise_name": primary.name if primary else ""},
        "diseinfo": [{"diag_type": "1", "diag_srt_no": str(n), "diag_code": d.code,
                      "diag_name": d.name, "diag_dept": visit.department.code,
                      "dise_dor_no": visit.doctor.code, "dise_dor_name": visit.doctor.name,
                      "diag_time": ts(visit.visit_time), "vali_flag": "1"}
                     for n, d in enumerate(visit.diagnoses, start=1)]}


def fee_details(visit: OutpatientVisit, st: dict[str, str], codes: dict[str, str]) -> J:
    """2204 input: one line per fee, with its national list code."""
    primary = _primary(visit)
    return {"feedetail": [{
        "feedetl_sn": f.line_no, "mdtrt_id": st["mdtrt_id"], "psn_no": st["psn_no"],
        "chrg_bchno": st["chrg_bchno"], "dise_codg": primary.code if primary else "",
        "rxno": "", "rx_circ_flag": "0", "fee_ocur_time": ts(visit.visit_time),
        "med_list_codg": codes[f.line_no], "medins_list_codg": f.item_code,
        "det_item_fee_sumamt": str(money(f.amount)), "cnt": str(f.quantity),
        "pric": str(f.unit_price), "bilg_dept_codg": visit.department.code,
        "bilg_dr_codg": visit.doctor.code, "hosp_appr_flag": "1",
        "med_chrgitm_type": f.category} for f in visit.fees]}


def settlement(visit: OutpatientVisit, st: dict[str, str], rows: list[J], *,
               acct_used: bool, invono: str) -> J:
    """2206 / 2207 ``data`` (2206 ignores the 2207-only fields)."""
    def total(name: str) -> str:
        return str(sum((money(r.get(name, "0")) for r in rows), ZERO))

    return {"psn_no": st["psn_no"], "mdtrt_cert_type": st["mdtrt_cert_type"],
            "mdtrt_cert_no": st["mdtrt_cert_no"], "med_type": st["med_type"],
            "medfee_sumamt": str(sum((money(f.amount) for f in visit.fees), ZERO)),
            "psn_setlway": "01", "mdtrt_id": st["mdtrt_id"], "chrg_bchno": st["chrg_bchno"],
            "insutype": st["insutype"], "acct_used_flag": "1" if acct_used else "0",
            "invono": invono, "fulamt_ownpay_amt": total("fulamt_ownpay_amt"),
            "overlmt_selfpay": total("overlmt_amt"), "preselfpay_amt": total("preselfpay_amt"),
            "inscp_scp_amt": total("inscp_scp_amt")}
