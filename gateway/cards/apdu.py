"""APDU helpers shared by the card reader and the virtual cards.

Command APDUs (ISO 7816-4, short form only: Lc and Le are one byte each), status words,
the one-byte-tag / one-byte-length TLV records the SSC and the resident health card use,
and the field encodings of those records (BCD digits and dates, GBK names padded with 00
or spaces, ASCII numbers). Nothing here talks to a reader.
"""

from __future__ import annotations

from dataclasses import dataclass

# Application / directory names (see shared/reference/china-cards.md).
# SSC application DF name: ASCII "sx1.sh." followed by 社会保障 in GBK.
SSC_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
HEALTH_DDF1 = 0xDDF1

SW_OK = 0x9000

# ISO 7816-4 (and common proprietary) status words, for readable errors.
_SW_TEXT = {
    0x6281: "part of the returned data may be corrupted",
    0x6283: "selected file invalidated",
    0x6300: "verification or authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction code not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def sw_text(sw: int) -> str:
    """A readable meaning of a status word, e.g. ``6A82 file or application not found``."""
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw in _SW_TEXT:
        meaning = _SW_TEXT[sw]
    elif sw1 == 0x61:
        meaning = f"{sw2 or 256} more bytes available (GET RESPONSE)"
    elif sw1 == 0x6C:
        meaning = f"wrong Le, exact length is {sw2 or 256}"
    elif sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        meaning = f"verification failed, {sw2 & 0x0F} tries left"
    elif sw1 == 0x90:
        meaning = "success"
    else:
        meaning = "unknown status"
    return f"{sw:04X} {meaning}"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    """A parsed short command APDU. ``le`` is None when the command has no Le (cases 1 and
    3); ``le == 0`` means "up to 256 bytes"."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def to_bytes(self) -> bytes:
        return build(self.cla, self.ins, self.p1, self.p2, self.data, self.le)

    def with_le(self, le: int) -> Command:
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le)


def build(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    """A short command APDU: header, Lc + data when there is data, Le when given (0-255;
    0 asks for up to 256 bytes)."""
    if len(data) > 255:
        raise ValueError("command data longer than 255 bytes needs an extended APDU")
    for name, byte in (("CLA", cla), ("INS", ins), ("P1", p1), ("P2", p2)):
        if not 0 <= byte <= 0xFF:
            raise ValueError(f"{name} out of range: {byte}")
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + bytes(data)
    if le is not None:
        if not 0 <= le <= 0xFF:
            raise ValueError(f"Le out of range: {le}")
        out += bytes([le])
    return out


def parse_command(apdu: bytes) -> Command:
    """Parse a short command APDU (cases 1-4). Raises ValueError when malformed."""
    if len(apdu) < 4:
        raise ValueError("a command APDU has at least 4 bytes")
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, le=body[0])
    lc = body[0]
    if lc == 0:
        raise ValueError("extended APDUs are not supported")
    if len(body) == 1 + lc:
        return Command(cla, ins, p1, p2, bytes(body[1:]))
    if len(body) == 2 + lc:
        return Command(cla, ins, p1, p2, bytes(body[1:-1]), body[-1])
    raise ValueError(f"Lc={lc} does not match the {len(body) - 1} bytes that follow")


def select_aid(aid: bytes) -> bytes:
    """SELECT by DF name (P1=04), asking for the FCI (P2=00)."""
    return build(0x00, 0xA4, 0x04, 0x00, aid)


def select_fid(fid: int, p1: int = 0x02) -> bytes:
    """SELECT by file identifier: P1=00 (any file) or 02 (EF under the current DF)."""
    return build(0x00, 0xA4, p1, 0x00, fid.to_bytes(2, "big"))


def read_record_by_tag(tag: int, le: int = 0, sfi: int | None = None) -> bytes:
    """READ RECORD of the first record whose identifier (tag) is ``tag``: ``00 B2 <tag> 00``
    in the current EF, or ``00 B2 <tag> (SFI<<3)`` in the EF with that SFI."""
    return build(0x00, 0xB2, tag, (sfi << 3) if sfi else 0x00, le=le)


def read_record_by_number(record: int, sfi: int, le: int = 0) -> bytes:
    """READ RECORD number ``record`` of the EF with short identifier ``sfi``."""
    return build(0x00, 0xB2, record, (sfi << 3) | 0x04, le=le)


def get_response(le: int) -> bytes:
    return build(0x00, 0xC0, 0x00, 0x00, le=le)


def verify_pin(pin: str, p2: int = 0x00) -> bytes:
    """VERIFY with the PIN packed as BCD (odd length padded with F), as SSCs expect."""
    return build(0x00, 0x20, 0x00, p2, pin_block(pin))


def pin_block(pin: str) -> bytes:
    if not pin or not pin.isdigit() or not pin.isascii():
        raise ValueError("a PIN is 1 or more digits")
    return bcd_encode(pin, (len(pin) + 1) // 2, pad="F")


def split_response(response: bytes) -> tuple[bytes, int]:
    """(data, SW) of a response APDU."""
    if len(response) < 2:
        raise ValueError("a response APDU has at least the 2 status bytes")
    return bytes(response[:-2]), (response[-2] << 8) | response[-1]


def respond(data: bytes, sw: int) -> bytes:
    return bytes(data) + sw.to_bytes(2, "big")


# --------------------------------------------------------------------------- TLV


def tlv(tag: int, value: bytes) -> bytes:
    """One record: tag (1 byte), length (1 byte), value."""
    if not 0 <= tag <= 0xFF:
        raise ValueError(f"tag out of range: {tag}")
    if len(value) > 0xFF:
        raise ValueError(f"value of tag {tag:02X} is longer than 255 bytes")
    return bytes([tag, len(value)]) + bytes(value)


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """All (tag, value) pairs of concatenated one-byte-tag / one-byte-length TLVs.
    Trailing 00 or FF bytes (unused record space) are ignored."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        if data[i] in (0x00, 0xFF) and all(b == data[i] for b in data[i:]):
            break
        if i + 2 > len(data):
            raise ValueError(f"truncated TLV at offset {i}")
        tag, length = data[i], data[i + 1]
        if i + 2 + length > len(data):
            raise ValueError(f"TLV tag {tag:02X} claims {length} bytes, {len(data) - i - 2} left")
        out.append((tag, bytes(data[i + 2 : i + 2 + length])))
        i += 2 + length
    return out


def record_value(data: bytes, tag: int) -> bytes:
    """The value of a record read by tag. The card returns ``tag len value``; a card that
    returns the bare value (seen on some readers' cards) is tolerated."""
    if len(data) >= 2 and data[0] == tag and data[1] == len(data) - 2:
        return bytes(data[2:])
    try:
        for found, value in parse_tlv(data):
            if found == tag:
                return value
    except ValueError:
        pass
    return bytes(data)


# --------------------------------------------------------------------------- encodings

_PADDING = b"\x00 \xff"


def bcd_encode(digits: str, length: int | None = None, *, pad: str = "F") -> bytes:
    """Pack a digit string two digits a byte; right-padded with ``pad`` nibbles to
    ``length`` bytes. Nibbles A-F are accepted (for padding or X in a card number)."""
    text = digits.upper()
    if length is None:
        length = (len(text) + 1) // 2
    if len(text) > 2 * length:
        raise ValueError(f"{digits!r} does not fit in {length} BCD bytes")
    text = text + pad * (2 * length - len(text))
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"not BCD digits: {digits!r}") from None


