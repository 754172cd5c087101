"""The master patient index: every identifier a person presents → one EMPI person id.

Kept in Redis (keys under ``gw:empi:``); the decisions that must not race — resolving or
creating a person, merging, unmerging — run as Lua scripts (``empi.lua``, ``merge.lua``),
so two hospitals registering the same new person at the same instant get one person.

Linking rules:
* **strong** identifiers decide: the citizen ID (its check digit verified on the way in)
  and the cards issued to a person whose identity was verified (social security card
  number and card id — the SSC is keyed to the citizen ID —, resident health card, whose
  number is the ID number, and the e-health card, a platform master-index id); a new
  strong identifier creates a person whose id is uuid5 of it (the same id the gateway
  used before the EMPI knew it);
* a hospital's own card, a 医联码 or an NHSA e-voucher token is linked to a person only when
  presented together with a strong identifier; alone, an unknown one makes a
  *provisional* person, which joins the strong person the first time both are presented
  together;
* weak evidence (name and its pinyin, birth date, sex, phone) never links: it only
  produces scored candidates (``match``) for a person to review;
* merges and unmerges are explicit, recorded with who, when and why; identifiers of a
  merged person resolve to the survivor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import redis
from pypinyin import lazy_pinyin

from gateway.identifiers import CardType, deterministic_id
from gateway.redis_async import evalsha_many
from gateway.store import pack_commands

HERE = Path(__file__).parent
STRONG = frozenset({CardType.CITIZEN_ID, CardType.SSC_CARD_NO, CardType.SSC_CARD_ID,
                    CardType.HEALTH_CARD, CardType.EHEALTH_CARD})


class Resolution(NamedTuple):
    """What a resolve found or did (a NamedTuple: one is made per visit, and a frozen
    dataclass's ``__init__`` costs several times as much)."""

    person_id: str
    identifiers: tuple[str, ...]  # "system|value" of every identifier the person has
    created: bool = False
    conflict: str | None = None  # another strong person the presented identifiers point to
    # with ``cards_on``: each presented card's (status, effective, reason) in force, or None
    cards: tuple[tuple[str, str, str] | None, ...] = ()
    refused: int | None = None  # a cancelled card's index: nothing was resolved or written


@dataclass(frozen=True)
class Candidate:
    person_id: str
    score: float
    grade: str  # certain | probable | possible
    reasons: tuple[str, ...] = field(default=())


class EmpiError(Exception):
    pass


@lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """Pinyin without tones: homophones (张伟 / 章伟) share a key."""
    return "".join(lazy_pinyin(name)).lower().replace(" ", "")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


_REFS = 10  # a request's arguments from here on: its identifiers, "system|value"


def _request(identifiers: list[tuple[str, str, str]], attrs: dict[str, str] | None = None,
             who: str = "", cards_on: str | None = None, now: str | None = None) -> list[str]:
    """The resolve script's arguments (flat, positional: see ``empi.lua``). ``attrs``: the
    person's name, birth_date, phone and sex (what the person's hash keeps), each optional."""
    if not identifiers:
        raise EmpiError("no identifier")
    _t, system, value = identifiers[0]
    a = attrs or {}
    name = a.get("name") or ""
    # CardType is a StrEnum: a card type's value is found in STRONG as it is
    return [now or _now(), who, deterministic_id(system, value), cards_on or "",
            "".join(["1" if t in STRONG else "0" for t, _s, _v in identifiers]),
            name, a.get("birth_date") or "", a.get("phone") or "", a.get("sex") or "",
            name_key(name) if name else "",
            *[f"{s}|{v}" for _t, s, v in identifiers]]


def _resolution(reply: list, req: list[str]) -> Resolution:
    """The script's reply (see ``empi.lua``) to the request ``req`` (its arguments)."""
    *ids, same, cards, conflict, flag, person = reply
    if cards is not None:
        cards = tuple((c[0].decode(), c[1].decode(), c[2].decode()) if c else None
                      for c in cards)
    elif req[3]:  # asked, and no card has a status
        cards = (None,) * len(req[4])
    else:
        cards = ()
    if person is None:
        return Resolution("", (), cards=cards, refused=flag)
    identifiers = set(req[_REFS:]) if same else [m.decode() for m in ids]
    return Resolution(person.decode(), tuple(sorted(identifiers)), flag == 1,
                      conflict.decode() if conflict is not None else None, cards)


def _requests(requests: list[dict[str, Any]]) -> tuple[list, list[list[str]]]:
    """Per request its refusal (or None: asked), and the script arguments of those asked
    (one time for the batch)."""
    now = _now()
    out: list[Exception | None] = []
    args: list[list[str]] = []
    for req in requests:
        try:
            args.append(_request(**req, now=now))
            out.append(None)
        except EmpiError as exc:
            out.append(exc)
    return out, args


def _answers(out: list, args: list[list[str]], replies: list) -> list[Resolution | Exception]:
    it = iter(zip(args, replies))
    answers: list[Resolution | Exception] = []
    for x in out:
        if x is None:
            req, reply = next(it)
            x = reply if isinstance(reply, Exception) else _resolution(reply, req)
        answers.append(x)
    return answers


class Empi:
    def __init__(self, r: redis.Redis):
        self.r = r
        prelude = (HERE / "prelude.lua").read_text()
        self._resolve = r.register_script(prelude + (HERE / "empi.lua").read_text())
        self._merge = r.register_script(prelude + (HERE / "merge.lua").read_text())

    # -- resolve -------------------------------------------------------------------------
    def resolve(self, identifiers: list[tuple[str, str, str]], attrs: dict[str, str] | None = None,
                who: str = "", cards_on: str | None = None) -> Resolution:
        """``identifiers``: (card type, system, value), strongest first. With ``cards_on``
        (an ISO date) each card's status in force that day is read in the same round trip
        (``card_status.py`` keeps them); a cancelled card stops there (``refused``)."""
        req = _request(identifiers, attrs, who, cards_on)
        return _resolution(self._resolve(args=req), req)

    def resolve_many(self, requests: list[dict[str, Any]]) -> list[Resolution | Exception]:
        """Several :meth:`resolve` calls (their keyword arguments) in one round trip; each
        runs as its own script, in order, so the outcome is the one they would have one
        after the other. A request that fails gives its exception in its place."""
        out, args = _requests(requests)
        return _answers(out, args, self._evalsha_many(args) if args else [])

    async def resolve_many_async(self, ar: Any, requests: list[dict[str, Any]]
                                 ) -> list[Resolution | Exception]:
        """:meth:`resolve_many` on an asyncio client ``ar`` (the event loop goes on)."""
        out, args = _requests(requests)
        if not args:
            return _answers(out, args, [])
        commands = [["EVALSHA", self._resolve.sha, 0, *a] for a in args]
        replies = await evalsha_many(ar, commands, self._resolve.script,
                                     pack_commands(commands))
        return _answers(out, args, replies)

    def _evalsha_many(self, args: list[list[str]]) -> list[Any]:
        """The resolve script once per argument, pipelined (without the SCRIPT EXISTS round
        trip redis-py's pipelines add for registered scripts); loaded again if the server
        lost it (a restart without persistence), then every call is made again — when the
        script is missing, none of them ran."""
        for _attempt in range(2):
            pipe = self.r.pipeline(transaction=False)
            for a in args:
                pipe.evalsha(self._resolve.sha, 0, *a)
            replies = pipe.execute(raise_on_error=False)
            if not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
                return replies
            self._resolve.sha = self.r.script_load(self._resolve.script)
        return replies

    def lookup(self, system: str, value: str) -> str | None:
        """The (surviving) person an identifier belongs to."""
        pid = self.r.get(f"gw:empi:id:{system}|{value}")
        return self.follow(pid.decode()) if pid else None

    def lookup_many(self, pairs: list[tuple[str, str]]) -> list[str | None]:
        """Pipelined lookups (no merge-following): the hot path for cross-references."""
        pipe = self.r.pipeline(transaction=False)
        for system, value in pairs:
            pipe.get(f"gw:empi:id:{system}|{value}")
        return [v.decode() if v else None for v in pipe.execute()]

    def follow(self, pid: str) -> str:
        for _ in range(32):
            into = self.r.hget(f"gw:empi:person:{pid}", "merged_into")
            if not into:
                return pid
            pid = into.decode()
        return pid

    def person(self, pid: str) -> dict[str, Any] | None:
        raw = self.r.hgetall(f"gw:empi:person:{pid}")
        if not raw:
            return None
        person = {k.decode(): v.decode() for k, v in raw.items()}
        person["id"] = pid
        person["identifiers"] = sorted(m.decode() for m in self.r.smembers(
            f"gw:empi:person:{pid}:ids"))
        person["history"] = [orjson.loads(e) for e in self.r.lrange(
            f"gw:empi:person:{pid}:history", 0, -1)]
        return person

    # -- merge ---------------------------------------------------------------------------
    def merge(self, survivor: str, source: str, who: str, why: str) -> dict[str, Any]:
        out = orjson.loads(self._merge(args=[orjson.dumps({
            "op": "merge", "survivor": survivor, "source": source, "now": _now(), "who": who,
            "why": why})]))
        if "error" in out:
            raise EmpiError(out["error"])
        return out

    def unmerge(self, source: str, who: str, why: str) -> dict[str, Any]:
        out = orjson.loads(self._merge(args=[orjson.dumps({
            "op": "unmerge", "source": source, "now": _now(), "who": who, "why": why})]))
        if "error" in out:
            raise EmpiError(out["error"])
        return out

    # -- candidates ----------------------------------------------------------------------
    def match(self, *, name: str | None = None, birth_date: str | None = None,
              sex: str | None = None, phone: str | None = None, limit: int = 10) -> list[Candidate]:
        """Scored candidates from weak evidence (never a link). Blocking on birth date,
        phone and the name's pinyin; scores add up per agreeing attribute."""
        keys = []
        if birth_date:
            keys.append(f"gw:empi:dob:{birth_date}")
        if phone:
            keys.append(f"gw:empi:phone:{phone}")
        if name:
            keys.append(f"gw:empi:name:{name_key(name)}")
        pool: set[str] = set()
        for key in keys:
            pool |= {m.decode() for m in self.r.smembers(key)}
        out = []
        for pid in pool:
            p = self.r.hgetall(f"gw:empi:person:{pid}")
            p = {k.decode(): v.decode() for k, v in p.items()}
            if p.get("status") == "merged":
                continue
            score, reasons = 0.0, []
            if birth_date and p.get("birth_date") == birth_date:
                score += 0.35
                reasons.append("birth date")
            if name and p.get("name") == name:
                score += 0.35
                reasons.append("name")
            elif name and p.get("name_key") == name_key(name):
                score += 0.25
                reasons.append("name sounds the same (pinyin)")
            if phone and p.get("phone") == phone:
                score += 0.2
                reasons.append("phone")
            if sex and p.get("sex") == sex:
                score += 0.1
                reasons.append("sex")
            grade = ("certain" if score >= 0.95 else "probable" if score >= 0.8
                     else "possible" if score >= 0.5 else None)
            if grade:
                out.append(Candidate(pid, round(score, 2), grade, tuple(reasons)))
        out.sort(key=lambda c: (-c.score, c.person_id))
        return out[:limit]
