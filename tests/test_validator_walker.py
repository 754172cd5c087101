"""The compiled object walker and its fields: one issue per problem in the corners where
a shortcut could add or lose one, and values remembered as clean never hiding an issue."""

from __future__ import annotations

import copy
import json

from conformance.validator import VISIT_BUNDLE, Validator, validate, validator
from tests.support import ROOT

BUNDLE = json.loads((ROOT / "tests" / "golden" / "canonical" / "basic" / "expected.bundle.json")
                    .read_text("utf-8"))


def _key(i: dict) -> tuple:
    return i["severity"], i["code"], tuple(i.get("expression", ())), i["details"]["text"]


def _new_issues(mutate) -> list[tuple]:
    bundle = copy.deepcopy(BUNDLE)
    baseline = {_key(i) for i in validate(BUNDLE, VISIT_BUNDLE)}
    mutate(bundle)
    return [_key(i)[:3] for i in validate(bundle, VISIT_BUNDLE) if _key(i) not in baseline]


def _entry(bundle: dict, rtype: str) -> tuple[int, dict]:
    return next((i, e["resource"]) for i, e in enumerate(bundle["entry"])
                if e["resource"]["resourceType"] == rtype)


def test_a_required_child_present_as_an_empty_array_is_not_also_missing():
    """ChargeItem requires a choice (occurrence[x]) besides quantity: the required children
    are counted, and a present quantity counts whatever its value."""
    i, _ = _entry(BUNDLE, "ChargeItem")
    issues = _new_issues(lambda b: _entry(b, "ChargeItem")[1].update(quantity=[]))
    assert issues == [("error", "structure", (f"Bundle.entry[{i}].resource.quantity",))]


def test_an_element_that_is_not_an_object_still_meets_its_own_invariants():
    """Parameters.parameter's inv-1 (fhirpathpy) judges a string there too, beside the
    structure issue."""
    issues = validate({"resourceType": "Parameters", "parameter": ["x"]})
    assert [(i["expression"], i["details"]["text"]) for i in issues if
            i["severity"] == "error"] == [
        (["Parameters.parameter[0]"], "expected a JSON object"),
        (["Parameters.parameter[0]"], "A parameter must have one and only one of (value, "
                                      "resource, part) (inv-1)")]


def test_a_repeated_value_is_judged_the_same_every_time():
    """Values found clean are remembered (memo, primitive fields, whole arrays); a bundle
    validated again, and a faulty copy of a clean value, give the same issues each time."""
    fresh = Validator(loaded=(validator().defs, validator().compiler.project_expressions))
    first = fresh.validate(BUNDLE, VISIT_BUNDLE)
    assert fresh.validate(BUNDLE, VISIT_BUNDLE) == first
    bundle = copy.deepcopy(BUNDLE)
    i, charge = _entry(bundle, "ChargeItem")
    charge["code"]["coding"][0]["code"] = " padded"  # a code with a leading space
    charge["extension"].append(copy.deepcopy(charge["extension"][0]))
    for _ in range(3):
        issues = [i["expression"] for i in fresh.validate(bundle, VISIT_BUNDLE)
                  if i["severity"] == "error"]
        assert [f"Bundle.entry[{i}].resource.code.coding[0].code"] in issues
        assert fresh.validate(BUNDLE, VISIT_BUNDLE) == first


def test_without_memo_the_verdicts_are_the_same():
    plain = Validator(memo=False, loaded=(validator().defs,
                                          validator().compiler.project_expressions))
    bundle = copy.deepcopy(BUNDLE)
    _entry(bundle, "Patient")[1]["gender"] = "bogus"
    for b in (BUNDLE, bundle, BUNDLE, bundle):
        assert plain.validate(b, VISIT_BUNDLE) == validator().validate(b, VISIT_BUNDLE)


def test_a_remembered_value_records_its_references_again_at_its_own_place():
    """A value remembered with the references its check recorded (an identifier's
    assigner, a participant's individual) records them again where it is met next: a
    Bundle where they no longer resolve, its entries in another order, gets the issues a
    validator without memo gives, at the new places."""
    loaded = (validator().defs, validator().compiler.project_expressions)
    fresh, plain = Validator(loaded=loaded), Validator(memo=False, loaded=loaded)
    for _ in range(3):
        assert fresh.validate(BUNDLE, VISIT_BUNDLE) == plain.validate(BUNDLE, VISIT_BUNDLE)
    bundle = copy.deepcopy(BUNDLE)
    del bundle["entry"][_entry(bundle, "Organization")[0]]
    bundle["entry"].reverse()
    issues = fresh.validate(bundle, VISIT_BUNDLE)
    assert issues == plain.validate(bundle, VISIT_BUNDLE)
    unresolved = [i["expression"][0] for i in issues if "does not resolve" in i["details"]["text"]]
    assert len(unresolved) >= 3, issues
    assert fresh.validate(BUNDLE, VISIT_BUNDLE) == plain.validate(BUNDLE, VISIT_BUNDLE)
