"""`gateway adapters new` writes an adapter that passes `gateway adapters check` as written;
an adapter installed as a separate package is found through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapters.sdk.scaffold import adapter_id_for
from tests.support import ROOT


def gateway(*args: str, path: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def install(project: Path, site: Path) -> None:
    """pip-install the scaffolded package into ``site``, offline (no index, no isolation)."""
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-index", "--no-build-isolation", "--target", str(site),
                          str(project)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_scaffold_check_and_entry_point_discovery(tmp_path):
    assert adapter_id_for("Acme HIS 7") == "acme_his_7"
    project = tmp_path / "acme"
    out = gateway("adapters", "new", "Acme HIS", "--id", "acme_his", "--dir", str(project))
    assert out.returncode == 0, out.stderr
    for rel in ("pyproject.toml", "acme_his/__init__.py", "acme_his/mapping.toml",
                "acme_his/DIALECT.md", "acme_his/golden/sample/input.json",
                "acme_his/golden/sample/expected.visits.json", "tests/test_acme_his.py"):
        assert (project / rel).exists(), rel
    assert '[project.entry-points."yikatong.adapters"]' in (project / "pyproject.toml").read_text()

    site = tmp_path / "site"
    install(project, site)
    listed = gateway("adapters", "list", path=site)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("acme_his"))
    assert "[yikatong-adapter-acme-his]" in line and "Acme HIS" in line

    checked = gateway("adapters", "check", "acme_his", path=site)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed: 2 case(s)" in checked.stdout

    ran = gateway("adapters", "run", "acme_his",
                  str(project / "acme_his" / "golden" / "sample" / "input.json"), path=site)
    assert ran.returncode == 0 and '"visit_no":"MZ0001"' in ran.stdout

    # a broken expectation fails the check with a non-zero exit and says which
    expected = site / "acme_his" / "golden" / "sample" / "expected.visits.json"
    expected.write_text(expected.read_text().replace("张伟", "李四"))
    failed = gateway("adapters", "check", "acme_his", path=site)
    assert failed.returncode == 1
    assert "FAIL sample" in failed.stdout and "expected.visits.json differs" in failed.stdout


def test_scaffold_refuses_a_taken_id(tmp_path):
    out = gateway("adapters", "new", "HengTong", "--id", "hengtong_xml", "--dir", str(tmp_path))
    assert out.returncode == 1 and "exists already" in out.stderr
