"""The insurance-center peer as a child process, and visits built for settlement tests."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
from stdnum.cn import ric

from tests.support import (
    Gateway,
    HttpService,
    Peer,
    RedisServer,
    free_port,
    gateway_cmd,
    sample_visit,
)

SERVICE = "/fsi/api/rsfComIfsService/callService"
_seq = itertools.count(1)


@contextlib.contextmanager
def settling_gateway(tmp: Path, org: str, *, regional: bool = True, registry: Path | None = None,
                     env: dict[str, str] | None = None) -> Iterator[Gateway]:
    """Redis, the insurance center (and the regional platform), and a gateway settling with
    it; the gateway carries ``key`` (for ``org``), ``center`` and ``regional``."""
    redis_server = RedisServer(tmp / "redis").start()
    peer = Peer(tmp).start() if regional else None
    center = InsurancePeer(tmp, redis_server.url, registry).start()
    gw = Gateway(tmp, redis_server.url, peer.fhir if peer else None,
                 {"GATEWAY_INSURANCE_URL": center.url, **(env or {})}).start()
    gw.key = gw.create_key(org)
    gw.center, gw.regional = center, peer
    try:
        yield gw
    finally:
        for service in (gw, center, peer, redis_server):
            if service is not None:
                service.stop()


class InsurancePeer(HttpService):
    def __init__(self, tmp: Path, redis_url: str, registry: Path | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}{SERVICE}"
        self.log = tmp / f"insurance-{self.port}.log"
        self.args = gateway_cmd("peers", "insurance", "--port", str(self.port),
                                "--redis-url", redis_url)
        if registry is not None:
            self.args += ["--registry", str(registry)]
        self.health_url = f"{self.base}/healthz"

    def admin(self, method: str, path: str, **kw) -> dict:
        r = httpx.request(method, f"{self.base}/_admin/{path}", timeout=5, **kw)
        r.raise_for_status()
        return r.json()

    def fault(self, infno: str, mode: str, count: int = 1) -> None:
        self.admin("POST", "faults", json={"infno": infno, "mode": mode, "count": count})

    def processed(self, infno: str) -> int:
        return self.admin("GET", "stats")["processed"].get(infno, 0)

    def person(self, **fields) -> dict:
        """A new insured person (fields override); returns what a visit needs."""
        n = next(_seq)
        body = f"110101{1980 + n % 20}0{1 + n % 9}1{n % 10}{(n * 7) % 1000:03d}"
        certno = body + ric.calc_check_digit(body + "0")
        person = {"psn_no": f"T{certno[-8:]}{n:04d}", "certno": certno, "psn_name": "测试",
                  "card_no": f"T{n:08d}", "insutypes": ["310"], **fields}
        self.admin("POST", "persons", json=person)
        return person

    def accumulators(self, psn_no: str, year: str = "2026") -> dict:
        return self.admin("GET", f"persons/{psn_no}/accumulators/{year}")


def fee(line: str, code: str, price: str, qty: str = "1", name: str = "项目") -> dict:
    amount = (Decimal(price) * Decimal(qty)).quantize(Decimal("0.01"))
    return {"line_no": line, "item_code": f"L{code[:10]}", "national_code": code, "name": name,
            "category": "09" if code.startswith("X") else "03", "unit_price": price,
            "quantity": qty, "amount": str(amount)}


def visit_for(person: dict | None, fees: list[dict], *, cards: list[dict] | None = None,
              **changes) -> dict:
    """A visit of ``person`` (their citizen ID and social security card) with ``fees``."""
    n = next(_seq)
    if cards is None:
        cards = [{"type": "citizen_id", "value": person["certno"]},
                 {"type": "ssc_card_no", "value": person["card_no"]}]
    visit = sample_visit(visit_no=f"MZ{n:012d}", fees=fees, **changes)
    visit["patient"]["cards"] = cards
    return visit
