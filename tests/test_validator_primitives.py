"""Primitive formats: the shortcut that spares the regex engine for printable strings agrees
with the core regexes it stands in for, and a field's remembered clean values never hide
an issue."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.primitives import _PRINTABLE_PASSES, problem_function
from conformance.validator import validator

# characters around the edges of the regexes: ASCII whitespace and controls, the space,
# Unicode spaces and separators, and ordinary text (CJK included)
_CHARS = st.sampled_from(list(" \t\n\r\x0b\x0c\x00\x1f\x7f\x85\xa0\u2028\u3000") +
                         list("aZ09#/:.-_%|") + ["北", "京"])
_TEXT = st.lists(_CHARS, max_size=12).map("".join)


def _regex(code: str) -> str:
    sd = validator().defs.type_sd(code)
    return next(e["regex"] for e in sd["elements"] if e["path"].endswith(".value"))


def test_the_shortcut_covers_the_core_regexes_it_names():
    for code in ("string", "markdown", "uri", "url", "canonical"):
        assert _regex(code) in _PRINTABLE_PASSES, code


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(text=_TEXT)
def test_printable_shortcut_agrees_with_the_regex(text):
    for code in ("string", "markdown", "uri", "url", "canonical", "code", "id"):
        regex = _regex(code)
        expected = None
        if not text:
            expected = "must not be empty"
        elif re.fullmatch(regex, text, re.ASCII) is None:
            expected = f"is not a valid {code}"
        assert problem_function(code, regex)(text) == expected, (code, text)


def test_a_value_found_clean_in_one_place_is_still_checked_in_another():
    """"bogus" is a fine ``code`` in Coding.code, and is remembered as such; Patient.gender
    (a required binding) still refuses it, each time."""
    patient = {"resourceType": "Patient",
               "maritalStatus": {"coding": [{"system": "urn:x", "code": "bogus"}]},
               "gender": "bogus"}
    for _ in range(3):
        issues = validator().validate(patient)
        assert [(i["code"], i["expression"]) for i in issues if i["severity"] == "error"] == [
            ("code-invalid", ["Patient.gender"])]
