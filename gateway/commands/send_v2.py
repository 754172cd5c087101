"""`gateway send-v2 FILE... --to mllp://HOST:PORT`: send HL7 v2 messages over MLLP, one at a
time on one connection, and say what the receiver acknowledged — the first thing a HIS
vendor or a tester does with a listener (the gateway's, or any other).

A file holds one message or several (as ``gateway synth --format v2`` writes them): a new
message starts at each ``MSH|`` that begins a line. Segments may end with CR, LF or CR LF
(files edited by hand); they are sent with CR, as HL7 requires. The bytes are sent as they
are otherwise (the character set is the message's own, MSH-18).

One line per message: its MSH-10, MSH-9, the acknowledgement code, and the receiver's
text (MSA-3 / ERR-8). Exit status: 0 every message accepted (AA / CA), 1 one or more
refused or in error (AE / AR / CE / CR, or a reply without MSA), 2 a file could not be read
or the receiver could not be reached (the messages not sent are named).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlparse

import typer

_MESSAGE_START = re.compile(rb"(?:\r\n|\r|\n)+(?=MSH\|)")
_SEGMENT_END = re.compile(rb"\r\n|\n|\r")
ACCEPTED = ("AA", "CA")


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file's bytes, each with CR after every segment."""
    out = []
    for part in _MESSAGE_START.split(data.lstrip(b"\r\n\t \xef\xbb\xbf")):
        segments = [s for s in _SEGMENT_END.split(part) if s.strip()]
        if segments:
            out.append(b"\r".join(segments) + b"\r")
    return out


def _field(segment: bytes, index: int) -> bytes:
    """MSH-``index`` (counted as HL7 does: MSH-1 is the field separator)."""
    parts = segment.split(segment[3:4]) if len(segment) > 3 else []
    return parts[index - 1] if 0 < index - 1 < len(parts) else b""


def _target(to: str) -> tuple[str, int]:
    parsed = urlparse(to if "://" in to else f"mllp://{to}")
    if parsed.scheme != "mllp" or not parsed.hostname:
        raise typer.BadParameter("mllp://HOST:PORT (or HOST:PORT)", param_hint="--to")
    return parsed.hostname, parsed.port or 2575


async def _send_all(messages: list[tuple[str, bytes]], host: str, port: int,
                    timeout: float) -> tuple[int, list[str], int]:
    """(exit status, lines, how many were accepted)."""
    from gateway.hl7.ack import read_ack
    from gateway.hl7.message import HL7ParseError, parse
    from gateway.hl7.mllp import MLLPClient

    client = MLLPClient(host, port, timeout=timeout)
    lines: list[str] = []
    status = accepted = 0
    try:
        for i, (where, raw) in enumerate(messages):
            head = raw.split(b"\r", 1)[0]
            label = (f"{_field(head, 10).decode('latin-1') or '-'} "
                     f"{_field(head, 9).decode('latin-1') or '-'} ({where})")
            try:
                reply = await client.send(raw)
            except Exception as exc:  # noqa: BLE001 - unreachable, reset, timed out
                lines.append(f"{label}: not sent — {type(exc).__name__}: {exc}")
                lines += [f"{w}: not sent" for w, _raw in messages[i + 1:]]
                return 2, lines, accepted
            try:
                ack = parse(reply)
            except HL7ParseError as exc:
                lines.append(f"{label}: unreadable reply ({exc})")
                status = max(status, 1)
                continue
            code, _answered, text = read_ack(ack)
            code = code or "no MSA"
            lines.append(f"{label}: {code}" + (f" {text}" if text else ""))
            if code in ACCEPTED:
                accepted += 1
            else:
                status = max(status, 1)
    finally:
        await client.close()
    return status, lines, accepted


def send_v2(
    files: list[Path] = typer.Argument(..., help="files of HL7 v2 messages (one or several each)"),
    to: str = typer.Option(..., "--to", help="the receiver: mllp://HOST:PORT"),
    timeout: float = typer.Option(10.0, help="seconds to wait for each acknowledgement"),
) -> None:
    """Send HL7 v2 messages over MLLP and print what the receiver acknowledged."""
    host, port = _target(to)
    messages: list[tuple[str, bytes]] = []
    for path in files:
        try:
            found = split_messages(path.read_bytes())
        except OSError as exc:
            typer.echo(f"{path}: cannot read ({exc.strerror or exc})", err=True)
            raise typer.Exit(2) from None
        if not found:
            typer.echo(f"{path}: no HL7 v2 message in it", err=True)
            raise typer.Exit(2)
        messages += [(f"{path}#{k + 1}" if len(found) > 1 else str(path), m)
                     for k, m in enumerate(found)]
    status, lines, accepted = asyncio.run(_send_all(messages, host, port, timeout))
    for line in lines:
        typer.echo(line)
    typer.echo(f"{accepted} of {len(messages)} message(s) accepted by {host}:{port}")
    raise typer.Exit(status)
