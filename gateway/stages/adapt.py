"""Adapt: the parse stage for vendor formats — the sender's adapter (``adapters/``) reads
the raw input into the canonical visit. The adapter is the one the request names
(``?adapter=ID``) or the one the organisation is configured with (``gateway orgs adapter``).
Errors name the vendor's own fields and positions. A hospital may only submit visits of
its own organisation."""

from __future__ import annotations

from adapters.sdk.registry import get
from gateway import errors
from gateway.envelope import Envelope


def configured(ctx, org: str) -> str:
    getter = getattr(ctx.orgs, "get", None)
    found = getter(org) if getter is not None else None
    return found.adapter if found is not None else ""


def run(env: Envelope, ctx) -> Envelope:
    sender = env.sender.org if env.sender else None
    adapter_id = env.adapter or (configured(ctx, sender) if sender else "")
    if not adapter_id:
        ctype = env.content_type.split(";")[0].strip().lower()
        raise errors.GatewayError.of(
            f"content type {ctype!r} is not accepted here; send application/json, or name "
            "the adapter that reads it (?adapter=ID; GET /v1/adapters lists them)",
            code="not-supported", error_code="2002")
    reading = get(adapter_id).read(env.raw, org=sender)
    if reading.error is not None:
        raise reading.error
    visit = reading.visit
    if visit is None:
        raise errors.GatewayError.of("the input carries no visit (e.g. an identifier merge); "
                                     "send it over MLLP", code="not-supported", error_code="2012")
    if sender is not None and visit.org.code != sender:
        raise errors.forbidden(
            f"this API key belongs to organisation {sender!r}; it may not submit visits of "
            f"{visit.org.code!r}", "org.code")
    return env.with_(visit=visit, unread=reading.unread, adapter=adapter_id)
