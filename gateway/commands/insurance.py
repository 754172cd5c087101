"""`gateway peers insurance` (the reference insurance center) and `gateway insurance resolve`
(finish settlements whose outcome is unknown)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

insurance_app = typer.Typer(help="Medical-insurance settlement.", no_args_is_help=True)


def peers_insurance(
    port: int = typer.Option(8091),
    host: str = typer.Option("127.0.0.1"),
    rules: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                         help="rules file (default conformance/peers/insurance_rules.toml)"),
    registry: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                            help="insured people, a JSON list"),
    redis_url: Optional[str] = typer.Option(None, help="Redis for the center's state "
                                            "(default: the gateway's, embedded or GATEWAY_REDIS_URL)"),
) -> None:
    """Run the reference insurance center (NHSA interface) backed by Redis."""
    from conformance.peers.insurance import serve
    from gateway.redis_embedded import redis_url as gateway_redis
    from gateway.settings import Settings

    if redis_url:
        serve(host, port, redis_url, rules, registry)
        return
    with gateway_redis(Settings()) as url:
        serve(host, port, url, rules, registry)


@insurance_app.command("resolve")
def resolve() -> None:
    """Resolve settlements whose outcome is unknown (re-send the reversal or the settlement)."""
    import redis

    from gateway.identity.card_status import CardStatusStore
    from gateway.insurance.resolver import resolve_pending
    from gateway.insurance.settlement import Settlements
    from gateway.pipeline import Context
    from gateway.redis_embedded import redis_url as gateway_redis
    from gateway.settings import Settings
    from terminology.local_maps import LocalMaps

    settings = Settings()
    with gateway_redis(settings) as url:
        r = redis.Redis.from_url(url)
        ctx = Context(settings=settings, redis=r, card_status=CardStatusStore(r),
                      local_maps=LocalMaps(r))
        if not settings.insurance_url:
            typer.echo("GATEWAY_INSURANCE_URL is not set", err=True)
            raise typer.Exit(2)
        done = resolve_pending(Settlements(ctx))
        left = 0
        for tid, status in done:
            left += status.startswith(("unknown", "settling"))
            typer.echo(f"{tid}  {status}")
        typer.echo(f"{len(done) - left} resolved, {left} still unknown")
        raise typer.Exit(1 if left else 0)


def register(app: typer.Typer, peers_app: typer.Typer) -> None:
    peers_app.command("insurance")(peers_insurance)
    app.add_typer(insurance_app, name="insurance")
