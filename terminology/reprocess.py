"""Release quarantined visits whose codes the maps now translate.

A visit held as "needs-mapping" keeps its canonical form; reprocessing runs it through
the pipeline again under the same tracking id. If every code now has a map it is queued
for its destinations (its record becomes "queued"); otherwise it stays held. Runs after
every map import and on `gateway terminology reprocess`.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from gateway import store
from gateway.envelope import Envelope, Sender
from gateway.errors import GatewayError
from gateway.logging import get_logger
from gateway.pipeline import REPROCESS_PIPELINE, Context, run

log = get_logger(__name__)


def reprocess(ctx: Context, org: str) -> tuple[int, int]:
    """(released, still held) for one organisation's quarantined visits."""
    released = held = 0
    key = store.quarantine_key(org)
    for tid, raw in ctx.redis.hgetall(key).items():
        tid = tid.decode()
        item = orjson.loads(raw)
        env = Envelope(tracking_id=tid, received_at=datetime.fromisoformat(item["received_at"]),
                       raw=orjson.dumps(item["visit"]), sender=Sender(org=org),
                       event=item.get("event", "visit"),
                       only_destinations=tuple(d for d in item.get("dests", []) if d != "*"))
        try:
            env = run(REPROCESS_PIPELINE, env, ctx)
        except GatewayError as err:  # the maps changed under it in a way that now rejects it
            log.warning("held visit cannot be released", tracking_id=tid,
                        error=err.outcome["issue"][0]["details"]["text"])
            held += 1
            continue
        if env.held:
            held += 1
            continue
        store.commit(ctx.redis, env.outbox)
        ctx.redis.hdel(key, tid)  # after the commit: a crash in between re-queues, never loses
        released += 1
    return released, held


def quarantined_orgs(ctx: Context) -> list[str]:
    return sorted(k.decode().rsplit(":", 1)[1] for k in ctx.redis.scan_iter("gw:term:quarantine:*"))
