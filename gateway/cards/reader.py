"""Read a social security card or a resident health card through PC/SC (pyscard).

    data = read_card()                                   # first reader with a card
    data = read_card("Virtual PCD 00 00", sam_reader="Virtual PCD 00 01")

The card type is found by selecting the SSC application (AID), then the health card's
DDF1. Records are read by tag with Le=00; a ``6Cxx`` answer is resent with Le=xx and a
``61xx`` one is fetched with GET RESPONSE, so cards of either habit read the same. Every
other status word becomes a ``CardError`` (see ``gateway.cards.errors``).

A health card's EF06 (name, sex, ethnicity, birth date, ID number) and EF08 (expiry,
phone) are only readable after EXTERNAL AUTHENTICATE with a cryptogram from a SAM in a
second reader (``sam_reader``): GET CHALLENGE on the card, VERIFY + ``80 DE`` + ``80 FA``
on the SAM, ``00 82`` on the card. Without a SAM the EF05 data is returned and
``card["ef06"]`` says ``"needs SAM"``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.cards import apdu
from gateway.cards.errors import (
    CardBlocked,
    CardError,
    CardRemoved,
    NoCard,
    NoReader,
    UnexpectedStatus,
    UnknownCard,
    WrongPin,
)
from gateway.identifiers import CardType, citizen_id_problem
from gateway.visit import CardIdentifier

log = logging.getLogger(__name__)

DEFAULT_SAM_PIN = "12345678"
HEALTH_READ_KEY = 0x31  # key reference of DDF1 (32..34: DF01..DF03)

# PC/SC return codes (winscard.h); the values are fixed, so no import from pyscard here.
_SCARD_E_NO_SERVICE = 0x8010001D
_SCARD_E_SERVICE_STOPPED = 0x8010001E
_SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
_SCARD_E_UNKNOWN_READER = 0x80100009
_SCARD_E_READER_UNAVAILABLE = 0x80100017
_SCARD_E_NO_SMARTCARD = 0x8010000C
_SCARD_W_REMOVED_CARD = 0x80100069
_SCARD_W_RESET_CARD = 0x80100068
_SCARD_W_UNPOWERED_CARD = 0x80100067
_SCARD_W_UNRESPONSIVE_CARD = 0x80100066
_SCARD_E_SHARING_VIOLATION = 0x8010000B
_NO_SERVICE = {_SCARD_E_NO_SERVICE, _SCARD_E_SERVICE_STOPPED}
_CARD_GONE = {_SCARD_W_REMOVED_CARD, _SCARD_E_NO_SMARTCARD, _SCARD_W_RESET_CARD,
              _SCARD_W_UNPOWERED_CARD}
_READER_GONE = {_SCARD_E_UNKNOWN_READER, _SCARD_E_READER_UNAVAILABLE}


@dataclass(frozen=True)
class CardData:
    """What was read from one card.

    card_type:   "ssc" | "health"
    identifiers: SSC: citizen_id, ssc_card_no, ssc_card_id. Health card: health_card, and
                 citizen_id when EF06 was read.
    holder:      name, sex (GB/T 2261.1), ethnicity (GB/T 3304), birth_date (ISO),
                 birthplace (SSC, GB/T 2260), phone (health card); {} when not read.
    card:        spec_version, issue_date, expiry_date (ISO), issuer, card_no, reader,
                 atr (hex) and type-specific fields; health card: "ef06" is "read" or
                 "needs SAM".
    """

    card_type: str
    identifiers: list[CardIdentifier]
    holder: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)

    def identifier(self, card_type: CardType | str) -> str | None:
        wanted = CardType(card_type)
        return next((i.value for i in self.identifiers if i.type is wanted), None)


# --------------------------------------------------------------------------- PC/SC access


def _hresult(exc: BaseException) -> int:
    value = getattr(exc, "hresult", -1)
    return value + (1 << 32) if isinstance(value, int) and value < 0 and value != -1 else value


def list_readers() -> list[str]:
    """Names of the PC/SC readers ([] when there are none). Raises ``NoReader`` when the
    PC/SC service (pcscd) cannot be reached."""
    try:
        from smartcard.System import readers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise NoReader(f"pyscard is not installed ({exc}); pip install pyscard") from exc
    try:
        return [str(r) for r in readers()]
    except Exception as exc:  # pyscard raises several kinds here
        code = _hresult(exc)
        if code == _SCARD_E_NO_READERS_AVAILABLE:
            return []
        raise NoReader(f"cannot list smart card readers: is pcscd running? ({exc})") from exc


def _open(reader: str):
    from smartcard.pcsc.PCSCCardConnection import PCSCCardConnection

    try:
        return PCSCCardConnection(reader)
    except Exception as exc:
        raise NoReader(f"cannot reach PC/SC: is pcscd running? ({exc})", reader=reader) from exc


def _release(conn) -> None:
    try:
        conn.release()
    except Exception:  # the card may be gone already
        log.debug("release failed", exc_info=True)


def _try_connect(reader: str):
    """A connected PCSCCardConnection, or None when the reader has no (usable) card yet."""
    from smartcard.Exceptions import NoCardException, SmartcardException

    conn = _open(reader)
    try:
        conn.connect()
        return conn
    except NoCardException:
        _release(conn)
        return None
    except SmartcardException as exc:
        _release(conn)
        code = _hresult(exc)
        if code in _READER_GONE:
            raise NoReader(f"reader {reader!r} is not available ({exc})", reader=reader) from exc
        if code in _NO_SERVICE:
            raise NoReader(f"the PC/SC service stopped ({exc})", reader=reader) from exc
        # unresponsive / unpowered / sharing violation / protocol: the card may still be
        # settling (or another application holds it): retry until the timeout.
        log.debug("connect to %s failed: %s", reader, exc)
        return None


def _connect(readers: list[str], timeout: float, what: str = "card") -> tuple[object, str]:
    """Wait up to ``timeout`` seconds for a card in one of ``readers`` (first wins)."""
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        for name in readers:
            conn = _try_connect(name)
            if conn is not None:
                return conn, name
        if time.monotonic() >= deadline:
            where = readers[0] if len(readers) == 1 else f"any of {readers}"
            raise NoCard(f"no {what} in {where} after {timeout:g} s",
                         reader=readers[0] if len(readers) == 1 else None)
        time.sleep(0.1)


class _Channel:
    """One connected card: transmit with 61xx / 6Cxx handling and pyscard errors mapped."""

    def __init__(self, conn, reader: str, device: str = "card"):
        self.conn, self.reader, self.device = conn, reader, device

    def atr(self) -> str:
        try:
            return bytes(self.conn.getATR()).hex().upper()
        except Exception as exc:
            raise self._failure(exc, "reading the ATR") from exc

    def _card_gone(self, wait: float = 1.5) -> bool:
        """Is the card out of the reader (or swapped)? pcscd polls vpcd-like drivers every
        few hundred ms, so a transmit may fail before the removal is reported."""
        from smartcard.scard import SCardStatus

        deadline = time.monotonic() + wait
        while True:
            hcard = getattr(self.conn, "hcard", None)
            if hcard is None:
                return True
            hresult, *_status = SCardStatus(hcard)
            code = hresult + (1 << 32) if hresult < 0 else hresult
            if code in _CARD_GONE or code in _READER_GONE:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def _failure(self, exc: BaseException | None, doing: str) -> CardError:
        who = "SAM" if self.device == "sam" else "card"
        code = _hresult(exc) if exc is not None else -1
        if code in _NO_SERVICE:
            return NoReader(f"the PC/SC service stopped while {doing}", reader=self.reader)
        if code in _READER_GONE:
            return NoReader(f"reader {self.reader!r} went away while {doing}", reader=self.reader)
        if code in _CARD_GONE or self._card_gone():
            return CardRemoved(f"the {who} was removed from {self.reader!r} while {doing}",
                               reader=self.reader)
        detail = f": {exc}" if exc is not None else ": no status word in the answer"
        return CardError(f"communication with the {who} failed while {doing}{detail}",
                         code="pcsc", reader=self.reader)

    def _transmit(self, command: bytes, what: str) -> tuple[bytes, int]:
        from smartcard.Exceptions import SmartcardException

        try:
            data, sw1, sw2 = self.conn.transmit(list(command))
        except SmartcardException as exc:
            if "no valid response" in str(exc):  # fewer than 2 bytes came back
                raise self._failure(None, what) from exc
            raise self._failure(exc, what) from exc
        log.debug("%s %s → %s %02X%02X", self.device, command.hex(), bytes(data).hex(), sw1, sw2)
        return bytes(data), (sw1 << 8) | sw2

    def send(self, command: bytes, what: str) -> tuple[bytes, int]:
        """Transmit, resending on 6Cxx with the exact Le and fetching 61xx with GET
        RESPONSE. Returns all the data and the final status word."""
        collected = b""
        for _ in range(32):
            data, sw = self._transmit(command, what)
            sw1, sw2 = sw >> 8, sw & 0xFF
            if sw1 == 0x6C:
                command = apdu.parse_command(command).with_le(sw2).to_bytes()
                continue
            collected += data
            if sw1 == 0x61:
                command = apdu.get_response(sw2)
                continue
            return collected, sw
        raise CardError(f"{what}: the {self.device} keeps answering 61xx/6Cxx",
                        code="protocol", reader=self.reader)

    def check(self, command: bytes, what: str) -> bytes:
        data, sw = self.send(command, what)
        if sw != apdu.SW_OK:
            raise UnexpectedStatus(sw, what, reader=self.reader)
        return data


# --------------------------------------------------------------------------- records

Decoder = Callable[[bytes], object]


def _sex(value: bytes) -> str:
    """GB/T 2261.1 code: '1'/'2' as ASCII; a binary 01/02 is tolerated."""
    if len(value) == 1 and value[0] < 0x10:
        return str(value[0])
    return apdu.ascii_decode(value)


def _bcd_code(value: bytes) -> str:
    """A BCD code (ethnicity, region); an ASCII-digit field is tolerated."""
    raw = bytes(value)
    if raw and all(0x30 <= b <= 0x39 for b in raw) and len(raw) >= 2:
        return raw.decode("ascii")
    return apdu.bcd_decode(raw)


def _hex(value: bytes) -> str:
    return bytes(value).hex().upper()


# (tag, key, decoder, required)
Fields = tuple[tuple[int, str, Decoder, bool], ...]

SSC_EF05: Fields = (
    (0x01, "card_id", _hex, True),
    (0x02, "card_kind", apdu.ascii_decode, False),
    (0x03, "spec_version", apdu.ascii_decode, False),
    (0x04, "issuer", apdu.text_or_hex, False),
    (0x05, "issue_date", apdu.bcd_date, False),
    (0x06, "expiry_date", apdu.bcd_date, False),
    (0x07, "card_no", apdu.ascii_decode, True),
)
SSC_EF06: Fields = (
    (0x08, "citizen_id", apdu.ascii_decode, True),
    (0x09, "name", apdu.gbk_decode, True),
    (0x0A, "sex", _sex, False),
    (0x0B, "ethnicity", _bcd_code, False),
    (0x0C, "birthplace", _bcd_code, False),
    (0x0D, "birth_date", apdu.bcd_date, False),
)
HEALTH_EF05: Fields = (
    (0x01, "card_kind", apdu.ascii_decode, False),
    (0x02, "spec_version", apdu.ascii_decode, False),
    (0x03, "issuer", apdu.gbk_decode, False),
    (0x04, "issuer_code", apdu.bcd_decode, False),
    (0x06, "issue_date", apdu.bcd_date, False),
    (0x08, "card_no", apdu.ascii_decode, True),
    (0x0A, "chip_serial", _hex, False),
    (0x39, "city_code", _bcd_code, False),
)
HEALTH_EF06: Fields = (
    (0x0B, "name", apdu.gbk_decode, True),
    (0x0C, "sex", _sex, False),
    (0x0D, "ethnicity", _bcd_code, False),
    (0x0E, "birth_date", apdu.bcd_date, False),
    (0x0F, "citizen_id", apdu.ascii_decode, True),
)
HEALTH_EF08: Fields = (
    (0x07, "expiry_date", apdu.bcd_date, False),
    (0x08, "phone", apdu.ascii_decode, False),
)

_MISSING = {0x6A82, 0x6A83, 0x6A88}


def _select_ef(ch: _Channel, fid: int) -> None:
    """SELECT an EF of the current DF by FID: P1=02, then P1=00 for cards that want it."""
    what = f"SELECT EF{fid:04X}"
    _, sw = ch.send(apdu.select_fid(fid, 0x02), what)
    if sw != apdu.SW_OK:
        _, sw = ch.send(apdu.select_fid(fid, 0x00), what)
    if sw != apdu.SW_OK:
        raise UnexpectedStatus(sw, what, reader=ch.reader)


def _read_ef(ch: _Channel, fid: int, fields: Fields, *, denied: Callable[[int], CardError]
             | None = None) -> dict:
    """Select an EF and read each tag of ``fields`` (Le=00). Optional fields the card lacks
    (6A83) are left out; a field that does not decode is a CardError 'bad-data'."""
    _select_ef(ch, fid)
    out: dict = {}
    for tag, key, decode, required in fields:
        what = f"READ RECORD EF{fid:04X} tag {tag:02X} ({key})"
        data, sw = ch.send(apdu.read_record_by_tag(tag), what)
        if sw in _MISSING and not required:
            continue
        if sw == 0x6982 and denied is not None:
            raise denied(fid)
        if sw != apdu.SW_OK:
            raise UnexpectedStatus(sw, what, reader=ch.reader)
        value = apdu.record_value(data, tag)
        try:
            decoded = decode(value)
        except (ValueError, UnicodeError) as exc:
            raise CardError(f"EF{fid:04X} tag {tag:02X} ({key}) is not valid: "
                            f"{value.hex().upper()} ({exc})", code="bad-data",
                            reader=ch.reader) from exc
        if decoded in (None, "") and required:
            raise CardError(f"EF{fid:04X} tag {tag:02X} ({key}) is empty", code="bad-data",
                            reader=ch.reader)
        if decoded not in (None, ""):
            out[key] = decoded
    return out


def _verify(ch: _Channel, pin: str) -> None:
    who = "SAM PIN" if ch.device == "sam" else "PIN"
    try:
        command = apdu.verify_pin(pin)
    except ValueError as exc:
        raise CardError(f"the {who} must be digits", code="bad-pin") from exc
    _, sw = ch.send(command, f"VERIFY {who}")
    if sw == apdu.SW_OK:
        return
    if sw & 0xFFF0 == 0x63C0:
        raise WrongPin(sw & 0x0F, device=ch.device, reader=ch.reader)
    if sw in (0x6983, 0x6984):
        raise CardBlocked(f"the {who} is blocked ({apdu.sw_text(sw)})", reader=ch.reader)
    raise UnexpectedStatus(sw, f"VERIFY {who}", reader=ch.reader)


def _citizen_id(value: str, ch: _Channel) -> str:
    value = value.strip().upper()
    problem = citizen_id_problem(value)
    if problem is not None:
        raise CardError(f"the citizen ID number on the card ({value}) is invalid: {problem}",
                        code="invalid-id", reader=ch.reader)
    return value


# --------------------------------------------------------------------------- card types


def _detect(ch: _Channel) -> str:
    _, sw_ssc = ch.send(apdu.select_aid(apdu.SSC_AID), "SELECT SSC application")
    if sw_ssc == apdu.SW_OK:
        return "ssc"
    if sw_ssc == 0x6283:
        raise CardBlocked("the social security application is blocked (6283)", reader=ch.reader)
    _, sw_hc = ch.send(apdu.select_fid(apdu.HEALTH_DDF1, 0x00), "SELECT DDF1")
    if sw_hc == apdu.SW_OK:
        return "health"
    if sw_hc == 0x6283:
        raise CardBlocked("the health card directory DDF1 is blocked (6283)", reader=ch.reader)
    raise UnknownCard(
        "neither a social security card (SELECT AID: " + apdu.sw_text(sw_ssc)
        + ") nor a resident health card (SELECT DDF1: " + apdu.sw_text(sw_hc) + ")",
        reader=ch.reader)


def _read_ssc(ch: _Channel, pin: str | None) -> tuple[list[CardIdentifier], dict, dict]:
    if pin is not None:
        _verify(ch, pin)

    def denied(fid: int) -> CardError:
        need = "a correct PIN" if pin is not None else "the card PIN (read_card(pin=...))"
        return CardError(f"EF{fid:04X} needs {need}", code="pin-required", reader=ch.reader)

    card = _read_ef(ch, 0xEF05, SSC_EF05, denied=denied)
    holder = _read_ef(ch, 0xEF06, SSC_EF06, denied=denied)
    citizen_id = _citizen_id(holder.pop("citizen_id"), ch)
    identifiers = [
        CardIdentifier(type=CardType.CITIZEN_ID, value=citizen_id),
        CardIdentifier(type=CardType.SSC_CARD_NO, value=card["card_no"]),
        CardIdentifier(type=CardType.SSC_CARD_ID, value=card["card_id"]),
    ]
    return identifiers, holder, card


def _authenticate(ch: _Channel, sam: _Channel, sam_pin: str | None, card_no: str,
                  city_code: str) -> None:
    """SAM authentication for DDF1 (key 31): see the module docstring."""
    if sam_pin is not None:
        _verify(sam, sam_pin)
    challenge = ch.check(apdu.build(0x00, 0x84, 0x00, 0x00, le=8), "GET CHALLENGE")
    if len(challenge) != 8:
        raise CardError(f"GET CHALLENGE returned {len(challenge)} bytes, not 8",
                        code="bad-data", reader=ch.reader)
    factors = apdu.health_key_factors(card_no, city_code)
    sam.check(apdu.build(0x80, 0xDE, 0x47, HEALTH_READ_KEY, factors + challenge),
              "SAM DERIVE KEY (80 DE)")
    cryptogram = sam.check(apdu.build(0x80, 0xFA, 0x00, 0x00, le=8), "SAM COMPUTE (80 FA)")
    _, sw = ch.send(apdu.build(0x00, 0x82, 0x00, HEALTH_READ_KEY, cryptogram),
                    "EXTERNAL AUTHENTICATE")
    if sw == 0x6300 or sw >> 8 == 0x63:
        raise CardError("the card refused the SAM's cryptogram (EXTERNAL AUTHENTICATE "
                        f"{apdu.sw_text(sw)}): SAM and card keys do not match",
                        code="auth-failed", reader=ch.reader)
    if sw != apdu.SW_OK:
        raise UnexpectedStatus(sw, "EXTERNAL AUTHENTICATE", reader=ch.reader)


def _read_health(ch: _Channel, sam_reader: str | None, sam_pin: str | None, timeout: float,
                 pin: str | None) -> tuple[list[CardIdentifier], dict, dict]:
    if pin is not None:
        _verify(ch, pin)
    card = _read_ef(ch, 0xEF05, HEALTH_EF05)
    identifiers = [CardIdentifier(type=CardType.HEALTH_CARD, value=card["card_no"])]
    if sam_reader is None:
        card["ef06"] = "needs SAM"
        return identifiers, {}, card
    if not card.get("city_code"):
        raise CardError("EF05 has no city code (tag 39), needed for SAM authentication",
                        code="bad-data", reader=ch.reader)
    sam_conn, _ = _connect([sam_reader], timeout, what="SAM")
    try:
        _authenticate(ch, _Channel(sam_conn, sam_reader, "sam"), sam_pin, card["card_no"],
                      card["city_code"])
    finally:
        _release(sam_conn)
    holder = _read_ef(ch, 0xEF06, HEALTH_EF06)
    extra = _read_optional_ef(ch, 0xEF08, HEALTH_EF08)
    if "expiry_date" in extra:
        card["expiry_date"] = extra.pop("expiry_date")
    holder.update(extra)
    citizen_id = _citizen_id(holder.pop("citizen_id"), ch)
    identifiers.append(CardIdentifier(type=CardType.CITIZEN_ID, value=citizen_id))
    card["ef06"] = "read"
    card["sam_reader"] = sam_reader
    return identifiers, holder, card


def _read_optional_ef(ch: _Channel, fid: int, fields: Fields) -> dict:
    try:
        return _read_ef(ch, fid, fields)
    except UnexpectedStatus as exc:
        if exc.sw in _MISSING or exc.sw == 0x6982:
            log.info("EF%04X not read: %s", fid, exc)
            return {}
        raise


# --------------------------------------------------------------------------- entry point


def read_card(reader: str | None = None, *, sam_reader: str | None = None,
              timeout: float = 5.0, pin: str | None = None,
              sam_pin: str | None = DEFAULT_SAM_PIN) -> CardData:
    """Read the card in ``reader`` (default: the first reader other than ``sam_reader``
    that has a card), waiting up to ``timeout`` seconds for one.

    ``pin``: VERIFY the card PIN first (needed by SSCs that protect EF06).
    ``sam_reader`` / ``sam_pin``: authenticate a health card with the SAM in that reader
    to read EF06 (holder) and EF08; ``sam_pin=None`` skips the SAM's VERIFY.

    Raises a ``CardError``: NoReader, NoCard, CardRemoved, UnknownCard, WrongPin,
    CardBlocked, UnexpectedStatus, or code invalid-id / pin-required / auth-failed /
    bad-data / pcsc.
    """
    names = list_readers()
    if not names:
        raise NoReader("no smart card reader: is one attached and pcscd running?")
    for wanted, role in ((reader, "reader"), (sam_reader, "SAM reader")):
        if wanted is not None and wanted not in names:
            raise NoReader(f"{role} {wanted!r} not found; readers: {names}", reader=wanted)
    if reader is not None and reader == sam_reader:
        raise NoReader("the card and the SAM need two different readers", reader=reader)
    candidates = [reader] if reader is not None else [n for n in names if n != sam_reader]
    if not candidates:
        raise NoReader(f"no reader left for the card besides the SAM reader {sam_reader!r}")

    conn, name = _connect(candidates, timeout)
    try:
        ch = _Channel(conn, name)
        atr = ch.atr()
        card_type = _detect(ch)
        if card_type == "ssc":
            identifiers, holder, card = _read_ssc(ch, pin)
        else:
            identifiers, holder, card = _read_health(ch, sam_reader, sam_pin, timeout, pin)
    finally:
        _release(conn)
    card.update(reader=name, atr=atr)
    return CardData(card_type=card_type, identifiers=identifiers, holder=holder, card=card)


def wait_absent(reader: str, timeout: float = 5.0) -> bool:
    """True once ``reader`` has no card (within ``timeout`` s) — e.g. between two reads."""
    deadline = time.monotonic() + timeout
    while True:
        conn = _try_connect(reader)
        if conn is None:
            return True
        _release(conn)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


__all__: Iterable[str] = (
    "DEFAULT_SAM_PIN",
    "CardData",
    "list_readers",
    "read_card",
    "wait_absent",
)
