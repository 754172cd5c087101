"""A lean ER7 (pipe-and-hat) tokenizer and message model for HL7 v2.3–2.5.

Why not hl7apy on the ingest path: ``hl7apy.parser.parse_message`` validates against the
full v2 model and manages a few hundred messages a second; this module does only what the
mapping stages need (split, unescape, decode the right charset) with ``str.split`` and
lazily — a segment's fields are split on first access, a field's repetitions, components
and subcomponents when asked for.

    msg = parse(raw_bytes)                       # MSH-18 picks the codec (GB 18030, UTF-8, ...)
    msg.message_type, msg.trigger, msg.control_id, msg.version
    pid = msg.first("PID")
    pid.get(5)                 -> '张'            # PID-5.1.1 of the first repetition, unescaped
    pid.get(3, 1, rep=2)       -> 'JZK00088123'   # PID-3[3].1 (rep is 0-based)
    pid.field(3)               -> [[['110101...'], [''], [''], ['', '2.16.156...', 'ISO'], ...], ...]
    pid.raw(3)                 -> the field as received (escaped)

Field numbering is HL7's: for MSH (and FHS / BHS) field(1) is the field separator and
field(2) the encoding characters, both unsplit and unescaped; field(3) is MSH-3.

Every failure is an ``HL7ParseError`` with an HL7 location and a table 0357 code, ready for
an ERR segment (see ``ack.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.hl7.charset import codec_for
from gateway.hl7.escape import unescape

__all__ = ["Encoding", "HL7ParseError", "Message", "Segment", "parse"]


class HL7ParseError(Exception):
    """Unparseable input. ``location`` is an HL7 path (``MSH-18``, ``PID-5``, ``OBX[2]-5``,
    ``MSH`` or ``''``); ``code`` an HL7 table 0357 code (``"100"``, ``"102"``, ``"103"``...)."""

    def __init__(self, message: str, location: str = "", code: str = "100") -> None:
        super().__init__(message)
        self.location = location
        self.code = code

    def __reduce__(self):  # keep location and code across pickling (process pools)
        return (type(self), (self.args[0] if self.args else "", self.location, self.code))

    def __repr__(self) -> str:
        return f"HL7ParseError({self.args[0]!r}, location={self.location!r}, code={self.code!r})"


@dataclass(frozen=True)
class Encoding:
    """The delimiters from MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def characters(self) -> str:
        """MSH-2 as written: component, repetition, escape, subcomponent."""
        return self.component + self.repetition + self.escape + self.subcomponent


DEFAULT_ENCODING = Encoding()

# segments whose field 1 is the field separator itself
_HEADERS = frozenset(("MSH", "FHS", "BHS"))


