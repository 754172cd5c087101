"""A destination that only speaks HL7 v2: the gateway sends v2.5 messages over MLLP and
waits for each ACK — retrying on AE or silence, dead-lettering on AR."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

import pytest

from gateway.hl7.ack import build_ack
from gateway.hl7.message import parse
from gateway.hl7.mllp import MLLPServer
from tests.support import Gateway, sample_visit

ORG = "H11010101"


class Receiver:
    """A v2 receiver on loopback; answers with the codes queued in ``script`` (then AA)."""

    def __init__(self):
        self.messages: list = []
        self.script: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.server = MLLPServer(self.handle, host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def handle(self, data: bytes, peer) -> bytes:
        msg = parse(data)
        code = self.script.pop(0) if self.script else "AA"
        if code == "AA":
            self.messages.append(msg)
        return build_ack(msg, code, control_id=f"R{len(self.messages)}",
                         now=datetime.now(timezone.utc))

    def __enter__(self) -> Receiver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def v2dest(tmp_path, redis_server, receiver):
    gw = Gateway(tmp_path, redis_server.url, None, extra_env={
        "GATEWAY_V2_RECEIVER_URL": f"mllp://127.0.0.1:{receiver.server.port}"}).start()
    gw.key = gw.create_key(ORG)
    yield gw
    gw.stop()


def test_visit_is_sent_as_v2_messages(v2dest, receiver):
    tid = v2dest.submit(v2dest.key, sample_visit()).json()["tracking_id"]
    view = v2dest.wait_status(v2dest.key, tid, "delivered")
    acks = view["receipts"]["v2"]["acks"]
    assert [a["message"] for a in acks] == ["ADT^A04", "ORU^R01", "DFT^P03"]
    types = [(m.message_type, m.trigger) for m in receiver.messages]
    assert types == [("ADT", "A04"), ("ORU", "R01"), ("DFT", "P03")]
    adt = receiver.messages[0]
    assert adt.version == "2.5"
    assert adt.first("PID").get(5) == "张伟"
    assert adt.first("PV1").get(19) == "MZ20260301000123"
    assert [f.get(7, 1) for f in receiver.messages[2].all("FT1")] == ["GH001", "YP0012", "JY0001", "JC0101"]


def test_AE_is_retried_and_the_same_control_ids_are_sent_again(v2dest, receiver):
    receiver.script = ["AA", "AE"]  # ADT accepted, ORU refused once
    tid = v2dest.submit(v2dest.key, sample_visit()).json()["tracking_id"]
    view = v2dest.wait_status(v2dest.key, tid, "delivered")
    assert view["receipts"]["v2"]["attempts"] == 2
    ids = [m.control_id for m in receiver.messages]
    assert ids[0] == ids[1]  # the ADT was sent again with the same MSH-10
    assert len(set(ids)) == 3


def test_AR_dead_letters(v2dest, receiver):
    receiver.script = ["AR"]
    tid = v2dest.submit(v2dest.key, sample_visit()).json()["tracking_id"]
    view = v2dest.wait_status(v2dest.key, tid, "dead-lettered")
    assert "ADT^A04" in view["receipts"]["v2"]["error"]
