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


def test_concurrent_submissions_each_get_their_own_answer(gw):
    """Submissions that arrive together are processed together (gateway/batcher.py); each
    still gets its own tracking id, or its own OperationOutcome."""
    import asyncio

    visits = []
    for i in range(30):
        v = sample_visit(visit_no=f"MZCONC{i:04d}")
        if i == 11:
            v["patient"]["cards"][1]["value"] = "110101198506150018"  # check digit wrong
        visits.append(json.dumps(v, ensure_ascii=False).encode())

    async def main():
        async with httpx.AsyncClient(base_url=gw.base, timeout=20, headers={
                "Authorization": f"Bearer {gw.key}", "Content-Type": "application/json"}) as c:
            return await asyncio.gather(*(c.post("/v1/visits", content=b) for b in visits))

    answers = asyncio.run(main())
    assert [a.status_code for a in answers] == [422 if i == 11 else 202 for i in range(30)]
    assert any("check digit" in i["details"]["text"] for i in _issues(answers[11]))
    tids = {a.json()["tracking_id"] for a in answers if a.status_code == 202}
    assert len(tids) == 29
    for a in answers[:3]:
        assert gw.status(gw.key, a.json()["tracking_id"])["visit_no"].startswith("MZCONC")
    assert gw.status(gw.key, answers[11].json()["id"])["status"] == "rejected"


def test_ingest_path_answers_like_the_framework(gw):
    """POST /v1/visits is served ahead of FastAPI: the same headers and media types."""
    resp = gw.submit(gw.key, sample_visit(visit_no="MZHDR0001"))
    assert resp.status_code == 202
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.headers["location"] == f"/v1/visits/{resp.json()['tracking_id']}"
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(gw.base)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:  # a body too large
        s.sendall(f"POST /v1/visits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.key}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n".encode())
        head = s.recv(65536)  # answered before the body is sent, from the declared length
    assert head.startswith(b"HTTP/1.1 413") and b"application/fhir+json" in head
    resp = httpx.post(f"{gw.base}/v1/visits?adapter=no_such_adapter", content=b"<x/>",
                      headers={"Authorization": f"Bearer {gw.key}",
                               "Content-Type": "application/xml"})
    assert 400 <= resp.status_code < 500 and _issues(resp)
