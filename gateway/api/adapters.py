"""The HTTP edge for adapters: which adapters there are, and batches of visits in a
vendor's export format (e.g. a nightly database view: a zip of CSV tables).

    GET  /v1/adapters                 the installed adapters' manifests
    POST /v1/batches?adapter=ID       the export as the body (the organisation's configured
                                      adapter when none is named) → 207 with one result per
                                      visit: its tracking id, or the OperationOutcome that
                                      rejects it (file, row and column)

Each visit read from a batch goes through the same pipeline as ``POST /v1/visits`` (its
canonical JSON, under the same key) and is durably queued before the answer; a visit
that cannot be read is recorded as rejected under a tracking id of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from adapters.sdk.registry import adapters, get
from gateway import errors, store
from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.stages.adapt import configured



def router(ctx: Any, authenticate: Callable[[Request], Any], respond: Callable,
           process: Callable, aredis: Any) -> APIRouter:
    api = APIRouter(tags=["adapters"])
    settings = ctx.settings

    @api.get("/v1/adapters", summary="The installed adapters (HIS dialects) and their manifests")
    async def list_adapters() -> Any:
        return respond([a.manifest.model_dump(mode="json") for a in adapters().values()])

    @api.post("/v1/batches", status_code=207,
              summary="Submit many visits in a vendor's export format (e.g. a zip of CSV views)")
    async def submit_batch(request: Request) -> Any:
        sender = authenticate(request)
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        adapter_id = request.query_params.get("adapter") or configured(ctx, sender.org)
        if not adapter_id:
            raise errors.GatewayError.of("name the adapter that reads the batch: ?adapter=ID",
                                         "adapter", code="required", error_code="2020")
        adapter = get(adapter_id)
        limit = settings.max_batch_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise errors.too_large(limit)
        received = datetime.now(timezone.utc)
        readings = await run_in_threadpool(adapter.read_batch, bytes(body), sender.org)
        results, accepted = [], 0
        for reading in readings:
            tid = store.new_tracking_id()
            item: dict[str, Any] = {"label": reading.label, "tracking_id": tid}
            if reading.error is not None:
                await store.commit_async(aredis, store.rejection_outbox(
                    tid=tid, org=sender.org, received_at=received.isoformat(),
                    outcome=reading.error.outcome, ttl=settings.record_ttl))
                results.append({**item, "status": "rejected", "outcome": reading.error.outcome})
                continue
            env = Envelope(tracking_id=tid, received_at=received, raw=reading.visit.to_json(),
                           content_type="application/json", credentials=token)
            try:
                env = await process(env)
            except GatewayError as err:
                results.append({**item, "status": "rejected", "visit_no": reading.visit.visit_no,
                                "outcome": err.outcome})
                continue
            accepted += 1
            status = "needs-mapping" if env.held else "queued" if env.destinations else "accepted"
            results.append({**item, "status": status, "visit_no": env.visit.visit_no,
                            "person_id": env.identity.person_id, "unread": list(reading.unread),
                            "links": {"self": f"/v1/visits/{tid}"}})
        return respond({"adapter": adapter_id, "accepted": accepted,
                        "rejected": len(results) - accepted, "results": results}, status=207)

    return api
