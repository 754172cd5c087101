"""In-memory FHIR R4 store with atomic transaction processing, used by the reference peers.

The store keeps ``resourceType -> id -> resource`` (current versions), the full version
history, and an identifier index (``system|value`` and bare ``value`` -> set of (type, id)).
All public methods take the store lock, so a transaction is all-or-nothing: it is planned
and checked against the current state first, and only then committed with plain dict
operations that cannot fail half way.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import parse_qsl

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource

Key = tuple[str, str]  # (resourceType, id)

SEARCH_PARAMS = ("_id", "identifier", "patient", "subject")
IGNORED_PARAMS = ("_format", "_pretty", "_total")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ELEMENT_RE = re.compile(r"^_?[a-z][A-Za-z0-9]*$")


# --------------------------------------------------------------------------- errors


def issue(text: str, expression: str | None = None, code: str = "invalid") -> dict:
    item = {"severity": "error", "code": code, "details": {"text": text}}
    if expression:
        item["expression"] = [expression]
    return item


def operation_outcome(issues: list[dict]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": issues}


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


class FhirError(Exception):
    """An error that becomes an HTTP status plus an OperationOutcome."""

    def __init__(self, status: int, text: str = "", expression: str | None = None,
                 code: str = "invalid", issues: list[dict] | None = None):
        super().__init__(text or (issues and issues[0]["details"]["text"]) or str(status))
        self.status = status
        self.issues = issues or [issue(text, expression, code)]

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=1024)
def is_resource_type(name: str) -> bool:
    """True for a concrete R4 resource type name such as ``Patient``."""
    if not name[:1].isupper() or name in ("Resource", "DomainResource"):
        return False
    try:
        return issubclass(get_fhir_model_class(name), Resource)
    except ValueError:
        return False


def require_resource_type(name: str) -> None:
    if not is_resource_type(name):
        raise FhirError(404, f"Unknown resource type '{name}'", code="not-supported")


def loc_to_fhirpath(loc: tuple, root: str = "Bundle") -> str:
    """Turn a pydantic error location into a FHIRPath, dropping union tags and type names."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        part = str(part)
        if part == "resource_type":
            part = "resourceType"
        elif part.endswith("__ext"):
            part = "_" + part[: -len("__ext")]
        elif part.endswith("_fhir"):  # python keywords, e.g. class_fhir
            part = part[: -len("_fhir")]
        if part != "root" and _ELEMENT_RE.match(part):
            path += "." + part
    return path


def now_instant() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def ref_key(reference: str) -> tuple[str | None, str]:
    """``Patient/1``, ``http://x/fhir/Patient/1/_history/2`` or ``1`` -> (type or None, id)."""
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[-1])


def _references(value: object, field: str) -> list[str]:
    items = value.get(field) if isinstance(value, dict) else None
    items = items if isinstance(items, list) else [items]
    return [i["reference"] for i in items if isinstance(i, dict) and isinstance(i.get("reference"), str)]


def _identifier_keys(resource: dict) -> list[tuple[str, str]]:
    """(``system|value``, ``value``) for every identifier with a value."""
    keys = []
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            keys.append((f"{ident.get('system') or ''}|{ident['value']}", ident["value"]))
    return keys


def _without_meta(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k != "meta"}


