"""Route: decide where a visit goes — every configured destination, on the patient's shard —
and prepare the durable write (the outbox). The edge commits the outbox to Redis in one
transaction and only then accepts the visit."""

from __future__ import annotations

from gateway import store
from gateway.envelope import Envelope
from gateway.jsonio import dumps


def run(env: Envelope, ctx) -> Envelope:
    if env.merge is not None:
        box = store.merge_outbox(tid=env.tracking_id, org=env.sender.org,
                                 received_at=env.received_at.isoformat(), merge=env.merge,
                                 ttl=ctx.settings.record_ttl)
        return env.with_(outbox=_marked(box, env))
    tr = env.translated
    if tr is not None and tr.unmapped and ctx.settings.unmapped_policy == "quarantine":
        box = store.quarantine_outbox(
            tid=env.tracking_id, org=env.visit.org.code, visit_no=env.visit.visit_no,
            received_at=env.received_at.isoformat(), ttl=ctx.settings.record_ttl,
            held={"event": env.event, "visit": env.visit.model_dump(mode="json", exclude_none=True),
                  "received_at": env.received_at.isoformat()},
            outcome={"resourceType": "OperationOutcome", "issue": list(tr.unmapped)})
        return env.with_(outbox=_marked(box, env), held=True)
    payloads: dict[str, bytes] = {}
    bundle = visit = None
    for dest, url in ctx.settings.destinations().items():
        if url.startswith("mllp://"):  # HL7 v2 receivers: the worker writes the messages
            visit = visit or dumps({"event": env.event,
                                    "visit": env.visit.model_dump(mode="json", exclude_none=True)})
            payloads[dest] = visit
        else:
            bundle = bundle or dumps(env.bundle)
            payloads[dest] = bundle
    dests = tuple(payloads)
    box = store.visit_outbox(
        tid=env.tracking_id, org=env.visit.org.code, visit_no=env.visit.visit_no,
        person_id=env.identity.person_id, received_at=env.received_at.isoformat(),
        payloads=payloads, shards=ctx.settings.delivery_shards, ttl=ctx.settings.record_ttl,
    )
    return env.with_(destinations=dests, outbox=_marked(box, env))


def _marked(box: store.Outbox, env: Envelope) -> store.Outbox:
    """An HL7 message's control id is marked seen in the same transaction that accepts it."""
    control_id = getattr(env.message, "control_id", "")
    if not control_id:
        return box
    from gateway.stages.ingest_v2 import SEEN_TTL, seen_key

    return box.with_marks((seen_key(env.sender.org, control_id), env.tracking_id, SEEN_TTL))
