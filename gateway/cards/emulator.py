"""Virtual cards that plug into the real PC/SC stack through vsmartcard's ``vpcd`` driver.

``vpcd`` (Debian ``vsmartcard-vpcd``) registers readers ``Virtual PCD 00 00`` and
``Virtual PCD 00 01`` with pcscd and waits for a card on TCP ``127.0.0.1:35963`` / ``35964``.
A virtual card is a TCP client: every message is a 2-byte big-endian length and a payload;
a 1-byte payload is a control code (``00`` power off, ``01`` power on, ``02`` reset, ``04``
send the ATR), anything longer is a command APDU to answer with a response APDU.

Cards here:

- ``SocialSecurityCard`` — SSC (社会保障卡): application selected by the SSSE AID, EF05
  (card data) and EF06 (holder) read by tag, optionally a PIN before EF06.
- ``HealthCard`` — resident health card (居民健康卡): DDF1 with EF05 free to read, EF06 and
  EF08 only after EXTERNAL AUTHENTICATE with a cryptogram computed by a SAM.
- ``SamCard`` — the SAM (PSAM) that computes that cryptogram.

The file system of each card is data (``layout`` tables → DF/EF/records), filled from a
``Holder``. Behaviours that a reader must cope with are switches: ``style`` ("6C": a wrong
Le gets ``6Cxx``; "61": data comes through ``61xx`` + GET RESPONSE; "direct": Le=00 gets
the data), ``remove_after`` (pull the card out after N APDUs), PIN tries.

SAM scheme. The national resident-health-card algorithm (SM4 key diversification with
keys held by the issuer) is not public. These cards use a documented stand-in built from
the standard library only:

    master      = DEMO_MASTER_KEYS[key_ref]              key_ref 0x31..0x34 (DDF1, DF01..DF03)
    factors     = apdu.health_key_factors(card_no, city)  16 bytes, sent by the reader
    card_key    = HMAC-SHA256(master, factors)[:16]       the issuer puts it on the card
    cryptogram  = HMAC-SHA256(card_key, challenge)[:8]    challenge from GET CHALLENGE

The SAM holds the masters and computes ``card_key`` and the cryptogram (``80 DE`` then
``80 FA``); the user card holds only its ``card_key`` and checks the cryptogram in
EXTERNAL AUTHENTICATE. Demo keys only: never use them for anything real.

Run one: ``python -m gateway.cards.emulator --type ssc|health|sam [--data FILE] [--port P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

from gateway.cards import apdu
from gateway.cards.apdu import Command

log = logging.getLogger(__name__)

VPCD_PORT = 35963  # Virtual PCD 00 00; the second reader (00 01) listens on 35964
SAM_PORT = 35964


# --------------------------------------------------------------------------- holder data


@dataclass
class Holder:
    """The card holder's data (and the card's own numbers), with Chinese sample defaults."""

    name: str = "张伟"
    sex: str = "1"  # GB/T 2261.1: 1 male, 2 female
    ethnicity: str = "01"  # GB/T 3304: 01 汉族
    birth_date: str = "19850615"
    citizen_id: str = "110101198506150019"
    birthplace: str = "110101"  # GB/T 2260
    ssc_card_no: str = "X00000019"
    ssc_card_id: str = "110100D156000005000000000000A1B2"  # 32 hex
    ssc_card_type: str = "3"
    ssc_init_org: str = "110100000000"
    health_card_no: str = "110101198506150019"
    health_card_type: str = "1"
    issuer_code: str = "11010000000"
    issuer_name: str = "北京市卫生健康委员会"
    security_code: str = "123"
    chip_serial: str = "00112233445566778899"  # 10 bytes hex
    issue_date: str = "20200101"
    expiry_date: str = "20300101"
    spec_version: str = "3.00"
    city_code: str = "110100"
    phone: str = "13812345678"

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Holder:
        """A holder from a JSON object with the same keys (missing keys keep the defaults)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"{path}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown holder keys {unknown}; known: {sorted(known)}")
        return cls(**{k: str(v) for k, v in data.items()})


# --------------------------------------------------------------------------- file system


@dataclass
class EF:
    """An elementary file of TLV records, in record order, read by tag or record number.
    ``access``: "free", "pin" (after VERIFY) or "auth" (after EXTERNAL AUTHENTICATE)."""

    records: dict[int, bytes]
    sfi: int | None = None
    access: str = "free"


