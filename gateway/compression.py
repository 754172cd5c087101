"""Zstandard for what the gateway keeps in Redis: queued payloads and settlement copies.

Payloads are compressed with a dictionary trained on the gateway's own output (FHIR
Bundles and canonical visits: the same keys, system URIs and profile URLs in every one).
A visit's Bundle (about 11 KB of JSON from an HL7 v2 message, 19 KB from a full canonical
visit) is kept as about 1.4 KB, a canonical visit (3.3 KB) as 0.6 KB: 2.2 times less
than Zstandard alone at the same level, and a little faster — memory for what waits in
the delivery streams while a receiver is down, bytes for Redis to append and fsync.

Each frame names its dictionary (the frame's dictionary id), so a dictionary is never
changed once shipped: a better one is a new file ``compression-N.zdict`` under a new id
(``python -m gateway.compression train``), the newest compresses and every one shipped
still decompresses. ``unpack`` also reads frames without a dictionary (queued by an
earlier version) and returns anything that is not a Zstandard frame as it is (a payload
queued before payloads were compressed).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

import zstandard

MAGIC = b"\x28\xb5\x2f\xfd"  # a Zstandard frame starts with it; JSON and HL7 never do
HERE = Path(__file__).resolve().parent
DICT_ID_BASE = 0x594B5400  # "YKT" and the dictionary's version in the low byte
LEVEL = 1
_local = threading.local()  # (de)compressors per thread: they are not thread-safe


class Unreadable(ValueError):
    """A Zstandard frame this version cannot read (a dictionary it does not have, a
    damaged frame)."""


@lru_cache(maxsize=1)
def dictionaries() -> dict[int, zstandard.ZstdCompressionDict]:
    """Every dictionary shipped, by its id."""
    out = {}
    for path in HERE.glob("compression-*.zdict"):
        if re.fullmatch(r"compression-\d+\.zdict", path.name):
            d = zstandard.ZstdCompressionDict(path.read_bytes())
            out[d.dict_id()] = d
    return out


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "compressor", None)
    if c is None:
        known = dictionaries()
        newest = known[max(known)] if known else None
        c = _local.compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=newest)
    return c


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    cache = getattr(_local, "decompressors", None)
    if cache is None:
        cache = _local.decompressors = {}
    d = cache.get(dict_id)
    if d is None:
        if dict_id and dict_id not in dictionaries():
            raise Unreadable(
                f"payload compressed with Zstandard dictionary {dict_id:#x}, which this version "
                f"does not have (it has {', '.join(hex(i) for i in sorted(dictionaries()))})")
        d = cache[dict_id] = zstandard.ZstdDecompressor(
            dict_data=dictionaries()[dict_id] if dict_id else None)
    return d


def pack(data: bytes) -> bytes:
    return _compressor().compress(data)


def unpack(raw: bytes) -> bytes:
    if raw[:4] != MAGIC:
        return raw
    try:
        return _decompressor(zstandard.get_frame_parameters(raw).dict_id).decompress(raw)
    except zstandard.ZstdError as exc:
        raise Unreadable(f"damaged Zstandard frame: {exc}") from None


def train(size: int = 32 * 1024) -> Path:
    """Train the next dictionary on synthetic visits (canonical JSON, their Bundles, and the
    Bundles of HL7 v2 messages) and write it as ``compression-N.zdict``."""
    from datetime import datetime, timezone

    from gateway.convert import convert_envelope
    from gateway.jsonio import dumps
    from gateway.synth import generate, v2_messages

    samples = []
    for visit in generate(400, seed=1001):
        canonical = visit.to_json()
        samples += [canonical, dumps(convert_envelope(canonical).bundle)]
    now = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    for raw in v2_messages(generate(130, org="H11010100001", seed=1001), prefix="B1001",
                           charsets=("utf-8", "gb18030"), now=now):
        env = convert_envelope(raw)
        if env.bundle is not None:
            samples.append(dumps(env.bundle))
    version = max((i - DICT_ID_BASE for i in dictionaries()), default=0) + 1
    trained = zstandard.train_dictionary(size, samples, dict_id=DICT_ID_BASE + version,
                                         level=LEVEL)
    path = HERE / f"compression-{version}.zdict"
    path.write_bytes(trained.as_bytes())
    return path


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["train"]:
        sys.exit("usage: python -m gateway.compression train")
    print(train())
