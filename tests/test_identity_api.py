"""Identity through the gateway: the EMPI behind visits, FHIR lookups, merges, card status."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Gateway, sample_visit

ORG = "H11010101"
CID = "urn:oid:2.16.156.10011.1.3|110101198506150019"


@pytest.fixture
def gw(tmp_path, redis_server):
    g = Gateway(tmp_path, redis_server.url, None).start()
    g.key = g.create_key(ORG)
    g.admin = g.cli("keys", "create", "--org", "ADMIN", "--role", "admin").splitlines()[-1]
    g.other = g.create_key("H22222222")
    yield g
    g.stop()


def _get(gw, path, key, **params):
    return httpx.get(f"{gw.base}{path}", params=params, headers={"Authorization": f"Bearer {key}"})


def test_visits_from_two_hospitals_are_one_person(gw):
    first = gw.submit(gw.key, sample_visit()).json()["person_id"]
    visit = sample_visit(org={"code": "H22222222", "name": "第二医院"}, visit_no="B-1")
    visit["patient"]["cards"] = [{"type": "citizen_id", "value": "110101198506150019"},
                                 {"type": "hospital_card", "value": "B-CARD-9"}]
    second = gw.submit(gw.other, visit).json()["person_id"]
    assert first == second
    found = _get(gw, "/fhir/Patient", gw.key, identifier=CID).json()
    patient = found["entry"][0]["resource"]
    assert patient["id"] == first
    values = {i["value"] for i in patient["identifier"]}
    assert {"JZK00088123", "B-CARD-9", "X00000019"} <= values
    pix = _get(gw, "/fhir/Patient/$ihe-pix", gw.key,
               sourceIdentifier="https://yikatong.org/fhir/sid/org/H22222222/card|B-CARD-9").json()
    targets = {p["valueIdentifier"]["value"] for p in pix["parameter"] if p["name"] == "targetIdentifier"}
    assert "JZK00088123" in targets and "110101198506150019" in targets


def test_lost_card_is_flagged_and_cancelled_card_refused(gw):
    gw.cli("cards", "set-status", "--type", "hospital_card", "--issuer", ORG, "--value",
           "JZK00088123", "--status", "lost", "--effective", "2026-01-01", "--reason", "挂失")
    resp = gw.submit(gw.key, sample_visit())
    assert resp.status_code == 202
    warning = resp.json()["outcome"]["issue"][0]
    assert warning["severity"] == "warning" and "lost" in warning["details"]["text"]
    assert warning["expression"] == ["patient.cards[0]"]
    r = httpx.put(f"{gw.base}/v1/cards/status", headers={"Authorization": f"Bearer {gw.admin}"},
                  json={"type": "ssc_card_no", "value": "X00000019", "status": "cancelled",
                        "effective": "2026-02-01", "reason": "补卡后注销"})
    assert r.status_code == 200, r.text
    refused = gw.submit(gw.key, sample_visit(visit_no="MZ-after"))
    assert refused.status_code == 422
    issue = refused.json()["issue"][0]
    assert "cancelled" in issue["details"]["text"] and issue["expression"] == ["patient.cards[2]"]
    # a hospital key may not change card status
    r = httpx.put(f"{gw.base}/v1/cards/status", headers={"Authorization": f"Bearer {gw.key}"},
                  json={"type": "ssc_card_no", "value": "X1", "status": "active"})
    assert r.status_code == 403


def test_match_merge_and_unmerge(gw):
    a = gw.submit(gw.key, sample_visit()).json()["person_id"]
    visit = sample_visit(visit_no="MZ-2")
    visit["patient"]["cards"] = [{"type": "hospital_card", "value": "ONLY-LOCAL"}]
    visit["patient"]["name"] = "章伟"
    b = gw.submit(gw.key, visit).json()["person_id"]
    assert a != b  # a local card alone never links
    match = httpx.post(f"{gw.base}/fhir/Patient/$match", headers={"Authorization": f"Bearer {gw.key}"},
                       json={"resourceType": "Patient", "name": [{"text": "章伟"}],
                             "birthDate": "1985-06-15"}).json()
    ids = [e["resource"]["id"] for e in match["entry"]]
    assert a in ids and b in ids
    assert ids[0] == b  # the exact name ranks above the homophone
    score = {e["resource"]["id"]: e["search"]["score"] for e in match["entry"]}
    assert score[b] == 0.7 and score[a] == 0.6
    assert all(e["search"]["extension"][0]["valueCode"] == "possible" for e in match["entry"])
    r = httpx.post(f"{gw.base}/v1/persons/{a}/merge", headers={"Authorization": f"Bearer {gw.admin}"},
                   json={"source": b, "reason": "confirmed at the desk"})
    assert r.status_code == 200, r.text
    survivor = _get(gw, "/fhir/Patient", gw.key,
                    identifier=f"https://yikatong.org/fhir/sid/org/{ORG}/card|ONLY-LOCAL").json()
    assert survivor["entry"][0]["resource"]["id"] == a
    assert {"other": {"reference": f"Patient/{b}"}, "type": "replaces"} in \
        survivor["entry"][0]["resource"]["link"]
    # later visits with the merged card resolve to the survivor
    again = gw.submit(gw.key, dict(visit, visit_no="MZ-3")).json()["person_id"]
    assert again == a
    r = httpx.post(f"{gw.base}/v1/persons/{b}/unmerge", headers={"Authorization": f"Bearer {gw.admin}"},
                   json={"reason": "different people after all"})
    assert r.status_code == 200
    history = _get(gw, f"/v1/persons/{b}/history", gw.key).json()
    assert [e["event"] for e in history][-2:] == ["merged", "unmerged"]
    assert history[-1]["by"] == "ADMIN"


def test_sex_from_visits_counts_in_match(gw):
    pid = gw.submit(gw.key, sample_visit()).json()["person_id"]
    r = httpx.post(f"{gw.base}/fhir/Patient/$match", headers={"Authorization": f"Bearer {gw.key}"},
                   json={"resourceType": "Patient", "name": [{"text": "张伟"}], "gender": "male",
                         "birthDate": "1985-06-15", "telecom": [{"system": "phone", "value": "13812345678"}]}).json()
    top = r["entry"][0]
    assert top["resource"]["id"] == pid and top["search"]["score"] == 1.0
    assert top["search"]["extension"][0]["valueCode"] == "certain"
    assert top["resource"]["gender"] == "male"
