"""$validate over real uvicorn, and the pipeline refusing a visit whose Bundle breaks a
profile: 422 with the outcome, nothing queued."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
import redis

from tests.support import ROOT, Gateway, sample_visit

ORG = "H11010101"
PATIENT = "https://yikatong.org/fhir/StructureDefinition/yikatong-patient"
BUNDLE = json.loads((ROOT / "tests" / "golden" / "canonical" / "basic" / "expected.bundle.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    from tests.support import RedisServer

    tmp = tmp_path_factory.mktemp("validate")
    server = RedisServer(tmp / "redis").start()
    gateway = Gateway(tmp, server.url, "http://127.0.0.1:9/fhir",
                      extra_env={"GATEWAY_WORKERS": "false"}).start()
    gateway.key = gateway.create_key(ORG)
    gateway.redis = redis.Redis.from_url(server.url)
    yield gateway
    gateway.stop()
    server.stop()


def _post(gw, path: str, body, key: str | None = "", **params) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/fhir+json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key or gw.key}"
    return httpx.post(f"{gw.base}{path}", content=data, headers=headers, params=params, timeout=10)


def _errors(resp: httpx.Response) -> list[tuple[str, list[str]]]:
    assert resp.headers["content-type"].startswith("application/fhir+json")
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    return [(i["code"], i.get("expression", [])) for i in body["issue"]
            if i["severity"] in ("error", "fatal")]


def _patient(citizen_id: str) -> dict:
    patient = copy.deepcopy(BUNDLE["entry"][2]["resource"])
    patient["identifier"][0]["value"] = citizen_id
    return patient


def test_a_rendered_bundle_validates_clean(gw):
    resp = _post(gw, "/fhir/$validate", BUNDLE, profile=BUNDLE_PROFILE)
    assert resp.status_code == 200
    assert _errors(resp) == []


def test_a_profile_error_is_200_with_the_issue_and_its_path(gw):
    resp = _post(gw, "/fhir/Patient/$validate", _patient("110105194912310021"), profile=PATIENT)
    assert resp.status_code == 200
    assert _errors(resp) == [("invariant", ["Patient.identifier[0].value"])]
    ok = _post(gw, "/fhir/Patient/$validate", _patient("11010519491231002X"), profile=PATIENT)
    assert _errors(ok) == []


def test_parameters_body_and_meta_profile(gw):
    patient = _patient("110105194912310021")
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient}, {"name": "profile", "valueUri": PATIENT}]}
    assert _errors(_post(gw, "/fhir/$validate", params)) == [
        ("invariant", ["Patient.identifier[0].value"])]
    patient["meta"] = {"profile": [PATIENT]}
    assert _errors(_post(gw, "/fhir/$validate", patient)) == [
        ("invariant", ["Patient.identifier[0].value"])]


def test_wrong_type_unknown_profile_non_json_and_no_key(gw):
    assert _errors(_post(gw, "/fhir/Encounter/$validate", _patient("11010519491231002X"))) == [
        ("invalid", ["resourceType"])]
    assert _errors(_post(gw, "/fhir/$validate", BUNDLE, profile="https://example.org/nope"))[0][0] \
        == "not-found"
    resp = _post(gw, "/fhir/$validate", b"{not json")
    assert resp.status_code == 400
    assert resp.json()["issue"][0]["code"] == "structure"
    assert _post(gw, "/fhir/$validate", BUNDLE, key=None).status_code == 401


def _queued(gw) -> int:
    return sum(gw.redis.xlen(k) for k in gw.redis.scan_iter("gw:q:regional:*"))


def test_a_visit_that_renders_invalid_is_refused_and_not_queued(gw):
    before = _queued(gw)
    visit = sample_visit()
    visit["fees"][0]["category"] = "99"  # not an NHSA charge category
    resp = gw.submit(gw.key, visit)
    assert resp.status_code == 422, resp.text
    issues = resp.json()["issue"]
    assert [(i["code"], i["expression"]) for i in issues] == [
        ("code-invalid", [issues[0]["expression"][0]])]
    assert issues[0]["expression"][0].endswith(".resource.extension[1].valueCoding")
    assert _queued(gw) == before
    assert gw.status(gw.key, resp.json()["id"])["status"] == "rejected"
    good = gw.submit(gw.key, sample_visit(visit_no="MZ20260301000999"))
    assert good.status_code == 202, good.text
    assert _queued(gw) == before + 1


BUNDLE_PROFILE = "https://yikatong.org/fhir/StructureDefinition/yikatong-visit-bundle"
