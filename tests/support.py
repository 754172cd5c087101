"""Real servers for tests: redis-server and uvicorn in subprocesses on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis

from gateway.children import free_port  # noqa: F401 - tests import it from here
from gateway.redis_embedded import DURABLE

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class RedisServer:
    """A throwaway redis-server configured as the embedded one, in a directory of its own
    (``appendfsync everysec``: the tests that need ``always`` set it)."""

    def __init__(self, directory: Path, port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (make setup installs it)"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             *DURABLE, "--appendfsync", "everysec", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(client.ping, what="redis-server")
        client.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Process:
    """A child process running a console command, e.g. ``gateway serve``; stopped on exit."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None):
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def gateway_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


@contextlib.contextmanager
def http_service(args: list[str], health_url: str, env: dict[str, str] | None = None,
                 log: Path | None = None, timeout: float = 30.0) -> Iterator[Process]:
    """Start a server process and wait until ``health_url`` answers 200."""
    proc = Process(args, env=env, log=log).start()
    try:
        def healthy() -> bool:
            if proc.proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
                raise RuntimeError(f"{args} exited with {proc.proc.returncode}\n{tail}")
            return httpx.get(health_url, timeout=1.0).status_code == 200
        deadline = time.monotonic() + timeout
        while True:
            try:
                if healthy():
                    break
            except RuntimeError:
                raise
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{args} did not become healthy at {health_url}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.stop()


class HttpService:
    """A `gateway` command serving HTTP as a child process: ``args``, ``health_url``, ``env``
    and ``log`` set by the subclass; started (again, after a stop) and stopped by the test."""

    args: list[str]
    health_url: str
    log: Path
    env: dict[str, str] | None = None
    _ctx = None
    proc: Process | None = None

    def start(self):
        self._ctx = http_service(self.args, self.health_url, env=self.env, log=self.log)
        self.proc = self._ctx.__enter__()
        return self

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None


VISIT_INPUT = ROOT / "tests" / "golden" / "canonical" / "basic" / "input.json"


def sample_visit(**changes) -> dict:
    """The golden sample visit as a dict, with top-level fields replaced."""
    import json

    visit = json.loads(VISIT_INPUT.read_text(encoding="utf-8"))
    visit.update(changes)
    return visit


class Gateway(HttpService):
    """`gateway serve` as a child process on a real Redis, talking to a real peer."""

    def __init__(self, tmp: Path, redis_url: str | None, regional_url: str | None,
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.mllp_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"gateway-{self.port}.log"
        self.env = {
            "GATEWAY_DATA_DIR": str(tmp / "data"),
            "GATEWAY_RETRY_BASE": "0.05", "GATEWAY_RETRY_CAP": "0.5",
            "GATEWAY_LEASE_TTL": "3", "GATEWAY_DELIVERY_TIMEOUT": "5",
            "GATEWAY_MLLP_PORT": str(self.mllp_port),
            **({"GATEWAY_REDIS_URL": redis_url} if redis_url else {}),
            **({"GATEWAY_REGIONAL_FHIR_URL": regional_url} if regional_url else {}),
            **(extra_env or {}),
        }

    @property
    def args(self) -> list[str]:  # from the port at start: a test may take another's port
        return gateway_cmd("serve", "--port", str(self.port))

    @property
    def health_url(self) -> str:
        return f"{self.base}/healthz"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease release, nothing flushed by the gateway."""
        self.proc.kill()
        self._ctx = None

    def cli(self, *args: str) -> str:
        """Run a `gateway` command against this gateway's Redis; its standard output."""
        out = subprocess.run(gateway_cmd(*args), env={**os.environ, **self.env},
                             capture_output=True, text=True, check=True, cwd=ROOT)
        return out.stdout.strip()

    def create_key(self, org: str) -> str:
        return self.cli("keys", "create", "--org", org, "--name", f"{org} test").splitlines()[-1]

    def submit(self, key: str, visit: dict | bytes, **kw) -> httpx.Response:
        import json

        body = visit if isinstance(visit, bytes) else json.dumps(visit, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.post(f"{self.base}/v1/visits", content=body, headers=headers, timeout=10, **kw)

    def status(self, key: str, tid: str) -> dict:
        return httpx.get(f"{self.base}/v1/visits/{tid}",
                         headers={"Authorization": f"Bearer {key}"}, timeout=5).json()

    def wait_status(self, key: str, tid: str, status: str, timeout: float = 30) -> dict:
        return wait_until(lambda: (s := self.status(key, tid))["status"] == status and s,
                          timeout=timeout, what=f"visit {tid} {status}")


class Peer(HttpService):
    """The reference regional platform as a child process; can be stopped and restarted."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.fhir = f"{self.base}/fhir"
        self.log = tmp / f"peer-{self.port}.log"
        self.args = gateway_cmd("peers", "regional", "--port", str(self.port))
        self.health_url = f"{self.base}/healthz"

    def count(self, resource_type: str) -> int:
        return httpx.get(f"{self.fhir}/{resource_type}", params={"_summary": "count"},
                         timeout=5).json()["total"]

    def fault(self, **spec) -> None:
        httpx.post(f"{self.base}/_admin/faults", json=spec, timeout=5).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(f"{self.base}/_admin/stats", timeout=5).json()