@dataclass
class DF:
    files: dict[int, EF]
    aid: bytes | None = None
    fid: int | None = None
    key_ref: int | None = None  # the EXTERNAL AUTHENTICATE key of this directory


# A layout row: (tag, source, encoding, length). ``source`` names a Holder field, or is
# bytes (a constant). Encodings: ascii, gbk, bcd, hex (binary given as hex), raw.
Layout = tuple[tuple[int, "str | bytes", str, int], ...]

SSC_EF05: Layout = (
    (0x01, "ssc_card_id", "hex", 16),  # 卡识别码
    (0x02, "ssc_card_type", "ascii", 1),  # 卡的类别
    (0x03, "spec_version", "ascii", 4),  # 规范版本
    (0x04, "ssc_init_org", "ascii", 12),  # 初始化机构编号
    (0x05, "issue_date", "bcd", 4),  # 发卡日期
    (0x06, "expiry_date", "bcd", 4),  # 卡有效期
    (0x07, "ssc_card_no", "ascii", 9),  # 卡号
)
SSC_EF06: Layout = (
    (0x08, "citizen_id", "ascii", 18),  # 社会保障号码
    (0x09, "name", "gbk", 30),  # 姓名
    (0x0A, "sex", "ascii", 1),  # 性别
    (0x0B, "ethnicity", "bcd", 1),  # 民族
    (0x0C, "birthplace", "bcd", 3),  # 出生地
    (0x0D, "birth_date", "bcd", 4),  # 出生日期
)
HEALTH_EF05: Layout = (
    (0x01, "health_card_type", "ascii", 1),  # 卡类别
    (0x02, "spec_version", "ascii", 4),  # 规范版本
    (0x03, "issuer_name", "gbk", 30),  # 发卡机构名称
    (0x04, "issuer_code", "bcd", 11),  # 发卡机构代码
    (0x05, bytes(range(180)), "raw", 180),  # 发卡机构证书 (dummy)
    (0x06, "issue_date", "bcd", 4),  # 发卡时间
    (0x08, "health_card_no", "ascii", 18),  # 卡号
    (0x09, "security_code", "ascii", 3),  # 安全码
    (0x0A, "chip_serial", "hex", 10),  # 芯片序列号
    (0x39, "city_code", "bcd", 3),  # 应用城市代码
)
HEALTH_EF06: Layout = (
    (0x0B, "name", "gbk", 30),
    (0x0C, "sex", "ascii", 1),
    (0x0D, "ethnicity", "bcd", 1),
    (0x0E, "birth_date", "bcd", 4),
    (0x0F, "citizen_id", "ascii", 18),
)
# EF08: 07 卡有效期; the phone tag (08, 本人电话) is this emulator's assumption.
HEALTH_EF08: Layout = (
    (0x07, "expiry_date", "bcd", 4),
    (0x08, "phone", "ascii", 20),
)

_ENCODERS: dict[str, Callable[[str | bytes, int], bytes]] = {
    "ascii": lambda v, n: apdu.ascii_encode(v, n),
    "gbk": lambda v, n: apdu.gbk_encode(v, n),
    "bcd": lambda v, n: apdu.bcd_encode(v, n),
    "hex": lambda v, n: bytes.fromhex(v).rjust(n, b"\x00")[:n],
    "raw": lambda v, n: bytes(v)[:n],
}


def build_records(holder: Holder, layout: Layout) -> dict[int, bytes]:
    """tag → value bytes of one EF, from a layout table."""
    out = {}
    for tag, source, encoding, length in layout:
        value = getattr(holder, source) if isinstance(source, str) else source
        out[tag] = _ENCODERS[encoding](value, length)
    return out


# --------------------------------------------------------------------------- demo keys

DEMO_MASTER_KEYS: dict[int, bytes] = {
    ref: hashlib.sha256(f"yikatong demo read key {ref:02X}".encode()).digest()[:16]
    for ref in (0x31, 0x32, 0x33, 0x34)
}


def derive_card_key(master: bytes, factors: bytes) -> bytes:
    return hmac.new(master, factors, hashlib.sha256).digest()[:16]


def cryptogram(card_key: bytes, challenge: bytes) -> bytes:
    return hmac.new(card_key, challenge, hashlib.sha256).digest()[:8]


# --------------------------------------------------------------------------- base card


class CardPulled(Exception):
    """Raised by ``respond`` when the card is to be pulled out before answering."""


