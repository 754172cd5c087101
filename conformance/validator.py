"""Bundle validation, first cut: the FHIR R4 structure (via the ``fhir.resources`` models)
and references inside the Bundle. The profile-driven validator deepens this.

Returns OperationOutcome issues; ``expression`` is the FHIRPath of the fault, e.g.
``Bundle.entry[2].resource.birthDate``.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from conformance.shape_cache import ShapeCache, Unsure, signature
from gateway.errors import issue, pydantic_message, pydantic_path

_SHAPES = ShapeCache()


def _references(node: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out.append((f"{path}.reference", value))
            elif isinstance(value, (dict, list)):
                _references(value, f"{path}.{key}", out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                _references(value, f"{path}[{i}]", out)


def reference_issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``urn:uuid:`` reference must name an entry's fullUrl."""
    entries = bundle.get("entry") or []
    full_urls = {e.get("fullUrl") for e in entries}
    issues = []
    for i, entry in enumerate(entries):
        refs: list[tuple[str, str]] = []
        _references(entry.get("resource"), f"Bundle.entry[{i}].resource", refs)
        for path, ref in refs:
            if ref.startswith("urn:uuid:") and ref not in full_urls:
                issues.append(issue(f"reference {ref} does not resolve to an entry of the Bundle",
                                    path, code="not-found", error_code="6002"))
    return issues


def _model_issues(model: Any, data: Any, root: str) -> list[dict[str, Any]]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out = []
        for err in exc.errors(include_url=False):
            msg = pydantic_message(err)
            path = pydantic_path(err.get("loc", ()), root)
            out.append(issue(f"{path}: {msg}", path, code="structure", error_code="6001"))
        return out
    except (KeyError, TypeError, ValueError) as exc:  # e.g. an unknown resourceType
        return [issue(f"{root}: {exc}", root, code="structure", error_code="6001")]
    return []


def _checked(model: Any, node: dict[str, Any], root: str, refs: list[str],
             shallow: bool = False) -> list[dict[str, Any]]:
    """Issues of one node: none when its shape is known good, else the full models decide.
    References met are appended to ``refs``; ``None`` is appended when they could not all
    be collected."""
    try:
        sig = signature(node, model, shallow_resources=shallow, refs=refs)
    except Unsure:
        sig = None
        refs.append(None)
    if sig is not None and _SHAPES.known(sig):
        return []
    found = _model_issues(model, node, root)
    if not found and sig is not None:
        _SHAPES.add(sig)
    return found


def structure_issues(bundle: dict[str, Any], *, shape_cache: bool = True,
                     refs: list[str] | None = None) -> list[dict[str, Any]]:
    """FHIR R4 structure per the ``fhir.resources`` models, each shape validated once
    (see ``shape_cache``). The Bundle's envelope is checked with its resources counted
    only by type; each resource is checked on its own, at its place in the Bundle."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    refs = [] if refs is None else refs
    if not shape_cache or not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries):
        refs.append(None)
        return _model_issues(Bundle, bundle, "Bundle")
    found = _checked(Bundle, bundle, "Bundle", refs, shallow=True)
    if found:
        return found
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(entries):
        resource = entry["resource"]
        try:
            model = get_fhir_model_class(resource.get("resourceType"))
        except (KeyError, ValueError, TypeError):
            out.append(issue(f"unknown resourceType {resource.get('resourceType')!r}",
                             f"Bundle.entry[{i}].resource.resourceType", code="structure",
                             error_code="6001"))
            continue
        out += _checked(model, resource, f"Bundle.entry[{i}].resource", refs)
    return out


def validate_bundle(bundle: dict[str, Any], *, shape_cache: bool = True) -> list[dict[str, Any]]:
    """All problems found in a transaction Bundle; empty when it is valid.
    ``shape_cache=False`` parses every Bundle with the models in full (slower, same verdicts)."""
    refs: list[str | None] = []
    issues = structure_issues(bundle, shape_cache=shape_cache, refs=refs)
    full_urls = {e.get("fullUrl") for e in bundle.get("entry") or () if isinstance(e, dict)}
    if None in refs or any(r.startswith("urn:uuid:") and r not in full_urls for r in refs):
        issues += reference_issues(bundle)  # walk again, for the paths of the faults
    patients = [i for i, e in enumerate(bundle.get("entry") or [])
                if (e.get("resource") or {}).get("resourceType") == "Patient"]
    if len(patients) != 1:
        issues.append(issue(f"a visit Bundle carries exactly one Patient, found {len(patients)}",
                            "Bundle.entry", code="invariant", error_code="6003"))
    return issues
