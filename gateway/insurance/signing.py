"""Request signing, pluggable.

A signer has a ``signtype`` (written into the envelope) and ``sign(data) -> str`` (written
into ``cainfo``); ``data`` is the envelope without ``cainfo`` as canonical JSON (sorted
keys, UTF-8, no spaces) — see :func:`canonical_bytes`.

Built in:
    hmac   HMAC-SHA256 with a shared key (``GATEWAY_INSURANCE_SIGN_KEY``) — the default
    ecdsa  ECDSA P-256 / SHA-256 (``cryptography``), the key a PEM file named by
           ``GATEWAY_INSURANCE_SIGN_KEY`` (``@/path/key.pem``) or generated per process
    none   no signature

Plug-in point: the national SM2/SM3 scheme (or a regional one) is added without touching
this module — ``GATEWAY_INSURANCE_SIGNER=package.module:factory`` names a callable taking
the key setting and returning an object with ``signtype`` and ``sign``; or call
:func:`register` at import time and select it by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson


class Signer(Protocol):
    signtype: str

    def sign(self, data: bytes) -> str: ...


def canonical_bytes(envelope: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in envelope.items() if k != "cainfo"},
                        option=orjson.OPT_SORT_KEYS)


class HmacSigner:
    signtype = "HMAC-SHA256"

    def __init__(self, key: str):
        self.key = key.encode()

    def sign(self, data: bytes) -> str:
        return base64.b64encode(hmac.new(self.key, data, hashlib.sha256).digest()).decode()

    def verify(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature)


class EcdsaSigner:
    signtype = "ECDSA-P256-SHA256"

    def __init__(self, key: str = ""):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if key.startswith("@"):
            self._key = serialization.load_pem_private_key(Path(key[1:]).read_bytes(), None)
        else:
            self._key = ec.generate_private_key(ec.SECP256R1())
        self._ec = ec

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data: bytes) -> str:
        from cryptography.hazmat.primitives import hashes

        return base64.b64encode(self._key.sign(data, self._ec.ECDSA(hashes.SHA256()))).decode()


class NoSigner:
    signtype = ""

    def __init__(self, key: str = ""):
        pass

    def sign(self, data: bytes) -> str:
        return ""


_REGISTRY: dict[str, Callable[[str], Signer]] = {
    "hmac": HmacSigner, "ecdsa": EcdsaSigner, "none": NoSigner,
}


def register(name: str, factory: Callable[[str], Signer]) -> None:
    """Make a signer selectable by name (``GATEWAY_INSURANCE_SIGNER=name``)."""
    _REGISTRY[name] = factory


def signer_for(name: str, key: str) -> Signer:
    if name in _REGISTRY:
        return _REGISTRY[name](key)
    module, sep, attr = name.partition(":")
    if not sep:
        raise ValueError(f"unknown signer {name!r}: use {', '.join(_REGISTRY)} or module:factory")
    return getattr(importlib.import_module(module), attr)(key)


def sign_envelope(envelope: dict[str, Any], signer: Signer) -> dict[str, Any]:
    envelope["signtype"] = signer.signtype
    envelope["cainfo"] = signer.sign(canonical_bytes(envelope)) if signer.signtype else ""
    return envelope
