"""The insurance-center peer as a child process, and visits built for settlement tests."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import httpx
from stdnum.cn import ric

from tests.support import free_port, gateway_cmd, http_service, sample_visit

SERVICE = "/fsi/api/rsfComIfsService/callService"
_seq = itertools.count(1)


class InsurancePeer:
    def __init__(self, tmp: Path, redis_url: str, registry: Path | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}{SERVICE}"
        self.log = tmp / f"insurance-{self.port}.log"
        self.args = gateway_cmd("peers", "insurance", "--port", str(self.port),
                                "--redis-url", redis_url)
        if registry is not None:
            self.args += ["--registry", str(registry)]
        self._ctx = None

    def start(self) -> InsurancePeer:
        self._ctx = http_service(self.args, f"{self.base}/healthz", log=self.log)
        self._ctx.__enter__()
        return self

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

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
