"""The gateway's settlement state in Redis, the per-visit lock and idempotency keys.

    gw:ins:setl:{tid}       hash  one visit's settlement: status (previewed / settling /
                                  settled / reversed / unknown / manual / cancelled), psn_no, insutype,
                                  med_type, insuplc_admdvs, mdtrt_id, chrg_bchno, fees (2204
                                  rows), msgid:{infno} (a state-changing message's id, kept
                                  until its answer is known, so a retry re-sends the same
                                  message), input:2207, preview, settlement, setl_id, fhir
    gw:ins:lock:{tid}       str   one request at a time per visit
    gw:ins:idem:{org}:{h}   str   an Idempotency-Key (sha256): request fingerprint, and the
                                  answer once there is one (24 h)
    gw:ins:unknown          zset  visits whose settlement outcome is unknown (to resolve)
    gw:ins:sign:{fixmedins} str   the current sign_no (client.py)
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import redis

from gateway import errors
from gateway.errors import GatewayError

LOCK_TTL = 300  # longer than the slowest request (timeouts, retries, 2601)
IDEM_TTL = 86400
UNKNOWN = "gw:ins:unknown"
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def state_key(tid: str) -> str:
    return f"gw:ins:setl:{tid}"


class State:
    def __init__(self, r: redis.Redis, ttl: int):
        self.r, self.ttl = r, ttl

    def read(self, tid: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.r.hgetall(state_key(tid)).items()}

    def save(self, tid: str, state: dict[str, str], **fields: Any) -> None:
        values = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in fields.items()}
        state.update(values)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(state_key(tid), mapping=values)
        pipe.expire(state_key(tid), self.ttl)
        if values.get("status") == "unknown":
            pipe.zadd(UNKNOWN, {tid: time.time()})
        elif "status" in values:
            pipe.zrem(UNKNOWN, tid)
        pipe.execute()

    def drop(self, tid: str, state: dict[str, str], *names: str) -> None:
        for name in names:
            state.pop(name, None)
        self.r.hdel(state_key(tid), *names)

    def unknown(self, before: float | None = None) -> list[str]:
        """Visits whose outcome is unknown (recorded at ``before`` or earlier), oldest first."""
        top = "+inf" if before is None else before
        return [t.decode() for t in self.r.zrangebyscore(UNKNOWN, "-inf", top)]

    @contextlib.contextmanager
    def locked(self, tid: str) -> Iterator[None]:
        key, token = f"gw:ins:lock:{tid}", secrets.token_hex(8)
        if not self.r.set(key, token, nx=True, ex=LOCK_TTL):
            raise GatewayError.of("another settlement request for this visit is in progress; "
                                  "retry in a moment", "id", code="conflict", error_code="8004",
                                  status=409)
        try:
            yield
        finally:
            self.r.eval(_RELEASE, 1, key, token)


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def check_key(key: str | None, required: bool) -> str | None:
    if key is None or key == "":
        if required:
            raise GatewayError.of("an Idempotency-Key header is required (a unique value per "
                                  "payment attempt, reused when retrying it)", "Idempotency-Key",
                                  code="required", error_code="8002", status=400)
        return None
    if len(key) > 255 or not key.isprintable():
        raise errors.invalid("Idempotency-Key must be 1 to 255 printable characters",
                             "Idempotency-Key", error_code="8002")
    return key


def idempotent(r: redis.Redis, org: str, key: str | None, fp: str,
               fn: Callable[[], tuple[int, Any]]) -> tuple[int, Any, bool]:
    """Run ``fn`` once per key: the same key and request get the stored answer (third value
    True); the same key with another request is refused. Answers the client should retry
    (5xx, 409 in progress) are not stored."""
    if key is None:
        status, body = fn()
        return status, body, False
    rkey = f"gw:ins:idem:{org}:{hashlib.sha256(key.encode()).hexdigest()}"
    if not r.set(rkey, orjson.dumps({"fp": fp, "state": "processing"}), nx=True, ex=IDEM_TTL):
        existing = orjson.loads(r.get(rkey) or b"{}")
        if existing.get("fp") != fp:
            raise GatewayError.of("this Idempotency-Key was already used with a different "
                                  "request; use a new key for a new payment attempt",
                                  "Idempotency-Key", code="business-rule", error_code="8003",
                                  status=422)
        if existing.get("state") != "done":
            raise GatewayError.of("a request with this Idempotency-Key is still being "
                                  "processed; retry in a moment", "Idempotency-Key",
                                  code="conflict", error_code="8004", status=409)
        return existing["status"], existing["body"], True

    def keep(status: int, body: Any) -> None:
        r.set(rkey, orjson.dumps({"fp": fp, "state": "done", "status": status, "body": body},
                                 default=str), ex=IDEM_TTL)

    try:
        status, body = fn()
    except GatewayError as err:
        if err.status >= 500 or err.status == 409:
            r.delete(rkey)
        else:
            keep(err.status, err.outcome)
        raise
    except BaseException:
        r.delete(rkey)
        raise
    keep(status, body)
    return status, body, False
