"""Real-time settlement through the gateway against the reference insurance center, over
real sockets and Redis — exact amounts under `conformance/peers/insurance_rules.toml`
(310: deductible 1800.00, fund 70 %, cap 20000.00, account 500.00; 390: deductible 300.00,
fund 55 %, cap 3000.00)."""

from __future__ import annotations

import concurrent.futures
import uuid

import httpx
import pytest

from tests.insurance_support import fee, settling_gateway, visit_for
from tests.support import wait_until

ORG = "H11010101"
A = "250101001"   # 甲
B = "210102015"   # 乙, selfpay_prop 0.10
C = "311201001"   # 丙


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with settling_gateway(tmp_path_factory.mktemp("insurance"), ORG) as gw:
        yield gw


def call(gw, method: str, tid: str, path: str = "", key: str | None = None, json=None):
    headers = {"Authorization": f"Bearer {gw.key}"}
    if key:
        headers["Idempotency-Key"] = key
    return httpx.request(method, f"{gw.base}/v1/visits/{tid}/settlement{path}", headers=headers,
                         json=json, timeout=30)


def submit(gw, visit) -> str:
    r = gw.submit(gw.key, visit)
    assert r.status_code == 202, r.text
    return r.json()["tracking_id"]


def settle(gw, tid: str, json=None, key: str | None = None) -> dict:
    r = call(gw, "POST", tid, key=key or str(uuid.uuid4()), json=json)
    assert r.status_code == 200, r.text
    return r.json()


def pick(totals: dict, *names: str) -> dict:
    return {n: totals[n] for n in names}


MAIN = ("medfee_sumamt", "act_pay_dedc", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
        "psn_cash_pay")


def test_under_the_deductible_the_patient_pays_all_and_the_accumulator_grows(env):
    p = env.center.person()
    tid = submit(env, visit_for(p, [fee("1", A, "20.00"), fee("2", "XJ01CAA040A001010104346", "0.35", "30")]))
    preview = call(env, "POST", tid, "/preview", key=str(uuid.uuid4()))
    assert preview.status_code == 200, preview.text
    assert preview.json()["status"] == "previewed" and "setl_id" not in preview.json()
    body = settle(env, tid)
    assert body["realtime"] is True and body["status"] == "settled" and body["setl_id"]
    assert pick(body["totals"], *MAIN) == {
        "medfee_sumamt": "30.50", "act_pay_dedc": "30.50", "fund_pay_sumamt": "0.00",
        "psn_part_amt": "30.50", "acct_pay": "0.00", "psn_cash_pay": "30.50"}
    assert [pick(i, "line_no", "chrgitm_lv", "act_pay_dedc", "psn_cash_pay") for i in body["items"]] == [
        {"line_no": "1", "chrgitm_lv": "01", "act_pay_dedc": "20.00", "psn_cash_pay": "20.00"},
        {"line_no": "2", "chrgitm_lv": "01", "act_pay_dedc": "10.50", "psn_cash_pay": "10.50"}]
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["fund_paid"], acc["count"]) == ("30.50", "0.00", 1)
    log = env.log.read_text(errors="replace")
    assert p["certno"] not in log and p["card_no"] not in log  # no personal data in logs
    cum = httpx.get(f"{env.base}/v1/visits/{tid}/settlement/cumulative",
                    headers={"Authorization": f"Bearer {env.key}"}, timeout=10).json()
    assert {r["cum_type_code"]: r["cum"] for r in cum["cuminfo"]}["dedc_used"] == "30.50"


