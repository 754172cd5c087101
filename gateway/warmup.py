"""Start-up: build what the first requests would, then freeze it out of the collector's sight.

The profile validator compiles a checker the first time it meets a resource type, the HL7
v2 engine compiles a plan per message type, caches fill. Built during the first requests,
all of that would stay among the objects Python's cyclic garbage collector scans at every
full collection (tens of milliseconds each, a request's latency while it runs). Built here
— by converting a synthetic visit, as JSON and as HL7 v2 messages — and then frozen
(``gc.freeze``), it is never scanned; the young generations are collected less often
(every request allocates thousands of short-lived objects that reference counting frees;
see ``GC_THRESHOLDS``).
"""

from __future__ import annotations

import gc
from datetime import datetime, timezone

from gateway.logging import get_logger

log = get_logger(__name__)

# A young collection runs when tracked objects allocated exceed those freed by the first
# number: under load what is allocated is mostly the working set of the visits in flight
# (64 connections x several hundred objects each), all alive, so at 20,000 each process
# ran one or two young collections a second, 6-14 ms each and finding nothing to free.
GC_THRESHOLDS = (100_000, 20, 100)


def prepare() -> None:
    try:
        _exercise()
    except Exception as exc:  # a warm-up that fails costs speed, never the start
        log.warning("warm-up failed; the first requests compile what they need",
                    error=type(exc).__name__)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _exercise() -> None:
    from gateway.convert import convert_envelope
    from gateway.hl7.outbound import to_v2
    from gateway.synth import generate

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for visit in generate(2, seed=20260101):
        convert_envelope(visit.to_json(), tracking_id="warm-up", received_at=now)
        for kind in ("ADT^A04", "ORU^R01", "DFT^P03"):
            if kind == "ORU^R01" and not visit.results:
                continue
            raw = to_v2(visit, kind, control_id="warm-up", now=now)
            convert_envelope(raw, tracking_id="warm-up", received_at=now)
