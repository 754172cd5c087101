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
from gateway.stages import identify, ingest, parse, render, route, translate, validate

Stage = Callable[[Envelope, "Context"], Envelope]


@dataclass(frozen=True, slots=True)
class Context:
    """What stages may use besides the envelope: settings, Redis, the key store."""

    settings: Settings
    redis: Any = None
    keys: Any = None


HTTP_PIPELINE: tuple[Stage, ...] = (
    ingest.run, parse.run, identify.run, translate.run, render.run, validate.run, route.run,
)
# `gateway convert` and the benchmark: everything but authentication and the durable write.
CONVERT_PIPELINE: tuple[Stage, ...] = (
    parse.run, identify.run, translate.run, render.run, validate.run,
)


def run(stages: Sequence[Stage], envelope: Envelope, context: Context) -> Envelope:
    for stage in stages:
        envelope = stage(envelope, context)
    return envelope
