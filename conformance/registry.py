"""Load everything the validator knows: core definitions (the vendored subset, or the full
package), the project's value sets (``terminology/``) and profiles (``profiles/``, whose
snapshots are generated here)."""

from __future__ import annotations

from pathlib import Path

import orjson

from conformance.definitions import PROFILES, Definitions, compact_sd, load_subset
from conformance.snapshot import generate
from conformance.valuesets import expand


def _project_valuesets(defs: Definitions, folder: Path = PROFILES) -> None:
    """``terminology/`` value sets, and the few the profiles define (``profiles/ValueSet-*``)."""
    from terminology import service

    vss = dict(service.value_sets())
    for p in sorted(folder.glob("ValueSet-*.json")):
        vs = orjson.loads(p.read_bytes())
        vss[vs["url"]] = vs
    css = service.code_systems()
    for url in vss:
        defs.valuesets[url] = expand(url, vss, css)


def load_profiles(defs: Definitions, folder: Path = PROFILES) -> dict[str, str]:
    """Add the profiles in ``folder``, bases first; returns their constraint expressions by
    key (so native invariants can check they run the expression the profile states)."""
    pending = [orjson.loads(p.read_bytes()) for p in sorted(folder.glob("StructureDefinition-*.json"))]
    expressions: dict[str, str] = {}
    while pending:
        ready = [sd for sd in pending if defs.sd(sd["baseDefinition"]) is not None]
        if not ready:
            raise ValueError("profiles with unknown bases: "
                             + ", ".join(sd["url"] for sd in pending))
        for sd in ready:
            defs.add(compact_sd(sd, []) | {"elements": generate(sd, defs)})
            for el in sd["differential"]["element"]:
                for c in el.get("constraint", ()):
                    expressions[c["key"]] = c.get("expression", "")
            pending.remove(sd)
    return expressions


def load(package: Path | None = None) -> tuple[Definitions, dict[str, str]]:
    """Definitions from the vendored subset, or from an unpacked full package."""
    defs = Definitions()
    if package is None:
        load_subset(defs)
    else:
        from conformance.build_core import load_package
        from conformance.valuesets import expand as _expand

        sds, vss, css = load_package(package)
        for sd in sds:
            if sd.get("snapshot"):
                defs.add(compact_sd(sd))
        defs.resource_types = frozenset(
            sd["type"] for sd in sds if sd.get("kind") == "resource" and not sd.get("abstract")
            and sd.get("derivation", "specialization") == "specialization")
        bound = {e["binding"][1] for sd in defs.sds.values() for e in sd["elements"]
                 if "binding" in e}
        for url in bound:
            defs.valuesets[url] = _expand(url, vss, css)
    _project_valuesets(defs)
    return defs, load_profiles(defs)
