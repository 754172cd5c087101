"""StructureDefinitions in the compact form the validator compiles, and where they come from.

Three sources, one registry (``Definitions``):

* ``conformance/core/r4-core-subset.json.gz`` — vendored, precompiled: the R4 snapshots of
  every data type and of the resource types the gateway renders, and the expansions of the
  value sets they bind (built by ``conformance/build_core.py`` from the full package). It
  is all the gateway needs, offline, and loads in a few milliseconds.
* the full ``hl7.fhir.r4.examples@4.0.1`` package in the cache (``conformance/corepkg.py``)
  — every R4 definition, for validating any resource type (the official-examples test).
* ``profiles/`` — the project's profiles, differentials only; their snapshots are
  generated at load time (``conformance/snapshot.py``).

A compact element keeps only what validation reads: id, path, min, max, ``bmax`` (the
base element's max: it decides JSON array or not), ``types`` (code, profile, target),
``cref`` (contentReference), ``fixed`` / ``pattern`` ([element name, value]), ``binding``
([strength, value set]), ``con`` ([key, severity, human, expression]), ``slicing``,
``slice`` (sliceName), ``regex`` (primitive value format).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
SUBSET = HERE / "core" / "r4-core-subset.json.gz"
PROFILES = HERE.parent / "profiles"
CORE = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"

J = dict[str, Any]


def _type_code(t: J) -> str:
    code = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", ()):
            if ext.get("url") == FHIR_TYPE:
                return ext["valueUrl"]
        return {"Boolean": "boolean", "Integer": "integer", "Decimal": "decimal",
                "Date": "date", "DateTime": "dateTime", "Time": "time"}.get(
                    code.rsplit(".", 1)[1], "string")
    return code


def compact_element(e: J) -> J:
    out: J = {"id": e.get("id") or e["path"], "path": e["path"],
              "min": e.get("min", 0), "max": e.get("max", "*"),
              "bmax": (e.get("base") or {}).get("max", e.get("max", "*"))}
    if e.get("sliceName"):
        out["slice"] = e["sliceName"]
    types = []
    for t in e.get("type", ()):
        ct: J = {"code": _type_code(t)}
        if t.get("profile"):
            ct["profile"] = t["profile"]
        if t.get("targetProfile"):
            ct["target"] = t["targetProfile"]
        types.append(ct)
        for ext in t.get("extension", ()):
            if ext.get("url") == REGEX:
                out["regex"] = ext["valueString"]
    if types:
        out["types"] = types
    if e.get("contentReference"):
        out["cref"] = e["contentReference"]
    for k, v in e.items():
        if k.startswith("fixed"):
            out["fixed"] = [k[5:], v]
        elif k.startswith("pattern"):
            out["pattern"] = [k[7:], v]
    b = e.get("binding")
    if b and b.get("valueSet") and b.get("strength") in ("required", "extensible"):
        out["binding"] = [b["strength"], b["valueSet"].split("|")[0]]
    cons = [[c["key"], c.get("severity", "error"), c.get("human", ""), c["expression"]]
            for c in e.get("constraint", ()) if c.get("expression")]
    if cons:
        out["con"] = cons
    if e.get("slicing"):
        s = e["slicing"]
        out["slicing"] = {"disc": [[d["type"], d["path"]] for d in s.get("discriminator", ())],
                          "rules": s.get("rules", "open")}
    return out


def compact_sd(sd: J, snapshot: list[J] | None = None) -> J:
    elements = snapshot if snapshot is not None else sd["snapshot"]["element"]
    return {"url": sd["url"], "name": sd.get("name"), "type": sd["type"], "kind": sd.get("kind"),
            "abstract": sd.get("abstract", False), "base": sd.get("baseDefinition"),
            "derivation": sd.get("derivation", "specialization"),
            "elements": [compact_element(e) for e in elements]}


class Definitions:
    """url → compact StructureDefinition; type name → its core url; value set url →
    expansion (a frozenset of (system, code)) or None when it cannot be expanded locally."""

    def __init__(self) -> None:
        self.sds: dict[str, J] = {}
        self.resource_types: frozenset[str] = frozenset()  # every R4 resource type name
        self.valuesets: dict[str, frozenset[tuple[str, str]] | None] = {}

    def add(self, compact: J) -> None:
        self.sds[compact["url"]] = compact

    def sd(self, ref: str) -> J | None:
        ref = ref.split("|")[0]
        return self.sds.get(ref) or self.sds.get(CORE + ref)

    def type_sd(self, type_code: str) -> J | None:
        return self.sds.get(CORE + type_code)

    def unknown_type(self, rtype: object, path: str) -> J:
        """The issue for a resourceType with no definition here."""
        from gateway.errors import issue

        if isinstance(rtype, str) and rtype in self.resource_types:
            return issue(f"{rtype} is an R4 resource type whose definition this validator does "
                         "not carry (the vendored core covers the types the gateway renders; "
                         "`gateway validate --full` uses the full R4 package)",
                         f"{path}.resourceType", code="not-supported", error_code="6001")
        return issue(f"unknown resourceType {rtype!r}", f"{path}.resourceType" if rtype else path,
                     code="structure", error_code="6001")


def load_subset(defs: Definitions, path: Path = SUBSET) -> None:
    data = orjson.loads(gzip.decompress(path.read_bytes()))
    defs.resource_types = frozenset(data["resource_types"])
    for sd in data["structures"]:
        defs.add(sd)
    for url, codes in data["valuesets"].items():
        defs.valuesets[url] = None if codes is None else frozenset(map(tuple, codes))
