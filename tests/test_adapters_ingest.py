"""Adapters at the gateway's edges, for real: vendor XML and a zip of CSV views over HTTP,
the v2.4 Z-segment dialect over MLLP — each visit queued and delivered like any other."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import redis

from adapters.sdk.check import case_input
from gateway.hl7.mllp import MLLPClient
from terminology.local_maps import LocalMaps
from tests.support import Gateway, Peer, RedisServer, wait_until

GOLDEN = Path(__file__).parent / "golden" / "adapters"
XML_ORG, CSV_ORG, V2_ORG = "H11010102", "H11010104", "H11010103"
BATCH_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapters")
    server = RedisServer(tmp / "redis").start()
    peer = Peer(tmp).start()
    gateway = Gateway(tmp, server.url, peer.fhir,
                      extra_env={"GATEWAY_MAX_BATCH_BYTES": str(BATCH_LIMIT)}).start()
    gateway.peer = peer
    gateway.redis = redis.Redis.from_url(server.url)
    maps = GOLDEN.parent.parent.parent / "adapters" / "hengtong_xml" / "maps"
    for name in ("sex", "diagnosis"):  # the hospital imports the vendor's code tables
        LocalMaps(gateway.redis).import_csv(XML_ORG, name, (maps / f"{name}.csv").read_text(), "test")
    gateway.keys = {org: gateway.create_key(org) for org in (XML_ORG, CSV_ORG, V2_ORG)}
    yield gateway
    gateway.stop()
    peer.stop()
    server.stop()


def post(gw, org: str, path: str, body: bytes, ctype: str, **params) -> httpx.Response:
    return httpx.post(f"{gw.base}{path}", content=body, params=params, timeout=30,
                      headers={"Authorization": f"Bearer {gw.keys[org]}", "Content-Type": ctype})


def test_vendor_xml_over_http(gw):
    raw = (GOLDEN / "hengtong_xml" / "basic" / "input.xml").read_bytes()
    r = post(gw, XML_ORG, "/v1/visits", raw, "application/xml", adapter="hengtong_xml")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["adapter"] == "hengtong_xml" and "/his:Visit/his:Operator" in body["unread"]
    gw.wait_status(gw.keys[XML_ORG], body["tracking_id"], "delivered")

    bad = (GOLDEN / "hengtong_xml" / "bad_citizen_id" / "input.xml").read_bytes()
    r = post(gw, XML_ORG, "/v1/visits", bad, "application/xml", adapter="hengtong_xml")
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["/his:Visit/his:Patient/his:IdNo (line 14)"]

    broken = (GOLDEN / "hengtong_xml" / "malformed_xml" / "input.xml").read_bytes()
    r = post(gw, XML_ORG, "/v1/visits", broken, "application/xml", adapter="hengtong_xml")
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["line 17, column 38"]

    r = post(gw, XML_ORG, "/v1/visits", raw, "application/xml", adapter="nope")
    assert r.status_code == 400 and "hengtong_xml" in r.json()["issue"][0]["details"]["text"]
    # another hospital may not send this hospital's visits through the adapter
    r = post(gw, CSV_ORG, "/v1/visits", raw, "application/xml", adapter="hengtong_xml")
    assert r.status_code == 403
    # without ?adapter, the organisation's configured adapter reads non-JSON bodies
    r = post(gw, XML_ORG, "/v1/visits", raw, "application/xml")
    assert r.status_code == 415
    gw.cli("orgs", "adapter", XML_ORG, "hengtong_xml")
    r = post(gw, XML_ORG, "/v1/visits", raw, "application/xml")
    assert r.status_code == 202, r.text
    assert httpx.get(f"{gw.base}/v1/adapters", timeout=5).json()[0]["id"] == "hengtong_xml"


def test_csv_batch_over_http(gw):
    raw = case_input(GOLDEN / "qiming_dbview" / "nightly")
    r = post(gw, CSV_ORG, "/v1/batches", raw, "application/zip", adapter="qiming_dbview")
    assert r.status_code == 207, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    by_status = {}
    for item in body["results"]:
        by_status.setdefault(item["status"], []).append(item)
    rejected = [i["outcome"]["issue"][0]["expression"][0] for i in by_status["rejected"]]
    assert rejected == ["fees.csv row 7 column visit_no", "fees.csv row 5 column qty"]
    for item in by_status["queued"]:
        gw.wait_status(gw.keys[CSV_ORG], item["tracking_id"], "delivered")
    for item in by_status["rejected"]:  # recorded, so the hospital can look them up
        assert gw.status(gw.keys[CSV_ORG], item["tracking_id"])["status"] == "rejected"
    r = post(gw, CSV_ORG, "/v1/batches", b"not a zip", "application/zip", adapter="qiming_dbview")
    assert r.status_code == 207 and r.json()["rejected"] == 1
    r = post(gw, CSV_ORG, "/v1/batches", b"x" * (BATCH_LIMIT + 1), "application/zip",
             adapter="qiming_dbview")  # GATEWAY_MAX_BATCH_BYTES
    assert r.status_code == 413 and "65536" in r.json()["issue"][0]["details"]["text"]


def send(port: int, *messages: bytes) -> list:
    async def go():
        async with MLLPClient("127.0.0.1", port, timeout=15) as client:
            return [await client.send(m) for m in messages]
    return asyncio.run(go())


def test_v24_dialect_over_mllp(gw):
    gw.cli("orgs", "adapter", V2_ORG, "kangtai_v24")
    gw.cli("orgs", "charset", V2_ORG, "GBK")
    good = (GOLDEN / "kangtai_v24" / "dft_p03_zfe" / "input.hl7").read_bytes()
    bad = (GOLDEN / "kangtai_v24" / "bad_fee_amount" / "input.hl7").read_bytes()
    ok, refused = send(gw.mllp_port, good, bad)
    ok, refused = ok.decode("gbk"), refused.decode("gbk")  # both in the sender's charset
    assert "MSA|AA|KT0002" in ok, ok
    assert "MSA|AE|KT0004" in refused
    assert "ERR|ZFE^2^5^" in refused and "ZFE[2]-5: '10.5O' is not a number" in refused
    wait_until(lambda: gw.peer.count("ChargeItem") >= 2, what="the ZFE fee lines at the peer")
