"""Route: the durable write. The visit's record and its bundle for every destination go
into Redis in one transaction; only then is the visit accepted."""

from __future__ import annotations

from gateway import store
from gateway.envelope import Envelope


def run(env: Envelope, ctx) -> Envelope:
    dests = tuple(ctx.settings.destinations())
    store.enqueue(
        ctx.redis, tid=env.tracking_id, org=env.visit.org.code, visit_no=env.visit.visit_no,
        person_id=env.identity.person_id, received_at=env.received_at.isoformat(),
        payload=store.dumps(env.bundle), dests=dests, shards=ctx.settings.delivery_shards,
        ttl=ctx.settings.record_ttl,
    )
    return env.with_(destinations=dests)
