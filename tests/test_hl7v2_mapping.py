"""The v2 mapping engine: compiled rules, where values came from (worked out on demand),
and the path setter it writes with."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.kangtai_v24 as kangtai
from adapters.hl7v2 import engine
from adapters.hl7v2.rules import standard
from adapters.paths import set_path, setter
from gateway.hl7.message import HL7ParseError, parse

GOLDEN = Path(__file__).parent / "golden"
MESSAGES = sorted(GOLDEN.rglob("input.hl7"))
DFT = (GOLDEN / "hl7v2" / "dft_p03" / "input.hl7").read_bytes()


def _edit(raw: bytes, line: int, field: int, value: str) -> bytes:
    lines = raw.decode("utf-8").replace("\n", "\r").split("\r")
    parts = lines[line].split("|")
    parts += [""] * (field + 1 - len(parts))
    parts[field] = value
    lines[line] = "|".join(parts)
    return "\r".join(lines).encode("utf-8")


def _tracked(msg, rules=None) -> engine.Mapped:
    ruleset = rules or standard()
    plan = engine._plan(ruleset, f"{msg.message_type}^{msg.trigger}")
    return engine._run(msg, plan, "H11010101", True)


def test_where_values_came_from():
    mapped = engine.map_message(parse(DFT), sender_org="H11010101")
    assert not mapped.issues
    assert mapped.hl7_path("fees[1].amount") == "FT1[2]-11"
    assert mapped.hl7_path("fees[1].name") == "FT1[2]-7.2"
    assert mapped.hl7_path("fees[1].national_code") == "FT1[2]-7.4"
    assert mapped.hl7_path("patient.cards[2].value") == "PID-3[3]"
    assert mapped.hl7_path("visit_time") == "PV1-44"
    assert mapped.members["fees[1]"] == ["FT1[2]"]
    # a value that is missing: the field the rules would have read it from
    assert "national_code" not in mapped.data["fees"][0]
    assert mapped.hl7_path("fees[0].national_code") == "FT1-7.4"
    assert mapped.hl7_path("fees[1].unknown") == "FT1[2]"
    assert mapped.hl7_path("chief_complaint") == "PV2-3.2"


def test_problems_name_their_field():
    bad = _edit(_edit(DFT, 5, 11, "10.5O"), 3, 44, "")
    mapped = engine.map_message(parse(bad), sender_org="H11010101")
    assert ("FT1[2]-11", "102", "FT1[2]-11: '10.5O' is not a number") in mapped.issues
    assert ("PV1-44", "101", "PV1-44 is required and empty") in mapped.issues
    closed = engine.map_message(parse(_edit(DFT, 3, 2, "X")), sender_org="H11010101")
    assert closed.issues == [("PV1-2", "103", "PV1-2: 'X' is not one of E, O")]


_VALUES = st.one_of(
    st.sampled_from(["", "1", "2.50", "x1", "O", "E", "NM", "ST", "20260301", "202603011030",
                     "2026030110", "20261301", "<5", "1-2", "D5", "NHSA", "CITIZEN", "甲",
                     "\\F\\", "\\X41\\", "\\H\\", "\\.br\\", "a\\b", "^", "&", "~", "a^b&c~d",
                     "^^^H1^PI", "x&y^z"]),
    st.text(alphabet="ab1.^&~\\ 张", max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(MESSAGES), edits=st.lists(
    st.tuples(st.integers(1, 12), st.integers(1, 45), _VALUES), max_size=6),
    dialect=st.booleans())
def test_provenance_pass_maps_the_same(case, edits, dialect):
    """The values are set once without bookkeeping; where they came from is worked out
    by mapping again with it. Both passes must agree on everything else."""
    raw = case.read_bytes()
    for line, field, value in edits:
        lines = raw.count(b"\r") + raw.count(b"\n")
        if line < lines:
            try:
                raw = _edit(raw, line, field, value)
            except UnicodeDecodeError:
                return
    try:
        msg = parse(raw, default_charset="gb18030")
    except HL7ParseError:
        return
    rules = kangtai.RULES if dialect else None
    try:
        fast = engine.map_message(msg, sender_org="H11010101", rules=rules)
    except engine.UnsupportedMessage:
        return
    tracked = _tracked(msg, rules)
    assert repr(fast.data) == repr(tracked.data)
    assert fast.issues == tracked.issues
    assert fast.unread == tracked.unread
    assert fast.z_segments == tracked.z_segments
    assert fast.provenance == tracked.provenance
    assert fast.members == tracked.members


_PATHS = st.lists(st.tuples(st.sampled_from(["a", "b", "cards", "x[0]"]), st.booleans()),
                  min_size=1, max_size=4).map(
    lambda parts: ".".join(name + ("[]" if append else "") for name, append in parts))


@given(paths=st.lists(st.tuples(_PATHS, st.integers()), max_size=8))
def test_setter_sets_what_set_path_sets(paths):
    by_path: dict = {}
    by_setter: dict = {}
    for path, value in paths:
        try:
            set_path(by_path, path, value)
        except (AttributeError, TypeError):  # a path through a value that is not a dict / list
            with pytest.raises((AttributeError, TypeError)):
                setter(path)(by_setter, value)
            break
        setter(path)(by_setter, value)
        assert by_setter == by_path
