"""Everything the gateway keeps in Redis, and the names it keeps it under.

    gw:visit:{tid}        hash  the tracking record: status, org, visit_no, outcome, receipt:<dest>
    gw:q:{dest}:{shard}   stream  payloads waiting for a destination (consumer group "delivery";
                          Zstandard-compressed, gateway/compression.py):
                          a FHIR Bundle, or the canonical visit for HL7 v2 receivers
    gw:dlq:{dest}         stream  dead letters, with the receiver's OperationOutcome
    gw:lease:{dest}:{shard}  string  which worker owns a shard (per-patient order)
    gw:apikey:{sha256}    hash  an API key's organisation (see apikeys.py)

A visit's overall status is derived when it is read, from its per-destination receipts.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import redis

from gateway.jsonio import dumps
from gateway.redis_async import evalsha_many

GROUP = "delivery"

STATUSES = ("accepted", "needs-mapping", "rejected", "queued", "delivered", "failed",
            "dead-lettered")


def visit_key(tid: str) -> str:
    return f"gw:visit:{tid}"


def stream_key(dest: str, shard: int) -> str:
    return f"gw:q:{dest}:{shard}"


def dlq_key(dest: str) -> str:
    return f"gw:dlq:{dest}"


def lease_key(dest: str, shard: int) -> str:
    return f"gw:lease:{dest}:{shard}"


def new_tracking_id() -> str:
    """Time-ordered and unguessable: 12 hex of milliseconds + 20 hex random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def shard_of(person_id: str, shards: int) -> int:
    """A patient's visits always go to the same shard, so they are delivered in order."""
    return zlib.crc32(person_id.encode()) % shards


_set = object.__setattr__  # Outbox is frozen: its own __setattr__ refuses


@dataclass(frozen=True)
class Outbox:
    """What must be durably written, in one Redis transaction, before a visit is accepted
    (the transactional-outbox pattern): its tracking record and its queue entries."""

    record_key: str
    record: dict[str, Any]
    ttl: int
    entries: tuple[tuple[str, dict[str, Any]], ...] = ()
    marks: tuple[tuple[str, str, int], ...] = ()  # (key, value, ttl): e.g. an HL7 control id seen
    hash_fields: tuple[tuple[str, str, bytes], ...] = ()  # (hash, field, value): e.g. a held visit
    counts: tuple[tuple[str, str], ...] = ()  # (sorted set, member) +1: e.g. an unmapped code
    unless: str = ""  # a key whose presence means this was written before: nothing is written

    def __init__(self, record_key: str, record: dict[str, Any], ttl: int,
                 entries: tuple[tuple[str, dict[str, Any]], ...] = (),
                 marks: tuple[tuple[str, str, int], ...] = (),
                 hash_fields: tuple[tuple[str, str, bytes], ...] = (),
                 counts: tuple[tuple[str, str], ...] = (), unless: str = "") -> None:
        # written here (the dataclass then makes none) to be compiled, and its fields set in
        # one piece: the one a frozen dataclass makes sets each with object.__setattr__ from
        # Python, about 10 k instructions per outbox
        _set(self, "__dict__", {"record_key": record_key, "record": record, "ttl": ttl,
                                "entries": entries, "marks": marks, "hash_fields": hash_fields,
                                "counts": counts, "unless": unless})

    def with_marks(self, *marks: tuple[str, str, int]) -> Outbox:
        return replace(self, marks=self.marks + marks)

    def with_hash_fields(self, *fields: tuple[str, str, bytes]) -> Outbox:
        return replace(self, hash_fields=self.hash_fields + fields)

    def with_counts(self, *counts: tuple[str, str]) -> Outbox:
        return replace(self, counts=self.counts + counts)

    def once(self, key: str, value: str, ttl: int) -> Outbox:
        """Written only if ``key`` is not there, and ``key`` marked in the same write: an
        HL7 message's (sender, MSH-10) — a re-sent message is recognised atomically, by
        whichever gateway process it reaches."""
        return replace(self, marks=self.marks + ((key, value, ttl),), unless=key)


