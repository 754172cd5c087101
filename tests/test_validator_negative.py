"""The negative corpus (tests/golden/validator/negative.json): one mutation per rule, each
adding exactly its one issue — severity, code and FHIRPath — and nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from conformance.validator import VISIT_BUNDLE, validate

GOLDEN = Path(__file__).parent / "golden"
BUNDLE = json.loads((GOLDEN / "canonical" / "basic" / "expected.bundle.json").read_text("utf-8"))
CASES = json.loads((GOLDEN / "validator" / "negative.json").read_text("utf-8"))["cases"]


def _key(i: dict) -> tuple:
    return i["severity"], i["code"], tuple(i.get("expression", ())), i["details"]["text"]


def _mutated(case: dict) -> tuple[dict, str]:
    bundle = copy.deepcopy(BUNDLE)
    if case["target"] == "Bundle":
        node, where = bundle, "Bundle"
    else:
        i = next(i for i, e in enumerate(bundle["entry"])
                 if e["resource"]["resourceType"] == case["target"])
        node, where = bundle["entry"][i]["resource"], f"Bundle.entry[{i}].resource"
    *parents, last = case["path"]
    for k in parents:
        node = node[k]
    if case.get("delete"):
        del node[last]
    else:
        value = case["set"]
        if isinstance(value, str) and value.startswith("@"):  # the fullUrl of an entry of that type
            value = next(e["fullUrl"] for e in bundle["entry"]
                         if e["resource"]["resourceType"] == value[1:])
        if isinstance(node, list) and last == len(node):
            node.append(value)
        elif isinstance(node, list) and case["path"][-2:-1] == ["identifier"]:
            node.insert(last, value)
        else:
            node[last] = value
    return bundle, where


def test_the_unmutated_bundle_has_no_errors():
    assert not [i for i in validate(BUNDLE, VISIT_BUNDLE) if i["severity"] == "error"]


@pytest.mark.parametrize("case", CASES, ids=[c["rule"] for c in CASES])
def test_one_mutation_one_issue(case):
    baseline = {_key(i) for i in validate(BUNDLE, VISIT_BUNDLE)}
    bundle, where = _mutated(case)
    new = [i for i in validate(bundle, VISIT_BUNDLE) if _key(i) not in baseline]
    severity, code, expression = case["expect"]
    assert [(i["severity"], i["code"], i.get("expression")) for i in new] == [
        (severity, code, [expression.replace("{r}", where)])], new
