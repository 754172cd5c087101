"""Compiled hot-path modules, used only while they match their source.

``make setup`` compiles the modules ``setup.py`` lists with Cython, next to their source
(``fhir.py`` → ``fhir.cpython-311-x86_64-linux-gnu.so``). Python would import such a
module in preference to its ``.py`` — also after the source was edited and before it was
compiled again. This finder, installed by each of the project's packages, imports the
source instead whenever the compiled module is older than it (a checkout or an edit makes
the source newer), so what runs is always what the source says; ``make compile`` (part of
``make setup`` and ``make test``) brings the compiled modules up to date.
``YIKATONG_COMPILE=0`` in the environment runs the source everywhere (pure Python: the
benchmarks' baseline, or to step through the code in a debugger).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

PACKAGES = ("gateway.", "conformance.", "adapters.", "terminology.")


class FreshCompiledOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(PACKAGES):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return spec
        compiled = Path(spec.origin)
        source = compiled.with_name(fullname.rpartition(".")[2] + ".py")
        try:
            stale = source.stat().st_mtime_ns > compiled.stat().st_mtime_ns
        except OSError:
            return spec
        if not stale and os.environ.get("YIKATONG_COMPILE") != "0":
            return spec
        return importlib.util.spec_from_file_location(
            fullname, source, submodule_search_locations=spec.submodule_search_locations)


def install() -> None:
    if not any(isinstance(f, FreshCompiledOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, FreshCompiledOnly())


def compiled_modules() -> list[str]:
    """The project's modules that run compiled in this process (``gateway doctor``, tests)."""
    return sorted(name for name, mod in sys.modules.items()
                  if name.startswith(PACKAGES) and str(getattr(mod, "__file__", "")).endswith(".so"))
