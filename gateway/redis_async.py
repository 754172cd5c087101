"""The asyncio Redis client the batch forms and group commits use, and their script calls.

A write sent on it must never be sent twice — it may have been applied before the
connection broke — so the client does not retry: the submitter is told to retry, and
receivers deduplicate by conditional create.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def unretried(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client on ``url`` that sends each command once."""
    return aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **kwargs)


async def evalsha_many(ar: Any, commands: list[list[Any]], script: str) -> list[Any]:
    """``EVALSHA`` calls of ``script`` (each command whole) in one pipeline; the replies in
    order, an error in its place. When the server lost the script (a restart without
    persistence) none of them ran: it is loaded and every call made again."""
    for _attempt in range(2):
        pipe = ar.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        replies = await pipe.execute(raise_on_error=False)
        if not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
            break
        await ar.script_load(script)
    return replies
