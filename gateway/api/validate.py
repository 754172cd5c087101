"""FHIR ``$validate``: ``POST /fhir/$validate`` and ``POST /fhir/{type}/$validate?profile=URL``.

The body is the resource itself, or a ``Parameters`` with a ``resource`` parameter (and
optionally ``profile``), as the FHIR operation defines. The answer is always 200 with an
OperationOutcome — the validation result, errors included — except for a body that is
not JSON (400). Any valid API key may validate, as for the other ``/fhir`` reads.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from conformance.validator import operation_outcome, validator
from gateway import errors


def _unwrap(body: Any, profile: str | None) -> tuple[Any, str | None]:
    """A Parameters body → (its ``resource`` parameter, its ``profile`` parameter)."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        resource = None
        for p in body.get("parameter") or ():
            if not isinstance(p, dict):
                continue
            if p.get("name") == "resource":
                resource = p.get("resource")
            elif p.get("name") == "profile" and profile is None:
                profile = p.get("valueUri") or p.get("valueCanonical")
        if resource is not None:
            return resource, profile
    return body, profile


def router(ctx: Any, authenticate: Callable[[Request], Any], respond: Callable) -> APIRouter:
    api = APIRouter(tags=["validation"])
    limit = ctx.settings.max_body_bytes

    async def run(request: Request, rtype: str | None, profile: str | None) -> Any:
        authenticate(request)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise errors.too_large(limit)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.GatewayError.of(f"the body is not JSON: {exc}", code="structure",
                                         error_code="6000", status=400) from None
        resource, profile = _unwrap(body, profile)
        if rtype is not None and isinstance(resource, dict) \
                and resource.get("resourceType") != rtype:
            issues = [errors.issue(f"this endpoint validates {rtype}, not "
                                   f"{resource.get('resourceType')!r}", "resourceType",
                                   code="invalid", error_code="6001")]
        else:
            issues = await run_in_threadpool(validator().validate, resource, profile)
        return respond(operation_outcome(issues), fhir=True)

    @api.post("/fhir/$validate", summary="Validate any resource (profiles from meta.profile)")
    async def validate_any(request: Request, profile: str | None = None) -> Any:
        return await run(request, None, profile)

    @api.post("/fhir/{rtype}/$validate", summary="Validate a resource of this type, optionally "
                                                 "against a profile")
    async def validate_type(rtype: str, request: Request, profile: str | None = None) -> Any:
        return await run(request, rtype, profile)

    return api
