"""Route: decide where a visit goes — every configured destination, on the patient's shard —
and prepare the durable write (the outbox). The edge commits the outbox to Redis in one
transaction and only then accepts the visit."""

from __future__ import annotations

from gateway import store
from gateway.envelope import Envelope


def run(env: Envelope, ctx) -> Envelope:
    dests = tuple(ctx.settings.destinations())
    box = store.visit_outbox(
        tid=env.tracking_id, org=env.visit.org.code, visit_no=env.visit.visit_no,
        person_id=env.identity.person_id, received_at=env.received_at.isoformat(),
        payload=store.dumps(env.bundle), dests=dests, shards=ctx.settings.delivery_shards,
        ttl=ctx.settings.record_ttl,
    )
    return env.with_(destinations=dests, outbox=box)
