"""A small, cheap HTTP/1.1 load generator (asyncio streams, keep-alive), so the client
takes little of the CPU the gateway is measured on. Bounded in count and time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    sent: int = 0
    ok: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000 if data else float("nan")

    def record(self, status: int, latency: float) -> None:
        self.latencies.append(latency)
        self.sent += 1
        if status == 202:
            self.ok += 1
        else:
            self.errors[status] = self.errors.get(status, 0) + 1

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


class _Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        fresh = self.writer is None
        if fresh:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(raw)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            if fresh:
                raise
            # the server closed this kept-alive connection while it sat idle (its keep-alive
            # timeout) before reading the request: send it again on a new connection
            self.writer = None
            return await self.request(raw)
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def _requests(host: str, path: str, key: str, bodies: list[bytes]) -> list[bytes]:
    return [(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
            for b in bodies]


async def closed_loop(host: str, port: int, path: str, key: str, bodies: list[bytes],
                      concurrency: int, max_seconds: float = 30.0) -> Result:
    """Send every body once, ``concurrency`` at a time: the maximum sustained rate."""
    reqs = _requests(host, path, key, bodies)
    res = Result()
    it = iter(reqs)
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        conn = _Conn(host, port)
        for raw in it:
            if time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            status = await conn.request(raw)
            res.record(status, time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.seconds = time.perf_counter() - t0
    return res


async def open_loop(host: str, port: int, path: str, key: str, bodies: list[bytes],
                    rate: float, seconds: float, max_conns: int = 64) -> Result:
    """Send at a fixed rate whatever the answers (latency includes any queueing)."""
    reqs = _requests(host, path, key, bodies)
    total = min(len(reqs), int(rate * seconds))
    res = Result()
    idle: list[_Conn] = []
    sem = asyncio.Semaphore(max_conns)

    async def one(raw: bytes, due: float) -> None:
        async with sem:
            conn = idle.pop() if idle else _Conn(host, port)
            status = await conn.request(raw)
            res.record(status, time.perf_counter() - due)
            idle.append(conn)

    start = time.perf_counter()
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(reqs[i], due)))
    await asyncio.gather(*tasks)
    res.seconds = time.perf_counter() - start
    return res
