"""Ingest: size limit and authentication. The sender's organisation comes from its key."""

from __future__ import annotations

from gateway import errors
from gateway.envelope import Envelope


def run(env: Envelope, ctx) -> Envelope:
    limit = ctx.settings.max_body_bytes
    if len(env.raw) > limit:
        raise errors.too_large(limit)
    if not env.credentials:
        raise errors.unauthorized("no API key: send `Authorization: Bearer <key>`")
    sender = ctx.keys.lookup(env.credentials)
    if sender is None:
        raise errors.unauthorized("the API key is not known or has been revoked")
    return env.with_(sender=sender)
