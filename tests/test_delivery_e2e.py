"""Submit → queue → deliver, against a real redis-server, real uvicorn and the real peer."""

from __future__ import annotations

import time

import httpx

from tests.support import Gateway, sample_visit, wait_until

ORG = "H11010101"


def test_submit_is_delivered_to_the_regional_platform(gateway, peer):
    key = gateway.create_key(ORG)
    resp = gateway.submit(key, sample_visit())
    assert resp.status_code == 202, resp.text
    tid = resp.json()["tracking_id"]
    assert resp.headers["location"] == f"/v1/visits/{tid}"

    view = gateway.wait_status(key, tid, "delivered")
    receipt = view["receipts"]["regional"]
    assert receipt["attempts"] == 1
    assert receipt["http_status"] == 200
    assert set(receipt["entries"]) == {"201"}  # everything created

    found = httpx.get(f"{peer.fhir}/Patient", params={
        "identifier": "urn:oid:2.16.156.10011.1.3|110101198506150019"}).json()
    assert found["total"] == 1
    patient = found["entry"][0]["resource"]
    assert patient["gender"] == "male"
    everything = httpx.get(f"{peer.fhir}/Patient/{patient['id']}/$everything").json()
    types = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest",
            "ServiceRequest", "ChargeItem"} <= types


def test_resent_visit_creates_nothing_new(gateway, peer):
    key = gateway.create_key(ORG)
    first = gateway.submit(key, sample_visit()).json()["tracking_id"]
    gateway.wait_status(key, first, "delivered")
    counts = {t: peer.count(t) for t in ("Patient", "Encounter", "Condition", "ChargeItem",
                                         "Provenance", "Observation")}
    second = gateway.submit(key, sample_visit()).json()["tracking_id"]
    assert second != first
    view = gateway.wait_status(key, second, "delivered")
    assert "201" not in view["receipts"]["regional"]["entries"]
    assert {t: peer.count(t) for t in counts} == counts


def test_receiver_errors_are_retried_until_delivered(gateway, peer):
    key = gateway.create_key(ORG)
    peer.fault(status=503, count=3)
    tid = gateway.submit(key, sample_visit()).json()["tracking_id"]
    view = gateway.wait_status(key, tid, "delivered")
    assert view["receipts"]["regional"]["attempts"] == 4
    assert peer.count("Encounter") == 1


def test_receiver_down_then_back(tmp_path, redis_server, peer):
    gw = Gateway(tmp_path, redis_server.url, peer.fhir).start()
    try:
        key = gw.create_key(ORG)
        peer.stop()
        tid = gw.submit(key, sample_visit()).json()["tracking_id"]
        view = wait_until(lambda: (v := gw.status(key, tid))["receipts"]["regional"]
                          .get("attempts", 0) >= 2 and v, what="retries")
        assert view["status"] == "queued"
        assert "ConnectError" in view["receipts"]["regional"]["last_error"]
        peer.start()
        gw.wait_status(key, tid, "delivered")
        assert peer.count("Encounter") == 1
    finally:
        gw.stop()


def test_receiver_4xx_dead_letters_with_its_outcome(gateway, peer):
    key = gateway.create_key(ORG)
    peer.fault(status=422, count=1, issue="serviceProvider is not a registered organisation")
    tid = gateway.submit(key, sample_visit()).json()["tracking_id"]
    view = gateway.wait_status(key, tid, "dead-lettered")
    receipt = view["receipts"]["regional"]
    assert receipt["http_status"] == 422
    texts = [i["details"]["text"] for i in receipt["outcome"]["issue"]]
    assert any("not a registered organisation" in t for t in texts)
    assert peer.count("Encounter") == 0
    # a later visit is not blocked by the dead letter
    nxt = gateway.submit(key, sample_visit(visit_no="MZ2")).json()["tracking_id"]
    gateway.wait_status(key, nxt, "delivered")
    metrics = httpx.get(f"{gateway.base}/metrics", timeout=5).text
    for outcome in ("dead-lettered", "delivered"):
        assert (f'gateway_deliveries_total{{destination="regional",outcome="{outcome}"}} 1.0'
                in metrics)


def test_per_patient_order_is_kept(gateway, peer):
    key = gateway.create_key(ORG)
    peer.fault(status=503, count=2)  # the first delivery is retried; the rest must wait
    tids = [gateway.submit(key, sample_visit(visit_no=f"MZ-{i}")).json()["tracking_id"]
            for i in range(5)]
    views = [gateway.wait_status(key, t, "delivered") for t in tids]
    times = [v["receipts"]["regional"]["at"] for v in views]
    assert times == sorted(times)


