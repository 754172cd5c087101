"""Insurance pieces without servers: msgid, answers, signers, the center's arithmetic, the
per-item apportioning, reason codes; and the center's refusals on a real Redis."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal

import pytest

from conformance.peers._insurance_rules import Accumulators, classify, load_rules, settle
from gateway.insurance import envelope, signing
from gateway.insurance.eligibility import from_insurer
from gateway.insurance.money import apportion

RULES = load_rules()


def test_msgid_is_institution_time_and_sequence():
    when = datetime(2022, 1, 21, 12, 21, 12, tzinfo=envelope.CHINA)
    assert envelope.msgid("H33018300564", when, 9999) == "H33018300564202201211221129999"
    assert envelope.fixmedins_code("H11010101") == "H11010101000"
    assert len(envelope.msgid(envelope.fixmedins_code("H1"), when, 12345)) == 30


def test_answers_are_read_or_refused_as_unknown():
    ans = envelope.answer("2207", "m", {"infcode": "-1", "err_msg": "x", "output": None})
    assert not ans.ok and ans.infcode == -1 and ans.output == {}
    for body in ({"output": {}}, [], {"infcode": "abc"}):
        with pytest.raises(ValueError):
            envelope.answer("2207", "m", body)


def test_signers_and_the_plugin_point():
    env = {"infno": "1101", "input": {"a": "甲"}, "cainfo": ""}
    hm = signing.signer_for("hmac", "k")
    signing.sign_envelope(env, hm)
    assert env["signtype"] == "HMAC-SHA256"
    assert hm.verify(signing.canonical_bytes(env), env["cainfo"])
    assert not signing.HmacSigner("other").verify(signing.canonical_bytes(env), env["cainfo"])

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ecd = signing.signer_for("ecdsa", "")
    signing.sign_envelope(env, ecd)
    public = serialization.load_pem_public_key(ecd.public_pem())
    public.verify(base64.b64decode(env["cainfo"]), signing.canonical_bytes(env),
                  ec.ECDSA(hashes.SHA256()))

    plugin = signing.signer_for("gateway.insurance.signing:NoSigner", "")
    assert plugin.signtype == "" and plugin.sign(b"x") == ""
    signing.register("sm2-test", lambda key: signing.HmacSigner(key))
    assert signing.signer_for("sm2-test", "k").signtype == "HMAC-SHA256"
    with pytest.raises(ValueError):
        signing.signer_for("nope", "")


def line(sn: str, code: str, amount: str) -> dict:
    return {"feedetl_sn": sn, "med_list_codg": code, "det_item_fee_sumamt": amount}


def test_item_classes_and_rounding_half_up():
    a, b, c, unknown = (classify(RULES, line("1", "250101001", "10.00")),
                        classify(RULES, line("2", "XJ99", "0.05")),
                        classify(RULES, line("3", "311201001", "7.00")),
                        classify(RULES, line("4", "Q-not-listed", "3.00")))
    assert (a["chrgitm_lv"], a["inscp_scp_amt"]) == ("01", "10.00")
    assert (b["chrgitm_lv"], b["preselfpay_amt"], b["inscp_scp_amt"]) == ("02", "0.01", "0.04")
    assert (c["chrgitm_lv"], c["fulamt_ownpay_amt"], c["inscp_scp_amt"]) == ("03", "7.00", "0.00")
    assert unknown["chrgitm_lv"] == "03"


def test_settlement_arithmetic():
    fund = RULES.fund("310")
    rows = [classify(RULES, line("1", "250101001", "333.33")),
            classify(RULES, line("2", "250101001", "666.67"))]
    out = settle(fund, rows, Accumulators(Decimal("1500.00"), Decimal("0")), Decimal("10.00"), True)
    assert (out["act_pay_dedc"], out["fund_pay_sumamt"], out["psn_part_amt"], out["acct_pay"],
            out["psn_cash_pay"], out["balc"]) == ("300.00", "490.00", "510.00", "10.00",
                                                  "500.00", "0.00")
    capped = settle(fund, rows, Accumulators(Decimal("1800"), Decimal("19999.50")), Decimal("0"), False)
    assert capped["fund_pay_sumamt"] == "0.50"


def test_apportioning_sums_exactly_to_the_totals():
    rows = [classify(RULES, line(str(i), "250101001", "33.33")) for i in range(1, 4)]
    setl = settle(RULES.fund("310"), rows, Accumulators(Decimal("1790.00"), Decimal("0")),
                  Decimal("500"), True)
    items = apportion(rows, setl)
    for name in ("act_pay_dedc", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"):
        assert sum(Decimal(i[name]) for i in items) == Decimal(setl[name]), name
    assert [i["act_pay_dedc"] for i in items] == ["10.00", "0.00", "0.00"]


def test_insurer_refusals_map_to_reason_codes():
    from conformance.peers import insurance as peer

    assert from_insurer(peer.ARREARS) == "ARREARS"
    assert from_insurer(peer.MANUAL) == "MANUAL_PERIOD"
    assert from_insurer(peer.OUT_OF_AREA) == "OUT_OF_AREA"
    assert from_insurer(peer.FROZEN) == "CARD_REPLACING"
    assert from_insurer(peer.UNKNOWN_PERSON) == "NOT_INSURED"
    assert from_insurer("系统繁忙") is None


def test_the_center_refuses_bad_signatures_sign_nos_and_unknown_people(redis_server, tmp_path):
    import json

    import redis

    from conformance.peers.insurance import Center

    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps([{"psn_no": "R1", "certno": "110101198506150019",
                                     "card_no": "X00000019", "status": "frozen"}]))
    center = Center(redis.Redis.from_url(redis_server.url), RULES)
    for person in json.loads(registry.read_text()):
        center.enrol(person)
    signer = signing.HmacSigner(RULES.hmac_key)
    sequence = iter(range(1, 100))

    def send(infno: str, input_: dict, sign_no: str = "", key: signing.HmacSigner = signer) -> dict:
        env = envelope.request(infno=infno, msgid_=envelope.msgid("H11010101000", datetime.now(), next(sequence)),
                               fixmedins="H11010101000", fixmedins_name="x", sign_no=sign_no,
                               mdtrtarea_admvs="110000", input_=input_)
        return center.handle(signing.sign_envelope(env, key))

    assert "signature" in send("9001", {}, key=signing.HmacSigner("wrong"))["err_msg"]
    assert "sign_no" in send("1101", {"data": {}}, sign_no="stale")["err_msg"]
    sign_no = send("9001", {})["output"]["signinoutb"]["sign_no"]
    frozen = send("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "X00000019"}}, sign_no)
    assert frozen["infcode"] < 0 and "冻结" in frozen["err_msg"]
    nobody = send("1101", {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "NOPE"}}, sign_no)
    assert nobody["infcode"] < 0 and "人员信息不存在" in nobody["err_msg"]
    bad = send("2206", {"data": {"mdtrt_id": ["x"], "medfee_sumamt": "lots"}}, sign_no)
    assert bad["infcode"] < 0
    assert send("2204", {"feedetail": "nope"}, sign_no)["infcode"] < 0
    # a msgid is answered once: the same message again gets the same answer
    env = envelope.request(infno="1101", msgid_=envelope.msgid("H11010101000", datetime.now(), 99),
                           fixmedins="H11010101000", fixmedins_name="x", sign_no=sign_no,
                           mdtrtarea_admvs="110000", input_={"data": {"mdtrt_cert_no": "NOPE"}})
    first = center.handle(signing.sign_envelope(dict(env), signer))
    env["input"] = {"data": {"mdtrt_cert_type": "03", "mdtrt_cert_no": "X00000019"}}
    assert center.handle(signing.sign_envelope(env, signer))["err_msg"] == first["err_msg"]


def test_the_development_sign_key_is_refused_outside_development():
    from gateway.insurance.client import NhsaClient
    from gateway.settings import Settings

    with pytest.raises(RuntimeError, match="placeholder"):
        NhsaClient(Settings(environment="production", insurance_url="http://127.0.0.1:9/"), None)
    NhsaClient(Settings(insurance_url="http://127.0.0.1:9/"), None).close()
