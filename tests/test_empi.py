"""The master patient index on a real redis-server."""

from __future__ import annotations

import threading

import pytest
import redis

from gateway.identifiers import CITIZEN_ID, card_system, deterministic_id
from gateway.identifiers import CardType as T
from gateway.identity.empi import Empi, EmpiError

CID = "110101198506150019"
CID2 = "110101199003070013"


def ids(*items):
    return [(t.value, card_system(t, issuer), v) for t, v, issuer in items]


@pytest.fixture
def empi(redis_server):
    return Empi(redis.Redis.from_url(redis_server.url))


def test_strong_identifier_creates_and_then_finds_one_person(empi):
    a = empi.resolve(ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "JZK1", "H1")))
    assert a.created and a.person_id == deterministic_id(CITIZEN_ID, CID)
    b = empi.resolve(ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "CARD-B", "H2"),
                         (T.YILIAN_CODE, "104450000000198", None)))
    assert b.person_id == a.person_id and not b.created
    assert len(b.identifiers) == 4
    # any identifier finds the person, including the other hospital's card
    assert empi.lookup(card_system(T.HOSPITAL_CARD, "H2"), "CARD-B") == a.person_id


def test_a_weak_identifier_alone_links_nothing(empi):
    strong = empi.resolve(ids((T.CITIZEN_ID, CID, None)))
    # a hospital card presented alone: a provisional person, not the strong one
    prov = empi.resolve(ids((T.HOSPITAL_CARD, "LONELY", "H1")))
    assert prov.person_id != strong.person_id
    # presented later together with the citizen ID: the provisional person joins
    joined = empi.resolve(ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "LONELY", "H1")))
    assert joined.person_id == strong.person_id
    assert empi.lookup(card_system(T.HOSPITAL_CARD, "H1"), "LONELY") == strong.person_id
    history = empi.person(prov.person_id)["history"]
    assert history[-1]["event"] == "merged" and history[-1]["into"] == strong.person_id


def test_two_strong_persons_are_never_merged_automatically(empi):
    a = empi.resolve(ids((T.CITIZEN_ID, CID, None)))
    b = empi.resolve(ids((T.CITIZEN_ID, CID2, None)))
    both = empi.resolve(ids((T.CITIZEN_ID, CID, None), (T.CITIZEN_ID, CID2, None)))
    assert both.person_id == a.person_id and both.conflict == b.person_id
    assert empi.lookup(CITIZEN_ID, CID2) == b.person_id


def test_merge_and_unmerge_keep_history(empi):
    a = empi.resolve(ids((T.CITIZEN_ID, CID, None)))
    b = empi.resolve(ids((T.HOSPITAL_CARD, "OLD-1", "H1"), (T.SSC_CARD_NO, "X1", None)))
    empi.merge(a.person_id, b.person_id, who="admin@H1", why="same person, ADT^A40")
    assert empi.lookup(card_system(T.HOSPITAL_CARD, "H1"), "OLD-1") == a.person_id
    assert empi.follow(b.person_id) == a.person_id
    with pytest.raises(EmpiError):
        empi.merge(a.person_id, b.person_id, who="x", why="again")
    empi.unmerge(b.person_id, who="admin@H1", why="merged by mistake")
    assert empi.lookup(card_system(T.HOSPITAL_CARD, "H1"), "OLD-1") == b.person_id
    events = [e["event"] for e in empi.person(a.person_id)["history"]]
    assert events[-2:] == ["absorbed", "released"]
    last = empi.person(b.person_id)["history"][-1]
    assert last["event"] == "unmerged" and last["by"] == "admin@H1" and last["why"]


def test_concurrent_registration_of_a_new_person_gives_one_person(redis_server):
    results, errors = [], []

    def register(i: int) -> None:
        try:
            e = Empi(redis.Redis.from_url(redis_server.url))
            for _ in range(20):
                r = e.resolve(ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, f"C{i}", f"H{i}")))
                results.append(r.person_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1 and len(results) == 160
    person = Empi(redis.Redis.from_url(redis_server.url)).person(results[0])
    assert len(person["identifiers"]) == 9  # the citizen ID and eight hospital cards


def test_weak_evidence_gives_scored_candidates_only(empi):
    a = empi.resolve(ids((T.CITIZEN_ID, CID, None)),
                     {"name": "张伟", "birth_date": "1985-06-15", "sex": "1", "phone": "13812345678"})
    empi.resolve(ids((T.CITIZEN_ID, CID2, None)),
                 {"name": "李娜", "birth_date": "1990-03-07", "sex": "2"})
    found = empi.match(name="章伟", birth_date="1985-06-15", sex="1")  # a homophone
    assert [c.person_id for c in found] == [a.person_id]
    assert found[0].grade == "possible" and "name sounds the same (pinyin)" in found[0].reasons
    exact = empi.match(name="张伟", birth_date="1985-06-15", sex="1", phone="13812345678")
    assert exact[0].grade == "certain" and exact[0].score == 1.0
    assert empi.match(name="王五", birth_date="2001-01-01") == []


def test_card_status_is_read_with_the_resolution_and_a_cancelled_card_writes_nothing(empi):
    from datetime import date

    from gateway.identity.card_status import CardStatusStore

    cards = CardStatusStore(empi.r)
    hospital = card_system(T.HOSPITAL_CARD, "H1")
    cards.set(hospital, "JZK-LOST", "lost", effective=date(2026, 1, 1), reason="挂失")
    cards.set(CITIZEN_ID, CID2, "cancelled", effective=date(2026, 3, 1))
    seen = empi.resolve(ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "JZK-LOST", "H1")),
                        cards_on="2026-02-01")
    assert seen.refused is None and seen.cards == (None, ("lost", "2026-01-01", "挂失"))
    # not yet in force the day before it takes effect: resolved as usual
    before = empi.resolve(ids((T.CITIZEN_ID, CID2, None)), cards_on="2026-02-28")
    assert before.created and before.cards == (None,)
    refused = empi.resolve(ids((T.CITIZEN_ID, CID2, None), (T.HOSPITAL_CARD, "NEW-1", "H1")),
                           cards_on="2026-03-01")
    assert refused.refused == 0 and refused.cards[0][0] == "cancelled"
    assert empi.lookup(card_system(T.HOSPITAL_CARD, "H1"), "NEW-1") is None  # nothing linked


def test_a_patient_presented_as_before_writes_nothing(empi):
    """A returning patient with the same identifiers and attributes is only read: nothing
    for the append-only file (the call does not wait for its fsync). What changes is written,
    with its index."""
    changes = lambda: empi.r.info("persistence")["rdb_changes_since_last_save"]  # noqa: E731
    cards = ids((T.CITIZEN_ID, CID, None), (T.HOSPITAL_CARD, "JZK1", "H1"))
    attrs = {"name": "张伟", "birth_date": "1985-06-15", "sex": "1", "phone": "13812345678"}
    first = empi.resolve(cards, attrs, cards_on="2026-03-01")
    before = changes()
    again = empi.resolve(cards, attrs, cards_on="2026-03-01")
    fewer = empi.resolve(cards[:1], {"name": "张伟"})
    assert again.person_id == fewer.person_id == first.person_id and not again.created
    assert changes() == before
    moved = empi.resolve(cards, {**attrs, "phone": "13900000000"})
    assert moved.person_id == first.person_id and changes() > before
    person = empi.person(first.person_id)
    assert person["phone"] == "13900000000" and person["name"] == "张伟"
    found = empi.match(name="张伟", birth_date="1985-06-15", phone="13900000000")
    assert found[0].person_id == first.person_id and "phone" in " ".join(found[0].reasons)
