"""Parse: native input → the canonical outpatient visit.

Canonical JSON is parsed here; HIS dialects plug in as adapters (``adapters/``). A
hospital may only submit visits of its own organisation.
"""

from __future__ import annotations

from pydantic import ValidationError

from gateway import errors
from gateway.envelope import Envelope
from gateway.visit import OutpatientVisit


def run(env: Envelope, ctx) -> Envelope:
    ctype = env.content_type.split(";")[0].strip().lower()
    if ctype not in ("application/json", "application/x-ndjson", ""):
        raise errors.GatewayError.of(
            f"content type {ctype!r} is not accepted here; send application/json",
            code="not-supported", error_code="2002")
    try:
        visit = OutpatientVisit.model_validate_json(env.raw)
    except ValidationError as exc:
        errs = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errs):
            msg = next(e for e in errs if e["type"] == "json_invalid")["ctx"]["error"]
            raise errors.GatewayError.of(f"malformed JSON: {msg}", code="structure",
                                         error_code="2000", status=400) from None
        raise errors.from_pydantic(errs) from None
    if env.sender is not None and visit.org.code != env.sender.org:
        raise errors.forbidden(
            f"this API key belongs to organisation {env.sender.org!r}; it may not submit "
            f"visits of {visit.org.code!r}", "org.code")
    return env.with_(visit=visit, visit_json=env.raw)
