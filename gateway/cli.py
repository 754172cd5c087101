"""The `gateway` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from gateway.settings import Settings, get_settings

app = typer.Typer(help="一卡通 interoperability gateway.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
keys_app = typer.Typer(help="Hospital API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organisations: names, HL7 facility aliases, default charsets.",
                       no_args_is_help=True)
peers_app = typer.Typer(help="Reference peers for development and conformance runs.",
                        no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
app.add_typer(peers_app, name="peers")
from gateway.commands.adapters import app as adapters_app  # noqa: E402

app.add_typer(adapters_app, name="adapters")


@app.callback()
def _main() -> None:
    """Logs go to stderr, so a command's output (a key, a bundle, JSON lines) stays clean."""
    from gateway.logging import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_json)


def _settings(**overrides) -> Settings:
    base = get_settings()
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=changes) if changes else base


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="bind address (default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="API port (default 8080)"),
    with_peers: bool = typer.Option(False, "--with-peers", help="also run the reference peers"),
    peer_port: int = typer.Option(8090, help="port of the reference regional platform"),
    demo_org: Optional[str] = typer.Option(None, help="register a demo hospital with this code"),
    processes: Optional[int] = typer.Option(None, help="API worker processes (default 1)"),
    mllp_port: Optional[int] = typer.Option(
        None, help="also listen for HL7 v2 over MLLP on this port (2575 is usual)"),
) -> None:
    """Run the gateway API with its delivery workers (embedded Redis unless GATEWAY_REDIS_URL)."""
    from gateway.serve import serve as run_serve

    run_serve(_settings(host=host, port=port, processes=processes, mllp_port=mllp_port),
              with_peers=with_peers, peer_port=peer_port, demo_org=demo_org)


@app.command()
def worker() -> None:
    """Run delivery workers only (scale them out beside API-only gateways)."""
    from gateway.serve import run_workers

    run_workers(_settings())


@keys_app.command("create")
def keys_create(org: str = typer.Option(..., help="organisation code"),
                name: str = typer.Option("", help="organisation name"),
                role: str = typer.Option("hospital", help="hospital | admin (merges, card status)")) -> None:
    """Create an API key for a hospital and print it (it is shown only once)."""
    import redis

    from gateway.apikeys import KeyStore
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        r = redis.Redis.from_url(url)
        key = KeyStore(r).create(org, name, role)
        r.close()
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, organisations, creation times; never the keys)."""
    import redis

    from gateway.apikeys import KeyStore
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        for item in KeyStore(redis.Redis.from_url(url)).list():
            typer.echo(f"{item['id']}  {item.get('org', '')}  {item.get('name', '')}  {item.get('created', '')}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="the id shown by `keys list`")) -> None:
    """Revoke an API key."""
    import redis

    from gateway.apikeys import KeyStore
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        if not KeyStore(redis.Redis.from_url(url)).revoke(key_id):
            typer.echo(f"no key with id {key_id}", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


cards_app = typer.Typer(help="Card status (active, frozen, lost, cancelled).", no_args_is_help=True)
app.add_typer(cards_app, name="cards")
card_app = typer.Typer(help="Read cards through PC/SC; run virtual cards.", no_args_is_help=True)
app.add_typer(card_app, name="card")


@card_app.command("read")
def card_read(
    reader: Optional[str] = typer.Option(None, help="reader name (default: the first with a card)"),
    sam_reader: Optional[str] = typer.Option(None, help="reader holding the SAM (health card EF06)"),
    pin: Optional[str] = typer.Option(None, help="card PIN, when the card asks for one"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    timeout: float = typer.Option(5.0, help="seconds to wait for a card"),
) -> None:
    """Read a social security card or resident health card: identifiers and holder."""
    import orjson

    from gateway.cards.errors import CardError
    from gateway.cards.reader import read_card

    try:
        data = read_card(reader, sam_reader=sam_reader, timeout=timeout, pin=pin)
    except CardError as exc:
        if as_json:
            typer.echo(orjson.dumps(exc.to_dict()).decode())
        else:
            typer.echo(f"error ({exc.code}): {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(orjson.dumps({
            "card_type": data.card_type,
            "identifiers": [i.model_dump(mode="json", exclude_none=True) for i in data.identifiers],
            "holder": data.holder, "card": data.card}, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(f"{data.card_type} card in {data.card.get('reader', '?')}")
    for ident in data.identifiers:
        typer.echo(f"  {ident.type.value:14s} {ident.value}")
    for key, value in data.holder.items():
        typer.echo(f"  {key:14s} {value}")


@card_app.command("emulate")
def card_emulate(
    card_type: str = typer.Option("ssc", "--type", help="ssc | health | sam"),
    data: Optional[Path] = typer.Option(None, help="JSON file with the holder's data"),
    port: Optional[int] = typer.Option(None, help="vpcd port (default 35963; 35964 for a SAM)"),
) -> None:
    """Run a virtual card on the vpcd reader (pcscd + vsmartcard-vpcd) until stopped."""
    from gateway.cards.emulator import main as emulate

    argv = ["--type", card_type]
    if data:
        argv += ["--data", str(data)]
    if port:
        argv += ["--port", str(port)]
    emulate(argv)


@cards_app.command("set-status")
def cards_set_status(
    card_type: str = typer.Option(..., "--type", help="citizen_id, ssc_card_no, health_card, hospital_card, ..."),
    value: str = typer.Option(..., help="the card number"),
    status: str = typer.Option(..., help="active | frozen | lost | cancelled"),
    issuer: Optional[str] = typer.Option(None, help="the issuing hospital, for hospital cards"),
    effective: Optional[str] = typer.Option(None, help="YYYY-MM-DD (default today)"),
    reason: str = typer.Option("", help="why"),
    by: str = typer.Option("cli", help="who makes the change"),
) -> None:
    """Set a card's status; visits with lost or frozen cards are flagged, cancelled refused."""
    from datetime import date

    import redis

    from gateway.identifiers import CardType, card_system
    from gateway.identity.card_status import CardStatusStore
    from gateway.redis_embedded import redis_url

    try:
        system = card_system(CardType(card_type), issuer)
        when = date.fromisoformat(effective) if effective else None
        with redis_url(_settings()) as url:
            st = CardStatusStore(redis.Redis.from_url(url)).set(
                system, value, status, effective=when, reason=reason, who=by)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{card_type} {value}: {st.status} from {st.effective}")


