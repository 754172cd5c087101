"""The embedded Redis: with no ``GATEWAY_REDIS_URL``, the gateway runs its own redis-server.

It lives under ``<data dir>/redis`` with the append-only file on and ``appendfsync
always``, so a visit answered 202 is on disk. Its port is written to ``redis/port`` so
the CLI (``gateway keys create``) finds a running one, or starts one for the command.
A supervisor thread restarts it if it dies.

``DURABLE`` is its configuration (also the one to give a Redis of your own). The gateway
writes much more than it keeps — queued entries leave the streams once delivered — so the
append-only file grows about 5 KB per visit while the data stays small. Redis rewrites
the file when it has doubled since the last rewrite, and at least reached
``auto-aof-rewrite-min-size``: at Redis's 64 MB that is every 10-20 s at 1,000 visits/s,
each rewrite a fork (the server stands still for milliseconds) and about a second of a
core — latency for everything in flight. At 1 GB it is every few minutes, the file
stays under about 2 GB. ``rdbcompression no``: the rewrite's snapshot does not try LZF
on payloads that are Zstandard already (half the rewrite's CPU).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from gateway.children import free_port, spawn
from gateway.logging import get_logger
from gateway.settings import Settings

log = get_logger(__name__)

DURABLE = ("--appendonly", "yes", "--appendfsync", "always", "--save", "",
           "--auto-aof-rewrite-min-size", "1gb", "--rdbcompression", "no")


class EmbeddedRedis:
    def __init__(self, data_dir: Path):
        self.dir = Path(data_dir).resolve() / "redis"
        self.port_file = self.dir / "port"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _alive(self, port: int) -> bool:
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
            ok = client.ping() and client.config_get("dir").get("dir") == str(self.dir)
            client.close()
            return bool(ok)
        except (redis.RedisError, OSError):
            return False

    def running_port(self) -> int | None:
        """The port of a redis-server already serving this data directory, if any."""
        try:
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return port if self._alive(port) else None

    def start(self) -> str:
        """Adopt a running server for this directory, or start one. Returns its URL."""
        port = self.running_port()
        if port:
            self.port = port
            return self.url
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed: run `make setup` "
                               "(or `apt-get install redis-server`), or set GATEWAY_REDIS_URL")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.proc = spawn(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             *DURABLE, "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not self._alive(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis-server did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        self.port_file.write_text(str(self.port))
        log.info("embedded redis started", port=self.port, dir=str(self.dir))
        return self.url

    def supervise(self) -> None:
        """Restart the server if it dies (only one this object started)."""
        def loop() -> None:
            while not self._stop.wait(1.0):
                if self.proc is not None and self.proc.poll() is not None:
                    log.warning("embedded redis exited; restarting", code=self.proc.returncode)
                    self.proc = None
                    with contextlib.suppress(Exception):
                        self.start()
        self._supervisor = threading.Thread(target=loop, name="redis-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """The Redis to use for a command: the configured one, else the embedded one
    (adopted if running, otherwise started for the duration of the command)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()  # stops only a server this command started
