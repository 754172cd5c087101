"""Golden files for HL7 v2: tests/golden/hl7v2/<case>/

    about.md              what the case exercises (the annotated input)
    input.hl7             the message, in its own character set
    expected.visit.json   the canonical visit it maps to (expected.merge.json for ADT^A40)
    expected.bundle.json  the FHIR Bundle it renders to
    unread.txt            the non-empty input fields no mapping rule read

``UPDATE_GOLDEN=1 make test`` rewrites the expectations (review the diff).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gateway.convert import convert_envelope
from gateway.jsonio import dumps
from gateway.orgs import Org
from gateway.visit import OutpatientVisit

CASES = sorted(p for p in (Path(__file__).parent / "golden" / "hl7v2").iterdir() if p.is_dir())
CLOCK = datetime(2026, 3, 1, 2, 0, 0, tzinfo=timezone.utc)
ORG = Org("H11010101", "北京市东城区第一人民医院")


def _check(path: Path, actual: bytes) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(actual)
    assert path.exists(), f"no {path}; run with UPDATE_GOLDEN=1 and review it"
    assert actual.decode() == path.read_text(encoding="utf-8"), f"{path} differs"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_hl7v2(case: Path):
    assert (case / "about.md").exists()
    env = convert_envelope((case / "input.hl7").read_bytes(), tracking_id="golden",
                           received_at=CLOCK, org=ORG)
    _check(case / "unread.txt", ("\n".join(env.unread) + "\n").encode())
    if env.event == "merge":
        _check(case / "expected.merge.json", dumps(env.merge, pretty=True) + b"\n")
        return
    visit_json = env.visit.to_json(pretty=True) + b"\n"
    _check(case / "expected.visit.json", visit_json)
    # the JSON the message mapped to, kept for settlement: read back, the same visit, every
    # decimal digit kept (5.60 stays 5.60)
    back = OutpatientVisit.model_validate_json(env.visit_json)
    assert back == env.visit and back.to_json() == env.visit.to_json()
    _check(case / "expected.bundle.json", dumps(env.bundle, pretty=True) + b"\n")


def test_v2_and_json_senders_get_the_same_fhir():
    """The canonical visit a v2 message maps to, sent as JSON, renders the same Bundle."""
    for case in CASES:
        raw = (case / "input.hl7").read_bytes()
        v2 = convert_envelope(raw, tracking_id="same", received_at=CLOCK, org=ORG)
        if v2.visit is None:
            continue
        as_json = convert_envelope(v2.visit.to_json(), tracking_id="same",
                                   received_at=CLOCK)
        strip = lambda b: [e for e in b["entry"] if e["resource"]["resourceType"] != "Provenance"]  # noqa: E731
        v2_entries, json_entries = strip(v2.bundle), strip(as_json.bundle)
        if v2.event == "update":  # ADT^A08 updates the Patient instead of creating it
            for e in v2_entries:
                e["request"] = json_entries[v2_entries.index(e)]["request"]
        assert v2_entries == json_entries, case.name


def test_gb18030_and_utf8_messages_map_to_the_same_visit():
    utf8 = convert_envelope((CASES[0].parent / "adt_a04_utf8" / "input.hl7").read_bytes(), org=ORG)
    gb = convert_envelope((CASES[0].parent / "adt_a04_gb18030" / "input.hl7").read_bytes(), org=ORG)
    assert gb.visit.patient == utf8.visit.patient
    assert gb.visit.patient.name == "张伟"
    assert gb.visit.chief_complaint == utf8.visit.chief_complaint == "咳嗽、发热3天"