def parse_criteria(rtype: str, params: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Check search parameters; each is an AND term whose comma-separated values are ORed."""
    criteria = []
    for name, value in params:
        if name in IGNORED_PARAMS or name in ("_summary", "_count"):
            continue
        if name not in SEARCH_PARAMS or (name == "patient" and rtype == "Patient"):
            raise FhirError(400, f"Unsupported search parameter '{name}' for {rtype}",
                            f"{rtype}.{name}", code="not-supported")
        criteria.append((name, [v for v in value.split(",") if v]))
    return criteria


def _identifier_matches(resource: dict, token: str) -> bool:
    if "|" not in token:
        return any(value == token for _, value in _identifier_keys(resource))
    system, value = token.split("|", 1)
    for key, ident_value in _identifier_keys(resource):
        ident_system = key[: -len(ident_value) - 1]
        if ident_system == system and (not value or ident_value == value):
            return True
    return False


def _reference_matches(resource: dict, fields: tuple[str, ...], target: str, default_type: str | None) -> bool:
    want_type, want_id = ref_key(target)
    want_type = want_type or default_type
    for field in fields:
        for ref in _references(resource, field):
            rtype, rid = ref_key(ref)
            if rid == want_id and (want_type is None or rtype == want_type):
                return True
    return False


def matches(resource: dict, criteria: list[tuple[str, list[str]]]) -> bool:
    for name, values in criteria:
        if name == "_id":
            ok = resource.get("id") in values
        elif name == "identifier":
            ok = any(_identifier_matches(resource, v) for v in values)
        elif name == "patient":
            ok = any(_reference_matches(resource, ("patient", "subject"), v, "Patient") for v in values)
        else:  # subject
            ok = any(_reference_matches(resource, ("subject",), v, None) for v in values)
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------- transaction plan


@dataclass
class _Op:
    index: int
    rtype: str
    rid: str
    action: str  # "create" | "update" | "match"
    resource: dict | None
    status: int = 200
    version: int = 0
    stored: dict | None = None  # what ends up in (or already is in) the store


class FhirStore:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self.resources: dict[str, dict[str, dict]] = {}
        self.history: dict[Key, list[dict]] = {}
        self.by_identifier: dict[str, set[Key]] = {}
        self.by_value: dict[str, set[Key]] = {}
        self.transactions = 0

    # ------------------------------------------------------------------ admin

    def reset(self) -> None:
        with self.lock:
            self._clear()

    def stats(self) -> dict:
        with self.lock:
            counts = {t: len(ids) for t, ids in sorted(self.resources.items()) if ids}
            return {"transactions": self.transactions, "resources": counts}

    # ------------------------------------------------------------------ reads

    def read(self, rtype: str, rid: str, version: str | None = None) -> dict:
        with self.lock:
            versions = self.history.get((rtype, rid))
            if not versions:
                raise FhirError(404, f"{rtype}/{rid} is not known", f"{rtype}/{rid}", code="not-found")
            if version is None:
                return versions[-1]
            for item in versions:
                if item["meta"]["versionId"] == version:
                    return item
            raise FhirError(404, f"{rtype}/{rid} has no version {version}", code="not-found")

    def search(self, rtype: str, params: list[tuple[str, str]]) -> list[dict]:
        criteria = parse_criteria(rtype, params)
        with self.lock:
            return self._search(rtype, criteria)

    def _search(self, rtype: str, criteria: list[tuple[str, list[str]]]) -> list[dict]:
        table = self.resources.get(rtype, {})
        ids = self._candidate_ids(rtype, criteria)
        candidates = (table[i] for i in ids if i in table) if ids is not None else table.values()
        return [r for r in candidates if matches(r, criteria)]

    def _candidate_ids(self, rtype: str, criteria) -> list[str] | None:
        """Narrow a search through the indexes; None means scan the whole type."""
        for name, values in criteria:
            if name == "_id":
                return list(dict.fromkeys(values))
            if name == "identifier" and all(not v.endswith("|") for v in values):
                keys: set[Key] = set()
                for v in values:
                    keys |= (self.by_identifier if "|" in v else self.by_value).get(v, set())
                return sorted(i for t, i in keys if t == rtype)
        return None

    def everything(self, pid: str) -> list[dict]:
        """The Patient, everything whose subject/patient points at it, and their encounters."""
        with self.lock:
            patient = self.resources.get("Patient", {}).get(pid)
            if patient is None:
                raise FhirError(404, f"Patient/{pid} is not known", code="not-found")
            found: dict[Key, dict] = {("Patient", pid): patient}
            for rtype, table in self.resources.items():
                for rid, res in table.items():
                    if _reference_matches(res, ("subject", "patient"), pid, "Patient"):
                        found[(rtype, rid)] = res
            for res in list(found.values()):
                for ref in _references(res, "encounter") + _references(res, "context"):
                    rtype, rid = ref_key(ref)
                    linked = self.resources.get(rtype or "", {}).get(rid)
                    if linked is not None:
                        found.setdefault((rtype, rid), linked)
            return list(found.values())

    # ------------------------------------------------------------------ writes

    def transaction(self, entries: list[tuple[int, dict]], counted: bool = True) -> list[dict]:
        """Process (bundle index, entry) pairs atomically; returns response entries in order.

        ``counted`` says whether this is a transaction Bundle for ``stats()`` (plain REST
        create/update reuse this path without being counted).
        """
        with self.lock:
            result = self._process(entries)
            self.transactions += counted
            return result

    def batch(self, entries: list[tuple[int, dict]]) -> list[dict]:
        """Process each entry on its own; failures become per-entry outcomes."""
        with self.lock:
            results = []
            for pair in entries:
                try:
                    results.extend(self._process([pair]))
                except FhirError as exc:
                    results.append({"response": {"status": status_line(exc.status), "outcome": exc.outcome()}})
            self.transactions += 1
            return results

    def _process(self, entries: list[tuple[int, dict]]) -> list[dict]:
        ops = self._plan(entries)
        self._resolve_references(entries, ops)
        now = now_instant()
        staged: dict[Key, dict] = {}
        for op in ops:
            self._prepare_write(op, now, staged)
        for (rtype, rid), resource in staged.items():  # commit: nothing below can fail
            self._put(rtype, rid, resource)
        return [self._response(op) for op in ops]

    def _plan(self, entries: list[tuple[int, dict]]) -> list[_Op]:
        ops: list[_Op] = []
        targets: set[Key] = set()
        for index, entry in entries:
            op = self._plan_entry(index, entry, ops)
            if op.action != "match":
                if (op.rtype, op.rid) in targets:
                    raise FhirError(400, f"{op.rtype}/{op.rid} is written twice in one transaction",
                                    f"Bundle.entry[{index}].request.url")
                targets.add((op.rtype, op.rid))
            ops.append(op)
        return ops

    def _plan_entry(self, index: int, entry: dict, planned: list[_Op]) -> _Op:
        where = f"Bundle.entry[{index}]"
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise FhirError(400, "Entry has no request.url", f"{where}.request", code="required")
        method = str(request.get("method", "")).upper()
        if method not in ("POST", "PUT"):
            raise FhirError(400, f"Method '{method}' is not supported here (only POST and PUT)",
                            f"{where}.request.method", code="not-supported")
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise FhirError(400, f"{method} entry has no resource", f"{where}.resource", code="required")
        rtype = resource["resourceType"]
        path, _, query = request["url"].partition("?")
        segments = [s for s in path.split("/") if s]
        if not segments or segments[0] != rtype or not is_resource_type(rtype):
            raise FhirError(400, f"request.url '{request['url']}' does not match resource type {rtype}",
                            f"{where}.request.url")
        if method == "POST":
            if len(segments) != 1 or query:
                raise FhirError(400, "POST url must be the bare resource type", f"{where}.request.url")
            condition = request.get("ifNoneExist")
            return self._conditional(index, rtype, resource, condition, planned, f"{where}.request.ifNoneExist",
                                     on_none="create", on_one="match", new_id=str(uuid.uuid4()))
        if query:
            new_id = resource.get("id") or str(uuid.uuid4())
            if not isinstance(new_id, str) or not _ID_RE.match(new_id):
                raise FhirError(400, f"Invalid resource id {new_id!r}", f"{where}.resource.id")
            return self._conditional(index, rtype, resource, query, planned, f"{where}.request.url",
                                     on_none="create", on_one="update", new_id=new_id)
        if len(segments) != 2 or not _ID_RE.match(segments[1]):
            raise FhirError(400, "PUT url must be Type/id with a valid id", f"{where}.request.url")
        rid = segments[1]
        if resource.get("id", rid) != rid:
            raise FhirError(400, f"resource.id '{resource.get('id')}' differs from the url id '{rid}'",
                            f"{where}.resource.id")
        action = "update" if self._current(rtype, rid) is not None else "create"
        return _Op(index, rtype, rid, action, resource)

    def _conditional(self, index, rtype, resource, condition, planned, where, *, on_none, on_one, new_id) -> _Op:
        if not condition:
            return _Op(index, rtype, new_id, on_none, resource)
        params = parse_qsl(condition.lstrip("?").split("?", 1)[-1], keep_blank_values=True)
        try:
            criteria = parse_criteria(rtype, params)
        except FhirError as exc:
            raise FhirError(400, exc.issues[0]["details"]["text"], where, code="not-supported") from None
        if not criteria:
            raise FhirError(400, f"Condition '{condition}' has no search criteria", where)
        found = {r["id"]: r for r in self._search(rtype, criteria)}
        for op in planned:  # resources created earlier in this same transaction
            if op.rtype == rtype and op.action == "create" and matches({**op.resource, "id": op.rid}, criteria):
                found[op.rid] = op.resource
        if len(found) > 1:
            raise FhirError(412, f"Condition '{condition}' matches {len(found)} {rtype} resources", where,
                            code="multiple-matches")
        if found:
            return _Op(index, rtype, next(iter(found)), on_one, resource)
        return _Op(index, rtype, new_id, on_none, resource)

    def _resolve_references(self, entries: list[tuple[int, dict]], ops: list[_Op]) -> None:
        """Rewrite references to entry fullUrls as Type/id; a dangling urn: reference is an error."""
        targets = {}
        for (_, entry), op in zip(entries, ops):
            if isinstance(entry.get("fullUrl"), str):
                targets[entry["fullUrl"]] = f"{op.rtype}/{op.rid}"
        dangling: list[dict] = []
        for op in ops:
            _rewrite(op.resource, f"Bundle.entry[{op.index}].resource", targets, dangling)
        if dangling:
            raise FhirError(400, issues=dangling)

    def _prepare_write(self, op: _Op, now: str, staged: dict[Key, dict]) -> None:
        """Work out the stored form of one entry; new content goes into ``staged``."""
        key = (op.rtype, op.rid)
        if op.action == "match":  # an existing resource, or one created earlier in this transaction
            op.stored = staged.get(key) or self._current(*key)
            op.version = int(op.stored["meta"]["versionId"])
            return
        current = self._current(*key)
        resource = {**op.resource, "id": op.rid}
        if current is not None:
            op.version = int(current["meta"]["versionId"])
            if _without_meta(current) == _without_meta(resource):
                op.stored, op.status = current, 200
                return
        op.version += 1
        op.status = 201 if current is None else 200
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        resource["meta"] = {**meta, "versionId": str(op.version), "lastUpdated": now}
        op.stored = staged[key] = resource

    def _response(self, op: _Op) -> dict:
        meta = op.stored["meta"]
        return {
            "response": {
                "status": status_line(op.status),
                "location": f"{op.rtype}/{op.rid}/_history/{op.version}",
                "etag": f'W/"{op.version}"',
                "lastModified": meta["lastUpdated"],
            },
            "resource": op.stored,
        }

    # ------------------------------------------------------------------ storage primitives

    def _current(self, rtype: str, rid: str) -> dict | None:
        return self.resources.get(rtype, {}).get(rid)

    def _put(self, rtype: str, rid: str, resource: dict) -> None:
        key = (rtype, rid)
        old = self._current(rtype, rid)
        for full, value in _identifier_keys(old) if old else []:
            self.by_identifier.get(full, set()).discard(key)
            self.by_value.get(value, set()).discard(key)
        for full, value in _identifier_keys(resource):
            self.by_identifier.setdefault(full, set()).add(key)
            self.by_value.setdefault(value, set()).add(key)
        self.resources.setdefault(rtype, {})[rid] = resource
        self.history.setdefault(key, []).append(resource)


def _rewrite(value: object, path: str, targets: dict[str, str], dangling: list[dict]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _rewrite(item, f"{path}[{i}]", targets, dangling)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "reference" and isinstance(item, str):
                if item in targets:
                    value[key] = targets[item]
                elif item.startswith(("urn:uuid:", "urn:oid:")):
                    dangling.append(issue(f"Reference '{item}' does not resolve to an entry of this bundle",
                                          f"{where}", code="not-found"))
            else:
                _rewrite(item, where, targets, dangling)
