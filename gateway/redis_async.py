"""The asyncio Redis clients the gateway uses, and their script calls.

``client`` is redis-py's asyncio client with commands packed by hiredis: redis-py's asyncio
connection packs each command in Python (~20 µs for a script call of 36 arguments, the
size of a commit), its blocking client already packs them with hiredis (~3 µs), which is
installed with it (``redis[hiredis]``).

A write sent on the ``unretried`` client must never be sent twice — it may have been
applied before the connection broke — so the client does not retry: the submitter is told
to retry, and receivers deduplicate by conditional create.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE


class _HiredisPacking:
    """``pack_command`` by redis-py's blocking client's own hiredis serializer: one chunk,
    the same bytes as the Python packer (str as UTF-8, numbers in decimal)."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._serializer.pack(*args)


@lru_cache(maxsize=8)
def _packed(cls: type) -> type:
    return type("Packed" + cls.__name__, (_HiredisPacking, cls), {})


def client(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client on ``url`` (any scheme redis-py reads) packing with hiredis."""
    r = aioredis.Redis.from_url(url, **kwargs)
    pool = r.connection_pool
    if HIREDIS_AVAILABLE and not issubclass(pool.connection_class, _HiredisPacking):
        pool.connection_class = _packed(pool.connection_class)
    return r


def unretried(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client on ``url`` that sends each command once."""
    return client(url, retry=Retry(NoBackoff(), 0), **kwargs)


async def evalsha_many(ar: Any, commands: list[list[Any]], script: str) -> list[Any]:
    """``EVALSHA`` calls of ``script`` (each command whole) in one round trip; the replies
    in order, an error in its place. When the server lost the script (a restart without
    persistence) none of them ran: it is loaded and every call made again."""
    for _attempt in range(2):
        replies = await round_trip(ar, commands)
        if not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
            break
        await ar.script_load(script)
    return replies


async def round_trip(ar: Any, commands: list[list[Any]]) -> list[Any]:
    """``commands`` sent together on one of ``ar``'s connections, the replies read in order
    as the server sent them (no response callbacks: ``SET`` gives ``b"OK"``), an error
    reply in its place — a redis-py pipeline without a transaction, without its bookkeeping
    per command (a third of the client's CPU per round trip). A connection that failed
    midway is closed, never reused: its replies are unknown."""
    pool = ar.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)
