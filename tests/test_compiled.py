"""The compiled hot-path modules (setup.py, `make compile`) run only while they match
their source (gateway/compiled.py)."""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

import pytest

import gateway.render
from gateway.compiled import FreshCompiledOnly

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "gateway" / "render" / "fhir.py"
COMPILED = sorted((ROOT / "gateway" / "render").glob("fhir.*.so"))


@pytest.mark.skipif(not COMPILED, reason="built without a C compiler (YIKATONG_COMPILE=0): "
                                         "nothing compiled to guard")
def test_a_compiled_module_older_than_its_source_gives_way_to_the_source():
    finder = FreshCompiledOnly()
    spec = finder.find_spec("gateway.render.fhir", gateway.render.__path__)
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    before = SOURCE.stat()
    try:  # the source edited after the last compile
        os.utime(SOURCE, ns=(before.st_atime_ns, COMPILED[0].stat().st_mtime_ns + 10**9))
        spec = finder.find_spec("gateway.render.fhir", gateway.render.__path__)
        assert isinstance(spec.loader, importlib.machinery.SourceFileLoader)
        assert spec.origin == str(SOURCE)
    finally:
        os.utime(SOURCE, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_modules_outside_the_project_are_left_to_python():
    assert FreshCompiledOnly().find_spec("json", None) is None


def test_every_module_setup_compiles_exists_and_is_a_module():
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and getattr(n.targets[0], "id", "") == "COMPILED")
    for rel in listed:
        assert (ROOT / rel).is_file(), rel
        assert not rel.endswith("__init__.py"), "packages' __init__ install the guard: never compiled"


@pytest.mark.skipif(not COMPILED, reason="built without a C compiler: nothing compiled")
def test_pure_python_on_request(monkeypatch):
    monkeypatch.setenv("YIKATONG_COMPILE", "0")
    spec = FreshCompiledOnly().find_spec("gateway.render.fhir", gateway.render.__path__)
    assert spec.origin == str(SOURCE)