class VirtualCard:
    """An ATR, a file system (list of DFs), a PIN and APDU dispatch.

    style: "6C" — a command whose Le is not the exact length gets 6Cxx (Le=00 too);
           "61" — every answer with data is 61xx, fetched with GET RESPONSE (00 C0);
           "direct" — Le=00 or a larger Le gets the data at once.
    remove_after: answer this many APDUs, then behave as if pulled out (run_vpcd closes
           the connection without answering and does not reconnect).
    """

    kind = "card"
    atr = bytes.fromhex("3B021450")

    def __init__(self, *, style: str = "6C", pin: str | None = None, pin_tries: int = 3,
                 remove_after: int | None = None):
        if style not in ("6C", "61", "direct"):
            raise ValueError(f"unknown style {style!r}")
        self.style = style
        self.pin = pin
        self.pin_max_tries = pin_tries
        self.pin_tries = pin_tries
        self.remove_after = remove_after
        self.dfs: list[DF] = []
        self.apdu_log: list[tuple[bytes, bytes]] = []
        self.handlers: dict[tuple[int, int], Callable[[Command], tuple[bytes, int]]] = {
            (0x00, 0xA4): self.select,
            (0x00, 0xB2): self.read_record,
            (0x00, 0xC0): self.get_response,
            (0x00, 0x20): self.verify,
        }
        self.reset()

    # -- state
    def reset(self) -> None:
        """Power-on / reset: volatile state back to the start (PIN tries are persistent)."""
        self.current_df: DF | None = None
        self.current_ef: EF | None = None
        self.pin_verified = False
        self.authenticated: set[int] = set()
        self.pending: bytes | None = None  # data waiting for GET RESPONSE

    def pulled(self) -> bool:
        return self.remove_after is not None and len(self.apdu_log) >= self.remove_after

    # -- dispatch
    def respond(self, raw: bytes) -> bytes:
        if self.pulled():
            raise CardPulled
        try:
            cmd = apdu.parse_command(raw)
        except ValueError:
            response = apdu.respond(b"", 0x6700)
        else:
            response = self._dispatch(cmd)
        self.apdu_log.append((bytes(raw), response))
        return response

    def _dispatch(self, cmd: Command) -> bytes:
        if cmd.ins != 0xC0:
            self.pending = None
        handler = self.handlers.get((cmd.cla, cmd.ins))
        if handler is None:
            known_cla = any(cla == cmd.cla for cla, _ in self.handlers)
            return apdu.respond(b"", 0x6D00 if known_cla else 0x6E00)
        data, sw = handler(cmd)
        if sw != apdu.SW_OK or not data or cmd.ins == 0xC0:
            return apdu.respond(data if sw == apdu.SW_OK or sw >> 8 == 0x61 else b"", sw)
        return self._deliver(cmd, data)

    def _deliver(self, cmd: Command, data: bytes) -> bytes:
        """Apply the card's Le behaviour to a successful answer carrying data."""
        if self.style == "61":
            self.pending = data
            return apdu.respond(b"", 0x6100 | (len(data) & 0xFF))
        if cmd.le is None:  # case 1/3: the data (e.g. an FCI) is not sent
            return apdu.respond(b"", apdu.SW_OK)
        wanted = cmd.le or 256
        if wanted == len(data) or (self.style == "direct" and (cmd.le == 0 or wanted > len(data))):
            return apdu.respond(data, apdu.SW_OK)
        return apdu.respond(b"", 0x6C00 | (len(data) & 0xFF))

    # -- commands
    def select(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.p1 == 0x04:  # by DF name
            for df in self.dfs:
                if df.aid is not None and df.aid == cmd.data:
                    return self._enter(df)
            return b"", 0x6A82
        if cmd.p1 in (0x00, 0x01, 0x02) and len(cmd.data) == 2:
            fid = int.from_bytes(cmd.data, "big")
            if cmd.p1 in (0x00, 0x02) and self.current_df and fid in self.current_df.files:
                self.current_ef = self.current_df.files[fid]
                return b"", apdu.SW_OK
            if cmd.p1 in (0x00, 0x01):
                for df in self.dfs:
                    if df.fid == fid:
                        return self._enter(df)
            return b"", 0x6A82
        return b"", 0x6A86

    def _enter(self, df: DF) -> tuple[bytes, int]:
        self.current_df, self.current_ef = df, None
        self.authenticated.clear()
        name = df.aid if df.aid is not None else df.fid.to_bytes(2, "big")
        fci = b"\x6F" + bytes([len(name) + 2]) + b"\x84" + bytes([len(name)]) + name
        return fci, apdu.SW_OK

    def read_record(self, cmd: Command) -> tuple[bytes, int]:
        sfi, mode = cmd.p2 >> 3, cmd.p2 & 0x07
        if sfi:
            ef = next((f for df in [self.current_df] if df for f in df.files.values()
                       if f.sfi == sfi), None)
            if ef is None:
                return b"", 0x6A82
            self.current_ef = ef
        ef = self.current_ef
        if ef is None:
            return b"", 0x6986
        if mode not in (0x00, 0x04):
            return b"", 0x6A86
        if ef.access == "pin" and not self.pin_verified:
            return b"", 0x6982
        if ef.access == "auth" and (self.current_df is None
                                    or self.current_df.key_ref not in self.authenticated):
            return b"", 0x6982
        if mode == 0x00:  # by record identifier (tag)
            value = ef.records.get(cmd.p1)
            if value is None:
                return b"", 0x6A83
            return apdu.tlv(cmd.p1, value), apdu.SW_OK
        items = list(ef.records.items())  # by record number
        if not 1 <= cmd.p1 <= len(items):
            return b"", 0x6A83
        tag, value = items[cmd.p1 - 1]
        return apdu.tlv(tag, value), apdu.SW_OK

    def get_response(self, cmd: Command) -> tuple[bytes, int]:
        data, self.pending = self.pending, None
        if data is None:
            return b"", 0x6985
        wanted = cmd.le or 256
        if wanted >= len(data):
            return data, apdu.SW_OK
        self.pending = data[wanted:]
        return data[:wanted], 0x6100 | (len(self.pending) & 0xFF)

    def verify(self, cmd: Command) -> tuple[bytes, int]:
        if self.pin is None:
            return b"", 0x6A88
        if self.pin_tries == 0:
            return b"", 0x6983
        if not cmd.data:  # how many tries are left
            return b"", apdu.SW_OK if self.pin_verified else 0x63C0 | self.pin_tries
        if cmd.data == apdu.pin_block(self.pin):
            self.pin_tries = self.pin_max_tries
            self.pin_verified = True
            return b"", apdu.SW_OK
        self.pin_tries -= 1
        self.pin_verified = False
        return b"", 0x63C0 | self.pin_tries


# --------------------------------------------------------------------------- the cards


def _with_tck(atr: bytes) -> bytes:
    """Append the ATR check byte (XOR of T0 .. the last historical byte)."""
    tck = 0
    for byte in atr[1:]:
        tck ^= byte
    return atr + bytes([tck])


class SocialSecurityCard(VirtualCard):
    """社会保障卡: the SSSE application with EF05 (SFI 5) and EF06 (SFI 6).
    ``pin_for_ef06``: EF06 needs VERIFY first (off by default, as public readers show)."""

    kind = "ssc"
    # T=0 contact card; historical bytes "SSC-EMU 3.00".
    atr = bytes.fromhex("3B6C0000") + b"SSC-EMU 3.00"

    def __init__(self, holder: Holder | None = None, *, pin: str | None = "123456",
                 pin_for_ef06: bool = False, **kwargs):
        super().__init__(pin=pin, **kwargs)
        self.holder = holder or Holder()
        self.dfs = [DF(aid=apdu.SSC_AID, files={
            0xEF05: EF(build_records(self.holder, SSC_EF05), sfi=5),
            0xEF06: EF(build_records(self.holder, SSC_EF06), sfi=6,
                       access="pin" if pin_for_ef06 else "free"),
        })]


class HealthCard(VirtualCard):
    """居民健康卡 user card: DDF1 with EF05 (free), EF06 and EF08 (after EXTERNAL
    AUTHENTICATE with key 31), GET CHALLENGE (00 84 00 00 08)."""

    kind = "health"
    # PC/SC contactless ATR (3B 8n 80 01 + historical bytes + TCK), historical "HC-EMU01".
    atr = _with_tck(bytes.fromhex("3B888001") + b"HC-EMU01")

    def __init__(self, holder: Holder | None = None, *, pin: str | None = "123456",
                 master_keys: dict[int, bytes] | None = None, **kwargs):
        super().__init__(pin=pin, **kwargs)
        self.holder = h = holder or Holder()
        masters = master_keys or DEMO_MASTER_KEYS
        factors = apdu.health_key_factors(h.health_card_no, h.city_code)
        self.card_keys = {ref: derive_card_key(key, factors) for ref, key in masters.items()}
        self.dfs = [DF(fid=apdu.HEALTH_DDF1, key_ref=0x31, files={
            0xEF05: EF(build_records(h, HEALTH_EF05), sfi=5),
            0xEF06: EF(build_records(h, HEALTH_EF06), sfi=6, access="auth"),
            0xEF08: EF(build_records(h, HEALTH_EF08), sfi=8, access="auth"),
        })]
        self.handlers[(0x00, 0x84)] = self.get_challenge
        self.handlers[(0x00, 0x82)] = self.external_authenticate

    def reset(self) -> None:
        super().reset()
        self.challenge: bytes | None = None

    def get_challenge(self, cmd: Command) -> tuple[bytes, int]:
        if cmd.le not in (0x04, 0x08):
            return b"", 0x6700
        self.challenge = os.urandom(cmd.le)
        return self.challenge, apdu.SW_OK

    def external_authenticate(self, cmd: Command) -> tuple[bytes, int]:
        """``00 82 00 <key ref 31..34, or 00 for the current directory's> 08 <cryptogram>``."""
        challenge, self.challenge = self.challenge, None  # single use
        ref = cmd.p2 or (self.current_df.key_ref if self.current_df else None)
        if ref not in self.card_keys or self.current_df is None:
            return b"", 0x6A88
        if challenge is None:
            return b"", 0x6985
        if len(cmd.data) != 8:
            return b"", 0x6700
        if not hmac.compare_digest(cmd.data, cryptogram(self.card_keys[ref], challenge)):
            return b"", 0x6300
        self.authenticated.add(ref)
        return b"", apdu.SW_OK


class SamCard(VirtualCard):
    """The PSAM: VERIFY (SAM PIN, default 12345678), ``80 DE 47 <31..34> 18 <16 bytes
    factors + 8 bytes challenge>`` to derive the card key, ``80 FA 00 00 08`` for the
    cryptogram. Answers 6A82 to any SELECT (it is no user card)."""

    kind = "sam"
    atr = bytes.fromhex("3B6D0000") + b"SAM-EMU-31.34"

    def __init__(self, *, pin: str | None = "12345678", master_keys: dict[int, bytes] | None = None,
                 **kwargs):
        super().__init__(pin=pin, **kwargs)
        self.master_keys = master_keys or DEMO_MASTER_KEYS
        self.handlers[(0x80, 0xDE)] = self.derive
        self.handlers[(0x80, 0xFA)] = self.compute

    def reset(self) -> None:
        super().reset()
        self.session: tuple[bytes, bytes] | None = None

    def derive(self, cmd: Command) -> tuple[bytes, int]:
        if self.pin is not None and not self.pin_verified:
            return b"", 0x6982
        if cmd.p1 != 0x47 or cmd.p2 not in self.master_keys:
            return b"", 0x6A86
        if len(cmd.data) != 0x18:
            return b"", 0x6700
        factors, challenge = cmd.data[:16], cmd.data[16:]
        self.session = (derive_card_key(self.master_keys[cmd.p2], factors), challenge)
        return b"", apdu.SW_OK

    def compute(self, cmd: Command) -> tuple[bytes, int]:
        if self.session is None:
            return b"", 0x6985
        key, challenge = self.session
        return cryptogram(key, challenge), apdu.SW_OK


class SilentCard(VirtualCard):
    """A card of no known kind: 6A82 to every SELECT."""

    kind = "unknown"
    atr = bytes.fromhex("3B021450")


CARD_TYPES: dict[str, type[VirtualCard]] = {
    "ssc": SocialSecurityCard, "health": HealthCard, "sam": SamCard, "unknown": SilentCard,
}


# --------------------------------------------------------------------------- vpcd client


def _quick_ack(writer: asyncio.StreamWriter) -> None:
    """vpcd writes the length and the APDU in two sends; with Nagle on its side and delayed
    ACKs on ours every APDU would wait ~40 ms. Ask Linux to ACK at once (TCP_QUICKACK is
    not sticky, so this is repeated after every read)."""
    sock = writer.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


async def _serve(card: VirtualCard, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, stop: asyncio.Event) -> str:
    """Answer vpcd until it hangs up ("closed"), stop is set ("stopped") or the card is
    pulled ("pulled")."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        while True:
            read = asyncio.ensure_future(reader.readexactly(2))
            done, _ = await asyncio.wait({read, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if read not in done:
                read.cancel()
                return "stopped"
            try:
                size = int.from_bytes(read.result(), "big")
                _quick_ack(writer)
                payload = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return "closed"
            _quick_ack(writer)
            if size == 1:
                code = payload[0]
                if code == 0x04:
                    answer = card.atr
                else:
                    if code in (0x00, 0x01, 0x02):  # off / on / reset
                        card.reset()
                    continue
            else:
                try:
                    answer = card.respond(payload)
                except CardPulled:
                    return "pulled"
            writer.write(len(answer).to_bytes(2, "big") + answer)
            await writer.drain()
    finally:
        stop_task.cancel()


async def run_vpcd(card: VirtualCard, host: str = "127.0.0.1", port: int = VPCD_PORT, *,
                   stop: asyncio.Event | None = None, reconnect: bool = True,
                   connected: Callable[[], None] | None = None) -> str:
    """Connect ``card`` to vpcd and answer it until ``stop`` is set. With ``reconnect``, a
    refused or dropped connection is retried every 0.2 s (vpcd listens only while pcscd
    runs); without it, the first failure ends the loop (a refused connection raises
    OSError). A pulled card (``remove_after``) ends the loop. ``connected`` is called each
    time the card is in. Returns why it ended: "stopped", "closed" or "pulled"."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            if not reconnect:
                raise
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
            continue
        log.info("virtual %s card inserted at %s:%d", card.kind, host, port)
        card.reset()
        if connected:
            connected()
        try:
            why = await _serve(card, reader, writer, stop)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        log.info("virtual %s card out (%s)", card.kind, why)
        if why != "closed" or not reconnect:
            return why
    return "stopped"


class BackgroundCard:
    """Run a virtual card in a thread (for tests and demos)::

        with BackgroundCard(SocialSecurityCard(), port=35963) as bg:
            bg.wait_connected()
            ...
    """

    def __init__(self, card: VirtualCard, port: int = VPCD_PORT, host: str = "127.0.0.1", *,
                 reconnect: bool = True):
        self.card, self.port, self.host, self.reconnect = card, port, host, reconnect
        self._connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vcard-{port}", daemon=True)
        self.result: str | Exception | None = None

    def _run(self) -> None:
        async def main() -> str:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            return await run_vpcd(self.card, self.host, self.port, stop=self._stop,
                                  reconnect=self.reconnect, connected=self._connected.set)
        try:
            self.result = asyncio.run(main())
        except Exception as exc:  # reported through .result
            log.warning("virtual %s card on port %d stopped", self.card.kind, self.port,
                        exc_info=True)
            self.result = exc
            self._ready.set()

    def start(self) -> BackgroundCard:
        self._thread.start()
        self._ready.wait(5)
        return self

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self._connected.wait(timeout)

    def join(self, timeout: float = 5.0) -> str | Exception | None:
        """Wait for the card loop to end by itself (e.g. a pulled card); its result."""
        self._thread.join(timeout)
        return self.result

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already closed
                pass
        self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def make_card(kind: str, holder: Holder | None = None, **options) -> VirtualCard:
    cls = CARD_TYPES[kind]
    if cls in (SocialSecurityCard, HealthCard):
        return cls(holder, **options)
    return cls(**options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.cards.emulator",
        description="Run a virtual card against vsmartcard's vpcd (until killed).")
    parser.add_argument("--type", choices=sorted(CARD_TYPES), default="ssc")
    parser.add_argument("--data", help="JSON file with the holder's data (Holder keys)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="vpcd port (default 35963; 35964 for a SAM)")
    parser.add_argument("--style", choices=("6C", "61", "direct"), default="6C",
                        help="how the card answers Le=00 (default 6C: 6Cxx then the data)")
    parser.add_argument("--pin", help="card PIN (default 123456; SAM 12345678)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    holder = Holder.from_file(args.data) if args.data else Holder()
    options: dict = {"style": args.style}
    if args.pin:
        options["pin"] = args.pin
    card = make_card(args.type, holder, **options)
    port = args.port or (SAM_PORT if args.type == "sam" else VPCD_PORT)
    print(f"virtual {args.type} card → vpcd {args.host}:{port} (Ctrl-C to stop)", flush=True)
    try:
        asyncio.run(run_vpcd(card, args.host, port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
