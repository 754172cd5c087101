"""How a queued entry reaches a destination: one small class per kind of receiver.

    FhirTransport   POST the transaction Bundle to a FHIR server
    MllpTransport   build the visit's HL7 v2.5 messages and send them over MLLP, one ACK each

``send`` answers with an Attempt: delivered, retry (timeouts, 5xx, AE, no answer) or
reject (4xx, AR, a message that cannot be built) — the worker turns that into ack, backoff
or dead letter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import httpx
import orjson

from gateway.errors import issue, outcome


@dataclass
class Attempt:
    result: str  # delivered | retry | reject
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _response_outcome(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            return body
    except ValueError:
        pass
    text = resp.text[:500] or resp.reason_phrase
    return outcome([issue(f"receiver answered {resp.status_code}: {text}", code="exception")])


def _summary(resp: httpx.Response) -> dict[str, int]:
    """Counts of the receiver's entry statuses, e.g. {"201": 12} or {"200": 12} on a re-send."""
    counts: dict[str, int] = {}
    try:
        for entry in resp.json().get("entry", ()):
            code = str(entry.get("response", {}).get("status", "")).split(" ")[0]
            counts[code] = counts.get(code, 0) + 1
    except (ValueError, AttributeError):
        pass
    return counts


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class FhirTransport:
    def __init__(self, url: str, timeout: float):
        self.url = url
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, payload: bytes, tid: str) -> Attempt:
        try:
            resp = await self.client.post(self.url, content=payload, headers={
                "Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                "X-Request-Id": tid})
        except httpx.HTTPError as exc:
            return Attempt("retry", _error(exc))
        error = f"HTTP {resp.status_code}"
        if resp.is_success:
            return Attempt("delivered", details={"http_status": resp.status_code,
                                                 "entries": _summary(resp)})
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            return Attempt("reject", error, {"http_status": resp.status_code,
                                             "outcome": _response_outcome(resp)})
        return Attempt("retry", error)

    async def close(self) -> None:
        await self.client.aclose()


class MllpTransport:
    """HL7 v2 receivers. The messages are built here, from the queued canonical visit (the
    hl7apy builder costs ~14 ms a message, too much for the ingest path), with control ids
    derived from the tracking id: a re-sent message carries the same MSH-10, so the
    receiver can recognise it."""

    def __init__(self, url: str, timeout: float, messages: tuple[str, ...], charset: str):
        from gateway.hl7.mllp import MLLPClient

        parsed = urlparse(url)
        self.client = MLLPClient(parsed.hostname or "127.0.0.1", parsed.port or 2575,
                                 timeout=timeout)
        self.messages = messages
        self.charset = charset

    def build(self, payload: bytes, tid: str) -> list[tuple[str, bytes]]:
        from gateway.hl7.outbound import to_v2
        from gateway.visit import OutpatientVisit

        data = orjson.loads(payload)
        visit = OutpatientVisit.model_validate(data["visit"])
        now = datetime.now(timezone.utc)
        wanted = []
        for message in self.messages:
            if message == "ADT^A04" and data.get("event") == "update":
                message = "ADT^A08"
            applicable = {"ORU^R01": bool(visit.results), "DFT^P03": bool(visit.fees),
                          "RDE^O11": bool(visit.drugs),
                          "ORM^O01": bool(visit.labs or visit.exams)}.get(message, True)
            if applicable:
                control_id = hashlib.sha1(f"{tid}|{message}".encode()).hexdigest()[:20]
                wanted.append((message, to_v2(visit, message, control_id=control_id, now=now,
                                              charset=self.charset)))
        return wanted

    async def send(self, payload: bytes, tid: str) -> Attempt:
        from gateway.hl7.ack import read_ack
        from gateway.hl7.message import HL7ParseError, parse

        try:
            messages = self.build(payload, tid)
        except ValueError as exc:  # the visit cannot be written as these messages
            return Attempt("reject", _error(exc), {"outcome": outcome([issue(
                f"cannot build HL7 v2 messages: {exc}", code="not-supported")])})
        acks = []
        for message, raw in messages:
            try:
                reply = await self.client.send(raw)
                ack = parse(reply, default_charset=self.charset)
            except HL7ParseError as exc:
                return Attempt("retry", f"{message}: unreadable ACK: {exc}")
            except Exception as exc:  # noqa: BLE001 - timeouts, resets: try again later
                return Attempt("retry", f"{message}: {_error(exc)}")
            code, answered, text = read_ack(ack)
            if code in ("AR", "CR"):
                return Attempt("reject", f"{message}: {code} {text}", {"outcome": outcome([issue(
                    f"{message} rejected by the receiver ({code}): {text}", code="processing")])})
            if code not in ("AA", "CA"):
                return Attempt("retry", f"{message}: {code or 'no MSA'} {text}".strip())
            acks.append({"message": message, "control_id": answered, "ack": code})
        return Attempt("delivered", details={"acks": acks})

    async def close(self) -> None:
        await self.client.close()


def transport_for(url: str, settings: Any) -> FhirTransport | MllpTransport:
    if url.startswith("mllp://"):
        return MllpTransport(url, settings.delivery_timeout,
                             tuple(m.strip() for m in settings.v2_receiver_messages.split(",")),
                             settings.v2_receiver_charset)
    return FhirTransport(url, settings.delivery_timeout)
