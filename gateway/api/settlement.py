"""Settlement endpoints for the HIS cashier, keyed by the visit already submitted.

    POST   /v1/visits/{id}/settlement/preview   1101 / 2201 / 2203 / 2204 / 2206 as needed
    POST   /v1/visits/{id}/settlement           2207 (Idempotency-Key required)
    DELETE /v1/visits/{id}/settlement           2208
    GET    /v1/visits/{id}/settlement           the visit's settlement state
    GET    /v1/visits/{id}/settlement/cumulative  5206: the person's accumulators this year

Real-time settlement impossible → 200 with ``realtime: false`` and a reason code (see
``gateway/insurance/eligibility.py``): the cashier takes the full amount. A request
replayed under the same Idempotency-Key gets the stored answer with
``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from gateway import errors
from gateway.insurance.settlement import SettlementRequest, Settlements
from gateway.jsonio import dumps

MAX_BODY = 16 * 1024


def _doc(key_required: bool, body: bool = True) -> dict[str, Any]:
    """OpenAPI for the raw-body endpoints: the optional JSON body and the key header."""
    extra: dict[str, Any] = {"parameters": [{
        "name": "Idempotency-Key", "in": "header", "required": key_required,
        "description": "one value per payment attempt, reused when retrying it",
        "schema": {"type": "string", "maxLength": 255}}]}
    if body:
        extra["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": SettlementRequest.model_json_schema()}}}
    return extra


def router(ctx: Any, authenticate: Callable, respond: Callable) -> APIRouter:
    api = APIRouter(tags=["settlement"])
    settlements = Settlements(ctx)

    def body_of(raw: bytes) -> SettlementRequest:
        if len(raw) > MAX_BODY:
            raise errors.too_large(MAX_BODY)
        if not raw.strip():
            return SettlementRequest()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.invalid(f"the body is not valid JSON: {exc}", "body") from None
        try:
            return SettlementRequest.model_validate(data)
        except ValidationError as exc:
            raise errors.from_pydantic(exc.errors(), error_code="8008") from None

    def answer(result: tuple[int, Any, bool]) -> Response:
        status, body, replayed = result
        fhir = isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return Response(dumps(body), status_code=status, headers=headers,
                        media_type="application/fhir+json" if fhir else "application/json")

    def run(op: str, tid: str, request: Request, raw: bytes, required: bool) -> Response:
        from gateway.insurance.state import check_key

        sender = authenticate(request)
        key = check_key(request.headers.get("idempotency-key"), required)
        return answer(settlements.run(op, tid, sender.org, body_of(raw), key))

    @api.post("/v1/visits/{tracking_id}/settlement/preview",
              summary="Pre-settle a submitted visit (2206): what the fund and the patient pay",
              openapi_extra=_doc(True))
    async def preview(tracking_id: str, request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(run, "preview", tracking_id, request, raw, True)

    @api.post("/v1/visits/{tracking_id}/settlement",
              summary="Settle a submitted visit (2207); needs an Idempotency-Key",
              openapi_extra=_doc(True))
    async def settle(tracking_id: str, request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(run, "settle", tracking_id, request, raw, True)

    @api.delete("/v1/visits/{tracking_id}/settlement",
                summary="Cancel a visit's settlement (2208), or withdraw a preview (2205, 2202)",
                openapi_extra=_doc(False, body=False))
    async def cancel(tracking_id: str, request: Request) -> Response:
        return await run_in_threadpool(run, "cancel", tracking_id, request, b"", False)

    @api.get("/v1/visits/{tracking_id}/settlement", summary="A visit's settlement state")
    def view(tracking_id: str, request: Request) -> Response:
        sender = authenticate(request)
        return respond(settlements.view(tracking_id, sender.org))

    @api.get("/v1/visits/{tracking_id}/settlement/cumulative",
             summary="The insured person's accumulators this year (5206)")
    def cumulative(tracking_id: str, request: Request) -> Response:
        sender = authenticate(request)
        return respond(settlements.cumulative(tracking_id, sender.org))

    return api
