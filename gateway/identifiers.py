"""Identifier systems: which URI every card, number and code is written under.

Chinese health OIDs (``urn:oid:2.16.156.10011.*``, see WS/T 500) where a national one
exists; otherwise systems under the project's canonical base. Numbers that are only
unique inside one hospital (its visit cards, visit numbers, doctors, order lines) get a
system scoped to that hospital's organisation code, so a value is globally unique and
can be used in a conditional create.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum
from functools import lru_cache

from stdnum import exceptions as _stdnum_exc
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as _StdnumError

BASE = "https://yikatong.org/fhir"

CITIZEN_ID = "urn:oid:2.16.156.10011.1.3"
PHYSICIAN = "urn:oid:2.16.156.10011.1.4"
ORGANIZATION = "urn:oid:2.16.156.10011.1.5"
OUTPATIENT_NO = "urn:oid:2.16.156.10011.1.11"
DEPARTMENT = "urn:oid:2.16.156.10011.1.26"
SEX_GBT_2261_1 = "urn:oid:2.16.156.10011.2.3.3.4"
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11.1"

# Deterministic resource ids: uuid5 in this namespace of "system|value".
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)
_NS_BYTES = ID_NAMESPACE.bytes


class CardType(StrEnum):
    """Every identifier a patient may present, strongest first."""

    CITIZEN_ID = "citizen_id"  # 居民身份证号 (GB 11643)
    SSC_CARD_NO = "ssc_card_no"  # 社会保障卡 卡号 (9 characters)
    SSC_CARD_ID = "ssc_card_id"  # 社会保障卡 卡识别码 (32 hex)
    HEALTH_CARD = "health_card"  # 居民健康卡 卡号
    EHEALTH_CARD = "ehealth_card"  # 电子健康卡 ID
    NHSA_EVOUCHER = "nhsa_evoucher"  # 医保电子凭证
    YILIAN_CODE = "yilian_code"  # 医联码
    HOSPITAL_CARD = "hospital_card"  # 院内就诊卡 (unique within its issuer only)


# Order of strength for deriving a person key (first present wins).
STRENGTH: tuple[CardType, ...] = tuple(CardType)
RANK: dict[str, int] = {t.value: i for i, t in enumerate(STRENGTH)}  # card type value → its place

_CARD_SYSTEMS: dict[CardType, str] = {
    CardType.CITIZEN_ID: CITIZEN_ID,
    CardType.SSC_CARD_NO: f"{BASE}/sid/ssc-card-no",
    CardType.SSC_CARD_ID: f"{BASE}/sid/ssc-card-id",
    CardType.HEALTH_CARD: f"{BASE}/sid/resident-health-card",
    CardType.EHEALTH_CARD: f"{BASE}/sid/ehealth-card",
    CardType.NHSA_EVOUCHER: f"{BASE}/sid/nhsa-evoucher",
    CardType.YILIAN_CODE: f"{BASE}/sid/yilian-code",
}


def card_type_of(system: str) -> CardType | None:
    """The card type an identifier system stands for (hospital-scoped card systems included)."""
    for card_type, sys in _CARD_SYSTEMS.items():
        if sys == system:
            return card_type
    if system.startswith(f"{BASE}/sid/org/") and system.endswith("/card"):
        return CardType.HOSPITAL_CARD
    return None


def org_scoped(org_code: str, kind: str) -> str:
    """A system for numbers a hospital assigns itself: cards, visits, doctors, orders."""
    return f"{BASE}/sid/org/{org_code}/{kind}"


def card_system(card_type: CardType, issuer: str | None) -> str:
    """The identifier system of a card. Hospital cards are scoped to their issuer."""
    if card_type is CardType.HOSPITAL_CARD:
        if not issuer:
            raise ValueError("a hospital card needs its issuer's organisation code")
        return org_scoped(issuer, "card")
    return _CARD_SYSTEMS[card_type]


try:  # CPython's own SHA-1: for a hundred bytes a third cheaper than OpenSSL's, whose
    # context set-up dominates for inputs this short (hashlib falls back to it as well)
    from _sha1 import sha1 as _sha1
except ImportError:  # an interpreter built without it
    _sha1 = hashlib.sha1
# The RFC 4122 variant bits over a hex digit of byte 8: 0b10xx
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


# identifier system → SHA-1 of the namespace and "system|", the part of the name every
# value of the system begins with: copied for each value, never updated itself. A system
# under the project's base is some fifty bytes, so the copy has its first 64-byte block
# already compressed (of two). A few dozen systems in practice; bounded all the same.
_PREFIXES: dict = {}


def name_based_id(system: str, value: str) -> str:
    """uuid5 of ``system|value``: the same business identifier always gives the same id.

    RFC 4122 name-based (SHA-1) UUID, computed directly: the same value as ``uuid.uuid5``
    at a fraction of its cost (a visit renders some twenty of them), the hash of the
    system's part taken up where it was left (:data:`_PREFIXES`), written straight from the
    digest's hex with the version digit and the variant bits set."""
    prefix = _PREFIXES.get(system)
    if prefix is None:
        if len(_PREFIXES) >= 4096:
            _PREFIXES.clear()
        prefix = _PREFIXES[system] = _sha1(_NS_BYTES + f"{system}|".encode())
    hasher = prefix.copy()
    hasher.update(value.encode())
    h = hasher.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


