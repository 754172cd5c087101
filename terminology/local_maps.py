"""Per-hospital ConceptMaps: imported from CSV, versioned, searched before national maps.

Each import is a new version (who, when, how many rows); the current version's table is
compiled into memory and re-read when its version changes (checked at most every few
seconds), so a translation in the hot path is a dictionary lookup.

    gw:term:map:{org}:{name}            hash   version → ConceptMap JSON (every version kept)
    gw:term:map:{org}:{name}:current    string the current version
    gw:term:gaps:{org}                  zset   "map|system|code" → times it was missing

Map names and what they translate (the source system may be given per row in the CSV):

    sex          the hospital's sex codes (e.g. table AAA002 or SEX)  → GB/T 2261.1
    fee-item     the hospital's fee item codes                         → NHSA list codes
    drug         the hospital's drug codes                             → NHSA list codes
    department   the hospital's department codes                       → national department codes
    diagnosis    the hospital's diagnosis codes                        → ICD-10 (China)
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import redis

from gateway.identifiers import BASE, ICD10, org_scoped
from terminology.translate import GBT_2261_1, Translation, translate

NHSA_LIST = f"{BASE}/CodeSystem/nhsa-medical-list"
KINDS: dict[str, tuple[str | None, str]] = {  # name → (default source kind, target system)
    "sex": (None, GBT_2261_1),
    "fee-item": ("fee-item", NHSA_LIST),
    "drug": ("drug", NHSA_LIST),
    "department": ("department", f"{BASE}/CodeSystem/national-department"),
    "diagnosis": ("diagnosis", ICD10),
}
EQUIVALENCES = {"relatedto", "equivalent", "equal", "wider", "subsumes", "narrower",
                "specializes", "inexact", "unmatched", "disjoint"}
COLUMNS = ("source_system", "source_code", "source_display", "target_code", "target_display",
           "equivalence")
CACHE_SECONDS = 2.0


def hospital_first(local: LocalMaps | None, org: str, name: str, system: str, code: str,
                   national_target: str | None = None) -> Translation | None:
    """The lookup order: the hospital's own ``name`` map, then the national maps to
    ``national_target`` (when given)."""
    t = local.translate(org, name, system, code) if local is not None else None
    if t is None and national_target:
        t = translate(system, code, national_target)
    return t


class ImportError_(ValueError):
    """A CSV that cannot be imported; ``problems`` name the line and column."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems[:10]) + (" …" if len(problems) > 10 else ""))


@dataclass(frozen=True)
class MapInfo:
    org: str
    name: str
    version: int
    url: str
    rows: int


def gap_key(org: str) -> str:
    """The sorted set counting a hospital's codes that no map translated."""
    return f"gw:term:gaps:{org}"


def gap_member(name: str, system: str, code: str) -> str:
    return f"{name}|{system}|{code}"


def map_url(org: str, name: str) -> str:
    return f"{BASE}/ConceptMap/{org}-{name}"


def parse_csv(text: str, org: str, name: str) -> list[dict[str, str]]:
    """Rows of a map CSV; every problem is reported with its line number."""
    if name not in KINDS:
        raise ImportError_([f"unknown map {name!r}; one of {', '.join(KINDS)}"])
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = {"source_code", "target_code"} - set(header)
    if missing:
        raise ImportError_([f"line 1: missing column(s) {', '.join(sorted(missing))}; "
                            f"columns: {', '.join(COLUMNS)}"])
    unknown = set(header) - set(COLUMNS)
    problems = [f"line 1: unknown column(s) {', '.join(sorted(unknown))}"] if unknown else []
    default_kind, _target = KINDS[name]
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        system = row.get("source_system") or (org_scoped(org, default_kind) if default_kind else "")
        if not system:
            problems.append(f"line {line}: source_system is required for the {name} map")
        if not row.get("source_code"):
            problems.append(f"line {line}: source_code is empty")
        eq = row.get("equivalence") or "equivalent"
        if eq not in EQUIVALENCES:
            problems.append(f"line {line}: equivalence {eq!r} is not one of {', '.join(sorted(EQUIVALENCES))}")
        if not row.get("target_code") and eq != "unmatched":
            problems.append(f"line {line}: target_code is empty (use equivalence 'unmatched' for none)")
        key = (system, row.get("source_code"))
        if key in seen:
            problems.append(f"line {line}: {row.get('source_code')!r} is mapped again (first on line {seen[key]})")
        seen[key] = line
        rows.append({"source_system": system, "source_code": row.get("source_code", ""),
                     "source_display": row.get("source_display", ""),
                     "target_code": row.get("target_code", ""),
                     "target_display": row.get("target_display", ""), "equivalence": eq})
    if not rows and not problems:
        problems.append("the file has no rows")
    if problems:
        raise ImportError_(problems)
    return rows


