"""The profiles load, their snapshots generate, the vendored core subset is what the
package builds, and every golden visit Bundle conforms."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import orjson
import pytest

from conformance import build_core, corepkg
from conformance.compiler import Compiler
from conformance.definitions import PROFILES, SUBSET, Definitions, load_subset
from conformance.registry import load_profiles
from conformance.snapshot import SnapshotError, generate
from conformance.validator import VISIT_BUNDLE, _Ctx, validate_bundle, validator

ROOT = Path(__file__).resolve().parent.parent
BASE = "https://yikatong.org/fhir/StructureDefinition/"


def _elements(url: str) -> dict[str, dict]:
    return {e["id"]: e for e in validator().defs.sd(url)["elements"]}


def test_every_profile_file_loads_with_a_snapshot():
    urls = {json.loads(p.read_text("utf-8"))["url"]
            for p in PROFILES.glob("StructureDefinition-*.json")}
    assert len(urls) >= 12
    for url in urls:
        sd = validator().defs.sd(url)
        assert sd is not None and sd["derivation"] == "constraint", url
        assert len(sd["elements"]) >= 5, url


def test_patient_snapshot_has_the_card_slices_with_their_children():
    els = _elements(BASE + "yikatong-patient")
    assert els["Patient.identifier"]["slicing"]["disc"] == [["pattern", "type"]]
    for name in ("citizenId", "sscCardNo", "sscCardId", "healthCard", "hospitalCard"):
        assert els[f"Patient.identifier:{name}"]["slice"] == name
        assert els[f"Patient.identifier:{name}.value"]["min"] == 1
        assert f"Patient.identifier:{name}.period" in els  # copied from Identifier
    assert els["Patient.identifier:citizenId.system"]["fixed"] == ["Uri", "urn:oid:2.16.156.10011.1.3"]
    assert [c[0] for c in els["Patient.identifier:citizenId.value"]["con"]] == ["ele-1", "pat-cn-1"]
    assert els["Patient.name"]["min"] == 1 and els["Patient.gender"]["min"] == 1
    assert els["Patient.gender"]["bmax"] == "1" and els["Patient.identifier"]["bmax"] == "*"


def test_encounter_period_start_unfolds_period():
    els = _elements(BASE + "yikatong-encounter")
    assert els["Encounter.period"]["min"] == 1
    assert els["Encounter.period.start"]["min"] == 1
    assert els["Encounter.class"]["binding"] == ["required", "https://yikatong.org/fhir/ValueSet/yikatong-encounter-class"]


def test_a_differential_naming_no_element_is_refused():
    defs = validator().defs
    bad = {"url": "x", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
           "differential": {"element": [{"id": "Patient.nonsense", "path": "Patient.nonsense"}]}}
    with pytest.raises(SnapshotError):
        generate(bad, defs)


def test_closed_slicing(tmp_path):
    profile = {
        "resourceType": "StructureDefinition", "url": BASE + "closed-test", "name": "ClosedTest",
        "kind": "resource", "abstract": False, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient.identifier", "path": "Patient.identifier",
             "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}},
            {"id": "Patient.identifier:mrn", "path": "Patient.identifier", "sliceName": "mrn"},
            {"id": "Patient.identifier:mrn.system", "path": "Patient.identifier.system",
             "fixedUri": "urn:mrn"}]}}
    (tmp_path / "StructureDefinition-closed-test.json").write_text(json.dumps(profile))
    defs = Definitions()
    load_subset(defs)
    check = Compiler(defs, load_profiles(defs, tmp_path)).root(BASE + "closed-test")
    ctx = _Ctx(validator())
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "urn:mrn", "value": "1"}, {"system": "urn:other", "value": "2"}]}
    ctx.resource = ctx.root = patient
    check(patient, "Patient", ctx)
    assert [(i["code"], i["expression"]) for i in ctx.out if i["severity"] == "error"] == [
        ("structure", ["Patient.identifier[1]"])]


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "golden").glob("*/*/expected.bundle.json")),
                         ids=lambda p: p.parent.name)
def test_golden_bundles_conform(path):
    bundle = json.loads(path.read_text("utf-8"))
    assert validate_bundle(bundle, VISIT_BUNDLE) == []


def test_vendored_core_subset_is_what_the_package_builds(tmp_path):
    target = tmp_path / "subset.json.gz"
    build_core.build(corepkg.fetch(), target)
    assert orjson.loads(gzip.decompress(target.read_bytes())) == \
        orjson.loads(gzip.decompress(SUBSET.read_bytes()))


def _tar(*members: tarfile.TarInfo) -> tarfile.TarFile:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"{}") if member.isfile() else None)
    raw.seek(0)
    return tarfile.open(fileobj=raw)


def _member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = 2 if kind == tarfile.REGTYPE else 0
    info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    return info


def test_package_unpacks_files_and_folders_and_refuses_anything_else(tmp_path):
    corepkg._extract(_tar(_member("package", tarfile.DIRTYPE),
                          _member("package/package.json")), tmp_path / "ok")
    assert (tmp_path / "ok" / "package" / "package.json").read_bytes() == b"{}"
    for bad in (_member("../escape.json"), _member("/abs.json"),
                _member("package/link", tarfile.SYMTYPE)):
        with pytest.raises(RuntimeError, match="refusing to unpack"):
            corepkg._extract(_tar(bad), tmp_path / "bad")
    assert not (tmp_path / "escape.json").exists()


def test_concurrent_first_use_compiles_once_and_agrees():
    """Checkers compile lazily; threads validating at once all see complete ones."""
    from concurrent.futures import ThreadPoolExecutor

    from conformance.validator import Validator

    fresh = Validator()
    bundles = [json.loads(p.read_text("utf-8"))
               for p in sorted((ROOT / "tests" / "golden").glob("*/*/expected.bundle.json"))]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda b: fresh.validate(b, VISIT_BUNDLE), bundles * 4))
    assert all(not [i for i in r if i["severity"] == "error"] for r in results)
    assert results[:len(bundles)] == results[len(bundles):2 * len(bundles)]


def test_type_and_exists_discriminators(tmp_path):
    """Bundle entries sliced by their resource's type (one Patient required) and by whether
    a request is there."""
    profile = {
        "resourceType": "StructureDefinition", "url": BASE + "typed-test", "name": "TypedTest",
        "kind": "resource", "abstract": False, "type": "Bundle", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Bundle",
        "differential": {"element": [
            {"id": "Bundle.entry", "path": "Bundle.entry", "slicing": {"discriminator": [
                {"type": "type", "path": "resource"}, {"type": "exists", "path": "request"}],
                "rules": "open"}},
            {"id": "Bundle.entry:patient", "path": "Bundle.entry", "sliceName": "patient",
             "min": 1, "max": "1"},
            {"id": "Bundle.entry:patient.resource", "path": "Bundle.entry.resource",
             "type": [{"code": "Patient"}]},
            {"id": "Bundle.entry:patient.request", "path": "Bundle.entry.request", "min": 1}]}}
    (tmp_path / "StructureDefinition-typed-test.json").write_text(json.dumps(profile))
    defs = Definitions()
    load_subset(defs)
    check = Compiler(defs, load_profiles(defs, tmp_path)).root(BASE + "typed-test")

    def errors(entries):
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        ctx = _Ctx(validator())
        ctx.resource = ctx.root = bundle
        check(bundle, "Bundle", ctx)
        return [(i["code"], i["expression"]) for i in ctx.out if i["severity"] == "error"]

    request = {"method": "POST", "url": "Patient"}
    patient = {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}, "request": request}
    org = {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Organization", "name": "x"},
           "request": {"method": "POST", "url": "Organization"}}
    assert errors([org, patient]) == []
    assert errors([org]) == [("required", ["Bundle.entry"])]
    assert errors([org, patient, dict(patient, fullUrl="urn:uuid:3")]) == [("structure", ["Bundle.entry"])]
