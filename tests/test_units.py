"""Small pieces: errors, masking, identifiers, translation, validator, queue helpers."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.validator import validate_bundle
from gateway import errors, store
from gateway.convert import convert_envelope
from gateway.delivery.worker import backoff
from gateway.identifiers import (
    CITIZEN_ID,
    ID_NAMESPACE,
    CardType,
    card_system,
    citizen_id_problem,
    deterministic_id,
)
from gateway.logging import mask_personal_data, mask_text
from terminology.translate import FHIR_GENDER, GBT_2261_1, translate
from tests.support import VISIT_INPUT


def _bundle():
    return convert_envelope(VISIT_INPUT.read_bytes(), tracking_id="t",
                            received_at=datetime(2026, 3, 1, tzinfo=timezone.utc)).bundle


def test_outcome_codes_map_to_http_statuses():
    assert errors.unauthorized().status == 401
    assert errors.forbidden("x").status == 403
    assert errors.too_large(10).status == 413
    assert errors.invalid("x").status == 400
    assert errors.http_status(errors.outcome([errors.issue("w", severity="warning")])) == 200


def test_pydantic_locations_become_paths():
    assert errors.pydantic_path(("patient", "cards", 0, "value")) == "patient.cards[0].value"
    assert errors.pydantic_path(("entry", 2, "resource", "birthDate"), "Bundle") == \
        "Bundle.entry[2].resource.birthDate"


def test_masking_hides_personal_data():
    event = mask_personal_data(None, "info", {
        "name": "张伟", "event": "patient 110101198506150019 phone 13812345678 seen"})
    assert event["name"] == "**"
    assert "110101198506150019" not in event["event"]
    assert "13812345678" not in event["event"]
    assert mask_text("order 12345") == "order 12345"


def test_citizen_id_problems_are_named():
    assert citizen_id_problem("110101198506150019") is None
    assert "check digit" in citizen_id_problem("110101198506150011")
    assert "18" in citizen_id_problem("1101011985")


def _with_check_digit(first17: str) -> str:
    from stdnum.cn import ric

    return first17 + ric.calc_check_digit(first17 + "0")


def test_a_citizen_id_from_an_unknown_county_of_a_known_province_is_named():
    # python-stdnum's own lookup raises KeyError('county') for this one
    assert "region" in citizen_id_problem(_with_check_digit("11999919900307001"))
    assert "region" in citizen_id_problem(_with_check_digit("99010119900307001"))
    # 崇文区 (110103) was merged away in 2010: a county for someone born before, not after
    assert citizen_id_problem(_with_check_digit("11010319900307001")) is None
    assert "region" in citizen_id_problem(_with_check_digit("11010320150307001"))


def test_birth_places_are_known_as_python_stdnum_knows_them():
    from stdnum.cn import ric

    from gateway.identifiers import _birth_place_known, _counties

    regions = sorted(_counties())
    assert len(regions) > 6000
    for region in regions[::7] + ["119999", "990101", "000000"]:
        for year in (1950, 2000, 2010, 2011, 2024):
            try:
                ric.get_birth_place(f"{region}{year:04d}01010000")
                known = True
            except (ric.InvalidComponent, KeyError):
                known = False
            assert _birth_place_known(region, year) is known, (region, year)


def test_hospital_cards_are_scoped_to_their_issuer():
    assert card_system(CardType.CITIZEN_ID, None) == CITIZEN_ID
    assert card_system(CardType.HOSPITAL_CARD, "H1") != card_system(CardType.HOSPITAL_CARD, "H2")
    with pytest.raises(ValueError):
        card_system(CardType.HOSPITAL_CARD, None)


@pytest.mark.parametrize("system,code,gender", [
    (GBT_2261_1, "1", "male"), (GBT_2261_1, "2", "female"), (GBT_2261_1, "9", "unknown"),
    ("http://terminology.hl7.org/CodeSystem/v2-0001", "F", "female"), ("GB/T 2261.1", "1", "male"),
])
def test_sex_translates_through_concept_maps(system, code, gender):
    gb = translate(system, code, GBT_2261_1)
    assert translate(GBT_2261_1, gb.code, FHIR_GENDER).code == gender


def test_unknown_code_is_none_not_an_exception():
    assert translate("AAA002", "1", GBT_2261_1) is None
    assert translate(GBT_2261_1, "7", FHIR_GENDER) is None


def test_validator_accepts_the_rendered_bundle():
    assert validate_bundle(_bundle()) == []


def _resource(bundle: dict, rtype: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def test_ethnicity_and_payment_reach_fhir_as_profiled_extensions():
    bundle = _bundle()
    [eth] = _resource(bundle, "Patient")["extension"]
    assert eth["valueCoding"]["code"] == "01" and eth["url"].endswith("/patient-ethnicity")
    [pay] = _resource(bundle, "Encounter")["extension"]
    assert [p["url"] for p in pay["extension"]] == ["kind", "insuranceType"]
    assert pay["extension"][1]["valueCoding"]["code"] == "310"


@pytest.mark.parametrize("change, text, where", [
    (lambda b: _resource(b, "Patient")["extension"][0]["valueCoding"].update(code="99"),
     "is not in the value set", "Bundle.entry[2].resource.extension[0].valueCoding"),
    (lambda b: _resource(b, "Encounter")["extension"][0]["extension"][0].update(valueCode="self_pay"),
     "pay-cn-1", "Bundle.entry[3].resource.extension[0]"),
    (lambda b: _resource(b, "Encounter")["extension"][0]["extension"].append(
        {"url": "other", "valueString": "x"}),
     "the slicing is closed", "Bundle.entry[3].resource.extension[0].extension[2]"),
    (lambda b: _resource(b, "Encounter")["extension"][0]["extension"].pop(0),
     "minimum required = 1", "Bundle.entry[3].resource.extension[0].extension"),
])
def test_ethnicity_and_payment_extensions_are_checked(change, text, where):
    bundle = copy.deepcopy(_bundle())  # a rendered Bundle shares parts with others
    change(bundle)
    [issue] = validate_bundle(bundle)
    assert text in issue["details"]["text"] and issue["expression"] == [where]


def test_validator_finds_dangling_references_and_bad_values():
    bundle = copy.deepcopy(_bundle())
    bundle["entry"][3]["resource"]["subject"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}
    bundle["entry"][2]["resource"]["birthDate"] = "1985-13-40"
    issues = validate_bundle(bundle)
    paths = [e for i in issues for e in i.get("expression", [])]
    assert "Bundle.entry[2].resource.birthDate" in paths
    assert "Bundle.entry[3].resource.subject.reference" in paths


def test_validator_requires_exactly_one_patient():
    bundle = copy.deepcopy(_bundle())
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert any("exactly one Patient" in i["details"]["text"] for i in validate_bundle(bundle))


def test_every_reference_resolves_and_ids_are_deterministic():
    a, b = _bundle(), _bundle()
    assert [e["fullUrl"] for e in a["entry"]] == [e["fullUrl"] for e in b["entry"]]
    assert len({e["fullUrl"] for e in a["entry"]}) == len(a["entry"])
    for entry in a["entry"]:
        for ident in entry["resource"].get("identifier", []) if isinstance(
                entry["resource"].get("identifier"), list) else []:
            assert ident["system"] and ident["value"]


@given(st.text(max_size=40), st.text(max_size=40))
def test_deterministic_ids_are_rfc4122_uuid5(system, value):
    assert deterministic_id(system, value) == str(uuid.uuid5(ID_NAMESPACE, f"{system}|{value}"))


def test_backoff_is_bounded_and_grows():
    assert all(0 <= backoff(1, 0.5, 60) <= 0.5 for _ in range(100))
    assert all(0 <= backoff(20, 0.5, 60) <= 60 for _ in range(100))
    assert max(backoff(6, 0.5, 60) for _ in range(200)) > 0.5


def test_overall_status_from_receipts():
    assert store.overall_status("queued", {"a": {"status": "delivered"}}) == "delivered"
    assert store.overall_status("queued", {"a": {"status": "delivered"},
                                           "b": {"status": "queued"}}) == "queued"
    assert store.overall_status("queued", {"a": {"status": "dead-lettered"}}) == "dead-lettered"
    assert store.overall_status("rejected", {}) == "rejected"
    assert store.overall_status("accepted", {}) == "accepted"


def test_one_patient_always_lands_on_one_shard():
    assert store.shard_of("p-1", 8) == store.shard_of("p-1", 8)
    assert len({store.shard_of(f"p-{i}", 8) for i in range(200)}) == 8


@pytest.mark.parametrize("entry,path,value", [
    (2, "birthDate", "2026-02-30"),  # matches the date pattern, but no such day
    (2, "gender", "ma  le"),  # not a code (two spaces)
    (3, "status", ""),  # empty string
    (3, "period", {"start": "yesterday"}),  # not a dateTime
    (2, "birthDate", 19850615),  # wrong JSON type
])
def test_validator_never_misses_an_invalid_value(entry, path, value):
    valid = _bundle()
    assert validate_bundle(valid) == [] and validate_bundle(copy.deepcopy(valid)) == []
    bad = copy.deepcopy(valid)
    bad["entry"][entry]["resource"][path] = value
    found = [e for i in validate_bundle(bad) for e in i.get("expression", [])]
    assert any(e.startswith(f"Bundle.entry[{entry}].resource.{path}") for e in found), found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(
    st.text(max_size=12), st.sampled_from(["2026-02-30", "2026-02-28", "2026", "2026-13",
                                           "2026-01-01T10:00:00+08:00", "2026-01-01T25:00:00Z",
                                           " x", "x ", "a b", "a\u3000b", "urn:oid:1.2", "-0.5"])),
    where=st.sampled_from([(2, "birthDate"), (4, "recordedDate")]))
def test_date_verdicts_agree_with_the_models(value, where):
    """Whatever the text of a date or dateTime, the profile validator and a full parse with
    the fhir.resources models agree on whether it is valid. (Other JSON types: the models
    accept an integer as a date; FHIR JSON, and the validator, do not.)"""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    bundle = copy.deepcopy(_bundle())
    entry, element = where
    bundle["entry"][entry]["resource"][element] = value
    try:
        Bundle.model_validate(copy.deepcopy(bundle))
        models_ok = True
    except ValidationError:
        models_ok = False
    assert (validate_bundle(bundle) == []) == models_ok


def test_payload_compression_round_trips_and_reads_what_was_queued_before():
    import zstandard

    from gateway import compression
    from gateway.convert import convert_envelope
    from gateway.jsonio import dumps

    bundle = dumps(convert_envelope(VISIT_INPUT.read_bytes()).bundle)
    packed = compression.pack(bundle)
    assert packed[:4] == compression.MAGIC and compression.unpack(packed) == bundle
    # with the shipped dictionary, named in the frame: well under what Zstandard alone makes
    newest = max(compression.dictionaries())
    assert zstandard.get_frame_parameters(packed).dict_id == newest
    alone = zstandard.ZstdCompressor(level=compression.LEVEL).compress(bundle)
    assert len(packed) < len(alone) / 1.5 and len(packed) < len(bundle) / 8
    assert compression.unpack(alone) == bundle  # queued by a version without dictionaries
    assert compression.unpack(bundle) == bundle  # queued before payloads were compressed
    assert compression.unpack(b"MSH|^~\\&|") == b"MSH|^~\\&|"
    foreign = zstandard.ZstdCompressor(dict_data=zstandard.ZstdCompressionDict(
        b"\x37\xa4\x30\xec" + (12345).to_bytes(4, "little") + bytes(compression.dictionaries()[
            newest].as_bytes()[8:]))).compress(bundle)
    with pytest.raises(compression.Unreadable, match="0x3039"):
        compression.unpack(foreign)
    with pytest.raises(compression.Unreadable, match="damaged"):
        compression.unpack(packed[:-9])


def test_settlement_copies_written_with_zlib_before_are_still_read(redis_server):
    import zlib

    import redis as redis_lib

    from gateway.insurance import visits

    r = redis_lib.Redis.from_url(redis_server.url)
    raw = b'{"visit_no": "MZ1", "name": "\xe5\xbc\xa0\xe4\xb8\x89"}'
    r.set(visits.key("old"), zlib.compress(raw, 1))
    assert visits.load(r, "old") == raw
    from gateway import compression

    r.set(visits.key("new"), compression.pack(raw))
    assert visits.load(r, "new") == raw and visits.load(r, "none") is None


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list("Az09._~-/%|?&# 中é")), max_size=24))
def test_conditional_create_urls_encode_values_as_quote_does(value):
    from urllib.parse import quote

    from gateway.render.fhir import _if_none_exist

    assert _if_none_exist("urn:oid:1.2", value) == \
        f"identifier=urn%3Aoid%3A1.2%7C{quote(value, safe='')}"
