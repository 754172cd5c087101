"""Ingest for HL7 v2 (MLLP, files): size limit, the message header, the sender.

The sender is the organisation MSH-4 names (its registered code or one of its aliases);
its default character set applies when MSH-18 is empty. An unknown sender, an unsupported
version or a header that cannot be read is refused (AR). A message already accepted under
the same MSH-10 from the same sender is a duplicate: the route stage writes its outbox only
once per (sender, MSH-10) — ``seen_key`` — and the listener acknowledges a re-sent one AA
without queueing it again.
"""

from __future__ import annotations

from gateway import errors
from gateway.envelope import Envelope, Sender
from gateway.hl7.message import HL7ParseError, parse

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
SEEN_TTL = 7 * 86400


def seen_key(org: str, control_id: str) -> str:
    return f"gw:v2seen:{org}:{control_id}"


def facility(raw: bytes) -> str:
    """MSH-4.1, read before the character set is known. The MSH line is decoded first (UTF-8,
    else GB18030, else Latin-1): in GBK a Chinese character's second byte may be ``|``."""
    start = raw.find(b"MSH")
    if start < 0 or len(raw) < start + 8:
        return ""
    end = len(raw)  # the MSH line ends at the first CR or LF: sliced alone, not the message
    for term in (b"\r", b"\n"):
        k = raw.find(term, start, end)
        if k >= 0:
            end = k
    head_bytes = raw[start:end]
    if head_bytes.isascii():  # the usual header: any of the three codecs reads it the same
        head = head_bytes.decode("ascii")
    else:
        for codec in ("utf-8", "gb18030", "latin-1"):
            try:
                head = head_bytes.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    sep, comp = head[3:4], head[4:5]
    fields = head.split(sep, 4)  # MSH-4 is the fourth: the rest need not be split
    return fields[3].split(comp, 1)[0].strip() if len(fields) > 3 and comp else ""


def header(env: Envelope, ctx) -> Envelope:
    """Size, sender, character set and version."""
    limit = ctx.settings.mllp_max_message_bytes
    if len(env.raw) > limit:
        raise errors.GatewayError.of(f"message exceeds the limit of {limit} bytes", code="too-long",
                                     error_code="1013", v2_code="104", status=413)
    sent_by = facility(env.raw)
    org = ctx.orgs.by_facility(sent_by)
    if org is None:
        raise errors.GatewayError.of(
            f"sending facility {sent_by!r} (MSH-4) is not a registered organisation or alias",
            "MSH-4", code="security", error_code="1002", v2_code="204", status=403)
    try:
        msg = parse(env.raw, default_charset=org.charset or "ascii")
    except HL7ParseError as exc:
        raise errors.GatewayError.of(str(exc), exc.location or None, code="structure",
                                     error_code="2010", v2_code=exc.code, status=400) from None
    if msg.version not in SUPPORTED_VERSIONS:
        raise errors.GatewayError.of(
            f"HL7 version {msg.version!r} is not supported; send one of {', '.join(SUPPORTED_VERSIONS)}",
            "MSH-12", code="not-supported", error_code="2011", v2_code="203", status=400)
    return env.with_(sender=_sender(org.code, org.name), message=msg,
                     adapter=env.adapter or org.adapter)


_SENDERS: dict[tuple[str, str], Sender] = {}  # a Sender is frozen: one per organisation serves


def _sender(code: str, name: str) -> Sender:
    """The organisation's Sender (a frozen dataclass costs about 5 k instructions to make)."""
    key = (code, name)
    sender = _SENDERS.get(key)
    if sender is None:
        if len(_SENDERS) >= 4096:  # bounded: a registry's worth of organisations
            _SENDERS.clear()
        sender = _SENDERS[key] = Sender(org=code, key_name=name)
    return sender
