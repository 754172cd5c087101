"""Master patient index benchmark on a real redis-server: identifier lookups (one at a
time and pipelined) and resolve-or-create under concurrent writers.

    .venv/bin/python bench/empi.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from gateway.identity.empi import Empi  # noqa: E402
from gateway.synth import generate  # noqa: E402
from tests.support import RedisServer  # noqa: E402


def _ids(visit):
    from gateway.stages.identify import _identifiers

    return [x[:3] for x in _identifiers(visit.patient.cards, visit.org.code, "cards")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 500 if args.quick else 4000
    people = [_ids(v) for v in generate(n, seed=5, orgs=4)]
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "r").start()
        r = redis.Redis.from_url(server.url)
        r.config_set("appendfsync", "everysec")
        empi = Empi(r)
        print(f"machine: {os.cpu_count()} cores; redis on loopback")

        # resolve-or-create, 4 concurrent writers over the same people
        lat: list[float] = []

        def writer(chunk):
            e = Empi(redis.Redis.from_url(server.url))
            for ids in chunk:
                t0 = time.perf_counter()
                e.resolve(ids, who="bench")
                lat.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=writer, args=(people[i::4],)) for i in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.perf_counter() - t0
        lat.sort()
        print(f"\n== resolve-or-create, 4 concurrent writers: {len(lat) / secs:8.0f} /s   "
              f"p50 {lat[len(lat) // 2] * 1e3:.2f} ms  p99 {lat[int(len(lat) * .99)] * 1e3:.2f} ms")

        pairs = [(s, v) for ids in people for _t, s, v in ids]
        # one at a time (baseline)
        lat = []
        t0 = time.perf_counter()
        for s, v in pairs[:5000]:
            t1 = time.perf_counter()
            empi.lookup(s, v)
            lat.append(time.perf_counter() - t1)
        single = len(lat) / (time.perf_counter() - t0)
        lat.sort()
        print(f"== identifier lookups, one at a time:   {single:8.0f} /s   "
              f"p50 {lat[len(lat) // 2] * 1e3:.3f} ms  p99 {lat[int(len(lat) * .99)] * 1e3:.3f} ms")
        # pipelined, batches of 100
        lat = []
        t0 = time.perf_counter()
        done = 0
        for i in range(0, len(pairs), 100):
            batch = pairs[i:i + 100]
            t1 = time.perf_counter()
            empi.lookup_many(batch)
            lat.append(time.perf_counter() - t1)
            done += len(batch)
        piped = done / (time.perf_counter() - t0)
        lat.sort()
        print(f"== identifier lookups, pipelined ×100:  {piped:8.0f} /s   "
              f"batch p50 {lat[len(lat) // 2] * 1e3:.3f} ms  p99 {lat[int(len(lat) * .99)] * 1e3:.3f} ms")
        print(f"   ratio: {piped / single:.1f}x one at a time")
        server.stop()


if __name__ == "__main__":
    main()
