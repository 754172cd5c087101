"""``POST /v1/visits``: the hot path, as a plain ASGI handler.

Every submission of every hospital comes through here, so it skips the framework's layers
(middleware stack, routing, dependency solving, the request and response objects) and
speaks ASGI directly: read the body up to the limit, hand the envelope to the pipeline,
answer 202 — or the OperationOutcome of the error, exactly as the framework's handlers
would (``gateway/api/app.py``, which also keeps the route for the API docs and for any
caller that reaches it there).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import redis

from gateway import errors, metrics, store
from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.jsonio import dumps
from gateway.logging import get_logger
from gateway.pipeline import ADAPTER_PIPELINE, HTTP_PIPELINE

log = get_logger(__name__)

PATH = "/v1/visits"
_CANONICAL = ("application/json", "application/x-ndjson", "")


def bearer(authorization: str) -> str | None:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class VisitIngest:
    """Turns one request into an envelope, runs it (``process``) and says what to answer."""

    def __init__(self, max_body_bytes: int,
                 process: Callable[[Envelope, Any], Awaitable[Envelope]]):
        self.limit = max_body_bytes
        self.process = process

    async def submit(self, *, content_type: str, authorization: str, adapter: str,
                     body: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        """The 202 answer's body and headers; raises GatewayError for a rejection."""
        started = time.perf_counter()
        env = Envelope(tracking_id=store.new_tracking_id(), received_at=datetime.now(timezone.utc),
                       content_type=content_type or "application/json",
                       credentials=bearer(authorization), adapter=adapter, raw=body)
        if not env.credentials:
            raise errors.unauthorized("no API key: send `Authorization: Bearer <key>`")
        ctype = env.content_type.split(";")[0].strip().lower()
        vendor = env.adapter or ctype not in _CANONICAL
        env = await self.process(env, ADAPTER_PIPELINE if vendor else HTTP_PIPELINE)
        metrics.ACCEPTED.labels(env.visit.org.code).inc()
        metrics.INGEST_LATENCY.observe(time.perf_counter() - started)
        status = "needs-mapping" if env.held else "queued" if env.destinations else "accepted"
        out: dict[str, Any] = {"tracking_id": env.tracking_id, "status": status,
                               "person_id": env.identity.person_id,
                               "links": {"self": f"{PATH}/{env.tracking_id}"}}
        if env.adapter:  # what the vendor's mapping did not read
            out["adapter"], out["unread"] = env.adapter, list(env.unread)
        warnings = list(env.warnings) + list(env.translated.unmapped if env.translated else ())
        if warnings:
            out["outcome"] = errors.outcome(warnings)
        return out, {"Location": f"{PATH}/{env.tracking_id}"}

    # -- the ASGI handler ----------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers[name.lower()] = value
        try:
            if not bearer(headers.get(b"authorization", b"").decode("latin-1")):
                raise errors.unauthorized("no API key: send `Authorization: Bearer <key>`")
            body = await self._body(headers.get(b"content-length"), receive)
            adapter = _query(scope.get("query_string", b""), "adapter")
            out, extra = await self.submit(
                content_type=headers.get(b"content-type", b"application/json").decode("latin-1"),
                authorization=headers.get(b"authorization", b"").decode("latin-1"),
                adapter=adapter, body=body)
            await _send(send, 202, dumps(out), b"application/json", extra)
        except GatewayError as err:
            await _send(send, err.status, dumps(err.outcome), b"application/fhir+json",
                        {"WWW-Authenticate": "Bearer"} if err.status == 401 else {})
        except Exception as exc:  # the same answers as the app's own handlers
            log.exception("unexpected error", error=type(exc).__name__)
            err = errors.unavailable("the queue store is unavailable; the visit was not "
                                     "accepted, retry later") if isinstance(exc, redis.RedisError) \
                else GatewayError.of("internal error; the visit was not accepted",
                                     code="exception", status=500)
            await _send(send, err.status, dumps(err.outcome), b"application/fhir+json", {})

    async def _body(self, declared: bytes | None, receive: Callable) -> bytes:
        if declared and declared.isdigit() and int(declared) > self.limit:
            raise errors.too_large(self.limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayError.of("the client went away before the body was read",
                                      code="incomplete", status=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise errors.too_large(self.limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _query(raw: bytes, name: str) -> str:
    if not raw:
        return ""
    from urllib.parse import parse_qs

    values = parse_qs(raw.decode("latin-1")).get(name)
    return values[0] if values else ""


async def _send(send: Callable, status: int, body: bytes, media: bytes,
                extra: dict[str, str]) -> None:
    headers = [(b"content-type", media), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
