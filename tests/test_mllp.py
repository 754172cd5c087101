"""MLLP server and client over real sockets on 127.0.0.1 (plus a property test of the deframer).

Every test runs its own event loop through ``run()``, which also fails the test if anything
reached the loop's exception handler (an unhandled error in a connection task, a transport
error logged instead of handled, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.hl7.mllp import (
    FrameParser,
    MLLPClient,
    MLLPProtocolError,
    MLLPServer,
    Peer,
    frame,
)

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
HOST = "127.0.0.1"


def msg(n: int | str, body: bytes = b"") -> bytes:
    return b"MSH|^~\\&|HIS|H1|GW|GW|20240101120000||ADT^A01|" + str(n).encode() + b"|P|2.5\r" + body


def run(coro, timeout: float = 15.0):
    errors: list[dict] = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        return await asyncio.wait_for(coro, timeout)

    result = asyncio.run(main())
    assert not errors, errors
    return result


async def echo(message: bytes, peer: Peer) -> bytes:
    return b"ACK:" + message


class Recorder:
    """A handler that records what it saw and answers ``ACK:<message>``."""

    def __init__(self, delay: float = 0.0):
        self.seen: list[tuple[bytes, Peer]] = []
        self.delay = delay

    @property
    def messages(self) -> list[bytes]:
        return [m for m, _ in self.seen]

    async def __call__(self, message: bytes, peer: Peer) -> bytes:
        self.seen.append((message, peer))
        if self.delay:
            await asyncio.sleep(self.delay)
        return b"ACK:" + message


@contextlib.asynccontextmanager
async def serving(handler=echo, **kwargs):
    events: list[tuple[str, dict]] = []
    server = MLLPServer(handler, host=HOST, port=0,
                        on_event=lambda name, details: events.append((name, details)), **kwargs)
    await server.start()
    try:
        yield server, events
    finally:
        await server.close()


async def connect(server: MLLPServer):
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def unframe_all(data: bytes) -> list[bytes]:
    """Strictly split a byte string made of whole, well-formed frames."""
    out, pos = [], 0
    while pos < len(data):
        assert data[pos:pos + 1] == SB, data[pos:pos + 60]
        end = data.index(EB + CR, pos)
        out.append(data[pos + 1:end])
        pos = end + 2
    return out


async def read_replies(reader: asyncio.StreamReader, n: int, timeout: float = 5.0) -> list[bytes]:
    buf, ends = bytearray(), 0
    async with asyncio.timeout(timeout):
        while ends < n:
            chunk = await reader.read(1 << 20)
            assert chunk, f"EOF after {ends} of {n} replies"
            start = max(0, len(buf) - 1)  # an end marker may straddle two reads
            buf += chunk
            ends += buf.count(EB + CR, start)
    return unframe_all(bytes(buf))


async def read_to_eof(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.read(-1)


async def wait_until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def total(events, name: str, key: str = "bytes") -> int:
    return sum(d[key] for n, d in events if n == name)


def names(events) -> list[str]:
    return [n for n, _ in events]


# -- normal traffic ----------------------------------------------------------------------


def test_client_roundtrip_and_peer():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, events):
            async with MLLPClient(HOST, server.port) as client:
                for i in range(3):
                    assert await client.send(msg(i)) == b"ACK:" + msg(i)
            reader, writer = await connect(server)
            writer.write(frame(msg("raw")))
            assert await read_replies(reader, 1) == [b"ACK:" + msg("raw")]
            local_port = writer.get_extra_info("sockname")[1]
            writer.close()
            assert server.stats["messages"] == 4
            peers = [p for _, p in handler.seen]
            assert len({p.connection_id for p in peers[:3]}) == 1  # one connection, reused
            assert peers[3] == Peer(HOST, local_port, peers[3].connection_id, None)
            assert peers[3].connection_id != peers[0].connection_id
            assert events == []

    run(go())


def test_twenty_concurrent_clients_fifty_messages_each():
    async def go():
        order: dict[int, list[int]] = {}

        async def handler(message: bytes, peer: Peer) -> bytes:
            _client, seq = message.split(b"|")[9].split(b"-")
            order.setdefault(peer.connection_id, []).append(int(seq))
            await asyncio.sleep(0)  # let the other connections interleave
            return b"ACK:" + message

        async with serving(handler) as (server, events):
            clients = [MLLPClient(HOST, server.port, timeout=5) for _ in range(20)]
            for c in clients:
                await c.connect()
            await wait_until(lambda: server.connections == 20)

            async def talk(k: int, client: MLLPClient) -> list[bytes]:
                return [await client.send(msg(f"{k}-{i}")) for i in range(50)]

            replies = await asyncio.gather(*(talk(k, c) for k, c in enumerate(clients)))
            for k, got in enumerate(replies):
                assert got == [b"ACK:" + msg(f"{k}-{i}") for i in range(50)]
            assert server.stats["messages"] == 1000
            assert len(order) == 20 and all(seqs == list(range(50)) for seqs in order.values())
            assert all(c.connects == 1 for c in clients)
            for c in clients:
                await c.close()
            await wait_until(lambda: server.connections == 0)
            assert events == []

    run(go())


def test_pipelined_frames_answered_in_order():
    async def go():
        async def handler(message: bytes, peer: Peer) -> bytes:
            n = int(message.split(b"|")[9])
            await asyncio.sleep((10 - n) * 0.005)  # the first ones are the slowest
            return b"ACK:" + message

        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            writer.write(b"".join(frame(msg(i)) for i in range(10)))  # one write, ten frames
            assert await read_replies(reader, 10) == [b"ACK:" + msg(i) for i in range(10)]
            writer.write(frame(msg(10)))  # the connection carries on
            assert await read_replies(reader, 1) == [b"ACK:" + msg(10)]
            writer.close()
            assert server.stats["messages"] == 11

    run(go())


def test_frames_split_across_reads():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, events):
            reader, writer = await connect(server)
            a, b = msg("A", b"PID|1||1\r"), msg("B")
            stream = frame(a) + frame(b)
            # cut at every interesting place: after 0x0B, mid-message, between 0x1C and 0x0D,
            # between 0x0D and the next 0x0B
            cuts = [1, 10, len(a) + 2, len(a) + 3, len(a) + 4, len(stream) - 1]
            prev = 0
            for cut in cuts + [len(stream)]:
                writer.write(stream[prev:cut])
                await writer.drain()
                await asyncio.sleep(0.02)
                prev = cut
            assert await read_replies(reader, 2) == [b"ACK:" + a, b"ACK:" + b]
            writer.close()
            assert handler.messages == [a, b]
            assert server.stats["bytes_outside_frames"] == 0  # the late 0x0D is a trailer
            assert events == []

    run(go())


# -- malformed input -----------------------------------------------------------------------


def test_bytes_outside_frames_are_discarded_and_counted():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, events):
            reader, writer = await connect(server)
            writer.write(b"junk" + frame(msg(1)) + b"\r\n" + frame(msg(2)))
            assert await read_replies(reader, 2) == [b"ACK:" + msg(1), b"ACK:" + msg(2)]
            writer.write(b"xy")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(frame(msg(3)))
            assert await read_replies(reader, 1) == [b"ACK:" + msg(3)]
            writer.close()
            assert handler.messages == [msg(1), msg(2), msg(3)]
            assert server.stats["bytes_outside_frames"] == 8
            assert server.stats["frames_discarded"] == 0
            assert set(names(events)) == {"outside_frame"}
            assert total(events, "outside_frame") == 8

    run(go())


def test_oversize_frame_in_one_piece_gets_the_oversize_reply():
    async def go():
        heads: list[bytes] = []

        async def on_oversize(head: bytes, peer: Peer) -> bytes:
            heads.append(head)
            return b"NAK:" + head.split(b"|")[9]

        handler = Recorder()
        async with serving(handler, max_message_bytes=1000, on_oversize=on_oversize) as (
                server, events):
            big = msg("BIG1", b"X" * 1500)
            exact = msg("EXACT")
            exact += b"Y" * (1000 - len(exact))  # exactly the limit: accepted
            reader, writer = await connect(server)
            writer.write(frame(big) + frame(exact) + frame(msg(2)))
            assert await read_replies(reader, 3) == [b"NAK:BIG1", b"ACK:" + exact,
                                                     b"ACK:" + msg(2)]
            writer.close()
            assert heads == [big]  # under 4 KiB: the whole frame
            assert handler.messages == [exact, msg(2)]
            assert server.stats["oversize"] == 1 and server.stats["messages"] == 2
            assert server.stats["bytes_outside_frames"] == 0
            assert names(events) == ["oversize"]

    run(go())


def test_oversize_frame_is_answered_before_its_end_and_skipped():
    async def go():
        heads: list[bytes] = []

        async def on_oversize(head: bytes, peer: Peer) -> bytes:
            heads.append(head)
            return b"NAK:" + head.split(b"|")[9]

        handler = Recorder()
        async with serving(handler, max_message_bytes=65536, on_oversize=on_oversize) as (
                server, _):
            reader, writer = await connect(server)
            header = msg("HUGE")
            writer.write(SB + header + b"Z" * 200_000)  # no end yet
            # the NAK comes while the frame is still open: the server stopped buffering it
            assert await read_replies(reader, 1) == [b"NAK:HUGE"]
            assert len(heads[0]) == 4096 and heads[0].startswith(header)
            for _ in range(32):  # 2 MiB more of the same frame, then its end
                writer.write(b"Z" * 65536)
                await writer.drain()
            writer.write(EB + CR + frame(msg(1)))
            assert await read_replies(reader, 1) == [b"ACK:" + msg(1)]
            writer.close()
            assert handler.messages == [msg(1)]
            assert server.stats["oversize"] == 1
            assert server.stats["bytes_outside_frames"] == 0
            assert server.stats["frames_discarded"] == 0

    run(go())


def test_oversize_without_hook_sends_no_reply_and_carries_on():
    async def go():
        async with serving(max_message_bytes=100) as (server, _):
            reader, writer = await connect(server)
            writer.write(frame(msg(1, b"Q" * 200)) + frame(b"small"))
            assert await read_replies(reader, 1) == [b"ACK:small"]
            writer.close()
            assert server.stats["oversize"] == 1 and server.stats["messages"] == 1

    run(go())


def test_new_start_byte_inside_a_frame_discards_the_truncated_frame():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, events):
            reader, writer = await connect(server)
            writer.write(SB + b"MSH|PARTIAL" + frame(msg(2)))
            assert await read_replies(reader, 1) == [b"ACK:" + msg(2)]
            writer.close()
            assert handler.messages == [msg(2)]
            assert server.stats["frames_discarded"] == 1
            assert events[0][0] == "frame_discarded"
            assert events[0][1]["reason"] == "start_byte_in_frame"
            assert events[0][1]["bytes"] == len(b"MSH|PARTIAL")

    run(go())


def test_connection_closed_mid_frame_discards_the_partial_frame():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, events):
            reader, writer = await connect(server)
            writer.write(frame(msg(1)) + SB + b"MSH|PARTIAL")
            writer.write_eof()
            assert unframe_all(await read_to_eof(reader)) == [b"ACK:" + msg(1)]
            writer.close()
            assert handler.messages == [msg(1)]
            assert server.stats["frames_discarded"] == 1
            assert [d["reason"] for n, d in events if n == "frame_discarded"] == [
                "connection_closed"]

    run(go())


def test_end_byte_without_carriage_return_still_ends_the_frame():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            # 0x1C directly followed by the next 0x0B
            writer.write(SB + msg("A") + EB + SB + msg("B") + EB + CR)
            assert await read_replies(reader, 2) == [b"ACK:" + msg("A"), b"ACK:" + msg("B")]
            # 0x1C followed by some other byte: that byte is outside any frame
            writer.write(SB + msg("C") + EB + b"x" + SB + msg("D") + EB + CR)
            assert await read_replies(reader, 2) == [b"ACK:" + msg("C"), b"ACK:" + msg("D")]
            # 0x1C followed by the end of the connection
            writer.write(SB + msg("E") + EB)
            writer.write_eof()
            assert unframe_all(await read_to_eof(reader)) == [b"ACK:" + msg("E")]
            writer.close()
            assert handler.messages == [msg(x) for x in "ABCDE"]
            assert server.stats["bytes_outside_frames"] == 1
            assert server.stats["frames_discarded"] == 0

    run(go())


def test_empty_frame_is_discarded_without_reply():
    async def go():
        handler = Recorder()
        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            writer.write(SB + EB + CR + frame(msg(1)))
            assert await read_replies(reader, 1) == [b"ACK:" + msg(1)]
            writer.close()
            assert handler.messages == [msg(1)]
            assert server.stats["frames_discarded"] == 1

    run(go())


# -- connection life ----------------------------------------------------------------------


def test_half_closed_connection_gets_every_reply():
    async def go():
        handler = Recorder(delay=0.03)  # the EOF arrives long before the last reply is ready
        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            writer.write(b"".join(frame(msg(i)) for i in range(5)))
            writer.write_eof()
            data = await read_to_eof(reader)
            assert unframe_all(data) == [b"ACK:" + msg(i) for i in range(5)]
            writer.close()
            await wait_until(lambda: server.connections == 0)
            assert server.stats["messages"] == 5

    run(go())


def test_idle_timeout():
    async def go():
        handler = Recorder()
        async with serving(handler, idle_timeout=0.3) as (server, events):
            # no bytes at all
            reader, writer = await connect(server)
            started = time.monotonic()
            assert await read_to_eof(reader) == b""
            assert 0.25 <= time.monotonic() - started < 2.0
            writer.close()
            assert server.stats["timeouts"] == 1
            # idle in the middle of a frame
            reader, writer = await connect(server)
            writer.write(SB + b"MSH|PART")
            assert await read_to_eof(reader) == b""
            writer.close()
            assert server.stats["timeouts"] == 2
            assert server.stats["frames_discarded"] == 1
            assert [d["mid_frame"] for n, d in events if n == "idle_timeout"] == [False, True]
            # traffic keeps a connection alive past the timeout
            async with MLLPClient(HOST, server.port) as client:
                for i in range(4):
                    assert await client.send(msg(i)) == b"ACK:" + msg(i)
                    await asyncio.sleep(0.15)
                assert client.connects == 1
            assert handler.messages == [msg(i) for i in range(4)]
            assert server.stats["timeouts"] == 2

    run(go())


def test_handler_error_closes_only_that_connection():
    async def go():
        seen: list[bytes] = []

        async def handler(message: bytes, peer: Peer) -> bytes | None:
            seen.append(message)
            if message == b"BOOM":
                raise RuntimeError("handler bug")
            if message == b"SILENT":
                return None
            return b"ACK:" + message

        async with serving(handler) as (server, events):
            async with MLLPClient(HOST, server.port) as good:
                assert await good.send(b"one") == b"ACK:one"
                reader, writer = await connect(server)
                writer.write(frame(b"BOOM") + frame(b"AFTER"))
                assert await read_to_eof(reader) == b""  # no reply, connection closed
                writer.close()
                assert await good.send(b"two") == b"ACK:two"
                assert good.connects == 1
                # None means "no reply"; the connection carries on
                reader, writer = await connect(server)
                writer.write(frame(b"SILENT") + frame(b"three"))
                assert await read_replies(reader, 1) == [b"ACK:three"]
                writer.close()
            assert seen == [b"one", b"BOOM", b"two", b"SILENT", b"three"]
            assert server.stats["handler_errors"] == 1
            (_name, details), = [e for e in events if e[0] == "handler_error"]
            assert details["error_type"] == "RuntimeError" and details["error"] == "handler bug"

    run(go())


def test_invalid_reply_is_a_handler_error():
    async def go():
        async def handler(message: bytes, peer: Peer) -> bytes:
            return b"bad\x1creply"

        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            writer.write(frame(b"x"))
            assert await read_to_eof(reader) == b""
            writer.close()
            assert server.stats["handler_errors"] == 1

    run(go())


def test_max_connections():
    async def go():
        async with serving(max_connections=2) as (server, events):
            a, b = MLLPClient(HOST, server.port), MLLPClient(HOST, server.port)
            assert await a.send(b"a") == b"ACK:a"
            assert await b.send(b"b") == b"ACK:b"
            reader, writer = await connect(server)
            assert await read_to_eof(reader, timeout=2) == b""  # accepted, then closed
            writer.close()
            assert names(events) == ["too_many_connections"]
            assert server.connections == 2
            await a.close()
            await wait_until(lambda: server.connections == 1)
            async with MLLPClient(HOST, server.port) as c:
                assert await c.send(b"c") == b"ACK:c"
            assert await b.send(b"b2") == b"ACK:b2"
            await b.close()

    run(go())


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def test_client_resets_are_handled_quietly():
    async def go():
        handler = Recorder(delay=0.1)
        async with serving(handler) as (server, events):
            # reset while the handler runs: writing the reply fails
            _, writer = await connect(server)
            writer.write(frame(msg(1)))
            await wait_until(lambda: len(handler.seen) == 1)
            _reset(writer)
            await wait_until(lambda: server.connections == 0)
            # reset in the middle of a frame: reading fails
            _reader, writer = await connect(server)
            writer.write(SB + b"MSH|PART")
            await writer.drain()
            await wait_until(lambda: server.connections == 1)
            await asyncio.sleep(0.05)  # let the server read the partial frame
            _reset(writer)
            await wait_until(lambda: server.connections == 0)
            async with MLLPClient(HOST, server.port) as client:
                assert await client.send(msg(2)) == b"ACK:" + msg(2)
            assert server.stats["handler_errors"] == 0
            assert server.stats["frames_discarded"] == 1
            assert [d["reason"] for n, d in events if n == "frame_discarded"] == [
                "connection_reset"]
            assert "handler_error" not in names(events)

    run(go())


def test_backpressure_stops_reading_until_the_client_reads():
    async def go():
        calls = 0
        reply_size = 256 * 1024

        async def handler(message: bytes, peer: Peer) -> bytes:
            nonlocal calls
            calls += 1
            return message + b"|" + b"R" * reply_size

        async with serving(handler) as (server, _):
            reader, writer = await connect(server)
            writer.write(b"".join(frame(msg(i)) for i in range(200)))  # ~20 KB, fits
            await writer.drain()
            await asyncio.sleep(0.5)
            stalled_at = calls
            assert stalled_at < 100  # 200 replies = 50 MiB cannot all be in socket buffers
            replies = await read_replies(reader, 200, timeout=10)
            assert replies == [msg(i) + b"|" + b"R" * reply_size for i in range(200)]
            assert calls == 200
            writer.close()

    run(go())


def test_reply_never_read_hits_the_timeout():
    async def go():
        async def handler(message: bytes, peer: Peer) -> bytes:
            return b"R" * (1024 * 1024)

        async with serving(handler, idle_timeout=0.4) as (server, events):
            _reader, writer = await connect(server)
            writer.write(b"".join(frame(msg(i)) for i in range(100)))
            await writer.drain()
            await wait_until(lambda: server.stats["timeouts"] == 1, timeout=5)
            await wait_until(lambda: server.connections == 0)
            assert "write_timeout" in names(events)
            writer.close()

    run(go())


def test_close_finishes_in_flight_handlers_and_closes_connections():
    async def go():
        started = asyncio.Event()

        async def handler(message: bytes, peer: Peer) -> bytes:
            if message == b"SLOW":
                started.set()
                await asyncio.sleep(0.3)
            if message == b"STUCK":
                started.set()
                await asyncio.sleep(30)
            return b"ACK:" + message

        # an in-flight handler finishes and its reply is delivered
        server = MLLPServer(handler, host=HOST, port=0)
        await server.start()
        client = MLLPClient(HOST, server.port)
        idle_reader, idle_writer = await connect(server)
        pending = asyncio.create_task(client.send(b"SLOW"))
        await started.wait()
        await server.close()
        assert await pending == b"ACK:SLOW"
        assert await read_to_eof(idle_reader) == b""  # idle connection closed
        assert server.connections == 0
        with pytest.raises(ConnectionError):
            await client.send(b"after")  # not listening any more
        idle_writer.close()

        # a handler that does not finish within the grace period is cancelled
        started.clear()
        server = MLLPServer(handler, host=HOST, port=0, close_grace=0.2)
        await server.start()
        client = MLLPClient(HOST, server.port)
        pending = asyncio.create_task(client.send(b"STUCK"))
        await started.wait()
        t0 = time.monotonic()
        await server.close()
        assert time.monotonic() - t0 < 2
        with pytest.raises(ConnectionError):
            await pending
        assert server.connections == 0

    run(go())


# -- client ----------------------------------------------------------------------------


def test_client_reconnects_after_the_connection_dropped():
    async def go():
        handler = Recorder()
        async with serving(handler, idle_timeout=0.2) as (server, _):
            port = server.port
            client = MLLPClient(HOST, port)
            assert await client.send(b"one") == b"ACK:one"
            await asyncio.sleep(0.5)  # the server closes the idle connection
            assert await client.send(b"two") == b"ACK:two"
            assert client.connects == 2
            assert len({p.connection_id for _, p in handler.seen}) == 2
        # the server goes away and comes back on the same port
        server = MLLPServer(echo, host=HOST, port=port)
        await server.start()
        try:
            assert await client.send(b"three") == b"ACK:three"
            assert client.connects == 3
        finally:
            await client.close()
            await server.close()

    run(go())


def test_a_handler_slower_than_the_idle_timeout_is_not_an_idle_connection():
    async def go():
        handler = Recorder(delay=0.5)
        async with (serving(handler, idle_timeout=0.2) as (server, events),
                    MLLPClient(HOST, server.port, timeout=5) as client):
            assert await client.send(b"slow") == b"ACK:slow"
            assert await client.send(b"again") == b"ACK:again"
            assert client.connects == 1
            assert server.stats["timeouts"] == 0 and "idle_timeout" not in names(events)
            await wait_until(lambda: server.stats["timeouts"] == 1, timeout=2)  # then idle

    run(go())


def test_a_client_serves_one_event_loop_after_another():
    client = MLLPClient(HOST, 0, timeout=2)

    async def go(message: bytes) -> bytes:
        async with serving(echo) as (server, _):
            client.port = server.port
            try:
                return await client.send(message)
            finally:
                await client.close()

    assert run(go(b"x")) == b"ACK:x"
    assert run(go(b"y")) == b"ACK:y"  # its timer is made again for this loop


def test_client_timeout_never_returns_a_stale_reply():
    async def go():
        async def handler(message: bytes, peer: Peer) -> bytes:
            if message == b"SLOW":
                await asyncio.sleep(0.5)
            return b"ACK:" + message

        async with (serving(handler) as (server, _),
                    MLLPClient(HOST, server.port, timeout=0.2) as client):
            with pytest.raises(TimeoutError):
                await client.send(b"SLOW")
            assert await client.send(b"FAST") == b"ACK:FAST"
            assert client.connects == 2

    run(go())


def test_client_errors():
    async def go():
        # nothing listening
        with socket.socket() as s:
            s.bind((HOST, 0))
            free = s.getsockname()[1]
        with pytest.raises(ConnectionError):
            await MLLPClient(HOST, free, timeout=2).send(b"x")

        async def garbage(reader, writer):
            await reader.read(100)
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await writer.drain()
            writer.close()

        async def hang_up(reader, writer):
            await reader.read(100)
            writer.close()

        async def bad_frame(reader, writer):
            await reader.read(100)
            writer.write(SB + b"one" + SB + b"two" + EB + CR)
            await writer.drain()
            writer.close()

        for cb, exc in [(garbage, MLLPProtocolError), (hang_up, ConnectionError),
                        (bad_frame, MLLPProtocolError)]:
            srv = await asyncio.start_server(cb, HOST, 0)
            port = srv.sockets[0].getsockname()[1]
            async with MLLPClient(HOST, port, timeout=2) as client:
                with pytest.raises(exc):
                    await client.send(b"x")
            srv.close()
            await srv.wait_closed()

        with pytest.raises(ValueError):
            frame(b"a\x1cb")
        with pytest.raises(ValueError):
            frame(b"a\x0bb")
        assert frame(b"abc") == b"\x0babc\x1c\x0d"

    run(go())


# -- TLS -------------------------------------------------------------------------------


def _self_signed(tmp_path, name: str, subject: str, san: str | None = None):
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", subject,
           "-keyout", str(key), "-out", str(cert)]
    if san:
        cmd += ["-addext", f"subjectAltName={san}"]
    subprocess.run(cmd, check=True, capture_output=True)
    return str(cert), str(key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_with_client_certificate(tmp_path):
    server_cert, server_key = _self_signed(tmp_path, "server", "/CN=localhost", "IP:127.0.0.1")
    client_cert, client_key = _self_signed(tmp_path, "client", "/O=Test Hospital/CN=his-client")

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(server_cert, server_key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_verify_locations(client_cert)
    client_ctx = ssl.create_default_context(cafile=server_cert)
    client_ctx.load_cert_chain(client_cert, client_key)

    async def go():
        handler = Recorder()
        async with serving(handler, ssl=server_ctx) as (server, _):
            async with MLLPClient(HOST, server.port, ssl=client_ctx) as client:
                assert await client.send(msg(1)) == b"ACK:" + msg(1)
                assert await client.send(msg(2)) == b"ACK:" + msg(2)
            assert [p.tls_subject for _, p in handler.seen] == ["CN=his-client,O=Test Hospital"] * 2

    run(go())


# -- the deframer on its own -----------------------------------------------------------

_content = st.binary(min_size=1, max_size=300).filter(lambda b: SB not in b and EB not in b)


@settings(max_examples=200, deadline=None)
@given(messages=st.lists(_content, max_size=8), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_parser_any_chunking_gives_the_same_messages(messages, cuts):
    stream = b"".join(frame(m) for m in messages)
    parser = FrameParser(1000)
    got, prev = [], 0
    for cut in sorted(c for c in cuts if c <= len(stream)) + [len(stream)]:
        got += parser.feed(stream[prev:cut])
        prev = cut
    assert got == [("message", m) for m in messages]
    assert not parser.in_frame and parser.buffered == 0


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"a", SB).replace(
    b"b", EB)), max_size=20))
def test_parser_never_yields_partial_data(chunks):
    parser = FrameParser(50)
    for chunk in chunks:
        for kind, value in parser.feed(chunk):
            if kind == "message":
                assert 0 < len(value) <= 50 and SB not in value and EB not in value
            elif kind == "oversize":
                assert value and len(value) <= 4096
        assert parser.buffered <= 50 + len(chunk)


def test_parser_buffer_stays_bounded_for_a_huge_frame():
    parser = FrameParser(100_000)
    out = parser.feed(SB + b"MSH|")
    peak = 0
    for _ in range(80):  # 5 MiB
        out += parser.feed(b"x" * 65536)
        peak = max(peak, parser.buffered)
    out += parser.feed(EB + CR + frame(b"next"))
    assert peak <= 100_000 + 65536
    assert [k for k, _ in out] == ["oversize", "message"]
    assert out[0][1].startswith(b"MSH|x") and len(out[0][1]) == 4096
    assert out[1] == ("message", b"next")
