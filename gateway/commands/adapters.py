"""`gateway adapters`: list, scaffold, check and run HIS adapters (adapters/sdk)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="HIS adapters: list, scaffold a new one, check one, run one on files.",
                  no_args_is_help=True)


def _adapter(adapter_id: str):
    from adapters.sdk.registry import get
    from gateway.errors import GatewayError

    try:
        return get(adapter_id)
    except GatewayError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None


@app.command("list")
def list_() -> None:
    """The adapters found in the project and through the `yikatong.adapters` entry points."""
    from adapters.sdk.registry import adapters, broken

    for a in adapters().values():
        m = a.manifest
        typer.echo(f"{m.id:18s} {','.join(m.formats):8s} {','.join(m.versions) or '-':14s} "
                   f"{m.vendor}  [{a.origin}]")
    for where, why in broken().items():
        typer.echo(f"could not load {where}: {why}", err=True)


@app.command("new")
def new(vendor: str = typer.Argument(..., help="the vendor or product, e.g. 'Acme HIS'"),
        adapter_id: Optional[str] = typer.Option(None, "--id", help="adapter id (default: from VENDOR)"),
        directory: Optional[Path] = typer.Option(
            None, "--dir", help="write a separate installable package here (third-party "
            "adapters); default: this project's adapters/")) -> None:
    """Scaffold an adapter: module, mapping, dialect notes, a golden case and a test — it
    passes `gateway adapters check` as written; then make it read your format."""
    from adapters.sdk.scaffold import ScaffoldError, create

    try:
        written = create(vendor, adapter_id=adapter_id, directory=directory)
    except ScaffoldError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("check")
def check(adapter_id: str = typer.Argument(...),
          cases: Optional[Path] = typer.Option(None, help="golden cases folder (default: the adapter's)"),
          update: bool = typer.Option(False, "--update", help="rewrite the expectations (review the diff)")) -> None:
    """Run the adapter on its golden cases and the rule checks; exit 1 on any failure."""
    from adapters.sdk.check import check as run_check
    from adapters.sdk.check import render

    report = run_check(_adapter(adapter_id), cases, update=update)
    typer.echo(render(report))
    raise typer.Exit(0 if report.ok else 1)


@app.command("run")
def run(adapter_id: str = typer.Argument(...),
        files: list[Path] = typer.Argument(..., exists=True, help="input files; several CSV "
                                           "tables (or a folder of them) are read as one export"),
        org: Optional[str] = typer.Option(None, help="the sending organisation"),
        bundle: bool = typer.Option(False, "--bundle", help="print FHIR Bundles, not canonical visits")) -> None:
    """Read vendor files offline: one JSON line per visit (or bundle); errors to stderr with
    their positions. Exit 1 if anything was rejected."""
    import orjson

    from adapters.sdk.check import bundle_of
    from adapters.sdk.maps import AdapterMaps
    from gateway.errors import GatewayError

    adapter = _adapter(adapter_id)
    if len(files) == 1 and files[0].is_dir():
        raw = _zip(sorted(files[0].iterdir()))
    elif len(files) > 1 or files[0].suffix.lower() == ".csv":
        raw = _zip(files)
    else:
        raw = files[0].read_bytes()
    failed = False
    maps = AdapterMaps(adapter.directory / "maps")
    for reading in adapter.read_batch(raw, org):
        if reading.error is not None:
            failed = True
            for issue in reading.error.outcome["issue"]:
                typer.echo(f"{reading.label or 'input'}: {issue['details']['text']}", err=True)
            continue
        if reading.visit is None:
            continue
        if bundle:
            try:
                out = bundle_of(reading.visit, maps)
            except GatewayError as err:
                failed = True
                typer.echo(f"{reading.label}: {err}", err=True)
                continue
        else:
            out = reading.visit.model_dump(mode="json", exclude_none=True)
        typer.echo(orjson.dumps(out).decode())
    raise typer.Exit(1 if failed else 0)


def _zip(paths: list[Path]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in paths:
            if p.is_file():
                zf.writestr(p.name, p.read_bytes())
    return buf.getvalue()
