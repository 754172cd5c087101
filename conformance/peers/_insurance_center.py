"""The reference insurance center's state and transactions (the NHSA interface's meaning);
``insurance.py`` serves it over HTTP. Keys, rules and refusals: see ``insurance.py``."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import redis

from conformance.peers._insurance_rules import (
    ZERO,
    Accumulators,
    Rules,
    classify,
    money,
    settle,
    text,
)

MSG_TTL = 7 * 86400
CHINA = timezone(timedelta(hours=8))
CUM_FIELDS = ("dedc_used", "fund_paid", "medfee", "psn_part", "acct_paid")

# err_msg texts (the gateway's eligibility module recognises the Chinese phrases)
UNKNOWN_PERSON = "人员信息不存在 (no such insured person)"
FROZEN = "医保卡已冻结，不能实时结算 (card frozen)"
ARREARS = "参保人欠费，暂停享受待遇 (insured person in arrears)"
MANUAL = "参保人处于手工报销期，不能实时结算 (manual-reimbursement period)"
OUT_OF_AREA = "异地就医未备案，不能直接结算 (out-of-area care not filed)"
BAD_SIGN_NO = "签到编号无效或已过期 (sign_no invalid or expired)"
STATUS_REFUSALS = {"frozen": FROZEN, "arrears": ARREARS, "manual": MANUAL}


class Refusal(Exception):
    def __init__(self, err_msg: str, infcode: int = -1):
        super().__init__(err_msg)
        self.err_msg, self.infcode = err_msg, infcode


def _now() -> str:
    return f"{datetime.now(CHINA):%Y-%m-%d %H:%M:%S}"


def decoded(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


def _valid_citizen_id(value: str) -> bool:
    from gateway.identifiers import citizen_id_problem

    return len(value) == 18 and citizen_id_problem(value) is None


# --------------------------------------------------------------------------- the center


class Center:
    def __init__(self, r: redis.Redis, rules: Rules):
        self.r, self.rules = r, rules

    # -- registry ------------------------------------------------------------------------
    def enrol(self, person: dict[str, Any]) -> str:
        """Add or update a person (registry fields); accumulators and balance are kept."""
        psn_no = str(person.get("psn_no") or f"P{person['certno']}")
        insutypes = [str(i) for i in person.get("insutypes") or [self.rules.auto_enrol_insutype]]
        record = {
            "psn_no": psn_no, "certno": str(person.get("certno", "")),
            "psn_name": str(person.get("psn_name", "")), "gend": str(person.get("gend", "")),
            "brdy": str(person.get("brdy", "")), "insutypes": ",".join(insutypes),
            "status": str(person.get("status", "normal")),
            "insuplc_admdvs": str(person.get("insuplc_admdvs") or self.rules.mdtrtarea_admvs),
            "offsite_filed": "1" if person.get("offsite_filed") else "0",
            "emp_name": str(person.get("emp_name", "")),
        }
        key = f"nhsa:psn:{psn_no}"
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping=record)
        balance = person.get("balc")
        if balance is not None:
            pipe.hset(key, "balc", text(money(balance)))
        else:
            pipe.hsetnx(key, "balc", text(self.rules.fund(insutypes[0]).account_balance))
        for ident in (person.get("certno"), person.get("card_no"), person.get("card_sn"),
                      person.get("evoucher")):
            if ident:
                pipe.set(f"nhsa:idx:{ident}", psn_no)
        pipe.execute()
        return psn_no

    def _find(self, data: dict[str, Any]) -> dict[str, str]:
        for ident in (data.get("mdtrt_cert_no"), data.get("card_sn"), data.get("certno")):
            if ident:
                psn_no = self.r.get(f"nhsa:idx:{ident}")
                if psn_no:
                    return self._person(decoded(psn_no))
        certno = str(data.get("certno") or "")
        if not certno and data.get("mdtrt_cert_type") == "02":
            certno = str(data.get("mdtrt_cert_no") or "")
        if self.rules.auto_enrol and _valid_citizen_id(certno):
            psn_no = self.enrol({
                "certno": certno, "psn_name": data.get("psn_name", ""),
                "card_no": data.get("mdtrt_cert_no") if data.get("mdtrt_cert_type") == "03" else None,
                "card_sn": data.get("card_sn"),
                "evoucher": data.get("mdtrt_cert_no") if data.get("mdtrt_cert_type") == "01" else None,
                "gend": "1" if int(certno[16]) % 2 else "2",
                "brdy": f"{certno[6:10]}-{certno[10:12]}-{certno[12:14]}"})
            return self._person(psn_no)
        raise Refusal(UNKNOWN_PERSON)

    def _person(self, psn_no: str, pipe: Any = None) -> dict[str, str]:
        raw = (pipe or self.r).hgetall(f"nhsa:psn:{psn_no}")
        if not raw:
            raise Refusal(UNKNOWN_PERSON)
        return {decoded(k): decoded(v) for k, v in raw.items()}

    def _eligible(self, person: dict[str, str]) -> None:
        refusal = STATUS_REFUSALS.get(person.get("status", "normal"))
        if refusal:
            raise Refusal(refusal)
        if (person["insuplc_admdvs"][:4] != self.rules.mdtrtarea_admvs[:4]
                and person.get("offsite_filed") != "1"):
            raise Refusal(OUT_OF_AREA)

    # -- the envelope --------------------------------------------------------------------
    def handle(self, env: dict[str, Any]) -> dict[str, Any]:
        infno, msgid = str(env.get("infno", "")), str(env.get("msgid", ""))
        self.r.hincrby("nhsa:stats:received", infno or "?", 1)
        try:
            self._check_signature(env)
            if infno == "9001":
                return self._reply(msgid, self._sign_in(env))
            if not env.get("sign_no") or not self.r.exists(f"nhsa:sign:{env['sign_no']}"):
                raise Refusal(BAD_SIGN_NO)
            if len(msgid) != 30:
                raise Refusal(f"msgid must be 30 characters, not {len(msgid)}")
            handler = HANDLERS.get(infno)
            if handler is None:
                raise Refusal(f"unsupported transaction infno={infno!r}")
            inp = env.get("input") if isinstance(env.get("input"), dict) else {}
        except Refusal as exc:
            return self._refusal(msgid, exc)
        return self._logged(infno, msgid, handler, inp)

    def _check_signature(self, env: dict[str, Any]) -> None:
        if env.get("signtype") == "HMAC-SHA256" and self.rules.hmac_key:
            from gateway.insurance.signing import HmacSigner, canonical_bytes

            if not HmacSigner(self.rules.hmac_key).verify(canonical_bytes(env), str(env.get("cainfo", ""))):
                raise Refusal("签名验证失败 (signature does not verify)")

    def _sign_in(self, env: dict[str, Any]) -> dict[str, Any]:
        sign_no = f"{datetime.now(CHINA):%Y%m%d}{secrets.token_hex(8)}"
        self.r.set(f"nhsa:sign:{sign_no}", str(env.get("fixmedins_code", "")),
                   ex=self.rules.sign_ttl_seconds)
        return {"signinoutb": {"sign_time": _now(), "sign_no": sign_no}}

    def _reply(self, msgid: str, output: dict[str, Any]) -> dict[str, Any]:
        return {"infcode": 0, "inf_refmsgid": msgid, "refmsg_time": _now(),
                "respond_time": _now(), "err_msg": "", "warn_msg": "", "output": output}

    def _refusal(self, msgid: str, exc: Refusal) -> dict[str, Any]:
        return {"infcode": exc.infcode, "inf_refmsgid": msgid, "refmsg_time": _now(),
                "respond_time": _now(), "err_msg": exc.err_msg, "warn_msg": "", "output": {}}

    def _logged(self, infno: str, msgid: str, handler: Any, inp: dict[str, Any]) -> dict[str, Any]:
        """Process once per msgid: the answer is stored in the same transaction as the
        writes, and a re-sent msgid gets the stored answer."""
        msg_key = f"nhsa:msg:{msgid}"

        def tx(pipe: Any) -> dict[str, Any]:
            logged = pipe.get(msg_key)
            if logged:
                return orjson.loads(logged)
            try:
                body = self._reply(msgid, handler(self, pipe, inp, msgid))
            except Refusal as exc:
                body = self._refusal(msgid, exc)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
                if pipe.explicit_transaction:  # never: handlers read everything first
                    raise
                body = self._refusal(msgid, Refusal(f"报文格式错误 (malformed input: "
                                                    f"{type(exc).__name__}: {exc})"))
            if not pipe.explicit_transaction:
                pipe.multi()
            pipe.set(msg_key, orjson.dumps({**body, "infno": infno}), ex=MSG_TTL)
            pipe.hincrby("nhsa:stats:processed", infno, 1)
            return body

        body = self.r.transaction(tx, msg_key, value_from_callable=True)
        body.pop("infno", None)
        return body

    # -- helpers for handlers ------------------------------------------------------------
    def _mdtrt(self, pipe: Any, mdtrt_id: str, psn_no: str | None = None) -> dict[str, str]:
        pipe.watch(f"nhsa:mdtrt:{mdtrt_id}")
        raw = pipe.hgetall(f"nhsa:mdtrt:{mdtrt_id}")
        if not raw:
            raise Refusal(f"就诊信息不存在 (no registration mdtrt_id={mdtrt_id})")
        mdtrt = {decoded(k): decoded(v) for k, v in raw.items()}
        if psn_no and mdtrt["psn_no"] != psn_no:
            raise Refusal("人员编号与就诊信息不符 (psn_no does not match the registration)")
        if mdtrt.get("status") == "cancelled":
            raise Refusal("就诊已撤销 (registration cancelled)")
        return mdtrt

    def _cum(self, pipe: Any, psn_no: str, year: str) -> Accumulators:
        key = f"nhsa:cum:{psn_no}:{year}"
        pipe.watch(key)
        raw = {decoded(k): decoded(v) for k, v in pipe.hgetall(key).items()}
        return Accumulators(money(raw.get("dedc_used", "0")), money(raw.get("fund_paid", "0")))

    def _figures(self, pipe: Any, inp: dict[str, Any]) -> tuple[dict, dict, dict, str]:
        data = inp.get("data") or {}
        psn_no, mdtrt_id = str(data.get("psn_no", "")), str(data.get("mdtrt_id", ""))
        batch = str(data.get("chrg_bchno", ""))
        mdtrt = self._mdtrt(pipe, mdtrt_id, psn_no)
        pipe.watch(f"nhsa:psn:{psn_no}")
        person = self._person(psn_no, pipe)
        self._eligible(person)
        rows = orjson.loads(mdtrt.get(f"fees:{batch}") or b"[]")
        if not rows:
            raise Refusal(f"费用明细不存在 (no fee details uploaded for chrg_bchno={batch})")
        total = sum((money(r["det_item_fee_sumamt"]) for r in rows), ZERO)
        if data.get("medfee_sumamt") is not None and money(data["medfee_sumamt"]) != total:
            raise Refusal(f"医疗费总额与明细不符 (medfee_sumamt {data['medfee_sumamt']} ≠ {total})")
        year = mdtrt["begntime"][:4]
        acc = self._cum(pipe, psn_no, year)
        figures = settle(self.rules.fund(mdtrt["insutype"]), rows, acc,
                         money(person.get("balc", "0")),
                         str(data.get("acct_used_flag", "0")) == "1")
        figures.update({"mdtrt_id": mdtrt_id, "psn_no": psn_no, "insutype": mdtrt["insutype"],
                        "setl_time": _now(), "clr_way": "1", "clr_type": "11",
                        "medins_setl_id": str(data.get("medins_setl_id", ""))})
        return figures, mdtrt, person, year

    def _reverse(self, pipe: Any, setl_id: str) -> dict[str, Any]:
        key = f"nhsa:setl:{setl_id}"
        pipe.watch(key)
        raw = pipe.get(key)
        if not raw:
            raise Refusal(f"结算信息不存在 (no settlement setl_id={setl_id})")
        setl = orjson.loads(raw)
        if setl["status"] == "cancelled":
            raise Refusal(f"结算已撤销 (settlement {setl_id} already cancelled)")
        psn_no, year = setl["psn_no"], setl["year"]
        cum_key, psn_key = f"nhsa:cum:{psn_no}:{year}", f"nhsa:psn:{psn_no}"
        pipe.watch(cum_key, psn_key, f"nhsa:mdtrt:{setl['mdtrt_id']}")
        cum = {decoded(k): decoded(v) for k, v in pipe.hgetall(cum_key).items()}
        balc = money(decoded(pipe.hget(psn_key, "balc")) or "0")
        deltas = {k: money(v) for k, v in setl["deltas"].items()}
        pipe.multi()
        pipe.hset(cum_key, mapping={
            name: text(money(cum.get(name, "0")) - deltas[name]) for name in CUM_FIELDS})
        pipe.hincrby(cum_key, "count", -1)
        pipe.hset(psn_key, "balc", text(balc + deltas["acct_paid"]))
        pipe.hdel(f"nhsa:mdtrt:{setl['mdtrt_id']}", f"setl:{setl['chrg_bchno']}")
        setl["status"] = "cancelled"
        pipe.set(key, orjson.dumps(setl))
        info = {k: (text(-money(v)) if k in _MONEY_FIELDS else v)
                for k, v in setl["setlinfo"].items()}
        return {"setlinfo": {**info, "setl_id": setl_id, "balc": text(balc + deltas["acct_paid"])}}

    # -- transactions --------------------------------------------------------------------
    def t1101(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or {}
        person = self._find(data)
        self._eligible(person)
        insuinfo = [{"balc": person.get("balc", "0.00"), "insutype": t, "psn_type": "11",
                     "psn_insu_stas": "1", "cvlserv_flag": "0",
                     "insuplc_admdvs": person["insuplc_admdvs"], "emp_name": person.get("emp_name", ""),
                     "psn_insu_date": "", "paus_insu_date": ""}
                    for t in person["insutypes"].split(",")]
        return {"baseinfo": {"psn_no": person["psn_no"], "psn_cert_type": "01",
                             "certno": person["certno"], "psn_name": person["psn_name"],
                             "gend": person["gend"], "naty": "", "brdy": person["brdy"], "age": ""},
                "insuinfo": insuinfo, "idetinfo": []}

    def t2201(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or {}
        psn_no, insutype = str(data.get("psn_no", "")), str(data.get("insutype", ""))
        person = self._person(psn_no, pipe)
        self._eligible(person)
        if insutype not in person["insutypes"].split(","):
            raise Refusal(f"参保人未参加该险种 (not insured under insutype {insutype})")
        mdtrt_id = f"MD{pipe.incr('nhsa:seq'):010d}"
        begntime = str(data.get("begntime") or _now())
        pipe.multi()
        pipe.hset(f"nhsa:mdtrt:{mdtrt_id}", mapping={
            "psn_no": psn_no, "insutype": insutype, "begntime": begntime, "status": "registered",
            "ipt_otp_no": str(data.get("ipt_otp_no", "")), "msgid": msgid})
        return {"data": {"mdtrt_id": mdtrt_id, "psn_no": psn_no,
                         "ipt_otp_no": str(data.get("ipt_otp_no", ""))}}

    def t2202(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or inp
        mdtrt_id = str(data.get("mdtrt_id", ""))
        mdtrt = self._mdtrt(pipe, mdtrt_id, str(data.get("psn_no", "")))
        if any(k.startswith("setl:") for k in mdtrt):
            raise Refusal("就诊已结算，不能撤销挂号 (registration has a settlement)")
        pipe.multi()
        pipe.hset(f"nhsa:mdtrt:{mdtrt_id}", "status", "cancelled")
        return {}

    def t2203(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        info = inp.get("mdtrtinfo") or {}
        mdtrt_id = str(info.get("mdtrt_id", ""))
        self._mdtrt(pipe, mdtrt_id, str(info.get("psn_no", "")))
        pipe.multi()
        pipe.hset(f"nhsa:mdtrt:{mdtrt_id}", mapping={
            "med_type": str(info.get("med_type", "")),
            "diseinfo": orjson.dumps(inp.get("diseinfo") or [])})
        return {}

    def t2204(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        lines = inp.get("feedetail") or []
        if not lines or not isinstance(lines, list):
            raise Refusal("费用明细为空 (feedetail is empty)")
        mdtrt_id, batch = str(lines[0].get("mdtrt_id", "")), str(lines[0].get("chrg_bchno", ""))
        if any(str(x.get("mdtrt_id")) != mdtrt_id or str(x.get("chrg_bchno")) != batch for x in lines):
            raise Refusal("明细须属于同一就诊和收费批次 (one mdtrt_id and chrg_bchno per upload)")
        mdtrt = self._mdtrt(pipe, mdtrt_id, str(lines[0].get("psn_no", "")))
        if f"setl:{batch}" in mdtrt:
            raise Refusal(f"该批次已结算 (chrg_bchno {batch} is settled)")
        try:
            rows = [classify(self.rules, x) for x in lines]
        except (KeyError, ArithmeticError, ValueError) as exc:
            raise Refusal(f"费用明细格式错误 (bad fee line: {exc})") from None
        pipe.multi()
        pipe.hset(f"nhsa:mdtrt:{mdtrt_id}", f"fees:{batch}", orjson.dumps(rows))
        return {"result": rows}

    def t2205(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or inp
        mdtrt_id, batch = str(data.get("mdtrt_id", "")), str(data.get("chrg_bchno", ""))
        mdtrt = self._mdtrt(pipe, mdtrt_id, str(data.get("psn_no", "")))
        if f"setl:{batch}" in mdtrt:
            raise Refusal(f"该批次已结算 (chrg_bchno {batch} is settled)")
        pipe.multi()
        pipe.hdel(f"nhsa:mdtrt:{mdtrt_id}", f"fees:{batch}")
        return {}

    def t2206(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        figures, _mdtrt, _person, _year = self._figures(pipe, inp)
        return {"setlinfo": figures, "setldetail": _setldetail(figures)}

    def t2207(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        pipe.watch(f"nhsa:rev:{msgid}")
        if pipe.exists(f"nhsa:rev:{msgid}"):
            raise Refusal("该交易已冲正 (this msgid was reversed by 2601)")
        data = inp.get("data") or {}
        batch = str(data.get("chrg_bchno", ""))
        figures, mdtrt, person, year = self._figures(pipe, inp)
        if f"setl:{batch}" in mdtrt:
            raise Refusal(f"该批次已结算 (chrg_bchno {batch} is settled as {mdtrt[f'setl:{batch}']})")
        psn_no = person["psn_no"]
        setl_id = f"ST{pipe.incr('nhsa:seq'):010d}"
        figures["setl_id"] = setl_id
        deltas = {"dedc_used": figures["act_pay_dedc"], "fund_paid": figures["fund_pay_sumamt"],
                  "medfee": figures["medfee_sumamt"], "psn_part": figures["psn_part_amt"],
                  "acct_paid": figures["acct_pay"]}
        cum_key = f"nhsa:cum:{psn_no}:{year}"
        cum = {decoded(k): decoded(v) for k, v in pipe.hgetall(cum_key).items()}
        pipe.multi()
        pipe.hset(cum_key, mapping={name: text(money(cum.get(name, "0")) + money(deltas[name]))
                                    for name in CUM_FIELDS})
        pipe.hincrby(cum_key, "count", 1)
        pipe.hset(f"nhsa:psn:{psn_no}", "balc", figures["balc"])
        pipe.hset(f"nhsa:mdtrt:{figures['mdtrt_id']}", f"setl:{batch}", setl_id)
        pipe.set(f"nhsa:setl:{setl_id}", orjson.dumps({
            "setl_id": setl_id, "psn_no": psn_no, "year": year, "mdtrt_id": figures["mdtrt_id"],
            "chrg_bchno": batch, "msgid": msgid, "status": "settled", "deltas": deltas,
            "setlinfo": figures}))
        return {"setlinfo": figures, "setldetail": _setldetail(figures)}

    def t2208(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or inp
        return self._reverse(pipe, str(data.get("setl_id", "")))

    def t2601(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or inp
        omsgid = str(data.get("omsgid", ""))
        if len(omsgid) != 30:
            raise Refusal("omsgid must be the 30-character msgid of the original transaction")
        pipe.watch(f"nhsa:msg:{omsgid}")
        logged = pipe.get(f"nhsa:msg:{omsgid}")
        original = orjson.loads(logged) if logged else None
        if original and original.get("infcode") == 0 and original.get("infno") == "2207":
            out = self._reverse(pipe, original["output"]["setlinfo"]["setl_id"])
        else:
            out = {"reversed": "none" if original is None else "nothing to undo"}
        if not pipe.explicit_transaction:
            pipe.multi()
        pipe.set(f"nhsa:rev:{omsgid}", msgid, ex=MSG_TTL)
        return out

    def t5206(self, pipe: Any, inp: dict[str, Any], msgid: str) -> dict[str, Any]:
        data = inp.get("data") or inp
        psn_no = str(data.get("psn_no", ""))
        person = self._person(psn_no, pipe)
        year = str(data.get("cum_ym") or f"{datetime.now(CHINA):%Y}")[:4]
        cum = {decoded(k): decoded(v) for k, v in pipe.hgetall(f"nhsa:cum:{psn_no}:{year}").items()}
        rows = [{"insu_admdvs": person["insuplc_admdvs"], "year": year, "cum_type_code": name,
                 "cum": text(money(cum.get(name, "0")))} for name in CUM_FIELDS]
        return {"cuminfo": rows, "balc": person.get("balc", "0.00"),
                "setl_count": int(cum.get("count", "0") or 0)}

    def accumulators(self, psn_no: str, year: str) -> dict[str, Any]:
        cum = {decoded(k): decoded(v) for k, v in self.r.hgetall(f"nhsa:cum:{psn_no}:{year}").items()}
        person = self._person(psn_no)
        return {**{name: text(money(cum.get(name, "0"))) for name in CUM_FIELDS},
                "count": int(cum.get("count", "0") or 0), "balc": person.get("balc", "0.00")}


_MONEY_FIELDS = {"medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt",
                 "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "pool_prop_selfpay", "cvlserv_pay",
                 "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt",
                 "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt", "acct_mulaid_pay"}


def _setldetail(figures: dict[str, str]) -> list[dict[str, str]]:
    return [{"fund_pay_type": "310100" if figures["insutype"] == "310" else "390100",
             "inscp_scp_amt": figures["inscp_scp_amt"], "crt_payb_lmt_amt": "",
             "fund_payamt": figures["fund_pay_sumamt"], "setl_proc_info": ""}]


HANDLERS = {"1101": Center.t1101, "2201": Center.t2201, "2202": Center.t2202,
            "2203": Center.t2203, "2204": Center.t2204, "2205": Center.t2205,
            "2206": Center.t2206, "2207": Center.t2207, "2208": Center.t2208,
            "2601": Center.t2601, "5206": Center.t5206}
