"""Dead letters: what a destination refused (4xx, AR) or what retries could not deliver.
List them, and replay them — once the cause is fixed — onto the patient's shard again."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import orjson
import redis

from gateway import store


def list_dead(r: redis.Redis, dest: str, count: int = 100) -> list[dict[str, Any]]:
    out = []
    for entry_id, fields in r.xrange(store.dlq_key(dest), count=count):
        outcome = orjson.loads(fields.get(b"outcome", b"{}"))
        issues = outcome.get("issue", []) if isinstance(outcome, dict) else []
        out.append({
            "id": entry_id.decode(), "tracking_id": fields[b"tid"].decode(),
            "status": fields[b"status"].decode(), "at": fields.get(b"at", b"").decode(),
            "reason": (issues[0].get("details", {}).get("text") if issues
                       else outcome.get("last_error") or outcome.get("error", "")),
        })
    return out


def replay(r: redis.Redis, dest: str, *, shards: int, ttl: int,
           tracking_ids: set[str] | None = None) -> int:
    """Queue dead letters again (all, or those of ``tracking_ids``); returns how many."""
    replayed = 0
    for entry_id, fields in r.xrange(store.dlq_key(dest)):
        tid = fields[b"tid"].decode()
        if tracking_ids is not None and tid not in tracking_ids:
            continue
        person = fields.get(b"person", b"").decode() or tid
        pipe = r.pipeline(transaction=True)
        pipe.xadd(store.stream_key(dest, store.shard_of(person, shards)), {
            "tid": tid, "person": person, "enqueued": f"{time.time():.6f}",
            "payload": fields.get(b"payload", b"")})
        pipe.hset(store.visit_key(tid), f"receipt:{dest}", orjson.dumps({
            "status": "queued", "attempts": 0,
            "replayed_at": datetime.now(timezone.utc).isoformat()}))
        pipe.expire(store.visit_key(tid), ttl)
        pipe.xdel(store.dlq_key(dest), entry_id)
        pipe.execute()
        replayed += 1
    return replayed
