"""Code translation through ConceptMaps (the national maps shipped in ``conceptmaps/``).

In-process and cheap: maps are loaded once into dictionaries. An unknown code gives
``None`` — never an exception in the hot path; the caller decides the policy. Per-hospital
maps are searched before national ones (the terminology work adds them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAPS_DIR = Path(__file__).parent / "conceptmaps"

GBT_2261_1 = "urn:oid:2.16.156.10011.2.3.3.4"
FHIR_GENDER = "http://hl7.org/fhir/administrative-gender"
V2_0001 = "http://terminology.hl7.org/CodeSystem/v2-0001"

# Names senders commonly use for a system, as written in canonical visits.
SYSTEM_ALIASES = {
    "GB/T 2261.1": GBT_2261_1, "GBT2261.1": GBT_2261_1, "2.16.156.10011.2.3.3.4": GBT_2261_1,
    "HL70001": V2_0001, "v2-0001": V2_0001, "administrative-gender": FHIR_GENDER,
}


@dataclass(frozen=True, slots=True)
class Translation:
    code: str
    equivalence: str
    map_url: str
    map_version: str


@lru_cache
def _index() -> dict[tuple[str, str], dict[str, Translation]]:
    """(source system, target system) → source code → translation."""
    index: dict[tuple[str, str], dict[str, Translation]] = {}
    for path in sorted(MAPS_DIR.glob("*.json")):
        cmap = json.loads(path.read_text(encoding="utf-8"))
        for group in cmap.get("group", ()):
            table = index.setdefault((group["source"], group["target"]), {})
            for element in group.get("element", ()):
                for target in element.get("target", ()):
                    table.setdefault(element["code"], Translation(
                        target["code"], target["equivalence"], cmap["url"], cmap["version"]))
    return index


def canonical_system(system: str) -> str:
    return SYSTEM_ALIASES.get(system, system)


# (system, code, target) → what translate() gives: the shipped maps never change while the
# process runs and a Translation is immutable, so an answer is kept and shared (a visit
# asks the same two — its sex, its gender — as every other). Emptied when full.
_ANSWERS: dict[tuple[str, str, str], Translation | None] = {}
_ANSWERS_MAX = 4096


def translate(system: str, code: str, target: str) -> Translation | None:
    """Translate ``code`` from ``system`` to ``target``; identity when the systems match."""
    key = (system, code, target)
    try:
        return _ANSWERS[key]
    except KeyError:
        pass
    if len(_ANSWERS) >= _ANSWERS_MAX:
        _ANSWERS.clear()
    found = _ANSWERS[key] = _translate(system, code, target)
    return found


def _translate(system: str, code: str, target: str) -> Translation | None:
    system = canonical_system(system)
    if system == target:
        return Translation(code, "equal", "", "")
    return _index().get((system, target), {}).get(code)