def concept_map(org: str, name: str, version: int, rows: list[dict[str, str]], who: str,
                when: str) -> dict[str, Any]:
    target = KINDS[name][1]
    groups: dict[str, list] = {}
    for row in rows:
        element = {"code": row["source_code"], "target": [{
            "code": row["target_code"], "equivalence": row["equivalence"]}]}
        if row["source_display"]:
            element["display"] = row["source_display"]
        if row["target_display"]:
            element["target"][0]["display"] = row["target_display"]
        if row["equivalence"] == "unmatched":
            element["target"][0].pop("code")
        groups.setdefault(row["source_system"], []).append(element)
    return {
        "resourceType": "ConceptMap", "id": f"{org}-{name}", "url": map_url(org, name),
        "version": str(version), "name": f"{org}_{name}".replace("-", "_"),
        "status": "active", "date": when, "publisher": who or org,
        "description": f"{org}'s {name} codes to national codes ({len(rows)} rows), imported by {who or 'unknown'}",
        "targetUri": target,
        "group": [{"source": s, "target": target, "element": els} for s, els in groups.items()],
    }


class LocalMaps:
    def __init__(self, r: redis.Redis):
        self.r = r
        self._cache: dict[tuple[str, str], tuple[float, int, dict]] = {}

    def import_csv(self, org: str, name: str, text: str, who: str = "") -> MapInfo:
        rows = parse_csv(text, org, name)
        key = f"gw:term:map:{org}:{name}"
        when = datetime.now(timezone.utc).isoformat()
        for _ in range(10):  # optimistic: a concurrent import takes the next version
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(key + ":current")
                    version = int(pipe.get(key + ":current") or 0) + 1
                    cmap = concept_map(org, name, version, rows, who, when)
                    pipe.multi()
                    pipe.hset(key, str(version), orjson.dumps(cmap))
                    pipe.set(key + ":current", version)
                    pipe.sadd("gw:term:maps", f"{org}:{name}")
                    pipe.execute()
                    self._cache.pop((org, name), None)
                    return MapInfo(org, name, version, cmap["url"], len(rows))
                except redis.WatchError:
                    continue
        raise RuntimeError("could not import: the map kept changing")

    def get(self, org: str, name: str, version: int | None = None) -> dict[str, Any] | None:
        key = f"gw:term:map:{org}:{name}"
        if version is None:
            current = self.r.get(key + ":current")
            if current is None:
                return None
            version = int(current)
        raw = self.r.hget(key, str(version))
        return orjson.loads(raw) if raw else None

    def list(self) -> list[dict[str, Any]]:
        out = []
        for member in sorted(self.r.smembers("gw:term:maps")):
            org, name = member.decode().split(":", 1)
            cmap = self.get(org, name)
            if cmap:
                out.append({"org": org, "map": name, "version": int(cmap["version"]),
                            "date": cmap["date"], "by": cmap["publisher"], "url": cmap["url"]})
        return out

    def _table(self, org: str, name: str) -> tuple[int, dict]:
        now = time.monotonic()
        cache, key = self._cache, (org, name)
        # `in` and a subscript, not .get(): compiled, a dict's .get is a Python method
        # call (the name looked up, a bound method made) that costs several times both
        hit = cache[key] if key in cache else None
        if hit and hit[0] > now:
            return hit[1], hit[2]
        current = self.r.get(f"gw:term:map:{org}:{name}:current")
        version = int(current) if current else 0
        if hit and hit[1] == version:
            table = hit[2]
        else:
            table = {}
            cmap = self.get(org, name, version) if version else None
            for group in (cmap or {}).get("group", ()):
                for el in group["element"]:
                    t = el["target"][0]
                    if t["equivalence"] != "unmatched":
                        table[(group["source"], el["code"])] = Translation(
                            t["code"], t["equivalence"], cmap["url"], cmap["version"])
        cache[key] = (now + CACHE_SECONDS, version, table)
        return version, table

    def translate(self, org: str, name: str, system: str, code: str) -> Translation | None:
        """The hospital's own translation of (system, code), or None."""
        table, key = self._table(org, name)[1], (system, code)
        return table[key] if key in table else None  # (see _table)

    def record_gap(self, org: str, name: str, system: str, code: str) -> None:
        self.r.zincrby(gap_key(org), 1, gap_member(name, system, code))

    def gaps(self, org: str | None = None) -> list[dict[str, Any]]:
        orgs = [org] if org else sorted({k.decode().split(":")[-1] for k in self.r.scan_iter("gw:term:gaps:*")})
        out = []
        for o in orgs:
            for member, count in self.r.zrevrange(f"gw:term:gaps:{o}", 0, -1, withscores=True):
                name, system, code = member.decode().split("|", 2)
                out.append({"org": o, "map": name, "system": system, "code": code,
                            "count": int(count)})
        return out
