"""The organisation registry: hospitals the gateway knows, their names, the facility
names they may send under (HL7 MSH-4 aliases), and their default character set.

    gw:org:{code}        hash   name, charset, adapter
    gw:orgalias:{alias}  string the organisation code an MSH-4 alias stands for
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    charset: str = ""  # default for HL7 messages with an empty MSH-18
    adapter: str = ""  # the adapter (adapters/) that reads what it sends; empty: the standard ones


class OrgRegistry:
    def __init__(self, r: redis.Redis):
        self.r = r
        self._cache: dict[str, tuple[float, Org | None]] = {}

    def register(self, code: str, name: str = "") -> None:
        self.r.hsetnx(f"gw:org:{code}", "name", name or code)
        if name:
            self.r.hset(f"gw:org:{code}", "name", name)

    def set_charset(self, code: str, charset: str) -> None:
        self.r.hset(f"gw:org:{code}", "charset", charset)

    def set_adapter(self, code: str, adapter: str) -> None:
        """The adapter that reads this organisation's input ("" for the standard mapping)."""
        if not self.r.exists(f"gw:org:{code}"):
            raise KeyError(f"organisation {code} is not registered")
        self.r.hset(f"gw:org:{code}", "adapter", adapter)
        self._cache.clear()

    def add_alias(self, code: str, alias: str) -> None:
        if not self.r.exists(f"gw:org:{code}"):
            raise KeyError(f"organisation {code} is not registered")
        self.r.set(f"gw:orgalias:{alias}", code)

    def get(self, code: str) -> Org | None:
        fields = self.r.hmget(f"gw:org:{code}", "name", "charset", "adapter")
        if fields[0] is None:
            return None
        return Org(code, fields[0].decode(), (fields[1] or b"").decode(),
                   (fields[2] or b"").decode())

    def by_facility(self, facility: str) -> Org | None:
        """The organisation an MSH-4 facility names: its own code, or one of its aliases."""
        now = time.monotonic()
        hit = self._cache.get(facility)
        if hit and hit[0] > now:
            return hit[1]
        org = self.get(facility) if facility else None
        if org is None and facility:
            code = self.r.get(f"gw:orgalias:{facility}")
            org = self.get(code.decode()) if code else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[facility] = (now + CACHE_SECONDS, org)
        return org


class StaticOrgs:
    """A fixed set of organisations, for converting files offline (`gateway convert`)."""

    def __init__(self, *orgs: Org):
        self._orgs = {o.code: o for o in orgs}

    def by_facility(self, facility: str) -> Org | None:
        return self._orgs.get(facility)

    def get(self, code: str) -> Org | None:
        return self._orgs.get(code)
