"""Terminology through the gateway: hospital maps first, quarantine and release, FHIR operations."""

from __future__ import annotations

import subprocess

import httpx

from tests.support import ROOT, Gateway, gateway_cmd, sample_visit, wait_until

CID_A, CID_B = "110101198506150019", "11010119900307002X"


def _visit(org, name, sex_system, sex_code, cid, visit_no):
    v = sample_visit(org={"code": org, "name": name}, visit_no=visit_no)
    v["patient"]["sex"] = {"system": sex_system, "code": sex_code}
    v["patient"]["cards"] = [{"type": "citizen_id", "value": cid}]
    v["drugs"], v["fees"] = [], []
    return v


def _gender(peer, cid):
    found = httpx.get(f"{peer.fhir}/Patient", params={
        "identifier": f"urn:oid:2.16.156.10011.1.3|{cid}"}).json()
    return found["entry"][0]["resource"]["gender"]


def test_seed_002_two_sex_encodings_translate_by_each_hospitals_map(gateway, peer, tmp_path):
    """One hospital codes sex as AAA002 1=male 2=female, another as SEX with the codes
    reversed; each hospital's own map, not code, gets both right."""
    key_a, key_b = gateway.create_key("HA"), gateway.create_key("HB")
    (tmp_path / "a.csv").write_text("source_system,source_code,source_display,target_code\n"
                                    "AAA002,1,男,1\nAAA002,2,女,2\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("source_system,source_code,source_display,target_code\n"
                                    "SEX,1,女,2\nSEX,2,男,1\n", encoding="utf-8")
    gateway.cli("terminology", "import", "--org", "HA", "--map", "sex", str(tmp_path / "a.csv"))
    gateway.cli("terminology", "import", "--org", "HB", "--map", "sex", str(tmp_path / "b.csv"))
    a = gateway.submit(key_a, _visit("HA", "甲医院", "AAA002", "1", CID_A, "A-1"))
    b = gateway.submit(key_b, _visit("HB", "乙医院", "SEX", "1", CID_B, "B-1"))
    assert a.status_code == b.status_code == 202, (a.text, b.text)
    gateway.wait_status(key_a, a.json()["tracking_id"], "delivered")
    gateway.wait_status(key_b, b.json()["tracking_id"], "delivered")
    assert _gender(peer, CID_A) == "male"
    assert _gender(peer, CID_B) == "female"  # SEX 1 is female at HB
    # hospital A's map does not apply to hospital B
    unmapped = gateway.submit(key_b, _visit("HB", "乙医院", "AAA002", "1", CID_B, "B-2"))
    assert unmapped.status_code == 422
    assert unmapped.json()["issue"][0]["expression"] == ["patient.sex.code"]


