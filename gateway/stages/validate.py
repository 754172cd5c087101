"""Validate: every rendered output is checked against its profile (the visit Bundle against
``yikatong-visit-bundle``, see conformance/validator.py); errors reject the visit with the
OperationOutcome and nothing is forwarded."""

from __future__ import annotations

from conformance.validator import validate_bundle
from gateway.envelope import Envelope
from gateway.errors import GatewayError, outcome


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:  # an identity-only message (ADT^A40): nothing to translate or render
        return env
    errors = validate_bundle(env.bundle, memo=ctx.settings.validation_memo)
    if errors:
        raise GatewayError(outcome(errors), status=422)
    return env
