"""Unknown outcomes: the insurance center cuts the real loopback connection before or after
processing, at each step; never a double charge, never a silent loss."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.insurance_support import fee, settling_gateway, visit_for
from tests.support import wait_until

ORG = "H11010101"
A = "250101001"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with settling_gateway(tmp_path_factory.mktemp("insurance-faults"), ORG, regional=False,
                          env={"GATEWAY_INSURANCE_TIMEOUT": "1",
                               "GATEWAY_INSURANCE_RESOLVE_INTERVAL": "0"}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def no_faults(env):
    env.center.admin("DELETE", "faults")
    yield
    env.center.admin("DELETE", "faults")


def call(gw, method: str, tid: str, path: str = "", key: str | None = None, json=None):
    headers = {"Authorization": f"Bearer {gw.key}", "Idempotency-Key": key or str(uuid.uuid4())}
    return httpx.request(method, f"{gw.base}/v1/visits/{tid}/settlement{path}", headers=headers,
                         json=json, timeout=60)


def new_visit(gw, amount: str = "100.00") -> tuple[dict, str]:
    p = gw.center.person()
    r = gw.submit(gw.key, visit_for(p, [fee("1", A, amount)]))
    return p, r.json()["tracking_id"]


@pytest.mark.parametrize("mode", ["drop_before", "drop_after"])
def test_a_settlement_cut_once_is_resolved_by_resending_the_same_message(env, mode):
    p, tid = new_visit(env)
    before = env.center.processed("2207")
    env.center.fault("2207", mode)
    r = call(env, "POST", tid)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "settled"
    assert env.center.processed("2207") == before + 1
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["count"]) == ("100.00", 1)


def test_a_settlement_answered_too_late_is_resolved_by_its_stored_answer(env):
    p, tid = new_visit(env)
    before = env.center.processed("2207")
    env.center.admin("POST", "faults", json={"infno": "2207", "mode": "delay", "delay": 1.5})
    r = call(env, "POST", tid)  # the gateway gives up after 1 s, then re-sends the same msgid
    assert r.status_code == 200 and r.json()["status"] == "settled", r.text
    assert env.center.processed("2207") == before + 1
    assert env.center.accumulators(p["psn_no"])["count"] == 1


def test_a_settlement_never_answered_is_reversed_then_retried_once(env):
    p, tid = new_visit(env)
    env.center.fault("2207", "drop_after", count=3)  # processed, then every answer lost
    r = call(env, "POST", tid, key="pay-A")
    assert r.status_code == 503, r.text
    issue = r.json()["issue"][0]
    assert "reversed" in issue["details"]["text"] and issue["expression"] == ["insurer"]
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["count"]) == ("0.00", 0)  # 2601 restored it exactly
    assert call(env, "GET", tid).json()["status"] == "previewed"
    again = call(env, "POST", tid, key="pay-A")
    assert again.status_code == 200, again.text
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["count"]) == ("100.00", 1)


def test_insurer_unreachable_leaves_it_unknown_until_resolved(env):
    p, tid = new_visit(env)
    env.center.fault("2207", "drop_after", count=3)
    env.center.fault("2601", "drop_before", count=3)
    r = call(env, "POST", tid, key="pay-B")
    assert r.status_code == 503 and "unknown" in r.json()["issue"][0]["details"]["text"]
    assert call(env, "GET", tid).json()["status"] == "unknown"
    assert env.center.accumulators(p["psn_no"])["count"] == 1  # charged at the center, for now
    out = env.cli("insurance", "resolve", "--help")
    assert "unknown" in out
    env.cli("insurance", "resolve")
    assert call(env, "GET", tid).json()["status"] == "previewed"
    assert env.center.accumulators(p["psn_no"])["count"] == 0
    again = call(env, "POST", tid, key="pay-B")
    assert again.status_code == 200 and again.json()["status"] == "settled"
    assert env.center.accumulators(p["psn_no"])["count"] == 1


def test_an_unknown_outcome_is_resolved_by_the_next_request(env):
    p, tid = new_visit(env)
    env.center.fault("2207", "drop_before", count=3)
    env.center.fault("2601", "drop_after", count=3)
    assert call(env, "POST", tid).status_code == 503
    assert call(env, "GET", tid).json()["status"] == "unknown"
    r = call(env, "POST", tid)  # the 2601 is re-sent under its msgid first, then a new 2207
    assert r.status_code == 200, r.text
    assert env.center.accumulators(p["psn_no"])["count"] == 1
    assert env.center.processed("2601") >= 1


@pytest.mark.parametrize("infno", ["2201", "2203", "2204"])
def test_preparation_steps_cut_after_processing_are_not_repeated(env, infno):
    p, tid = new_visit(env)
    before = env.center.processed(infno)
    env.center.fault(infno, "drop_after", count=3)
    r = call(env, "POST", tid, "/preview")
    assert r.status_code == 503 and r.json()["issue"][0]["expression"] == ["insurer"]
    r = call(env, "POST", tid, "/preview")
    assert r.status_code == 200, r.text
    assert env.center.processed(infno) == before + 1  # the retry re-sent the same msgid


def test_a_cancellation_cut_after_processing_reverses_once(env):
    p, tid = new_visit(env, "2000.00")
    assert call(env, "POST", tid).status_code == 200
    env.center.fault("2208", "drop_after", count=3)
    assert call(env, "DELETE", tid).status_code == 503
    r = call(env, "DELETE", tid)
    assert r.status_code == 200 and r.json()["status"] == "reversed"
    acc = env.center.accumulators(p["psn_no"])
    assert (acc["dedc_used"], acc["fund_paid"], acc["count"], acc["balc"]) == (
        "0.00", "0.00", 0, "500.00")


def test_an_expired_sign_no_is_renewed(env):
    _p, tid = new_visit(env)
    signs = env.center.admin("GET", "stats")["received"].get("9001", 0)
    env.center.admin("POST", "expire-signs")
    assert call(env, "POST", tid, "/preview").status_code == 200
    assert env.center.admin("GET", "stats")["received"]["9001"] == signs + 1


@pytest.mark.parametrize("infno", ["9001", "1101", "2206"])
def test_reads_cut_before_processing_are_a_retryable_503(env, infno):
    _p, tid = new_visit(env)
    if infno == "9001":
        env.center.admin("POST", "expire-signs")
    env.center.fault(infno, "drop_before", count=3)
    r = call(env, "POST", tid, "/preview")
    assert r.status_code in (503, 502) and r.json()["resourceType"] == "OperationOutcome", r.text
    r = call(env, "POST", tid, "/preview")
    assert r.status_code == 200 and r.json()["status"] == "previewed", r.text


def test_unknown_outcomes_are_resolved_in_the_background(tmp_path):
    with settling_gateway(tmp_path, ORG, regional=False,
                          env={"GATEWAY_INSURANCE_TIMEOUT": "1",
                               "GATEWAY_INSURANCE_RESOLVE_INTERVAL": "1"}) as gw:
        p, tid = new_visit(gw)
        gw.center.fault("2207", "drop_after", count=3)
        gw.center.fault("2601", "drop_before", count=3)
        assert call(gw, "POST", tid).status_code == 503
        assert gw.center.accumulators(p["psn_no"])["count"] == 1  # charged at the center
        # no request, no command: the gateway's own pass re-sends the 2601 and reverses it
        wait_until(lambda: call(gw, "GET", tid).json()["status"] == "previewed",
                   what="the unknown outcome resolved", timeout=30)
        assert gw.center.accumulators(p["psn_no"])["count"] == 0