def test_unmapped_codes_quarantine_and_an_import_releases(tmp_path, redis_server, peer):
    gw = Gateway(tmp_path, redis_server.url, peer.fhir,
                 extra_env={"GATEWAY_UNMAPPED_POLICY": "quarantine"}).start()
    try:
        key = gw.create_key("H11010101")
        resp = gw.submit(key, sample_visit())
        assert resp.status_code == 202 and resp.json()["status"] == "needs-mapping"
        tid = resp.json()["tracking_id"]
        view = gw.status(key, tid)
        assert view["status"] == "needs-mapping"
        texts = " ".join(i["details"]["text"] for i in view["outcome"]["issue"])
        assert "YP0012" in texts and "GH001" in texts
        gaps = gw.cli("terminology", "gaps", "--org", "H11010101")
        assert "drug" in gaps and "YP0012" in gaps
        assert peer.count("Encounter") == 0
        drugs = "source_code,target_code\nYP0012,XJ01CAA040A001010104346\n"
        r = httpx.put(f"{gw.base}/v1/terminology/H11010101/maps/drug", content=drugs.encode(),
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"})
        assert r.status_code == 200 and r.json()["still_held"] == 1 and r.json()["released"] == 0
        fees = ("source_code,target_code\nGH001,110100001\nJY0001,250101015\n"
                "JC0101,210102015\n")
        r = httpx.put(f"{gw.base}/v1/terminology/H11010101/maps/fee-item", content=fees.encode(),
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"})
        assert r.json()["released"] == 1, r.text
        gw.wait_status(key, tid, "delivered")
        med = httpx.get(f"{peer.fhir}/MedicationRequest", params={
            "identifier": "https://yikatong.org/fhir/sid/org/H11010101/order|RX001"}).json()
        codes = [c["code"] for c in med["entry"][0]["resource"]["medicationCodeableConcept"]["coding"]]
        assert "XJ01CAA040A001010104346" in codes
    finally:
        gw.stop()


def test_csv_import_rejects_malformed_files_with_line_numbers(gateway, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("source_code,target_code,equivalence\nYP1,X1,equivalent\n,X2,\n"
                   "YP1,X3,\nYP4,,equivalent\nYP5,X5,sameish\n", encoding="utf-8")
    out = subprocess.run(gateway_cmd("terminology", "import", "--org", "H11010101", "--map",
                                     "drug", str(bad)), env={**__import__("os").environ, **gateway.env},
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert "line 3: source_code is empty" in out.stderr
    assert "line 4: 'YP1' is mapped again (first on line 2)" in out.stderr
    assert "line 5: target_code is empty" in out.stderr
    assert "line 6: equivalence 'sameish'" in out.stderr


def test_fhir_terminology_operations(gateway):
    key = gateway.create_key("H11010101")
    h = {"Authorization": f"Bearer {key}"}
    r = httpx.get(f"{gateway.base}/fhir/CodeSystem/$lookup", headers=h,
                  params={"system": "urn:oid:2.16.156.10011.2.3.3.4", "code": "1"}).json()
    assert r["resourceType"] == "Parameters"
    assert {"name": "display", "valueString": "男性"} in r["parameter"]
    ok = httpx.get(f"{gateway.base}/fhir/CodeSystem/$validate-code", headers=h, params={
        "system": "https://yikatong.org/fhir/CodeSystem/gbt-3304-ethnicity", "code": "01"}).json()
    assert ok["parameter"][0] == {"name": "result", "valueBoolean": True}
    bad = httpx.get(f"{gateway.base}/fhir/CodeSystem/$validate-code", headers=h, params={
        "system": "https://yikatong.org/fhir/CodeSystem/gbt-3304-ethnicity", "code": "77"}).json()
    assert bad["parameter"][0] == {"name": "result", "valueBoolean": False}
    exp = httpx.get(f"{gateway.base}/fhir/ValueSet/$expand", headers=h, params={
        "url": "https://yikatong.org/fhir/ValueSet/card-type"}).json()
    assert exp["expansion"]["total"] == 8
    tr = httpx.post(f"{gateway.base}/fhir/ConceptMap/$translate", headers=h, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "system", "valueUri": "http://terminology.hl7.org/CodeSystem/v2-0001"},
            {"name": "code", "valueCode": "F"},
            {"name": "target", "valueUri": "urn:oid:2.16.156.10011.2.3.3.4"}]}).json()
    assert tr["parameter"][0] == {"name": "result", "valueBoolean": True}
    match = tr["parameter"][1]["part"]
    assert {"name": "concept", "valueCoding": {"system": "urn:oid:2.16.156.10011.2.3.3.4",
                                               "code": "2"}} in match
    missing = httpx.get(f"{gateway.base}/fhir/CodeSystem/$lookup", headers=h,
                        params={"system": "urn:x", "code": "1"})
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


def test_a_full_icd10_table_can_be_loaded(gateway, tmp_path):
    key = gateway.create_key("H11010101")
    table = tmp_path / "icd10.csv"
    table.write_text("code,name,name_en\nA00.000x001,古典生物型霍乱,Classical cholera\n"
                     "J06.900,急性上呼吸道感染,Acute upper respiratory infection\n", encoding="utf-8")
    assert "installed" in gateway.cli("terminology", "load-icd10", str(table), "--edition", "clinical-2.0")
    r = httpx.get(f"{gateway.base}/fhir/CodeSystem/$lookup", headers={"Authorization": f"Bearer {key}"},
                  params={"system": "urn:oid:2.16.156.10011.2.3.3.11.1", "code": "A00.000x001"}).json()
    assert {"name": "display", "valueString": "古典生物型霍乱"} in r["parameter"]
    assert {"name": "version", "valueString": "clinical-2.0"} in r["parameter"]
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\nJ06.900,急性上呼吸道感染\nnot-a-code,x\nJ06.900,again\n", encoding="utf-8")
    out = subprocess.run(gateway_cmd("terminology", "load-icd10", str(bad)),
                         env={**__import__("os").environ, **gateway.env}, capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 1
    assert "line 3: 'not-a-code' is not an ICD-10 code" in out.stderr
    assert "line 4: J06.900 appears again (first on line 2)" in out.stderr


def test_policy_is_per_destination(tmp_path, redis_server, peer):
    """The regional platform takes the visit with a warning; the v2 receiver's copy waits
    for the map, and goes when the map arrives."""
    from tests.test_v2_outbound_delivery import Receiver

    with Receiver() as receiver:
        gw = Gateway(tmp_path, redis_server.url, peer.fhir, extra_env={
            "GATEWAY_V2_RECEIVER_URL": f"mllp://127.0.0.1:{receiver.server.port}",
            "GATEWAY_UNMAPPED_POLICY": "warn,v2=quarantine"}).start()
        try:
            key = gw.create_key("H11010101")
            visit = sample_visit()
            visit["fees"] = [f for f in visit["fees"] if f.get("national_code")]
            resp = gw.submit(key, visit)
            assert resp.json()["status"] == "needs-mapping"
            tid = resp.json()["tracking_id"]
            wait_until(lambda: gw.status(key, tid)["receipts"]["regional"]["status"] == "delivered",
                       what="the regional copy")
            view = gw.status(key, tid)
            assert view["receipts"]["v2"]["status"] == "needs-mapping"
            assert view["status"] == "needs-mapping"
            assert receiver.messages == []
            r = httpx.put(f"{gw.base}/v1/terminology/H11010101/maps/drug",
                          content=b"source_code,target_code\nYP0012,XJ01CAA040A001010104346\n",
                          headers={"Authorization": f"Bearer {key}"})
            assert r.json()["released"] == 1
            gw.wait_status(key, tid, "delivered")
            assert [m.trigger for m in receiver.messages] == ["A04", "R01", "P03"]
            assert peer.stats()["transactions"] == 1  # the regional copy was not sent again
        finally:
            gw.stop()