def bcd_decode(data: bytes) -> str:
    """Unpack BCD to digits, dropping trailing F padding (and a leading or trailing all-F
    byte run)."""
    return bytes(data).hex().upper().rstrip("F")


def bcd_date(data: bytes) -> str | None:
    """A 4-byte BCD date (YYYYMMDD) as ISO ``YYYY-MM-DD``; None for an all-zero or all-F
    (unset) date. Raises ValueError for a date that is not one."""
    from datetime import date

    digits = bcd_decode(data)
    if not digits or set(digits) <= {"0"}:
        return None
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(f"not a BCD date: {bytes(data).hex().upper()}")
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()


def gbk_encode(text: str, length: int, *, pad: bytes = b"\x00") -> bytes:
    """GBK text right-padded to ``length`` bytes (SSC names: 30 bytes, 00 or space padded)."""
    raw = text.encode("gbk")
    if len(raw) > length:
        raise ValueError(f"{text!r} is {len(raw)} bytes in GBK, more than {length}")
    return raw + pad * (length - len(raw))


def gbk_decode(data: bytes) -> str:
    """Decode a padded GBK field: the text ends at the first 00; spaces and FF padding are
    stripped. GB 18030 is tried when the bytes are not valid GBK (rare characters in names)."""
    raw = bytes(data).split(b"\x00", 1)[0].rstrip(b" \xff")
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    return text.strip().replace("\u3000", " ").strip()


def ascii_encode(text: str, length: int, *, pad: bytes = b"\x00") -> bytes:
    raw = text.encode("ascii")
    if len(raw) > length:
        raise ValueError(f"{text!r} is longer than {length} bytes")
    return raw + pad * (length - len(raw))


def ascii_decode(data: bytes) -> str:
    """An ASCII field without its 00 / space / FF padding."""
    return bytes(data).strip(_PADDING).decode("ascii", errors="replace").strip()


def text_or_hex(data: bytes) -> str:
    """Printable ASCII as text, anything else as upper-case hex (for fields whose encoding
    varies between issuers)."""
    stripped = bytes(data).strip(_PADDING)
    if stripped and all(0x20 <= b < 0x7F for b in stripped):
        return stripped.decode("ascii")
    return bytes(data).hex().upper()


# --------------------------------------------------------------------------- SAM scheme


def health_key_factors(card_no: str, city_code: str) -> bytes:
    """The 16 bytes of key-diversification data the reader sends to the SAM in
    ``80 DE 47 3x 18`` (followed by the 8-byte challenge): the last 16 characters of the
    health card number packed as BCD (an ``X`` check character as nibble A), then the city
    code (GB/T 2260, 6 digits) packed as BCD and right-padded with F to 8 bytes.

    This layout is this project's own: the national SAM scheme is not public."""
    number = card_no.strip().upper()[-16:].replace("X", "A").rjust(16, "0")
    return bcd_encode(number, 8) + bcd_encode(city_code.strip(), 8, pad="F")
