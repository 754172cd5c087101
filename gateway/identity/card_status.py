"""Card status: active / frozen / lost / cancelled, per card, with the date it takes effect.

Kept on the platform side (the card itself does not know). A visit presented with a lost
or frozen card is accepted but flagged (insurance settlement refuses it); a cancelled card
is refused with its reason. Every change is kept with who, when and why.

    gw:empi:card:{system}|{value}          hash  status, effective, reason, by, at
    gw:empi:card:{system}|{value}:history  list  every change
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import orjson
import redis

STATUSES = ("active", "frozen", "lost", "cancelled")


@dataclass(frozen=True)
class CardStatus:
    status: str
    effective: str  # ISO date
    reason: str = ""


def _key(system: str, value: str) -> str:
    return f"gw:empi:card:{system}|{value}"


class CardStatusStore:
    def __init__(self, r: redis.Redis):
        self.r = r

    def set(self, system: str, value: str, status: str, *, effective: date | None = None,
            reason: str = "", who: str = "") -> CardStatus:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        eff = (effective or datetime.now(timezone.utc).date()).isoformat()
        now = datetime.now(timezone.utc).isoformat()
        record = {"status": status, "effective": eff, "reason": reason, "by": who, "at": now}
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(_key(system, value), mapping=record)
        pipe.rpush(_key(system, value) + ":history", orjson.dumps(record))
        pipe.execute()
        return CardStatus(status, eff, reason)

    def get_many(self, pairs: list[tuple[str, str]], on: date) -> list[CardStatus | None]:
        """The status in force on ``on`` for each card (None: never set, i.e. active)."""
        pipe = self.r.pipeline(transaction=False)
        for system, value in pairs:
            pipe.hmget(_key(system, value), "status", "effective", "reason")
        out: list[CardStatus | None] = []
        for status, effective, reason in pipe.execute():
            if status is None or effective is None or effective.decode() > on.isoformat():
                out.append(None)
            else:
                out.append(CardStatus(status.decode(), effective.decode(),
                                      (reason or b"").decode()))
        return out

    def history(self, system: str, value: str) -> list[dict]:
        return [orjson.loads(e) for e in self.r.lrange(_key(system, value) + ":history", 0, -1)]
