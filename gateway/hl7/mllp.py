"""MLLP (Minimal Lower Layer Protocol) over TCP: an asyncio server and a small client.

A frame is ``0x0B`` + message bytes + ``0x1C 0x0D``. This layer is bytes in, bytes out: it
knows nothing about HL7 segments, only about frames.

Server (original mode)
    Each connection is served by one task that reads with ``reader.read(65536)`` and cuts
    frames out of a ``bytearray`` with ``bytes.find``. Frames are handed to the handler one
    at a time, in order, and each reply is written (and ``drain()``-ed) before the next frame
    is looked at, so a client may pipeline several frames and still get the answers in order.
    While a handler runs or a reply cannot be flushed, the connection is not read: TCP flow
    control pushes back on the sender.

How malformed input is treated (all counted in ``MLLPServer.stats``, most reported to
``on_event``):

* Bytes outside a frame (before ``0x0B``, between frames) are discarded and counted
  (``bytes_outside_frames``, event ``outside_frame``). The ``0x0D`` right after ``0x1C`` is
  part of the trailer and is not counted.
* End of frame: ``0x1C``. A ``0x1C 0x0D`` pair is the proper trailer, but many senders get it
  wrong, so a ``0x1C`` followed by anything else (or by the end of the connection) ends the
  frame too; the byte after it is then read as outside-frame data (or as the next ``0x0B``).
  The consequence is that a message can never contain ``0x1C`` — HL7 v2 forbids it anyway.
* ``0x0B`` inside a frame means the previous frame was truncated: it is discarded (counted in
  ``frames_discarded``, event ``frame_discarded``) and a new frame starts. The handler never
  sees partial data. The same goes for a frame cut short by the connection closing or by the
  idle timeout. An empty frame (``0x0B 0x1C 0x0D``) is discarded too, without a reply.
* A frame longer than ``max_message_bytes`` stops being buffered as soon as that is known:
  ``on_oversize(head, peer)`` is called with its first <= 4 KiB (so a NAK can echo MSH-10) and
  its reply, if any, is sent at once. The rest of the frame is skipped up to its ``0x1C``
  (or up to a new ``0x0B``, which starts the next frame). Counted in ``oversize``. A
  connection never buffers more than ``max_message_bytes`` + one read (64 KiB) of frame data.
* No bytes for ``idle_timeout`` seconds, mid-frame or not, closes the connection (counted in
  ``timeouts``). The same limit bounds how long a reply may wait for the peer to read it.
* A handler (or ``on_oversize``) that raises: event ``handler_error``, counted in
  ``handler_errors``, no reply for that frame, and that connection is closed. Other
  connections are unaffected.
* Beyond ``max_connections`` open connections, new ones are accepted and closed at once
  (event ``too_many_connections``).
* A half-closed connection (the peer shut down its write side) still gets every reply for
  the frames it sent before the server closes it. Peer resets are handled quietly.

Client
    ``MLLPClient.send`` frames a message, sends it and waits for one framed reply. Any
    failure (timeout, connection error, protocol error, cancellation) drops the connection so
    a late reply can never be taken for the answer to a later message; the next ``send``
    connects again. A connection the server closed while the client was idle is noticed and
    replaced before sending. A failed send is never retried automatically (the message may
    or may not have been processed): retrying is the caller's decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self

__all__ = [
    "CR", "EB", "HEAD_BYTES", "SB", "FrameParser", "Handler", "MLLPClient", "MLLPProtocolError",
    "MLLPServer", "Peer", "frame",
]

log = logging.getLogger(__name__)

SB = b"\x0b"  # start block
EB = b"\x1c"  # end block
CR = b"\x0d"  # carriage return, ends the trailer
_SB, _EB, _CR = 0x0B, 0x1C, 0x0D
_TRAILER = EB + CR
HEAD_BYTES = 4096  # how much of an oversize frame on_oversize gets
READ_SIZE = 65536


class MLLPProtocolError(Exception):
    """The peer did not speak MLLP (garbage instead of a frame, a reply too large, ...)."""


def frame(message: bytes) -> bytes:
    """Wrap a message in an MLLP frame. The message must not contain 0x0B or 0x1C."""
    if SB in message or EB in message:
        raise ValueError("an MLLP message cannot contain 0x0B or 0x1C")
    return b"".join((SB, message, _TRAILER))  # one copy of the message


@dataclass(frozen=True)
class Peer:
    host: str
    port: int
    connection_id: int
    tls_subject: str | None = None  # the client certificate subject (mutual TLS), RFC 4514 style


Handler = Callable[[bytes, Peer], Awaitable["bytes | None"]]
OversizeHandler = Callable[[bytes, Peer], Awaitable["bytes | None"]]
EventHook = Callable[[str, dict], None]

# ---------------------------------------------------------------------------------------
# Framing (pure, no I/O)

_OUTSIDE, _IN_FRAME, _SKIPPING = 0, 1, 2

# Parser output items: (kind, value)
MESSAGE = "message"      # value: the message bytes
OUTSIDE = "outside"      # value: number of bytes discarded outside frames
DISCARDED = "discarded"  # value: (reason, number of bytes of the discarded frame)
OVERSIZE = "oversize"    # value: the first <= HEAD_BYTES bytes of the frame


class FrameParser:
    """Incremental MLLP deframer; see the module docstring for the rules.

    ``feed(data)`` returns a list of ``(kind, value)`` items in stream order. ``buffered`` is
    the number of frame bytes held (bounded by ``max_message_bytes`` + one chunk).
    """

    __slots__ = ("_buf", "_eat_cr", "_scan", "_state", "max_message_bytes")

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._state = _OUTSIDE
        self._scan = 0        # in a frame: bytes of _buf known to hold no 0x0B / 0x1C
        self._eat_cr = False  # the previous byte was an end-of-frame 0x1C

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True when a frame was started and not finished (its bytes would be lost)."""
        return self._state == _IN_FRAME

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if not data:
            return out
        if self._eat_cr:
            self._eat_cr = False
            if data[0] == _CR:
                data = data[1:]
                if not data:
                    return out
        state = self._state
        buf: bytes | bytearray
        if state == _IN_FRAME:
            buf = self._buf
            buf += data
        else:  # nothing buffered: search the chunk itself
            buf = bytes(data)
        pos, n, limit = 0, len(buf), self.max_message_bytes
        find = buf.find
        while pos < n:
            if state == _OUTSIDE:
                i = find(SB, pos)
                if i == -1:
                    out.append((OUTSIDE, n - pos))
                    pos = n
                    break
                if i > pos:
                    out.append((OUTSIDE, i - pos))
                pos = i + 1
                state, self._scan = _IN_FRAME, pos
            elif state == _IN_FRAME:
                e = find(EB, self._scan)
                s = find(SB, self._scan, n if e == -1 else e)
                if s != -1:  # a new start byte: the frame so far was truncated
                    out.append((DISCARDED, ("start_byte_in_frame", s - pos)))
                    pos = self._scan = s + 1
                    continue
                if e != -1:
                    length = e - pos
                    if length > limit:
                        out.append((OVERSIZE, bytes(buf[pos:min(e, pos + HEAD_BYTES)])))
                    elif length == 0:
                        out.append((DISCARDED, ("empty", 0)))
                    else:
                        out.append((MESSAGE, bytes(buf[pos:e])))
                    pos = e + 1
                    state = _OUTSIDE
                    if pos < n:
                        if buf[pos] == _CR:
                            pos += 1
                    else:
                        self._eat_cr = True
                    continue
                if n - pos > limit:  # too long already: stop buffering it
                    out.append((OVERSIZE, bytes(buf[pos:pos + HEAD_BYTES])))
                    pos, state = n, _SKIPPING
                    break
                self._scan = n
                break
            else:  # _SKIPPING the rest of an oversize frame
                e = find(EB, pos)
                s = find(SB, pos, n if e == -1 else e)
                if s != -1:
                    pos = s + 1
                    state, self._scan = _IN_FRAME, pos
                elif e != -1:
                    pos, state = e + 1, _OUTSIDE
                    if pos < n:
                        if buf[pos] == _CR:
                            pos += 1
                    else:
                        self._eat_cr = True
                else:
                    pos = n
        # keep only the unfinished frame
        if state == _IN_FRAME:
            if isinstance(buf, bytearray):
                if pos:
                    del buf[:pos]
                self._buf = buf
            else:
                self._buf = bytearray(memoryview(buf)[pos:])
            self._scan -= pos
        else:
            self._buf = bytearray()
            self._scan = 0
        self._state = state
        return out

    def reset_frame(self) -> int:
        """Drop an unfinished frame (connection closing); returns its length."""
        n = len(self._buf)
        self._buf = bytearray()
        self._state, self._scan = _OUTSIDE, 0
        return n


