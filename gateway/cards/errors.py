"""Card errors: one base class with a stable ``code`` and a readable message.

    CardError            code           when
    ├─ NoReader          no-reader      PC/SC is not running, no reader, or the named one is absent
    ├─ NoCard            no-card        no card in the reader within the timeout
    ├─ CardRemoved       card-removed   the card went away during the read
    ├─ UnknownCard       unknown-card   neither an SSC nor a resident health card
    ├─ WrongPin          wrong-pin      VERIFY failed; ``tries_left``
    ├─ CardBlocked       card-blocked   the PIN (or the card) is blocked
    └─ UnexpectedStatus  unexpected-status  any other status word; ``sw``, ``command``

A plain ``CardError`` carries other codes, e.g. ``invalid-id`` (the citizen ID on the card
fails GB 11643), ``auth-failed`` (SAM authentication refused), ``bad-data``, ``pcsc``.
"""

from __future__ import annotations

from gateway.cards.apdu import sw_text


class CardError(Exception):
    code = "card-error"

    def __init__(self, message: str, *, code: str | None = None, reader: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.reader = reader

    def to_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.reader:
            out["reader"] = self.reader
        return out


class NoReader(CardError):
    code = "no-reader"


class NoCard(CardError):
    code = "no-card"


class CardRemoved(CardError):
    code = "card-removed"


class UnknownCard(CardError):
    code = "unknown-card"


class WrongPin(CardError):
    code = "wrong-pin"

    def __init__(self, tries_left: int, *, device: str = "card", reader: str | None = None):
        self.tries_left = tries_left
        self.device = device
        what = "SAM PIN" if device == "sam" else "PIN"
        if tries_left:
            message = f"wrong {what}: {tries_left} tries left"
        else:
            message = f"wrong {what}: no tries left, the {what} is now blocked"
        super().__init__(message, reader=reader)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "tries_left": self.tries_left, "device": self.device}


class CardBlocked(CardError):
    code = "card-blocked"


class UnexpectedStatus(CardError):
    code = "unexpected-status"

    def __init__(self, sw: int, command: str = "command", *, reader: str | None = None):
        self.sw = sw
        self.command = command
        super().__init__(f"{command} failed: {sw_text(sw)}", reader=reader)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "sw": f"{self.sw:04X}", "command": self.command}
