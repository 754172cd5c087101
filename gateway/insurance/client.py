"""The NHSA interface client (synchronous httpx; the settlement API runs it in worker threads).

* Every call is one signed envelope POSTed to ``GATEWAY_INSURANCE_URL``.
* Sign-in (9001) once per institution; the ``sign_no`` is kept in Redis
  (``gw:ins:sign:{fixmedins}``) and reused by every process until the platform answers
  that it expired — then the client signs in again and re-sends the same message (same
  msgid: the refused message was not processed).
* No usable answer (timeout, connection cut, 5xx, a body that is not an NHSA answer)
  raises :class:`Unknown`: the caller does not know whether the platform processed it and
  must resolve that (``settlement.py`` does: same msgid again, then 2601).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import orjson
import redis

from gateway.insurance import envelope
from gateway.insurance.envelope import Answer
from gateway.insurance.signing import sign_envelope, signer_for
from gateway.logging import get_logger

log = get_logger(__name__)
SIGN_TTL = 12 * 3600
DEV_KEY = "development-only-key"
SIGN_EXPIRED_PHRASES = ("签到编号", "sign_no")


class Unknown(Exception):
    """No usable answer: whether the platform processed the message is unknown."""


class Refused(Exception):
    """The platform answered infcode < 0 where the caller needs success (e.g. 9001)."""

    def __init__(self, answer: Answer):
        super().__init__(f"{answer.infno}: {answer.err_msg}")
        self.answer = answer


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class NhsaClient:
    def __init__(self, settings: Any, r: redis.Redis):
        self.url = settings.insurance_url
        self.admdvs = settings.insurance_admdvs
        self.r = r
        self.http = httpx.Client(timeout=settings.insurance_timeout)
        if (settings.environment != "development" and settings.insurance_signer == "hmac"
                and settings.insurance_sign_key == DEV_KEY):
            raise RuntimeError("GATEWAY_INSURANCE_SIGN_KEY is the development placeholder; "
                               "set the key agreed with the insurer")
        self.signer = signer_for(settings.insurance_signer, settings.insurance_sign_key)

    def close(self) -> None:
        self.http.close()

    def new_msgid(self, fixmedins: str, when: datetime | None = None) -> str:
        when = when or envelope.now_local()
        key = f"gw:ins:seq:{fixmedins}:{when:%Y%m%d%H%M%S}"
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, 5)
        sequence, _ = pipe.execute()
        return envelope.msgid(fixmedins, when, sequence)

    def sign_no(self, fixmedins: str, name: str, *, renew: bool = False) -> str:
        key = f"gw:ins:sign:{fixmedins}"
        if not renew:
            cached = self.r.get(key)
            if cached:
                return cached.decode()
        msgid = self.new_msgid(fixmedins)
        env = envelope.request(infno="9001", msgid_=msgid, fixmedins=fixmedins,
                               fixmedins_name=name, sign_no="", mdtrtarea_admvs=self.admdvs,
                               input_={"signIn": {"opter_no": "cashier", "mac": "", "ip": ""}})
        ans = self._post(env)
        sign_no = str((ans.output.get("signinoutb") or {}).get("sign_no", ""))
        if not ans.ok or not sign_no:
            raise Refused(ans)
        self.r.set(key, sign_no, ex=SIGN_TTL)
        log.info("signed in to the insurer", fixmedins=fixmedins)
        return sign_no

    def call(self, infno: str, input_: dict[str, Any], *, fixmedins: str, name: str,
             msgid: str | None = None, insuplc_admdvs: str = "") -> Answer:
        """One transaction. ``msgid``: re-send a message under its original id."""
        msgid = msgid or self.new_msgid(fixmedins)
        for renew in (False, True):
            env = envelope.request(infno=infno, msgid_=msgid, fixmedins=fixmedins,
                                   fixmedins_name=name, mdtrtarea_admvs=self.admdvs,
                                   insuplc_admdvs=insuplc_admdvs, input_=input_,
                                   sign_no=self.sign_no(fixmedins, name, renew=renew))
            ans = self._post(env)
            if ans.ok or renew or not any(p in ans.err_msg for p in SIGN_EXPIRED_PHRASES):
                return ans
            log.info("sign_no expired; signing in again", fixmedins=fixmedins)
        return ans

    def _post(self, env: dict[str, Any]) -> Answer:
        sign_envelope(env, self.signer)
        try:
            resp = self.http.post(self.url, content=orjson.dumps(env),
                                  headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise Unknown(f"{env['infno']} {env['msgid']}: {_error(exc)}") from None
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise Unknown(f"{env['infno']} {env['msgid']}: HTTP {resp.status_code}")
        try:
            return envelope.answer(env["infno"], env["msgid"], resp.json())
        except ValueError as exc:
            raise Unknown(f"{env['infno']} {env['msgid']}: unreadable answer: {exc}") from None
