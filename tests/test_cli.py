"""The `gateway` command as a user runs it."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.support import ROOT, VISIT_INPUT, free_port, gateway_cmd, wait_until


def _run(*args, **kw):
    return subprocess.run(gateway_cmd(*args), capture_output=True, text=True, cwd=ROOT, **kw)


def test_synth_then_convert(tmp_path):
    out = _run("synth", "--visits", "3", "--org", "H11010100001", "--seed", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and all(json.loads(x)["org"]["code"] == "H11010100001" for x in lines)
    visit = tmp_path / "v.json"
    visit.write_text(lines[0], encoding="utf-8")
    conv = _run("convert", str(visit))
    assert conv.returncode == 0, conv.stderr
    bundle = json.loads(conv.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"


def test_synth_v2_then_convert(tmp_path):
    """`synth --format v2`: each visit's messages (ADT^A04, then DFT^P03 / ORU^R01 as it has
    fees / results), a line feed after each, alternating charsets with `mixed`; every one
    converts to a Bundle; the same seed writes the same bytes."""
    out = tmp_path / "msgs.hl7"
    args = ("synth", "--visits", "4", "--org", "H11010100001", "--seed", "5", "--format", "v2",
            "--charset", "mixed")
    made = _run(*args, "--out", str(out))
    assert made.returncode == 0, made.stderr
    data = out.read_bytes()
    messages = data.split(b"\n")[:-1]
    assert data.endswith(b"\r\n") and len(messages) >= 4
    assert all(m.startswith(b"MSH|^~\\&|") for m in messages)
    types = [m.split(b"|")[8].decode() for m in messages]
    assert types[0] == "ADT^A04^ADT_A01" and set(types) <= {
        "ADT^A04^ADT_A01", "DFT^P03^DFT_P03", "ORU^R01^ORU_R01"}
    assert types.count("ADT^A04^ADT_A01") == 4
    assert {m.split(b"\r", 1)[0].rsplit(b"|", 1)[-1] for m in messages} == {
        b"UNICODE UTF-8", b"GB 18030-2000"}
    for i, message in enumerate(messages):
        path = tmp_path / f"m{i}.hl7"
        path.write_bytes(message)
        conv = _run("convert", str(path), "--org", "H11010100001")
        assert conv.returncode == 0, (i, conv.stdout[:500])
        assert json.loads(conv.stdout)["type"] == "transaction"
    again = subprocess.run(gateway_cmd(*args), capture_output=True, cwd=ROOT)
    assert again.returncode == 0 and again.stdout == data
    wrong = _run("synth", "--visits", "1", "--format", "xml")
    assert wrong.returncode == 2 and "json or v2" in wrong.stderr


def test_convert_reports_an_invalid_visit(tmp_path):
    bad = json.loads(VISIT_INPUT.read_text(encoding="utf-8"))
    bad["patient"]["cards"][1]["value"] = "110101198506150011"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    conv = _run("convert", str(path))
    assert conv.returncode == 1
    assert json.loads(conv.stdout)["issue"][0]["expression"] == ["patient.cards[1].value"]


def test_serve_with_peers_and_demo_hospital(tmp_path):
    port, peer_port = free_port(), free_port()
    proc = subprocess.Popen(
        gateway_cmd("serve", "--port", str(port), "--with-peers", "--peer-port", str(peer_port),
                    "--demo-org", "DEMO0001"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={"PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(tmp_path / "var"),
             "HOME": str(tmp_path)})
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200,
                   timeout=60, what="gateway")
        banner = ""
        while "key:" not in banner:
            banner += proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/docs" in banner
        assert f"http://127.0.0.1:{peer_port}/fhir" in banner
        key = banner.split("key:")[1].split()[0]
        visit = json.loads(VISIT_INPUT.read_text(encoding="utf-8"))
        visit["org"]["code"] = "DEMO0001"
        resp = httpx.post(f"http://127.0.0.1:{port}/v1/visits", json=visit,
                          headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 202, resp.text
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{peer_port}/fhir/Encounter",
                                     params={"_summary": "count"}).json()["total"] == 1,
                   what="delivery to the reference peer")
    finally:
        proc.terminate()
        proc.wait(30)


def test_demo_delivers_everything():
    out = _run("demo", "--visits", "40", "--invalid", "2", "--concurrency", "8", timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "every accepted visit was delivered" in out.stdout
