"""Zstandard for what the gateway keeps in Redis: queued payloads and settlement copies.

A visit's Bundle (about 24 KB of JSON) is kept as about 3.7 KB: six times less memory for
what waits in the delivery streams and the dead letters, and six times less for Redis to
append and fsync per visit. Level 1 costs about 30 µs per Bundle (zlib gets a third of the
ratio at that price). ``unpack`` returns anything that is not a Zstandard frame as it is
(a payload queued before payloads were compressed).
"""

from __future__ import annotations

import threading

import zstandard

MAGIC = b"\x28\xb5\x2f\xfd"  # a Zstandard frame starts with it; JSON and HL7 never do
_local = threading.local()  # a (de)compressor per thread: they are not thread-safe


def _pair() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = _local.pair = (zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor())
    return pair


def pack(data: bytes) -> bytes:
    return _pair()[0].compress(data)


def unpack(raw: bytes) -> bytes:
    return _pair()[1].decompress(raw) if raw[:4] == MAGIC else raw
