"""The asyncio Redis clients the gateway uses, and their script calls.

``client`` is redis-py's asyncio client with commands packed by hiredis: redis-py's asyncio
connection packs each command in Python (~20 µs for a script call of 36 arguments, the
size of a commit), its blocking client already packs them with hiredis (~3 µs), which is
installed with it (``redis[hiredis]``).

A write sent on the ``unretried`` client must never be sent twice — it may have been
applied before the connection broke — so the client does not retry: the submitter is told
to retry, and receivers deduplicate by conditional create.

The gateway's own round trips (``round_trip``: the index and the commits, two for each
batch of messages) take a connection from the pool and read its replies straight from its
hiredis reader: redis-py's ``get_connection`` waits a loop turn on every connection it
hands out, to see whether the server sent anything unasked (a cancelled read), and its
``read_response`` is two coroutines and their bookkeeping per reply — together more than
the replies themselves cost.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

if HIREDIS_AVAILABLE:  # the sentinel redis-py's hiredis parser gives its reader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
else:  # pragma: no cover - hiredis is a dependency
    NOT_ENOUGH_DATA = _AsyncHiredisParser = None

_READ_SIZE = 65536


class _HiredisPacking:
    """``pack_command`` by redis-py's blocking client's own hiredis serializer: one chunk,
    the same bytes as the Python packer (str as UTF-8, numbers in decimal).

    And ``exchange``, a round trip on a connection taken from the pool: the packed commands
    written, the replies taken from the connection's hiredis reader as they arrive (what
    ``read_response`` does for each reply). This relies on redis-py 7.0's asyncio
    connection — its stream pair, its parser's hiredis reader —, the version
    ``pyproject.toml`` pins."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._serializer.pack(*args)

    def pack_all(self, commands: list[list[Any]]) -> bytes:
        """The commands packed back to back (what ``pack_commands`` sends, in one piece)."""
        pack = self._serializer.pack
        return b"".join([pack(*command)[0] for command in commands])

    def idle_and_clean(self) -> bool:
        """Connected, with nothing the server sent left unread (a connection the server
        closed or reset while it sat in the pool is not), and nothing asked of it that
        ``exchange`` does not do: RESP2 replies parsed by hiredis, no health checks. False
        when it cannot tell."""
        reader = self._reader
        return (reader is not None and self._writer is not None and self.protocol in (2, "2")
                and not self.health_check_interval and type(self._parser) is _AsyncHiredisParser
                and not reader.at_eof() and reader.exception() is None
                # asyncio's StreamReader tells what it holds only by its bytearray ``_buffer``
                # (CPython 3.8-3.13); without one, False: the pool checks it its own way
                and getattr(reader, "_buffer", None) == b""
                and not self._parser._reader.has_data())

    async def exchange(self, packed: bytes, count: int) -> list[Any]:
        """Write ``packed`` (``count`` commands), return their ``count`` replies in order,
        an error reply (a ``redis.ResponseError``) in its place. An error reply that
        condemns the connection (a ``redis.ConnectionError``: loading, ...) is raised, as
        ``read_response`` does; so is a failure of the connection. The caller drops the
        connection on any exception."""
        writer = self._writer
        writer.write(packed)
        if writer.transport.get_write_buffer_size():  # not all sent at once: wait for it
            await writer.drain()
        gets, feed, read = self._parser._reader.gets, self._parser._reader.feed, self._reader.read
        timeout = self.socket_timeout
        replies: list[Any] = []
        while len(replies) < count:
            reply = gets()
            if reply is NOT_ENOUGH_DATA:
                if timeout is None:
                    data = await read(_READ_SIZE)
                else:
                    try:
                        async with asyncio.timeout(timeout):
                            data = await read(_READ_SIZE)
                    except TimeoutError:
                        raise redis.TimeoutError(
                            f"Timeout reading from {self._host_error()}") from None
                if not data:
                    raise redis.ConnectionError(
                        f"Connection closed by server ({self._host_error()})")
                feed(data)
                continue
            if isinstance(reply, redis.ConnectionError):
                raise reply
            if type(reply) is list and reply and isinstance(reply[0], redis.ConnectionError):
                raise reply[0]  # as the parser's read_response does
            replies.append(reply)
        return replies


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


async def evalsha_many(ar: Any, commands: list[list[Any]], script: str,
                       packed: bytes | None = None) -> list[Any]:
    """``EVALSHA`` calls of ``script`` (each command whole) in one round trip; the replies
    in order, an error in its place. When the server lost the script (a restart without
    persistence) none of them ran: it is loaded and every call made again. ``packed``:
    as :func:`round_trip` has it."""
    for _attempt in range(2):
        replies = await round_trip(ar, commands, packed)
        if not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
            break
        await ar.script_load(script)
    return replies


async def round_trip(ar: Any, commands: list[list[Any]], packed: bytes | None = None
                     ) -> list[Any]:
    """``commands`` sent together on one of ``ar``'s connections, the replies read in order
    as the server sent them (no response callbacks: ``SET`` gives ``b"OK"``), an error
    reply in its place — a redis-py pipeline without a transaction, without its bookkeeping
    per command. A connection that failed midway is closed, never reused: its replies are
    unknown. ``packed``, when given: ``commands`` already in the Redis protocol, the bytes
    the connection's own packing would make (``gateway.store.pack_commands``)."""
    pool = ar.connection_pool
    ours = type(pool) is ConnectionPool and issubclass(pool.connection_class, _HiredisPacking)
    # ours is taken and checked without awaiting (no other task can take it meanwhile): the
    # pool's own check waits a loop turn for bytes that are not there; any other pool, any
    # other connection class, goes redis-py's own way
    conn = pool.get_available_connection() if ours else await pool.get_connection()
    try:
        if ours:
            if conn.idle_and_clean():
                if packed is None:
                    packed = conn.pack_all(commands)
                return await conn.exchange(packed, len(commands))
            await pool.ensure_connection(conn)  # new, closed by the server, or holding bytes
        return await _read_in_turn(conn, commands)
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)


async def _read_in_turn(conn: Any, commands: list[list[Any]]) -> list[Any]:
    await conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await conn.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
    return replies
