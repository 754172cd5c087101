"""Hospital API keys. A key is shown once at creation; Redis keeps only its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timezone

import redis

from gateway.envelope import Sender

PREFIX = "ykt_"
ROLES = ("hospital", "admin")  # admin: merges, unmerges, card status
CACHE_SECONDS = 5.0


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _key(digest: str) -> str:
    return f"gw:apikey:{digest}"


class KeyStore:
    def __init__(self, r: redis.Redis):
        self.r = r
        self._cache: dict[str, tuple[float, Sender | None]] = {}

    def create(self, org: str, name: str = "", role: str = "hospital") -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key = PREFIX + secrets.token_urlsafe(32)
        digest = _digest(key)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(_key(digest), mapping={
            "org": org, "name": name, "role": role,
            "created": datetime.now(timezone.utc).isoformat()})
        pipe.sadd("gw:apikeys", digest)
        pipe.hsetnx(f"gw:org:{org}", "name", name or org)
        pipe.execute()
        return key

    def lookup(self, key: str) -> Sender | None:
        """The sender a key belongs to, or None. Cached briefly; revocation applies within seconds."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        sender = None
        if key.startswith(PREFIX) and len(key) < 100:
            fields = self.r.hmget(_key(_digest(key)), "org", "name", "role")
            if fields[0] is not None:
                sender = Sender(org=fields[0].decode(), key_name=(fields[1] or b"").decode(),
                                role=(fields[2] or b"hospital").decode())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + CACHE_SECONDS, sender)
        return sender

    def list(self) -> list[dict[str, str]]:
        out = []
        for digest in sorted(self.r.smembers("gw:apikeys")):
            fields = self.r.hgetall(_key(digest.decode()))
            if fields:
                out.append({"id": digest.decode()[:12],
                            **{k.decode(): v.decode() for k, v in fields.items()}})
        return out

    def revoke(self, key_id: str) -> bool:
        """Revoke by the id shown in ``list`` (the first characters of the key's hash)."""
        for digest in self.r.smembers("gw:apikeys"):
            if digest.decode().startswith(key_id) and len(key_id) >= 8:
                self.r.delete(_key(digest.decode()))
                self.r.srem("gw:apikeys", digest)
                return True
        return False
