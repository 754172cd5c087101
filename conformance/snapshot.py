"""Snapshot generation: a profile's differential + its base's snapshot → its snapshot.

Enough of the FHIR algorithm for the project's profiles, written by hand because no
Python library generates snapshots: every differential element (matched by ``id``)
narrows its base element — min, max, type, fixed / pattern, binding, slicing — and adds
its constraints; a slice (``Patient.identifier:citizenId``) starts as a copy of the
element it slices, with its children; a path below an element whose children the base
snapshot does not list (``Encounter.period.start``) first unfolds that element's data
type. The result is in the compact form of ``conformance/definitions.py``.
"""

from __future__ import annotations

import copy
from typing import Any

from conformance.definitions import Definitions, compact_element

J = dict[str, Any]


class SnapshotError(ValueError):
    pass


def _index(snap: list[J], eid: str) -> int | None:
    for i, e in enumerate(snap):
        if e["id"] == eid:
            return i
    return None


def _subtree_end(snap: list[J], i: int) -> int:
    """Index after element i's descendants and slices."""
    eid = snap[i]["id"]
    j = i + 1
    while j < len(snap) and (snap[j]["id"].startswith(eid + ".") or
                             snap[j]["id"].startswith(eid + ":")):
        j += 1
    return j


def _rebase(e: J, old_id: str, new_id: str, old_path: str, new_path: str) -> J:
    e = copy.deepcopy(e)
    e["id"] = new_id + e["id"][len(old_id):]
    e["path"] = new_path + e["path"][len(old_path):]
    return e


def _unfold(snap: list[J], i: int, defs: Definitions) -> None:
    """Insert the children of element i's (single) data type after it."""
    el = snap[i]
    types = el.get("types") or ()
    if len(types) != 1:
        raise SnapshotError(f"{el['id']}: cannot unfold an element with {len(types)} types")
    tsd = defs.sd(types[0].get("profile", [None])[0] or "") or defs.type_sd(types[0]["code"])
    if tsd is None:
        raise SnapshotError(f"{el['id']}: unknown type {types[0]['code']}")
    root = tsd["elements"][0]
    children = [_rebase(c, root["id"], el["id"], root["path"], el["path"])
                for c in tsd["elements"][1:]]
    snap[i + 1:i + 1] = children


def _merge(target: J, d: J, defs: Definitions) -> None:
    for k in ("min", "max"):
        if k in d:
            target[k] = d[k]
    if "type" in d:
        target["types"] = compact_element({"path": "x", "type": d["type"]}).get("types", [])
    for k, v in d.items():
        if k.startswith("fixed"):
            target["fixed"] = [k[5:], v]
        elif k.startswith("pattern"):
            target["pattern"] = [k[7:], v]
    if "binding" in d:
        b = compact_element({"path": "x", "binding": d["binding"]}).get("binding")
        if b:
            target["binding"] = b
        else:
            target.pop("binding", None)
    if "constraint" in d:
        cons = compact_element({"path": "x", "constraint": d["constraint"]}).get("con", [])
        target["con"] = [c for c in target.get("con", [])
                         if c[0] not in {x[0] for x in cons}] + cons
    if "slicing" in d:
        target["slicing"] = compact_element({"path": "x", "slicing": d["slicing"]})["slicing"]


def generate(profile: J, defs: Definitions) -> list[J]:
    """The compact snapshot of ``profile`` (a StructureDefinition with a differential)."""
    base = defs.sd(profile["baseDefinition"])
    if base is None:
        raise SnapshotError(f"{profile['url']}: unknown base {profile['baseDefinition']}")
    snap = copy.deepcopy(base["elements"])
    for d in profile["differential"]["element"]:
        eid = d.get("id") or d["path"]
        i = _index(snap, eid)
        if i is None:
            parent_id, _, last = eid.rpartition(".")
            if ":" in last:  # a new slice: a copy of the sliced element and its children
                sliced_id = f"{parent_id}.{last.split(':', 1)[0]}"
                si = _index(snap, sliced_id)
                if si is None:
                    raise SnapshotError(f"{eid}: no element {sliced_id} to slice")
                end = _subtree_end(snap, si)
                own = [e for e in snap[si:end] if e["id"] == sliced_id
                       or e["id"].startswith(sliced_id + ".")]
                copies = [_rebase(e, sliced_id, eid, "", "") for e in own]  # same paths
                copies[0].pop("slicing", None)
                copies[0]["slice"] = last.split(":", 1)[1]
                snap[end:end] = copies
                i = end
            else:
                pi = _index(snap, parent_id)
                if pi is None:
                    raise SnapshotError(f"{eid}: no parent element {parent_id}")
                if pi + 1 >= len(snap) or not snap[pi + 1]["id"].startswith(parent_id + "."):
                    _unfold(snap, pi, defs)
                i = _index(snap, eid)
                if i is None:
                    raise SnapshotError(f"{eid}: no such element in the base")
        _merge(snap[i], d, defs)
    return snap


if __name__ == "__main__":  # python -m conformance.snapshot URL...: a profile's generated snapshot
    import sys

    import orjson

    from conformance.validator import validator

    for url in sys.argv[1:]:
        sd = validator().defs.sd(url)
        if sd is None:
            print(f"unknown profile {url}", file=sys.stderr)
            sys.exit(1)
        sys.stdout.write(orjson.dumps(sd, option=orjson.OPT_INDENT_2).decode() + "\n")
