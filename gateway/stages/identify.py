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
    visit = env.visit
    found: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for i, card in enumerate(visit.patient.cards):
        issuer = card.issuer or (visit.org.code if card.type is CardType.HOSPITAL_CARD else None)
        system = card_system(card.type, issuer)
        if (system, card.value) in seen:
            raise errors.invalid(f"card {card.type.value} is listed twice",
                                 f"patient.cards[{i}]", error_code="3002")
        seen.add((system, card.value))
        found.append((card.type.value, system, card.value))
    found.sort(key=lambda t: STRENGTH.index(CardType(t[0])))
    _type, system, value = found[0]
    return env.with_(identity=Identity(person_id=deterministic_id(system, value),
                                       identifiers=tuple(found)))
