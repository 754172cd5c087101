"""The HTTP edge: authentication, bad input, tracking — every rejection an OperationOutcome."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support import Gateway, sample_visit

ORG = "H11010101"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    from tests.support import RedisServer

    tmp = tmp_path_factory.mktemp("ingest")
    server = RedisServer(tmp / "redis").start()
    gateway = Gateway(tmp, server.url, None, extra_env={"GATEWAY_MAX_BODY_BYTES": "65536"}).start()
    gateway.key = gateway.create_key(ORG)
    gateway.other_key = gateway.create_key("H99999999")
    yield gateway
    gateway.stop()
    server.stop()


def _issues(resp: httpx.Response) -> list[dict]:
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert resp.headers["content-type"].startswith("application/fhir+json")
    return body["issue"]


def _expressions(resp) -> list[str]:
    return [e for i in _issues(resp) for e in i.get("expression", [])]


def test_accepts_and_tracks_without_destinations(gw):
    resp = gw.submit(gw.key, sample_visit())
    assert resp.status_code == 202
    view = gw.status(gw.key, resp.json()["tracking_id"])
    assert view["status"] == "accepted"  # no destination configured: held, not lost
    assert view["visit_no"] == "MZ20260301000123"


def test_no_key_and_bad_key_are_401(gw):
    assert gw.submit("", sample_visit()).status_code == 401
    resp = gw.submit("ykt_not-a-real-key", sample_visit())
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert _issues(resp)[0]["code"] == "security"


def test_other_organisations_visit_is_403(gw):
    resp = gw.submit(gw.other_key, sample_visit())
    assert resp.status_code == 403
    assert _expressions(resp) == ["org.code"]


def test_malformed_json_is_400(gw):
    resp = gw.submit(gw.key, b'{"org": {"code": ')
    assert resp.status_code == 400
    assert "malformed JSON" in _issues(resp)[0]["details"]["text"]


def test_missing_field_names_it(gw):
    visit = sample_visit()
    del visit["patient"]["name"]
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422
    assert "patient.name" in _expressions(resp)
    assert _issues(resp)[0]["code"] == "required"


def test_wrong_type_names_it(gw):
    visit = sample_visit()
    visit["fees"][1]["quantity"] = "thirty"
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422
    assert "fees[1].quantity" in _expressions(resp)


def test_invalid_citizen_id_check_digit(gw):
    visit = sample_visit()
    visit["patient"]["cards"][1]["value"] = "110101198506150011"
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422
    assert _expressions(resp) == ["patient.cards[1].value"]
    assert "check digit" in _issues(resp)[0]["details"]["text"]


def test_inconsistent_fee_amount(gw):
    visit = sample_visit()
    visit["fees"][1]["amount"] = "99.00"
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422
    assert _expressions(resp) == ["fees[1]"]


def test_unmapped_sex_code_is_reported_not_guessed(gw):
    visit = sample_visit()
    visit["patient"]["sex"] = {"system": "AAA002", "code": "1"}
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422
    assert _expressions(resp) == ["patient.sex.code"]


def test_oversized_body_is_413(gw):
    visit = sample_visit(chief_complaint="咳" * 1000)
    visit["symptoms"] = [{"text": "发热" * 1000}] * 30
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 413
    assert _issues(resp)[0]["code"] == "too-long"


def test_rejection_is_recorded_and_visible(gw):
    resp = gw.submit(gw.key, b"not json")
    tid = resp.json()["id"]
    view = gw.status(gw.key, tid)
    assert view["status"] == "rejected"
    assert view["outcome"]["issue"][0]["code"] == "structure"


def test_visits_are_private_to_their_organisation(gw):
    tid = gw.submit(gw.key, sample_visit()).json()["tracking_id"]
    resp = httpx.get(f"{gw.base}/v1/visits/{tid}",
                     headers={"Authorization": f"Bearer {gw.other_key}"})
    assert resp.status_code == 404
    assert httpx.get(f"{gw.base}/v1/visits/nope",
                     headers={"Authorization": f"Bearer {gw.key}"}).status_code == 404


def test_schema_health_and_metrics(gw):
    schema = httpx.get(f"{gw.base}/v1/schema/visit").json()
    assert schema["title"] == "OutpatientVisit"
    assert "patient" in schema["required"]
    assert httpx.get(f"{gw.base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gw.base}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"] == "ok"
    metrics = httpx.get(f"{gw.base}/metrics").text
    assert 'gateway_visits_accepted_total{org="H11010101"}' in metrics
    assert "gateway_ingest_seconds_bucket" in metrics
    docs = httpx.get(f"{gw.base}/openapi.json").json()
    assert "OutpatientVisit" in docs["components"]["schemas"]


def test_garbage_never_crashes_the_process(gw):
    for body in (b"\xff\xfe\x00", b"[]", b"null", b'{"org": []}', json.dumps({"x": 1}).encode(),
                 b"{" * 5000):
        resp = gw.submit(gw.key, body)
        assert 400 <= resp.status_code < 500
        assert resp.json()["resourceType"] == "OperationOutcome"
    assert httpx.get(f"{gw.base}/healthz").status_code == 200
