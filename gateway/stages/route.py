"""Route: decide where a visit goes — every configured destination, on the patient's shard —
and prepare the durable write (the outbox). The edge commits the outbox to Redis in one
transaction and only then accepts the visit."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway import compression, store
from gateway.envelope import Envelope
from gateway.insurance.visits import mark as settlement_copy
from gateway.jsonio import dumps
from gateway.stages.ingest_v2 import SEEN_TTL, seen_key
from terminology.local_maps import gap_key, gap_member


def run(env: Envelope, ctx) -> Envelope:
    if env.merge is not None:
        box = store.merge_outbox(tid=env.tracking_id, org=env.sender.org,
                                 received_at=_isoformat(env.received_at), merge=env.merge,
                                 ttl=ctx.settings.record_ttl)
        return env.with_(outbox=_marked(box, env))
    targets = {d: u for d, u in ctx.settings.destinations().items()
               if env.only_destinations is None or d in env.only_destinations}
    held: tuple[str, ...] = ()
    tr = env.translated
    if tr is not None and tr.unmapped:  # codes no map translates: each destination's policy
        held = tuple(d for d in targets if ctx.settings.policy_for(d) == "quarantine")
        if not targets and ctx.settings.policy_for("*") == "quarantine":
            held = ("*",)
        targets = {d: u for d, u in targets.items() if d not in held}
    payloads: dict[str, bytes] = {}  # compressed (gateway/compression.py)
    bundle = visit = None
    for dest, url in targets.items():
        if url.startswith("mllp://"):  # HL7 v2 receivers: the worker writes the messages
            visit = visit or compression.pack(dumps({
                "event": env.event, "visit": env.visit.model_dump(mode="json", exclude_none=True)}))
            payloads[dest] = visit
        else:
            bundle = bundle or compression.pack(dumps(env.bundle))
            payloads[dest] = bundle
    dests = tuple(payloads)
    org = env.visit.org.code
    counts = ()
    if tr is not None and tr.gaps:  # counted per hospital (`gateway terminology gaps`)
        counts = tuple((gap_key(org), gap_member(*g)) for g in tr.gaps)
    keep = settlement_copy(env)  # the visit, kept for settlement at the cashier
    seen = _seen(env)
    marks = (keep,) if keep else ()
    if seen:
        marks += (seen,)
    box = store.visit_outbox(
        tid=env.tracking_id, org=org, visit_no=env.visit.visit_no,
        person_id=env.identity.person_id, received_at=_isoformat(env.received_at),
        payloads=payloads, shards=ctx.settings.delivery_shards, ttl=ctx.settings.record_ttl,
        marks=marks, counts=counts, unless=seen[0] if seen else "",
    )
    if held:
        box = store.hold(box, org=env.visit.org.code, tid=env.tracking_id, dests=held,
                         item={"event": env.event, "received_at": _isoformat(env.received_at),
                               "visit": env.visit.model_dump(mode="json", exclude_none=True)},
                         outcome={"resourceType": "OperationOutcome", "issue": list(tr.unmapped)})
    return env.with_(destinations=dests, outbox=box, held=bool(held))


def _seen(env: Envelope) -> tuple[str, str, int] | None:
    """An HL7 message is accepted once per (sender, control id): marked seen in the same
    write that accepts it, which is skipped when the mark is already there (a re-send) —
    the outbox's last mark and its ``unless`` key (``Outbox.once``)."""
    control_id = getattr(env.message, "control_id", "")
    if not control_id:
        return None
    return seen_key(env.sender.org, control_id), env.tracking_id, SEEN_TTL


def _marked(box: store.Outbox, env: Envelope) -> store.Outbox:
    seen = _seen(env)
    return box if seen is None else box.once(*seen)


_TWO = tuple(f"{i:02d}" for i in range(100))  # 7 -> "07"
_THREE = tuple(f"{i:03d}" for i in range(1000))  # microseconds in two halves: 7 -> "007"


def _isoformat(value: datetime) -> str:
    """``value.isoformat()`` for the usual UTC time of receipt, without its printf
    formatting (about 11 k instructions); anything else goes to ``isoformat`` itself."""
    if type(value) is not datetime or value.tzinfo is not timezone.utc or value.year < 1000:
        return value.isoformat()
    micro = value.microsecond
    fraction = f".{_THREE[micro // 1000]}{_THREE[micro % 1000]}" if micro else ""
    return (f"{value.year}-{_TWO[value.month]}-{_TWO[value.day]}T{_TWO[value.hour]}:"
            f"{_TWO[value.minute]}:{_TWO[value.second]}{fraction}+00:00")
