"""HL7 v2 escape sequences (v2.5 §2.7), with the message's own escape character.

    \\F\\  field separator      \\S\\  component separator   \\T\\  subcomponent separator
    \\R\\  repetition separator  \\E\\  escape character
    \\Xhhhh..\\  hex data, decoded with the message charset (UTF-8 for ASCII messages),
                 falling back to latin-1
    \\.br\\  line break -> "\\n"   \\.sp\\ / \\.spN\\ -> N line breaks (N defaults to 1)
    \\H\\ \\N\\  highlighting on / off -> removed
    \\Cxxyy\\ \\Mxxyyzz\\ (ISO 2022 character set switches), \\Z..\\ (local), other formatting
                 commands and anything unrecognised -> kept verbatim, escape characters and all
    an escape character without a closing one -> kept literally

``escape`` is the inverse for the five delimiters, "\\n" (``\\.br\\``, or ``\\X0A\\`` if ``.``
is itself a delimiter) and "\\r" (``\\X0D\\``, so a value can never end a segment), hence
``unescape(escape(s, enc), enc) == s`` for every str ``s``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # message.py imports this module; Encoding is only used for attributes here
    from gateway.hl7.message import Encoding

__all__ = ["escape", "unescape"]

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def unescape(text: str, enc: Encoding, *, charset: str = "utf-8") -> str:
    """Replace the escape sequences in one (sub)component's text."""
    esc = enc.escape
    if esc not in text:
        return text
    parts = text.split(esc)
    n = len(parts)
    out = [parts[0]]
    i = 1
    while i < n:
        seq = parts[i]
        if i + 1 == n:  # unterminated: the escape character and the rest, literally
            out.append(esc)
            out.append(seq)
            break
        out.append(_sequence(seq, enc, esc, charset))
        out.append(parts[i + 1])
        i += 2
    return "".join(out)


def _sequence(seq: str, enc: Encoding, esc: str, charset: str) -> str:
    if not seq:  # two escape characters in a row: nothing to decode
        return esc + esc
    if len(seq) == 1:
        if seq == "F":
            return enc.field
        if seq == "S":
            return enc.component
        if seq == "T":
            return enc.subcomponent
        if seq == "R":
            return enc.repetition
        if seq == "E":
            return esc
        if seq == "H" or seq == "N":
            return ""
        return esc + seq + esc
    head = seq[0]
    if head == "X":
        digits = seq[1:]
        if len(digits) % 2 == 0 and _HEXDIGITS.issuperset(digits):
            data = bytes.fromhex(digits)
            codec = "utf-8" if charset in ("ascii", "us-ascii") else (charset or "utf-8")
            try:
                return data.decode(codec)
            except (UnicodeDecodeError, LookupError):
                return data.decode("latin-1")
        return esc + seq + esc
    if head == ".":
        cmd = seq[1:]
        if cmd == "br":
            return "\n"
        if cmd[:2] == "sp":
            count = cmd[2:].lstrip("+")
            if not count:
                return "\n"
            if count.isdigit() and count.isascii():
                return "\n" * max(1, min(int(count), 100))
    return esc + seq + esc


_TABLES: dict[Encoding, tuple[tuple[str, ...], dict[int, str]]] = {}


def _table(enc: Encoding) -> tuple[tuple[str, ...], dict[int, str]]:
    found = _TABLES.get(enc)
    if found is None:
        e = enc.escape
        delimiters = (enc.field, enc.component, enc.subcomponent, enc.repetition, e)
        newline = "X0A" if "." in delimiters else ".br"
        mapping = {
            ord(e): f"{e}E{e}",
            ord(enc.field): f"{e}F{e}",
            ord(enc.component): f"{e}S{e}",
            ord(enc.subcomponent): f"{e}T{e}",
            ord(enc.repetition): f"{e}R{e}",
            ord("\n"): f"{e}{newline}{e}",
            ord("\r"): f"{e}X0D{e}",
        }
        found = (delimiters + ("\n", "\r"), mapping)
        if len(_TABLES) < 64:
            _TABLES[enc] = found
    return found


def escape(text: str, enc: Encoding) -> str:
    """Escape the delimiters, the escape character itself and line breaks in ``text``."""
    if (enc.field in text or enc.component in text or enc.subcomponent in text
            or enc.repetition in text or enc.escape in text or "\n" in text or "\r" in text):
        return text.translate(_table(enc)[1])
    return text  # the common case: nothing to escape (and no table to look up)
