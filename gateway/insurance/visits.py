"""The canonical visit, kept for the cashier: written with the visit's outbox (route stage),
read when it is settled.

    gw:ins:visit:{tid}   string  the canonical visit JSON, zlib-compressed; kept KEEP_SECONDS
                                 (settlement happens at the cashier the same day), and as
                                 long as the tracking record once the visit is settled
"""

from __future__ import annotations

import zlib
from typing import Any

KEEP_SECONDS = 7 * 86400


def key(tid: str) -> str:
    return f"gw:ins:visit:{tid}"


def mark(env: Any) -> tuple[str, bytes, int] | None:
    """The outbox mark that keeps a visit with fee lines (None: nothing to settle)."""
    if env.visit is None or not env.visit.fees:
        return None
    return key(env.tracking_id), zlib.compress(env.visit.to_json(), 1), KEEP_SECONDS


def load(r: Any, tid: str) -> bytes | None:
    raw = r.get(key(tid))
    return zlib.decompress(raw) if raw else None
