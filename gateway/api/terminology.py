"""Terminology endpoints: FHIR operations ($lookup, $validate-code, $expand, $translate) and
the import of a hospital's code map (CSV) over HTTP."""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Request

from gateway import errors
from terminology import service
from terminology.local_maps import ImportError_


def _params(body: dict[str, Any]) -> dict[str, Any]:
    """Parameters → {name: value} (the first value[x] of each)."""
    out = {}
    for p in body.get("parameter", []):
        for k, v in p.items():
            if k.startswith("value"):
                out.setdefault(p["name"], v.get("code") if isinstance(v, dict) and "code" in v else v)
                if isinstance(v, dict) and "system" in v:
                    out.setdefault("system", v["system"])
    return out


def router(ctx: Any, authenticate: Callable[[Request], Any], respond: Callable) -> APIRouter:
    api = APIRouter(tags=["terminology"])

    async def args(request: Request) -> dict[str, Any]:
        authenticate(request)
        q = dict(request.query_params)
        if request.method == "POST":
            body = await request.json()
            if body.get("resourceType") != "Parameters":
                raise errors.invalid("send a Parameters resource", "resourceType")
            q.update(_params(body))
        return q

    def run(fn, *a, **kw):
        try:
            return respond(fn(*a, **kw), fhir=True)
        except service.NotFound as exc:
            raise errors.not_found(str(exc)) from None
        except ValueError as exc:
            raise errors.GatewayError.of(str(exc), code="too-costly", status=422) from None

    def need(q: dict[str, Any], *names: str) -> None:
        for n in names:
            if not q.get(n):
                raise errors.invalid(f"parameter {n!r} is required", n)

    @api.api_route("/fhir/CodeSystem/$lookup", methods=["GET", "POST"])
    async def lookup(request: Request) -> Any:
        q = await args(request)
        need(q, "system", "code")
        return run(service.lookup, q["system"], q["code"])

    @api.api_route("/fhir/CodeSystem/$validate-code", methods=["GET", "POST"])
    @api.api_route("/fhir/ValueSet/$validate-code", methods=["GET", "POST"])
    async def validate_code(request: Request) -> Any:
        q = await args(request)
        need(q, "code")
        return run(service.validate_code, q["code"], system=q.get("system"), url=q.get("url"),
                   display=q.get("display"))

    @api.api_route("/fhir/ValueSet/$expand", methods=["GET", "POST"])
    async def expand(request: Request) -> Any:
        q = await args(request)
        need(q, "url")
        return run(service.expand, q["url"], filter_=q.get("filter"))

    @api.api_route("/fhir/ConceptMap/$translate", methods=["GET", "POST"])
    async def translate(request: Request) -> Any:
        q = await args(request)
        need(q, "system", "code")
        sender = authenticate(request)
        return run(service.translate_code, q["system"], q["code"],
                   q.get("target") or q.get("targetsystem"), org=q.get("org") or sender.org,
                   local_maps=ctx.local_maps)

    @api.put("/v1/terminology/{org}/maps/{name}", summary="Import a hospital's code map (CSV)")
    async def import_map(org: str, name: str, request: Request) -> Any:
        sender = authenticate(request)
        if sender.org != org and sender.role != "admin":
            raise errors.forbidden(f"this key may import maps for {sender.org} only")
        text = (await request.body()).decode("utf-8-sig", errors="replace")
        try:
            info = ctx.local_maps.import_csv(org, name, text, who=sender.org)
        except ImportError_ as exc:
            raise errors.GatewayError(errors.outcome(
                errors.issue(p, f"line {p.split(':')[0].removeprefix('line ')}"
                             if p.startswith("line ") else None, code="invalid")
                for p in exc.problems), status=422) from None
        from starlette.concurrency import run_in_threadpool

        from terminology.reprocess import reprocess

        released, held = await run_in_threadpool(reprocess, ctx, org)
        return respond({"url": info.url, "version": info.version, "rows": info.rows,
                        "released": released, "still_held": held})

    return api
