"""The HTTP edge: FastAPI app. Errors leave here as OperationOutcomes with their status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

import orjson
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import errors, metrics, redis_async, store, warmup
from gateway.api.adapters import router as adapters_router
from gateway.api.identity import router as identity_router
from gateway.api.ingest import PATH, VisitIngest, bearer
from gateway.api.settlement import router as settlement_router
from gateway.api.terminology import router as terminology_router
from gateway.api.validate import router as validate_router
from gateway.apikeys import KeyStore
from gateway.batcher import Batcher
from gateway.delivery.worker import Workers
from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.identity.card_status import CardStatusStore
from gateway.identity.empi import Empi
from gateway.jsonio import dumps
from gateway.logging import get_logger
from gateway.orgs import OrgRegistry
from gateway.pipeline import HTTP_PIPELINE, Context
from gateway.settings import Settings
from gateway.visit import OutpatientVisit
from terminology.local_maps import LocalMaps

log = get_logger(__name__)


class FHIRJSON(Response):
    media_type = "application/fhir+json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def _outcome_response(err: GatewayError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return FHIRJSON(err.outcome, status_code=err.status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise errors.too_large(limit)
    return bytes(body)


def _bearer(request: Request) -> str | None:
    return bearer(request.headers.get("authorization", ""))


class _App(FastAPI):
    """The gateway's FastAPI app, with ``POST /v1/visits`` served by ``ingest`` ahead of
    the framework's layers (``gateway/api/ingest.py``)."""

    def __init__(self, ingest: VisitIngest, **kwargs: Any):
        super().__init__(**kwargs)
        self.ingest = ingest

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST":
            await self.ingest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, redis_url: str, *, workers: bool | None = None,
               worker_id: str | None = None) -> FastAPI:
    """The gateway API on the given Redis. Delivery workers run inside unless disabled."""
    r = redis.Redis.from_url(redis_url, max_connections=64)
    ar = redis_async.client(redis_url, max_connections=64)
    # the batcher's client: what it writes is never sent twice (gateway/redis_async.py)
    batch_redis = redis_async.unretried(redis_url, max_connections=64)
    keys = KeyStore(r)
    ctx = Context(settings=settings, redis=r, keys=keys, orgs=OrgRegistry(r), empi=Empi(r),
                  card_status=CardStatusStore(r), local_maps=LocalMaps(r), aredis=batch_redis)
    run_workers = settings.workers if workers is None else workers
    state: dict[str, Any] = {}
    batcher = Batcher(ctx, max_batch=settings.ingest_batch, in_flight=settings.ingest_in_flight)

    async def _process_later(env: Envelope, stages) -> Envelope:
        return await _process(env, stages)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        warmup.prepare()  # compiled checkers and plans built, then frozen out of gc's sight
        collector = metrics.register_queue_depth(r, settings)
        if run_workers and settings.destinations():
            state["workers"] = Workers(settings, redis_url, worker_id=worker_id)
            state["workers"].start()
        if run_workers and settings.insurance_url and settings.insurance_resolve_interval > 0:
            from gateway.insurance import resolver
            from gateway.insurance.settlement import Settlements

            state["resolver"] = asyncio.create_task(
                resolver.run(Settlements(ctx), settings.insurance_resolve_interval))
        if settings.mllp_port is not None:
            from gateway.hl7.listener import V2Listener

            state["mllp"] = V2Listener(ctx, ar, host=settings.host, port=settings.mllp_port,
                                       batcher=batcher)
            await state["mllp"].start()
        try:
            yield
        finally:
            if "resolver" in state:
                state["resolver"].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state["resolver"]
            if "mllp" in state:
                await state["mllp"].close()
            if "workers" in state:
                await state["workers"].close()
            with contextlib.suppress(KeyError):
                metrics.unregister(collector)
            r.close()
            await ar.aclose()
            await batch_redis.aclose()

    ingest = VisitIngest(settings.max_body_bytes, _process_later)
    app = _App(
        ingest,
        title="一卡通 interoperability gateway",
        version="0.1.0",
        description="Hospitals submit outpatient visits; the gateway identifies the patient, "
                    "renders FHIR R4, validates and delivers it. Errors are FHIR OperationOutcomes.",
        lifespan=lifespan,
    )

    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> Response:
        return _outcome_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return _outcome_response(errors.from_pydantic(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        return _outcome_response(GatewayError.of(str(exc.detail), code=code, status=exc.status_code))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", error=type(exc).__name__)
        if isinstance(exc, redis.RedisError):
            return _outcome_response(errors.unavailable("the queue store is unavailable; "
                                                        "the visit was not accepted, retry later"))
        return _outcome_response(GatewayError.of("internal error; the visit was not accepted",
                                                 code="exception", status=500))

    def _authenticate(request: Request):
        token = _bearer(request)
        sender = keys.lookup(token) if token else None
        if sender is None:
            raise errors.unauthorized()
        return sender

    def _record_rejection(env: Envelope, err: GatewayError) -> None:
        metrics.REJECTED.labels(errors.error_code(err.outcome)).inc()
        sender = env.sender or (keys.lookup(env.credentials) if env.credentials else None)
        if sender is not None and err.status not in (401, 413):
            store.commit(r, store.rejection_outbox(
                tid=env.tracking_id, org=sender.org, received_at=env.received_at.isoformat(),
                outcome=err.outcome, ttl=settings.record_ttl))
            err.outcome.setdefault("id", env.tracking_id)

    async def _process(env: Envelope, stages=HTTP_PIPELINE) -> Envelope:
        """Run the pipeline and commit its outbox with the submissions that arrive together
        (gateway/batcher.py): they share the Redis round trips and the fsync."""
        env, error = await batcher.process(env, stages)
        if error is None:
            return env
        if isinstance(error, GatewayError):
            await run_in_threadpool(_record_rejection, env, error)
        raise error

    @app.post("/v1/visits", status_code=202, tags=["visits"],
              summary="Submit a canonical outpatient visit (JSON)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/OutpatientVisit"}}}}})
    async def submit_visit(request: Request) -> Response:
        # (served by ``ingest`` before the framework sees the request; kept for the API
        # docs and for callers that reach the route, e.g. under a mounted prefix)
        if not bearer(request.headers.get("authorization", "")):
            raise errors.unauthorized("no API key: send `Authorization: Bearer <key>`")
        body, headers = await ingest.submit(
            content_type=request.headers.get("content-type", "application/json"),
            authorization=request.headers.get("authorization", ""),
            adapter=request.query_params.get("adapter", ""),
            body=await _read_body(request, settings.max_body_bytes))
        return JSON(body, status_code=202, headers=headers)

    @app.get("/v1/visits/{tracking_id}", tags=["visits"],
             summary="A submitted visit's status, delivery receipts and outcome")
    async def get_visit(tracking_id: str, request: Request) -> Response:
        sender = _authenticate(request)
        view = await run_in_threadpool(store.read_visit, r, tracking_id)
        if view is None or view["org"] != sender.org:
            raise errors.not_found(f"no visit with tracking id {tracking_id!r} for this organisation")
        return JSON(view)

    def respond(body: Any, fhir: bool = False, status: int = 200) -> Response:
        return (FHIRJSON if fhir else JSON)(body, status_code=status)

    app.include_router(identity_router(ctx, _authenticate, respond))
    app.include_router(terminology_router(ctx, _authenticate, respond))
    app.include_router(adapters_router(ctx, _authenticate, respond, _process, ar))
    app.include_router(settlement_router(ctx, _authenticate, respond))
    app.include_router(validate_router(ctx, _authenticate, respond))

    schema = OutpatientVisit.model_json_schema()
    app.openapi_schema = None

    @app.get("/v1/schema/visit", tags=["visits"], summary="JSON Schema of the canonical visit")
    async def visit_schema() -> Response:
        return JSON(schema, media_type="application/schema+json")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        return JSON({"status": "ok"})

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> Response:
        checks: dict[str, str] = {}
        try:
            await run_in_threadpool(r.ping)
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        if run_workers and settings.destinations():
            w = state.get("workers")
            checks["workers"] = "ok" if w and w.alive() else "not running"
        ready = all(v == "ok" for v in checks.values())
        return JSON({"status": "ready" if ready else "not ready", "checks": checks},
                    status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"])
    async def metrics_endpoint() -> Response:
        data = await run_in_threadpool(metrics.exposition)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    _orig_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = _orig_openapi()
        defs = schema.get("$defs", {})
        comps = spec.setdefault("components", {}).setdefault("schemas", {})
        comps.update({k: v for k, v in defs.items()})
        comps["OutpatientVisit"] = orjson.loads(
            orjson.dumps({k: v for k, v in schema.items() if k != "$defs"}).replace(
                b"#/$defs/", b"#/components/schemas/"))
        for name in defs:
            comps[name] = orjson.loads(orjson.dumps(comps[name]).replace(
                b"#/$defs/", b"#/components/schemas/"))
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.redis = r
    app.state.keys = keys
    return app


def from_env() -> FastAPI:
    """The app as configured by the environment (what `gateway serve` worker processes run)."""
    settings = Settings()
    from gateway.logging import configure

    configure(settings.log_level, settings.log_json)
    if not settings.redis_url:
        raise RuntimeError("GATEWAY_REDIS_URL is not set; start the gateway with `gateway serve`")
    worker_id = f"{socket.gethostname()}:{settings.port}"
    if settings.processes > 1:
        worker_id += f":{os.getpid()}"
    return create_app(settings, settings.redis_url, worker_id=worker_id)
