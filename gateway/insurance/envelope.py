"""The NHSA interface envelope: message ids, the request, the answer.

    msgid  = fixmedins_code (12) + yyyyMMddHHmmss (14) + sequence (4), e.g.
             H33018300564202201211221129999 — the sequence comes from Redis, so ids are
             unique across gateway processes.
    request  {infno, msgid, mdtrtarea_admvs, insuplc_admdvs, recer_sys_code, dev_no,
              dev_safe_info, cainfo, signtype, infver, opter_type, opter, opter_name,
              inf_time, fixmedins_code, fixmedins_name, sign_no, input}
    answer   {infcode (0 success, negative failure), inf_refmsgid, refmsg_time,
              respond_time, err_msg, warn_msg, output}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

INFVER = "V1.0"
CHINA = timezone(timedelta(hours=8))


def fixmedins_code(org_code: str) -> str:
    """The designated-institution code (12 characters): the organisation code, right-padded
    with 0 when shorter."""
    return org_code[:12].ljust(12, "0")


def now_local() -> datetime:
    return datetime.now(CHINA)


def msgid(fixmedins: str, when: datetime, sequence: int) -> str:
    return f"{fixmedins}{when:%Y%m%d%H%M%S}{sequence % 10000:04d}"


def request(*, infno: str, msgid_: str, fixmedins: str, fixmedins_name: str, sign_no: str,
            input_: dict[str, Any], mdtrtarea_admvs: str, insuplc_admdvs: str = "",
            opter: str = "cashier", opter_name: str = "cashier", opter_type: str = "1",
            when: datetime | None = None) -> dict[str, Any]:
    return {
        "infno": infno, "msgid": msgid_, "mdtrtarea_admvs": mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs, "recer_sys_code": "YKT", "dev_no": "",
        "dev_safe_info": "", "cainfo": "", "signtype": "", "infver": INFVER,
        "opter_type": opter_type, "opter": opter, "opter_name": opter_name,
        "inf_time": f"{when or now_local():%Y-%m-%d %H:%M:%S}",
        "fixmedins_code": fixmedins, "fixmedins_name": fixmedins_name, "sign_no": sign_no,
        "input": input_,
    }


@dataclass(frozen=True)
class Answer:
    infno: str
    msgid: str
    infcode: int
    err_msg: str = ""
    warn_msg: str = ""
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.infcode == 0


def answer(infno: str, msgid_: str, body: Any) -> Answer:
    """Read an answer; a body that is not one raises ValueError (an unknown outcome)."""
    if not isinstance(body, dict) or "infcode" not in body:
        raise ValueError("not an NHSA answer (no infcode)")
    try:
        code = int(body["infcode"])
    except (TypeError, ValueError):
        raise ValueError(f"infcode {body['infcode']!r} is not a number") from None
    ref = body.get("inf_refmsgid")
    if ref and str(ref) != msgid_:
        raise ValueError(f"the answer is for msgid {ref}, not {msgid_}")
    output = body.get("output") or {}
    return Answer(infno, msgid_, code, str(body.get("err_msg") or ""),
                  str(body.get("warn_msg") or ""), output if isinstance(output, dict) else {})
