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


def test_a_round_trip_answers_in_order_with_an_error_in_its_place(redis_server):
    async def main():
        r = redis_async.unretried(redis_server.url)
        replies = await redis_async.round_trip(r, [
            ["SET", "gw:t:a", "1"], ["INCR", "gw:t:a"], ["HGET", "gw:t:a", "x"],
            ["GET", "gw:t:a"]])
        again = await redis_async.round_trip(r, [["GET", "gw:t:a"]])  # the connection is fine
        await r.aclose()
        return replies, again

    (ok, two, wrong, value), again = asyncio.run(main())
    assert ok == b"OK" and two == 2 and value == b"2" and again == [b"2"]  # replies as sent
    assert "WRONGTYPE" in str(wrong)


def test_a_script_the_server_lost_is_loaded_and_every_call_made_again(redis_server):
    import redis

    script = "return redis.call('INCR', KEYS[1])"
    sha = redis.Redis.from_url(redis_server.url).script_load(script)

    async def main():
        r = redis_async.unretried(redis_server.url)
        first = await redis_async.evalsha_many(r, [["EVALSHA", sha, 1, "gw:t:n"]] * 2, script)
        await r.script_flush()
        second = await redis_async.evalsha_many(r, [["EVALSHA", sha, 1, "gw:t:n"]] * 2, script)
        await r.aclose()
        return first, second

    assert asyncio.run(main()) == ([1, 2], [3, 4])


def test_a_connection_the_server_closed_while_idle_is_replaced_before_a_round_trip(redis_server):
    import redis

    async def main():
        r = redis_async.unretried(redis_server.url)
        (first,) = await redis_async.round_trip(r, [["CLIENT", "ID"]])
        redis.Redis.from_url(redis_server.url).client_kill_filter(_id=first)
        await asyncio.sleep(0.2)  # the close reaches the idle connection
        (second,) = await redis_async.round_trip(r, [["CLIENT", "ID"]])
        await r.aclose()
        return first, second

    first, second = asyncio.run(main())
    assert second != first  # a new connection, and no error


def test_a_connection_that_fails_midway_is_closed_and_never_reused(redis_server):
    import redis

    async def main():
        r = redis_async.unretried(redis_server.url)
        (me,) = await redis_async.round_trip(r, [["CLIENT", "ID"]])
        with pytest.raises(redis.ConnectionError):  # OK, then the server hangs up
            await redis_async.round_trip(r, [["QUIT"], ["PING"]])
        assert not r.connection_pool._available_connections[0].is_connected
        (again,) = await redis_async.round_trip(r, [["CLIENT", "ID"]])
        await r.aclose()
        return me, again

    me, again = asyncio.run(main())
    assert again != me


def test_an_error_reply_that_condemns_the_connection_is_raised():
    import redis

    class Fake(redis_async._packed(Connection)):
        """A connection whose server answers LOADING (redis-py raises it, a ConnectionError)."""

    async def main():
        conn = Fake()
        reader = asyncio.StreamReader()
        reader.feed_data(b"-LOADING Redis is loading the dataset in memory\r\n")
        conn._parser.on_connect(type("C", (), {"_reader": reader, "encoder": conn.encoder})())

        class Writer:
            transport = type("T", (), {"get_write_buffer_size": staticmethod(lambda: 0)})()

            def write(self, data):
                pass

        conn._reader, conn._writer = reader, Writer()
        assert conn.idle_and_clean() is False  # bytes the server sent unasked: not reusable
        with pytest.raises(redis.BusyLoadingError):
            await conn.exchange(b"*1\r\n$4\r\nPING\r\n", 1)

    asyncio.run(main())


def test_commands_packed_together_are_the_bytes_redis_py_sends():
    packed = redis_async._packed(Connection)()
    commands = [list(c) for c in COMMANDS]
    assert packed.pack_all(commands) == b"".join(Connection().pack_commands(commands))


def test_commands_packed_by_the_store_are_the_bytes_redis_py_sends():
    from gateway.store import pack_commands

    commands = [list(c) for c in COMMANDS if type(c[0]) is str and " " not in c[0]] + [
        ["EVALSHA", "ab" * 20, 2, "gw:k:中文", b"\x00\xff" * 3000, -7, 0, 10 ** 20, "",
         "x" * 5000, "患者"]]
    assert pack_commands(commands) == b"".join(Connection().pack_commands(commands))
    # anything else is left to the connection's own packing
    assert pack_commands([["CONFIG GET", "save"]]) is None
    assert pack_commands([[b"GET", "k"]]) is None
    assert pack_commands([["SET", "k", True]]) is None
    assert pack_commands([["SET", "k", 1.5]]) is None