def _seconds_now() -> str:
    """``f"{time.time():.6f}"``, the time now in seconds to the microsecond, from the integer
    clock: the float's formatting costs about 4 k instructions, this about a quarter of it."""
    micros = str((time.time_ns() + 500) // 1000)  # sixteen digits since 2001
    return f"{micros[:-6]}.{micros[-6:]}"


# a new receipt, the same bytes every time (bytes are immutable: shared by every record)
_QUEUED_RECEIPT = orjson.dumps({"status": "queued", "attempts": 0})


def visit_outbox(*, tid: str, org: str, visit_no: str, person_id: str, received_at: str,
                 payloads: dict[str, bytes], shards: int, ttl: int,
                 marks: tuple[tuple[str, str, int], ...] = (),
                 counts: tuple[tuple[str, str], ...] = (), unless: str = "") -> Outbox:
    """A visit's record, and its payload queued for every destination on the patient's shard.
    ``marks``, ``counts`` and ``unless`` as :class:`Outbox` has them: given here, the outbox
    is made once (a ``with_…`` copy, ``dataclasses.replace``, costs several times making it)."""
    shard = shard_of(person_id, shards)
    now = _seconds_now()
    record: dict[str, Any] = {
        "status": "queued" if payloads else "accepted", "org": org, "visit_no": visit_no,
        "person": person_id, "received_at": received_at,
    }
    entries = []
    for dest, payload in payloads.items():
        record[f"receipt:{dest}"] = _QUEUED_RECEIPT
        entries.append((stream_key(dest, shard), {"tid": tid, "person": person_id,
                                                  "enqueued": now, "payload": payload}))
    return Outbox(visit_key(tid), record, ttl, tuple(entries), marks, (), counts, unless)


MERGES = "gw:empi:merges"


def quarantine_key(org: str) -> str:
    return f"gw:term:quarantine:{org}"


def merge_outbox(*, tid: str, org: str, received_at: str, merge: dict[str, Any],
                 ttl: int) -> Outbox:
    """ADT^A40: identifiers that belong to one person, recorded for the master patient index."""
    return Outbox(visit_key(tid), {"status": "accepted", "org": org, "visit_no": "",
                                   "received_at": received_at}, ttl,
                  ((MERGES, {"tid": tid, "org": org, "merge": dumps(merge)}),))


def hold(box: Outbox, *, org: str, tid: str, dests: tuple[str, ...], item: dict[str, Any],
         outcome: dict[str, Any]) -> Outbox:
    """The visit is also held for ``dests`` until its codes can be translated: kept in the
    organisation's quarantine (nothing is lost), its receipts say "needs-mapping"."""
    record = dict(box.record)
    record["outcome"] = dumps(outcome)
    if not box.entries:
        record["status"] = "needs-mapping"
    for dest in dests:
        if dest != "*":
            record[f"receipt:{dest}"] = orjson.dumps({"status": "needs-mapping", "attempts": 0})
    held = replace(box, record=record)
    return held.with_hash_fields((quarantine_key(org), tid, dumps({**item, "dests": list(dests)})))


def rejection_outbox(*, tid: str, org: str, received_at: str, outcome: dict[str, Any],
                     ttl: int) -> Outbox:
    return Outbox(visit_key(tid), {"status": "rejected", "org": org, "visit_no": "",
                                   "received_at": received_at, "outcome": dumps(outcome)}, ttl)


_SCRIPT = (Path(__file__).parent / "commit.lua").read_text()
_SHA = hashlib.sha1(_SCRIPT.encode()).hexdigest()


# -- the Redis protocol ----------------------------------------------------------------------
# The commits and the index's calls are packed here, compiled (setup.py), rather than by
# hiredis's pack_command (what redis-py's hiredis serializer calls): that one copies every
# argument into a string of its own and formats each length with sprintf — about 37 k
# instructions for a commit, several times this. The bytes are the same.
_COUNTS = tuple(b"*%d" % i for i in range(64))  # a command's "*N" line, without its CRLF
_LENGTHS = tuple(b"$%d" % i for i in range(4096))  # an argument's "$N" line, likewise


def pack_commands(commands: list[list[Any]]) -> bytes | None:
    """``commands`` in the Redis protocol, back to back: the bytes redis-py's hiredis
    serializer sends for them (str as UTF-8, int in decimal, bytes as they are). None when
    an argument is of any other type (a subclass too), or the first is not a plain word
    (redis-py splits it at spaces): the caller packs those its usual way."""
    parts: list[bytes] = []
    append = parts.append
    for command in commands:
        n = len(command)
        first = command[0] if n else None
        if type(first) is not str or not first.isalnum():
            return None
        append(_COUNTS[n] if n < 64 else b"*%d" % n)
        for arg in command:
            kind = type(arg)
            if kind is str:
                data = arg.encode()
            elif kind is bytes:
                data = arg
            elif kind is int:
                data = str(arg).encode()
            else:
                return None
            size = len(data)
            append(_LENGTHS[size] if size < 4096 else b"$%d" % size)
            append(data)
    append(b"")  # every line ends with CRLF, the last one too
    return b"\r\n".join(parts)


class AlreadySeen(Exception):
    """The outbox's ``unless`` key was there: it was written before (nothing written now)."""


def _script_args(box: Outbox) -> list[Any]:
    """``EVALSHA`` arguments that write ``box`` with ``commit.lua`` (its layout is there)."""
    keys: list[Any] = [box.record_key]
    counts = [len(box.entries), len(box.marks), len(box.hash_fields), len(box.counts)]
    args: list[Any] = []
    for stream, fields in box.entries:
        keys.append(stream)
        args.append(len(fields))
        for kv in fields.items():
            args.extend(kv)
    for key, value, ttl in box.marks:
        keys.append(key)
        args += (value, ttl)
    for key, name, value in box.hash_fields:
        keys.append(key)
        args += (name, value)
    for key, member in box.counts:
        keys.append(key)
        args.append(member)
    if box.unless:
        keys.append(box.unless)
    for kv in box.record.items():
        args.extend(kv)
    return ["EVALSHA", _SHA, len(keys), *keys, box.ttl, len(keys) if box.unless else 0,
            *counts, *args]


def commit(r: redis.Redis, box: Outbox) -> None:
    """Write an outbox atomically (blocking client); raises what stopped it."""
    failure = commit_many(r, [box])[0]
    if failure is not None:
        raise failure


def commit_many(r: redis.Redis, boxes: list[Outbox]) -> list[Exception | None]:
    """Write several outboxes, each atomically (one ``commit.lua`` call), in one round trip:
    a group commit. With ``appendfsync always`` Redis syncs its append-only file once for
    all of them before it answers. Returns, per outbox, None once it is durably written,
    :class:`AlreadySeen` when its ``unless`` key was there, or the error that stopped it (a
    connection error: every outbox not known to be written).

    The commands are packed and the replies read on a connection of ``r``'s pool (redis-py's
    own packing and hiredis parser) so that nothing is retried: a write may have been
    applied before the connection broke; the submitter is told to retry, and receivers
    deduplicate by conditional create."""
    if not boxes:
        return []
    cmds = [_script_args(box) for box in boxes]
    pool = r.connection_pool
    conn = None
    results: list[Exception | None] = []
    try:
        conn = pool.get_connection()
        for _attempt in range(2):
            conn.send_packed_command(conn.pack_commands(cmds))
            results = []
            for _ in cmds:
                try:
                    written = conn.read_response()
                except redis.ResponseError as exc:
                    results.append(exc)
                else:
                    results.append(None if written == 1 else AlreadySeen(
                        "written before (its unless key is there)"))
            if not any(isinstance(x, redis.exceptions.NoScriptError) for x in results):
                break
            # the server lost the script (a restart without persistence): none ran; load it
            conn.send_command("SCRIPT", "LOAD", _SCRIPT)
            conn.read_response()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        if conn is not None:
            conn.disconnect()
        results.extend([exc] * (len(boxes) - len(results)))
    finally:
        if conn is not None:
            pool.release(conn)
    return results


async def commit_many_async(ar: Any, boxes: list[Outbox]) -> list[Exception | None]:
    """:func:`commit_many` on an asyncio client (the event loop goes on while Redis syncs).
    ``ar`` must not retry (``gateway.redis_async.unretried``): a write may have been applied
    before the connection broke, and must not be applied twice."""
    if not boxes:
        return []
    try:
        commands = [_script_args(box) for box in boxes]
        replies = await evalsha_many(ar, commands, _SCRIPT, pack_commands(commands))
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        return [exc] * len(boxes)
    return [x if isinstance(x, Exception) else None if x == 1 else
            AlreadySeen("written before (its unless key is there)") for x in replies]


async def commit_async(r: Any, box: Outbox) -> None:
    """Write an outbox atomically (asyncio client): other requests run while Redis syncs."""
    failure = (await commit_many_async(r, [box]))[0]
    if failure is not None:
        raise failure


def overall_status(record_status: str, receipts: dict[str, dict[str, Any]]) -> str:
    if record_status == "rejected" or not receipts:
        return record_status
    states = {r["status"] for r in receipts.values()}
    for status in ("dead-lettered", "failed", "needs-mapping", "queued"):
        if status in states:
            return status
    return "delivered"


def read_visit(r: redis.Redis, tid: str) -> dict[str, Any] | None:
    raw = r.hgetall(visit_key(tid))
    if not raw:
        return None
    fields = {k.decode(): v for k, v in raw.items()}
    receipts = {k.split(":", 1)[1]: orjson.loads(v) for k, v in fields.items()
                if k.startswith("receipt:")}
    status = fields.get("status", b"").decode()
    view: dict[str, Any] = {
        "tracking_id": tid,
        "status": overall_status(status, receipts),
        "org": fields.get("org", b"").decode(),
        "visit_no": fields.get("visit_no", b"").decode(),
        "received_at": fields.get("received_at", b"").decode(),
        "receipts": receipts,
    }
    if "person" in fields:
        view["person_id"] = fields["person"].decode()
    if "outcome" in fields:
        view["outcome"] = orjson.loads(fields["outcome"])
    return view
