"""Reference peer: an insurance center speaking the NHSA designated-institution interface.

One endpoint, ``POST /fsi/api/rsfComIfsService/callService`` (also ``POST /``), takes the
NHSA envelope and answers ``{infcode, inf_refmsgid, refmsg_time, respond_time, err_msg,
warn_msg, output}``. Transactions: 9001 sign-in, 1101 person info, 2201/2202 register and
cancel, 2203 visit info, 2204/2205 fee upload and cancel, 2206 pre-settlement, 2207
settlement, 2208 settlement cancel, 2601 reversal by ``omsgid``, 5206 accumulators.

State lives in Redis (keys under ``nhsa:``):

    nhsa:psn:{psn_no}          hash  the insured person (registry fields, ``balc`` account)
    nhsa:idx:{cert or card}    str   → psn_no
    nhsa:cum:{psn_no}:{year}   hash  dedc_used, fund_paid, medfee, psn_part, acct_paid, count
    nhsa:mdtrt:{mdtrt_id}      hash  a registration: psn_no, insutype, begntime, status,
                                     fees:{chrg_bchno} (2204 rows), setl:{chrg_bchno}
    nhsa:setl:{setl_id}        str   a settlement: setlinfo and the deltas it applied
    nhsa:msg:{msgid}           str   the answer given to a msgid: a re-sent msgid gets the
                                     same answer and is never processed twice
    nhsa:rev:{msgid}           str   reversed by 2601: a late original is refused
    nhsa:sign:{sign_no}        str   a sign-in (expires)

2601 undoes a settled 2207 exactly (as 2208 does) and marks ``omsgid`` reversed; for any
other original, or one never received, it only marks it (a late original is refused).
Writes are WATCH/MULTI transactions retried on conflict, so two settlements for one person
serialise; 2208 and 2601 subtract exactly the deltas a settlement stored. The rules (funds,
catalogue) are ``insurance_rules.toml``; the registry is a JSON list of people
(``--registry``), and with ``auto_enrol`` a person with a valid citizen ID is enrolled on
first sight. The transactions are ``_insurance_center.py``; the arithmetic
``_insurance_rules.py``. ``/_admin`` injects faults per infno (cut the connection before or after
processing, or answer late), adds people, reads accumulators and counters.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import anyio
import orjson
import redis
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from conformance.peers._insurance_center import (  # noqa: F401 - the refusal texts are public
    ARREARS,
    BAD_SIGN_NO,
    FROZEN,
    MANUAL,
    OUT_OF_AREA,
    UNKNOWN_PERSON,
    Center,
    Refusal,
    decoded,
)
from conformance.peers._insurance_rules import load_rules

SERVICE_PATHS = ("/fsi/api/rsfComIfsService/callService", "/")


# --------------------------------------------------------------------------- faults


class Faults:
    """Faults for the next requests of a given infno, oldest first:
    ``drop_before`` (cut the connection, nothing processed), ``drop_after`` (processed,
    then the connection is cut before the answer), ``delay`` (processed, answered late)."""

    MODES = ("drop_before", "drop_after", "delay")

    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()

    def add(self, spec: Any) -> None:
        if not isinstance(spec, dict) or spec.get("mode") not in self.MODES:
            raise ValueError(f"a fault is {{\"infno\": \"2207\", \"mode\": one of {self.MODES}, "
                             "\"count\": 1, \"delay\": seconds}")
        count, delay = spec.get("count", 1), spec.get("delay", 0)
        if type(count) is not int or count < 1 or type(delay) not in (int, float) or delay < 0:
            raise ValueError("count must be a positive integer and delay a number ≥ 0")
        self.queue.append({"infno": str(spec.get("infno", "*")), "mode": spec["mode"],
                           "count": count, "delay": float(delay)})

    def take(self, infno: str) -> dict[str, Any] | None:
        for fault in self.queue:
            if fault["infno"] in ("*", infno):
                fault["count"] -= 1
                if fault["count"] == 0:
                    self.queue.remove(fault)
                return fault
        return None


async def _cut(send: Any) -> None:
    """Start an answer and stop: the server closes the connection mid-response."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})


class ServiceGate:
    """The NHSA endpoint as raw ASGI, so a fault can cut the real connection."""

    def __init__(self, app: Any, center: Center, faults: Faults):
        self.app, self.center, self.faults = app, center, faults

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in SERVICE_PATHS:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            env = orjson.loads(body)
            if not isinstance(env, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            await _json(send, {"infcode": -1, "err_msg": f"报文格式错误 (not a JSON envelope: {exc})",
                               "output": {}})
            return
        fault = self.faults.take(str(env.get("infno", "")))
        if fault and fault["mode"] == "drop_before":
            await _cut(send)
            return
        answer = await anyio.to_thread.run_sync(self.center.handle, env)
        if fault and fault["mode"] == "drop_after":
            await _cut(send)
            return
        if fault and fault["mode"] == "delay":
            await asyncio.sleep(fault["delay"])
        await _json(send, answer)


async def _json(send: Any, body: Any, status: int = 200) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def create_app(redis_url: str, rules_file: Path | None = None,
               registry_file: Path | None = None) -> Any:
    rules = load_rules(rules_file)
    center = Center(redis.Redis.from_url(redis_url, max_connections=64), rules)
    if registry_file is not None:
        for person in orjson.loads(registry_file.read_bytes()):
            center.enrol(person)
    faults = Faults()
    app = FastAPI(title="Insurance center reference peer (NHSA interface)", docs_url=None,
                  redoc_url=None, openapi_url=None)

    def js(body: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        center.r.ping()
        return js({"status": "ok"})

    @app.post("/_admin/faults")
    async def add_faults(request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body())
            for item in spec if isinstance(spec, list) else [spec]:
                faults.add(item)
        except ValueError as exc:
            return js({"error": str(exc)}, 400)
        return js({"pending": list(faults.queue)})

    @app.delete("/_admin/faults")
    def clear_faults() -> Response:
        faults.queue.clear()
        return js({"pending": []})

    @app.post("/_admin/persons")
    async def add_persons(request: Request) -> Response:
        try:
            spec = orjson.loads(await request.body())
            done = [center.enrol(p) for p in (spec if isinstance(spec, list) else [spec])]
        except (ValueError, KeyError) as exc:
            return js({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return js({"psn_no": done})

    @app.get("/_admin/persons/{psn_no}/accumulators/{year}")
    def accumulators(psn_no: str, year: str) -> Response:
        try:
            return js(center.accumulators(psn_no, year))
        except Refusal as exc:
            return js({"error": exc.err_msg}, 404)

    @app.post("/_admin/expire-signs")
    def expire_signs() -> Response:
        keys = list(center.r.scan_iter("nhsa:sign:*"))
        if keys:
            center.r.delete(*keys)
        return js({"expired": len(keys)})

    @app.get("/_admin/stats")
    def stats() -> Response:
        def read(key: str) -> dict[str, int]:
            return {decoded(k): int(v) for k, v in center.r.hgetall(key).items()}
        return js({"received": read("nhsa:stats:received"), "processed": read("nhsa:stats:processed")})

    return ServiceGate(app, center, faults)


def serve(host: str, port: int, redis_url: str, rules_file: Path | None = None,
          registry_file: Path | None = None) -> None:
    uvicorn.run(create_app(redis_url, rules_file, registry_file), host=host, port=port,
                log_level="warning")