term_app = typer.Typer(help="Code maps: import hospital maps, report gaps, release held visits.",
                       no_args_is_help=True)
app.add_typer(term_app, name="terminology")


def _pipeline_context(url: str):
    import redis

    from gateway.identity.card_status import CardStatusStore
    from gateway.identity.empi import Empi
    from gateway.pipeline import Context
    from terminology.local_maps import LocalMaps

    r = redis.Redis.from_url(url)
    return Context(settings=_settings(), redis=r, empi=Empi(r), card_status=CardStatusStore(r),
                   local_maps=LocalMaps(r))


@term_app.command("import")
def term_import(org: str = typer.Option(..., help="organisation code"),
                map_name: str = typer.Option(..., "--map", help="sex | fee-item | drug | department | diagnosis"),
                file: Path = typer.Argument(..., exists=True, dir_okay=False),
                by: str = typer.Option("cli", help="who imports")) -> None:
    """Import a hospital's code map from CSV (a new version), then release held visits."""
    from gateway.redis_embedded import redis_url
    from terminology.local_maps import ImportError_
    from terminology.reprocess import reprocess

    text = file.read_bytes().decode("utf-8-sig", errors="strict")
    with redis_url(_settings()) as url:
        ctx = _pipeline_context(url)
        try:
            info = ctx.local_maps.import_csv(org, map_name, text, who=by)
        except ImportError_ as exc:
            for problem in exc.problems:
                typer.echo(f"{file}: {problem}", err=True)
            raise typer.Exit(1) from None
        released, held = reprocess(ctx, org)
    typer.echo(f"{info.url} version {info.version}: {info.rows} rows; "
               f"released {released} held visit(s), {held} still held")


