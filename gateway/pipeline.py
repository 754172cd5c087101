"""The pipeline, as one readable list of stages.

    ingest → parse → identify → translate → render → validate → route

Every entry point (HTTP, MLLP, file, replay) builds its list from these same stages and
runs it with :func:`run`. A stage is ``stage(envelope, context) -> envelope``; it raises
:class:`gateway.errors.GatewayError` to reject.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


HTTP_PIPELINE: tuple[Stage, ...] = (
    ingest.run, parse.run, identify.run, translate.run, render.run, validate.run, route.run,
)
# HL7 v2 over MLLP (and v2 files): the sender is MSH-4, the rules in adapters/hl7v2/ map.
MLLP_PIPELINE: tuple[Stage, ...] = (
    ingest_v2.run, parse_v2.run, identify.run, translate.run, render.run, validate.run, route.run,
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
    ingest_v2.run, parse_v2.run, identify.run, translate.run, render.run, validate.run,
)
# Releasing a held ("needs-mapping") visit: from its canonical form, under its tracking id.
REPROCESS_PIPELINE: tuple[Stage, ...] = (
    parse.run, identify.run, translate.run, render.run, validate.run, route.run,
)


def run(stages: Sequence[Stage], envelope: Envelope, context: Context) -> Envelope:
    for stage in stages:
        envelope = stage(envelope, context)
    return envelope
