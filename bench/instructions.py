"""Instructions per HL7 v2 message: what the MLLP path costs, counted, not timed.

    .venv/bin/python bench/instructions.py [--messages N] [--redis]

On a shared machine whose speed swings twofold within minutes, a timed figure cannot tell
a 5% change from noise; the number of instructions a message costs can. The listener's
handler (header, the pipeline in batches of five, the durable commit, the ACK) runs on
``--messages`` messages after 300 warm ones, in a process under valgrind's cachegrind
(deterministic: the same code and messages give the same count, to a few parts in ten
thousand); a run with no measured messages is subtracted, so start-up and warm-up do not
count. ``--redis`` counts the Redis server's instructions per message as well (it runs
under cachegrind instead). Sockets and the event loop's own MLLP reading are not included;
the client is not counted. Needs valgrind (``apt-get install valgrind``).

``--stages`` says where they go: the same two runs under callgrind, and each pipeline
stage's instructions per message (inclusive: what its compiled entry point and everything
it calls ran), a few parts of them, and the rest (the batcher, the Redis client, the
event loop). Needs the compiled build (``make compile``): the stages are found by the
names Cython gives their C functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORG = "H11010100001"


def run_handler(n: int, source: Path) -> None:
    """The measured process: 300 warm messages, then ``n`` more (batches of five)."""
    import asyncio
    import pickle

    import redis
    import uvloop

    sys.path.insert(0, str(ROOT))
    from gateway import redis_async, warmup
    from gateway.apikeys import KeyStore
    from gateway.batcher import Batcher
    from gateway.hl7.listener import V2Listener
    from gateway.hl7.mllp import Peer
    from gateway.identity.card_status import CardStatusStore
    from gateway.identity.empi import Empi
    from gateway.orgs import OrgRegistry
    from gateway.pipeline import Context
    from gateway.settings import Settings
    from terminology.local_maps import LocalMaps
    from tests.support import RedisServer

    msgs = pickle.loads(source.read_bytes())
    with tempfile.TemporaryDirectory(prefix="gateway-bench-instr-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            r = redis.Redis.from_url(server.url)
            OrgRegistry(r).register(ORG, "bench")
            settings = Settings(regional_fhir_url="http://127.0.0.1:9/fhir", redis_url=server.url)
            ctx = Context(settings=settings, redis=r, keys=KeyStore(r), orgs=OrgRegistry(r),
                          empi=Empi(r), card_status=CardStatusStore(r), local_maps=LocalMaps(r),
                          aredis=redis_async.unretried(server.url))
            warmup.prepare()

            async def main() -> None:
                listener = V2Listener(ctx, redis_async.client(server.url), host="127.0.0.1",
                                      port=0, batcher=Batcher(ctx))
                peer = Peer("127.0.0.1", 1, 1)
                todo = msgs[:300 + n]
                for i in range(0, len(todo), 5):
                    acks = await asyncio.gather(*(listener.handle(m, peer) for m in todo[i:i + 5]))
                    bad = [a for a in acks if b"MSA|AA" not in a]
                    if bad:
                        raise SystemExit(f"not accepted: {bad[0][:300]!r}")

            uvloop.run(main())
        finally:
            server.stop()


def _cachegrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]


def _callgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]


# (label, the C function names that count for it): Cython names a def's wrapper
# __pyx_pw_<len>module_<len>name and a coroutine's body __pyx_gb_...generator<n>
STAGES = (
    ("header (ingest_v2.header)", r"__pyx_pw_\d+gateway_\d+stages_\d+ingest_v2_\d+header"),
    ("parse (parse_v2.run)", r"__pyx_pw_\d+gateway_\d+stages_\d+parse_v2_\d+run"),
    ("  of which map_message", r"__pyx_pw_\d+adapters_\d+hl7v2_\d+engine_\d+map_message"),
    ("identify (run_many)", r"__pyx_gb_\d+gateway_\d+stages_\d+identify_\d+generator"),
    ("translate", r"__pyx_pw_\d+gateway_\d+stages_\d+translate_\d+run"),
    ("render", r"__pyx_pw_\d+gateway_\d+stages_\d+render_\d+run"),
    ("validate", r"__pyx_pw_\d+gateway_\d+stages_\d+validate_\d+run"),
    ("route", r"__pyx_pw_\d+gateway_\d+stages_\d+route_\d+run"),
    ("  of which Zstandard", r"ZstdCompressor_compress"),
    ("commit (commit_many_async)", r"__pyx_gb_\d+gateway_\d+store_\d+generator"),
    ("ACK (build_ack)", r"__pyx_pw_\d+gateway_\d+hl7_\d+ack_\d+build_ack"),
)


def _inclusive(out: Path) -> dict[str, int]:
    """Inclusive instructions by function name, from ``callgrind_annotate``."""
    import re

    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                          check=True, capture_output=True, text=True).stdout
    found: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?!=>)(\S.*?)(?: \[.*\])?$", line)
        if m:
            name = m.group(2).rsplit(":", 1)[-1]
            found[name] = max(found.get(name, 0), int(m.group(1).replace(",", "")))
    return found


def stages(n: int, source: Path) -> list[tuple[str, float]]:
    """Instructions per message by stage (``STAGES``), and the total."""
    import re

    runs = []
    with tempfile.TemporaryDirectory(prefix="gateway-bench-cg-") as tmp:
        for k in (0, n):
            out = Path(tmp) / f"callgrind.{k}"
            subprocess.run(_callgrind(out) + [sys.executable, __file__, "--child", str(k),
                                              "--source", str(source)],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            runs.append((_total(out, "totals:"), _inclusive(out)))
    (base, before), (full, after) = runs
    rows = []
    for label, pattern in STAGES:
        rx = re.compile(pattern + "$")
        names = {name for name in after if rx.search(name)}
        rows.append((label, sum(after[x] - before.get(x, 0) for x in names) / n))
    rows.append(("total", (full - base) / n))
    return rows


def _total(out: Path, head: str = "summary:") -> int:
    for line in out.read_text().splitlines():
        if line.startswith(head):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {out}")


def count(n: int, source: Path, redis_too: bool) -> int:
    """Instructions of the handler process (of Redis with ``redis_too``) for ``n``
    measured messages."""
    with tempfile.TemporaryDirectory(prefix="gateway-bench-cg-") as tmp:
        tmp_path = Path(tmp)
        env = dict(os.environ)
        command = [sys.executable, __file__, "--child", str(n), "--source", str(source)]
        if redis_too:  # redis-server found first on PATH is the one under cachegrind
            shim = tmp_path / "bin" / "redis-server"
            shim.parent.mkdir()
            shim.write_text("#!/bin/sh\nexec " + " ".join(_cachegrind(tmp_path / "redis.out"))
                            + f" {shutil.which('redis-server')} \"$@\"\n")
            shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
            env["PATH"] = f"{shim.parent}:{env['PATH']}"
        else:
            command = _cachegrind(tmp_path / "gateway.out") + command
        subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return _total(tmp_path / ("redis.out" if redis_too else "gateway.out"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--redis", action="store_true", help="count Redis's instructions as well")
    ap.add_argument("--stages", action="store_true", help="and where they go, stage by stage")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        run_handler(args.child, args.source)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    import pickle

    sys.path.insert(0, str(ROOT))
    from bench.hl7v2 import messages

    n = args.messages
    msgs = messages(60 + (300 + n) // 2, seed=11)[:300 + n]  # about 2.3 messages per visit
    if len(msgs) < 300 + n:
        raise SystemExit("too few messages generated")
    with tempfile.NamedTemporaryFile(prefix="gateway-bench-msgs-", suffix=".pkl") as f:
        f.write(pickle.dumps(msgs))
        f.flush()
        source = Path(f.name)
        if args.stages:
            rows = stages(n, source)
            print(f"\n== Instructions per HL7 v2 message by stage (callgrind, inclusive; {n} "
                  "messages after 300)")
            staged = sum(v for label, v in rows[:-1] if not label.startswith(" "))
            for label, v in rows + [("the rest (batcher, Redis client, event loop)",
                                     rows[-1][1] - staged)]:
                print(f"  {label:46s} {v / 1e3:8.1f} k  {100 * v / rows[-1][1]:5.1f}%")
            return
        base, full = count(0, source, False), count(n, source, False)
        if args.redis:
            rbase, rfull = count(0, source, True), count(n, source, True)
    print(f"\n== Instructions per HL7 v2 message (listener handler, {n} messages after 300; "
          "ADT^A04 / DFT^P03 / ORU^R01)")
    print(f"  gateway process: {(full - base) / n / 1e6:.3f} M instructions per message")
    if args.redis:
        print(f"  redis-server:    {(rfull - rbase) / n / 1e6:.3f} M instructions per message")


if __name__ == "__main__":
    main()