class Segment:
    """One segment. Fields are split on first access; nothing is unescaped until asked for."""

    __slots__ = ("_charset", "_enc", "_f", "_header", "_line", "name")

    def __init__(self, name: str, line: str, enc: Encoding = DEFAULT_ENCODING, charset: str = "utf-8") -> None:
        self.name = name
        self._line = line
        self._enc = enc
        self._charset = charset
        self._header = name in _HEADERS
        self._f: list[str] | None = None

    def _fields(self) -> list[str]:
        f = self._f
        if f is None:
            f = self._line.split(self._enc.field)
            if self._header:
                f.insert(1, self._enc.field)
            self._f = f
        return f

    def raw_fields(self) -> list[str]:
        """Every field as received (still escaped), indexed by field number: ``[0]`` is the
        segment id; for MSH ``[1]`` is the field separator. The list is the segment's own:
        do not change it."""
        f = self._f
        return f if f is not None else self._fields()

    def field(self, n: int) -> list[list[list[str]]]:
        """Field ``n`` as repetitions → components → subcomponents (unescaped); ``[]`` if absent."""
        f = self._fields()
        if n < 1 or n >= len(f):
            return []
        s = f[n]
        if not s:
            return []
        if n <= 2 and self._header:
            return [[[s]]]
        enc = self._enc
        esc = enc.escape
        cs = self._charset
        csep = enc.component
        ssep = enc.subcomponent
        out = []
        for r in s.split(enc.repetition):
            comps = []
            for c in r.split(csep):
                subs = c.split(ssep)
                if esc in c:
                    subs = [unescape(x, enc, charset=cs) if esc in x else x for x in subs]
                comps.append(subs)
            out.append(comps)
        return out

    def get(self, n: int, comp: int = 1, sub: int = 1, rep: int = 0) -> str:
        """One value, unescaped: field ``n``, component ``comp``, subcomponent ``sub`` (1-based),
        repetition ``rep`` (0-based). ``''`` when absent."""
        f = self._f if self._f is not None else self._fields()
        if n < 1 or n >= len(f):
            return ""
        s = f[n]
        if not s:
            return ""
        if n <= 2 and self._header:
            return s if comp == 1 and sub == 1 and rep == 0 else ""
        enc = self._enc
        sep = enc.repetition
        if sep in s:
            parts = s.split(sep)
            if rep < 0 or rep >= len(parts):
                return ""
            s = parts[rep]
        elif rep:
            return ""
        sep = enc.component
        if sep in s:
            parts = s.split(sep)
            if comp < 1 or comp > len(parts):
                return ""
            s = parts[comp - 1]
        elif comp != 1:
            return ""
        sep = enc.subcomponent
        if sep in s:
            parts = s.split(sep)
            if sub < 1 or sub > len(parts):
                return ""
            s = parts[sub - 1]
        elif sub != 1:
            return ""
        if enc.escape in s:
            return unescape(s, enc, charset=self._charset)
        return s

    def reps(self, n: int) -> int:
        """Number of repetitions of field ``n`` (0 when empty or absent)."""
        f = self._fields()
        if n < 1 or n >= len(f) or not f[n]:
            return 0
        if n <= 2 and self._header:
            return 1
        return f[n].count(self._enc.repetition) + 1

    def present(self) -> list[int]:
        """The numbers of the fields that have content."""
        f = self._fields()
        return [n for n in range(1, len(f)) if f[n]]

    def raw(self, n: int) -> str:
        """Field ``n`` as received (still escaped); ``''`` when absent."""
        f = self._fields()
        if n < 1 or n >= len(f):
            return ""
        return f[n]

    def __len__(self) -> int:
        f = self._fields()
        n = len(f) - 1
        while n > 0 and not f[n]:
            n -= 1
        return n

    def __str__(self) -> str:
        return self._line

    def __repr__(self) -> str:
        line = self._line if len(self._line) <= 60 else self._line[:57] + "..."
        return f"Segment({line!r})"


class Message:
    """A parsed message: its segments in order, delimiters and the charset it was decoded with."""

    __slots__ = ("charset", "encoding", "segments")

    def __init__(self, segments: list[Segment], encoding: Encoding = DEFAULT_ENCODING, charset: str = "ascii") -> None:
        self.segments = segments
        self.encoding = encoding
        self.charset = charset

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        for seg in self.segments:
            if seg.name == name:
                return seg
        return None

    def all(self, name: str) -> list[Segment]:
        return [seg for seg in self.segments if seg.name == name]

    @property
    def message_type(self) -> str:
        return self.segments[0].get(9, 1)

    @property
    def trigger(self) -> str:
        return self.segments[0].get(9, 2)

    @property
    def structure(self) -> str:
        return self.segments[0].get(9, 3)

    @property
    def control_id(self) -> str:
        return self.segments[0].get(10)

    @property
    def version(self) -> str:
        return self.segments[0].get(12, 1)

    @property
    def sending_application(self) -> str:
        return self.segments[0].get(3, 1)

    @property
    def sending_facility(self) -> str:
        return self.segments[0].get(4, 1)

    @property
    def charset_field(self) -> str:
        return _first_rep(self.segments[0].raw(18), self.encoding)

    def __iter__(self):
        return iter(self.segments)

    def __len__(self) -> int:
        return len(self.segments)

    def __str__(self) -> str:
        return "\r".join(str(s) for s in self.segments) + "\r"

    def __repr__(self) -> str:
        return (f"Message({self.message_type}^{self.trigger} {self.control_id!r} v{self.version}, "
                f"{len(self.segments)} segments, {self.charset})")


# ---------------------------------------------------------------------------------------------
# parsing

# leading padding: whitespace, NUL, MLLP start/end bytes, BOM
_LEAD = " \t\r\n\x00\x0b\x0c\x1c\x1a\ufeff"
_LEAD_B = b" \t\r\n\x00\x0b\x0c\x1c\x1a"
# trailing padding: line ends, NUL, MLLP bytes — but not spaces, which may be data
_TRAIL = "\r\n\x00\x0b\x1c\x1a"
# a line that holds only these is skipped
_BLANK = " \t\x00\x0b\x0c\x1c\x1a\ufeff"

_ENCODINGS: dict[str, Encoding] = {}


def _first_rep(raw: str, enc: Encoding) -> str:
    sep = enc.repetition
    return raw.split(sep, 1)[0] if sep in raw else raw


def _delimiter_ok(ch: str) -> bool:
    # printable ASCII punctuation only: letters, digits, space and controls cannot delimit
    return "!" <= ch <= "~" and not ch.isalnum()


