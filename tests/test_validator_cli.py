"""`gateway validate`: one line per issue, exit 0 / 1 / 2."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

from tests.support import ROOT

BUNDLE = json.loads((ROOT / "tests" / "golden" / "canonical" / "basic" / "expected.bundle.json")
                    .read_text("utf-8"))
PATIENT = "https://yikatong.org/fhir/StructureDefinition/yikatong-patient"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", "validate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_exit_codes_and_text_and_json(tmp_path):
    good = tmp_path / "bundle.json"
    good.write_text(json.dumps(BUNDLE), encoding="utf-8")
    patient = copy.deepcopy(BUNDLE["entry"][2]["resource"])
    patient["identifier"][0]["value"] = "110105194912310021"
    bad = tmp_path / "patient.json"
    bad.write_text(json.dumps(patient), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope", encoding="utf-8")

    ok = _run(str(good), "--profile",
              "https://yikatong.org/fhir/StructureDefinition/yikatong-visit-bundle")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith(f"{good}: ok")

    fail = _run(str(bad), "--profile", PATIENT)
    assert fail.returncode == 1
    lines = fail.stdout.splitlines()
    assert any(line.split()[:2] == ["error", "Patient.identifier[0].value"]
               and line.endswith("invalid citizen ID check digit (pat-cn-1)") for line in lines)
    assert lines[-1].startswith(f"{bad}: FAIL — 1 error(s)")

    as_json = _run(str(bad), "--profile", PATIENT, "--format", "json")
    assert as_json.returncode == 1
    outcome = json.loads(as_json.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"] if i["severity"] == "error"] == [
        ["Patient.identifier[0].value"]]

    unreadable = _run(str(broken), str(good))
    assert unreadable.returncode == 2
    assert "cannot read as JSON" in unreadable.stderr


def test_full_package_validates_any_type(tmp_path):
    claim = tmp_path / "appointment.json"  # a type the vendored subset does not carry
    claim.write_text(json.dumps({"resourceType": "Appointment", "status": "booked"}),
                     encoding="utf-8")
    subset = _run(str(claim))
    assert subset.returncode == 1
    assert "Appointment.resourceType" in subset.stdout and "--full" in subset.stdout
    full = _run(str(claim), "--full")
    assert full.returncode == 1
    assert any(line.startswith("error") and "Appointment.participant: minimum required = 1" in line
               for line in full.stdout.splitlines())
