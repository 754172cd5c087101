"""Render: the canonical visit → every destination's format (here: a FHIR R4 transaction Bundle)."""

from __future__ import annotations

from gateway.envelope import Envelope
from gateway.render.fhir import render_bundle


def run(env: Envelope, ctx) -> Envelope:
    if env.visit is None:  # an identity-only message (ADT^A40): nothing to translate or render
        return env
    return env.with_(bundle=render_bundle(env))
