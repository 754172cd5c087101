"""Identify: every card identifier gets its system; the master patient index (EMPI) says
which person they belong to; card status is checked.

With the EMPI (the gateway's Redis), the person is resolved or created atomically and the
rendered Patient carries every identifier the person is known by. Without it (offline
conversion), the person id is uuid5 of the strongest identifier — the same id the EMPI
gives a person it creates. A lost or frozen card is accepted and flagged; a cancelled one
is refused. ADT^A40 merges the person the prior identifiers belong to into the survivor.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from gateway import errors
from gateway.envelope import Envelope, Identity
from gateway.identifiers import (
    RANK,
    CardType,
    card_system,
    card_type_of,
    deterministic_id,
)
from gateway.identity.card_status import CardStatus
from terminology.local_maps import hospital_first
from terminology.translate import GBT_2261_1

# Per card type its value, rank and (but for hospital cards, scoped to their issuer) its
# system: an Enum member's ``.value`` and ``CardType.X`` are slow lookups, these are dict reads.
_HOSPITAL = CardType.HOSPITAL_CARD
_VALUE = {t: t.value for t in CardType}
_SYSTEM = {t: card_system(t, None) for t in CardType if t is not _HOSPITAL}


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:
        return _merge(env, ctx) if env.merge is not None else env
    found = _identifiers(env.visit.patient.cards, env.visit.org.code, "patient.cards")
    if ctx.empi is None:
        return _offline(env, ctx, found)
    return _resolved(env, found, ctx.empi.resolve(**_request(env, ctx, found)))


async def run_many(envs: list[Envelope], ctx) -> list[Envelope | Exception]:
    """:func:`run` for a batch: every visit's person resolved in one round trip to the
    index (each resolution its own script, in order: the same outcome as one by one), on
    the asyncio client when the context has one (``ctx.aredis``)."""
    if ctx.empi is None:
        return [_caught(run, env, ctx) for env in envs]
    out: list[Envelope | Exception | None] = []
    pending: list[tuple[int, list, dict]] = []
    for env in envs:
        if env.visit is None:
            out.append(_caught(run, env, ctx))
            continue
        try:
            found = _identifiers(env.visit.patient.cards, env.visit.org.code, "patient.cards")
            pending.append((len(out), found, _request(env, ctx, found)))
            out.append(None)
        except errors.GatewayError as err:
            out.append(err)
    if pending:
        requests = [req for _i, _f, req in pending]
        resolutions = await ctx.empi.resolve_many_async(ctx.aredis, requests) \
            if ctx.aredis is not None else ctx.empi.resolve_many(requests)
        for (i, found, _req), res in zip(pending, resolutions):
            out[i] = res if isinstance(res, Exception) else _caught(_resolved, envs[i], found, res)
    return out  # type: ignore[return-value]


def _caught(fn, *args):
    try:
        return fn(*args)
    except errors.GatewayError as err:
        return err


def _offline(env: Envelope, ctx, found) -> Envelope:
    on = env.visit.visit_time.date()
    statuses = ctx.card_status.get_many([(s, v) for _t, s, v, _i in found], on) \
        if ctx.card_status is not None else ()
    return env.with_(identity=_deterministic(found),
                     warnings=env.warnings + _card_status(found, statuses))


def _request(env: Envelope, ctx, found) -> dict:
    """The index's resolve arguments for a visit (card statuses read in the same trip)."""
    visit = env.visit
    p = visit.patient
    return {"identifiers": [(t, s, v) for t, s, v, _i in found],
            "attrs": {"name": p.name, "birth_date": _iso(p.birth_date) if p.birth_date else "",
                      "phone": p.phone or "", "sex": _sex_gb(p.sex, visit.org.code, ctx)},
            "who": visit.org.code,
            "cards_on": _iso(visit.visit_time.date()) if ctx.card_status is not None else None}


@lru_cache(maxsize=4096)
def _iso(day: date) -> str:
    """A date's ISO form, cached: birth dates and the day's visits come again and again
    (``date.isoformat`` formats with sprintf each time)."""
    return day.isoformat()


def _resolved(env: Envelope, found, res) -> Envelope:
    warnings = _card_status(found, [CardStatus(*c) if c else None for c in res.cards]) \
        if any(res.cards) else ()
    presented = [(t, s, v) for t, s, v, _i in found]
    others = _others(presented, res.identifiers)
    if res.conflict:
        warnings += (errors.issue(
            f"the identifiers presented belong to two people in the master patient index "
            f"({res.person_id} and {res.conflict}); the visit was filed under the first",
            "patient.cards", code="conflict", severity="warning", error_code="3010"),)
    return env.with_(identity=Identity(person_id=res.person_id,
                                       identifiers=tuple(presented + others)),
                     warnings=env.warnings + warnings)


