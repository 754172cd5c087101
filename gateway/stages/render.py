"""Render: the canonical visit → every destination's format (here: a FHIR R4 transaction Bundle)."""

from __future__ import annotations

from gateway.envelope import Envelope
from gateway.render.fhir import render_bundle


def run(env: Envelope, ctx) -> Envelope:
    return env.with_(bundle=render_bundle(env))
