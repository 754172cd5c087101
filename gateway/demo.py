"""`gateway demo`: gateway + reference peer + synthetic hospitals, end to end, in a temp dir."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import redis
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gateway import store
from gateway.apikeys import KeyStore
from gateway.children import free_port, spawn, wait_healthy
from gateway.redis_embedded import EmbeddedRedis
from gateway.synth import generate, hospitals

console = Console()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _submit_all(base: str, items: list[tuple[str, bytes]], concurrency: int, progress, task):
    accepted: list[str] = []
    rejected: list[int] = []
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        async def one(key: str, body: bytes) -> None:
            async with sem:
                t0 = time.perf_counter()
                resp = await client.post("/v1/visits", content=body, headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                if resp.status_code == 202:
                    accepted.append(resp.json()["tracking_id"])
                else:
                    rejected.append(resp.status_code)
                progress.advance(task)
        await asyncio.gather(*(one(k, b) for k, b in items))
    return accepted, rejected, latencies


def run_demo(*, visits: int, orgs: int, seed: int, concurrency: int, invalid: int,
             timeout: float) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-demo-") as tmp:
        embedded = EmbeddedRedis(Path(tmp))
        url = embedded.start()
        peer_port, gw_port = free_port(), free_port()
        env = {**os.environ, "GATEWAY_REDIS_URL": url, "GATEWAY_DATA_DIR": tmp,
               "GATEWAY_REGIONAL_FHIR_URL": f"http://127.0.0.1:{peer_port}/fhir",
               "GATEWAY_LOG_LEVEL": "WARNING"}
        log = open(Path(tmp) / "demo.log", "ab")  # noqa: SIM115
        peer = spawn([sys.executable, "-m", "gateway", "peers", "regional", "--port",
                      str(peer_port)], stdout=log, stderr=log)
        gw = spawn([sys.executable, "-m", "gateway", "serve", "--port", str(gw_port)],
                   env=env, stdout=log, stderr=log)
        try:
            wait_healthy(f"http://127.0.0.1:{peer_port}/healthz", peer, "reference peer")
            wait_healthy(f"http://127.0.0.1:{gw_port}/readyz", gw, "gateway")
            r = redis.Redis.from_url(url)
            keys = {code: KeyStore(r).create(code, name) for code, name in hospitals(orgs, seed)}
            items = [(keys[v.org.code], v.to_json())
                     for v in generate(visits, seed=seed, orgs=orgs)]
            for i in range(invalid):  # a broken citizen ID check digit
                key, body = items[i % len(items)]
                items.append((key, body.replace(b'"citizen_id","value":"', b'"citizen_id","value":"X', 1)))
            console.print(f"[bold]一卡通 gateway demo[/]: {len(keys)} hospitals, {visits} visits"
                          f"{f' + {invalid} invalid' if invalid else ''}, concurrency {concurrency}")
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                submit = progress.add_task("submitting", total=len(items))
                t0 = time.perf_counter()
                accepted, rejected, latencies = asyncio.run(_submit_all(
                    f"http://127.0.0.1:{gw_port}", items, concurrency, progress, submit))
                submit_s = time.perf_counter() - t0
                deliver = progress.add_task("delivering", total=len(accepted))
                pending = set(accepted)
                final: dict[str, dict] = {}
                deadline = time.monotonic() + timeout
                while pending and time.monotonic() < deadline:
                    for tid in list(pending):
                        view = store.read_visit(r, tid)
                        if view and view["status"] in ("delivered", "failed", "dead-lettered"):
                            final[tid] = view
                            pending.discard(tid)
                            progress.advance(deliver)
                    if pending:
                        time.sleep(0.2)
                total_s = time.perf_counter() - t0
            delivered = [v for v in final.values() if v["status"] == "delivered"]
            delivery_lat = [
                (datetime.fromisoformat(v["receipts"]["regional"]["at"])
                 - datetime.fromisoformat(v["received_at"])).total_seconds() for v in delivered]
            table = Table(title="results")
            table.add_column("measure")
            table.add_column("value", justify="right")
            table.add_row("submitted", str(len(items)))
            table.add_row("accepted (202)", str(len(accepted)))
            table.add_row("rejected (4xx)", str(len(rejected)))
            table.add_row("delivered", str(len(delivered)))
            table.add_row("failed / dead-lettered", str(len(final) - len(delivered)))
            table.add_row("still queued", str(len(pending)))
            table.add_row("ingest rate", f"{len(items) / submit_s:.0f} visits/s")
            for q in (0.5, 0.95, 0.99):
                table.add_row(f"ingest latency p{int(q * 100)}", f"{_pct(latencies, q) * 1000:.1f} ms")
            table.add_row("delivery latency p50", f"{_pct(delivery_lat, 0.5) * 1000:.0f} ms")
            table.add_row("delivery latency p99", f"{_pct(delivery_lat, 0.99) * 1000:.0f} ms")
            table.add_row("end to end", f"{total_s:.1f} s")
            console.print(table)
            ok = len(delivered) == len(accepted) and len(accepted) > 0
            console.print("[green]every accepted visit was delivered[/]" if ok
                          else "[red]not every accepted visit was delivered[/]")
            if delivery_lat:
                console.print(f"mean delivery latency {statistics.mean(delivery_lat) * 1000:.0f} ms")
            return 0 if ok else 1
        finally:
            for proc in (gw, peer):
                proc.terminate()
            for proc in (gw, peer):
                try:
                    proc.wait(15)
                except Exception:  # noqa: BLE001
                    proc.kill()
            embedded.stop()
            log.close()
