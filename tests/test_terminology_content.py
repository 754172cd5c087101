"""National code tables shipped as FHIR R4 CodeSystems and ValueSets (terminology/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.valueset import ValueSet

from gateway import synth
from gateway.identifiers import ICD10, SEX_GBT_2261_1, CardType
from gateway.synth_data import DIAGNOSES

TERMINOLOGY = Path(__file__).resolve().parent.parent / "terminology"
CS_FILES = sorted((TERMINOLOGY / "codesystems").glob("*.json"))
VS_FILES = sorted((TERMINOLOGY / "valuesets").glob("*.json"))
BASE = "https://yikatong.org/fhir"

EXPECTED = {
    "gbt-2261-1-sex", "gbt-3304-ethnicity", "ws364-cv02-01-101-id-document-type",
    "nhsa-mdtrt-cert-type", "nhsa-psn-cert-type", "nhsa-med-type", "nhsa-med-chrgitm-type",
    "nhsa-chrgitm-lv", "nhsa-insutype", "nhsa-psn-setlway", "icd10-cn", "card-type", "payment-kind",
    "v2-0001", "v2-0078", "v2-0357",  # HL7 v2 tables the mappings use (versioned as HL7 2.9)
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _codesystems() -> dict[str, dict]:
    return {p.stem: _load(p) for p in CS_FILES}


def _codes(cs_id: str) -> dict[str, str]:
    return {c["code"]: c["display"] for c in _codesystems()[cs_id]["concept"]}


def test_expected_files_present():
    assert {p.stem for p in CS_FILES} == EXPECTED
    assert {p.stem for p in VS_FILES} == EXPECTED


@pytest.mark.parametrize("path", CS_FILES, ids=lambda p: p.stem)
def test_codesystem_valid(path: Path):
    raw = _load(path)
    cs = CodeSystem.model_validate(raw)
    assert cs.id == path.stem
    assert cs.version == ("2.9" if path.stem.startswith("v2-") else "1.0.0")
    assert cs.status == "active"
    assert cs.caseSensitive is True
    assert cs.content in ("complete", "fragment")
    assert cs.name and cs.title and cs.description
    if cs.url.startswith(("urn:oid:", "http://terminology.hl7.org/")):  # an external system
        assert cs.valueSet == f"{BASE}/ValueSet/{cs.id}"
    else:
        assert cs.url == f"{BASE}/CodeSystem/{cs.id}"
        assert cs.valueSet == f"{BASE}/ValueSet/{cs.id}"
    codes = [c.code for c in cs.concept]
    assert codes, "a CodeSystem with no concepts"
    assert len(codes) == len(set(codes)), "duplicate codes"
    assert codes == sorted(codes), "concepts not sorted by code"
    for c in cs.concept:
        assert c.display and c.display.strip(), c.code
        for d in c.designation or []:
            assert d.language == "en" and d.value.strip()
    if cs.content == "complete" and cs.count is not None:
        assert cs.count == len(codes)
    # file format: 2-space indent, UTF-8 text rather than \u escapes
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(raw, ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize("path", VS_FILES, ids=lambda p: p.stem)
def test_valueset_valid(path: Path):
    vs = ValueSet.model_validate(_load(path))
    assert vs.id == path.stem
    assert vs.status == "active"
    cs = _codesystems()[path.stem]
    assert vs.url == cs["valueSet"]
    urls = {c["url"] for c in _codesystems().values()}
    assert vs.compose and vs.compose.include
    for inc in vs.compose.include:
        assert inc.system in urls
        assert not inc.concept and not inc.filter  # the whole code system
    assert [i.system for i in vs.compose.include] == [cs["url"]]


def test_sex():
    cs = _codesystems()["gbt-2261-1-sex"]
    assert cs["url"] == "urn:oid:2.16.156.10011.2.3.3.4" == SEX_GBT_2261_1
    assert _codes("gbt-2261-1-sex") == {"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"}


def test_ethnicity():
    codes = _codes("gbt-3304-ethnicity")
    assert len(codes) == 58
    assert set(codes) == {f"{i:02d}" for i in range(1, 57)} | {"97", "98"}
    assert codes["01"] == "汉族"
    assert codes["56"] == "基诺族"
    assert codes["08"] == "壮族"
    assert codes["98"] == "外国血统中国籍人士"
    assert _codesystems()["gbt-3304-ethnicity"]["content"] == "complete"


def test_synthetic_ethnicities_are_coded():
    codes = _codes("gbt-3304-ethnicity")
    from gateway.synth_data import ETHNICITIES

    assert {c for c, _ in ETHNICITIES} <= set(codes)


def test_id_document_type():
    codes = _codes("ws364-cv02-01-101-id-document-type")
    assert set(codes) == {"01", "02", "03", "04", "05", "06", "07", "99"}
    assert codes["01"] == "居民身份证"


@pytest.fixture(scope="module")
def visits():
    return list(synth.generate(200, seed=1))


def test_icd10_covers_synthetic_diagnoses(visits):
    cs = _codesystems()["icd10-cn"]
    assert cs["url"] == ICD10 == "urn:oid:2.16.156.10011.2.3.3.11.1"
    assert cs["content"] == "fragment"
    codes = _codes("icd10-cn")
    used = {(d.code, d.name) for v in visits for d in v.diagnoses}
    assert used
    for code, name in used:
        assert code in codes, code
        assert codes[code] == name, code
    for code, dx in DIAGNOSES.items():  # the whole table, not just what seed 1 draws
        assert codes.get(code) == dx.name, code
    for code in ("J06.900", "R50.900", "R10.400"):
        assert code in codes


def test_fee_codes_are_nhsa_codes(visits):
    categories = _codes("nhsa-med-chrgitm-type")
    levels = _codes("nhsa-chrgitm-lv")
    assert set(categories) == {f"{i:02d}" for i in range(1, 15)}
    assert set(levels) == {"01", "02", "03"}
    fees = [f for v in visits for f in v.fees]
    assert fees
    assert {f.category for f in fees} <= set(categories)
    assert {f.insurance_class for f in fees if f.insurance_class is not None} <= set(levels)


def test_insurance_types_are_nhsa_codes(visits):
    codes = _codes("nhsa-insutype")
    used = {v.payment.insurance_type for v in visits if v.payment and v.payment.insurance_type}
    assert used <= set(codes)


def test_nhsa_lists():
    assert set(_codes("nhsa-mdtrt-cert-type")) == {"01", "02", "03"}
    assert set(_codes("nhsa-psn-setlway")) == {"01", "02"}
    assert set(_codes("nhsa-med-type")) == {"11", "12", "13", "14", "16", "21", "28", "41", "51", "52"}
    assert set(_codes("nhsa-insutype")) == {"310", "320", "330", "340", "390", "392", "510"}
    assert set(_codes("nhsa-psn-cert-type")) == {"01", "17", "99"}
    for partial in ("nhsa-med-type", "nhsa-insutype", "nhsa-psn-cert-type"):
        assert _codesystems()[partial]["content"] == "fragment"


def test_card_types():
    cs = _codesystems()["card-type"]
    assert cs["url"] == f"{BASE}/CodeSystem/card-type"
    assert set(_codes("card-type")) == {t.value for t in CardType}
