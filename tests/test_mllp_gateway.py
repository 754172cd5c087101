"""HL7 v2 over MLLP into the gateway: real sockets, real Redis, the reference peer."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gateway.hl7.message import parse
from gateway.hl7.mllp import MLLPClient
from tests.support import Gateway, wait_until

GOLDEN = Path(__file__).parent / "golden" / "hl7v2"
ORG = "H11010101"


def _msg(case: str) -> bytes:
    return (GOLDEN / case / "input.hl7").read_bytes()


def _with_control_id(raw: bytes, control_id: str) -> bytes:
    head, _, rest = raw.partition(b"\r")
    fields = head.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + b"\r" + rest


def send(port: int, *messages: bytes) -> list:
    async def go():
        async with MLLPClient("127.0.0.1", port, timeout=15) as client:
            return [parse(await client.send(m), default_charset="utf-8") for m in messages]
    return asyncio.run(go())


def msa(ack) -> tuple[str, str]:
    seg = ack.first("MSA")
    return seg.get(1), seg.get(2)


@pytest.fixture
def v2gw(tmp_path, redis_server, peer):
    gw = Gateway(tmp_path, redis_server.url, peer.fhir).start()
    gw.key = gw.create_key(ORG)
    yield gw
    gw.stop()


def test_every_message_type_is_acknowledged_and_delivered(v2gw, peer):
    cases = ["adt_a04_utf8", "adt_a08_gbk", "orm_o01", "rde_o11", "oru_r01", "dft_p03",
             "adt_a40", "adt_a04_gb18030"]
    acks = send(v2gw.mllp_port, *[_msg(c) for c in cases])
    for case, ack in zip(cases, acks, strict=True):
        code, control = msa(ack)
        assert code == "AA", (case, str(ack))
        assert control == parse(_msg(case)).control_id
    wait_until(lambda: peer.count("Observation") == 3, what="results at the peer")
    wait_until(lambda: peer.count("ChargeItem") == 2, what="fees at the peer")
    assert peer.count("Encounter") == 1  # every message is part of the same visit
    assert peer.count("Patient") == 1
    assert peer.count("MedicationRequest") == 1
    assert peer.count("ServiceRequest") == 2
    assert peer.count("Condition") == 2
    phone = peer_patient(peer)["telecom"][0]["value"]
    assert phone == "13912345678"  # the ADT^A08 update reached the patient


def peer_patient(peer):
    import httpx

    return httpx.get(f"{peer.fhir}/Patient", params={
        "identifier": "urn:oid:2.16.156.10011.1.3|110101198506150019"}).json()["entry"][0]["resource"]


def test_duplicate_control_id_is_acknowledged_not_processed(v2gw, peer):
    first, again = send(v2gw.mllp_port, _msg("dft_p03"), _msg("dft_p03"))
    assert msa(first)[0] == msa(again)[0] == "AA"
    wait_until(lambda: peer.stats()["transactions"] >= 1, what="delivery")
    import time
    time.sleep(1.0)
    assert peer.stats()["transactions"] == 1


def test_the_same_message_on_several_connections_at_once_is_processed_once(v2gw, peer):
    raw = _with_control_id(_msg("dft_p03"), "SAMEONFIVE")

    async def one():
        async with MLLPClient("127.0.0.1", v2gw.mllp_port, timeout=15) as client:
            return parse(await client.send(raw), default_charset="utf-8")

    async def all_at_once():
        return await asyncio.gather(*(one() for _ in range(5)))

    acks = asyncio.run(all_at_once())
    assert [msa(a) for a in acks] == [("AA", "SAMEONFIVE")] * 5
    wait_until(lambda: peer.stats()["transactions"] >= 1, what="delivery")
    import time
    time.sleep(1.0)
    assert peer.stats()["transactions"] == 1


def test_content_error_is_AE_with_err_segments(v2gw):
    raw = _msg("adt_a04_utf8").replace(b"110101198506150019", b"110101198506150011")
    raw = _with_control_id(raw, "BADCHECK1")
    (ack,) = send(v2gw.mllp_port, raw)
    assert msa(ack) == ("AE", "BADCHECK1")
    err = ack.first("ERR")
    assert err.get(8) and "check digit" in err.get(8)
    # v2.4 message: ERR-1 carries segment^sequence^field^code
    assert err.get(1, 1) == "PID" and err.get(1, 3) == "3"
    assert err.get(1, 4, 1) == "102"


def test_missing_required_field_names_it(v2gw):
    raw = _msg("oru_r01").replace(b"|O|0301^^^^^^^^", b"|O|^^^^^^^^")  # PV1-3.1 gone
    raw = _with_control_id(raw, "NODEPT")
    (ack,) = send(v2gw.mllp_port, raw)
    assert msa(ack)[0] == "AE"
    errs = ack.all("ERR")
    locations = [e.get(2, 1) + "-" + e.get(2, 3) for e in errs]  # v2.5: ERR-2 is the location
    assert locations == ["PV1-3"]
    assert errs[0].get(3, 1) == "101"


def test_unknown_sender_unsupported_type_and_version_are_AR(v2gw):
    unknown = _msg("adt_a04_utf8").replace(b"|H11010101|YKT", b"|NOBODY|YKT", 1)
    bad_type = _with_control_id(_msg("dft_p03").replace(b"DFT^P03^DFT_P03", b"SIU^S12^SIU_S12"), "T1")
    bad_version = _with_control_id(_msg("dft_p03").replace(b"|P|2.4|", b"|P|2.9|"), "V1")
    acks = send(v2gw.mllp_port, unknown, bad_type, bad_version)
    assert [msa(a)[0] for a in acks] == ["AR", "AR", "AR"]
    assert acks[0].first("ERR").get(8).startswith("sending facility 'NOBODY'")
    assert acks[1].first("ERR").get(1, 4, 1) == "200"
    assert acks[2].first("ERR").get(3, 1) == "203"  # the ACK answers in v2.5 form for 2.9


def test_alias_lets_a_facility_name_send(v2gw, peer):
    v2gw.cli("orgs", "alias", ORG, "东城一院")
    raw = _msg("dft_p03").replace(b"|H11010101|YKT", "|东城一院|YKT".encode(), 1)
    (ack,) = send(v2gw.mllp_port, _with_control_id(raw, "ALIAS1"))
    assert msa(ack)[0] == "AA"
    wait_until(lambda: peer.count("ChargeItem") == 2, what="fees from the alias")


def test_ack_is_in_the_senders_charset(v2gw):
    raw = _msg("adt_a04_gb18030").replace("|O|".encode("gb18030"), "|门诊|".encode("gb18030"), 1)

    async def go():
        async with MLLPClient("127.0.0.1", v2gw.mllp_port, timeout=15) as client:
            return await client.send(_with_control_id(raw, "GBNAK"))
    ack_bytes = asyncio.run(go())
    ack = parse(ack_bytes)  # decoded by its own MSH-18
    assert ack.charset == "gb18030" and ack.charset_field == "GB 18030-2000"
    assert msa(ack) == ("AE", "GBNAK")
    assert "'门诊'" in ack.first("ERR").get(8)
    assert "门诊".encode("gb18030") in ack_bytes and "门诊".encode("utf-8") not in ack_bytes


def test_ae_is_in_the_senders_default_charset_when_msh18_is_empty(v2gw):
    v2gw.cli("orgs", "charset", ORG, "GBK")
    raw = _msg("adt_a04_gb18030").replace(b"|GB 18030-2000", b"|", 1)
    raw = raw.replace("|O|".encode("gbk"), "|门诊|".encode("gbk"), 1)

    async def go():
        async with MLLPClient("127.0.0.1", v2gw.mllp_port, timeout=15) as client:
            return await client.send(_with_control_id(raw, "GBKNAK"))
    ack_bytes = asyncio.run(go())
    assert "门诊".encode("gbk") in ack_bytes and "门诊".encode("utf-8") not in ack_bytes
    assert "MSA|AE|GBKNAK" in ack_bytes.decode("gbk")


def test_malformed_input_gets_the_right_answer_and_the_listener_keeps_serving(v2gw):
    port = v2gw.mllp_port
    replies = {}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"garbage before any frame\r\n")
        s.sendall(b"\x0bNOT AN HL7 MESSAGE\x1c\r")
        replies["no_msh"] = _read_frame(s)
        s.sendall(b"\x0bMSH|^~|HIS|H11010101|YKT|YKT|20260301||ADT^A04|X1|P|2.4\x1c\r")
        replies["bad_separators"] = _read_frame(s)
        s.sendall(b"\x0b" + _with_control_id(_msg("dft_p03"), "AFTERGARBAGE") + b"\x1c\r")
        replies["good"] = _read_frame(s)
    for name in ("no_msh", "bad_separators"):
        ack = parse(replies[name], default_charset="utf-8")
        assert msa(ack)[0] in ("AR", "AE"), name
    assert msa(parse(replies["good"], default_charset="utf-8")) == ("AA", "AFTERGARBAGE")
    # a truncated frame, then the connection drops: nothing is answered, nothing is processed
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x0b" + _msg("orm_o01")[:60])
    # oversize: refused with a NAK that echoes MSH-10
    big = _with_control_id(_msg("oru_r01"), "BIG1").replace(b"|F|", b"|F|" + b"x" * 1_100_000, 1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x0b" + big + b"\x1c\r")
        ack = parse(_read_frame(s), default_charset="utf-8")
        assert msa(ack) == ("AR", "BIG1")
    # and the listener still serves
    (ok,) = send(port, _with_control_id(_msg("dft_p03"), "STILLHERE"))
    assert msa(ok) == ("AA", "STILLHERE")


def _read_frame(s: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\x1c\r"):
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed; got {buf!r}")
        buf += chunk
    return buf[buf.index(b"\x0b") + 1:-2]


def test_a_messages_first_envelope_is_the_one_envelope_would_make():
    from datetime import UTC, datetime

    from gateway.envelope import Envelope
    from gateway.hl7 import listener

    now = datetime.now(UTC)
    made = listener._RECEIVED.with_(tracking_id="T1", received_at=now, raw=b"MSH|")
    assert made == Envelope(tracking_id="T1", received_at=now, raw=b"MSH|",
                            content_type="application/hl7-v2")


def test_an_envelope_copy_changes_only_what_it_names_and_refuses_unknown_names():
    import pytest

    from gateway.hl7 import listener

    first = listener._RECEIVED.with_(tracking_id="T1", raw=b"MSH|")
    second = first.with_(tracking_id="T2")
    assert (first.tracking_id, second.tracking_id, second.raw) == ("T1", "T2", b"MSH|")
    assert second.content_type == first.content_type == "application/hl7-v2"
    with pytest.raises(TypeError, match="no field bogus, nope"):
        first.with_(tracking_id="T3", nope=1, bogus=2)


def test_send_v2_command_reports_each_acknowledgement(v2gw, tmp_path):
    """`gateway send-v2` as a HIS vendor runs it: a file of two messages (one with LF
    segment endings, as a hand-edited file has them) and a file with a content error; one
    line per message, exit 1 for the AE. A receiver that is not there: exit 2, nothing sent."""
    import subprocess

    from tests.support import ROOT, free_port, gateway_cmd

    good = tmp_path / "good.hl7"
    good.write_bytes(_with_control_id(_msg("dft_p03"), "SEND1") + b"\n"
                     + _with_control_id(_msg("oru_r01"), "SEND2").replace(b"\r", b"\n"))
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(_with_control_id(
        _msg("adt_a04_utf8").replace(b"110101198506150019", b"110101198506150011"), "SEND3"))
    run = subprocess.run(gateway_cmd("send-v2", str(good), str(bad), "--to",
                                     f"mllp://127.0.0.1:{v2gw.mllp_port}"),
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[0].startswith("SEND1 DFT^P03") and lines[0].endswith(": AA"), lines
    assert lines[1].startswith("SEND2 ORU^R01") and f"{good}#2" in lines[1] and \
        lines[1].endswith(": AA"), lines
    assert lines[2].startswith("SEND3 ADT^A04") and ": AE " in lines[2] and \
        "check digit" in lines[2], lines
    assert lines[3] == f"2 of 3 message(s) accepted by 127.0.0.1:{v2gw.mllp_port}"

    nobody = subprocess.run(gateway_cmd("send-v2", str(good), "--to",
                                        f"127.0.0.1:{free_port()}", "--timeout", "3"),
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert nobody.returncode == 2
    assert "not sent" in nobody.stdout.splitlines()[0] and \
        nobody.stdout.splitlines()[1] == f"{good}#2: not sent"
