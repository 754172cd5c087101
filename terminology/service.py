"""The terminology operations, over the shipped content (``codesystems/``, ``valuesets/``,
``conceptmaps/``) and the hospitals' own maps: $lookup, $validate-code, $expand, $translate.
Answers are FHIR Parameters (ValueSet for $expand)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from terminology.translate import canonical_system, translate

HERE = Path(__file__).parent


def _overlay() -> Path:
    """Code systems the user loaded (e.g. a full ICD-10), under the data dir; they win."""
    from gateway.settings import get_settings

    return Path(get_settings().data_dir) / "terminology" / "codesystems"


def _loaded() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    overlay = _overlay()
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(overlay.glob("*.json"))) \
        if overlay.is_dir() else ()
    return _load(str(overlay), stamp)


@lru_cache(maxsize=4)
def _load(overlay: str, stamp: tuple):
    """(url → CodeSystem, url → code → concept), reloaded when the overlay files change."""
    systems = {}
    for folder in (HERE / "codesystems", Path(overlay)):
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            cs = json.loads(path.read_text(encoding="utf-8"))
            systems[cs["url"]] = cs
    index = {url: {c["code"]: c for c in cs.get("concept", [])} for url, cs in systems.items()}
    return systems, index


def code_systems() -> dict[str, dict[str, Any]]:
    return _loaded()[0]


@lru_cache
def value_sets() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((HERE / "valuesets").glob("*.json")):
        vs = json.loads(path.read_text(encoding="utf-8"))
        out[vs["url"]] = vs
    return out


def _concepts(url: str) -> dict[str, dict[str, Any]]:
    return _loaded()[1].get(url, {})


def _params(*pairs: tuple[str, str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": name, kind: value} for name, kind, value in pairs if value is not None]}


class NotFound(LookupError):
    pass


def lookup(system: str, code: str) -> dict[str, Any]:
    system = canonical_system(system)
    cs = code_systems().get(system)
    if cs is None:
        raise NotFound(f"unknown code system {system!r}")
    concept = _concepts(system).get(code)
    if concept is None:
        raise NotFound(f"code {code!r} is not in {cs.get('title', system)}")
    pairs = [("name", "valueString", cs.get("name")), ("version", "valueString", cs.get("version")),
             ("display", "valueString", concept.get("display"))]
    out = _params(*pairs)
    for d in concept.get("designation", []):
        out["parameter"].append({"name": "designation", "part": [
            {"name": "language", "valueCode": d.get("language")},
            {"name": "value", "valueString": d.get("value")}]})
    return out


def validate_code(code: str, *, system: str | None = None, url: str | None = None,
                  display: str | None = None) -> dict[str, Any]:
    if url:
        vs = value_sets().get(url)
        if vs is None:
            raise NotFound(f"unknown value set {url!r}")
        systems = [inc["system"] for inc in vs.get("compose", {}).get("include", [])]
        if system and canonical_system(system) not in systems:
            return _params(("result", "valueBoolean", False),
                           ("message", "valueString", f"{system} is not in {url}"))
    else:
        if not system:
            raise NotFound("give a system or a value set url")
        systems = [canonical_system(system)]
    for s in systems:
        if s not in code_systems():
            raise NotFound(f"unknown code system {s!r}")
        concept = _concepts(s).get(code)
        if concept:
            if display and display != concept.get("display"):
                return _params(("result", "valueBoolean", False), ("display", "valueString", concept["display"]),
                               ("message", "valueString", f"the display of {code} is {concept['display']!r}, not {display!r}"))
            return _params(("result", "valueBoolean", True), ("display", "valueString", concept.get("display")))
    return _params(("result", "valueBoolean", False),
                   ("message", "valueString", f"code {code!r} is not valid in {url or system}"))


def expand(url: str, *, filter_: str | None = None, limit: int = 1000) -> dict[str, Any]:
    vs = value_sets().get(url)
    if vs is None:
        raise NotFound(f"unknown value set {url!r}")
    contains = []
    for inc in vs.get("compose", {}).get("include", []):
        for c in code_systems().get(inc["system"], {}).get("concept", []):
            if filter_ and filter_.lower() not in (c["code"] + c.get("display", "")).lower():
                continue
            contains.append({"system": inc["system"], "code": c["code"], "display": c.get("display")})
    if len(contains) > limit:
        raise ValueError(f"the expansion has {len(contains)} codes, more than {limit}")
    return {**{k: vs[k] for k in ("resourceType", "id", "url", "version", "name", "status") if k in vs},
            "expansion": {"total": len(contains), "contains": contains}}


def translate_code(system: str, code: str, target: str | None, *, org: str | None = None,
                   local_maps: Any = None) -> dict[str, Any]:
    """The hospital's maps first (``org``), then the national ones."""
    from terminology.local_maps import KINDS

    matches = []
    if org and local_maps is not None:
        for name, (_src, tgt) in KINDS.items():
            if target and tgt != target:
                continue
            t = local_maps.translate(org, name, system, code)
            if t:
                matches.append((t, tgt))
    if not matches and target:
        t = translate(system, code, target)
        if t:
            matches.append((t, target))
    if not matches:
        return _params(("result", "valueBoolean", False),
                       ("message", "valueString", f"no map translates {code!r} of {system}"))
    out = _params(("result", "valueBoolean", True))
    for t, tgt in matches:
        out["parameter"].append({"name": "match", "part": [
            {"name": "equivalence", "valueCode": t.equivalence},
            {"name": "concept", "valueCoding": {"system": tgt, "code": t.code}},
            {"name": "source", "valueUri": t.map_url + (f"|{t.map_version}" if t.map_version else "")}]})
    return out
