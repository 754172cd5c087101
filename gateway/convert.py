"""`gateway convert`: a canonical visit → its FHIR Bundle, without queueing (for adapter authors)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.pipeline import CONVERT_PIPELINE, Context, run
from gateway.settings import get_settings
from gateway.store import dumps


def convert_envelope(raw: bytes, *, tracking_id: str = "convert",
                     received_at: datetime | None = None) -> Envelope:
    env = Envelope(tracking_id=tracking_id, raw=raw,
                   received_at=received_at or datetime.now(timezone.utc))
    return run(CONVERT_PIPELINE, env, Context(settings=get_settings()))


def convert_bytes(raw: bytes) -> tuple[int, str]:
    """(exit code, pretty JSON): the Bundle, or the OperationOutcome that rejects the visit."""
    try:
        bundle = convert_envelope(raw).bundle
    except GatewayError as err:
        return 1, orjson.dumps(err.outcome, option=orjson.OPT_INDENT_2).decode()
    return 0, dumps(bundle, pretty=True).decode()
