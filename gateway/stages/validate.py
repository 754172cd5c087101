"""Validate: every rendered output is checked; errors reject the visit and nothing is forwarded."""

from __future__ import annotations

from conformance.validator import validate_bundle
from gateway.envelope import Envelope
from gateway.errors import GatewayError, outcome


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:  # an identity-only message (ADT^A40): nothing to translate or render
        return env
    issues = validate_bundle(env.bundle, shape_cache=ctx.settings.validation_shape_cache)
    errors = [i for i in issues if i["severity"] in ("error", "fatal")]
    if errors:
        raise GatewayError(outcome(issues), status=422)
    return env.with_(warnings=env.warnings + tuple(issues))
