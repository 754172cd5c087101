"""Unknown settlement outcomes, resolved without waiting for the cashier.

A settlement whose 2207 and then 2601 both went unanswered is recorded as ``unknown``
(``gw:ins:unknown``). The next request for that visit resolves it; so does
``gateway insurance resolve``; and, inside ``gateway serve``, a background pass every
``GATEWAY_INSURANCE_RESOLVE_INTERVAL`` seconds resolves those left unknown at least that
long. All three call :meth:`Settlements.resolve`, which holds the visit's lock: two
processes never resolve one visit at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

from gateway.errors import GatewayError
from gateway.logging import get_logger

log = get_logger(__name__)


def resolve_pending(settlements: Any, older_than: float = 0.0) -> list[tuple[str, str]]:
    """Resolve every unknown outcome recorded at least ``older_than`` seconds ago:
    (tracking id, status after) for each; a status still ``unknown`` or ``settling`` means
    the insurer is still out of reach."""
    out = []
    for tid in settlements.state.unknown(before=time.time() - older_than):
        try:
            status = settlements.resolve(tid)
        except GatewayError as err:
            status = f"unknown ({err})"
        out.append((tid, status))
    return out


async def run(settlements: Any, interval: float) -> None:
    """The background pass, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            done = await asyncio.to_thread(resolve_pending, settlements, interval)
        except redis.RedisError as exc:
            log.warning("unknown settlement outcomes not checked", error=type(exc).__name__)
            continue
        for tid, status in done:
            log.info("unknown settlement outcome checked", tracking_id=tid, status=status)
