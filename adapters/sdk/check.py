"""The adapter check kit: run an adapter on its golden cases and on the rule checks.

A golden case is a folder (``tests/golden/adapters/<id>/<case>/``, or ``golden/<case>/``
inside a third-party adapter package)::

    input.<ext> | input/     the vendor's input (a folder of table files is zipped)
    expected.visits.json     the canonical visits it reads to (a list)
    expected.errors.json     what it rejects, with the vendor positions (a list)
    unread.txt               input fields the mapping did not read

For every case: the expectations match (``update=True`` rewrites them); reading twice
gives the same output; every visit survives canonical → JSON → canonical; and each goes
through the gateway's offline convert pipeline to a FHIR Bundle that passes the rule
checks (``rules.py``).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters.sdk.maps import AdapterMaps
from adapters.sdk.reading import Reading
from adapters.sdk.registry import Adapter
from adapters.sdk.rules import BUNDLE_RULES
from gateway.envelope import Envelope
from gateway.errors import GatewayError
from gateway.jsonio import dumps
from gateway.pipeline import CONVERT_PIPELINE, Context, run
from gateway.settings import get_settings
from gateway.visit import OutpatientVisit

ROOT = Path(__file__).resolve().parents[2]
CLOCK = datetime(2026, 3, 1, 2, 0, 0, tzinfo=timezone.utc)


def case_input(case: Path) -> bytes:
    """The case's input bytes; a folder ``input/`` becomes a zip of its files (sorted, fixed
    times, so the bytes are the same every run)."""
    folder = case / "input"
    if folder.is_dir():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                info = zipfile.ZipInfo(path.name, date_time=(2026, 1, 1, 0, 0, 0))
                zf.writestr(info, path.read_bytes())
        return buf.getvalue()
    files = sorted(case.glob("input.*"))
    if not files:
        raise FileNotFoundError(f"{case}: no input.* file or input/ folder")
    return files[0].read_bytes()


def cases_dir(adapter: Adapter) -> Path:
    own = adapter.directory / "golden"
    return own if own.is_dir() else ROOT / "tests" / "golden" / "adapters" / adapter.id


def _errors_json(readings: list[Reading]) -> list[dict[str, Any]]:
    return [{"label": r.label, "issues": [
        {"expression": i.get("expression", []), "details": i["details"]["text"]}
        for i in r.error.outcome["issue"]]} for r in readings if r.error is not None]


def _visits_json(readings: list[Reading]) -> list[dict[str, Any]]:
    out = []
    for r in readings:
        if r.visit is not None:
            out.append(r.visit.model_dump(mode="json", exclude_none=True))
        elif r.merge is not None:
            out.append({"event": "merge", "merge": r.merge})
    return out


def _pretty(data: Any) -> bytes:
    return dumps(data, pretty=True) + b"\n"


@dataclass
class CaseResult:
    name: str
    visits: int = 0
    rejected: int = 0
    unread: int = 0
    failures: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def check(self, rule: str, problems: list[str]) -> None:
        if problems:
            self.failures += [f"{rule}: {p}" for p in problems]
        elif rule not in self.passed:
            self.passed.append(rule)


@dataclass
class Report:
    adapter: Adapter
    cases: list[CaseResult]
    problems: list[str] = field(default_factory=list)  # adapter-wide (no cases, ...)

    @property
    def ok(self) -> bool:
        return not self.problems and all(not c.failures for c in self.cases)


def _golden(case: Path, name: str, actual: bytes, update: bool, result: CaseResult,
            rule: str) -> None:
    path = case / name
    if update:
        path.write_bytes(actual)
    if not path.exists():
        result.check(rule, [f"no {name}; run `gateway adapters check ID --update` and review it"])
    elif path.read_bytes() != actual:
        result.check(rule, [f"{name} differs from what the adapter gives now"])
    else:
        result.check(rule, [])


def bundle_of(visit: OutpatientVisit, maps: AdapterMaps) -> dict[str, Any]:
    """The gateway's offline convert pipeline, from the visit's canonical JSON."""
    env = Envelope(tracking_id="check", received_at=CLOCK, raw=visit.to_json())
    ctx = Context(settings=get_settings(), local_maps=maps)
    return run(CONVERT_PIPELINE, env, ctx).bundle


def run_case(adapter: Adapter, case: Path, *, update: bool = False) -> CaseResult:
    result = CaseResult(case.name)
    try:
        raw = case_input(case)
        readings = adapter.read_batch(raw)
        again = adapter.read_batch(raw)
    except Exception as exc:  # noqa: BLE001 - a crash is the adapter's failure, reported
        result.failures.append(f"the adapter crashed: {type(exc).__name__}: {exc}")
        return result
    result.visits = sum(r.visit is not None for r in readings)
    result.rejected = sum(r.error is not None for r in readings)
    visits, errors = _visits_json(readings), _errors_json(readings)
    unread = sorted({u for r in readings for u in r.unread})
    result.unread = len(unread)
    _golden(case, "expected.visits.json", _pretty(visits), update, result, "golden visits")
    _golden(case, "expected.errors.json", _pretty(errors), update, result, "golden errors")
    _golden(case, "unread.txt", ("\n".join(unread) + "\n").encode() if unread else b"", update,
            result, "unread fields listed")
    result.check("stable (read twice, same output)",
                 [] if (_visits_json(again), _errors_json(again)) == (visits, errors)
                 else ["reading the same input twice gave different output"])
    maps = AdapterMaps(adapter.directory / "maps")
    for r in readings:
        if r.visit is None:
            continue
        label = r.label or r.visit.visit_no
        back = OutpatientVisit.model_validate_json(r.visit.to_json())
        result.check("round trip (canonical → JSON → canonical)",
                     [] if back == r.visit else [f"{label}: the visit changes through JSON"])
        try:
            bundle = bundle_of(r.visit, maps)
        except GatewayError as err:
            result.check("convert pipeline", [f"{label}: {i['details']['text']}"
                                              for i in err.outcome["issue"]])
            continue
        result.check("convert pipeline", [])
        for rule, fn in BUNDLE_RULES:
            result.check(rule, [f"{label}: {p}" for p in fn(bundle)])
    return result


def check(adapter: Adapter, cases: Path | None = None, *, update: bool = False) -> Report:
    folder = cases or cases_dir(adapter)
    report = Report(adapter, [])
    dirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not dirs:
        report.problems.append(f"no golden cases in {folder}")
    for case in dirs:
        report.cases.append(run_case(adapter, case, update=update))
    if dirs and not any(c.visits for c in report.cases):
        report.problems.append("no case reads to a visit: add at least one good input")
    return report


def render(report: Report) -> str:
    m = report.adapter.manifest
    lines = [f"adapter {m.id} — {m.vendor} ({', '.join(m.formats)}"
             f"{'; versions ' + ', '.join(m.versions) if m.versions else ''}) from {report.adapter.origin}"]
    for c in report.cases:
        state = "ok  " if not c.failures else "FAIL"
        lines.append(f"  {state} {c.name}: {c.visits} visit(s), {c.rejected} rejected, "
                     f"{c.unread} unread field(s)")
        lines += [f"       ✗ {f}" for f in c.failures]
        if not c.failures:
            lines.append(f"       ✓ {', '.join(c.passed)}")
    lines += [f"  FAIL {p}" for p in report.problems]
    failed = sum(bool(c.failures) for c in report.cases) + len(report.problems)
    lines.append(f"{'passed' if report.ok else 'FAILED'}: {len(report.cases)} case(s)"
                 + (f", {failed} failing" if failed else ""))
    return "\n".join(lines)
