"""Starting the gateway: embedded Redis (or the configured one), optional reference peers,
the API with its delivery workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys

import redis
import uvicorn

from gateway.apikeys import KeyStore
from gateway.children import spawn, wait_healthy
from gateway.logging import configure, get_logger
from gateway.redis_embedded import EmbeddedRedis
from gateway.settings import Settings

log = get_logger(__name__)

DEMO_ORG_NAME = "一卡通演示医院"


def _start_peer(port: int) -> subprocess.Popen:
    proc = spawn([sys.executable, "-m", "gateway", "peers", "regional", "--port", str(port)])
    wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, "the reference regional peer", 30)
    return proc


def _start_insurance_peer(port: int, redis_url: str) -> tuple[subprocess.Popen, str]:
    """The reference insurance center on ``port`` (another free one when taken), same Redis."""
    import socket

    from gateway.children import free_port

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()
    proc = spawn([sys.executable, "-m", "gateway", "peers", "insurance", "--port", str(port),
                  "--redis-url", redis_url])
    wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, "the reference insurance center", 30)
    return proc, f"http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService"


def _demo_key(settings: Settings, url: str, org: str) -> str:
    """The demo hospital's key, created once and kept in the data dir."""
    path = settings.data_dir / f"demo-key-{org}.txt"
    store = KeyStore(redis.Redis.from_url(url))
    _demo_fee_map(url, org)
    if path.exists():
        key = path.read_text().strip()
        if store.lookup(key):
            return key
    key = store.create(org, DEMO_ORG_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _demo_fee_map(url: str, org: str) -> None:
    """The demo hospital's fee items mapped to national list codes, so its synthetic visits
    can be settled with the reference insurance center."""
    from gateway.synth_data import demo_fee_item_map
    from terminology.local_maps import LocalMaps

    maps = LocalMaps(redis.Redis.from_url(url))
    if maps.get(org, "fee-item") is None:
        maps.import_csv(org, "fee-item", demo_fee_item_map(), who="demo")


@contextlib.contextmanager
def _redis(settings: Settings):
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.data_dir)
    url = embedded.start()
    embedded.supervise()
    try:
        yield url
    finally:
        embedded.stop()


def serve(settings: Settings, *, with_peers: bool = False, peer_port: int = 8090,
          demo_org: str | None = None) -> None:
    configure(settings.log_level, settings.log_json)
    peer = insurer = None
    with _redis(settings) as url:
        try:
            if with_peers:
                peer = _start_peer(peer_port)
                settings = settings.model_copy(
                    update={"regional_fhir_url": f"http://127.0.0.1:{peer_port}/fhir"})
                insurer, insurance_url = _start_insurance_peer(peer_port + 1, url)
                settings = settings.model_copy(update={"insurance_url": insurance_url})
            base = f"http://{settings.host}:{settings.port}"
            print(f"gateway API       {base}/v1/visits   docs: {base}/docs", flush=True)
            print(f"redis             {url}", flush=True)
            if settings.mllp_port is not None:
                print(f"HL7 v2 (MLLP)     {settings.host}:{settings.mllp_port}", flush=True)
            if settings.regional_fhir_url:
                print(f"regional platform {settings.regional_fhir_url}", flush=True)
            if settings.insurance_url:
                print(f"insurance center  {settings.insurance_url}", flush=True)
            if demo_org:
                key = _demo_key(settings, url, demo_org)
                print(f"demo hospital     {demo_org} ({DEMO_ORG_NAME})  key: {key}", flush=True)
                print(f"  try: gateway synth -n 1 --org {demo_org} | head -1 | curl -s -X POST "
                      f"{base}/v1/visits -H 'Authorization: Bearer {key}' "
                      f"-H 'Content-Type: application/json' --data-binary @-", flush=True)
            # Worker processes build the app from the environment (gateway.api.app:from_env).
            os.environ["GATEWAY_REDIS_URL"] = url
            if settings.regional_fhir_url:
                os.environ["GATEWAY_REGIONAL_FHIR_URL"] = settings.regional_fhir_url
            if settings.insurance_url:
                os.environ["GATEWAY_INSURANCE_URL"] = settings.insurance_url
            for name in ("host", "port", "processes", "mllp_port"):
                value = getattr(settings, name)
                if value is not None:
                    os.environ[f"GATEWAY_{name.upper()}"] = str(value)
            if settings.processes > 1:
                _prepare_multiprocess_metrics(settings)
            uvicorn.run("gateway.api.app:from_env", factory=True, host=settings.host,
                        port=settings.port, workers=settings.processes,
                        log_level="warning", access_log=False)
        finally:
            for child in (peer, insurer):
                if child is not None:
                    child.terminate()
                    child.wait(10)


def _prepare_multiprocess_metrics(settings: Settings) -> None:
    """Several processes share one /metrics through prometheus-client's multiprocess mode."""
    directory = (settings.data_dir / "prometheus").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def run_workers(settings: Settings) -> None:
    """Delivery workers without the API."""
    from gateway.delivery.worker import Workers

    configure(settings.log_level, settings.log_json)

    async def main(url: str) -> None:
        workers = Workers(settings, url)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, workers.stop.set)
        workers.start()
        await workers.stop.wait()
        await workers.close()

    with _redis(settings) as url:
        asyncio.run(main(url))
