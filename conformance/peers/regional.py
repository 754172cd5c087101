"""Reference peer: a regional shared-EMR platform that speaks plain FHIR R4 REST.

The gateway delivers transaction Bundles here during tests and conformance runs. The peer
is small but strict: it validates Bundles with the R4B models, processes transactions
atomically (conditional creates, conditional/plain updates, urn:uuid reference resolution),
answers searches, ``$everything`` and ``metadata``, and reports every error as an
OperationOutcome. ``/_admin`` lets a test inject faults (error statuses, slow or lost
responses), read counters and reset the in-memory store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from datetime import datetime
from email.utils import format_datetime

import orjson
import pydantic
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ._fhir_store import (
    FhirError,
    FhirStore,
    is_resource_type,
    issue,
    loc_to_fhirpath,
    now_instant,
    operation_outcome,
    require_resource_type,
)

JSON_TYPES = ("application/fhir+json", "application/json", "text/json", "")
BUNDLE_TYPES = {"transaction": "transaction-response", "batch": "batch-response"}


class FhirResponse(Response):
    media_type = "application/fhir+json"

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def error_response(exc: FhirError) -> FhirResponse:
    return FhirResponse(exc.outcome(), status_code=exc.status)


# --------------------------------------------------------------------------- request parsing


def parse_bundle(body: bytes, content_type: str, validate: bool) -> dict:
    media = content_type.split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise FhirError(415, f"Content type '{media}' is not supported; send application/fhir+json",
                        code="not-supported")
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, f"Request body is not valid JSON: {exc}", code="structure") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(400, "Request body is not a FHIR Bundle", "Bundle.resourceType", code="structure")
    if validate:
        validate_bundle(bundle)
    if bundle.get("type") not in BUNDLE_TYPES:
        raise FhirError(400, f"Bundle.type must be transaction or batch, not {bundle.get('type')!r}",
                        "Bundle.type", code="invalid")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FhirError(400, "Bundle.entry must be a list of objects", "Bundle.entry", code="structure")
    return bundle


def validate_bundle(bundle: dict) -> None:
    """Validate against the R4B Bundle model; problems become a 422 with one issue per error."""
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    unknown = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if resource is not None and not (isinstance(rtype, str) and is_resource_type(rtype)):
            unknown.append(issue(f"Unknown resource type {rtype!r}", f"Bundle.entry[{i}].resource.resourceType",
                                 code="structure"))
    if unknown:  # the R4B models raise KeyError rather than a ValidationError for these
        raise FhirError(422, issues=unknown)
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except pydantic.ValidationError as exc:
        issues = [issue(err["msg"], loc_to_fhirpath(err["loc"]), code="structure") for err in exc.errors()]
        raise FhirError(422, issues=issues) from None
    except Exception as exc:  # noqa: BLE001 - fhir.resources raises KeyError etc. for odd input
        raise FhirError(422, f"Bundle does not validate: {exc!r}", "Bundle", code="structure") from None


def wants_representation(request: Request) -> bool:
    return "return=representation" in request.headers.get("prefer", "").replace(" ", "")


def bundle_of(kind: str, entries: list[dict], **extra) -> dict:
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"lastUpdated": now_instant()},
              "type": kind, **extra}
    if entries:
        bundle["entry"] = entries
    return bundle


# --------------------------------------------------------------------------- faults


class Faults:
    """A queue of faults applied to the next transaction POSTs, oldest first."""

    def __init__(self) -> None:
        self.queue: deque[dict] = deque()

    def add(self, spec: object) -> None:
        if not isinstance(spec, dict):
            raise FhirError(400, "A fault is a JSON object like {\"status\": 503, \"count\": 2}")
        status, delay, count = spec.get("status"), spec.get("delay", 0), spec.get("count", 1)
        if status is not None and (type(status) is not int or not 400 <= status <= 599):
            raise FhirError(400, "fault status must be an integer 400..599", "status")
        if type(delay) not in (int, float) or not 0 <= delay <= 600:
            raise FhirError(400, "fault delay must be a number of seconds 0..600", "delay")
        if type(count) is not int or count < 1:
            raise FhirError(400, "fault count must be a positive integer", "count")
        if status is None and not delay:
            raise FhirError(400, "a fault needs a status or a delay")
        text = spec.get("issue") or f"Injected fault: HTTP {status}"
        self.queue.append({"status": status, "delay": float(delay), "count": count, "issue": str(text)})

    def take(self) -> dict | None:
        if not self.queue:
            return None
        fault = self.queue[0]
        fault["count"] -= 1
        if fault["count"] == 0:
            self.queue.popleft()
        return fault

    def pending(self) -> list[dict]:
        return list(self.queue)


# --------------------------------------------------------------------------- app


def capability_statement() -> dict:
    interactions = [{"code": c} for c in ("read", "vread", "update", "create", "search-type")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now_instant()[:10],
        "kind": "instance",
        "software": {"name": "yikatong regional shared-EMR reference peer"},
        "implementation": {"description": "In-memory FHIR R4 server for conformance runs"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": [{
                "type": "Resource",
                "interaction": interactions,
                "versioning": "versioned",
                "conditionalCreate": True,
                "conditionalUpdate": True,
                "searchParam": [{"name": n, "type": t} for n, t in
                                (("_id", "token"), ("identifier", "token"),
                                 ("patient", "reference"), ("subject", "reference"))],
            }],
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
            "operation": [{"name": "everything",
                           "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}],
        }],
    }


def create_app(validate: bool = True) -> FastAPI:
    app = FastAPI(title="Regional shared-EMR reference peer", docs_url=None, redoc_url=None, openapi_url=None)
    store, faults = FhirStore(), Faults()
    app.state.store, app.state.faults = store, faults
    _install_error_handlers(app)

    def base_url(request: Request) -> str:
        return f"{str(request.base_url).rstrip('/')}/fhir/"

    def searchset(request: Request, resources: list[dict], count: int | None = None) -> dict:
        shown = resources if count is None else resources[:count]
        entries = [{"fullUrl": f"{base_url(request)}{r['resourceType']}/{r['id']}", "resource": r,
                    "search": {"mode": "match"}} for r in shown]
        return bundle_of("searchset", entries, total=len(resources),
                         link=[{"relation": "self", "url": str(request.url)}])

    def single(resource: dict, status: int = 200, request: Request | None = None) -> FhirResponse:
        meta = resource["meta"]
        modified = format_datetime(datetime.fromisoformat(meta["lastUpdated"]), usegmt=True)
        headers = {"ETag": f'W/"{meta["versionId"]}"', "Last-Modified": modified}
        if request is not None:
            headers["Location"] = (f"{base_url(request)}{resource['resourceType']}/{resource['id']}"
                                   f"/_history/{meta['versionId']}")
        return FhirResponse(resource, status_code=status, headers=headers)

    @app.get("/healthz")
    async def healthz():
        return FhirResponse({"status": "ok"}, media_type="application/json")

    @app.get("/fhir/metadata")
    async def metadata():
        return FhirResponse(capability_statement())

    @app.post("/fhir")
    async def transaction(request: Request):
        fault = faults.take()
        if fault and fault["status"]:
            await asyncio.sleep(fault["delay"])
            return FhirResponse(operation_outcome([issue(fault["issue"], code="transient" if fault["status"] >= 500
                                                         else "processing")]), status_code=fault["status"])
        try:
            body = await request.body()
            bundle = await run_in_threadpool(parse_bundle, body, request.headers.get("content-type", ""), validate)
            indexed = list(enumerate(bundle.get("entry") or []))
            kind = bundle["type"]
            results = store.transaction(indexed) if kind == "transaction" else store.batch(indexed)
            if not wants_representation(request):
                results = [{k: v for k, v in r.items() if k != "resource"} for r in results]
            response = FhirResponse(bundle_of(BUNDLE_TYPES[kind], results))
        except FhirError as exc:
            response = error_response(exc)
        if fault:
            await asyncio.sleep(fault["delay"])  # the work is done; only the answer is late
        return response

    @app.get("/fhir/{rtype}")
    async def search(rtype: str, request: Request):
        require_resource_type(rtype)
        params = list(request.query_params.multi_items())
        found = store.search(rtype, params)
        summary, count = request.query_params.get("_summary"), request.query_params.get("_count")
        if summary == "count":
            return FhirResponse(bundle_of("searchset", [], total=len(found)))
        if summary not in (None, "false"):
            raise FhirError(400, f"_summary={summary} is not supported", "_summary", code="not-supported")
        if count is not None and not count.isdigit():
            raise FhirError(400, "_count must be a non-negative integer", "_count")
        return FhirResponse(searchset(request, found, int(count) if count else None))

    @app.post("/fhir/{rtype}")
    async def create(rtype: str, request: Request):
        require_resource_type(rtype)
        request_part = {"method": "POST", "url": rtype, "ifNoneExist": request.headers.get("if-none-exist")}
        return await single_write(rtype, request, request_part)

    @app.get("/fhir/{rtype}/{rid}")
    async def read(rtype: str, rid: str):
        require_resource_type(rtype)
        return single(store.read(rtype, rid))

    @app.put("/fhir/{rtype}/{rid}")
    async def update(rtype: str, rid: str, request: Request):
        require_resource_type(rtype)
        return await single_write(rtype, request, {"method": "PUT", "url": f"{rtype}/{rid}"})

    @app.get("/fhir/{rtype}/{rid}/_history/{vid}")
    async def vread(rtype: str, rid: str, vid: str):
        require_resource_type(rtype)
        return single(store.read(rtype, rid, vid))

    @app.get("/fhir/{rtype}/{rid}/$everything")
    async def everything(rtype: str, rid: str, request: Request):
        if rtype != "Patient":
            raise FhirError(404, f"$everything is only supported on Patient, not {rtype}", code="not-supported")
        return FhirResponse(searchset(request, store.everything(rid)))

    async def single_write(rtype: str, request: Request, request_part: dict) -> FhirResponse:
        """Plain create/update: run the resource as a one-entry transaction."""
        try:
            resource = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise FhirError(400, "Request body is not valid JSON", code="structure") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            raise FhirError(400, f"Request body is not a {rtype} resource", f"{rtype}.resourceType")
        entry = {"resource": resource, "request": {k: v for k, v in request_part.items() if v}}
        if validate:
            try:
                await run_in_threadpool(validate_bundle, {"resourceType": "Bundle", "type": "transaction",
                                                          "entry": [entry]})
            except FhirError as exc:
                for item in exc.issues:
                    item["expression"] = [e.replace("Bundle.entry[0].resource", rtype)
                                          for e in item.get("expression", [])]
                raise
        [result] = store.transaction([(0, entry)], counted=False)
        return single(result["resource"], int(result["response"]["status"][:3]), request)

    @app.post("/_admin/faults")
    async def add_faults(request: Request):
        try:
            spec = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise FhirError(400, "Fault body is not valid JSON") from None
        for item in spec if isinstance(spec, list) else [spec]:
            faults.add(item)
        return FhirResponse({"pending": faults.pending()}, media_type="application/json")

    @app.get("/_admin/faults")
    async def list_faults():
        return FhirResponse({"pending": faults.pending()}, media_type="application/json")

    @app.delete("/_admin/faults")
    async def clear_faults():
        faults.queue.clear()
        return FhirResponse({"pending": []}, media_type="application/json")

    @app.get("/_admin/stats")
    async def stats():
        return FhirResponse(store.stats(), media_type="application/json")

    @app.post("/_admin/reset")
    async def reset():
        store.reset()
        faults.queue.clear()
        return FhirResponse({"status": "reset"}, media_type="application/json")

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def fhir_error(_request, exc: FhirError):
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return error_response(FhirError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def request_error(_request, exc: RequestValidationError):
        return error_response(FhirError(400, str(exc.errors()), code="invalid"))

    @app.exception_handler(Exception)
    async def crash(_request, exc: Exception):
        return error_response(FhirError(500, f"Unexpected error: {exc!r}", code="exception"))


def serve(host: str = "127.0.0.1", port: int = 8090) -> None:
    """Run the peer with uvicorn until interrupted."""
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    serve(args.host, args.port)
