"""`gateway validate FILE... [--profile URL] [--format text|json] [--full]`: validate FHIR
resources offline against the core definitions and the project's profiles (``--full``:
every R4 resource type, from the full package in the cache).

Text: one line per issue (severity, FHIRPath, message) and a summary line per file.
JSON: the OperationOutcome (one per line when several files are given).
Exit status: 0 no errors, 1 errors found, 2 a file could not be read as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import orjson
import typer


def format_text(name: str, issues: list[dict]) -> list[str]:
    lines = []
    for i in issues:
        where = ", ".join(i.get("expression", ())) or "-"
        lines.append(f"{i['severity']:<8} {where}  {i['details']['text']}")
    counts = {s: sum(1 for i in issues if i["severity"] == s)
              for s in ("fatal", "error", "warning", "information")}
    errors = counts["fatal"] + counts["error"]
    lines.append(f"{name}: {'FAIL' if errors else 'ok'} — {errors} error(s), "
                 f"{counts['warning']} warning(s), {counts['information']} information")
    return lines


def validate(
    files: list[Path] = typer.Argument(..., help="FHIR resources as JSON files"),
    profile: Optional[str] = typer.Option(None, help="validate against this profile URL"),
    format: str = typer.Option("text", "--format", help="text | json"),  # noqa: A002
    full: bool = typer.Option(False, "--full", help="load every R4 definition (the full "
                              "package, fetched once into .cache/fhir) to validate any type"),
) -> None:
    """Validate FHIR resources against the R4 core definitions and the project's profiles."""
    from conformance.validator import Validator, operation_outcome, validator

    if format not in ("text", "json"):
        typer.echo(f"--format must be text or json, not {format!r}", err=True)
        raise typer.Exit(2)
    if full:
        from conformance import corepkg

        try:
            checker = Validator(package=corepkg.fetch())
        except Exception as exc:  # noqa: BLE001 - no network, no cache: say so
            typer.echo(f"the full R4 package is not available: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        checker = validator()
    failed = unreadable = False
    for path in files:
        try:
            resource = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            typer.echo(f"{path}: cannot read as JSON: {exc}", err=True)
            unreadable = True
            continue
        issues = checker.validate(resource, profile)
        failed |= any(i["severity"] in ("error", "fatal") for i in issues)
        if format == "json":
            option = orjson.OPT_INDENT_2 if len(files) == 1 else 0
            typer.echo(orjson.dumps(operation_outcome(issues), option=option).decode())
        else:
            for line in format_text(str(path), issues):
                typer.echo(line)
    raise typer.Exit(2 if unreadable else 1 if failed else 0)