def test_gateway_killed_mid_queue_loses_and_duplicates_nothing(tmp_path, redis_server, peer):
    gw = Gateway(tmp_path, redis_server.url, peer.fhir).start()
    key = gw.create_key(ORG)
    peer.fault(status=503, count=10_000)  # the receiver refuses while we load the queue
    tids = [gw.submit(key, sample_visit(visit_no=f"K{i:03d}")).json()["tracking_id"]
            for i in range(20)]
    gw.kill()
    httpx.delete(f"{peer.base}/_admin/faults").raise_for_status()
    gw2 = Gateway(tmp_path, redis_server.url, peer.fhir)
    gw2.port, gw2.base = gw.port, gw.base  # same identity: takes its shards straight back
    gw2.start()
    try:
        for tid in tids:
            gw2.wait_status(key, tid, "delivered")
        assert peer.count("Encounter") == 20
    finally:
        gw2.stop()


def test_crash_between_delivery_and_ack_creates_no_duplicate(tmp_path, redis_server, peer):
    gw = Gateway(tmp_path, redis_server.url, peer.fhir).start()
    key = gw.create_key(ORG)
    peer.fault(delay=4.0, count=1)  # the peer stores the bundle, then answers late
    tid = gw.submit(key, sample_visit()).json()["tracking_id"]
    wait_until(lambda: peer.stats()["transactions"] == 1, what="the peer to store the bundle")
    gw.kill()  # before the answer arrives: the entry stays pending, unacknowledged
    time.sleep(0.2)
    # A different worker takes the shard over when the dead one's lease expires, and
    # reclaims the entry it left pending.
    gw2 = Gateway(tmp_path, redis_server.url, peer.fhir,
                  extra_env={"GATEWAY_WORKER_ID": "another-worker"}).start()
    try:
        view = gw2.wait_status(key, tid, "delivered", timeout=40)
        assert peer.stats()["transactions"] == 2  # delivered twice ...
        assert peer.count("Encounter") == 1  # ... stored once
        assert "201" not in view["receipts"]["regional"]["entries"]
    finally:
        gw2.stop()


def test_logs_carry_no_personal_data(gateway, peer):
    key = gateway.create_key(ORG)
    peer.fault(status=503, count=1)
    tid = gateway.submit(key, sample_visit()).json()["tracking_id"]
    gateway.wait_status(key, tid, "delivered")
    bad = sample_visit()
    bad["patient"]["cards"][1]["value"] = "110101198506150011"
    assert gateway.submit(key, bad).status_code == 422
    log = gateway.log.read_text(encoding="utf-8", errors="replace")
    assert "will be retried" in log  # the log is being written
    for secret in ("110101198506150019", "110101198506150011", "张伟", "13812345678",
                   "X00000019", "JZK00088123"):
        assert secret not in log


def test_dead_letters_are_listed_and_replayed(gateway, peer):
    key = gateway.create_key(ORG)
    peer.fault(status=422, count=1, issue="organisation not registered yet")
    tid = gateway.submit(key, sample_visit()).json()["tracking_id"]
    gateway.wait_status(key, tid, "dead-lettered")
    listing = gateway.cli("dlq", "list", "--dest", "regional")
    assert tid in listing and "organisation not registered yet" in listing
    assert "replayed 1" in gateway.cli("dlq", "replay", "--dest", "regional", "--tracking-id", tid)
    view = gateway.wait_status(key, tid, "delivered")
    assert view["receipts"]["regional"]["attempts"] == 1
    assert peer.count("Encounter") == 1
    assert gateway.cli("dlq", "list", "--dest", "regional") == ""


def test_a_queued_payload_that_cannot_be_read_is_dead_lettered_and_delivery_goes_on(
        gateway, peer, redis_server):
    """E.g. compressed with a dictionary this version lacks (queued by a newer one): kept,
    as it is, among the dead letters with the reason; the worker goes on."""
    import redis
    import zstandard

    from gateway import compression, store

    r = redis.Redis.from_url(redis_server.url)
    foreign = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(
        b"\x37\xa4\x30\xec" + (4242).to_bytes(4, "little")
        + next(iter(compression.dictionaries().values())).as_bytes()[8:])).compress(b"{}" * 50)
    key = gateway.create_key(ORG)
    first = gateway.submit(key, sample_visit()).json()["tracking_id"]
    gateway.wait_status(key, first, "delivered")  # the worker and its consumer group run
    r.xadd(store.stream_key("regional", store.shard_of("p-x", 8)),
           {"tid": "T-UNREADABLE", "person": "p-x", "enqueued": f"{time.time():.6f}",
            "payload": foreign})
    dead = wait_until(lambda: [f for _i, f in r.xrange(store.dlq_key("regional"))
                               if f[b"tid"] == b"T-UNREADABLE"], what="the dead letter")
    assert dead[0][b"payload"] == foreign
    assert "0x1092" in gateway.cli("dlq", "list", "--dest", "regional")  # 4242, the reason
    nxt = gateway.submit(key, sample_visit(visit_no="MZ2")).json()["tracking_id"]
    gateway.wait_status(key, nxt, "delivered")
