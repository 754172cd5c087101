"""Checks that hold for every rendered visit (synthetic hospitals, many seeds)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conformance.validator import validate_bundle
from gateway.convert import convert_envelope
from gateway.synth import generate

CLOCK = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _leaves_empty(node) -> bool:
    if isinstance(node, dict):
        return not node or any(_leaves_empty(v) for v in node.values())
    if isinstance(node, list):
        return not node or any(_leaves_empty(v) for v in node)
    return node is None or node == ""


@pytest.mark.parametrize("seed", range(4))
def test_every_synthetic_visit_renders_a_valid_bundle(seed):
    for visit in generate(60, seed=seed, orgs=3):
        raw = visit.to_json()
        bundle = convert_envelope(raw, tracking_id="rules", received_at=CLOCK).bundle
        assert validate_bundle(bundle) == []
        entries = bundle["entry"]
        assert sum(e["resource"]["resourceType"] == "Patient" for e in entries) == 1
        assert len({e["fullUrl"] for e in entries}) == len(entries)
        for e in entries:
            res = e["resource"]
            assert not _leaves_empty(res), res["resourceType"]
            for ident in res.get("identifier", []) if isinstance(res.get("identifier"), list) else []:
                assert ident.get("system") and ident.get("value")
            if e["request"]["method"] == "POST":
                assert e["request"]["ifNoneExist"].startswith("identifier=")
        again = convert_envelope(raw, tracking_id="rules", received_at=CLOCK).bundle
        assert again == bundle  # deterministic


def test_same_patient_at_two_hospitals_is_one_person():
    seen: dict[str, set[str]] = {}
    for visit in generate(200, seed=7, orgs=3):
        env = convert_envelope(visit.to_json(), received_at=CLOCK)
        citizen = next(c.value for c in visit.patient.cards if c.type.value == "citizen_id")
        seen.setdefault(citizen, set()).add(env.identity.person_id)
    assert all(len(ids) == 1 for ids in seen.values())
