"""The regional shared-EMR reference peer, exercised over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import sys
import uuid

import httpx
import pytest

from tests.support import free_port, http_service, wait_until

MRN = "urn:oid:2.16.156.10011.1.2"
ENC = "urn:oid:2.16.156.10011.1.11"
DX = "urn:oid:2.16.156.10011.1.99"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("regional") / "peer.log"
    args = [sys.executable, "-c", f"from conformance.peers.regional import serve; serve(port={port})"]
    with http_service(args, f"http://127.0.0.1:{port}/healthz", log=log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def client(peer):
    with httpx.Client(base_url=peer, timeout=10.0) as http:
        http.post("/_admin/reset").raise_for_status()
        yield http


# --------------------------------------------------------------------------- bundle builders


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def post(resource: dict, full_url: str | None = None, if_none_exist: str | None = None) -> dict:
    request = {"method": "POST", "url": resource["resourceType"]}
    if if_none_exist:
        request["ifNoneExist"] = if_none_exist
    return {"fullUrl": full_url or urn(), "resource": resource, "request": request}


def put(resource: dict) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def transaction(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def patient(mrn: str = "P001", **extra) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
            "name": [{"family": "张", "given": ["三"]}], "gender": "male", "birthDate": "1980-05-17", **extra}


def visit_bundle(mrn: str = "P001", visit: str = "V001") -> dict:
    """Patient, Encounter -> Patient, Condition -> Patient + Encounter, all by urn:uuid, all conditional."""
    p, e, c = urn(), urn(), urn()
    encounter = {"resourceType": "Encounter", "status": "finished",
                 "identifier": [{"system": ENC, "value": visit}],
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "subject": {"reference": p}}
    condition = {"resourceType": "Condition", "identifier": [{"system": DX, "value": f"{visit}-1"}],
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.9"}]},
                 "subject": {"reference": p}, "encounter": {"reference": e}}
    return transaction(
        post(patient(mrn), p, f"identifier={MRN}|{mrn}"),
        post(encounter, e, f"identifier={ENC}|{visit}"),
        post(condition, c, f"identifier={DX}|{visit}-1"),
    )


def send(client: httpx.Client, bundle: dict, **kw) -> httpx.Response:
    return client.post("/fhir", json=bundle, headers=FHIR_JSON, **kw)


def count(client: httpx.Client, rtype: str) -> int:
    answer = client.get(f"/fhir/{rtype}", params={"_summary": "count"})
    assert answer.status_code == 200
    assert "entry" not in answer.json()
    return answer.json()["total"]


def assert_outcome(answer: httpx.Response, status: int) -> list[dict]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    for item in body["issue"]:
        assert item["severity"] == "error" and item["code"] and item["details"]["text"]
    return body["issue"]


# --------------------------------------------------------------------------- transactions


def test_transaction_creates_and_resolves_urn_references(client):
    answer = send(client, visit_bundle())
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    result = answer.json()
    assert result["type"] == "transaction-response"
    responses = [e["response"] for e in result["entry"]]
    assert [r["status"] for r in responses] == ["201 Created"] * 3
    assert [r["etag"] for r in responses] == ['W/"1"'] * 3
    locations = [r["location"].split("/") for r in responses]
    assert [loc[0] for loc in locations] == ["Patient", "Encounter", "Condition"]
    assert all(loc[2:] == ["_history", "1"] for loc in locations)
    pid, eid, cid = (loc[1] for loc in locations)
    uuid.UUID(pid)  # server-assigned ids

    encounter = client.get(f"/fhir/Encounter/{eid}").json()
    assert encounter["subject"] == {"reference": f"Patient/{pid}"}
    condition = client.get(f"/fhir/Condition/{cid}").json()
    assert condition["subject"]["reference"] == f"Patient/{pid}"
    assert condition["encounter"]["reference"] == f"Encounter/{eid}"
    stored = client.get(f"/fhir/Patient/{pid}")
    assert stored.headers["etag"] == 'W/"1"'
    assert stored.json()["id"] == pid
    assert stored.json()["meta"]["versionId"] == "1" and stored.json()["meta"]["lastUpdated"]


def test_resending_the_same_bundle_matches_instead_of_duplicating(client):
    first = send(client, visit_bundle()).json()
    again = send(client, visit_bundle())
    assert again.status_code == 200
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 3
    assert [e["response"]["location"] for e in again.json()["entry"]] == \
        [e["response"]["location"] for e in first["entry"]]
    assert (count(client, "Patient"), count(client, "Encounter"), count(client, "Condition")) == (1, 1, 1)


def test_put_create_identical_update_and_changed_update(client):
    resource = patient(id="p-1")
    created = send(client, transaction(put(resource))).json()["entry"][0]["response"]
    assert created["status"] == "201 Created" and created["location"] == "Patient/p-1/_history/1"

    same = send(client, transaction(put({**resource, "meta": {"tag": [{"code": "x"}]}}))).json()
    assert same["entry"][0]["response"]["status"] == "200 OK"
    assert same["entry"][0]["response"]["etag"] == 'W/"1"'

    changed = send(client, transaction(put({**resource, "gender": "female"}))).json()["entry"][0]["response"]
    assert changed["status"] == "200 OK" and changed["location"] == "Patient/p-1/_history/2"
    current = client.get("/fhir/Patient/p-1").json()
    assert current["gender"] == "female" and current["meta"]["versionId"] == "2"
    assert client.get("/fhir/Patient/p-1/_history/1").json()["gender"] == "male"


def test_if_none_exist_with_two_matches_fails_the_whole_transaction(client):
    send(client, transaction(put(patient("DUP", id="a")), put(patient("DUP", id="b")))).raise_for_status()
    before = client.get("/_admin/stats").json()
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "体温"}}
    answer = send(client, transaction(post(observation), post(patient("DUP"), if_none_exist=f"identifier={MRN}|DUP")))
    issues = assert_outcome(answer, 412)
    assert issues[0]["expression"] == ["Bundle.entry[1].request.ifNoneExist"]
    assert count(client, "Observation") == 0 and count(client, "Patient") == 2
    assert client.get("/_admin/stats").json() == before


def test_if_none_exist_with_several_params_is_an_and(client):
    send(client, transaction(put(patient("AND", id="x1")))).raise_for_status()
    miss = send(client, transaction(post(patient("AND"), if_none_exist=f"identifier={MRN}|AND&_id=other")))
    assert miss.json()["entry"][0]["response"]["status"] == "201 Created"
    hit = send(client, transaction(post(patient("AND"), if_none_exist=f"identifier={MRN}|AND&_id=x1")))
    assert hit.json()["entry"][0]["response"]["location"] == "Patient/x1/_history/1"


def test_dangling_urn_reference_is_rejected_with_its_location(client):
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                 "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}}
    answer = send(client, transaction(post(patient()), post(encounter)))
    issues = assert_outcome(answer, 400)
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.subject.reference"]
    assert count(client, "Patient") == 0


def test_invalid_resource_is_422_with_fhirpath(client):
    answer = send(client, transaction(post(patient(birthDate="1990-13-01"))))
    issues = assert_outcome(answer, 422)
    assert [i["expression"] for i in issues] == [["Bundle.entry[0].resource.birthDate"]]
    assert issues[0]["code"] in ("structure", "invalid")
    assert count(client, "Patient") == 0


def test_unknown_resource_type_in_bundle_is_422(client):
    answer = send(client, transaction(post({"resourceType": "Nonsense"})))
    issues = assert_outcome(answer, 422)
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.resourceType"]


def test_non_json_and_non_bundle_bodies_are_400(client):
    assert_outcome(client.post("/fhir", content=b"<Bundle/>", headers=FHIR_JSON), 400)
    assert_outcome(client.post("/fhir", json=patient(), headers=FHIR_JSON), 400)
    assert_outcome(client.post("/fhir", json={"resourceType": "Bundle", "type": "collection"}), 400)


def test_batch_reports_per_entry_outcomes(client):
    dangling = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}
    answer = send(client, transaction(post(patient()), post(dangling), kind="batch"))
    assert answer.status_code == 200
    entries = answer.json()["entry"]
    assert answer.json()["type"] == "batch-response"
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("400")
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert (count(client, "Patient"), count(client, "Encounter")) == (1, 0)


# --------------------------------------------------------------------------- reads and searches


def test_search_by_identifier_with_and_without_system(client):
    send(client, transaction(put(patient("S1", id="s1")), put(patient("S2", id="s2")))).raise_for_status()
    with_system = client.get("/fhir/Patient", params={"identifier": f"{MRN}|S1"}).json()
    assert with_system["type"] == "searchset" and with_system["total"] == 1
    [entry] = with_system["entry"]
    assert entry["resource"]["id"] == "s1" and entry["search"]["mode"] == "match"
    assert entry["fullUrl"].endswith("/fhir/Patient/s1")
    assert client.get("/fhir/Patient", params={"identifier": "S2"}).json()["entry"][0]["resource"]["id"] == "s2"
    assert client.get("/fhir/Patient", params={"identifier": "other-system|S1"}).json()["total"] == 0
    assert client.get("/fhir/Patient", params={"identifier": "S1,S2"}).json()["total"] == 2
    assert client.get("/fhir/Patient", params={"_id": "s2"}).json()["total"] == 1
    assert count(client, "Patient") == 2


def test_search_by_patient_and_subject(client):
    result = send(client, visit_bundle()).json()
    pid = result["entry"][0]["response"]["location"].split("/")[1]
    send(client, visit_bundle("P002", "V002")).raise_for_status()
    assert client.get("/fhir/Encounter", params={"patient": pid}).json()["total"] == 1
    assert client.get("/fhir/Condition", params={"subject": f"Patient/{pid}"}).json()["total"] == 1
    assert client.get("/fhir/Condition").json()["total"] == 2


def test_everything_returns_the_patient_compartment(client):
    result = send(client, visit_bundle()).json()
    send(client, visit_bundle("P002", "V002")).raise_for_status()
    pid = result["entry"][0]["response"]["location"].split("/")[1]
    answer = client.get(f"/fhir/Patient/{pid}/$everything")
    assert answer.status_code == 200
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in answer.json()["entry"]}
    expected = {tuple(e["response"]["location"].split("/")[:2]) for e in result["entry"]}
    assert found == expected and answer.json()["total"] == 3
    assert_outcome(client.get("/fhir/Patient/nobody/$everything"), 404)


def test_reads_and_unknown_types_answer_operation_outcomes(client):
    assert_outcome(client.get("/fhir/Patient/missing"), 404)
    assert_outcome(client.get("/fhir/NotAType/1"), 404)
    assert_outcome(client.get("/fhir/NotAType"), 404)
    assert_outcome(client.get("/fhir/Patient", params={"name": "x"}), 400)
    assert_outcome(client.get("/no/such/path"), 404)


def test_metadata_and_health(client):
    capability = client.get("/fhir/metadata").json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1" and capability["kind"] == "instance"
    assert {"code": "transaction"} in capability["rest"][0]["interaction"]
    assert client.get("/healthz").json() == {"status": "ok"}


# --------------------------------------------------------------------------- faults and admin


def test_status_fault_twice_then_success(client):
    client.post("/_admin/faults", json={"status": 503, "count": 2}).raise_for_status()
    for _ in range(2):
        assert_outcome(send(client, visit_bundle()), 503)
        assert count(client, "Patient") == 0
    answer = send(client, visit_bundle())
    assert answer.status_code == 200
    assert count(client, "Patient") == 1
    assert client.get("/_admin/stats").json()["transactions"] == 1


def test_faults_queue_in_order_and_carry_issue_text(client):
    client.post("/_admin/faults", json={"status": 422, "count": 1, "issue": "rejected by regional rule R7"})
    client.post("/_admin/faults", json={"status": 500})
    issues = assert_outcome(send(client, visit_bundle()), 422)
    assert issues[0]["details"]["text"] == "rejected by regional rule R7"
    assert_outcome(send(client, visit_bundle()), 500)
    assert send(client, visit_bundle()).status_code == 200


def test_clearing_faults(client):
    client.post("/_admin/faults", json={"status": 503, "count": 5}).raise_for_status()
    client.delete("/_admin/faults").raise_for_status()
    assert send(client, visit_bundle()).status_code == 200
    assert_outcome(client.post("/_admin/faults", json={"count": 1}), 400)


def test_delay_fault_commits_before_the_late_answer(client):
    client.post("/_admin/faults", json={"delay": 2.0, "count": 1}).raise_for_status()
    with pytest.raises(httpx.ReadTimeout):
        send(client, visit_bundle(), timeout=0.5)
    wait_until(lambda: count(client, "Encounter") == 1, timeout=1.0, what="transaction stored")
    retry = send(client, visit_bundle())  # the gateway's retry finds everything already there
    assert [e["response"]["status"] for e in retry.json()["entry"]] == ["200 OK"] * 3
    assert count(client, "Encounter") == 1


def test_stats_and_reset(client):
    send(client, visit_bundle()).raise_for_status()
    send(client, visit_bundle("P002", "V002")).raise_for_status()
    stats = client.get("/_admin/stats").json()
    assert stats == {"transactions": 2, "resources": {"Condition": 2, "Encounter": 2, "Patient": 2}}
    client.post("/_admin/reset").raise_for_status()
    assert client.get("/_admin/stats").json() == {"transactions": 0, "resources": {}}
    assert count(client, "Patient") == 0
