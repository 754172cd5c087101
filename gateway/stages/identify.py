"""Identify: every card identifier gets its system; the person key comes from the strongest.

First cut: the person id is deterministic (uuid5 of the strongest identifier), so the same
citizen ID at any hospital is the same person. The EMPI deepens this with linking,
merges and card status.
"""

from __future__ import annotations

from gateway import errors
from gateway.envelope import Envelope, Identity
from gateway.identifiers import STRENGTH, CardType, card_system, deterministic_id


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:
        return _merge(env) if env.merge is not None else env
    visit = env.visit
    return env.with_(identity=_identity(visit.patient.cards, visit.org.code, "patient.cards"))


def _merge(env: Envelope) -> Envelope:
    """ADT^A40: the surviving person and the person the prior identifiers made."""
    from gateway.visit import CardIdentifier

    def cards(items: list, where: str) -> list:
        try:
            return [CardIdentifier.model_validate(c) for c in items]
        except ValueError as exc:
            raise errors.invalid(f"{where}: {exc}", where, error_code="3003") from None

    surviving = _identity(cards(env.merge.get("patient", {}).get("cards", []), "PID-3"),
                          env.sender.org, "PID-3")
    prior = _identity(cards(env.merge.get("prior_cards", []), "MRG-1"), env.sender.org, "MRG-1")
    merge = {"surviving": {"person_id": surviving.person_id, "identifiers": surviving.identifiers},
             "prior": {"person_id": prior.person_id, "identifiers": prior.identifiers}}
    return env.with_(identity=surviving, merge=merge)


def _identity(card_list, org_code: str, where: str) -> Identity:
    if not card_list:
        raise errors.invalid("no card identifier", where, error_code="3001")
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for i, card in enumerate(card_list):
        issuer = card.issuer or (org_code if card.type is CardType.HOSPITAL_CARD else None)
        system = card_system(card.type, issuer)
        if (system, card.value) in seen:
            raise errors.invalid(f"card {card.type.value} is listed twice",
                                 f"{where}[{i}]", error_code="3002")
        seen.add((system, card.value))
        found.append((card.type.value, system, card.value))
    found.sort(key=lambda t: STRENGTH.index(CardType(t[0])))
    _type, system, value = found[0]
    return Identity(person_id=deterministic_id(system, value), identifiers=tuple(found))
