"""`gateway adapters new VENDOR`: write an adapter that passes the check as written — the
module, its mapping, its dialect notes, golden cases and a test — from ``templates/``.

Into this project (default)::

    adapters/<id>/{__init__.py, mapping.toml, DIALECT.md}
    tests/golden/adapters/<id>/{sample, missing_visit_no}/
    tests/test_adapters_<id>.py

Or, with ``directory``, as a separate installable package (found through the
``yikatong.adapters`` entry point once installed)::

    <dir>/pyproject.toml
    <dir>/<id>/{__init__.py, mapping.toml, DIALECT.md, golden/{sample, missing_visit_no}/}
    <dir>/tests/test_<id>.py
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from string import Template

from adapters.sdk.check import ROOT, check
from adapters.sdk.manifest import _ID
from adapters.sdk.registry import Adapter, adapters

TEMPLATES = Path(__file__).parent / "templates"


class ScaffoldError(ValueError):
    pass


def adapter_id_for(vendor: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", vendor.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = f"his_{slug}"
    return slug[:40]


def _render(name: str, **values: str) -> str:
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def create(vendor: str, *, adapter_id: str | None = None, directory: Path | None = None) -> list[Path]:
    aid = adapter_id or adapter_id_for(vendor)
    if not _ID.match(aid or ""):
        raise ScaffoldError(f"cannot make an adapter id from {vendor!r}; give one with --id "
                            "(lower_snake_case)")
    if aid in adapters():
        raise ScaffoldError(f"an adapter {aid!r} exists already")
    values = {"id": aid, "vendor": vendor.replace('"', "'"),
              "dist": f"yikatong-adapter-{aid.replace('_', '-')}"}
    if directory is None:
        package = ROOT / "adapters" / aid
        golden = ROOT / "tests" / "golden" / "adapters" / aid
        test = ROOT / "tests" / f"test_adapters_{aid}.py"
        extra: dict[Path, str] = {}
    else:
        directory = directory.resolve()
        package = directory / aid
        golden = package / "golden"
        test = directory / "tests" / f"test_{aid}.py"
        extra = {directory / "pyproject.toml": _render("pyproject.toml.tmpl", **values)}
    if package.exists():
        raise ScaffoldError(f"{package} exists already")
    sample = _render("sample.json.tmpl", **values)
    files = {
        package / "__init__.py": _render("module.py.tmpl", **values),
        package / "mapping.toml": _render("mapping.toml.tmpl", **values),
        package / "DIALECT.md": _render("DIALECT.md.tmpl", **values),
        golden / "sample" / "input.json": sample,
        golden / "missing_visit_no" / "input.json": sample.replace('  "visitNo": "MZ0001",\n', ""),
        test: _render("test.py.tmpl", **values),
        **extra,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _write_expectations(aid, package, golden)
    return sorted(files) + sorted(p for p in golden.rglob("*") if p.is_file() and p not in files)


def _write_expectations(aid: str, package: Path, golden: Path) -> None:
    """Run the new adapter once on its cases to write the expected files."""
    name = f"adapters.{aid}" if package.parent == ROOT / "adapters" else aid
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        report = check(Adapter(module.MANIFEST, module, "scaffold"), golden, update=True)
    finally:
        sys.modules.pop(name, None)
    if not report.ok:
        from adapters.sdk.check import render

        raise ScaffoldError("the scaffold does not pass its own check:\n" + render(report))
