"""The rule checks every adapter output must pass, on the FHIR Bundle the gateway renders
from it: references resolve, exactly one Patient, no empty resources, every identifier has
a system, and the bundle validator passes. Each returns problems as text (none: passed)."""

from __future__ import annotations

from typing import Any


def validator_problems(bundle: dict[str, Any]) -> list[str]:
    """The gateway's bundle validator — the one place it is called, so a profile-driven
    validator can take its place."""
    from conformance.validator import validate_bundle

    return [f"{(i.get('expression') or ['?'])[0]}: {i['details']['text']}"
            for i in validate_bundle(bundle) if i.get("severity") in ("error", "fatal")]


def _walk(node: Any, path: str):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def reference_problems(bundle: dict[str, Any]) -> list[str]:
    entries = bundle.get("entry") or []
    full_urls = {e.get("fullUrl") for e in entries}
    conditional = {f"{e['resource']['resourceType']}?{e['request']['ifNoneExist']}"
                   for e in entries if e.get("request", {}).get("ifNoneExist")}
    out = []
    for i, entry in enumerate(entries):
        for path, node in _walk(entry.get("resource"), f"Bundle.entry[{i}].resource"):
            if isinstance(node, dict) and isinstance(node.get("reference"), str):
                ref = node["reference"]
                if ref.startswith("urn:uuid:") and ref not in full_urls:
                    out.append(f"{path}.reference: {ref} names no entry of the Bundle")
                elif "?" in ref and ref not in conditional and not ref.startswith("urn:"):
                    out.append(f"{path}.reference: {ref} matches no conditional create")
    return out


def patient_problems(bundle: dict[str, Any]) -> list[str]:
    n = sum(1 for e in bundle.get("entry") or [] if e.get("resource", {}).get("resourceType") == "Patient")
    return [] if n == 1 else [f"the Bundle has {n} Patient resources, not exactly one"]


def empty_problems(bundle: dict[str, Any]) -> list[str]:
    out = []
    for i, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") or {}
        where = f"Bundle.entry[{i}].resource"
        if not set(resource) - {"resourceType", "id", "meta"}:
            out.append(f"{where}: an empty {resource.get('resourceType', 'resource')}")
            continue
        for path, node in _walk(resource, where):
            if node in ("", [], {}) or node is None:
                out.append(f"{path}: empty value")
    return out


def identifier_problems(bundle: dict[str, Any]) -> list[str]:
    out = []
    for i, entry in enumerate(bundle.get("entry") or []):
        for path, node in _walk(entry.get("resource"), f"Bundle.entry[{i}].resource"):
            if path.endswith(".identifier"):
                items = node if isinstance(node, list) else [node]
                for j, ident in enumerate(items):
                    if isinstance(ident, dict) and "value" in ident and not ident.get("system"):
                        out.append(f"{path}[{j}]: identifier {ident.get('value')!r} has no system")
    return out


BUNDLE_RULES = (
    ("references resolve", reference_problems),
    ("exactly one Patient", patient_problems),
    ("no empty resources", empty_problems),
    ("every identifier has a system", identifier_problems),
    ("validator passes", validator_problems),
)