@term_app.command("load-icd10")
def term_load_icd10(file: Path = typer.Argument(..., exists=True, dir_okay=False),
                    edition: str = typer.Option("clinical-2.0", help="e.g. clinical-2.0, nhsa-2.0")) -> None:
    """Load a full ICD-10 table (code,name[,name_en] CSV) in place of the shipped fragment."""
    from terminology.icd10 import install
    from terminology.local_maps import ImportError_

    try:
        path = install(file.read_bytes().decode("utf-8-sig"), edition, _settings().data_dir)
    except ImportError_ as exc:
        for problem in exc.problems:
            typer.echo(f"{file}: {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"ICD-10 ({edition}) installed: {path}")


@term_app.command("reprocess")
def term_reprocess(org: Optional[str] = typer.Option(None, help="one organisation (default all)")) -> None:
    """Run held ("needs-mapping") visits again; those the maps now cover are queued."""
    from gateway.redis_embedded import redis_url
    from terminology.reprocess import quarantined_orgs, reprocess

    with redis_url(_settings()) as url:
        ctx = _pipeline_context(url)
        for o in [org] if org else quarantined_orgs(ctx):
            released, held = reprocess(ctx, o)
            typer.echo(f"{o}: released {released}, still held {held}")


@term_app.command("gaps")
def term_gaps(org: Optional[str] = typer.Option(None), as_json: bool = typer.Option(False, "--json")) -> None:
    """Unmapped codes by hospital, most frequent first: what to map next."""
    import orjson

    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        gaps = _pipeline_context(url).local_maps.gaps(org)
    if as_json:
        typer.echo(orjson.dumps(gaps, option=orjson.OPT_INDENT_2).decode())
        return
    for g in gaps:
        typer.echo(f"{g['count']:6d}  {g['org']:14s} {g['map']:10s} {g['code']:20s} {g['system']}")


@term_app.command("list")
def term_list() -> None:
    """The hospitals' maps: current version, when, by whom."""
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        for m in _pipeline_context(url).local_maps.list():
            typer.echo(f"{m['org']:14s} {m['map']:10s} v{m['version']:<4d} {m['date']}  {m['by']}")


dlq_app = typer.Typer(help="Dead letters: list and replay.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(dest: str = typer.Option("regional", help="destination"),
             count: int = typer.Option(100)) -> None:
    """What a destination refused or could not take, oldest first."""
    import redis

    from gateway.delivery.dead_letters import list_dead
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        for d in list_dead(redis.Redis.from_url(url), dest, count):
            typer.echo(f"{d['id']}  {d['tracking_id']}  {d['status']:13s} {d['at']}  {d['reason']}")


@dlq_app.command("replay")
def dlq_replay(dest: str = typer.Option("regional", help="destination"),
               tracking_id: Optional[list[str]] = typer.Option(None, help="only these visits"),
               all_: bool = typer.Option(False, "--all", help="every dead letter")) -> None:
    """Queue dead letters again, once the cause is fixed (the workers deliver them)."""
    import redis

    from gateway.delivery.dead_letters import replay
    from gateway.redis_embedded import redis_url

    if not tracking_id and not all_:
        typer.echo("give --tracking-id (repeatable) or --all", err=True)
        raise typer.Exit(2)
    s = _settings()
    with redis_url(s) as url:
        n = replay(redis.Redis.from_url(url), dest, shards=s.delivery_shards, ttl=s.record_ttl,
                   tracking_ids=None if all_ else set(tracking_id))
    typer.echo(f"replayed {n} dead letter(s) to {dest}")


def _orgs(fn):
    import redis

    from gateway.orgs import OrgRegistry
    from gateway.redis_embedded import redis_url

    with redis_url(_settings()) as url:
        client = redis.Redis.from_url(url)
        try:
            return fn(OrgRegistry(client))
        finally:
            client.close()


@orgs_app.command("add")
def orgs_add(org: str = typer.Argument(..., help="organisation code"),
             name: str = typer.Option("", help="organisation name")) -> None:
    """Register an organisation (keys create does this too)."""
    _orgs(lambda reg: reg.register(org, name))
    typer.echo(f"registered {org}")


@orgs_app.command("alias")
def orgs_alias(org: str = typer.Argument(...), alias: str = typer.Argument(
        ..., help="a facility name the hospital sends in MSH-4")) -> None:
    """Let an organisation send HL7 v2 under another facility name (MSH-4)."""
    try:
        _orgs(lambda reg: reg.add_alias(org, alias))
    except KeyError as exc:
        typer.echo(str(exc.args[0]), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{alias} → {org}")


@orgs_app.command("charset")
def orgs_charset(org: str = typer.Argument(...), charset: str = typer.Argument(
        ..., help="e.g. GB18030, GBK, UTF-8: used when MSH-18 is empty")) -> None:
    """Set an organisation's default character set for HL7 v2."""
    from gateway.hl7.charset import codec_for

    try:
        codec = codec_for(charset)
    except KeyError:
        typer.echo(f"unknown character set {charset!r}", err=True)
        raise typer.Exit(1) from None
    _orgs(lambda reg: reg.set_charset(org, codec))
    typer.echo(f"{org}: {codec}")


@orgs_app.command("adapter")
def orgs_adapter(org: str = typer.Argument(...), adapter: str = typer.Argument(
        ..., help="an adapter id (gateway adapters list); '-' for the standard mapping")) -> None:
    """Read an organisation's input (HL7 v2 over MLLP, vendor bodies over HTTP) with an adapter."""
    from adapters.sdk.registry import adapters

    if adapter != "-" and adapter not in adapters():
        typer.echo(f"no adapter {adapter!r}; known: {', '.join(sorted(adapters()))}", err=True)
        raise typer.Exit(1)
    try:
        _orgs(lambda reg: reg.set_adapter(org, "" if adapter == "-" else adapter))
    except KeyError as exc:
        typer.echo(str(exc.args[0]), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{org}: {adapter}")


@peers_app.command("regional")
def peers_regional(port: int = typer.Option(8090), host: str = typer.Option("127.0.0.1")) -> None:
    """Run the reference regional shared-EMR platform (a FHIR R4 server) at /fhir."""
    from conformance.peers.regional import serve as peer_serve

    peer_serve(host=host, port=port)


@app.command()
def synth(
    visits: int = typer.Option(100, "--visits", "-n", min=1),
    org: Optional[str] = typer.Option(None, help="send every visit from this organisation"),
    orgs: int = typer.Option(3, help="number of synthetic hospitals when --org is not given"),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="file (default: stdout)"),
    format: str = typer.Option(  # noqa: A002
        "json", "--format", help="json: canonical visits, one per line | v2: each visit's "
                                 "HL7 v2.5 messages (ADT^A04, DFT^P03, ORU^R01), a line feed after each"),
    charset: str = typer.Option("utf-8", help="v2: utf-8 | gb18030 | mixed (visits alternate)"),
) -> None:
    """Write realistic synthetic outpatient visits: canonical JSON lines, or HL7 v2 messages."""
    from gateway.synth import generate, v2_messages, write_jsonl, write_v2

    if format not in ("json", "v2"):
        raise typer.BadParameter("json or v2", param_hint="--format")
    charsets = {"utf-8": ("utf-8",), "gb18030": ("gb18030",), "mixed": ("utf-8", "gb18030")}
    if charset not in charsets:
        raise typer.BadParameter("utf-8, gb18030 or mixed", param_hint="--charset")
    items = generate(visits, org=org, seed=seed, orgs=orgs)
    if format == "v2":
        messages = v2_messages(items, prefix=f"S{seed}", charsets=charsets[charset])
        if out:
            with out.open("wb") as fp:
                write_v2(messages, fp)
        else:
            write_v2(messages, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    elif out:
        with out.open("w", encoding="utf-8") as fp:
            write_jsonl(items, fp)
    else:
        write_jsonl(items, sys.stdout)


@app.command()
def convert(file: Path = typer.Argument(..., exists=True, dir_okay=False),
            org: Optional[str] = typer.Option(
                None, help="HL7 v2: the sending organisation (default: MSH-4)")) -> None:
    """Print the FHIR R4 transaction Bundle for a canonical visit (JSON) or an HL7 v2 message."""
    from gateway.convert import convert_bytes
    from gateway.orgs import Org

    code, text = convert_bytes(file.read_bytes(), Org(org, org) if org else None)
    typer.echo(text)
    raise typer.Exit(code)


@app.command()
def demo(
    visits: int = typer.Option(200, "--visits", "-n", min=1),
    orgs: int = typer.Option(3),
    seed: int = typer.Option(0),
    concurrency: int = typer.Option(16),
    invalid: int = typer.Option(0, help="also send this many deliberately invalid visits"),
    timeout: float = typer.Option(120.0, help="seconds to wait for delivery"),
) -> None:
    """Run gateway + reference peer + synthetic hospitals end to end and report."""
    from gateway.demo import run_demo

    raise typer.Exit(run_demo(visits=visits, orgs=orgs, seed=seed, concurrency=concurrency,
                              invalid=invalid, timeout=timeout))


from gateway.commands import insurance as _insurance  # noqa: E402

_insurance.register(app, peers_app)

from gateway.commands.send_v2 import send_v2 as _send_v2  # noqa: E402
from gateway.commands.validate import validate as _validate  # noqa: E402

app.command("validate")(_validate)
app.command("send-v2")(_send_v2)
