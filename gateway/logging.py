"""Structured logs with personal data masked.

A processor masks any field whose name says it holds personal data (names, ID and card
numbers, phones, addresses) and any 18-character citizen ID or mobile number appearing
inside free text. Personal data is never logged in the clear, at any level.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

PERSONAL_KEYS = frozenset({
    "name", "patient_name", "phone", "telecom", "address", "citizen_id", "id_number",
    "card", "card_no", "card_number", "value", "identifier", "birth_date", "ssc", "mobile",
})
_CITIZEN_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask(value: Any) -> str:
    """Keep a hint (first and last character), hide the rest."""
    text = str(value)
    if len(text) <= 2:
        return "*" * len(text)
    return f"{text[0]}{'*' * (len(text) - 2)}{text[-1]}"


def mask_text(text: str) -> str:
    text = _CITIZEN_ID.sub(lambda m: f"{m.group(1)}********{m.group(2)[-1]}", text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def mask_personal_data(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if key in PERSONAL_KEYS and value is not None:
            event[key] = mask(value)
        elif isinstance(value, str):
            event[key] = mask_text(value)
    return event


def configure(level: str = "INFO", json: bool = False) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Tracebacks without local variables: locals hold messages and visits (personal data).
    renderer = (structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            mask_personal_data,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
