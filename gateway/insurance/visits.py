"""The canonical visit, kept for the cashier: written with the visit's outbox (route stage),
read when it is settled.

    gw:ins:visit:{tid}   string  the canonical visit JSON, Zstandard-compressed (copies
                                 written before were zlib-compressed: both are read); kept
                                 KEEP_SECONDS (settlement happens at the cashier the same
                                 day), and as long as the tracking record once settled
"""

from __future__ import annotations

import zlib
from typing import Any

from gateway import compression

KEEP_SECONDS = 7 * 86400


def key(tid: str) -> str:
    return f"gw:ins:visit:{tid}"


def mark(env: Any) -> tuple[str, bytes, int] | None:
    """The outbox mark that keeps a visit with fee lines (None: nothing to settle)."""
    if env.visit is None or not env.visit.fees:
        return None
    # the JSON it was sent as, when it came as canonical JSON: it reads back as the same
    # visit (the model's validation is the same both times), without serialising it again
    canonical = env.visit_json or env.visit.to_json()
    return key(env.tracking_id), compression.pack(canonical), KEEP_SECONDS


def load(r: Any, tid: str) -> bytes | None:
    raw = r.get(key(tid))
    if not raw:
        return None
    return compression.unpack(raw) if raw[:4] == compression.MAGIC else zlib.decompress(raw)
