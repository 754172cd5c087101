"""The adapter SDK: one module per HIS dialect turns the vendor's input into the canonical
:class:`gateway.visit.OutpatientVisit`.

    MANIFEST = Manifest(id=..., vendor=..., formats=(...), versions=(...), contact=...)
    def to_canonical(raw: bytes, org: str | None = None) -> OutpatientVisit

Field mappings are data (``fields.py``: a TOML file beside the module with a fixed
vocabulary); code that is more than mapping is a named function of the module. Adapters
are discovered in the ``adapters`` package and through the ``yikatong.adapters`` entry
points (``registry.py``); ``gateway adapters check ID`` runs the check kit (``check.py``);
``gateway adapters new VENDOR`` writes a new one (``scaffold.py``).
"""

from adapters.sdk.fields import Mapping, Problem, SpecError, apply, load
from adapters.sdk.manifest import Manifest
from adapters.sdk.reading import Reading, build_visit, problems
from adapters.sdk.registry import Adapter, adapters, get

__all__ = ["Adapter", "Manifest", "Mapping", "Problem", "Reading", "SpecError", "adapters",
           "apply", "build_visit", "get", "load", "problems"]
