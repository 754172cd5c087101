"""Micro-batching: the pipeline and the durable commit for many submissions at once.

The edges (HTTP, MLLP) hand each envelope to the process's :class:`Batcher` and await the
outcome. The batcher runs on the event loop's own thread: whatever was handed in while
the loop was busy is one batch, taken as soon as the loop is free again —

    requests read in one loop turn ─▶ run_many(stages, batch) ─▶ commit_many ─▶ answers
                                      (one index round trip      (one MULTI … EXEC per visit,
                                       for the batch)             all in one round trip)

— one envelope when the gateway is quiet (no waiting to fill a batch), more under load,
where the round trips and Redis's fsync of its append-only file are shared. No threads:
a Python process computes on one core at a time anyway, and a second thread would only
make each side wait for the interpreter lock (several milliseconds at every hand-over).
The loop is blocked while a batch is computed and while Redis answers its two round
trips; other requests are read as soon as it is done (``max_batch`` bounds that time).

Batches are processed in the order they were taken, envelopes in the order they arrived,
so a patient's visits reach the delivery streams in order. An envelope's outcome is the
last envelope it reached and the exception that stopped it (None once its outbox is
durably written). Nothing an envelope does fails another one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple

from gateway import store
from gateway.envelope import Envelope
from gateway.logging import get_logger
from gateway.pipeline import Context, Stage, run_many

log = get_logger(__name__)


class Processed(NamedTuple):
    envelope: Envelope  # the last envelope reached (the last stage's, when error is None)
    error: Exception | None  # what stopped it; None: every stage passed and it is committed


_Item = tuple[Envelope, Sequence[Stage], asyncio.Future]


class Batcher:
    def __init__(self, ctx: Context, *, max_batch: int = 32):
        self.ctx = ctx
        self.max_batch = max_batch
        self._pending: list[_Item] = []
        self._scheduled = False
        self.batches = 0  # how many batches, and how many envelopes (tests, benchmarks)
        self.envelopes = 0

    async def process(self, env: Envelope, stages: Sequence[Stage]) -> Processed:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((env, stages, future))
        if not self._scheduled:  # after the callbacks already due: they may hand in more
            self._scheduled = True
            loop.call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._drain)  # after the loop polls again
        else:
            self._scheduled = False
        self.batches += 1
        self.envelopes += len(batch)
        try:
            outcomes = self._commit(batch, self._run(batch))
        except Exception as exc:  # a bug here must not lose an answer
            log.exception("batch failed", error=type(exc).__name__)
            outcomes = [Processed(env, exc) for env, _s, _f in batch]
        for (_env, _stages, future), outcome in zip(batch, outcomes):
            if not future.done():  # a cancelled request (the client went away) is skipped
                future.set_result(outcome)

    def _run(self, batch: list[_Item]) -> list[Processed]:
        """Run each group of envelopes that share a list of stages, keeping their order."""
        outcomes: list[Processed | None] = [None] * len(batch)
        groups: dict[int, tuple[Sequence[Stage], list[int]]] = {}
        for i, (_env, stages, _future) in enumerate(batch):
            groups.setdefault(id(stages), (stages, []))[1].append(i)
        for stages, members in groups.values():
            results = run_many(stages, [batch[i][0] for i in members], self.ctx)
            for i, (env, error) in zip(members, results):
                outcomes[i] = Processed(env, error)
        return outcomes  # type: ignore[return-value]

    def _commit(self, batch: list[_Item], outcomes: list[Processed]) -> list[Processed]:
        """The outboxes of the envelopes that passed, in one group commit."""
        ready = [i for i, p in enumerate(outcomes)
                 if p.error is None and p.envelope.outbox is not None]
        failures = store.commit_many(self.ctx.redis, [outcomes[i].envelope.outbox for i in ready])
        for i, failure in zip(ready, failures):
            if failure is not None:
                outcomes[i] = Processed(outcomes[i].envelope, failure)
        return outcomes
