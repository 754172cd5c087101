"""The adapter SDK: every adapter passes its golden cases and the rule checks; the field
vocabulary is closed; the registry finds the reference adapters.

Golden cases: tests/golden/adapters/<id>/<case>/ (adapters/sdk/check.py describes the
files). ``UPDATE_GOLDEN=1`` rewrites the expectations (review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import adapters.sdk as sdk
from adapters.sdk import SpecError, get, load
from adapters.sdk.check import check, render
from adapters.sdk.registry import adapters

REFERENCE = ("hengtong_xml", "hl7v2", "kangtai_v24", "qiming_dbview")
GOLDEN = Path(__file__).parent / "golden" / "adapters"


def test_public_surface_is_small():
    assert sorted(sdk.__all__) == ["Adapter", "Manifest", "Mapping", "Problem", "Reading",
                                   "SpecError", "adapters", "apply", "build_visit", "get",
                                   "load", "problems"]


def test_the_reference_adapters_are_discovered():
    assert set(REFERENCE) <= set(adapters())
    assert get("qiming_dbview").manifest.batch


@pytest.mark.parametrize("adapter_id", sorted(adapters()))
def test_every_adapter_passes_its_check(adapter_id):
    report = check(get(adapter_id), update=bool(os.environ.get("UPDATE_GOLDEN")))
    assert report.ok, render(report)


def _errors(case: str) -> list[str]:
    import json

    return [e for item in json.loads((GOLDEN / case / "expected.errors.json").read_text())
            for i in item["issues"] for e in i["expression"]]


def test_errors_name_vendor_positions():
    assert "/his:Visit/his:Patient/his:IdNo (line 14)" in _errors("hengtong_xml/bad_citizen_id")
    assert "line 17, column 38" in _errors("hengtong_xml/malformed_xml")
    assert "ZFE[2]-5" in _errors("kangtai_v24/bad_fee_amount")
    assert "fees.csv row 5 column qty" in _errors("qiming_dbview/nightly")
    assert "fees.csv row 7 column visit_no" in _errors("qiming_dbview/nightly")


def test_local_codes_stay_local_for_the_translate_stage():
    raw = (GOLDEN / "hengtong_xml" / "basic" / "input.xml").read_bytes()
    visit = get("hengtong_xml").to_canonical(raw)
    assert visit.patient.sex.code == "M" and "hengtong" in visit.patient.sex.system
    assert visit.diagnoses[0].system.endswith("/H11010102/diagnosis")
    assert visit.fees[1].insurance_class == "02"


def test_a_failing_case_fails_the_check(tmp_path):
    import shutil

    shutil.copytree(GOLDEN / "hengtong_xml" / "basic", tmp_path / "basic")
    path = tmp_path / "basic" / "expected.visits.json"
    path.write_text(path.read_text().replace("MZ2026030100088", "MZ0"))
    report = check(get("hengtong_xml"), tmp_path)
    assert not report.ok
    assert "expected.visits.json differs" in render(report)


@pytest.mark.parametrize("text, problem", [
    ('[[field]]\nfrom = "a"\nto = "visit_no"\nwhen = "x"\n', "unknown key"),
    ('[[field]]\nfrom = "a"\nto = "visit_no"\ntransform = ["eval"]\n', "unknown transform"),
    ('[[field]]\nfrom = "a"\nto = "visit_no"\ntransform = ["map:nope"]\n', "no table"),
    ('[[field]]\nto = "visit_no"\n', "give 'from'"),
    ('[[group]]\ninto = "fees"\n', "'each' and 'into'"),
])
def test_the_field_vocabulary_is_closed(tmp_path, text, problem):
    path = tmp_path / "mapping.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=problem):
        load(path)
