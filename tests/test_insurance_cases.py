"""Seed 004's eight cases where real-time settlement is impossible: each answers 200 with
``realtime: false``, a stable reason code and a pay-in-full message; the clinical record
still reaches the regional platform. Also: no insurer configured → 503."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.insurance_support import fee, settling_gateway, visit_for
from tests.support import Gateway, sample_visit

ORG = "H11010101"
A = "250101001"
REGISTERED = {"psn_no": "R-ARREARS-1", "certno": "110101197001011238", "psn_name": "登记",
              "card_no": "R00000001", "insutypes": ["310"], "status": "arrears"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("insurance-cases")
    registry = tmp / "registry.json"
    registry.write_text(json.dumps([REGISTERED]), encoding="utf-8")
    with settling_gateway(tmp, ORG, registry=registry) as gw:
        yield gw


def preview(gw, visit, json=None) -> tuple[str, httpx.Response]:
    r = gw.submit(gw.key, visit)
    assert r.status_code == 202, r.text
    tid = r.json()["tracking_id"]
    return tid, httpx.post(f"{gw.base}/v1/visits/{tid}/settlement/preview", json=json, timeout=30,
                           headers={"Authorization": f"Bearer {gw.key}",
                                    "Idempotency-Key": str(uuid.uuid4())})


def manual(gw, visit, code: str, json=None, expression: str | None = None) -> dict:
    tid, r = preview(gw, visit, json)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["realtime"] is False and body["reason"]["code"] == code, body
    assert body["totals"]["psn_cash_pay"] == body["totals"]["medfee_sumamt"]
    assert body["totals"]["fund_pay_sumamt"] == "0.00"
    assert "pays the full" in body["reason"]["message"] and "claims" in body["reason"]["message"]
    if expression:
        assert body["outcome"]["issue"][0]["expression"] == [expression]
    # settling answers the same way, and nothing reaches the insurer's 2207
    settled = httpx.post(f"{gw.base}/v1/visits/{tid}/settlement", json=json, timeout=30,
                         headers={"Authorization": f"Bearer {gw.key}",
                                  "Idempotency-Key": str(uuid.uuid4())})
    assert settled.status_code == 200 and settled.json()["reason"]["code"] == code
    body["tid"] = tid
    return body


def test_no_card_yet(env):
    p = env.center.person()
    visit = visit_for(p, [fee("1", A, "30.00")], cards=[{"type": "citizen_id", "value": p["certno"]}])
    body = manual(env, visit, "NO_CARD", expression="patient.cards")
    env.wait_status(env.key, body["tid"], "delivered")  # the clinical record still goes


def test_emergency_without_the_card(env):
    p = env.center.person()
    visit = visit_for(p, [fee("1", A, "30.00")], visit_type="emergency",
                      cards=[{"type": "citizen_id", "value": p["certno"]}])
    manual(env, visit, "EMERGENCY_NO_CARD")


@pytest.mark.parametrize("status,code", [("lost", "CARD_LOST"), ("frozen", "CARD_REPLACING")])
def test_card_lost_or_being_replaced(env, status, code):
    p = env.center.person()
    env.cli("cards", "set-status", "--type", "ssc_card_no", "--value", p["card_no"],
            "--status", status, "--reason", "挂失" if status == "lost" else "补换卡")
    manual(env, visit_for(p, [fee("1", A, "30.00")]), code, expression="patient.cards[1]")


@pytest.mark.parametrize("status,code", [("manual", "MANUAL_PERIOD"), ("arrears", "ARREARS")])
def test_manual_reimbursement_period_and_arrears(env, status, code):
    p = env.center.person(status=status)
    manual(env, visit_for(p, [fee("1", A, "30.00")]), code, expression="insurer.1101")


def test_a_registry_person_in_arrears(env):
    manual(env, visit_for(REGISTERED, [fee("1", A, "30.00")]), "ARREARS")


def test_family_planning_surgery_without_maternity_insurance(env):
    dx = [{"system": "ICD-10", "code": "Z30.201", "name": "输卵管绝育术", "primary": True}]
    p = env.center.person()
    manual(env, visit_for(p, [fee("1", A, "800.00")], diagnoses=dx),
           "FAMILY_PLANNING_NO_MATERNITY", expression="diagnoses")
    # with maternity insurance (510: no deductible, 100 %) it settles in real time
    insured = env.center.person(insutypes=["310", "510"])
    _tid, r = preview(env, visit_for(insured, [fee("1", A, "800.00")], diagnoses=dx))
    body = r.json()
    assert body["realtime"] is True and body["insutype"] == "510" and body["med_type"] == "51"
    assert body["totals"]["fund_pay_sumamt"] == "800.00" and body["totals"]["psn_cash_pay"] == "0.00"


def test_care_outside_the_insured_area(env):
    p = env.center.person(insuplc_admdvs="310000")
    manual(env, visit_for(p, [fee("1", A, "30.00")]), "OUT_OF_AREA")
    filed = env.center.person(insuplc_admdvs="310000", offsite_filed=True)
    _tid, r = preview(env, visit_for(filed, [fee("1", A, "30.00")]))
    assert r.json()["realtime"] is True


def test_drugs_bought_outside(env):
    p = env.center.person()
    manual(env, visit_for(p, [fee("1", "XJ01CAA040A001010104346", "0.35", "30")]),
           "DRUGS_BOUGHT_OUTSIDE", json={"drugs_bought_outside": True})


def test_unknown_person_and_self_pay(env):
    visit = sample_visit(visit_no="MZ-UNKNOWN", fees=[fee("1", A, "30.00")])
    visit["patient"]["cards"] = [{"type": "ssc_card_no", "value": "Z99999999"}]
    manual(env, visit, "NOT_INSURED")
    p = env.center.person()
    manual(env, visit_for(p, [fee("1", A, "30.00")], payment={"kind": "self_pay"}), "NOT_INSURED")


def test_synth_patients_are_insured_by_default(env):
    from gateway.synth import generate

    visit = next(v for v in generate(40, org=ORG, seed=3)
                 if v.payment and v.payment.kind == "insured" and v.fees
                 and all(f.national_code for f in v.fees)
                 and any(c.type.value == "ssc_card_no" for c in v.patient.cards))
    _tid, r = preview(env, visit.model_dump(mode="json", exclude_none=True))
    assert r.status_code == 200 and r.json()["realtime"] is True, r.text


def test_no_insurer_configured_is_503(tmp_path, redis_server):
    gw = Gateway(tmp_path, redis_server.url, None).start()
    try:
        key = gw.create_key(ORG)
        tid = gw.submit(key, sample_visit()).json()["tracking_id"]
        r = httpx.post(f"{gw.base}/v1/visits/{tid}/settlement/preview", timeout=10,
                       headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k"})
        assert r.status_code == 503 and r.json()["resourceType"] == "OperationOutcome"
        assert r.json()["issue"][0]["expression"] == ["insurer"]
    finally:
        gw.stop()