def _others(presented: list[tuple[str, str, str]], members: tuple[str, ...]
            ) -> list[tuple[str, str, str]]:
    """The person's card identifiers (``members``: "system|value") that were not presented,
    strongest first."""
    refs = {f"{s}|{v}" for _t, s, v in presented}
    others = []
    for member in members:
        if member in refs:
            continue
        system, _, value = member.partition("|")
        ctype = card_type_of(system)
        if ctype is not None:
            others.append((_VALUE[ctype], system, value))
    others.sort(key=lambda t: (RANK[t[0]], t))
    return others


def _sex_gb(sex, org: str, ctx) -> str:
    """GB/T 2261.1 sex for the index's demographics (the hospital's map, then national);
    '' when unmapped — the translate stage reports that."""
    t = hospital_first(ctx.local_maps, org, "sex", sex.system, sex.code, GBT_2261_1)
    return t.code if t else ""


def _identifiers(cards, org_code: str, where: str) -> list[tuple[str, str, str, int]]:
    """(card type, system, value, index in the input), strongest first."""
    if not cards:
        raise errors.invalid("no card identifier", where, error_code="3001")
    found, seen = [], set()
    for i, card in enumerate(cards):
        ctype, value = card.type, card.value
        system = _SYSTEM.get(ctype) or card_system(ctype, card.issuer or org_code)
        if (system, value) in seen:
            raise errors.invalid(f"card {_VALUE[ctype]} is listed twice", f"{where}[{i}]",
                                 error_code="3002")
        seen.add((system, value))
        found.append((_VALUE[ctype], system, value, i))
    found.sort(key=_rank)
    return found


def _rank(found: tuple) -> int:
    return RANK[found[0]]


def _deterministic(found) -> Identity:
    _t, system, value, _i = found[0]
    return Identity(person_id=deterministic_id(system, value),
                    identifiers=tuple((t, s, v) for t, s, v, _i in found))


def _card_status(found, statuses) -> tuple[dict, ...]:
    """Warnings for lost or frozen cards; a cancelled card refuses the visit. ``statuses``:
    one per card found (None: active), or fewer when a cancelled card stopped the lookup."""
    warnings = []
    for (ctype, _s, _v, i), st in zip(found, statuses):
        if st is None or st.status == "active":
            continue
        where = f"patient.cards[{i}]"
        text = f"the {ctype} card is {st.status} since {st.effective}" + (
            f": {st.reason}" if st.reason else "")
        if st.status == "cancelled":
            raise errors.GatewayError.of(f"{text}; a cancelled card cannot be used", where,
                                         code="business-rule", error_code="3020", status=422,
                                         v2_code="207")
        warnings.append(errors.issue(f"{text}; the visit is accepted, but insurance "
                                     "settlement will refuse this card", where,
                                     code="business-rule", severity="warning",
                                     error_code="3021"))
    return tuple(warnings)


def _merge(env: Envelope, ctx) -> Envelope:
    """ADT^A40: the person the prior identifiers (MRG-1) belong to joins the survivor (PID-3)."""
    from gateway.visit import CardIdentifier

    def cards(items: list, where: str) -> list:
        try:
            return [CardIdentifier.model_validate(c) for c in items]
        except ValueError as exc:
            raise errors.invalid(f"{where}: {exc}", where, error_code="3003") from None

    surviving = _identifiers(cards(env.merge.get("patient", {}).get("cards", []), "PID-3"),
                             env.sender.org, "PID-3")
    prior = _identifiers(cards(env.merge.get("prior_cards", []), "MRG-1"), env.sender.org,
                         "MRG-1")
    record = {"surviving": [list(x[:3]) for x in surviving], "prior": [list(x[:3]) for x in prior]}
    if ctx.empi is None:
        return env.with_(identity=_deterministic(surviving), merge=record)
    from gateway.identity.empi import EmpiError

    who = env.sender.org
    survivor = ctx.empi.resolve([x[:3] for x in surviving], who=who)
    source = ctx.empi.resolve([x[:3] for x in prior], who=who)
    record["survivor"], record["source"] = survivor.person_id, source.person_id
    if source.person_id != survivor.person_id:
        try:
            ctx.empi.merge(survivor.person_id, source.person_id, who=who,
                           why=f"ADT^A40 {getattr(env.message, 'control_id', '')}".strip())
        except EmpiError as exc:
            raise errors.GatewayError.of(str(exc), "MRG-1", code="conflict", error_code="3011",
                                         status=409, v2_code="207") from None
    return env.with_(identity=Identity(survivor.person_id, tuple(x[:3] for x in surviving)),
                     merge=record)
