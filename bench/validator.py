"""Benchmark: the profile validator on realistic visit Bundles, beside the fhir.resources
models on the same resources in the same run.

    make bench            (or: .venv/bin/python bench/validator.py [--visits N])

Prints resources/s with full profile checks (structure, cardinality, types, slices,
fixed/pattern values, bindings, invariants, references) on one core, and with the error
checks only (what the pipeline's validate stage runs); resources/s of
``model_validate`` with the fhir.resources R4B models (structure and primitive formats
only) as the baseline; the cold start (imports + load + first validation) in a fresh
subprocess; and resident memory after validating every Bundle.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLOCK = datetime(2026, 6, 1, tzinfo=timezone.utc)

_COLD = """
import time, sys, resource, json
t0 = time.perf_counter()
from conformance.validator import VISIT_BUNDLE, Validator
v = Validator()
t1 = time.perf_counter()
lines = open(sys.argv[1], encoding="utf-8")
first = json.loads(next(lines))
t2 = time.perf_counter()
errors = [i for i in v.validate(first, VISIT_BUNDLE) if i["severity"] == "error"]
t3 = time.perf_counter()
assert not errors, errors
for line in lines:  # one Bundle in memory at a time: the figure is the validator's
    v.validate(json.loads(line), VISIT_BUNDLE)
try:  # this process's own peak (ru_maxrss would count the parent's, from before exec)
    rss = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load": t1 - t0, "first": t3 - t2, "cold": (t1 - t0) + (t3 - t2), "rss_mb": rss}))
"""


def visit_bundles(n: int) -> list[dict]:
    """``n`` synthetic visits rendered and serialised as they go on the wire."""
    from gateway.convert import convert_envelope
    from gateway.jsonio import dumps
    from gateway.synth import generate

    out = []
    for visit in generate(n, seed=7, orgs=5):
        bundle = convert_envelope(visit.to_json(), tracking_id="bench", received_at=CLOCK).bundle
        out.append(json.loads(dumps(bundle)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--visits", type=int, default=400)
    args = ap.parse_args()

    from fhir.resources.R4B import get_fhir_model_class

    from conformance.validator import VISIT_BUNDLE, validator

    bundles = visit_bundles(args.visits + 40)
    # warm-up (imports, first shapes, compiled checkers) on Bundles of their own: the
    # figures are for Bundles the validator has not seen (its memo only knows values that
    # recur: a hospital's codes, its organisation and doctors)
    warm, bundles = bundles[:40], bundles[40:]
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    n = len(resources)

    def timed(v) -> float:
        for b in warm:
            v.validate(b, VISIT_BUNDLE)
        t0 = time.perf_counter()
        errors = 0
        for b in bundles:
            errors += sum(i["severity"] == "error" for i in v.validate(b, VISIT_BUNDLE))
        assert errors == 0, f"{errors} errors on rendered visits"
        return time.perf_counter() - t0

    t_full = timed(validator())
    t_pipeline = timed(validator(warnings=False))  # the validate stage: error checks only
    t_nomemo = timed(validator(memo=False))  # every value checked in full, seen or not

    models = {r["resourceType"]: get_fhir_model_class(r["resourceType"]) for r in resources}
    for r in resources[:200]:
        models[r["resourceType"]].model_validate(r)
    t0 = time.perf_counter()
    for r in resources:
        models[r["resourceType"]].model_validate(r)
    t_models = time.perf_counter() - t0

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for b in bundles:
            f.write(json.dumps(b, ensure_ascii=False) + "\n")
    cold = json.loads(subprocess.run([sys.executable, "-c", _COLD, f.name], cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout)
    Path(f.name).unlink()

    from gateway.compiled import compiled_modules

    print(f"\n== profile validator ({len(bundles)} visit Bundles, {n} resources, one core; "
          f"{'compiled' if compiled_modules() else 'pure Python'})")
    print(f"  full profile checks:               {n / t_full:9.0f} resources/s "
          f"({t_full / len(bundles) * 1000:.2f} ms/Bundle)")
    print(f"  the same, errors only (pipeline):   {n / t_pipeline:9.0f} resources/s")
    print(f"  full checks, memo off:              {n / t_nomemo:9.0f} resources/s")
    print(f"  fhir.resources model_validate:     {n / t_models:9.0f} resources/s  (baseline)")
    print(f"  ratio: {t_models / t_full:.1f}x the baseline")
    print(f"  cold start (fresh process): {cold['cold'] * 1000:.0f} ms = imports + load "
          f"{cold['load'] * 1000:.0f} ms + first validation {cold['first'] * 1000:.0f} ms")
    print(f"  resident memory (peak) after validating every Bundle: {cold['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
