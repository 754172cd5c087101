"""The pipeline, as one readable list of stages.

    ingest → parse → identify → translate → render → validate → route

Every entry point (HTTP, MLLP, file, replay) builds its list from these same stages and
runs it with :func:`run`. A stage is ``stage(envelope, context) -> envelope``; it raises
:class:`gateway.errors.GatewayError` to reject.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.envelope import Envelope
from gateway.settings import Settings
from gateway.stages import (
    adapt,
    identify,
    ingest,
    ingest_v2,
    parse,
    parse_v2,
    render,
    route,
    translate,
    validate,
)

Stage = Callable[[Envelope, "Context"], Envelope]
# A stage's batch form (a coroutine: it may wait for Redis while the event loop goes on):
# one result per envelope, in order — the next envelope, or the exception that stopped
# that one (the others go on).
BatchStage = Callable[[list[Envelope], "Context"], Awaitable[list["Envelope | Exception"]]]


@dataclass(frozen=True, slots=True)
class Context:
    """What stages may use besides the envelope: settings, Redis, the key store."""

    settings: Settings
    redis: Any = None
    keys: Any = None
    orgs: Any = None
    empi: Any = None  # gateway.identity.empi.Empi; None when converting offline
    card_status: Any = None  # gateway.identity.card_status.CardStatusStore
    local_maps: Any = None  # terminology.local_maps.LocalMaps: the hospitals' own code maps
    aredis: Any = None  # an asyncio client for batch forms and group commits (no retries)


HTTP_PIPELINE: tuple[Stage, ...] = (
    ingest.run, parse.run, identify.run, translate.run, render.run, validate.run, route.run,
)
# HL7 v2 over MLLP (and v2 files): the sender is MSH-4, the rules in adapters/hl7v2/ map.
MLLP_PIPELINE: tuple[Stage, ...] = (
    ingest_v2.header, parse_v2.run, identify.run, translate.run, render.run, validate.run, route.run,
)
# Vendor formats read by an adapter (adapters/): `POST /v1/visits?adapter=ID`, or the
# hospital's configured adapter; `POST /v1/batches` runs HTTP_PIPELINE for each visit read.
ADAPTER_PIPELINE: tuple[Stage, ...] = (
    ingest.run, adapt.run, identify.run, translate.run, render.run, validate.run, route.run,
)

# `gateway convert`: offline, short of queueing (JSON, and HL7 v2 sent by a given organisation).
CONVERT_PIPELINE: tuple[Stage, ...] = (
    parse.run, identify.run, translate.run, render.run, validate.run,
)
CONVERT_V2_PIPELINE: tuple[Stage, ...] = (
    ingest_v2.header, parse_v2.run, identify.run, translate.run, render.run, validate.run,
)
# Releasing a held ("needs-mapping") visit: from its canonical form, under its tracking id.
REPROCESS_PIPELINE: tuple[Stage, ...] = (
    parse.run, identify.run, translate.run, render.run, validate.run, route.run,
)


# Stages that talk to Redis offer a batch form, so a batch of submissions costs one round
# trip there instead of one per visit (the index resolves each visit in order, as one by one).
BATCHED: dict[Stage, BatchStage] = {identify.run: identify.run_many}


def run(stages: Sequence[Stage], envelope: Envelope, context: Context) -> Envelope:
    for stage in stages:
        envelope = stage(envelope, context)
    return envelope


async def run_many(stages: Sequence[Stage], envelopes: Sequence[Envelope],
                   context: Context) -> list[tuple[Envelope, Exception | None]]:
    """:func:`run` for a batch, stage by stage (a stage's batch form where it has one). Per
    envelope: the last envelope it reached, and the exception that stopped it (None when
    every stage passed). One envelope's failure never stops another."""
    last = list(envelopes)
    failed: list[Exception | None] = [None] * len(last)
    live = list(range(len(last)))
    for stage in stages:
        if not live:
            break
        many = BATCHED.get(stage)
        if many is not None:
            try:
                results = await many([last[i] for i in live], context)
            except Exception as exc:  # e.g. Redis unreachable: every envelope of the batch
                results = [exc] * len(live)
        else:
            results = []
            for i in live:
                try:
                    results.append(stage(last[i], context))
                except Exception as exc:
                    results.append(exc)
        still = []
        for i, result in zip(live, results):
            if isinstance(result, Exception):
                failed[i] = result
            else:
                last[i] = result
                still.append(i)
        live = still
    return list(zip(last, failed))
