"""The MLLP edge: HL7 v2 messages in, acknowledgements out (original mode).

    AA  the message is durably queued (or is a duplicate of one that was)
    AE  its content is wrong: ERR segments say where (ERR-2), what (ERR-3, table 0357), why (ERR-8)
    AR  it cannot be taken at all: unknown sender, unsupported type or version, unreadable header

The same facts as the OperationOutcome the HTTP edge would answer; the rejection is
recorded under a tracking id like any other.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from gateway import errors, metrics, store
from gateway.envelope import Envelope
from gateway.batcher import Batcher
from gateway.errors import GatewayError
from gateway.hl7.ack import AckError, build_ack
from gateway.hl7.mllp import MLLPServer, Peer
from gateway.logging import get_logger
from gateway.pipeline import MLLP_PIPELINE, Context
from gateway.stages import ingest_v2
from gateway.stages.ingest_v2 import facility

log = get_logger(__name__)

REJECT_CODES = {"200", "201", "202", "203", "204"}  # header-level problems → AR

# The first stage reads the header (ingest_v2.header): the listener runs it itself, to
# wait for a control id another connection is taking; the rest runs in the batcher with
# the messages that arrive together (a re-sent message is recognised when its outbox is
# written: store.AlreadySeen).
_HEADER_FIRST = MLLP_PIPELINE[0] is ingest_v2.header
_AFTER_HEADER = MLLP_PIPELINE[1:] if _HEADER_FIRST else MLLP_PIPELINE


# A message's first envelope, made from this one: Envelope(...) sets its twenty-odd fields
# one by one through a frozen dataclass's __init__ (about three times the cost of a copy).
# Safe to share: an Envelope is immutable and so is every default it holds.
_RECEIVED = Envelope(tracking_id="", received_at=datetime.fromtimestamp(0, UTC),
                     content_type="application/hl7-v2")


def ack_errors(outcome: dict[str, Any]) -> list[AckError]:
    out = []
    for item in outcome.get("issue", ()):
        code = "207"
        for coding in item.get("details", {}).get("coding", ()):
            if coding.get("system") == errors.V2_0357:
                code = coding["code"]
        where = (item.get("expression") or [""])[0]
        severity = {"error": "E", "fatal": "E", "warning": "W"}.get(item.get("severity"), "I")
        out.append(AckError(location=where, code=code, text=item["details"]["text"],
                            severity=severity))
    return out


class V2Listener:
    """Runs the MLLP pipeline for each message and answers with its ACK."""

    def __init__(self, ctx: Context, aredis: Any, *, host: str, port: int,
                 batcher: Batcher | None = None):
        self.ctx = ctx
        self.ar = aredis
        self.batcher = batcher or Batcher(ctx)
        # (org, MSH-10) being taken, and what the handlers waiting for it wait on (made by
        # the first of them: a message nobody else sends at the same time needs none)
        self._in_flight: dict[tuple[str, str], asyncio.Event | None] = {}
        self._accepted: dict[str, Any] = {}  # org -> its counter (labels() costs more than inc())
        s = ctx.settings
        self.server = MLLPServer(self.handle, host=host, port=port,
                                 max_message_bytes=s.mllp_max_message_bytes,
                                 idle_timeout=s.mllp_idle_timeout, on_oversize=self.oversize,
                                 on_event=self.event, reuse_port=s.processes > 1)

    async def start(self) -> None:
        await self.server.start()
        log.info("MLLP listener started", port=self.server.port)

    async def close(self) -> None:
        await self.server.close()

    def event(self, name: str, details: dict) -> None:
        """Connection-level events; bytes between frames (e.g. a CR LF after each frame) are
        common and harmless, so they are logged at debug level."""
        level = log.debug if name == "outside_frame" else log.warning
        level("mllp event", mllp_event=name, **{k: str(v) for k, v in details.items()})

    async def oversize(self, head: bytes, peer: Peer) -> bytes:
        limit = self.ctx.settings.mllp_max_message_bytes
        return build_ack(None, "AR", [AckError("", "104", f"message exceeds {limit} bytes")],
                         control_id=store.new_tracking_id(), now=datetime.now(UTC),
                         raw_head=head)

    async def handle(self, data: bytes, peer: Peer) -> bytes:
        now = datetime.now(UTC)
        env = _RECEIVED.with_(tracking_id=store.new_tracking_id(), received_at=now, raw=data)
        code, problems = "AA", []
        ctx = self.ctx
        taking = None  # (org, MSH-10) while this handler takes it
        progress: list[Envelope] = []
        try:
            if _HEADER_FIRST:
                env = ingest_v2.header(env, ctx)
                control_id = env.message.control_id
                if control_id:
                    key = (env.sender.org, control_id)
                    while key in self._in_flight:  # being taken on another connection: its
                        taken = self._in_flight[key]  # outcome decides
                        if taken is None:
                            taken = self._in_flight[key] = asyncio.Event()
                        await taken.wait()
                    self._in_flight[key] = None
                    taking = key
            progress = [env]
            # the stages after the header, then the commit, with the messages that arrive
            # together (gateway/batcher.py); a rejection still has the parsed header (the
            # last envelope reached), so its ACK is in the sender's charset
            reached, error = await self.batcher.process(env, _AFTER_HEADER)
            progress.append(reached)
            if error is not None:
                raise error
            env = reached
            self._accepted_counter(env.sender.org).inc()
        except store.AlreadySeen:  # accepted before under this MSH-10: not queued again
            metrics.V2_DUPLICATES.inc()
            env = env.with_(message=None)  # acknowledged from the bytes, as it always was
        except GatewayError as err:
            env = progress[-1] if progress else env  # the parsed header: the ACK's charset
            problems = ack_errors(err.outcome)
            code = "AR" if problems and problems[0].code in REJECT_CODES else "AE"
            metrics.REJECTED.labels(errors.error_code(err.outcome)).inc()
            await self._record_rejection(env, err)
        except Exception as exc:
            log.exception("v2 message failed", error=type(exc).__name__)
            code, problems = "AE", [AckError("", "207", "internal error; the message was not "
                                             "accepted, send it again later")]
        finally:
            if taking is not None:
                taken = self._in_flight.pop(taking)
                if taken is not None:
                    taken.set()
        msg = env.message
        return build_ack(msg, code, problems, control_id=env.tracking_id, now=now,
                         raw_head=None if msg is not None else data[:4096])

    def _accepted_counter(self, org: str) -> Any:
        counter = self._accepted.get(org)
        if counter is None:
            if len(self._accepted) >= 4096:  # bounded: senders are registered organisations
                self._accepted.clear()
            counter = self._accepted[org] = metrics.ACCEPTED.labels(org)
        return counter

    async def _record_rejection(self, env: Envelope, err: GatewayError) -> None:
        """Record a rejection under its tracking id, for a known sender only."""
        org = self.ctx.orgs.by_facility(facility(env.raw))
        if org is None:
            return
        try:
            await store.commit_async(self.ar, store.rejection_outbox(
                tid=env.tracking_id, org=org.code, received_at=env.received_at.isoformat(),
                outcome=err.outcome, ttl=self.ctx.settings.record_ttl))
        except Exception:
            log.exception("could not record a rejection")