# ---------------------------------------------------------------------------------------
# Server


_RFC4514_NAMES = {
    "commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
    "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
    "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID",
}


def _escape_dn(value: str) -> str:
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def tls_subject(peercert: dict | None) -> str | None:
    """The subject of a verified peer certificate as an RFC 4514 string (most specific first)."""
    if not peercert or not peercert.get("subject"):
        return None
    rdns = []
    for rdn in peercert["subject"]:
        rdns.append("+".join(f"{_RFC4514_NAMES.get(k, k)}={_escape_dn(v)}" for k, v in rdn))
    return ",".join(reversed(rdns))


class _IdleTimeout(Exception):
    """Set on a server connection's reader by its watchdog: no bytes for ``idle_timeout``."""


class _Watchdog:
    """One timer for a connection's waits rather than one for each: ``start(seconds)``
    before a wait starts its clock, ``stop()`` after it stops it. The timer fires when the
    clock may have run out, and calls ``expire()`` if it did (which fails the wait, e.g. by
    setting the reader's exception, which ``read`` raises), or goes back to sleep until it
    will. A wait costs a clock reading, not a timer set and cancelled."""

    __slots__ = ("_armed", "_due", "_expire", "_handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[], None]) -> None:
        self.loop, self._expire = loop, expire
        self._due: float | None = None  # while waiting: when the wait times out
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0.0  # when the timer fires

    def start(self, seconds: float) -> None:
        self._due = due = self.loop.time() + seconds
        if self._handle is None or due < self._armed:
            self._arm(due)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(when, self._check)
        self._armed = when

    def stop(self) -> None:
        self._due = None

    def _check(self) -> None:
        self._handle = None
        due = self._due
        if due is None:  # not waiting: armed again by the next start()
            return
        if self.loop.time() >= due:
            self._due = None
            self._expire()
        else:
            self._arm(due)

    def cancel(self) -> None:
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@dataclass(eq=False)
class _Connection:
    peer: Peer
    writer: asyncio.StreamWriter
    task: asyncio.Task | None
    busy: bool = False  # a handler is running / its reply is being written
    messages: int = 0


_EVENT_LEVELS = {"handler_error": logging.ERROR, "too_many_connections": logging.WARNING,
                 "oversize": logging.WARNING}


def _default_event(name: str, details: dict) -> None:
    log.log(_EVENT_LEVELS.get(name, logging.INFO), "mllp %s %s", name, details)


class MLLPServer:
    """An asyncio MLLP server; see the module docstring for its behaviour.

    ``handler(message, peer)`` returns the reply (unframed) or None for no reply.
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 2575,
                 max_message_bytes: int = 1_048_576, idle_timeout: float = 300.0,
                 max_connections: int = 1000, ssl: _ssl.SSLContext | None = None,
                 on_oversize: OversizeHandler | None = None,
                 on_event: EventHook | None = None, close_grace: float = 10.0,
                 reuse_port: bool = False) -> None:
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be positive")
        self.handler = handler
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.reuse_port = reuse_port  # several processes share the port; the kernel spreads connections
        self.ssl = ssl
        self.on_oversize = on_oversize
        self.on_event = on_event or _default_event
        self.close_grace = close_grace
        self.stats: dict[str, int] = {
            "messages": 0, "frames_discarded": 0, "bytes_outside_frames": 0, "oversize": 0,
            "timeouts": 0, "handler_errors": 0,
        }
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._closing = False

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def start(self) -> None:
        self._closing = False
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl, limit=READ_SIZE * 2,
            reuse_port=self.reuse_port or None)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def close(self) -> None:
        """Stop accepting, let running handlers finish (up to ``close_grace`` s), close all."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        for conn in list(self._conns.values()):
            if not conn.busy and conn.task is not None:
                conn.task.cancel()  # idle or blocked on a read / write: nothing in flight
        tasks = [c.task for c in self._conns.values() if c.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.close_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- internals ----------------------------------------------------------------------

    def _event(self, name: str, peer: Peer | None, **details: Any) -> None:
        if peer is not None:
            details = {"connection_id": peer.connection_id, "peer": f"{peer.host}:{peer.port}",
                       **details}
        try:
            self.on_event(name, details)
        except Exception:  # a broken hook must not take the server down
            log.exception("MLLP on_event hook failed for %s", name)

    def _peer(self, writer: asyncio.StreamWriter) -> Peer:
        addr = writer.get_extra_info("peername")
        host, port = ("", 0)
        if isinstance(addr, (tuple, list)) and len(addr) >= 2:
            host, port = str(addr[0]), int(addr[1])
        elif addr:
            host = str(addr)
        subject = None
        if self.ssl is not None:
            with contextlib.suppress(Exception):
                subject = tls_subject(writer.get_extra_info("peercert"))
        return Peer(host=host, port=port, connection_id=next(self._ids), tls_subject=subject)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = self._peer(writer)
        except Exception:
            log.exception("MLLP: could not describe a peer")
            writer.close()
            return
        if self._closing or len(self._conns) >= self.max_connections:
            if not self._closing:
                self._event("too_many_connections", peer, limit=self.max_connections)
            with contextlib.suppress(Exception):
                writer.close()
            return
        conn = _Connection(peer=peer, writer=writer, task=asyncio.current_task())
        self._conns[peer.connection_id] = conn
        try:
            await self._run(conn, reader, writer)
        except (ConnectionError, OSError) as exc:  # resets, broken pipes, TLS errors
            log.debug("MLLP connection %s dropped: %r", peer.connection_id, exc)
        except asyncio.CancelledError:
            # Only close() (or the loop shutting down) cancels a connection task. End it
            # normally: Python 3.11's stream callback calls task.exception() on it, which
            # would report a cancelled task as an unhandled error.
            pass
        except Exception as exc:  # never let a connection crash the server
            log.exception("MLLP connection %s failed", peer.connection_id)
            self._event("connection_error", peer, error_type=type(exc).__name__,
                        error=str(exc))
        finally:
            self._conns.pop(peer.connection_id, None)
            with contextlib.suppress(Exception):
                writer.close()

    async def _run(self, conn: _Connection, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        peer, stats = conn.peer, self.stats
        parser = FrameParser(self.max_message_bytes)
        idle = self.idle_timeout
        watchdog = _Watchdog(asyncio.get_running_loop(),
                             lambda: reader.set_exception(_IdleTimeout()))
        try:
            while not self._closing:
                watchdog.start(idle)
                try:
                    data = await reader.read(READ_SIZE)
                except _IdleTimeout:
                    stats["timeouts"] += 1
                    mid_frame = parser.in_frame
                    if mid_frame:
                        self._discard(peer, "idle_timeout", parser.reset_frame())
                    self._event("idle_timeout", peer, seconds=idle, mid_frame=mid_frame)
                    return
                except OSError as exc:  # reset by the peer (or ETIMEDOUT from the socket)
                    log.debug("MLLP connection %s reset: %r", peer.connection_id, exc)
                    if parser.in_frame:
                        self._discard(peer, "connection_reset", parser.reset_frame())
                    return
                watchdog.stop()
                if not data:  # EOF: everything complete was answered already
                    if parser.in_frame:
                        self._discard(peer, "connection_closed", parser.reset_frame())
                    return
                for kind, value in parser.feed(data):
                    if kind == MESSAGE:
                        stats["messages"] += 1
                        conn.messages += 1
                        if not await self._call(conn, self.handler, value):
                            return
                        if self._closing:
                            return
                    elif kind == OUTSIDE:
                        stats["bytes_outside_frames"] += value
                        self._event("outside_frame", peer, bytes=value)
                    elif kind == DISCARDED:
                        self._discard(peer, *value)
                    else:  # OVERSIZE
                        stats["oversize"] += 1
                        self._event("oversize", peer, limit=self.max_message_bytes)
                        if self.on_oversize is not None:
                            if not await self._call(conn, self.on_oversize, value):
                                return
                            if self._closing:
                                return
        finally:
            watchdog.cancel()

    def _discard(self, peer: Peer, reason: str, length: int) -> None:
        self.stats["frames_discarded"] += 1
        self._event("frame_discarded", peer, reason=reason, bytes=length)

    async def _call(self, conn: _Connection, fn: Handler, message: bytes) -> bool:
        """Run a handler and write its reply; False when the connection must be closed."""
        conn.busy = True
        try:
            try:
                reply = await fn(message, conn.peer)
                data = None if reply is None else frame(reply)
            except Exception as exc:  # a handler bug costs one connection
                self.stats["handler_errors"] += 1
                log.debug("MLLP handler failed", exc_info=True)
                self._event("handler_error", conn.peer, error_type=type(exc).__name__,
                            error=str(exc))
                return False
            if data is not None:
                writer = conn.writer
                writer.write(data)
                # all sent at once, the common case: nothing to wait for (a connection that
                # broke meanwhile ends the next read); else the peer is slow to read: wait for
                # it, but not forever
                if writer.transport.get_write_buffer_size():
                    deadline = asyncio.timeout(self.idle_timeout)
                    try:
                        async with deadline:
                            await writer.drain()
                    except TimeoutError:
                        if not deadline.expired():
                            raise
                        self.stats["timeouts"] += 1
                        self._event("write_timeout", conn.peer, seconds=self.idle_timeout)
                        writer.transport.abort()
                        return False
            return True
        finally:
            conn.busy = False


# ---------------------------------------------------------------------------------------
# Client

_WHITESPACE = b" \t\r\n"


class MLLPClient:
    """Sends one message at a time and waits for its framed reply.

    ``timeout`` bounds connecting and each whole ``send`` (write + reply).
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0,
                 ssl: _ssl.SSLContext | None = None, max_reply_bytes: int = 16 * 1024 * 1024,
                 server_hostname: str | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.max_reply_bytes = max_reply_bytes
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buf = bytearray()
        self._lock = asyncio.Lock()
        self._watchdog: _Watchdog | None = None  # times the sends out (one timer per client)
        self.connects = 0  # how many connections were opened (reconnects included)

    @property
    def connected(self) -> bool:
        reader = self._reader
        return (self._writer is not None and not self._writer.is_closing()
                and reader is not None and not reader.at_eof() and reader.exception() is None)

    async def connect(self) -> None:
        async with self._lock:
            await self._ensure_connected()

    async def _ensure_connected(self) -> None:
        if self.connected and not self._buf.strip(_WHITESPACE):
            return
        self._drop()  # dead, half-closed by the server, or holding unsolicited data
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
            if self.server_hostname is not None:
                kwargs["server_hostname"] = self.server_hostname
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=READ_SIZE * 2, **kwargs)
        except (ConnectionError, TimeoutError):
            raise
        except OSError as exc:  # unresolvable host, unreachable network, TLS failure
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.connects += 1

    async def send(self, message: bytes) -> bytes:
        """Send one message, return the reply (unframed)."""
        data = frame(message)
        async with self._lock:
            try:
                if not self.connected or self._buf:
                    await self._ensure_connected()
                assert self._writer is not None
                watchdog = self._timer()
                watchdog.start(self.timeout)
                try:
                    # not drained: the reply is awaited anyway, and one message at most waits
                    # in the transport's buffer; a connection that broke ends the read
                    self._writer.write(data)
                    return await self._read_reply()
                finally:
                    watchdog.stop()
            except BaseException as exc:
                self._drop()  # the stream's state is unknown: never reuse it
                if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError,
                                                                      TimeoutError)):
                    raise ConnectionError(str(exc)) from exc
                raise

    def _timer(self) -> _Watchdog:
        """The watchdog of the sends (made again for another event loop)."""
        loop = asyncio.get_running_loop()
        watchdog = self._watchdog
        if watchdog is None or watchdog.loop is not loop:
            if watchdog is not None:
                watchdog.cancel()
            watchdog = self._watchdog = _Watchdog(loop, self._timed_out)
        return watchdog

    def _timed_out(self) -> None:
        """A send took longer than ``timeout``: its read fails (and the connection with it,
        even if the reply arrived in the same instant)."""
        if self._reader is not None:
            self._reader.set_exception(TimeoutError(f"no reply within {self.timeout} s"))

    async def _read_reply(self) -> bytes:
        buf, reader = self._buf, self._reader
        assert reader is not None
        start = -1
        scan = 0
        while True:
            if buf:  # else nothing to look at yet (the usual case before the first read)
                if start < 0:
                    i = buf.find(SB)
                    junk = buf if i == -1 else buf[:i]
                    if junk.strip(_WHITESPACE):
                        raise MLLPProtocolError(
                            f"expected an MLLP frame, got {bytes(junk[:40])!r}")
                    if i != -1:
                        del buf[:i + 1]
                        start, scan = 0, 0
                    else:
                        buf.clear()
                if start >= 0:
                    e = buf.find(EB, scan)
                    end = len(buf) if e == -1 else e
                    if buf.find(SB, scan, end) != -1:
                        raise MLLPProtocolError("a new frame started inside the reply")
                    if e != -1:
                        if e > self.max_reply_bytes:
                            raise MLLPProtocolError(
                                f"reply exceeds {self.max_reply_bytes} bytes")
                        reply = bytes(buf[:e])
                        del buf[:e + 1]
                        if buf[:1] == CR:
                            del buf[:1]
                        return reply
                    if len(buf) > self.max_reply_bytes:
                        raise MLLPProtocolError(f"reply exceeds {self.max_reply_bytes} bytes")
                    scan = len(buf)
            data = await reader.read(READ_SIZE)
            if not data:
                where = "in the middle of the reply" if start >= 0 else "before replying"
                raise ConnectionError(f"connection closed by the peer {where}")
            if start < 0 and not buf:
                reply = self._whole_frame(data)
                if reply is not None:
                    return reply
            buf += data

    def _whole_frame(self, data: bytes) -> bytes | None:
        """The reply when ``data`` is exactly one well-formed frame (the usual read), which
        the buffer would take in and give back whole; None otherwise."""
        e = len(data) - 2
        if (e >= 1 and data[0] == _SB and data[e] == _EB and data[e + 1] == _CR
                and e - 1 <= self.max_reply_bytes
                and data.find(EB, 1, e) == -1 and data.find(SB, 1, e) == -1):
            return data[1:e]
        return None

    def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._buf = bytearray()
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    async def close(self) -> None:
        writer = self._writer
        self._drop()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if writer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
