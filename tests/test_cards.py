"""Card reading: APDU helpers and virtual cards on their own, then the reader through the
REAL PC/SC stack (pyscard → pcscd → vsmartcard vpcd → a virtual card over TCP).

The stack tests need pcscd and vsmartcard-vpcd: the session fixture runs
scripts/pcsc-test-env.sh (installs them with apt when root, starts pcscd) and FAILS —
it does not skip — when the stack cannot be brought up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.cards import apdu
from gateway.cards.emulator import (
    DEMO_MASTER_KEYS,
    BackgroundCard,
    HealthCard,
    Holder,
    SamCard,
    SilentCard,
    SocialSecurityCard,
    cryptogram,
    derive_card_key,
)
from gateway.cards.errors import (
    CardBlocked,
    CardError,
    CardRemoved,
    NoCard,
    NoReader,
    UnexpectedStatus,
    UnknownCard,
    WrongPin,
)
from gateway.identifiers import CardType, citizen_id_problem

ROOT = Path(__file__).resolve().parent.parent
USER_READER = "Virtual PCD 00 00"
SAM_READER = "Virtual PCD 00 01"
USER_PORT, SAM_PORT = 35963, 35964


def sw_of(response: bytes) -> int:
    return apdu.split_response(response)[1]


# =========================================================================== apdu.py


class TestApdu:
    def test_build_and_parse_all_cases(self):
        assert apdu.build(0x00, 0xA4, 0x04, 0x00, b"\x01\x02") == bytes.fromhex("00A40400020102")
        assert apdu.build(0x00, 0xB2, 0x07, 0x00, le=0) == bytes.fromhex("00B2070000")
        assert apdu.build(0x00, 0x84, 0, 0, le=8) == bytes.fromhex("0084000008")
        case4 = apdu.build(0x00, 0xA4, 0x04, 0x00, b"\xAA", le=0)
        assert case4 == bytes.fromhex("00A4040001AA00")
        for raw, le, data in [(bytes.fromhex("00C00000"), None, b""),
                              (bytes.fromhex("00B2070012"), 0x12, b""),
                              (bytes.fromhex("00A4000002DDF1"), None, b"\xDD\xF1"),
                              (case4, 0, b"\xAA")]:
            cmd = apdu.parse_command(raw)
            assert (cmd.le, cmd.data) == (le, data)
            assert cmd.to_bytes() == raw
        assert apdu.parse_command(bytes.fromhex("00B2070000")).with_le(0x14).to_bytes() \
            == bytes.fromhex("00B2070014")
        with pytest.raises(ValueError):
            apdu.parse_command(bytes.fromhex("00A4"))
        with pytest.raises(ValueError):
            apdu.parse_command(bytes.fromhex("00A4040005AABB"))
        with pytest.raises(ValueError):
            apdu.build(0, 0xB2, 0, 0, le=256)

    def test_named_commands(self):
        assert apdu.select_aid(apdu.SSC_AID).hex().upper() == \
            "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
        assert apdu.SSC_AID[7:].decode("gbk") == "社会保障"
        assert apdu.select_fid(0xEF05).hex().upper() == "00A4020002EF05"
        assert apdu.select_fid(0xDDF1, 0x00).hex().upper() == "00A4000002DDF1"
        assert apdu.read_record_by_tag(0x09).hex().upper() == "00B2090000"
        assert apdu.read_record_by_tag(0x09, 0x20, sfi=6).hex().upper() == "00B2093020"
        assert apdu.read_record_by_number(2, sfi=5, le=0x0B).hex().upper() == "00B2022C0B"
        assert apdu.verify_pin("123456").hex().upper() == "0020000003123456"
        assert apdu.verify_pin("12345").hex().upper() == "002000000312345F"
        assert apdu.get_response(0x1E).hex().upper() == "00C000001E"
        with pytest.raises(ValueError):
            apdu.pin_block("12a4")

    def test_status_words(self):
        assert apdu.split_response(bytes.fromhex("0102039000")) == (b"\x01\x02\x03", 0x9000)
        assert apdu.sw_text(0x6A82) == "6A82 file or application not found"
        assert "3 tries left" in apdu.sw_text(0x63C3)
        assert "exact length is 32" in apdu.sw_text(0x6C20)
        assert "GET RESPONSE" in apdu.sw_text(0x6110)
        assert apdu.respond(b"\x01", 0x6A83) == b"\x01\x6A\x83"
        with pytest.raises(ValueError):
            apdu.split_response(b"\x90")

    def test_tlv(self):
        data = apdu.tlv(0x07, b"X00000019") + apdu.tlv(0x0A, b"1") + b"\x00\x00\x00"
        assert apdu.parse_tlv(data) == [(0x07, b"X00000019"), (0x0A, b"1")]
        assert apdu.parse_tlv(b"") == []
        assert apdu.parse_tlv(apdu.tlv(0x01, b"") + b"\xFF\xFF") == [(0x01, b"")]
        with pytest.raises(ValueError):
            apdu.parse_tlv(bytes.fromhex("0705414243"))  # claims 5, has 3
        with pytest.raises(ValueError):
            apdu.tlv(0x01, bytes(256))
        # a record read by tag: tag + length + value; a bare value is tolerated
        assert apdu.record_value(apdu.tlv(0x09, b"abc"), 0x09) == b"abc"
        assert apdu.record_value(b"abc", 0x09) == b"abc"
        assert apdu.record_value(apdu.tlv(0x01, b"x") + apdu.tlv(0x09, b"yz"), 0x09) == b"yz"

    def test_bcd(self):
        assert apdu.bcd_encode("19850615") == bytes.fromhex("19850615")
        assert apdu.bcd_encode("01", 1) == b"\x01"
        assert apdu.bcd_encode("110101", 3) == bytes.fromhex("110101")
        assert apdu.bcd_encode("11010000000", 11) == bytes.fromhex("11010000000" + "F" * 11)
        assert apdu.bcd_decode(bytes.fromhex("11010000000" + "F" * 11)) == "11010000000"
        assert apdu.bcd_decode(b"\x01") == "01"
        assert apdu.bcd_encode("123", pad="0") == bytes.fromhex("1230")
        with pytest.raises(ValueError):
            apdu.bcd_encode("1234567", 3)
        with pytest.raises(ValueError):
            apdu.bcd_encode("12G4")
        assert apdu.bcd_date(bytes.fromhex("19850615")) == "1985-06-15"
        assert apdu.bcd_date(bytes.fromhex("00000000")) is None
        assert apdu.bcd_date(bytes.fromhex("FFFFFFFF")) is None
        with pytest.raises(ValueError):
            apdu.bcd_date(bytes.fromhex("19851315"))  # month 13
        with pytest.raises(ValueError):
            apdu.bcd_date(bytes.fromhex("198506"))

    def test_gbk(self):
        raw = apdu.gbk_encode("张伟", 30)
        assert len(raw) == 30 and raw[:4] == "张伟".encode("gbk") == bytes.fromhex("D5C5CEB0")
        assert apdu.gbk_decode(raw) == "张伟"
        assert apdu.gbk_decode(apdu.gbk_encode("张伟", 30, pad=b" ")) == "张伟"
        assert apdu.gbk_decode("欧阳娜娜".encode("gbk") + b"\xFF" * 4) == "欧阳娜娜"
        assert apdu.gbk_decode("王\u3000五".encode("gbk")) == "王 五"
        assert apdu.gbk_decode("䶮".encode("gb18030")) == "䶮"  # not in GBK: GB 18030 fallback
        with pytest.raises(ValueError):
            apdu.gbk_encode("长" * 16, 30)
        assert apdu.ascii_decode(b"X00000019\x00 ") == "X00000019"
        assert apdu.ascii_encode("3.00", 6) == b"3.00\x00\x00"
        assert apdu.text_or_hex(b"110100000000") == "110100000000"
        assert apdu.text_or_hex(bytes.fromhex("D156000005")) == "D156000005"

    def test_health_key_factors(self):
        factors = apdu.health_key_factors("11010519491231002X", "110100")
        assert factors.hex().upper() == "010519491231002A" + "110100FFFFFFFFFF"
        assert len(apdu.health_key_factors("110101198506150019", "110100")) == 16


# =========================================================================== virtual cards


def run(card, hexapdu: str) -> tuple[bytes, int]:
    return apdu.split_response(card.respond(bytes.fromhex(hexapdu.replace(" ", ""))))


class TestVirtualCards:
    def test_holder_defaults_are_consistent(self):
        h = Holder()
        assert citizen_id_problem(h.citizen_id) is None
        assert h.health_card_no == h.citizen_id
        assert len(bytes.fromhex(h.ssc_card_id)) == 16

    def test_ssc_6c_then_data(self):
        card = SocialSecurityCard()
        assert run(card, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")[1] == 0x9000
        assert run(card, "00A4020002EF06")[1] == 0x9000
        assert run(card, "00B2090000") == (b"", 0x6C20)  # 2 + 30
        data, sw = run(card, "00B2090020")
        assert sw == 0x9000 and apdu.parse_tlv(data)[0][0] == 0x09
        assert apdu.gbk_decode(apdu.record_value(data, 0x09)) == "张伟"
        assert run(card, "00B2090010") == (b"", 0x6C20)  # too short a Le: 6C as well
        assert run(card, "00B2200000")[1] == 0x6A83  # no such tag
        # by SFI: tag 07 in EF05 (SFI 5), and record 1 of EF05 (tag 01)
        assert run(card, "00B207280B")[0] == apdu.tlv(0x07, b"X00000019")
        assert run(card, "00B2012C12")[0][:2] == b"\x01\x10"
        assert run(card, "00C0000010")[1] == 0x6985  # nothing to get
        assert run(card, "00FF000000")[1] == 0x6D00
        assert run(card, "80CA000000")[1] == 0x6E00

    def test_ssc_61_and_direct(self):
        card = SocialSecurityCard(style="61")
        assert run(card, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")[1] >> 8 == 0x61
        run(card, "00C0000000")
        run(card, "00A4020002EF05")
        assert run(card, "00B2070000") == (b"", 0x610B)
        assert run(card, "00C0000005") == (apdu.tlv(0x07, b"X00000019")[:5], 0x6106)
        assert run(card, "00C0000006") == (apdu.tlv(0x07, b"X00000019")[5:], 0x9000)
        direct = SocialSecurityCard(style="direct")
        run(direct, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")
        run(direct, "00A4000002EF05")  # P1=00 works too
        assert run(direct, "00B2070000") == (apdu.tlv(0x07, b"X00000019"), 0x9000)

    def test_pin(self):
        card = SocialSecurityCard(pin="123456", pin_for_ef06=True)
        run(card, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")
        run(card, "00A4020002EF06")
        assert run(card, "00B2080014")[1] == 0x6982
        assert run(card, "0020000003654321")[1] == 0x63C2
        assert run(card, "00200000")[1] == 0x63C2  # tries left, without trying
        assert run(card, "0020000003123456")[1] == 0x9000
        assert run(card, "00B2080014")[1] == 0x9000
        for expected in (0x63C2, 0x63C1, 0x63C0, 0x6983):
            assert run(card, "0020000003000000")[1] == expected
        assert run(card, "0020000003123456")[1] == 0x6983  # blocked stays blocked

    def test_health_card_and_sam(self):
        card, sam = HealthCard(), SamCard()
        run(card, "00A4000002DDF1")
        run(card, "00A4020002EF06")
        assert run(card, "00B20B0020")[1] == 0x6982  # EF06 before authentication
        challenge, sw = run(card, "0084000008")
        assert sw == 0x9000 and len(challenge) == 8
        factors = apdu.health_key_factors(card.holder.health_card_no, card.holder.city_code)
        derive = "80DE473118" + (factors + challenge).hex()
        assert run(sam, derive)[1] == 0x6982  # SAM PIN first
        assert run(sam, "002000000412345678")[1] == 0x9000
        assert run(sam, derive)[1] == 0x9000
        crypt, sw = run(sam, "80FA000008")
        assert sw == 0x9000
        expected = cryptogram(derive_card_key(DEMO_MASTER_KEYS[0x31], factors), challenge)
        assert crypt == expected
        assert run(card, "0082003108" + crypt.hex())[1] == 0x9000
        data, sw = run(card, "00B20B0020")
        assert sw == 0x9000 and apdu.gbk_decode(data[2:]) == "张伟"
        # a replayed cryptogram fails: the challenge is single use
        run(card, "00A4000002DDF1")
        assert run(card, "0082003108" + crypt.hex())[1] == 0x6985
        run(card, "0084000008")
        assert run(card, "0082003108" + crypt.hex())[1] == 0x6300

    def test_unknown_card(self):
        card = SilentCard()
        assert run(card, "00A404000F7378312E73682EC9E7BBE1B1A3D5CF")[1] == 0x6A82
        assert run(card, "00A4000002DDF1")[1] == 0x6A82

    def test_pulled_card(self):
        from gateway.cards.emulator import CardPulled

        card = SocialSecurityCard(remove_after=1)
        run(card, "00A4000002DDF1")
        with pytest.raises(CardPulled):
            run(card, "00A4000002DDF1")

    def test_holder_from_file(self, tmp_path):
        path = tmp_path / "h.json"
        path.write_text(json.dumps({"name": "李娜", "sex": "2"}, ensure_ascii=False), "utf-8")
        h = Holder.from_file(path)
        assert (h.name, h.sex, h.city_code) == ("李娜", "2", "110100")
        path.write_text(json.dumps({"nmae": "x"}), "utf-8")
        with pytest.raises(ValueError, match="unknown holder keys"):
            Holder.from_file(path)


# =========================================================================== the real stack


@pytest.fixture(scope="session")
def pcsc_stack():
    """pcscd running with the vpcd readers listed (installs/starts them if needed)."""
    script = ROOT / "scripts" / "pcsc-test-env.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail("the PC/SC test stack is not available (pcscd + vsmartcard-vpcd):\n"
                    + proc.stdout + proc.stderr, pytrace=False)
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.fail("pyscard is not installed: .venv/bin/pip install pyscard", pytrace=False)
    from gateway.cards.reader import list_readers

    names = list_readers()
    assert USER_READER in names and SAM_READER in names, names
    return names


@pytest.fixture
def cards(pcsc_stack):
    """Insert virtual cards: ``cards(card, port)``. Each test starts and ends with both
    virtual readers empty, so pcscd sees every card as a fresh insertion."""
    from gateway.cards.reader import wait_absent

    started: list[BackgroundCard] = []

    def insert(card, port: int = USER_PORT, *, wait: bool = True) -> BackgroundCard:
        bg = BackgroundCard(card, port=port).start()
        started.append(bg)
        if wait:
            assert bg.wait_connected(10), f"virtual card did not reach vpcd on port {port}"
        return bg

    for name in (USER_READER, SAM_READER):
        assert wait_absent(name, 10), f"a card is still in {name} from an earlier test"
    yield insert
    for bg in started:
        bg.stop()
    for name in (USER_READER, SAM_READER):
        assert wait_absent(name, 10), f"{name} did not report the card removed"


def read(**kwargs):
    from gateway.cards.reader import read_card

    kwargs.setdefault("timeout", 5.0)
    return read_card(kwargs.pop("reader", USER_READER), **kwargs)


def responses(card) -> list[int]:
    return [sw_of(resp) for _, resp in card.apdu_log]


def commands(card) -> list[str]:
    return [cmd.hex().upper() for cmd, _ in card.apdu_log]


class TestReaderThroughPcsc:
    def test_list_readers(self, pcsc_stack):
        from gateway.cards.reader import list_readers

        names = list_readers()
        assert USER_READER in names and SAM_READER in names

    def test_ssc_all_fields(self, cards):
        card = SocialSecurityCard()
        cards(card)
        data = read()
        assert data.card_type == "ssc"
        assert [(i.type, i.value) for i in data.identifiers] == [
            (CardType.CITIZEN_ID, "110101198506150019"),
            (CardType.SSC_CARD_NO, "X00000019"),
            (CardType.SSC_CARD_ID, "110100D156000005000000000000A1B2"),
        ]
        assert citizen_id_problem(data.identifier("citizen_id")) is None
        assert data.holder == {"name": "张伟", "sex": "1", "ethnicity": "01",
                               "birth_date": "1985-06-15", "birthplace": "110101"}
        assert data.card["spec_version"] == "3.00"
        assert data.card["issue_date"] == "2020-01-01"
        assert data.card["expiry_date"] == "2030-01-01"
        assert data.card["card_no"] == "X00000019"
        assert data.card["issuer"] == "110100000000"
        assert data.card["reader"] == USER_READER
        assert data.card["atr"] == card.atr.hex().upper()
        # read by tag with Le=00 everywhere, and every answer ended in 9000 or 6Cxx
        assert all(c.startswith(("00A4", "00B2")) for c in commands(card))
        assert set(responses(card)) <= {0x9000} | {0x6C00 | n for n in range(256)}

    def test_6cxx_resent_with_exact_le(self, cards):
        card = SocialSecurityCard(style="6C")
        cards(card)
        read()
        log = card.apdu_log
        read_name = [i for i, (c, _) in enumerate(log) if c.hex().upper() == "00B2090000"]
        assert read_name, commands(card)
        i = read_name[0]
        assert sw_of(log[i][1]) == 0x6C20
        assert log[i + 1][0].hex().upper() == "00B2090020" and sw_of(log[i + 1][1]) == 0x9000

    def test_61xx_fetched_with_get_response(self, cards):
        card = SocialSecurityCard(style="61")
        cards(card)
        data = read()
        assert data.holder["name"] == "张伟" and data.card["card_no"] == "X00000019"
        log = card.apdu_log
        sixty_ones = [i for i, (_, r) in enumerate(log) if sw_of(r) >> 8 == 0x61]
        assert len(sixty_ones) >= 13  # SELECT AID + 13 records
        for i in sixty_ones:
            assert log[i + 1][0][:2] == b"\x00\xC0"
            assert log[i + 1][0][4] == sw_of(log[i][1]) & 0xFF
        assert not any(sw >> 8 == 0x6C for sw in responses(card))

    def test_health_card_with_sam(self, cards):
        user, sam = HealthCard(), SamCard()
        cards(user, USER_PORT)
        cards(sam, SAM_PORT)
        data = read(sam_reader=SAM_READER)
        assert data.card_type == "health"
        assert [(i.type, i.value) for i in data.identifiers] == [
            (CardType.HEALTH_CARD, "110101198506150019"),
            (CardType.CITIZEN_ID, "110101198506150019"),
        ]
        assert data.holder == {"name": "张伟", "sex": "1", "ethnicity": "01",
                               "birth_date": "1985-06-15", "phone": "13812345678"}
        assert data.card["ef06"] == "read"
        assert data.card["issuer"] == "北京市卫生健康委员会"
        assert data.card["issuer_code"] == "11010000000"
        assert data.card["city_code"] == "110100"
        assert data.card["expiry_date"] == "2030-01-01"
        assert data.card["issue_date"] == "2020-01-01"
        assert data.card["spec_version"] == "3.00"
        assert data.card["atr"] == user.atr.hex().upper()
        # the SAM saw VERIFY, DERIVE (80 DE 47 31) and COMPUTE (80 FA)
        assert [c[:8] for c in commands(sam)] == ["00200000", "80DE4731", "80FA0000"]
        assert any(c.startswith("00820031") for c in commands(user))

    def test_health_card_with_sam_61_style(self, cards):
        cards(HealthCard(style="61"), USER_PORT)
        cards(SamCard(style="61"), SAM_PORT)
        data = read(sam_reader=SAM_READER)
        assert data.holder["name"] == "张伟" and data.card["ef06"] == "read"

    def test_health_card_without_sam(self, cards):
        user = HealthCard()
        cards(user)
        data = read()
        assert data.card_type == "health"
        assert [(i.type, i.value) for i in data.identifiers] == [
            (CardType.HEALTH_CARD, "110101198506150019")]
        assert data.holder == {}
        assert data.card["ef06"] == "needs SAM"
        assert data.card["issuer"] == "北京市卫生健康委员会"
        assert "expiry_date" not in data.card  # EF08 is protected too
        assert not any(c.startswith("00A4020002EF06") for c in commands(user))

    def test_default_reader_skips_the_sam_reader(self, cards):
        cards(HealthCard(), USER_PORT)
        cards(SamCard(), SAM_PORT)
        data = read(reader=None, sam_reader=SAM_READER)
        assert data.card["reader"] == USER_READER and data.card["ef06"] == "read"

    def test_no_card(self, cards):
        started = time.monotonic()
        with pytest.raises(NoCard) as err:
            read(timeout=1.0)
        assert time.monotonic() - started >= 1.0
        assert err.value.code == "no-card" and USER_READER in str(err.value)

    def test_no_sam_card(self, cards):
        cards(HealthCard(), USER_PORT)
        with pytest.raises(NoCard, match="SAM"):
            read(sam_reader=SAM_READER, timeout=1.0)

    def test_unknown_reader(self, pcsc_stack):
        with pytest.raises(NoReader) as err:
            read(reader="No Such Reader 00 00")
        assert err.value.code == "no-reader"

    @pytest.mark.parametrize("after", [1, 5, 12])
    def test_card_removed_mid_read(self, cards, after):
        bg = cards(SocialSecurityCard(remove_after=after))
        with pytest.raises(CardRemoved) as err:
            read()
        assert err.value.code == "card-removed"
        assert bg.join(5) == "pulled"

    def test_sam_removed_mid_authentication(self, cards):
        cards(HealthCard(), USER_PORT)
        cards(SamCard(remove_after=1), SAM_PORT)
        with pytest.raises(CardRemoved, match="SAM"):
            read(sam_reader=SAM_READER)

    def test_unknown_card(self, cards):
        card = SilentCard()
        cards(card)
        with pytest.raises(UnknownCard) as err:
            read()
        assert err.value.code == "unknown-card" and "6A82" in str(err.value)
        assert commands(card) == [apdu.select_aid(apdu.SSC_AID).hex().upper(), "00A4000002DDF1"]

    def test_wrong_pin_then_blocked(self, cards):
        card = SocialSecurityCard(pin="123456")
        cards(card)
        with pytest.raises(WrongPin) as err:
            read(pin="000000")
        assert (err.value.code, err.value.tries_left) == ("wrong-pin", 2)
        assert "2 tries left" in str(err.value)
        assert read(pin="123456").holder["name"] == "张伟"  # right PIN resets the counter
        for left in (2, 1, 0):
            with pytest.raises(WrongPin) as err:
                read(pin="999999")
            assert err.value.tries_left == left
        with pytest.raises(CardBlocked) as blocked:
            read(pin="123456")
        assert blocked.value.code == "card-blocked"

    def test_ssc_ef06_behind_pin(self, cards):
        cards(SocialSecurityCard(pin_for_ef06=True))
        with pytest.raises(CardError) as err:
            read()
        assert err.value.code == "pin-required"
        assert read(pin="123456").holder["name"] == "张伟"

    def test_wrong_sam_pin(self, cards):
        cards(HealthCard(), USER_PORT)
        cards(SamCard(pin="87654321"), SAM_PORT)
        with pytest.raises(WrongPin) as err:
            read(sam_reader=SAM_READER)
        assert err.value.device == "sam" and err.value.tries_left == 2
        assert "SAM PIN" in str(err.value)
        assert read(sam_reader=SAM_READER, sam_pin="87654321").card["ef06"] == "read"

    def test_sam_with_other_keys_is_refused(self, cards):
        other = {ref: bytes(16) for ref in DEMO_MASTER_KEYS}
        cards(HealthCard(), USER_PORT)
        cards(SamCard(master_keys=other), SAM_PORT)
        with pytest.raises(CardError) as err:
            read(sam_reader=SAM_READER)
        assert err.value.code == "auth-failed"

    def test_invalid_citizen_id_on_card(self, cards):
        cards(SocialSecurityCard(Holder(citizen_id="110101198506150018")))  # bad check digit
        with pytest.raises(CardError) as err:
            read()
        assert err.value.code == "invalid-id" and "check digit" in str(err.value)

    def test_holder_from_json_file(self, cards, tmp_path):
        path = tmp_path / "holder.json"
        holder = {"name": "欧阳娜娜", "sex": "2", "ethnicity": "03",
                  "birth_date": "19491231", "citizen_id": "11010519491231002X",
                  "birthplace": "110105", "ssc_card_no": "A12345678",
                  "health_card_no": "11010519491231002X", "city_code": "110100",
                  "issue_date": "20180301", "expiry_date": "20280301",
                  "phone": "13900000000", "spec_version": "2.00"}
        path.write_text(json.dumps(holder, ensure_ascii=False), "utf-8")
        cards(SocialSecurityCard(Holder.from_file(path)))
        ssc = read()
        assert ssc.holder == {"name": "欧阳娜娜", "sex": "2", "ethnicity": "03",
                              "birth_date": "1949-12-31", "birthplace": "110105"}
        assert ssc.identifier(CardType.CITIZEN_ID) == "11010519491231002X"
        assert ssc.identifier(CardType.SSC_CARD_NO) == "A12345678"
        assert ssc.card["spec_version"] == "2.00" and ssc.card["expiry_date"] == "2028-03-01"

    def test_emulator_command_line(self, pcsc_stack, tmp_path):
        """``python -m gateway.cards.emulator`` as a separate process, with --data."""
        from gateway.cards.reader import wait_absent

        path = tmp_path / "holder.json"
        path.write_text(json.dumps({"name": "李娜", "sex": "2"}, ensure_ascii=False), "utf-8")
        assert wait_absent(USER_READER, 10)
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cards.emulator", "--type", "ssc", "--data",
             str(path), "--port", str(USER_PORT), "--style", "61"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            data = read(timeout=10.0)
            assert data.holder["name"] == "李娜" and data.holder["sex"] == "2"
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        assert "virtual ssc card" in out
        assert wait_absent(USER_READER, 10)

    def test_unexpected_status_is_readable(self):
        err = UnexpectedStatus(0x6A86, "SELECT EF05", reader=USER_READER)
        assert err.code == "unexpected-status" and err.sw == 0x6A86
        assert str(err) == "SELECT EF05 failed: 6A86 incorrect parameters P1-P2"
        assert err.to_dict()["sw"] == "6A86"