def test_crossing_the_deductible_then_b_and_c_items_with_the_personal_account(env):
    p = env.center.person()
    first = settle(env, submit(env, visit_for(p, [fee("1", A, "850.00", "2")])))
    assert pick(first["totals"], *MAIN) == {
        "medfee_sumamt": "1700.00", "act_pay_dedc": "1700.00", "fund_pay_sumamt": "0.00",
        "psn_part_amt": "1700.00", "acct_pay": "0.00", "psn_cash_pay": "1700.00"}
    # 300.00 in scope: 100.00 finishes the deductible, the fund pays 70 % of the other 200.00
    second = settle(env, submit(env, visit_for(p, [fee("1", A, "300.00")])))
    assert pick(second["totals"], *MAIN) == {
        "medfee_sumamt": "300.00", "act_pay_dedc": "100.00", "fund_pay_sumamt": "140.00",
        "psn_part_amt": "160.00", "acct_pay": "0.00", "psn_cash_pay": "160.00"}
    # 乙 65.00: 6.50 self-pay first, 58.50 in scope → fund 40.95; 丙 100.00 all self-pay;
    # the personal account (500.00) pays the patient's 124.05
    third = settle(env, submit(env, visit_for(p, [fee("1", B, "65.00"), fee("2", C, "100.00")])),
                   json={"acct_used_flag": True})
    t = third["totals"]
    assert pick(t, *MAIN, "preselfpay_amt", "fulamt_ownpay_amt", "inscp_scp_amt", "balc") == {
        "medfee_sumamt": "165.00", "act_pay_dedc": "0.00", "fund_pay_sumamt": "40.95",
        "psn_part_amt": "124.05", "acct_pay": "124.05", "psn_cash_pay": "0.00",
        "preselfpay_amt": "6.50", "fulamt_ownpay_amt": "100.00", "inscp_scp_amt": "58.50",
        "balc": "375.95"}
    b_item, c_item = third["items"]
    assert pick(b_item, "chrgitm_lv", "selfpay_prop", "preselfpay_amt", "inscp_scp_amt",
                "fund_pay_sumamt", "psn_part_amt", "acct_pay") == {
        "chrgitm_lv": "02", "selfpay_prop": "0.10", "preselfpay_amt": "6.50",
        "inscp_scp_amt": "58.50", "fund_pay_sumamt": "40.95", "psn_part_amt": "24.05",
        "acct_pay": "24.05"}
    assert pick(c_item, "chrgitm_lv", "fulamt_ownpay_amt", "fund_pay_sumamt", "psn_part_amt",
                "acct_pay", "psn_cash_pay") == {
        "chrgitm_lv": "03", "fulamt_ownpay_amt": "100.00", "fund_pay_sumamt": "0.00",
        "psn_part_amt": "100.00", "acct_pay": "100.00", "psn_cash_pay": "0.00"}
    acc = env.center.accumulators(p["psn_no"])
    assert pick(acc, "dedc_used", "fund_paid", "acct_paid", "balc") == {
        "dedc_used": "1800.00", "fund_paid": "180.95", "acct_paid": "124.05", "balc": "375.95"}


def test_the_annual_cap(env):
    p = env.center.person(insutypes=["390"])
    body = settle(env, submit(env, visit_for(p, [fee("1", A, "3000.00", "2")],
                                             payment={"kind": "insured", "insurance_type": "390"})))
    # 300.00 deductible; 55 % of 5700.00 = 3135.00, capped at 3000.00 a year
    assert pick(body["totals"], *MAIN, "pool_prop_selfpay") == {
        "medfee_sumamt": "6000.00", "act_pay_dedc": "300.00", "fund_pay_sumamt": "3000.00",
        "psn_part_amt": "3000.00", "acct_pay": "0.00", "psn_cash_pay": "3000.00",
        "pool_prop_selfpay": "2700.00"}
    after = settle(env, submit(env, visit_for(p, [fee("1", A, "100.00")],
                                              payment={"kind": "insured", "insurance_type": "390"})))
    assert pick(after["totals"], "fund_pay_sumamt", "psn_cash_pay") == {
        "fund_pay_sumamt": "0.00", "psn_cash_pay": "100.00"}


def test_reversal_restores_the_accumulators_and_the_regional_platform_sees_it(env):
    p = env.center.person()
    settle(env, submit(env, visit_for(p, [fee("1", A, "1000.00", "2")])))
    before = env.center.accumulators(p["psn_no"])
    tid = submit(env, visit_for(p, [fee("1", A, "500.00"), fee("2", B, "100.00")]))
    body = settle(env, tid, json={"acct_used_flag": True})
    assert pick(body["totals"], *MAIN) == {
        "medfee_sumamt": "600.00", "act_pay_dedc": "0.00", "fund_pay_sumamt": "413.00",
        "psn_part_amt": "187.00", "acct_pay": "187.00", "psn_cash_pay": "0.00"}
    assert env.center.accumulators(p["psn_no"])["fund_paid"] == "553.00"
    wait_until(lambda: env.regional.count("ClaimResponse") >= 1, what="ClaimResponse delivered")
    cancelled = call(env, "DELETE", tid)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "reversed"
    assert cancelled.json()["reversal"]["fund_pay_sumamt"] == "-413.00"
    assert env.center.accumulators(p["psn_no"]) == before
    assert call(env, "DELETE", tid).status_code == 409
    state = call(env, "GET", tid).json()
    assert state["status"] == "reversed" and len(state["fhir_tracking_ids"]) == 2

    def cancelled_response():
        found = httpx.get(f"{env.regional.fhir}/ClaimResponse", timeout=5, params={
            "identifier": f"https://yikatong.org/fhir/sid/nhsa-setl-id|{body['setl_id']}"}).json()
        return [e["resource"] for e in found.get("entry", []) if e["resource"]["status"] == "cancelled"]
    [resp] = wait_until(cancelled_response, what="cancelled ClaimResponse")
    claim = httpx.get(f"{env.regional.base}/fhir/{resp['request']['reference']}", timeout=5).json()
    assert claim["status"] == "cancelled" and claim["total"]["value"] == 600.0
    patients = httpx.get(f"{env.regional.fhir}/Patient", timeout=5, params={
        "identifier": f"urn:oid:2.16.156.10011.1.3|{p['certno']}"}).json()["entry"]
    assert [f"Patient/{e['resource']['id']}" for e in patients] == [resp["patient"]["reference"]]
    assert env.regional.count("Coverage") >= 1
    # settled again after the cancellation: the same figures
    again = settle(env, tid, json={"acct_used_flag": True})
    assert pick(again["totals"], *MAIN) == pick(body["totals"], *MAIN)
    assert again["setl_id"] != body["setl_id"]


