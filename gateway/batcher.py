"""Micro-batching: the pipeline and the durable commit for many submissions at once.

The edges (HTTP, MLLP) hand each envelope to the process's :class:`Batcher` and await the
outcome. Whatever was handed in while the event loop was busy is one batch, started as
soon as the loop is free —

    requests read in one loop turn ─▶ run_many(stages, batch) ─▶ commit_many ─▶ answers
                                      (one index round trip      (one commit.lua call per visit,
                                       for the batch)             all in one round trip)

— one envelope when the gateway is quiet (no waiting to fill a batch), more under load,
where the round trips and Redis's fsync of its append-only file are shared. The stages
compute on the event loop's thread (a Python process computes on one core at a time
anyway; a second thread would only make each side wait for the interpreter lock); Redis
is awaited, so while one batch waits for the index or for its commit, the next batch is
computed (at most ``in_flight`` batches at once).

The envelopes of a batch are committed in the order they arrived. Batches in flight at
the same time commit independently: they hold only submissions that were in flight at the
same time — which no sender can have put in an order (a sender that needs one waits for
the answer before it sends the next: an MLLP connection always does) —, so a patient's
visits reach the delivery streams in the order the sender established. An envelope's
outcome is the last envelope it reached and the exception that stopped it (None once its
outbox is durably written). Nothing an envelope does fails another one. One batcher
serves one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from gateway import metrics, store
from gateway.envelope import Envelope
from gateway.logging import get_logger
from gateway.pipeline import Context, Stage, run_many

log = get_logger(__name__)


class Processed(NamedTuple):
    envelope: Envelope  # the last envelope reached (the last stage's, when error is None)
    error: Exception | None  # what stopped it; None: every stage passed and it is committed


_Item = tuple[Envelope, Sequence[Stage], asyncio.Future]


class Batcher:
    def __init__(self, ctx: Context, *, max_batch: int = 32, in_flight: int = 2):
        self.ctx = ctx
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._pending: list[_Item] = []
        self._scheduled = False
        self._running: set[asyncio.Task] = set()
        self.batches = 0  # how many batches, and how many envelopes (tests, benchmarks)
        self.envelopes = 0

    def process(self, env: Envelope, stages: Sequence[Stage]) -> asyncio.Future[Processed]:
        """Hand ``env`` in; await the result for its outcome. A plain function returning
        the future, not a coroutine: one object fewer per submission, and one level fewer
        for the event loop to pass through each time the submitter's task resumes."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((env, stages, future))
        self._next(loop)
        return future

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start a batch soon: after the callbacks already due (they may hand in more)."""
        if not self._scheduled and self._pending and len(self._running) < self.in_flight:
            self._scheduled = True
            loop.call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        if not batch:
            return
        self.batches += 1
        self.envelopes += len(batch)
        metrics.INGEST_BATCH.observe(len(batch))
        task = loop.create_task(self._batch(batch))
        self._running.add(task)
        task.add_done_callback(self._done)
        self._next(loop)

    def _done(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._next(task.get_loop())  # what arrived while every batch slot was taken

    async def _batch(self, batch: list[_Item]) -> None:
        try:
            outcomes = await self._commit(await self._run(batch))
        except Exception as exc:  # a bug here must not lose an answer
            log.exception("batch failed", error=type(exc).__name__)
            outcomes = [Processed(env, exc) for env, _s, _f in batch]
        for (_env, _stages, future), outcome in zip(batch, outcomes):
            if not future.done():  # a cancelled request (the client went away) is skipped
                future.set_result(outcome)

    async def _run(self, batch: list[_Item]) -> list[Processed]:
        """Run each group of envelopes that share a list of stages, keeping their order."""
        outcomes: list[Processed | None] = [None] * len(batch)
        groups: dict[int, tuple[Sequence[Stage], list[int]]] = {}
        for i, (_env, stages, _future) in enumerate(batch):
            groups.setdefault(id(stages), (stages, []))[1].append(i)
        for stages, members in groups.values():
            results = await run_many(stages, [batch[i][0] for i in members], self.ctx)
            for i, (env, error) in zip(members, results):
                outcomes[i] = Processed(env, error)
        return outcomes  # type: ignore[return-value]

    async def _commit(self, outcomes: list[Processed]) -> list[Processed]:
        """The outboxes of the envelopes that passed, in one group commit."""
        ready = [i for i, p in enumerate(outcomes)
                 if p.error is None and p.envelope.outbox is not None]
        boxes = [outcomes[i].envelope.outbox for i in ready]
        if self.ctx.aredis is not None:
            failures = await store.commit_many_async(self.ctx.aredis, boxes)
        else:
            failures = store.commit_many(self.ctx.redis, boxes)
        for i, failure in zip(ready, failures):
            if failure is not None:
                outcomes[i] = Processed(outcomes[i].envelope, failure)
        return outcomes
