"""Benchmarks: rendering + validation per core, and end-to-end HTTP ingest with durable
enqueue. Every figure is printed beside a baseline measured in the same run.

    make bench            (or: .venv/bin/python bench/run.py [--quick])

Baseline for rendering + validation: the naive way — build and validate the
``fhir.resources`` models field by field for each visit (every element constructed
through its model class), then serialise with the models. Baselines for ingest: the same
gateway taking submissions one at a time (``GATEWAY_INGEST_BATCH=1``: each visit its own
Redis round trips and fsync), and the same gateway as pure Python (``YIKATONG_COMPILE=0``:
the hot-path modules not compiled).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
import types
import typing
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cpu  # noqa: E402
from bench.loadgen import closed_loop, open_loop  # noqa: E402
from conformance.validator import validate_bundle  # noqa: E402
from gateway.children import wait_healthy  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.jsonio import dumps  # noqa: E402
from gateway.pipeline import Context, run  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.stages import identify, parse, render, translate  # noqa: E402
from gateway.synth import generate  # noqa: E402

ORG = "H11010100001"
CONNECTIONS = 64  # the maximum sustained rate: this many kept-alive connections, each
                  # sending its next visit as soon as the last one was answered


def _unwrap_optional(annotation: typing.Any) -> typing.Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


@functools.lru_cache(maxsize=None)
def _fields(model: type) -> dict[str, tuple[bool, int, typing.Any]]:
    """alias → (a list?, kind: 0 primitive / 1 data type / 2 resource, the model class)."""
    from fhir.resources.R4B import get_fhir_model_class

    out = {}
    for name, f in model.model_fields.items():
        annotation = _unwrap_optional(f.annotation)
        is_list = typing.get_origin(annotation) in (list, typing.List)
        if is_list:
            annotation = _unwrap_optional(typing.get_args(annotation)[0])
        kind, target = 0, None
        type_name = getattr(annotation, "__name__", "")
        if isinstance(annotation, type) and type_name.endswith("Type"):
            if type_name in ("ResourceType", "DomainResourceType"):
                kind = 2
            else:
                try:
                    kind, target = 1, get_fhir_model_class(type_name[:-4])
                except (KeyError, ValueError):
                    pass
        out[f.alias or name] = (is_list, kind, target)
    return out


def _construct(node: typing.Any, model: type) -> typing.Any:
    """Build a model instance element by element, bottom-up, as hand-written code would."""
    from fhir.resources.R4B import get_fhir_model_class

    kwargs = {}
    fields = _fields(model)
    by_alias = {(f.alias or n): n for n, f in model.model_fields.items()}
    for key, value in node.items():
        if key == "resourceType":
            continue
        is_list, kind, target = fields[key]
        def build(v):
            if kind == 0 or not isinstance(v, dict):
                return v
            m = target if kind == 1 else get_fhir_model_class(v["resourceType"])
            return _construct(v, m)
        kwargs[by_alias[key]] = [build(v) for v in value] if is_list else build(value)
    return model(**kwargs)


def naive(bundle: dict) -> bytes:
    from fhir.resources.R4B.bundle import Bundle

    return _construct(bundle, Bundle).model_dump_json(by_alias=True, exclude_none=True).encode()


def bench_render_validate(n: int) -> None:
    visits = [v.to_json() for v in generate(n, org=ORG, seed=101)]
    ctx = Context(settings=Settings())
    stages = (parse.run, identify.run, translate.run, render.run)

    def rendered():
        for raw in visits:
            env = Envelope(tracking_id="bench", received_at=datetime.now(timezone.utc), raw=raw)
            yield run(stages, env, ctx).bundle

    bundles = list(rendered())
    resources = sum(len(b["entry"]) for b in bundles)
    # warm both paths on a few visits (imports, first shapes), then measure on all
    for b in bundles[:20]:
        naive(b)
        validate_bundle(b)
    t0 = time.perf_counter()
    for b in bundles[: n // 4]:
        naive(b)
    t_naive = (time.perf_counter() - t0) / (n // 4)
    t0 = time.perf_counter()
    for b in rendered():
        assert not [i for i in validate_bundle(b) if i["severity"] == "error"]
        dumps(b)
    t_ours = (time.perf_counter() - t0) / n
    per = resources / n
    print(f"\n== render + validate, one core ({n} synthetic visits, {per:.1f} resources each)")
    print(f"  naive (fhir.resources models, field by field): {1 / t_naive:8.0f} visits/s "
          f"{per / t_naive:9.0f} resources/s  ({t_naive * 1000:.2f} ms/visit)")
    print(f"  gateway (parse→render→validate→serialise):     {1 / t_ours:8.0f} visits/s "
          f"{per / t_ours:9.0f} resources/s  ({t_ours * 1000:.2f} ms/visit)")
    print(f"  ratio: {t_naive / t_ours:.1f}x the naive baseline")


def _start(cmd, env, log):
    import subprocess

    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


class _Drain:
    """Trims the delivery streams while the load runs, as delivery does in service (entries
    are deleted once delivered); without it the queue grows for the whole run and Redis
    spends the benchmark rewriting an ever larger append-only file."""

    def __init__(self, r, dest: str = "regional", shards: int = 8):
        import threading

        self.r, self.keys = r, [f"gw:q:{dest}:{s}" for s in range(shards)]
        self.stop = threading.Event()
        self.trimmed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            pipe = self.r.pipeline(transaction=False)
            for key in self.keys:
                pipe.xtrim(key, maxlen=0)
            self.trimmed += sum(pipe.execute())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _load(label: str, port: int, key: str, bodies: list[bytes], rate: float, seconds: float,
          fixed_rates: bool, pids: dict[str, list[int]]):
    warm = asyncio.run(closed_loop("127.0.0.1", port, "/v1/visits", key, bodies[:300], 16))
    assert warm.ok == warm.sent, warm.errors
    before = {name: cpu.seconds(p) for name, p in pids.items()}
    res = asyncio.run(closed_loop("127.0.0.1", port, "/v1/visits", key, bodies[300:], CONNECTIONS,
                                  max_seconds=25))
    used = {name: (cpu.seconds(p) - before[name]) * 1000 / max(res.ok, 1)
            for name, p in pids.items()}
    print(f"  {label:28s} max sustained {res.rate:7.0f} visits/s ({CONNECTIONS} connections)  "
          f"p50 {res.pct(0.5):6.1f} ms  p99 {res.pct(0.99):6.1f} ms  "
          f"({res.ok} accepted, errors {res.errors or 'none'})")
    print(f"  {'':28s} CPU per visit: " + ", ".join(f"{n} {ms:.2f} ms" for n, ms in used.items()))
    for fixed_rate in (rate / 2, rate) if fixed_rates else ():
        fixed = asyncio.run(open_loop("127.0.0.1", port, "/v1/visits", key, bodies,
                                      fixed_rate, seconds))
        print(f"  {label:28s} offered {fixed_rate:4.0f} visits/s for {seconds:.0f} s: "
              f"p50 {fixed.pct(0.5):6.1f} ms  p99 {fixed.pct(0.99):6.1f} ms  "
              f"({fixed.ok}/{fixed.sent} accepted)")
    return res


def bench_ingest(n: int, processes: int, rate: float, seconds: float) -> None:
    import redis

    from gateway.apikeys import KeyStore
    from tests.support import RedisServer, free_port

    bodies = [v.to_json() for v in generate(n, org=ORG, seed=202)]
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        r = redis.Redis.from_url(server.url)
        r.config_set("appendfsync", "always")  # durable: each 202 is on disk
        print(f"\n== HTTP ingest with durable enqueue (redis AOF appendfsync=always, "
              f"{processes} API processes, delivery workers off)")
        results = {}
        queued = 0
        variants = (("gateway", {}),
                    ("baseline: one at a time", {"GATEWAY_INGEST_BATCH": "1"}),
                    ("baseline: pure Python", {"YIKATONG_COMPILE": "0"}))
        for label, extra in variants:
            # each from an empty Redis: every variant meets its patients for the first time
            # (a returning patient costs the index less, which would favour the later ones)
            r.flushall()
            key = KeyStore(r).create(ORG, "bench")
            port = free_port()
            log = open(Path(tmp) / f"gw-{port}.log", "wb")  # noqa: SIM115
            proc = _start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                           "--processes", str(processes)],
                          {"GATEWAY_REDIS_URL": server.url, "GATEWAY_DATA_DIR": tmp,
                           "GATEWAY_WORKERS": "false", "GATEWAY_LOG_LEVEL": "WARNING",
                           "GATEWAY_REGIONAL_FHIR_URL": "http://127.0.0.1:9/fhir", **extra}, log)
            try:
                wait_healthy(f"http://127.0.0.1:{port}/readyz", proc, "gateway")
                pids = {"gateway": cpu.tree(proc.pid), "redis": [server.proc.pid],
                        "load generator": [os.getpid()]}
                with _Drain(r) as drain:
                    results[label] = _load(label, port, key, bodies, rate, seconds,
                                           fixed_rates=not extra, pids=pids)
                queued += drain.trimmed + sum(r.xlen(k) for k in drain.keys)
            finally:
                proc.terminate()
                proc.wait(20)
                log.close()
        a = results["gateway"]
        for label, _extra in variants[1:]:
            print(f"  ratio: {a.rate / results[label].rate:.1f}x the throughput of {label[10:]}")
        print(f"  durably queued entries: {queued} (the queue drained while loading, as delivery does)")
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller counts (CI smoke)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", choices=("render", "ingest"), help="run one part")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    if args.only != "ingest":
        bench_render_validate(200 if args.quick else 2000)
    if args.only != "render":
        bench_ingest(1500 if args.quick else 8000, args.processes,
                 rate=200 if args.quick else 500, seconds=3 if args.quick else 10)


if __name__ == "__main__":
    main()
