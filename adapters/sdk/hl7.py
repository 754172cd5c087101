"""HL7 v2 adapters read through the gateway's own v2 stages (header, sender, character
set, then the rules — the standard ones or a dialect's overlay), so a message read here
maps exactly as it does over MLLP."""

from __future__ import annotations

from datetime import datetime, timezone

from adapters.sdk.reading import Reading
from gateway.envelope import Envelope
from gateway.errors import GatewayError


def read_v2(raw: bytes, adapter_id: str, org: str | None = None, charset: str = "") -> Reading:
    """``charset``: what the dialect means when MSH-18 is empty (the organisation's setting
    in the running gateway)."""
    from gateway.orgs import Org
    from gateway.pipeline import Context, run
    from gateway.settings import get_settings
    from gateway.stages import ingest_v2, parse_v2

    sender = org or ingest_v2.facility(raw)
    facility = ingest_v2.facility(raw)
    the_org = Org(sender, sender, charset, adapter_id)

    class _Orgs:  # whatever MSH-4 says, the message comes from ``org`` (as if an alias)
        def by_facility(self, name: str) -> Org | None:
            return the_org if name else None

    orgs = _Orgs()
    env = Envelope(tracking_id="adapter", received_at=datetime.now(timezone.utc), raw=raw,
                   content_type="application/hl7-v2", adapter=adapter_id)
    try:
        env = run((ingest_v2.header, parse_v2.run), env, Context(settings=get_settings(), orgs=orgs))
    except GatewayError as err:
        return Reading(error=err, label=f"message from {facility or '?'}")
    label = f"message {env.message.control_id}"
    return Reading(visit=env.visit, unread=env.unread, label=label, event=env.event,
                   merge=env.merge)


def visit_of(reading: Reading):
    if reading.error is not None:
        raise reading.error
    if reading.visit is None:
        raise GatewayError.of("this message carries no visit (ADT^A40: an identifier merge)",
                              "MSH-9", code="not-supported", error_code="2012", status=400)
    return reading.visit