def test_a_retried_settlement_with_the_same_key_charges_once(env):
    p = env.center.person()
    tid = submit(env, visit_for(p, [fee("1", A, "42.00")]))
    before = env.center.processed("2207")
    first = call(env, "POST", tid, key="pay-1", json={"acct_used_flag": False})
    again = call(env, "POST", tid, key="pay-1", json={"acct_used_flag": False})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert env.center.processed("2207") == before + 1
    assert env.center.accumulators(p["psn_no"])["dedc_used"] == "42.00"
    other = call(env, "POST", tid, key="pay-1", json={"acct_used_flag": True})
    assert other.status_code == 422 and other.json()["issue"][0]["expression"] == ["Idempotency-Key"]
    assert call(env, "POST", tid, key="pay-2").status_code == 409  # already settled
    missing = call(env, "POST", tid)
    assert missing.status_code == 400 and missing.json()["issue"][0]["expression"] == ["Idempotency-Key"]


def test_two_concurrent_settlements_for_one_person_serialise(env):
    p = env.center.person()
    tids = [submit(env, visit_for(p, [fee("1", A, "1000.00")])) for _ in range(2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda t: settle(env, t), tids))
    dedc = sorted(b["totals"]["act_pay_dedc"] for b in bodies)
    fund = sorted(b["totals"]["fund_pay_sumamt"] for b in bodies)
    assert dedc == ["1000.00", "800.00"] and fund == ["0.00", "140.00"]
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["fund_paid"], acc["count"]) == ("1800.00", "140.00", 2)


def test_unmapped_fee_items_and_bad_requests_are_refused_with_their_place(env):
    p = env.center.person()
    visit = visit_for(p, [fee("1", A, "10.00")])
    visit["fees"].append({"line_no": "2", "item_code": "LOCAL9", "name": "本院自定项目",
                          "category": "14", "unit_price": "5.00", "quantity": "1", "amount": "5.00"})
    tid = submit(env, visit)
    r = call(env, "POST", tid, "/preview", key="k-unmapped")
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == ["fees[1].item_code"]
    odd = visit_for(p, [{**fee("1", A, "10.00"), "category": "99"}])
    r = env.submit(env.key, odd)
    assert r.status_code == 422 and "nhsa-med-chrgitm-type#99" in r.text  # refused at submission
    bad = call(env, "POST", tid, "/preview", key="k-bad", json={"acct_used_flag": "maybe"})
    assert bad.status_code == 422 and bad.json()["issue"][0]["expression"] == ["acct_used_flag"]
    assert call(env, "POST", "nope", "/preview", key="k-404").status_code == 404
    assert call(env, "POST", tid, "/preview", key="k-list", json=[1]).status_code == 422
    raw = httpx.post(f"{env.base}/v1/visits/{tid}/settlement", content=b"{not json",
                     headers={"Authorization": f"Bearer {env.key}", "Idempotency-Key": "k-raw"})
    assert raw.status_code == 400 and raw.json()["issue"][0]["expression"] == ["body"]
    assert httpx.post(f"{env.base}/v1/visits/{tid}/settlement/preview", timeout=5,
                      headers={"Idempotency-Key": "k-anon"}).status_code == 401


def test_a_preview_the_patient_walks_away_from_is_withdrawn(env):
    p = env.center.person()
    tid = submit(env, visit_for(p, [fee("1", A, "80.00")]))
    assert call(env, "POST", tid, "/preview", key=str(uuid.uuid4())).status_code == 200
    before = (env.center.processed("2205"), env.center.processed("2202"))
    r = call(env, "DELETE", tid)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert (env.center.processed("2205"), env.center.processed("2202")) == (before[0] + 1, before[1] + 1)
    body = settle(env, tid)  # registered anew, then settled
    assert body["mdtrt_id"] != r.json()["cancelled"]["mdtrt_id"]
    assert body["totals"]["act_pay_dedc"] == "80.00"


def test_settlements_are_counted_in_metrics(env):
    text = httpx.get(f"{env.base}/metrics", timeout=5).text
    assert 'gateway_settlements_total{operation="settle",outcome="settled"}' in text
    assert 'gateway_insurer_seconds_count{infno="2207"}' in text