def _encoding_of(head: str) -> Encoding:
    """The delimiters from the MSH line (which starts with "MSH")."""
    if len(head) < 4:
        raise HL7ParseError("MSH-1 (field separator) is missing", "MSH-1", "102")
    fs = head[3]
    j = head.find(fs, 4)
    chars = head[4:] if j < 0 else head[4:j]
    key = fs + chars
    enc = _ENCODINGS.get(key)
    if enc is not None:
        return enc
    if not _delimiter_ok(fs):
        raise HL7ParseError(f"MSH-1 field separator {fs!r} is not a punctuation character", "MSH-1", "102")
    if len(chars) < 4:
        raise HL7ParseError(f"MSH-2 encoding characters {chars!r}: need 4 (component, repetition, "
                            "escape, subcomponent)", "MSH-2", "102")
    if len(chars) > 5:
        raise HL7ParseError(f"MSH-2 encoding characters {chars!r}: more than 5", "MSH-2", "102")
    four = chars[:4]
    if len(set(four)) < 4 or fs in four or not all(_delimiter_ok(c) for c in four):
        raise HL7ParseError(f"MSH-2 encoding characters {chars!r} repeat a character, contain the "
                            f"field separator {fs!r} or are not punctuation", "MSH-2", "102")
    enc = Encoding(fs, four[0], four[1], four[2], four[3])
    if enc == DEFAULT_ENCODING:
        enc = DEFAULT_ENCODING
    if len(_ENCODINGS) < 64:
        _ENCODINGS[key] = enc
    return enc


def _msh18(head: str, enc: Encoding) -> str:
    return _msh18_of(head.split(enc.field, 18), enc)


def _msh18_of(parts: list[str], enc: Encoding) -> str:
    """MSH-18 from the MSH line split on the field separator (``parts[k]`` is MSH-(k+1)
    for k ≥ 1; split whole, or at most 18 times)."""
    if len(parts) < 18:
        return ""
    value = parts[17]
    return _first_rep(value, enc).strip()


def _codec(msh18: str, default: str) -> str:
    try:
        return codec_for(msh18, default)
    except KeyError:
        raise HL7ParseError(f"MSH-18 character set {msh18!r} is not supported", "MSH-18", "103") from None


