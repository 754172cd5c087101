"""`gateway convert`: a canonical visit (JSON) or an HL7 v2 message → its FHIR Bundle,
without Redis or queueing (for adapter authors and golden files)."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.jsonio import dumps
from gateway.orgs import Org, StaticOrgs
from gateway.pipeline import CONVERT_PIPELINE, CONVERT_V2_PIPELINE, Context, run
from gateway.settings import get_settings
from gateway.stages import ingest_v2


def is_hl7v2(raw: bytes) -> bool:
    return raw.lstrip(b"\xef\xbb\xbf \t\r\n\x0b").startswith(b"MSH")


def convert_envelope(raw: bytes, *, tracking_id: str = "convert",
                     received_at: datetime | None = None, org: Org | None = None) -> Envelope:
    """Run the pipeline short of queueing. HL7 v2 is sent by ``org`` (default: MSH-4 itself)."""
    env = Envelope(tracking_id=tracking_id, raw=raw,
                   received_at=received_at or datetime.now(timezone.utc))
    if not is_hl7v2(raw):
        return run(CONVERT_PIPELINE, env, Context(settings=get_settings()))
    sender = org or Org(ingest_v2.facility(raw), ingest_v2.facility(raw))
    return run(CONVERT_V2_PIPELINE, env, Context(settings=get_settings(), orgs=StaticOrgs(sender)))


def convert_bytes(raw: bytes, org: Org | None = None) -> tuple[int, str]:
    """(exit code, pretty JSON): the Bundle, or the OperationOutcome that rejects the input."""
    try:
        bundle = convert_envelope(raw, org=org).bundle
    except GatewayError as err:
        return 1, dumps(err.outcome, pretty=True).decode()
    return 0, dumps(bundle, pretty=True).decode()
