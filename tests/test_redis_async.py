"""The asyncio Redis client packs commands with hiredis: the same bytes on the wire as
redis-py's own packer, and the same replies from a real server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from gateway import redis_async

COMMANDS = [
    ("SET", "k", "v"),
    ("CONFIG GET", "appendfsync"),
    (b"CONFIG GET", b"save"),
    ("HSET", "h", "名字", "李辉振", "n", 42, "big", b"\x00\xff" * 40_000),
    ("EVALSHA", "a" * 40, 0, "x", -7, 2**63 - 1),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_commands_pack_to_the_bytes_redis_py_sends(command):
    packed = redis_async._packed(Connection)()
    assert b"".join(packed.pack_command(*command)) == b"".join(Connection().pack_command(*command))


def test_what_cannot_be_packed_is_a_data_error():
    with pytest.raises(DataError):
        redis_async._packed(Connection)().pack_command("SET", "k", object())


def test_the_client_talks_to_a_real_server(redis_server):
    async def main():
        r = redis_async.unretried(redis_server.url)
        assert r.connection_pool.connection_class.__name__ == "PackedConnection"
        assert issubclass(r.connection_pool.connection_class, redis_async._HiredisPacking)
        payload = "门诊 visit ".encode() + bytes(range(256)) * 300
        await r.hset("gw:test", mapping={"name": "李辉振", "payload": payload, "n": 7})
        pipe = r.pipeline(transaction=False)
        pipe.hget("gw:test", "name")
        pipe.hget("gw:test", "payload")
        pipe.hincrby("gw:test", "n", 1)
        pipe.config_get("appendonly")
        replies = await pipe.execute()
        await r.aclose()
        return replies

    name, payload, n, config = asyncio.run(main())
    assert name.decode() == "李辉振"
    assert payload == "门诊 visit ".encode() + bytes(range(256)) * 300
    assert n == 8
    assert set(config) == {"appendonly"}
