"""Finding adapters: every module of the ``adapters`` package that declares a ``MANIFEST``,
and every module installed under the entry-point group ``yikatong.adapters``.

An adapter module declares ``MANIFEST`` and ``to_canonical(raw, org=None)``; it may also
declare ``read(raw, org=None) -> Reading`` (the visit and the input fields it did not
read), ``read_batch(raw, org=None) -> list[Reading]`` (many visits in one input) and, for
HL7 v2 dialects, ``map_message(msg, sender_org=...)`` (the MLLP path).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from adapters.sdk.manifest import Manifest
from adapters.sdk.reading import Reading
from gateway.errors import GatewayError

GROUP = "yikatong.adapters"
_SKIP = {"sdk"}


@dataclass(frozen=True)
class Adapter:
    manifest: Manifest
    module: ModuleType
    origin: str = "adapters"  # "adapters" (this project) or the distribution that ships it

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def directory(self) -> Path:
        return Path(self.module.__file__).parent

    def to_canonical(self, raw: bytes, org: str | None = None):
        return self.module.to_canonical(raw, org=org)

    def read(self, raw: bytes, org: str | None = None) -> Reading:
        if hasattr(self.module, "read"):
            return self.module.read(raw, org=org)
        try:
            return Reading(visit=self.module.to_canonical(raw, org=org))
        except GatewayError as err:
            return Reading(error=err)

    def read_batch(self, raw: bytes, org: str | None = None) -> list[Reading]:
        if hasattr(self.module, "read_batch"):
            return list(self.module.read_batch(raw, org=org))
        return [self.read(raw, org=org)]


@dataclass
class Found:
    adapters: dict[str, Adapter] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # where → why it could not load


def _adopt(found: Found, module: ModuleType, origin: str, where: str) -> None:
    manifest = getattr(module, "MANIFEST", None)
    if manifest is None:
        return
    if not isinstance(manifest, Manifest) or not callable(getattr(module, "to_canonical", None)):
        found.broken[where] = "MANIFEST must be an adapters.sdk.Manifest and to_canonical a function"
        return
    if manifest.id in found.adapters:
        found.broken[where] = f"adapter id {manifest.id!r} is already taken by {found.adapters[manifest.id].module.__name__}"
        return
    found.adapters[manifest.id] = Adapter(manifest, module, origin)


def discover() -> Found:
    """Scan the ``adapters`` package, then the entry points. A module that fails to import
    is reported, never fatal."""
    import adapters

    found = Found()
    for info in sorted(pkgutil.iter_modules(adapters.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        name = f"adapters.{info.name}"
        try:
            _adopt(found, importlib.import_module(name), "adapters", name)
        except Exception as exc:  # noqa: BLE001 - one broken adapter must not hide the others
            found.broken[name] = f"{type(exc).__name__}: {exc}"
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        where = f"{ep.name} = {ep.value}"
        try:
            module = ep.load()
            origin = ep.dist.name if ep.dist else "entry point"
            _adopt(found, module, origin, where)
        except Exception as exc:  # noqa: BLE001
            found.broken[where] = f"{type(exc).__name__}: {exc}"
    return found


_FOUND: Found | None = None


def adapters() -> dict[str, Adapter]:
    global _FOUND
    if _FOUND is None:
        _FOUND = discover()
    return _FOUND.adapters


def broken() -> dict[str, str]:
    adapters()
    return _FOUND.broken if _FOUND else {}


def get(adapter_id: str) -> Adapter:
    """The adapter with this id; a GatewayError (404-like, listing the known ids) if none."""
    found = adapters().get(adapter_id)
    if found is None:
        from gateway import errors

        raise errors.GatewayError.of(
            f"no adapter {adapter_id!r}; known: {', '.join(sorted(adapters())) or 'none'}",
            "adapter", code="not-supported", error_code="2020", status=400)
    return found


def v2_mapper(adapter_id: str) -> Any:
    """The HL7 v2 mapping function of a v2 dialect adapter (for the MLLP path)."""
    adapter = get(adapter_id)
    fn = getattr(adapter.module, "map_message", None)
    if fn is None:
        from gateway import errors

        raise errors.GatewayError.of(
            f"adapter {adapter_id!r} does not read HL7 v2", "MSH-4", code="not-supported",
            error_code="2020", v2_code="207", status=400)
    return fn
