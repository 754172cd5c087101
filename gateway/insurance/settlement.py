"""Real-time outpatient settlement for a submitted visit: the orchestration.

    preview  → 1101 person → [eligibility] → 2201 register → 2203 visit → 2204 fees → 2206
    settle   → the same steps when not yet done → 2207
    cancel   → 2208 (settled); 2205 + 2202 (previewed only: fees and registration withdrawn)

State-changing messages (2201, 2203, 2204, 2207, 2208, 2601) get a msgid that is written to
the visit's state *before* sending; a message without an answer is re-sent under the same
msgid (the platform answers a msgid once and replays that answer), so a retry never
registers, uploads or charges twice.

Unknown outcome of a 2207 (timeout, connection cut, 5xx):
1. re-send the same 2207 (same msgid) up to three times: the answer, whether it was
   processed the first time or now, decides — settled, or refused;
2. still no answer: reverse it with 2601 (``omsgid`` = the 2207's msgid; the platform also
   refuses a late-arriving original). Reversed: nothing was charged, the cashier gets a
   retryable 503;
3. the 2601 gets no answer either: the visit's status becomes ``unknown`` (listed in
   ``gw:ins:unknown``) and the cashier gets a 503 saying so. The next request for the visit
   (preview, settle, cancel), or ``gateway insurance resolve``, finishes the resolution:
   the 2601 is re-sent under its msgid (or, when none was sent, the 2207) until answered.
Never a double charge (one 2207 msgid per attempt, reversed before another is sent),
never a silent loss (an unanswered attempt stays recorded until resolved).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import orjson
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from gateway import errors, store
from gateway.errors import GatewayError
from gateway.identifiers import CardType, card_system, org_scoped
from gateway.insurance import envelope, fhir, messages, visits
from gateway.insurance.client import NhsaClient, Refused, Unknown
from gateway.insurance.eligibility import (
    NoRealtime,
    check_visit,
    from_insurer,
    is_family_planning,
)
from gateway.insurance.envelope import Answer
from gateway.insurance.money import apportion, money, totals
from gateway.insurance.state import State, fingerprint, idempotent
from gateway.jsonio import dumps
from gateway.logging import get_logger
from gateway.render.fhir import NHSA_CHRGITM_TYPE
from gateway.visit import OutpatientVisit, VisitType
from terminology.local_maps import hospital_first
from terminology.service import NotFound, lookup

log = get_logger(__name__)
ATTEMPTS = 3
SETTLEMENTS = Counter("gateway_settlements_total", "Settlement requests by operation and outcome "
                      "(the status answered, a reason code, or error-<http status>)",
                      ["operation", "outcome"])
INSURER_LATENCY = Histogram("gateway_insurer_seconds", "Round trips to the insurer", ["infno"],
                            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


class SettlementRequest(BaseModel):
    """What the cashier adds to the visit (all optional)."""

    model_config = ConfigDict(extra="forbid")
    acct_used_flag: bool = Field(False, description="pay the self-pay part from the personal account")
    drugs_bought_outside: bool = Field(False, description="the drugs were bought outside (外购药)")
    invono: str = Field("", max_length=20, description="invoice number")


@dataclass(frozen=True)
class VisitRef:
    tid: str
    org: str
    person_id: str
    visit: OutpatientVisit

    @property
    def fixmedins(self) -> str:
        return envelope.fixmedins_code(self.org)


def _refusal(ans: Answer) -> GatewayError:
    return GatewayError.of(f"the insurer refused {ans.infno}: {ans.err_msg} (infcode {ans.infcode})",
                           f"insurer.{ans.infno}", code="business-rule", error_code="8010",
                           status=422)


def _unreachable(text: str, error_code: str = "8011") -> GatewayError:
    return GatewayError.of(text, "insurer", code="transient", error_code=error_code, status=503)


class Settlements:
    def __init__(self, ctx: Any):
        self.s, self.r = ctx.settings, ctx.redis
        self.cards, self.maps = ctx.card_status, ctx.local_maps
        self.state = State(self.r, ctx.settings.record_ttl)
        self.client = NhsaClient(ctx.settings, self.r) if ctx.settings.insurance_url else None

    # -- entry points ---------------------------------------------------------------------
    def run(self, op: str, tid: str, org: str, req: SettlementRequest | None,
            key: str | None) -> tuple[int, Any, bool]:
        self._configured()
        ref = self._visit(tid, org)
        req = req or SettlementRequest()
        fn = {"preview": self._preview, "settle": self._settle, "cancel": self._cancel}[op]

        def guarded() -> tuple[int, Any]:
            with self.state.locked(tid):
                try:
                    return fn(ref, req, key)
                except Refused as exc:  # sign-in refused
                    raise _unreachable(f"the insurer refused sign-in (9001): {exc.answer.err_msg}") from None
                except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                    log.error("unreadable answer from the insurer", tracking_id=tid, operation=op,
                              error=type(exc).__name__)
                    raise GatewayError.of("the insurer's answer could not be read; the visit's "
                                          "settlement state is kept, retry or contact the insurer",
                                          "insurer", code="exception", error_code="8009",
                                          status=502) from None

        try:
            status, body, replayed = idempotent(self.r, org, key,
                                                fingerprint(op, tid, req.model_dump()), guarded)
        except GatewayError as err:
            SETTLEMENTS.labels(op, f"error-{err.status}").inc()
            raise
        outcome = (body.get("reason", {}).get("code") or body.get("status")
                   if isinstance(body, dict) else None) or f"error-{status}"
        SETTLEMENTS.labels(op, outcome if not replayed else "replayed").inc()
        return status, body, replayed

    def _configured(self) -> None:
        if self.client is None:
            raise GatewayError.of("no insurance center is configured (GATEWAY_INSURANCE_URL); "
                                  "settle at the insurance office", "insurer", code="transient",
                                  error_code="8001", status=503)

    def view(self, tid: str, org: str) -> dict[str, Any]:
        self._visit(tid, org)
        st = self.state.read(tid)
        if not st:
            raise errors.not_found(f"visit {tid!r} has no settlement yet")
        out: dict[str, Any] = {"tracking_id": tid, "status": st.get("status", "")}
        for name in ("psn_no", "insutype", "mdtrt_id", "chrg_bchno", "setl_id"):
            if st.get(name):
                out[name] = st[name]
        for name in ("settlement", "preview", "reversal", "manual"):
            if st.get(name):
                out[name] = orjson.loads(st[name])
        if st.get("fhir"):
            out["fhir_tracking_ids"] = orjson.loads(st["fhir"])
        return out

    def cumulative(self, tid: str, org: str) -> dict[str, Any]:
        self._configured()
        ref = self._visit(tid, org)
        st = self.state.read(tid)
        if not st.get("psn_no"):
            raise errors.not_found("the visit has no insured person yet: preview it first")
        try:
            ans = self._send(ref, st, "5206", {"data": {"psn_no": st["psn_no"],
                                                         "cum_ym": f"{ref.visit.visit_time:%Y%m}"}})
        except (Unknown, Refused):
            raise _unreachable("the insurer did not answer 5206 (accumulators); retry") from None
        if not ans.ok:
            raise _refusal(ans)
        return {"psn_no": st["psn_no"], **ans.output}

    def resolve(self, tid: str) -> str:
        """Finish an unknown outcome (``gateway insurance resolve``); the status after."""
        raw = self.r.hmget(store.visit_key(tid), "org")
        ref = self._visit(tid, (raw[0] or b"").decode())
        with self.state.locked(tid):
            st = self.state.read(tid)
            if st.get("status") in ("settling", "unknown"):
                try:
                    st = self._resolve(ref, st)
                except GatewayError:
                    pass
            return self.state.read(tid).get("status", "")

    # -- the visit ----------------------------------------------------------------------------
    def _visit(self, tid: str, org: str) -> VisitRef:
        owner, person = self.r.hmget(store.visit_key(tid), "org", "person")
        if owner is None or owner.decode() != org:
            raise errors.not_found(f"no visit with tracking id {tid!r} for this organisation")
        canonical = visits.load(self.r, tid)
        if canonical is None:
            raise GatewayError.of("this visit has no fee lines to settle (or was submitted more "
                                  f"than {visits.KEEP_SECONDS // 86400} days ago)", "fees",
                                  code="business-rule", error_code="8005", status=422)
        visit = OutpatientVisit.model_validate_json(canonical)
        return VisitRef(tid, org, person.decode(), visit)

    def _national_codes(self, ref: VisitRef) -> dict[str, str]:
        codes, issues = {}, []
        system = org_scoped(ref.org, "fee-item")
        for i, fee in enumerate(ref.visit.fees):
            code = fee.national_code
            if not code:
                t = hospital_first(self.maps, ref.org, "fee-item", system, fee.item_code)
                code = t.code if t else None
            try:
                lookup(NHSA_CHRGITM_TYPE, fee.category)
            except NotFound:
                issues.append(errors.issue(
                    f"fee category {fee.category!r} is not an NHSA med_chrgitm_type (01 床位费 … "
                    "14 其他费)", f"fees[{i}].category", code="code-invalid", error_code="8006"))
            if code:
                codes[fee.line_no] = code
            else:
                issues.append(errors.issue(
                    f"fee item {fee.item_code!r} has no national list code: import the "
                    f"hospital's fee-item map (gateway terminology import --org {ref.org} "
                    "--map fee-item FILE.csv)", f"fees[{i}].item_code", code="code-invalid",
                    error_code="8006"))
        if issues:
            raise GatewayError(errors.outcome(issues), status=422)
        return codes

    def _card_statuses(self, visit: OutpatientVisit) -> dict[int, str]:
        pairs = []
        for c in visit.patient.cards:
            issuer = c.issuer or (visit.org.code if c.type is CardType.HOSPITAL_CARD else None)
            pairs.append((card_system(c.type, issuer), c.value))
        today = datetime.now(envelope.CHINA).date() if self.cards else date.today()
        found = self.cards.get_many(pairs, today) if self.cards else []
        return {i: st.status for i, st in enumerate(found) if st is not None}

    # -- talking to the insurer -----------------------------------------------------------------
    def _send(self, ref: VisitRef, st: dict[str, str], infno: str, input_: dict[str, Any],
              field: str | None = None) -> Answer:
        """Send; with ``field``, under the msgid kept there (created and saved first)."""
        msgid = st.get(field) if field else None
        if field and not msgid:
            msgid = self.client.new_msgid(ref.fixmedins)
            self.state.save(ref.tid, st, **{field: msgid})
        last: Exception | None = None
        for attempt in range(ATTEMPTS):
            try:
                with INSURER_LATENCY.labels(infno).time():
                    return self.client.call(infno, input_, fixmedins=ref.fixmedins,
                                            name=ref.visit.org.name, msgid=msgid,
                                            insuplc_admdvs=st.get("insuplc_admdvs", ""))
            except Unknown as exc:
                last = exc
                log.warning("no answer from the insurer", infno=infno, tracking_id=ref.tid,
                            attempt=attempt + 1, error=str(exc))
                time.sleep(0.1 * (attempt + 1))
        raise Unknown(str(last))

    def _step(self, ref: VisitRef, st: dict[str, str], infno: str, input_: dict[str, Any]) -> Answer:
        """A preparation step: no answer → a retryable error (its msgid is kept for the retry);
        an answer → the msgid has served."""
        field = f"msgid:{infno}"
        try:
            ans = self._send(ref, st, infno, input_, field)
        except Unknown:
            raise _unreachable(f"the insurer did not answer {infno}; nothing was charged; "
                               "retry (the same message will be re-sent)") from None
        self.state.drop(ref.tid, st, field)
        if not ans.ok:
            self._refused(ans)
        return ans

    @staticmethod
    def _refused(ans: Answer) -> None:
        reason = from_insurer(ans.err_msg)
        if reason:
            raise NoRealtime(reason, f"insurer.{ans.infno}", ans.err_msg)
        raise _refusal(ans)

    def _prepare(self, ref: VisitRef, st: dict[str, str], req: SettlementRequest) -> dict[str, str]:
        """Everything before 2206/2207, each step only when not yet done for this visit."""
        visit = ref.visit
        check_visit(visit, self._card_statuses(visit), drugs_bought_outside=req.drugs_bought_outside)
        codes = self._national_codes(ref)
        cert = messages.person_query(visit)
        try:
            ans = self._send(ref, st, "1101", {"data": cert})
        except Unknown:
            raise _unreachable("the insurer did not answer 1101 (person info); retry") from None
        if not ans.ok:
            self._refused(ans)
        base, insuinfo = ans.output.get("baseinfo") or {}, ans.output.get("insuinfo") or []
        insutype, med_type = self._insurance_type(visit, insuinfo)
        if st.get("psn_no") and st["psn_no"] != base.get("psn_no"):
            raise GatewayError.of("the insurer identifies this visit's patient differently than "
                                  "when it was registered", "patient.cards", code="conflict",
                                  error_code="8007", status=409)
        admdvs = next((str(i.get("insuplc_admdvs", "")) for i in insuinfo
                       if str(i.get("insutype")) == insutype), "")
        self.state.save(ref.tid, st, psn_no=str(base.get("psn_no", "")), insutype=insutype,
                        med_type=med_type, insuplc_admdvs=admdvs, codes=codes,
                        mdtrt_cert_type=cert["mdtrt_cert_type"], mdtrt_cert_no=cert["mdtrt_cert_no"],
                        chrg_bchno=st.get("chrg_bchno") or f"{ref.tid[:12]}{ref.tid[-12:]}")
        if not st.get("mdtrt_id") or st.get("mdtrt_insutype") != insutype:
            ans = self._step(ref, st, "2201", messages.register(visit, st))
            self.state.save(ref.tid, st, mdtrt_id=str(ans.output["data"]["mdtrt_id"]),
                            mdtrt_insutype=insutype)
            self.state.drop(ref.tid, st, "done:2203", "done:2204", "fees")
        if not st.get("done:2203"):
            self._step(ref, st, "2203", messages.visit_info(visit, st))
            self.state.save(ref.tid, st, **{"done:2203": "1"})
        if not st.get("done:2204"):
            ans = self._step(ref, st, "2204", messages.fee_details(visit, st, codes))
            self.state.save(ref.tid, st, fees=ans.output.get("result") or [], **{"done:2204": "1"})
        return st

    @staticmethod
    def _insurance_type(visit: OutpatientVisit, insuinfo: list[dict[str, Any]]) -> tuple[str, str]:
        """(insutype, med_type): maternity (510, 51) for family-planning surgery; else the
        visit's insurance type when the person has it, else their first non-maternity one."""
        types = [str(i.get("insutype")) for i in insuinfo]
        if not types:
            raise NoRealtime("NOT_INSURED", "insurer.1101", "no insurance type in force")
        if is_family_planning(visit):
            if "510" not in types:
                raise NoRealtime("FAMILY_PLANNING_NO_MATERNITY", "diagnoses")
            return "510", "51"
        wanted = visit.payment.insurance_type if visit.payment else None
        insutype = wanted if wanted in types else next((t for t in types if t != "510"), "")
        if not insutype:
            raise NoRealtime("NOT_INSURED", "payment.insurance_type", "only maternity insurance")
        return insutype, "13" if visit.visit_type is VisitType.EMERGENCY else "11"

    def _setl_input(self, ref: VisitRef, st: dict[str, str], req: SettlementRequest) -> dict[str, Any]:
        return messages.settlement(ref.visit, st, orjson.loads(st["fees"]),
                                   acct_used=req.acct_used_flag, invono=req.invono)

    def _body(self, ref: VisitRef, st: dict[str, str], setlinfo: dict[str, Any], status: str) -> dict[str, Any]:
        rows = orjson.loads(st["fees"])
        codes = orjson.loads(st.get("codes") or "{}")
        fees = {f.line_no: f for f in ref.visit.fees}
        items = []
        for figures in apportion(rows, setlinfo):
            fee = fees.get(figures["feedetl_sn"])
            items.append({"line_no": figures["feedetl_sn"],
                          "item_code": fee.item_code if fee else "",
                          "name": fee.name if fee else "",
                          "med_chrgitm_type": fee.category if fee else "",
                          "med_list_codg": codes.get(figures["feedetl_sn"], ""), **figures})
        body: dict[str, Any] = {
            "tracking_id": ref.tid, "realtime": True, "status": status, "psn_no": st["psn_no"],
            "insutype": st["insutype"], "med_type": st["med_type"], "mdtrt_id": st["mdtrt_id"],
            "chrg_bchno": st["chrg_bchno"], "totals": totals(setlinfo), "items": items}
        if setlinfo.get("setl_id"):
            body["setl_id"] = body["totals"]["setl_id"] = str(setlinfo["setl_id"])
            body["settled_at"] = datetime.now(timezone.utc).isoformat()
        return body

    def _manual(self, ref: VisitRef, st: dict[str, str], nr: NoRealtime) -> tuple[int, Any]:
        amount = sum((money(f.amount) for f in ref.visit.fees), money(0))
        message = nr.message(amount)
        body = {"tracking_id": ref.tid, "realtime": False, "status": "manual",
                "reason": {"code": nr.code, "message": message},
                "totals": {"medfee_sumamt": str(amount), "fund_pay_sumamt": "0.00",
                           "act_pay_dedc": "0.00", "psn_part_amt": str(amount),
                           "acct_pay": "0.00", "psn_cash_pay": str(amount)},
                "clinical_record": "forwarded to the regional platform with the visit",
                "outcome": errors.outcome([errors.issue(message, nr.expression or None,
                                                        code="business-rule",
                                                        severity="information",
                                                        error_code=f"8100-{nr.code}")])}
        if st.get("status") not in ("settled",):
            self.state.save(ref.tid, st, status="manual", manual=body)
        return 200, body

    # -- operations -----------------------------------------------------------------------------
    def _ready(self, ref: VisitRef) -> dict[str, str]:
        st = self.state.read(ref.tid)
        if st.get("status") in ("settling", "unknown"):
            st = self._resolve(ref, st)
        return st

    def _preview(self, ref: VisitRef, req: SettlementRequest, _key: str | None) -> tuple[int, Any]:
        st = self._ready(ref)
        if st.get("status") == "settled":
            return 200, orjson.loads(st["settlement"])
        try:
            st = self._prepare(ref, st, req)
            data = self._setl_input(ref, st, req)
            try:
                ans = self._send(ref, st, "2206", {"data": data})
            except Unknown:
                raise _unreachable("the insurer did not answer 2206 (pre-settlement); retry") from None
            if not ans.ok:
                self._refused(ans)
        except NoRealtime as nr:
            return self._manual(ref, st, nr)
        body = self._body(ref, st, ans.output.get("setlinfo") or {}, "previewed")
        self.state.save(ref.tid, st, status="previewed", preview=body)
        return 200, body

    def _settle(self, ref: VisitRef, req: SettlementRequest, key: str | None) -> tuple[int, Any]:
        st = self._ready(ref)
        if st.get("status") == "settled":
            if key and st.get("idem_key") == key:
                return 200, orjson.loads(st["settlement"])
            raise GatewayError.of(f"this visit is already settled (setl_id {st.get('setl_id')}); "
                                  "cancel it (DELETE) before settling again", "id",
                                  code="conflict", error_code="8013", status=409)
        try:
            st = self._prepare(ref, st, req)
        except NoRealtime as nr:
            return self._manual(ref, st, nr)
        data = self._setl_input(ref, st, req)
        self.state.save(ref.tid, st, status="settling", idem_key=key or "",
                        **{"input:2207": data, "msgid:2207": self.client.new_msgid(ref.fixmedins)})
        self.r.expire(visits.key(ref.tid), self.s.record_ttl)  # kept until resolved or cancelled
        return self._finish_2207(ref, st)

    def _finish_2207(self, ref: VisitRef, st: dict[str, str]) -> tuple[int, Any]:
        data = orjson.loads(st["input:2207"])
        try:
            ans = self._send(ref, st, "2207", {"data": data}, "msgid:2207")
        except Unknown:
            return self._reverse_unknown(ref, st)
        if ans.ok:
            body = self._body(ref, st, ans.output.get("setlinfo") or {}, "settled")
            self.state.save(ref.tid, st, status="settled", setl_id=body["setl_id"], settlement=body)
            self.r.expire(visits.key(ref.tid), self.s.record_ttl)  # for a later cancellation
            self.state.drop(ref.tid, st, "msgid:2207", "input:2207", "reversal")
            self._queue_fhir(ref, st, body, cancelled=False)
            log.info("settled", tracking_id=ref.tid, setl_id=body["setl_id"])
            return 200, body
        self.state.save(ref.tid, st, status="previewed")
        self.state.drop(ref.tid, st, "msgid:2207", "input:2207")
        try:
            self._refused(ans)
        except NoRealtime as nr:
            return self._manual(ref, st, nr)
        raise AssertionError("unreachable")

    def _reverse_unknown(self, ref: VisitRef, st: dict[str, str]) -> tuple[int, Any]:
        try:
            ans = self._send(ref, st, "2601", {"data": {
                "psn_no": st["psn_no"], "omsgid": st["msgid:2207"], "oinfno": "2207"}}, "msgid:2601")
        except Unknown:
            self.state.save(ref.tid, st, status="unknown")
            log.error("settlement outcome unknown; recorded for resolution", tracking_id=ref.tid)
            raise _unreachable(
                "the insurer did not answer the settlement (2207) nor its reversal (2601): the "
                "outcome is unknown and recorded (status unknown). Do not take payment yet; it "
                "is resolved on the next request for this visit or by `gateway insurance "
                "resolve`", "8012") from None
        if not ans.ok:
            self.state.save(ref.tid, st, status="unknown")
            raise _unreachable(f"the reversal (2601) of an unconfirmed settlement was refused: "
                               f"{ans.err_msg}; the outcome is recorded as unknown", "8012")
        self.state.save(ref.tid, st, status="previewed")
        self.state.drop(ref.tid, st, "msgid:2207", "msgid:2601", "input:2207")
        log.warning("unconfirmed settlement reversed (2601)", tracking_id=ref.tid)
        raise _unreachable("the insurer did not confirm the settlement (2207); it was reversed "
                           "(2601) and nothing was charged. Retry the settlement.")

    def _resolve(self, ref: VisitRef, st: dict[str, str]) -> dict[str, str]:
        """Finish an earlier attempt whose outcome is unknown; the state after."""
        if st.get("msgid:2601"):
            try:
                self._reverse_unknown(ref, st)
            except GatewayError as err:
                if st.get("status") == "unknown":
                    raise
                log.info("unknown outcome resolved: reversed", tracking_id=ref.tid, note=str(err))
            return self.state.read(ref.tid)
        if st.get("msgid:2207") and st.get("input:2207"):
            try:
                self._finish_2207(ref, st)
            except GatewayError as err:
                if st.get("status") == "unknown":
                    raise
                log.info("unknown outcome resolved", tracking_id=ref.tid, note=str(err))
            return self.state.read(ref.tid)
        self.state.save(ref.tid, st, status="previewed")
        return st

    def _cancel(self, ref: VisitRef, _req: SettlementRequest, _key: str | None) -> tuple[int, Any]:
        st = self._ready(ref)
        if st.get("status") in ("previewed", "manual") and st.get("mdtrt_id"):
            return self._release(ref, st)
        if st.get("status") != "settled":
            raise GatewayError.of(f"this visit has no settlement to cancel (status "
                                  f"{st.get('status') or 'none'})", "id", code="conflict",
                                  error_code="8014", status=409)
        try:
            ans = self._send(ref, st, "2208", {"data": {
                "setl_id": st["setl_id"], "mdtrt_id": st["mdtrt_id"], "psn_no": st["psn_no"]}},
                "msgid:2208")
        except Unknown:
            raise _unreachable("the insurer did not answer the cancellation (2208); retry "
                               "(the same message will be re-sent)") from None
        self.state.drop(ref.tid, st, "msgid:2208")
        if not ans.ok:
            raise _refusal(ans)
        settled = orjson.loads(st["settlement"])
        body = {**settled, "status": "reversed",
                "reversal": totals(ans.output.get("setlinfo") or {})}
        self.state.save(ref.tid, st, status="reversed", reversal=body)
        self._queue_fhir(ref, st, settled, cancelled=True)
        return 200, body

    def _release(self, ref: VisitRef, st: dict[str, str]) -> tuple[int, Any]:
        """A previewed visit the patient will not settle: withdraw the fee upload (2205) and
        the registration (2202) at the insurer."""
        ids = {"mdtrt_id": st["mdtrt_id"], "psn_no": st["psn_no"]}
        try:
            if st.get("done:2204"):
                self._step(ref, st, "2205", {"data": {**ids, "chrg_bchno": st["chrg_bchno"]}})
                self.state.drop(ref.tid, st, "done:2204", "fees")
            self._step(ref, st, "2202", {"data": {**ids, "ipt_otp_no": ref.visit.visit_no}})
        except NoRealtime as nr:
            raise GatewayError.of(f"the insurer refused the withdrawal: {nr.detail}",
                                  nr.expression, code="business-rule", error_code="8010",
                                  status=422) from None
        self.state.drop(ref.tid, st, "mdtrt_id", "mdtrt_insutype", "done:2203", "preview")
        self.state.save(ref.tid, st, status="cancelled")
        return 200, {"tracking_id": ref.tid, "status": "cancelled", "psn_no": st["psn_no"],
                     "cancelled": {"mdtrt_id": ids["mdtrt_id"], "chrg_bchno": st["chrg_bchno"]}}

    def _queue_fhir(self, ref: VisitRef, st: dict[str, str], body: dict[str, Any], *,
                    cancelled: bool) -> None:
        """Coverage, Claim and ClaimResponse → every FHIR destination, on the patient's shard."""
        dests = {d: u for d, u in self.s.destinations().items() if not u.startswith("mllp://")}
        if not dests:
            return
        from conformance.validator import ERRORS, validate

        ftid = store.new_tracking_id()
        bundle = fhir.render(ref.visit, ref.person_id, st, body, cancelled=cancelled,
                             tracking_id=ftid)
        problems = [i for i in validate(bundle) if i["severity"] in ERRORS]  # core R4 Bundle
        if problems:
            log.error("settlement resources do not validate; not forwarded", tracking_id=ref.tid,
                      issues=len(problems), first=problems[0].get("details", {}).get("text", ""))
            return
        payload = dumps(bundle)
        store.commit(self.r, store.visit_outbox(
            tid=ftid, org=ref.org, visit_no=ref.visit.visit_no, person_id=ref.person_id,
            received_at=datetime.now(timezone.utc).isoformat(),
            payloads={d: payload for d in dests}, shards=self.s.delivery_shards,
            ttl=self.s.record_ttl))
        sent = orjson.loads(st.get("fhir") or "[]") + [ftid]
        self.state.save(ref.tid, st, fhir=sent)


__all__ = ["SettlementRequest", "Settlements"]
