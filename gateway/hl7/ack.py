"""ACK / NAK messages (original acknowledgement mode) with ERR segments.

    build_ack(msg, "AE", [AckError("PID-3.1", "101", "身份证号缺失")],
              control_id="ACK0001", now=datetime.now(tz))  -> bytes (no MLLP framing)

The ACK answers in the original's delimiters, version and character set; its MSH swaps the
original's sending and receiving application / facility. ERR segments follow the version:

* v2.5 and later: ``ERR||PID^1^3^1^1|101^Required field missing^HL70357|E||||<text>``
  (ERR-2 error location as ERL, ERR-3 HL7 error code as CWE, ERR-4 severity, ERR-8 user message)
* v2.3 / v2.4:    ``ERR|PID^1^3^101&Required field missing&HL70357|PID^1^3^1^1|101^...|E||||<text>``:
  ERR-1 as ELD, the form these versions define, followed by the v2.5 fields ERR-2..8 so the
  location, code and readable text of every error reach receivers that read either form
  (fields beyond ERR-1 are ignored by strict 2.3 parsers). MSA-3 carries the first text.

Locations are HL7 paths: ``PID``, ``MSH-9``, ``PID-3.1``, ``PID-3[2].1`` (second repetition),
``OBX[2]-5`` (second OBX), ``PID-3.4.2`` (subcomponent) or ``''``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from gateway.hl7.charset import codec_for
from gateway.hl7.escape import escape
from gateway.hl7.message import DEFAULT_ENCODING, Encoding, Message

__all__ = ["ERROR_TEXTS", "AckError", "build_ack", "parse_location"]

# HL7 table 0357 — message error condition codes
ERROR_TEXTS: dict[str, str] = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

_ACK_CODES = frozenset(("AA", "AE", "AR", "CA", "CE", "CR"))
_LOCATION = re.compile(
    r"^\s*([A-Z0-9]{3})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?\s*$")
_VERSION = re.compile(r"^\d+(?:\.\d+)*$")
_MSA3_MAX = 80  # MSA-3 is ST(80)


@dataclass(frozen=True)
class AckError:
    location: str
    code: str
    text: str
    severity: str = "E"  # E error, W warning, I information


def parse_location(location: str) -> tuple[str, int, int | None, int | None, int | None, int | None] | None:
    """``"PID-3[2].1"`` → ``("PID", 1, 3, 2, 1, None)``: segment id, segment sequence, field,
    field repetition (1-based; 1 when a field is named), component, subcomponent. ``None`` if
    the location is not an HL7 path."""
    m = _LOCATION.match(location or "")
    if m is None:
        return None
    seg, seq, fld, rep, comp, sub = m.groups()
    field = int(fld) if fld else None
    return (seg, int(seq) if seq else 1, field, (int(rep) if rep else 1) if field is not None else None,
            int(comp) if comp else None, int(sub) if sub else None)


@lru_cache(maxsize=64)
def _version_tuple(version: str) -> tuple[int, ...]:
    if _VERSION.match(version or ""):
        return tuple(int(p) for p in version.split("."))
    return (2, 5)


def _ts(now: datetime) -> str:
    """``now`` as an HL7 DTM to the second, with its UTC offset when it has one. Many
    messages are answered within the same second: the last one is remembered (its key is
    every field the text is made of, the offset being the tzinfo's for those fields)."""
    global _last_ts
    key = (now.second, now.minute, now.hour, now.day, now.month, now.year, now.tzinfo, now.fold)
    last = _last_ts  # one tuple, read and replaced whole
    if last[0] == key:
        return last[1]
    s = now.strftime("%Y%m%d%H%M%S")
    off = now.utcoffset()
    if off is not None:
        minutes = int(off.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        minutes = abs(minutes)
        s = f"{s}{sign}{minutes // 60:02d}{minutes % 60:02d}"
    _last_ts = (key, s)
    return s


_last_ts: tuple = (None, "")


@dataclass
class _Head:
    """What the ACK needs from the original's MSH (fields as received, i.e. still escaped)."""

    enc: Encoding = DEFAULT_ENCODING
    msh2: str = ""
    sending_app: str = ""      # MSH-3
    sending_facility: str = ""  # MSH-4
    trigger: str = ""          # MSH-9.2
    control_id: str = ""       # MSH-10
    processing_id: str = ""    # MSH-11
    version: str = ""          # MSH-12.1
    msh18: str = ""            # MSH-18 (whole field)
    charset: str = "ascii"


def _head_of(msg: Message) -> _Head:
    msh = msg.msh
    enc = msg.encoding
    return _Head(enc=enc, msh2=msh.raw(2), sending_app=msh.raw(3), sending_facility=msh.raw(4),
                 trigger=escape(msg.trigger, enc), control_id=msh.raw(10),
                 processing_id=msh.raw(11), version=msg.version, msh18=msh.raw(18),
                 charset=msg.charset)


def _head_from_raw(raw_head: bytes | None) -> _Head:
    """Best effort on bytes that did not parse: plain splitting, ASCII values only."""
    head = _Head()
    if not raw_head:
        return head
    text = bytes(raw_head).decode("latin-1").lstrip(" \t\r\n\x00\x0b\x1c\xef\xbb\xbf")
    if not text.startswith("MSH") or len(text) < 8:
        return head
    line = re.split(r"[\r\n]", text, maxsplit=1)[0]
    fs = line[3]
    parts = line.split(fs)
    chars = parts[1] if len(parts) > 1 else ""
    four = chars[:4]
    if ("!" <= fs <= "~" and not fs.isalnum() and len(four) == 4 and len(set(four)) == 4 and fs not in four
            and all("!" <= c <= "~" and not c.isalnum() for c in four)):
        head.enc = Encoding(fs, four[0], four[1], four[2], four[3])
        head.msh2 = chars if len(chars) <= 5 else four
    else:  # delimiters unusable: recover nothing rather than garbage
        return head
    enc = head.enc

    def field(n: int) -> str:  # MSH-n, raw; only if printable ASCII
        value = parts[n - 1] if len(parts) > n - 1 else ""
        return value if value.isascii() and value.isprintable() else ""

    head.sending_app = field(3)
    head.sending_facility = field(4)
    msh9 = field(9).split(enc.repetition)[0].split(enc.component)
    head.trigger = msh9[1] if len(msh9) > 1 else ""
    head.control_id = field(10)
    head.processing_id = field(11)
    version = field(12).split(enc.component)[0]
    head.version = version if _VERSION.match(version) else ""
    head.msh18 = field(18)
    try:
        head.charset = codec_for(head.msh18.split(enc.repetition)[0], "ascii")
    except KeyError:
        head.charset = "ascii"
    return head


def _err_v25(err: AckError, enc: Encoding) -> list[str]:
    c = enc.component
    loc = parse_location(err.location)
    erl = ""
    if loc is not None:
        seg, seq, field, rep, comp, sub = loc
        erl = c.join(str(x) for x in (seg, seq, field, rep, comp, sub) if x is not None)
    code = escape(err.code, enc)
    cwe = c.join((code, ERROR_TEXTS.get(err.code, ""), "HL70357"))
    return ["ERR", "", erl, cwe, escape(err.severity or "E", enc), "", "", "", escape(err.text, enc)]


def _err_v23(err: AckError, enc: Encoding) -> list[str]:
    c, s = enc.component, enc.subcomponent
    loc = parse_location(err.location)
    seg = seq = fld = ""
    if loc is not None:
        seg = loc[0]
        seq = str(loc[1])
        fld = str(loc[2]) if loc[2] is not None else ""
    ce = s.join((escape(err.code, enc), ERROR_TEXTS.get(err.code, ""), "HL70357"))
    return ["ERR", c.join((seg, seq, fld, ce))]


class _Template:
    """The ACK's MSH for one original header, around its two values of its own: the
    timestamp (MSH-7) and the ACK's control id (MSH-10) go between ``head``, ``middle`` and
    ``tail``. Shared by every ACK to the same header; never changed once made."""

    __slots__ = ("charset", "declared", "enc", "head", "middle", "new_style", "tail")

    def __init__(self, head: _Head, receiving_app: str, receiving_facility: str) -> None:
        enc = head.enc
        fs, c = enc.field, enc.component
        version = head.version or "2.5"
        msh = ["MSH", head.msh2 or enc.characters,
               escape(receiving_app, enc), escape(receiving_facility, enc),
               head.sending_app, head.sending_facility,
               "", "",  # MSH-7: the timestamp
               c.join(("ACK", head.trigger, "ACK")),
               "",  # MSH-10: the ACK's control id
               head.processing_id or "P", escape(version, enc),
               "", "", "", "", "", head.msh18]
        while msh[-1] == "":  # never past MSH-12, the version: it is never empty
            msh.pop()
        self.head = fs.join(msh[:6]) + fs
        self.middle = fs + fs.join(msh[7:9]) + fs
        self.tail = fs + fs.join(msh[10:])
        self.enc = enc
        self.charset = head.charset
        self.declared = bool(head.msh18)
        self.new_style = _version_tuple(version) >= (2, 5)


_TEMPLATES: dict[tuple, _Template] = {}
_TEMPLATES_MAX = 1024  # distinct headers (senders x message types x versions x charsets)


def _template_of(msg: Message, receiving_app: str, receiving_facility: str) -> _Template:
    """The template for ``msg``'s header: the same MSH fields the ACK reads (as received),
    delimiters and character set give the same template."""
    enc = msg.encoding
    f = msg.msh.raw_fields()
    n = len(f)
    key = (enc.field, enc.component, enc.repetition, enc.escape, enc.subcomponent, msg.charset,
           receiving_app, receiving_facility,
           f[2] if n > 2 else "", f[3] if n > 3 else "", f[4] if n > 4 else "",
           f[9] if n > 9 else "", f[11] if n > 11 else "", f[12] if n > 12 else "",
           f[18] if n > 18 else "")
    t = _TEMPLATES.get(key)
    if t is None:
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        t = _TEMPLATES[key] = _Template(_head_of(msg), receiving_app, receiving_facility)
    return t


def build_ack(msg: Message | None, code: str, errors: Sequence[AckError] = (), *,
              control_id: str, now: datetime, receiving_app: str = "YKT-GATEWAY",
              receiving_facility: str = "YKT", raw_head: bytes | None = None) -> bytes:
    """The ACK (``AA``/``AE``/``AR``) for ``msg`` as bytes in the original's character set.

    ``msg`` may be ``None`` when the bytes did not parse; then ``raw_head`` (the first bytes
    received) is searched for MSH-10, MSH-12 and the delimiters by plain splitting.
    """
    if code not in _ACK_CODES:
        raise ValueError(f"acknowledgment code must be one of {sorted(_ACK_CODES)}, not {code!r}")
    if msg is not None:
        t = _template_of(msg, receiving_app, receiving_facility)
        original_id = msg.msh.raw(10)
    else:
        head = _head_from_raw(raw_head)
        t = _Template(head, receiving_app, receiving_facility)
        original_id = head.control_id
    enc = t.enc
    fs = enc.field
    text = (t.head + _ts(now) + t.middle + escape(control_id, enc) + t.tail
            + "\rMSA" + fs + code + fs + original_id)
    if errors:
        if errors[0].text:
            text += fs + escape(errors[0].text[:_MSA3_MAX], enc)
        for err in errors:
            parts = _err_v25(err, enc)
            if not t.new_style:
                parts[1] = _err_v23(err, enc)[1]
            while parts[-1] == "":
                parts.pop()
            text += "\r" + fs.join(parts)
    return _encode(text + "\r", t.charset, t.declared)


def read_ack(ack: Message) -> tuple[str, str, str]:
    """What a received acknowledgement says: its code (MSA-1; "" without an MSA), the
    control id it answers (MSA-2) and the receiver's text (ERR-8, else MSA-3)."""
    msa, err = ack.first("MSA"), ack.first("ERR")
    code = msa.get(1) if msa else ""
    text = (err.get(8) if err else "") or (msa.get(3) if msa else "")
    return code, msa.get(2) if msa else "", text


def _encode(text: str, charset: str, declared: bool) -> bytes:
    try:
        return text.encode(charset)
    except UnicodeEncodeError:
        if charset in ("ascii", "us-ascii") and not declared:
            return text.encode("utf-8")
        return text.encode(charset, "replace")
    except LookupError:
        return text.encode("utf-8")
