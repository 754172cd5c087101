"""Whatever JSON arrives, the validator answers with issues and never raises."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.validator import VISIT_BUNDLE, validate
from tests.support import ROOT

BUNDLE = json.loads((ROOT / "tests" / "golden" / "canonical" / "basic" / "expected.bundle.json")
                    .read_text("utf-8"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["coding", "system", "code", "reference", "value", "extension", "url",
                         "contained", "resourceType", "id", "entry", "resource", "type"]),
        inner, max_size=3),
    max_leaves=8)


def _places(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _places(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _places(v, (*path, i))


PLACES = [p for p in _places(BUNDLE) if p]


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(where=st.sampled_from(PLACES), value=json_values)
def test_any_value_anywhere_gives_issues_not_exceptions(where, value):
    bundle = copy.deepcopy(BUNDLE)
    node = bundle
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    issues = validate(bundle, VISIT_BUNDLE)
    assert all(i["severity"] in ("fatal", "error", "warning", "information") for i in issues)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(value=json_values)
def test_any_document_gives_issues_not_exceptions(value):
    assert isinstance(validate(value), list)
    if isinstance(value, dict):
        assert isinstance(validate({**value, "resourceType": "Patient"}), list)
