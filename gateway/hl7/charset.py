"""MSH-18 character sets (HL7 table 0211) ⇄ Python codecs.

Chinese hospitals declare GB 18030 / GBK / GB2312 (or nothing at all, with GBK bytes on the
wire). GB 18030 is a superset of GBK and GB2312, so every GB-family value decodes with the
``gb18030`` codec.

    codec_for("GB 18030-2000") -> "gb18030"     codec_for("") -> default
    hl7_name("utf-8")          -> "UNICODE UTF-8"

Matching is case-insensitive and ignores whitespace, ``-`` and ``_`` (``UTF-8`` = ``utf8``
= ``UNICODE UTF-8``; ``GB 18030-2000`` = ``GB18030``). An unknown value raises ``KeyError``;
the parser turns it into an HL7 error (MSH-18, code 103).
"""

from __future__ import annotations

import codecs
from functools import lru_cache

__all__ = ["codec_for", "hl7_name"]

# normalised MSH-18 value -> Python codec
_CODECS: dict[str, str] = {
    # Unicode
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-16",
    "UNICODEUTF16": "utf-16",
    "UTF16": "utf-16",
    "UNICODEUTF32": "utf-32",
    # China: GB 18030 decodes GBK and GB2312 too
    "GB180302000": "gb18030",
    "GB180302005": "gb18030",
    "GB180302022": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",
    "GB2312": "gb18030",
    "GB23121980": "gb18030",
    "CP936": "gb18030",
    # ASCII / ISO 8859 (table 0211 spellings included)
    "ASCII": "ascii",
    "USASCII": "ascii",
    "ISOIR6": "ascii",
    "8859/1": "latin-1",
    "ISOIR100": "latin-1",
    "LATIN1": "latin-1",
    "ISO88591": "latin-1",
    **{f"8859/{n}": f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 15)},
    # Taiwan / Hong Kong
    "BIG5": "big5",
}

# codecs.lookup(name).name -> MSH-18 value to write
_NAMES: dict[str, str] = {
    "utf-8": "UNICODE UTF-8",
    "gb18030": "GB 18030-2000",
    "gbk": "GB 18030-2000",  # GBK bytes are valid GB 18030 (bar the odd euro sign)
    "gb2312": "GB 18030-2000",
    "ascii": "ASCII",
    "iso8859-1": "8859/1",
    "utf-16": "UNICODE UTF-16",
    "utf-16-le": "UNICODE UTF-16",
    "utf-16-be": "UNICODE UTF-16",
    "utf-32": "UNICODE UTF-32",
    "big5": "BIG-5",
    **{f"iso8859-{n}": f"8859/{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


def _norm(value: str) -> str:
    return "".join(value.split()).upper().replace("-", "").replace("_", "")


@lru_cache(maxsize=256)
def _lookup(msh18: str) -> str:
    # lru_cache does not cache exceptions: unknown values are not remembered
    try:
        return _CODECS[_norm(msh18)]
    except KeyError:
        raise KeyError(f"unknown MSH-18 character set {msh18!r}") from None


def codec_for(msh18: str, default: str = "ascii") -> str:
    """The Python codec for an MSH-18 value; ``default`` when it is empty.

    Raises ``KeyError`` for a value that is not a known character set.
    """
    if not msh18 or msh18.isspace():
        return default
    return _lookup(msh18)


def hl7_name(codec: str) -> str:
    """The MSH-18 value to write for a Python codec name (any alias: ``utf8``, ``latin-1``)."""
    try:
        canonical = codecs.lookup(codec).name
    except LookupError:
        raise KeyError(f"unknown codec {codec!r}") from None
    try:
        return _NAMES[canonical]
    except KeyError:
        raise KeyError(f"no HL7 character set for codec {codec!r}") from None
