"""What reading vendor input gives: a canonical visit (with the input fields no rule read)
or an error whose ``expression`` names the vendor's own field and position."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gateway import errors
from gateway.errors import GatewayError
from gateway.visit import OutpatientVisit


@dataclass(frozen=True)
class Reading:
    """One visit read from vendor input, or why it could not be read."""

    visit: OutpatientVisit | None = None
    unread: tuple[str, ...] = ()
    error: GatewayError | None = None
    label: str = ""  # which part of the input: "visit MZ001", "fees.csv row 7"
    event: str = "visit"  # visit | update | merge (HL7 v2 ADT^A08 / ADT^A40)
    merge: dict[str, Any] | None = None


def problems(items: Iterable[tuple[str, str, str]], error_code: str = "2013") -> GatewayError:
    """(vendor location, code, text) → one GatewayError (422), one issue each."""
    issues = [errors.issue(text, where or None, code=code, error_code=error_code)
              for where, code, text in items]
    return GatewayError(errors.outcome(issues), status=422)


def locate(provenance: dict[str, str], canonical: str) -> str | None:
    """The vendor location a canonical path came from (or its nearest mapped parent's)."""
    path = canonical
    while path:
        if path in provenance:
            return provenance[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def build_visit(data: dict[str, Any], provenance: dict[str, str]) -> OutpatientVisit:
    """The canonical visit, or a GatewayError naming vendor fields for each violation."""
    try:
        return OutpatientVisit.model_validate(data)
    except ValidationError as exc:
        items = []
        for err in exc.errors(include_url=False):
            canonical = errors.pydantic_path(err.get("loc", ()))
            where = locate(provenance, canonical) or canonical
            code = "required" if err.get("type") == "missing" else "value"
            items.append((where, code, f"{where}: {errors.pydantic_message(err)} ({canonical})"))
        raise problems(items, error_code="2001") from None


def finish(mapped: Any, label: str, unread: Callable[[], Iterable[str]]) -> Reading:
    """A mapping's result (``adapters.sdk.fields.Mapped``) as a Reading: its issues, the
    canonical model's violations (at vendor positions), or the visit with its unread fields."""
    if mapped.issues:
        return Reading(error=problems(mapped.issues), label=label)
    try:
        visit = build_visit(mapped.data, mapped.provenance)
    except GatewayError as err:
        return Reading(error=err, label=label)
    return Reading(visit=visit, unread=tuple(unread()), label=label)
