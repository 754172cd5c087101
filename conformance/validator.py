"""The profile validator: any FHIR R4 resource against the core definitions and the
project's profiles → OperationOutcome issues, one per problem, ``expression`` the FHIRPath
of the place (``Bundle.entry[2].resource.identifier[0]``).

    from conformance.validator import validate, validator
    validate(resource)                        # profiles from meta.profile, else core
    validate(resource, profile=VISIT_BUNDLE)  # an explicit profile
    validate_bundle(bundle)                   # the pipeline: the visit Bundle profile

What it checks: JSON structure and primitive formats, cardinality, types and choice
types, fixed and pattern values, slicing (value, pattern, type and exists discriminators;
open and closed), required (error) and extensible (warning) bindings to locally
expandable value sets, invariants, and references inside a Bundle (``urn:uuid:``
references resolve; a resolved reference points at an allowed resource type). How:
``conformance/compiler.py``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from conformance.compiler import Compiler
from conformance.definitions import CORE
from conformance.dispatch import enter
from gateway.errors import issue, outcome

PROFILE_BASE = "https://yikatong.org/fhir/StructureDefinition/"
VISIT_BUNDLE = PROFILE_BASE + "yikatong-visit-bundle"
_LOCAL_REF = ("urn:uuid:", "urn:oid:")
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?")


class _Ctx:
    __slots__ = ("out", "refs", "resource", "root", "validator")

    def __init__(self, validator: Validator):
        self.out: list[dict[str, Any]] = []
        self.refs: list[tuple[str, str, tuple[str, ...]]] = []
        self.resource: Any = None
        self.root: Any = None
        self.validator = validator

    def resource_check(self, value: dict, path: str, fn: Any) -> None:
        """Check a resource met inside another (Bundle entry, contained, parameter)."""
        enter(self, value, path, fn)


class Validator:
    """``memo=False``: check every value in full, even one seen clean before (same verdicts,
    slower; the benchmarks' baseline). ``warnings=False``: report errors only, and spend no
    time on what could only be a warning (the pipeline)."""

    def __init__(self, package: Path | None = None, memo: bool = True, warnings: bool = True,
                 loaded: tuple[Any, dict[str, str]] | None = None):
        from conformance.registry import load

        self.defs, expressions = loaded or load(package)
        self.compiler = Compiler(self.defs, expressions, memo=memo, warnings=warnings)

    def checker(self, url: str) -> Any:
        return self.compiler.root(url)

    def declared(self, resource: dict, path: str, skip: Any = None) -> list[Any]:
        """Checkers of the profiles a resource names in ``meta.profile`` (of its own type);
        a profile not known here is reported as a warning and not checked."""
        meta = resource.get("meta")
        if type(meta) is not dict or type(meta.get("profile")) is not list:
            return []
        out = []
        for i, url in enumerate(meta["profile"]):
            if type(url) is not str:
                continue
            sd = self.defs.sd(url)
            if sd is None:
                out.append(_unknown_profile(url, f"{path}.meta.profile[{i}]"))
            elif sd["type"] == resource.get("resourceType") and sd["kind"] == "resource":
                fn = self.checker(sd["url"])
                if fn is not None and fn is not skip:
                    out.append(fn)
        return out

    def validate(self, resource: Any, profile: str | None = None,
                 path: str | None = None) -> list[dict[str, Any]]:
        """All issues of ``resource`` (against ``profile`` if given, and its meta.profile)."""
        if type(resource) is not dict or type(resource.get("resourceType")) is not str:
            return [issue("not a FHIR resource: a JSON object with a resourceType is required",
                          path or None, code="structure", error_code="6001")]
        rtype = resource["resourceType"]
        root = path or rtype
        ctx = _Ctx(self)
        if profile is not None:
            sd = self.defs.sd(profile)
            if sd is None:
                return [issue(f"unknown profile {profile}", None, code="not-found",
                              error_code="6001")]
            if sd["type"] != rtype:
                return [issue(f"the profile {profile} is for {sd['type']}, not {rtype}",
                              f"{root}.resourceType", code="invalid", error_code="6001")]
        core = self.defs.type_sd(rtype)
        if profile is None and (core is None or core["kind"] != "resource" or core["abstract"]):
            return [self.defs.unknown_type(rtype, root)]
        fn = self.checker(profile or CORE + rtype)
        enter(ctx, resource, root, fn)
        if rtype == "Bundle":
            ctx.out += _bundle_references(resource, ctx.refs, root)
        return ctx.out


def _unknown_profile(url: str, where: str) -> Any:
    def report(value: Any, path: str, ctx: _Ctx) -> None:
        ctx.out.append(issue(f"profile {url} is not known here and was not checked", where,
                             code="not-supported", severity="warning", error_code="6001"))
    return report


def _bundle_references(bundle: dict, refs: list, root: str) -> list[dict[str, Any]]:
    # (`in` and `[]` rather than `.get`: a method call costs more from compiled code)
    entries = bundle["entry"] if "entry" in bundle else None
    if type(entries) is not list:
        entries = ()
    by_url: dict[str, Any] = {}  # fullUrl → its resource's type (the last entry's)
    for e in entries:
        if type(e) is dict and "fullUrl" in e and "resource" in e:
            url, res = e["fullUrl"], e["resource"]
            if type(url) is str and type(res) is dict:
                by_url[url] = res["resourceType"] if "resourceType" in res else None
    relative = None  # "Type/id" → the type, made for the first reference no fullUrl names
    inside = root + ".entry["
    out = []
    for ref, path, targets in refs:
        if ref in by_url:
            kind = by_url[ref]
        else:
            if relative is None:
                relative = _relative_urls(entries, by_url)
            kind = relative.get(ref)
        if kind is not None and (kind in targets or "Resource" in targets or not targets):
            continue  # resolves to an entry of an allowed type (the usual case): nothing to say
        if not path.startswith(inside):
            continue
        if kind is None:
            if ref.startswith(_LOCAL_REF):
                out.append(issue(f"reference {ref} does not resolve to an entry of the Bundle",
                                 f"{path}.reference", code="not-found", error_code="6002"))
                continue
            if not ref.startswith(("#", "http:", "https:", "urn:")):
                m = _RELATIVE.fullmatch(ref)
                kind = m.group(1) if m else None
        if kind and targets and kind not in targets and "Resource" not in targets:
            out.append(issue(f"a reference to a {kind} is not allowed here "
                             f"(allowed: {', '.join(targets)})", f"{path}.reference",
                             code="structure", error_code="6002"))
    return out


def _relative_urls(entries: Any, by_url: dict[str, Any]) -> dict[str, Any]:
    """``Type/id`` of each entry's resource → its type, for a reference that names no
    fullUrl: the first entry's, and none that is some entry's fullUrl (that one is in
    ``by_url``, which a fullUrl always wins)."""
    relative: dict[str, Any] = {}
    for e in entries:
        if type(e) is dict and "fullUrl" in e and "resource" in e:
            url, res = e["fullUrl"], e["resource"]
            if type(url) is str and type(res) is dict and "id" in res:
                rtype = res["resourceType"] if "resourceType" in res else None
                rid = res["id"]
                if rid and rtype:
                    key = f"{rtype}/{rid}"
                    if key not in by_url:
                        relative.setdefault(key, rtype)
    return relative


@lru_cache(maxsize=4)
def validator(memo: bool = True, warnings: bool = True) -> Validator:
    """The process-wide validator on the vendored core subset and the project's profiles
    (variants share the loaded definitions)."""
    return Validator(memo=memo, warnings=warnings, loaded=_loaded())


@lru_cache(maxsize=1)
def _loaded() -> tuple[Any, dict[str, str]]:
    from conformance.registry import load

    return load()


def validate(resource: Any, profile: str | None = None) -> list[dict[str, Any]]:
    return validator().validate(resource, profile)


def validate_bundle(bundle: Any, profile: str = VISIT_BUNDLE, *,
                    memo: bool = True) -> list[dict[str, Any]]:
    """What rejects a rendered visit: the errors against the visit Bundle profile. (Warnings
    — best-practice dom-6, extensible bindings — are for ``validate`` / ``$validate``.)"""
    return [i for i in validator(memo, warnings=False).validate(bundle, profile)
            if i["severity"] in ERRORS]


ERRORS = ("error", "fatal")


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    """An OperationOutcome; one `information` issue saying so when there is nothing wrong."""
    return outcome(issues or [issue("no issues found", code="informational",
                                    severity="information")])
