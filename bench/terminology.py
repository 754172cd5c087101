"""Terminology benchmark: in-process translations per second (national maps and a
hospital's cached map) and what the translate stage adds to a visit, against the render +
validate time measured in the same run.

    .venv/bin/python bench/terminology.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from gateway.envelope import Envelope  # noqa: E402
from gateway.pipeline import Context, run  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.stages import identify, parse, render, translate, validate  # noqa: E402
from gateway.synth import generate  # noqa: E402
from terminology.local_maps import LocalMaps  # noqa: E402
from terminology.translate import GBT_2261_1, V2_0001  # noqa: E402
from terminology.translate import translate as national  # noqa: E402
from tests.support import RedisServer  # noqa: E402

ORG = "H11010100001"


def main() -> None:
    n = 1_000_000
    t0 = time.perf_counter()
    for i in range(n):
        national(V2_0001, "M" if i & 1 else "F", GBT_2261_1)
    rate_national = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "r").start()
        r = redis.Redis.from_url(server.url)
        maps = LocalMaps(r)
        visits = list(generate(500, org=ORG, seed=3))
        items = sorted({(f.item_code) for v in visits for f in v.fees})
        csv = "source_code,target_code\n" + "".join(f"{c},N{c}\n" for c in items)
        maps.import_csv(ORG, "fee-item", csv)
        drugs = sorted({d.code for v in visits for d in v.drugs})
        maps.import_csv(ORG, "drug", "source_code,target_code\n" + "".join(f"{c},N{c}\n" for c in drugs))
        system = f"https://yikatong.org/fhir/sid/org/{ORG}/fee-item"
        maps.translate(ORG, "fee-item", system, items[0])  # warm the cache
        t0 = time.perf_counter()
        for i in range(n):
            maps.translate(ORG, "fee-item", system, items[i % len(items)])
        rate_local = n / (time.perf_counter() - t0)

        ctx = Context(settings=Settings(), local_maps=maps)
        raws = [v.to_json() for v in visits]
        stage_t = {"translate": 0.0, "render+validate": 0.0}
        for raw in raws:
            env = Envelope(tracking_id="b", received_at=datetime.now(timezone.utc), raw=raw)
            env = run((parse.run, identify.run), env, ctx)
            t0 = time.perf_counter()
            env = translate.run(env, ctx)
            stage_t["translate"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            env = run((render.run, validate.run), env, ctx)
            stage_t["render+validate"] += time.perf_counter() - t0
        server.stop()
    share = stage_t["translate"] / stage_t["render+validate"] * 100
    print("== translations, in process, one core")
    print(f"  national map (v2 0001 → GB/T 2261.1): {rate_national:12,.0f} /s")
    print(f"  hospital map, cached (fee item → NHSA): {rate_local:10,.0f} /s")
    print("== translate stage per visit (500 synthetic visits, with fee-item and drug maps)")
    print(f"  translate {stage_t['translate'] / len(raws) * 1e6:.0f} µs vs render+validate "
          f"{stage_t['render+validate'] / len(raws) * 1e6:.0f} µs → {share:.1f}% of it")


if __name__ == "__main__":
    main()