def _decode(data: bytes, default_charset: str) -> tuple[str, str, tuple[Encoding, str, list[str]] | None]:
    """Decode the message bytes with the codec MSH-18 names: (text, codec, and when the MSH
    line is ASCII — the same in the decoded text then — its delimiters, the line and its
    fields: the MSH segment's, split once)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:6] in (b"M\x00S\x00H\x00", b"\x00M\x00S\x00H"):
        return _decode_utf16(data, default_charset)
    data = data.lstrip(_LEAD_B)
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:].lstrip(_LEAD_B)
    if data[:3] != b"MSH":
        raise HL7ParseError("not an HL7 v2 message: no MSH segment at the start", "MSH", "100")
    end = len(data)
    for term in (b"\r", b"\n"):
        k = data.find(term, 0, end)
        if k >= 0:
            end = k
    head_b = data[:end]
    head = head_b.decode("latin-1")
    enc = _encoding_of(head)
    fields = head.split(enc.field)
    msh18 = _msh18_of(fields, enc)
    ascii_head = head_b.isascii()
    if not ascii_head:
        msh18 = _msh18_gb(head_b, enc, msh18, default_charset)
    codec = _codec(msh18, default_charset)
    try:
        return data.decode(codec), codec, (enc, head, fields) if ascii_head else None
    except UnicodeDecodeError as e:
        where = _locate(data[:e.start].decode(codec, "replace"), enc.field)
        bad = data[e.start:e.start + 4].hex()
        declared = f"MSH-18 {msh18!r}" if msh18 else "MSH-18 empty, default"
        raise HL7ParseError(
            f"bytes not decodable as {codec} ({declared}) at offset {e.start} (0x{bad}) in {where or 'MSH'}",
            where or "MSH-18", "102") from None


def _decode_utf16(data: bytes, default_charset: str) -> tuple[str, str, None]:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        codec = "utf-16"
    else:
        codec = "utf-16-le" if data[:1] == b"M" else "utf-16-be"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise HL7ParseError(f"bytes not decodable as {codec} at offset {e.start}", "MSH-18", "102") from None
    text = text.lstrip(_LEAD)
    if not text.startswith("MSH"):
        raise HL7ParseError("not an HL7 v2 message: no MSH segment at the start", "MSH", "100")
    head = text.split("\r", 1)[0].split("\n", 1)[0]
    _codec(_msh18(head, _encoding_of(head)), default_charset)  # an unknown MSH-18 is still an error
    return text, codec, None


def _msh18_gb(head_b: bytes, enc: Encoding, msh18: str, default_charset: str) -> str:
    """MSH-18 when MSH holds non-ASCII bytes (a Chinese facility name, say).

    The latin-1 view splits on every delimiter byte, but GBK / GB 18030 trail bytes include
    ``|`` ``^`` ``~`` and ``\\`` (億 is 83 7C), so in a GB-encoded MSH that view can miscount
    fields. Read MSH-18 through GB 18030 too and believe it when it is self-consistent, i.e.
    when decoding as GB 18030 yields an MSH-18 (or an empty one with a GB 18030 default) that
    names GB 18030. UTF-8 never hides ASCII bytes, so the latin-1 view is right for it.
    """
    try:
        gb18 = _msh18(head_b.decode("gb18030"), enc)
    except UnicodeDecodeError:
        return msh18
    if gb18 != msh18:
        try:
            if codec_for(gb18, default_charset) == "gb18030":
                return gb18
        except KeyError:
            pass
    return msh18


def _locate(prefix: str, fs: str) -> str:
    """HL7 location (``PID-5``, ``OBX[2]-5``) at the end of the decoded ``prefix`` — error path only."""
    lines = prefix.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    current = lines[-1]
    name = current[:3]
    if len(name) < 3 or not (name.isalnum() and name.isascii()):
        return ""
    count = current.count(fs)
    if count == 0:
        return name
    field = count + 1 if name in _HEADERS else count
    occurrence = sum(1 for line in lines if line[:3] == name)
    return f"{name}[{occurrence}]-{field}" if occurrence > 1 else f"{name}-{field}"


def parse(data: bytes | bytearray | memoryview | str, default_charset: str = "ascii") -> Message:
    """Parse one ER7-encoded message.

    Bytes are decoded with the codec MSH-18 names (``charset.codec_for``; ``default_charset``
    when MSH-18 is empty). Segments end with CR, LF or CRLF; blank lines and padding are
    ignored. Raises ``HL7ParseError`` — and nothing else — for any malformed input.
    """
    msh: tuple[Encoding, str, list[str]] | None = None
    if isinstance(data, str):
        text = data.lstrip(_LEAD)
        charset = ""
    elif isinstance(data, (bytes, bytearray, memoryview)):
        text, charset, msh = _decode(bytes(data), default_charset)
        text = text.lstrip(_LEAD)
    else:
        raise TypeError(f"parse() needs bytes or str, not {type(data).__name__}")
    text = text.rstrip(_TRAIL)
    if not text.startswith("MSH"):
        raise HL7ParseError("not an HL7 v2 message: no MSH segment at the start", "MSH", "100")
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = text.split("\r")
    head = lines[0]
    fields = None
    if msh is None:
        enc = _encoding_of(head)
    else:
        enc, msh_head, fields = msh
        if msh_head != head:  # padding the decoded text lost: split again when asked
            fields = None
    if not charset:
        charset = _codec(_msh18(head, enc), default_charset)
    fs = enc.field
    valid = _VALID_STARTS.get(fs)
    if valid is None:
        valid = _VALID_STARTS[fs] = {}
    first = Segment("MSH", head, enc, charset)
    if fields is not None:  # the fields _decode split, as Segment._fields would
        fields.insert(1, fs)
        first._f = fields
    segments = [first]
    append = segments.append
    for line in lines[1:]:
        # a line that starts as a valid one did (its id is alphanumeric) is neither blank nor
        # padded: its segment id without slicing or checking it again
        name = valid.get(line[:4])
        if name is None:
            if not line or line[0] in _BLANK:
                line = line.lstrip(_BLANK)
                if not line:
                    continue
            name = _segment_id(line, fs, len(segments) + 1)
            if len(valid) < 1024:
                valid[line[:4]] = name
        append(Segment(name, line, enc, charset))
    return Message(segments, enc, charset)


def _segment_id(line: str, fs: str, number: int) -> str:
    """The id of a line not met before; raises when it does not start as a segment does."""
    name = line[:3]
    if (len(name) != 3 or not name.isalnum() or not name.isascii()
            or (len(line) > 3 and line[3] != fs)):
        shown = line[:20]
        raise HL7ParseError(f"segment {number}: invalid segment {shown!r} "
                            f"(a segment starts with a 3-character id and {fs!r})", "", "100")
    return name


# per field separator, the starts of lines known to be valid (segment id + the separator)
# and their segment id
_VALID_STARTS: dict[str, dict[str, str]] = {}
