"""Submissions processed together: the group commit, the index's batch resolve, the
pipeline's batch runner and the batcher — on a real redis-server."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import orjson
import pytest
import redis

from gateway import errors, store
from gateway.apikeys import KeyStore
from gateway.batcher import Batcher
from gateway.envelope import Envelope
from gateway.identifiers import card_system
from gateway.identifiers import CardType as T
from gateway.identity.card_status import CardStatusStore
from gateway.identity.empi import Empi, EmpiError
from gateway.orgs import OrgRegistry
from gateway.pipeline import HTTP_PIPELINE, Context, run_many
from gateway.settings import Settings
from terminology.local_maps import LocalMaps
from tests.support import sample_visit

ORG = "H11010101"
CID = "110101198506150019"
CID2 = "110101199003070011"


def _box(tid: str, **extra) -> store.Outbox:
    box = store.visit_outbox(tid=tid, org=ORG, visit_no=f"V-{tid}", person_id="p1",
                             received_at="2026-03-01T00:00:00+00:00",
                             payloads={"regional": b'{"resourceType":"Bundle"}'}, shards=4,
                             ttl=600)
    return box.with_hash_fields(*extra.get("hash_fields", ()))


def test_group_commit_writes_each_outbox_and_reports_each_failure(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    r.set("not-a-hash", "x")
    boxes = [_box("t1"), _box("t2", hash_fields=[("not-a-hash", "f", b"v")]), _box("t3")]
    results = store.commit_many(r, boxes)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], redis.ResponseError) and "WRONGTYPE" in str(results[1])
    for tid in ("t1", "t3"):
        assert r.hget(store.visit_key(tid), "visit_no") == f"V-{tid}".encode()
        assert 0 < r.ttl(store.visit_key(tid)) <= 600
    shard = store.shard_of("p1", 4)
    entries = r.xrange(store.stream_key("regional", shard))
    assert [e[1][b"tid"] for e in entries] == [b"t1", b"t2", b"t3"]  # in order
    assert store.commit_many(r, []) == []


def test_group_commit_with_redis_away_fails_every_outbox(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    redis_server.stop()
    results = store.commit_many(r, [_box("t1"), _box("t2")])
    assert all(isinstance(x, redis.ConnectionError) for x in results)


def _ids(*items):
    return [(t.value, card_system(t, issuer), v) for t, v, issuer in items]


def test_batch_resolve_is_the_same_as_one_by_one(redis_server, tmp_path):
    from tests.support import RedisServer

    requests = [
        {"identifiers": _ids((T.HOSPITAL_CARD, "LONELY", "H1"))},  # provisional
        {"identifiers": _ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "JZK1", "H1"))},
        {"identifiers": _ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "LONELY", "H1"))},
        {"identifiers": _ids((T.CITIZEN_ID, CID2, None)), "attrs": {"name": "张伟"}},
        {"identifiers": []},  # refused on its own, the others go on
        {"identifiers": _ids((T.SSC_CARD_NO, "X00000019", None), (T.CITIZEN_ID, CID2, None))},
    ]
    batch = Empi(redis.Redis.from_url(redis_server.url)).resolve_many(requests)
    other = RedisServer(tmp_path / "other").start()
    try:
        one_by_one = Empi(redis.Redis.from_url(other.url))
        expected = []
        for req in requests:
            try:
                expected.append(one_by_one.resolve(**req))
            except EmpiError as exc:
                expected.append(exc)
    finally:
        other.stop()
    assert isinstance(batch[4], EmpiError) and isinstance(expected[4], EmpiError)
    for got, want in zip(batch[:4] + batch[5:], expected[:4] + expected[5:]):
        assert (got.person_id, got.identifiers, got.created) == \
            (want.person_id, want.identifiers, want.created)
    assert batch[2].person_id == batch[1].person_id  # the provisional person joined


def test_batch_resolve_loads_the_script_again_after_a_flush(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    empi = Empi(r)
    r.script_flush()
    out = empi.resolve_many([{"identifiers": _ids((T.CITIZEN_ID, CID, None))}] * 2)
    assert out[0].created and not out[1].created and out[0].person_id == out[1].person_id


def _ctx(url: str, aio: bool = False) -> tuple[Context, str]:
    """A context like the app's; ``aio``: with its asyncio client for the batch forms and
    the group commit (no retries), else their blocking forms."""
    r = redis.Redis.from_url(url)
    keys = KeyStore(r)
    key = keys.create(ORG, "test")
    settings = Settings(redis_url=url, regional_fhir_url="http://127.0.0.1:9/fhir")
    aredis = None
    if aio:
        from gateway.redis_async import unretried

        aredis = unretried(url)
    return Context(settings=settings, redis=r, keys=keys, orgs=OrgRegistry(r), empi=Empi(r),
                   card_status=CardStatusStore(r), local_maps=LocalMaps(r), aredis=aredis), key


def _env(key: str, visit: dict) -> Envelope:
    return Envelope(tracking_id=store.new_tracking_id(), received_at=datetime.now(timezone.utc),
                    raw=json.dumps(visit, ensure_ascii=False).encode(), credentials=key)


def _visit(no: str, citizen_id: str = CID, **changes) -> dict:
    v = sample_visit(visit_no=no, **changes)
    v["patient"]["cards"] = [{"type": "citizen_id", "value": citizen_id}]
    return v


def test_run_many_stops_only_the_envelope_that_fails(redis_server):
    ctx, key = _ctx(redis_server.url)
    bad = _visit("V2")
    bad["patient"]["cards"][0]["value"] = "110101198506150018"  # wrong check digit
    results = asyncio.run(run_many(HTTP_PIPELINE, [_env(key, _visit("V1")), _env(key, bad),
                                                   _env(key, _visit("V3", CID2))], ctx))
    (e1, x1), (e2, x2), (e3, x3) = results
    assert x1 is None and x3 is None and e1.outbox is not None and e3.outbox is not None
    assert isinstance(x2, errors.GatewayError) and x2.status == 422
    assert e2.sender is not None and e2.visit is None  # the last envelope it reached: ingest's
    assert e1.identity.person_id != e3.identity.person_id


@pytest.mark.parametrize("aio,max_batch", [(True, 64), (False, 64), (True, 3)],
                         ids=["asyncio-client", "blocking-client", "many-batches-in-flight"])
def test_batcher_takes_concurrent_submissions_together(redis_server, aio, max_batch):
    ctx, key = _ctx(redis_server.url, aio)
    batcher = Batcher(ctx, max_batch=max_batch)
    envs = [_env(key, _visit(f"V{i:03d}", CID if i % 2 else CID2)) for i in range(40)]
    bad = _visit("BAD")
    bad["visit_time"] = "not a time"
    envs.insert(7, _env(key, bad))

    async def main():
        return await asyncio.gather(*(batcher.process(e, HTTP_PIPELINE) for e in envs))

    sizes = _batch_sizes()
    outcomes = asyncio.run(main())
    assert batcher.envelopes == 41  # taken together, at most max_batch at a time
    assert batcher.batches == -(-41 // max_batch)
    # what /metrics shows operators: gateway_ingest_batch_size (sum: submissions; count: batches)
    assert [b - a for a, b in zip(sizes, _batch_sizes())] == [41, batcher.batches]
    rejected = [o for o in outcomes if o.error is not None]
    assert len(rejected) == 1 and rejected[0].envelope.tracking_id == envs[7].tracking_id
    assert any(i["expression"] == ["visit_time"] for i in rejected[0].error.outcome["issue"])
    r = ctx.redis
    accepted = [o.envelope for o in outcomes if o.error is None]
    for env in accepted:
        assert r.hget(store.visit_key(env.tracking_id), "status") == b"queued"
    queued: dict[str, list[str]] = {}  # person → tracking ids, in stream order
    for shard in range(ctx.settings.delivery_shards):
        for _id, fields in r.xrange(store.stream_key("regional", shard)):
            queued.setdefault(fields[b"person"].decode(), []).append(fields[b"tid"].decode())
    assert sorted(t for ts in queued.values() for t in ts) == sorted(e.tracking_id for e in accepted)
    if max_batch == 64:  # one batch: in the order handed in
        for person, tids in queued.items():
            assert tids == [e.tracking_id for e in accepted if e.identity.person_id == person]


def _batch_sizes() -> tuple[float, float]:
    from prometheus_client import REGISTRY

    return (REGISTRY.get_sample_value("gateway_ingest_batch_size_sum"),
            REGISTRY.get_sample_value("gateway_ingest_batch_size_count"))


def test_a_patients_visits_sent_one_after_the_other_are_queued_in_that_order(redis_server):
    ctx, key = _ctx(redis_server.url, aio=True)
    batcher = Batcher(ctx)

    async def main():
        others = [asyncio.ensure_future(batcher.process(_env(key, _visit(f"O{i}", CID2)),
                                                        HTTP_PIPELINE)) for i in range(20)]
        mine = []
        for i in range(6):  # each waits for the one before, as a sender needing order does
            mine.append(await batcher.process(_env(key, _visit(f"M{i}")), HTTP_PIPELINE))
        await asyncio.gather(*others)
        return mine

    mine = asyncio.run(main())
    person = mine[0].envelope.identity.person_id
    stream = store.stream_key("regional", store.shard_of(person, ctx.settings.delivery_shards))
    queued = [f[b"tid"].decode() for _i, f in ctx.redis.xrange(stream) if f[b"person"] == person.encode()]
    assert queued == [o.envelope.tracking_id for o in mine]


@pytest.mark.parametrize("aio", [True, False], ids=["asyncio-client", "blocking-client"])
def test_batcher_answers_every_submission_when_redis_is_away(redis_server, aio):
    ctx, key = _ctx(redis_server.url, aio)
    batcher = Batcher(ctx)
    envs = [_env(key, _visit(f"V{i}")) for i in range(3)]
    ctx.keys.lookup(key)  # the key is known (cached) before Redis goes away
    redis_server.stop()

    async def main():
        return await asyncio.gather(*(batcher.process(e, HTTP_PIPELINE) for e in envs))

    outcomes = asyncio.run(main())
    assert all(isinstance(o.error, redis.ConnectionError) for o in outcomes)


def test_outbox_commands_round_trip_through_the_group_commit(redis_server):
    """The commands one outbox becomes (marks, held visits, gap counts) all land."""
    r = redis.Redis.from_url(redis_server.url)
    box = _box("t9").with_marks(("gw:v2:seen:X", "t9", 60)).with_counts(("gw:term:gaps:H", "m|s|c"))
    assert store.commit_many(r, [box]) == [None]
    assert r.get("gw:v2:seen:X") == b"t9" and 0 < r.ttl("gw:v2:seen:X") <= 60
    assert r.zscore("gw:term:gaps:H", "m|s|c") == 1.0
    receipt = orjson.loads(r.hget(store.visit_key("t9"), "receipt:regional"))
    assert receipt == {"status": "queued", "attempts": 0}


@pytest.mark.parametrize("n", [1, 5])
def test_a_lone_submission_is_not_kept_waiting_for_company(redis_server, n):
    ctx, key = _ctx(redis_server.url, aio=True)
    batcher = Batcher(ctx)

    async def main():
        out = []
        for i in range(n):  # one after the other: each is its own batch
            out.append(await asyncio.wait_for(batcher.process(_env(key, _visit(f"S{i}")),
                                                              HTTP_PIPELINE), 10))
        return out

    outcomes = asyncio.run(main())
    assert all(o.error is None for o in outcomes) and batcher.batches == n


def test_an_outbox_written_once_per_key_even_in_one_group(redis_server):
    """An HL7 message's (sender, MSH-10): the second write of the same key is refused
    atomically, whichever process or batch it comes from."""
    r = redis.Redis.from_url(redis_server.url)
    first = _box("a1").once("gw:v2seen:H:MSG1", "a1", 60)
    again = _box("a2").once("gw:v2seen:H:MSG1", "a2", 60)
    results = store.commit_many(r, [first, again])
    assert results[0] is None and isinstance(results[1], store.AlreadySeen)
    assert r.get("gw:v2seen:H:MSG1") == b"a1"
    assert r.exists(store.visit_key("a1")) and not r.exists(store.visit_key("a2"))
    shard = store.shard_of("p1", 4)
    assert [e[1][b"tid"] for e in r.xrange(store.stream_key("regional", shard))] == [b"a1"]
    with pytest.raises(store.AlreadySeen):
        store.commit(r, _box("a3").once("gw:v2seen:H:MSG1", "a3", 60))


def test_group_commit_loads_its_script_again_after_a_flush(redis_server):
    r = redis.Redis.from_url(redis_server.url)
    assert store.commit_many(r, [_box("f1")]) == [None]
    r.script_flush()
    assert store.commit_many(r, [_box("f2"), _box("f3")]) == [None, None]
    assert all(r.exists(store.visit_key(t)) for t in ("f1", "f2", "f3"))


def test_async_commit_writes_the_same_way(redis_server):
    import redis.asyncio as aioredis

    async def main():
        ar = aioredis.Redis.from_url(redis_server.url)
        await ar.script_flush()
        await store.commit_async(ar, _box("c1").once("gw:v2seen:H:C", "c1", 60))
        with pytest.raises(store.AlreadySeen):
            await store.commit_async(ar, _box("c2").once("gw:v2seen:H:C", "c2", 60))
        await ar.aclose()

    asyncio.run(main())
    r = redis.Redis.from_url(redis_server.url)
    assert r.hget(store.visit_key("c1"), "status") == b"queued" and not r.exists(store.visit_key("c2"))


def test_submissions_that_wait_for_a_batch_slot_are_taken_when_one_frees(redis_server):
    """With every batch slot taken, what arrives meanwhile starts as soon as one ends."""
    ctx, key = _ctx(redis_server.url, aio=True)
    batcher = Batcher(ctx, max_batch=2, in_flight=1)

    async def main():
        first = [asyncio.ensure_future(batcher.process(_env(key, _visit(f"W{i}")), HTTP_PIPELINE))
                 for i in range(2)]
        await asyncio.sleep(0)  # the first batch starts; the rest arrive while it runs
        later = [asyncio.ensure_future(batcher.process(_env(key, _visit(f"L{i}")), HTTP_PIPELINE))
                 for i in range(5)]
        return await asyncio.wait_for(asyncio.gather(*first, *later), 20)

    outcomes = asyncio.run(main())
    assert all(o.error is None for o in outcomes) and batcher.batches == 4