@lru_cache(maxsize=65536)
def deterministic_id(system: str, value: str) -> str:
    """:func:`name_based_id`, cached: the hospital, the doctor, the patient and the visit
    come again in each message."""
    return name_based_id(system, value)


def _birth_place_known(region: str, year: int) -> bool:
    """Was ``region`` (GB/T 2260) a county in ``year``? As python-stdnum's ``cn.ric``
    decides from its table, read once into a dict (:func:`_counties`)."""
    return any(start <= year <= end for start, end in _counties().get(region, ()))


@lru_cache(maxsize=1)
def _counties() -> dict[str, tuple[tuple[int, int], ...]]:
    """Region code → the years it was a county, from python-stdnum's ``cn/loc`` table.

    By hand because ``ric.get_birth_place`` scans the whole table for each number (~0.1 ms
    for a patient seen the first time) and raises a bare ``KeyError`` for a known province
    with an unknown county. The same reading of the table: a code listed again overrides
    the earlier entry; ``[start-end]name`` is a county for those years (either end open),
    a name without brackets for any year."""
    from stdnum import numdb

    out: dict[str, tuple[tuple[int, int], ...]] = {}
    for plen, plow, phigh, _props, children in numdb.get("cn/loc").prefixes:
        for clen, clow, chigh, props, _more in children:
            if "county" not in props:
                continue
            spans = []
            for county in props["county"].split(","):
                if not county.startswith("["):
                    spans = [(0, 9999)]
                    break
                start, end = county[1:].split("]")[0].split("-")
                spans.append((int(start) if start else 0, int(end) if end else 9999))
            for p in range(int(plow), int(phigh) + 1):
                for c in range(int(clow), int(chigh) + 1):
                    out[f"{p:0{plen}d}{c:0{clen}d}"] = tuple(spans)
    return out


@lru_cache(maxsize=65536)
def citizen_id_problem(value: str) -> str | None:
    """Why a citizen ID number (GB 11643) is invalid, or None when it is valid: length,
    format, check digit, birth date and birth place, as python-stdnum's ``cn.ric`` checks.
    Cached: a patient's number comes with every visit and message (a pure function)."""
    try:
        # already compact (the usual case): python-stdnum's generic clean-up is skipped
        number = value if len(value) == 18 and value.isalnum() and value.isascii() \
            and not value.islower() else ric.compact(value)
        if len(number) != 18:
            raise _stdnum_exc.InvalidLength()
        if not number[:-1].isdigit() or not number[:-1].isascii():
            raise _stdnum_exc.InvalidFormat()
        if number[-1] != ric.calc_check_digit(number):
            raise _stdnum_exc.InvalidChecksum()
        birth = ric.get_birth_date(number)
        if not _birth_place_known(number[:6], birth.year):
            raise _stdnum_exc.InvalidComponent()
    except _StdnumError as exc:
        return {
            "InvalidChecksum": "the check digit (18th character) does not match",
            "InvalidLength": "must be 18 characters",
            "InvalidFormat": "must be 17 digits and a digit or X",
            "InvalidComponent": "the birth date or region code is not valid",
        }.get(type(exc).__name__, str(exc))
    return None
