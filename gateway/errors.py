"""One error type, and it *is* a FHIR OperationOutcome.

    GatewayError(outcome)            raised by any stage, carried to the edge
      ├─ builders: invalid(), unauthorized(), forbidden(), not_found(), too_large(), ...
      └─ edges:    http_status(outcome)  → 4xx / 5xx   (API)
                   gateway.hl7.listener  → AA / AE / AR with ERR segments (MLLP; the v2
                                           table 0357 code travels in details.coding)

``expression`` names the place at fault: a FHIRPath (``Bundle.entry[2].resource.gender``),
a canonical-visit path (``patient.cards[0].value``) or an HL7 path (``PID-3.1``).
Error codes are numbered by stage, as FHIR-Converter does: 1xxx ingest, 2xxx parse,
3xxx identify, 4xxx translate, 5xxx render, 6xxx validate, 7xxx route/deliver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Outcome = dict[str, Any]
GATEWAY_ERROR = "https://yikatong.org/fhir/CodeSystem/gateway-error"
V2_0357 = "http://terminology.hl7.org/CodeSystem/v2-0357"

_STATUS_BY_CODE = {
    "security": 401,
    "forbidden": 403,
    "not-found": 404,
    "too-long": 413,
    "conflict": 409,
    "duplicate": 409,
    "throttled": 429,
    "not-supported": 415,
    "transient": 503,
    "exception": 500,
    "timeout": 504,
}


def issue(
    details: str,
    expression: str | Sequence[str] | None = None,
    *,
    code: str = "invalid",
    severity: str = "error",
    error_code: str | None = None,
    v2_code: str | None = None,
) -> dict[str, Any]:
    """One OperationOutcome.issue. ``v2_code``: the HL7 table 0357 code for ACK ERR segments."""
    item: dict[str, Any] = {"severity": severity, "code": code, "details": {"text": details}}
    codings = []
    if error_code:
        codings.append({"system": GATEWAY_ERROR, "code": error_code})
    if v2_code:
        codings.append({"system": V2_0357, "code": v2_code})
    if codings:
        item["details"]["coding"] = codings
    if expression:
        item["expression"] = [expression] if isinstance(expression, str) else list(expression)
    return item


def outcome(issues: Iterable[dict[str, Any]]) -> Outcome:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


class GatewayError(Exception):
    """Any failure the gateway reports. ``status`` overrides the status derived from the outcome."""

    def __init__(self, outcome: Outcome, status: int | None = None):
        self.outcome = outcome
        self.status = status or http_status(outcome)
        first = outcome["issue"][0] if outcome.get("issue") else {}
        super().__init__(first.get("details", {}).get("text", "error"))

    @classmethod
    def of(cls, details: str, expression: str | None = None, *, code: str = "invalid",
           error_code: str | None = None, status: int | None = None,
           v2_code: str | None = None) -> GatewayError:
        return cls(outcome([issue(details, expression, code=code, error_code=error_code,
                                  v2_code=v2_code)]), status)


def http_status(o: Outcome) -> int:
    """The HTTP status for an outcome: the first error issue's code decides; else 400."""
    for item in o.get("issue", ()):
        if item.get("severity") in ("error", "fatal"):
            return _STATUS_BY_CODE.get(item.get("code", ""), 400)
    return 200


def error_code(o: Outcome, system: str = GATEWAY_ERROR, default: str = "other") -> str:
    """The first issue's code in ``system`` (the gateway's own codes, or v2 table 0357)."""
    for item in o.get("issue", ()):
        for coding in item.get("details", {}).get("coding", ()):
            if coding.get("system") == system:
                return coding["code"]
    return default


# ---- builders -------------------------------------------------------------------------

def invalid(details: str, expression: str | None = None, error_code: str | None = None) -> GatewayError:
    return GatewayError.of(details, expression, code="invalid", error_code=error_code)


def unauthorized(details: str = "missing or invalid API key") -> GatewayError:
    return GatewayError.of(details, code="security", error_code="1001")


def forbidden(details: str, expression: str | None = None) -> GatewayError:
    return GatewayError.of(details, expression, code="forbidden", error_code="1003")


def not_found(details: str) -> GatewayError:
    return GatewayError.of(details, code="not-found")


def too_large(limit: int) -> GatewayError:
    return GatewayError.of(f"request body exceeds the limit of {limit} bytes", code="too-long",
                           error_code="1013")


def unavailable(details: str) -> GatewayError:
    return GatewayError.of(details, code="transient", error_code="7001")


def pydantic_path(loc: Sequence[Any], root: str | None = None) -> str:
    """``('patient', 'cards', 0, 'value')`` → ``patient.cards[0].value``."""
    parts: list[str] = [root] if root else []
    for part in loc:
        if isinstance(part, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{part}]"
            else:
                parts.append(f"[{part}]")
        elif part and not str(part).startswith(("function-", "json-or-python")):
            parts.append(str(part))
    return ".".join(parts)


def pydantic_message(err: dict[str, Any]) -> str:
    """A pydantic error's message without pydantic's "Value error, " prefix."""
    return err.get("msg", "invalid value").removeprefix("Value error, ")


def from_pydantic(errors: Iterable[dict[str, Any]], root: str | None = None,
                  error_code: str = "2001") -> GatewayError:
    """A pydantic ValidationError's errors → one issue each, expression = the field path."""
    issues = []
    for err in errors:
        msg = pydantic_message(err)
        path = pydantic_path(err.get("loc", ()), root)
        code = "required" if err.get("type") == "missing" else (
            "structure" if err.get("type") == "extra_forbidden" else "value")
        text = f"{path}: {msg}" if path else msg
        issues.append(issue(text, path or None, code=code, error_code=error_code))
    return GatewayError(outcome(issues), status=422)
