"""Golden files: tests/golden/canonical/<case>/input.json → expected.bundle.json.

A fixed clock and tracking id; JSON with sorted keys and 2-space indent. To rewrite the
expectations on purpose: ``UPDATE_GOLDEN=1 make test`` (then review the diff).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from gateway.convert import convert_envelope
from gateway.jsonio import dumps

CASES = sorted(p for p in (Path(__file__).parent / "golden" / "canonical").iterdir() if p.is_dir())
FIXED_CLOCK = datetime(2026, 3, 1, 2, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_bundle(case: Path):
    env = convert_envelope((case / "input.json").read_bytes(), tracking_id="golden",
                           received_at=FIXED_CLOCK)
    actual = dumps(env.bundle, pretty=True) + b"\n"
    expected_file = case / "expected.bundle.json"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_bytes(actual)
    assert expected_file.exists(), f"no {expected_file}; run with UPDATE_GOLDEN=1 and review it"
    assert orjson.loads(actual) == orjson.loads(expected_file.read_bytes())
    # rendering is deterministic: the same input gives the same bytes
    again = convert_envelope((case / "input.json").read_bytes(), tracking_id="golden",
                             received_at=FIXED_CLOCK)
    assert dumps(again.bundle, pretty=True) + b"\n" == actual
