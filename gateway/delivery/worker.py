"""Delivery workers: Redis Streams → a destination's FHIR endpoint.

Each destination's queue is split into shards by patient; one worker at a time owns a
shard (a lease in Redis), so one patient's visits arrive in order. Taking over a shard
first claims the entries a dead owner left pending (XAUTOCLAIM), then reads new ones.

    2xx                      → delivered (ack)
    timeout, 5xx, 408, 429,  → retried with exponential backoff and full jitter, the
    connection error           shard waiting (order), until ``retry_max_age`` → failed
    other 4xx                → dead-lettered with the receiver's OperationOutcome

A crash after the receiver stored a bundle and before the ack re-delivers it; bundles
are idempotent (conditional creates), so the receiver creates nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from datetime import datetime, timezone
from typing import Any

import orjson
import redis.asyncio as aioredis

from gateway import compression, metrics, redis_async, store
from gateway.delivery.transports import transport_for
from gateway.logging import get_logger
from gateway.settings import Settings

log = get_logger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniform in [0, min(cap, base·2^(attempt-1))]."""
    return random.uniform(0, min(cap, base * (2 ** (attempt - 1))))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Destination:
    """Delivers one destination's shards for as long as this worker holds their leases."""

    def __init__(self, settings: Settings, r: aioredis.Redis, name: str, url: str,
                 worker_id: str):
        self.s = settings
        self.r = r
        self.name = name
        self.url = url
        self.me = worker_id
        self.lease_ms = int(settings.lease_ttl * 1000)
        self.transport = transport_for(url, settings)
        self.owned: dict[int, asyncio.Task] = {}
        self.alive_at = time.monotonic()

    async def _ensure_groups(self) -> None:
        for shard in range(self.s.delivery_shards):
            try:
                await self.r.xgroup_create(store.stream_key(self.name, shard), store.GROUP,
                                           id="0", mkstream=True)
            except aioredis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stop: asyncio.Event) -> None:
        await self._ensure_groups()
        try:
            while not stop.is_set():
                self.alive_at = time.monotonic()
                for shard in range(self.s.delivery_shards):
                    task = self.owned.get(shard)
                    if (task is None or task.done()) and await self._acquire(shard):
                        task = asyncio.create_task(self._own(shard, stop))
                        task.add_done_callback(self._report)
                        self.owned[shard] = task
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.s.lease_ttl / 3)
                except asyncio.TimeoutError:
                    pass
        finally:
            for task in self.owned.values():
                task.cancel()
            await asyncio.gather(*self.owned.values(), return_exceptions=True)
            for shard in list(self.owned):
                await self.r.eval(_RELEASE, 1, store.lease_key(self.name, shard), self.me)
            await self.transport.close()

    def _report(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("shard worker stopped; it restarts on the next round",
                      destination=self.name, error=f"{type(exc).__name__}: {exc}")

    async def _acquire(self, shard: int) -> bool:
        key = store.lease_key(self.name, shard)
        if await self.r.set(key, self.me, nx=True, px=self.lease_ms):
            return True
        return bool(await self.r.eval(_RENEW, 1, key, self.me, self.lease_ms))

    async def _own(self, shard: int, stop: asyncio.Event) -> None:
        """Keep the lease while delivering the shard; stop when the lease is lost."""
        work = asyncio.create_task(self._deliver_shard(shard, stop))
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=self.s.lease_ttl / 3)
                if done:
                    break
                if not await self.r.eval(_RENEW, 1, store.lease_key(self.name, shard),
                                         self.me, self.lease_ms):
                    log.warning("lease lost", destination=self.name, shard=shard)
                    work.cancel()
        finally:
            if not work.done():
                work.cancel()
            await asyncio.gather(work, return_exceptions=True)

    async def _deliver_shard(self, shard: int, stop: asyncio.Event) -> None:
        stream = store.stream_key(self.name, shard)
        # Entries a previous owner read but never acknowledged become ours, in order.
        cursor = "0-0"
        while True:
            res = await self.r.xautoclaim(stream, store.GROUP, self.me, min_idle_time=0,
                                          start_id=cursor, count=100)
            cursor = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
            if res[1]:
                log.info("reclaimed pending entries", destination=self.name, shard=shard,
                         count=len(res[1]))
            if cursor in ("0-0", "0"):
                break
        backlog = True  # our own pending entries first, then new ones
        while not stop.is_set():
            resp = await self.r.xreadgroup(store.GROUP, self.me, {stream: "0" if backlog else ">"},
                                           count=32, block=None if backlog else 1000)
            entries = resp[0][1] if resp else []
            if backlog and not entries:
                backlog = False
                continue
            for entry_id, fields in entries:
                if not fields:  # deleted while pending
                    await self.r.xack(stream, store.GROUP, entry_id)
                    continue
                await self._deliver(stream, entry_id, fields, stop)

    async def _deliver(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes],
                       stop: asyncio.Event) -> None:
        tid = fields[b"tid"].decode()
        enqueued = float(fields[b"enqueued"])
        payload = fields[b"payload"]  # as queued: compressed (gateway/compression.py)
        try:
            content = compression.unpack(payload)
        except compression.Unreadable as exc:  # kept as it is: a version that reads it replays it
            await self._finish(stream, entry_id, tid, "dead-lettered", 0,
                               {"error": f"the queued payload cannot be read: {exc}"},
                               payload=payload, person=fields.get(b"person", b""))
            return
        attempts = 0
        while True:
            attempts += 1
            self.alive_at = time.monotonic()
            attempt = await self.transport.send(content, tid)
            if attempt.result == "delivered":
                await self._finish(stream, entry_id, tid, "delivered", attempts, attempt.details)
                metrics.DELIVERY_LATENCY.labels(self.name).observe(time.time() - enqueued)
                return
            if attempt.result == "reject":
                await self._finish(stream, entry_id, tid, "dead-lettered", attempts,
                                   {"error": attempt.error, **attempt.details}, payload=payload,
                                   person=fields.get(b"person", b""))
                return
            error = attempt.error
            if time.time() - enqueued > self.s.retry_max_age:
                await self._finish(stream, entry_id, tid, "failed", attempts,
                                   {"last_error": error}, payload=payload,
                                   person=fields.get(b"person", b""))
                return
            metrics.RETRIES.labels(self.name).inc()
            delay = backoff(attempts, self.s.retry_base, self.s.retry_cap)
            await self._receipt(tid, {"status": "queued", "attempts": attempts,
                                      "last_error": error, "next_attempt_in": round(delay, 3)})
            log.info("delivery will be retried", destination=self.name, tracking_id=tid,
                     attempts=attempts, error=error, delay=round(delay, 3))
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
                return  # stopping: the entry stays pending and is delivered after restart
            except asyncio.TimeoutError:
                pass

    async def _receipt(self, tid: str, receipt: dict[str, Any]) -> None:
        key = store.visit_key(tid)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, f"receipt:{self.name}", orjson.dumps(receipt))
        pipe.expire(key, self.s.record_ttl)
        await pipe.execute()

    async def _finish(self, stream: str, entry_id: bytes, tid: str, status: str, attempts: int,
                      details: dict[str, Any], payload: bytes | None = None,
                      person: bytes = b"") -> None:
        receipt = {"status": status, "attempts": attempts, "at": _now(), **details}
        key = store.visit_key(tid)
        pipe = self.r.pipeline(transaction=True)
        if status != "delivered":
            pipe.xadd(store.dlq_key(self.name), {
                "tid": tid, "status": status, "entry": entry_id, "at": receipt["at"], "person": person,
                "outcome": orjson.dumps(details.get("outcome") or details), "payload": payload or b""})
        pipe.hset(key, f"receipt:{self.name}", orjson.dumps(receipt))
        pipe.expire(key, self.s.record_ttl)
        pipe.xack(stream, store.GROUP, entry_id)
        pipe.xdel(stream, entry_id)
        await pipe.execute()
        metrics.DELIVERED.labels(self.name, status).inc()
        if status != "delivered":
            log.warning("visit not delivered", destination=self.name, tracking_id=tid,
                        status=status, attempts=attempts)


class Workers:
    """All destinations' delivery loops, run as asyncio tasks (inside `serve` or `worker`)."""

    def __init__(self, settings: Settings, redis_url: str, worker_id: str | None = None):
        self.s = settings
        self.r = redis_async.client(redis_url, max_connections=4 * settings.delivery_shards + 8)
        # A stable id lets a restarted gateway take its own shards back at once; other
        # owners' shards are taken over when their leases expire.
        self.worker_id = (os.environ.get("GATEWAY_WORKER_ID") or worker_id
                          or f"{socket.gethostname()}:{os.getpid()}")
        self.destinations = [Destination(settings, self.r, name, url, self.worker_id)
                             for name, url in settings.destinations().items()]
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(d.run(self.stop)) for d in self.destinations]

    def alive(self) -> bool:
        stale = 3 * self.s.lease_ttl
        return all(not t.done() for t in self.tasks) and all(
            time.monotonic() - d.alive_at < stale for d in self.destinations)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.r.aclose()
