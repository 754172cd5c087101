"""Parse for HL7 v2: the message → the canonical visit through the declarative rules in
``adapters/hl7v2/`` (see its FIELDS.md), or a v2 dialect adapter's overlay of them when the
sender is configured for one. Errors name HL7 paths (``PID-3[2].1``, ``ZFE[2]-5``)."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from adapters.hl7v2.engine import UnsupportedMessage, map_message
from adapters.sdk.registry import v2_mapper
from gateway import errors
from gateway.envelope import Envelope
from gateway.visit import OutpatientVisit

_V2_CODE = {"required": "101", "code-invalid": "103", "too-long": "104"}


def run(env: Envelope, ctx) -> Envelope:
    msg = env.message
    try:
        mapper = v2_mapper(env.adapter) if env.adapter else map_message
        mapped = mapper(msg, sender_org=env.sender.org)
    except UnsupportedMessage as exc:
        raise errors.GatewayError.of(str(exc), "MSH-9", code="not-supported", error_code="2012",
                                     v2_code="200", status=400) from None
    if mapped.issues:
        raise errors.GatewayError(errors.outcome(
            errors.issue(text, where, code="required" if code == "101" else "value",
                         error_code="2013", v2_code=code)
            for where, code, text in mapped.issues), status=422)
    data = mapped.data
    if mapped.rule.kind == "merge":
        return env.with_(event="merge", merge=data, unread=tuple(mapped.unread))
    data["org"] = {"code": env.sender.org, "name": env.sender.key_name or env.sender.org}
    try:
        visit = OutpatientVisit.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            canonical = errors.pydantic_path(err.get("loc", ()))
            where = mapped.hl7_path(canonical) or canonical or None
            msg_text = errors.pydantic_message(err)
            code = "required" if err.get("type") == "missing" else "value"
            issues.append(errors.issue(f"{where}: {msg_text} ({canonical})", where, code=code,
                                       error_code="2001", v2_code=_V2_CODE.get(code, "102")))
        raise errors.GatewayError(errors.outcome(issues), status=422) from None
    event = "update" if mapped.rule.kind == "update" else "visit"
    # the JSON the visit was read from (as for a canonical JSON submission; decimals as
    # strings, every digit kept): it reads back as the same visit, and costs a tenth of
    # serialising the model (the settlement copy)
    return env.with_(visit=visit, event=event, unread=tuple(mapped.unread),
                     visit_json=orjson.dumps(data, default=str))
