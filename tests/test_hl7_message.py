"""The lean HL7 v2 tokenizer, escaping, MSH-18 charsets and ACK building."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.hl7.ack import AckError, build_ack, parse_location
from gateway.hl7.charset import codec_for, hl7_name
from gateway.hl7.escape import escape, unescape
from gateway.hl7.message import Encoding, HL7ParseError, Message, Segment, parse

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 3, 1, 9, 30, 0, tzinfo=CST)

PID3 = ("110101198506150019^^^&2.16.156.10011.1.3&ISO^NNCHN"
        "~X00000019^^^SSC^SS~JZK00088123^^^H11010101^MR")


def adt_a04(msh18: str = "UNICODE UTF-8", version: str = "2.4") -> str:
    return "\r".join([
        f"MSH|^~\\&|HIS|H11010101|YKT|YKT|20260301093000||ADT^A04^ADT_A01|MSG00001|P|{version}|||AL|NE|CHN|{msh18}",
        "EVN|A04|20260301093000",
        (f"PID|1||{PID3}||张伟^^ZHANG WEI||19850615|M|||北京市东城区东直门南大街5号^^110101^^100010^CHN"
         "||^PRN^PH^^86^10^88886666"),
        "PV1|1|O|0101^^^H11010101^^^^^内科门诊||||D001^李明^^^^^主任医师",
        "ZPI|1|医保电子凭证^EC|J1101019876543210",
    ]) + "\r"


ORU_ESCAPES = "".join(f"{line}\r" for line in [
    "MSH|^~\\&|LIS|H11010101|YKT|YKT|20260301100000||ORU^R01^ORU_R01|LAB0042|P|2.5|||||CHN|UNICODE UTF-8",
    "PID|1||JZK00088123^^^H11010101^MR||张伟",
    "OBR|1|ORD1|LAB1|CBC^血常规^LN",
    "OBX|1|TX|NOTE^备注^L||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\Xe5bca0\\g\\.br\\h\\H\\粗\\N\\||||||F",
    "OBX|2|TX|NOTE^备注^L||\\Cxxyy\\ \\M2442\\ \\Zlocal\\ C:\\path||||||F",
    "OBX|3|NM|WBC^白细胞计数^LN||6.5|10*9/L|3.5-9.5|N|||F",
    "ZXY|1|自定义段^custom~第二^second",
])


# ------------------------------------------------------------------------------ parse: basics

def check_adt(msg: Message) -> None:
    assert msg.message_type == "ADT"
    assert msg.trigger == "A04"
    assert msg.structure == "ADT_A01"
    assert msg.control_id == "MSG00001"
    assert msg.version == "2.4"
    assert msg.sending_application == "HIS"
    assert msg.sending_facility == "H11010101"
    assert [s.name for s in msg.segments] == ["MSH", "EVN", "PID", "PV1", "ZPI"]
    pid = msg.first("PID")
    assert pid is not None and pid.name == "PID"
    assert pid.get(5) == "张伟"
    assert pid.get(5, 3) == "ZHANG WEI"
    assert pid.reps(3) == 3
    assert pid.get(3) == "110101198506150019"
    assert pid.get(3, 4, 2) == "2.16.156.10011.1.3"
    assert pid.get(3, 4, 3) == "ISO"
    assert pid.get(3, 5) == "NNCHN"
    assert pid.get(3, 1, rep=1) == "X00000019"
    assert pid.get(3, 5, rep=1) == "SS"
    assert pid.get(3, 1, rep=2) == "JZK00088123"
    assert pid.get(3, 4, rep=2) == "H11010101"
    assert pid.get(3, 1, rep=3) == ""
    assert pid.field(3)[0] == [["110101198506150019"], [""], [""], ["", "2.16.156.10011.1.3", "ISO"], ["NNCHN"]]
    assert pid.field(3)[2] == [["JZK00088123"], [""], [""], ["H11010101"], ["MR"]]
    assert pid.raw(3) == PID3
    assert pid.get(11) == "北京市东城区东直门南大街5号"
    assert msg.first("PV1").get(7, 2) == "李明"
    assert msg.first("ZPI").get(2) == "医保电子凭证"
    assert msg.first("OBX") is None
    assert msg.all("PID") == [pid]


def test_adt_a04_utf8():
    msg = parse(adt_a04().encode("utf-8"))
    check_adt(msg)
    assert msg.charset == "utf-8"
    assert msg.charset_field == "UNICODE UTF-8"


@pytest.mark.parametrize("msh18, wire", [("GB 18030-2000", "gb18030"), ("GBK", "gbk"), ("GB2312", "gb2312")])
def test_adt_a04_gb_family(msh18, wire):
    data = adt_a04(msh18).encode(wire)
    assert "张伟".encode() not in data
    msg = parse(data)
    check_adt(msg)
    assert msg.charset == "gb18030"
    assert msg.charset_field == msh18


def test_gb_trail_bytes_that_look_like_delimiters_in_msh():
    # 億 is 83 7C and 墊 89 7C in GB 18030: a "|" byte inside a character, before MSH-18
    assert "億".encode("gb18030")[1:] == b"|"
    text = adt_a04("GB 18030-2000").replace("|H11010101|YKT|", "|億元医院^墊^L|YKT|", 1)
    for msh18, wire, default in (("GB 18030-2000", "gb18030", "ascii"), ("GBK", "gbk", "ascii"),
                                 ("", "gb18030", "gb18030")):
        msg = parse(text.replace("GB 18030-2000", msh18).encode(wire), default_charset=default)
        assert msg.charset == "gb18030"
        assert msg.sending_facility == "億元医院" and msg.msh.get(4, 2) == "墊"
        assert msg.first("PID").get(5) == "张伟"
    # and the same text in UTF-8 is read the plain way
    msg = parse(text.replace("GB 18030-2000", "UTF-8").encode("utf-8"))
    assert msg.charset == "utf-8" and msg.sending_facility == "億元医院"


def test_parse_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(HL7ParseError("bad", "MSH-18", "103")))
    assert (str(err), err.location, err.code) == ("bad", "MSH-18", "103")


def test_str_input_and_default_charset():
    check_adt(parse(adt_a04()))
    no18 = adt_a04("")
    assert parse(no18.encode("gb18030"), default_charset="gb18030").first("PID").get(5) == "张伟"
    assert parse(no18.encode("utf-8"), default_charset="utf-8").charset == "utf-8"


def test_msh_fields_are_hl7_numbered():
    msh = parse(adt_a04()).msh
    assert msh.name == "MSH"
    assert msh.field(1) == [[["|"]]]
    assert msh.field(2) == [[["^~\\&"]]]
    assert msh.get(1) == "|" and msh.get(2) == "^~\\&" and msh.raw(2) == "^~\\&"
    assert msh.get(3) == "HIS"
    assert msh.field(9) == [[["ADT"], ["A04"], ["ADT_A01"]]]
    assert msh.get(18) == "UNICODE UTF-8"
    assert len(msh) == 18
    assert msh.field(19) == [] and msh.get(19) == "" and msh.raw(19) == "" and msh.reps(19) == 0


def test_missing_values_are_empty():
    pid = parse(adt_a04()).first("PID")
    assert pid.field(2) == [] and pid.get(2) == "" and pid.reps(2) == 0
    assert pid.field(0) == [] and pid.get(0) == "" and pid.field(-1) == []
    assert pid.get(99) == "" and pid.field(99) == []
    assert pid.get(5, 9) == "" and pid.get(5, 1, 9) == "" and pid.get(5, 1, 1, 7) == ""
    assert pid.get(1, 2) == "" and pid.get(1, 1, 2) == "" and pid.get(1, rep=1) == ""
    assert len(pid) == 13
    assert len(parse("MSH|^~\\&|A\rNTE|1|||\r").segments[1]) == 1


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r\r\n"])
def test_line_terminators_and_padding(sep):
    text = adt_a04().replace("\r", sep)
    data = b"\xef\xbb\xbf \r\n" + text.encode("utf-8") + b"\n\n  \n\x00\x00"
    check_adt(parse(data))
    check_adt(parse("\ufeff\n" + text + "\n \n"))


def test_mllp_bytes_and_blank_lines_ignored():
    data = b"\x0b" + adt_a04().replace("\rEVN", "\r\r \r\x00\rEVN").encode("utf-8") + b"\x1c\r"
    check_adt(parse(data))


def test_escape_sequences_in_obx5():
    msg = parse(ORU_ESCAPES.encode("utf-8"))
    obx = msg.all("OBX")
    assert len(obx) == 3
    assert obx[0].get(5) == "a|b^c&d~e\\f张g\nh粗"
    assert obx[0].field(5) == [[["a|b^c&d~e\\f张g\nh粗"]]]
    assert obx[0].raw(5) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\Xe5bca0\\g\\.br\\h\\H\\粗\\N\\"
    # character-set switches and local escapes are kept verbatim; an unterminated escape literally
    assert obx[1].get(5) == "\\Cxxyy\\ \\M2442\\ \\Zlocal\\ C:\\path"
    assert obx[2].get(5) == "6.5"
    zxy = msg.first("ZXY")
    assert zxy.reps(2) == 2 and zxy.get(2, 2, rep=1) == "second" and zxy.get(2, 1, rep=1) == "第二"


def test_hex_escape_uses_message_charset():
    zhang_gb = "张".encode("gb18030").hex()
    text = f"MSH|^~\\&|A|B||||||||||||||GB18030\rOBX|1|TX|||\\X{zhang_gb}\\\r"
    assert parse(text.encode("gb18030")).first("OBX").get(5) == "张"
    # not valid in the charset: latin-1
    text = "MSH|^~\\&|A|B||||||||||||||UNICODE UTF-8\rOBX|1|TX|||\\Xe9\\\r"
    assert parse(text.encode("utf-8")).first("OBX").get(5) == "é"
    # an ASCII message carrying UTF-8 hex
    assert parse(b"MSH|^~\\&|A\rOBX|1|TX|||\\Xe5bca0\\\r").first("OBX").get(5) == "张"


def test_custom_encoding_characters():
    text = ("MSH#$*@!#HIS#H1#YKT#YKT#20260301##ADT$A04#C1#P#2.4\r"
            "PID#1##ID1$$$&ignored*ID2$$$NS!1.2!ISO##张@F@伟@S@x@T@y@R@z@E@w$ZHANG|WEI^~\\&\r")
    msg = parse(text.encode("utf-8"), default_charset="utf-8")
    assert msg.encoding == Encoding("#", "$", "*", "@", "!")
    assert msg.msh.get(1) == "#" and msg.msh.get(2) == "$*@!"
    assert msg.message_type == "ADT" and msg.trigger == "A04" and msg.control_id == "C1"
    pid = msg.first("PID")
    assert pid.reps(3) == 2
    assert pid.get(3, 1, rep=1) == "ID2" and pid.get(3, 4, 2, rep=1) == "1.2"
    assert pid.get(5) == "张#伟$x!y*z@w"
    assert pid.get(5, 2) == "ZHANG|WEI^~\\&"  # the standard delimiters are plain text here


def test_truncation_character_accepted():
    msg = parse("MSH|^~\\&#|A|B||||||C9|P|2.7\rPID|1\r")
    assert msg.encoding == Encoding() and msg.control_id == "C9" and msg.msh.get(2) == "^~\\&#"


def test_z_segments_and_unknown_segments_kept():
    msg = parse(ORU_ESCAPES)
    assert [s.name for s in msg] == ["MSH", "PID", "OBR", "OBX", "OBX", "OBX", "ZXY"]
    assert msg.first("ZXY").get(2, 2) == "custom"
    assert str(msg.first("OBR")) == "OBR|1|ORD1|LAB1|CBC^血常规^LN"


def test_segment_standalone():
    seg = Segment("PID", "PID|1||A~B")
    assert seg.reps(3) == 2 and seg.get(3, rep=1) == "B" and len(seg) == 3


# ------------------------------------------------------------------------------ parse: malformed

@pytest.mark.parametrize("data", [b"", b"   \r\n", b"PID|1||x\rMSH|^~\\&|", b"EVN|A04\r", b"\x00\x00"])
def test_no_msh(data):
    with pytest.raises(HL7ParseError) as e:
        parse(data)
    assert e.value.location == "MSH" and e.value.code == "100"


@pytest.mark.parametrize("head, where", [
    ("MSH|^~|A", "MSH-2"), ("MSH|^~\\|A", "MSH-2"), ("MSH|^^\\&|A", "MSH-2"), ("MSH|^~|&|A", "MSH-2"),
    ("MSH|^~\\&xyz|A", "MSH-2"), ("MSH|^~\\a|A", "MSH-2"), ("MSHA^~\\&A", "MSH-1"), ("MSH ^~\\& A", "MSH-1"),
    ("MSH", "MSH-1"),
])
def test_bad_separators(head, where):
    for data in (head, head.encode()):
        with pytest.raises(HL7ParseError) as e:
            parse(data)
        assert (e.value.location, e.value.code) == (where, "102")


def test_unknown_msh18():
    with pytest.raises(HL7ParseError) as e:
        parse(adt_a04("KOI8-R").encode("utf-8"))
    assert (e.value.location, e.value.code) == ("MSH-18", "103")
    assert "KOI8-R" in str(e.value)


def test_undecodable_bytes_located():
    # GB 18030 bytes in a message that says UTF-8: the first bad byte is in PID-5
    data = adt_a04("UNICODE UTF-8").replace("UNICODE UTF-8", "UTF-8").encode("gb18030")
    with pytest.raises(HL7ParseError) as e:
        parse(data)
    assert e.value.code == "102" and e.value.location == "PID-5"
    assert "utf-8" in str(e.value)
    # no MSH-18, ASCII default: the Chinese name cannot be read
    with pytest.raises(HL7ParseError) as e:
        parse(adt_a04("").encode("utf-8"))
    assert (e.value.location, e.value.code) == ("PID-5", "102")
    assert "ascii" in str(e.value)
    # in MSH itself (numbering shifted) and in a repeated segment
    with pytest.raises(HL7ParseError) as e:
        parse("MSH|^~\\&|医院|H1\r".encode())
    assert e.value.location == "MSH-3"
    with pytest.raises(HL7ParseError) as e:
        parse(b"MSH|^~\\&|A|||||||||||||||UTF-8\rOBX|1|TX|||ok\rOBX|2|TX|||" + b"\xff\xfe\r")
    assert e.value.location == "OBX[2]-5"


def test_invalid_segment_id():
    with pytest.raises(HL7ParseError) as e:
        parse("MSH|^~\\&|A\rPI|1\r")
    assert e.value.code == "100"
    with pytest.raises(HL7ParseError):
        parse("MSH|^~\\&|A\rPIDX|1\r")


def test_utf16_with_bom():
    msg = parse(adt_a04("UNICODE UTF-16").encode("utf-16"))
    check_adt(msg)
    assert msg.charset == "utf-16"


def test_parse_rejects_other_types():
    with pytest.raises(TypeError):
        parse(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ escape

ENC = Encoding()


def test_escape_known():
    assert escape("a|b^c&d~e\\f\ng", ENC) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g"
    assert escape("plain 张伟", ENC) == "plain 张伟"
    assert escape("x\ry", ENC) == "x\\X0D\\y"
    assert unescape("x\\X0D\\y", ENC) == "x\ry"
    assert unescape("a\\.sp\\b\\.sp2\\c", ENC) == "a\nb\n\nc"
    assert unescape("\\Xzz\\ \\X123\\", ENC) == "\\Xzz\\ \\X123\\"
    assert unescape("end\\", ENC) == "end\\" and unescape("\\F", ENC) == "\\F"
    assert unescape("a\\\\b", ENC) == "a\\\\b" and unescape("\\\\F\\", ENC) == "\\\\F\\"
    custom = Encoding("#", "$", "*", "@", "!")
    assert escape("a#b$c*d@e!f\\g", custom) == "a@F@b@S@c@R@d@E@e@T@f\\g"
    dotted = Encoding("|", ".", "~", "\\", "&")
    assert escape("a\nb", dotted) == "a\\X0A\\b" and unescape("a\\X0A\\b", dotted) == "a\nb"


ENCODINGS = st.permutations(list("|^~\\&#$*@!%.")).map(lambda p: Encoding(*p[:5]))


@given(st.text(), ENCODINGS)
def test_escape_roundtrip(text, enc):
    escaped = escape(text, enc)
    for ch in (enc.field, enc.component, enc.repetition, enc.subcomponent, "\r", "\n"):
        assert ch not in escaped
    assert unescape(escaped, enc) == text
    assert unescape(escape(text, ENC), ENC) == text


# ------------------------------------------------------------------------------ charset

@pytest.mark.parametrize("value, codec", [
    ("", "ascii"), ("  ", "ascii"), ("UNICODE UTF-8", "utf-8"), ("utf-8", "utf-8"), ("UTF8", "utf-8"),
    (" unicode  utf-8 ", "utf-8"), ("GB 18030-2000", "gb18030"), ("GB18030", "gb18030"),
    ("gb 18030", "gb18030"), ("GBK", "gb18030"), ("GB2312", "gb18030"), ("GB 2312", "gb18030"),
    ("CP936", "gb18030"), ("ASCII", "ascii"), ("8859/1", "latin-1"), ("UNICODE", "utf-16"),
    ("UNICODE UTF-16", "utf-16"),
])
def test_codec_for(value, codec):
    assert codec_for(value) == codec


def test_codec_for_default_and_unknown():
    assert codec_for("", "gb18030") == "gb18030"
    for bad in ("KOI8-R", "EBCDIC", "GB", "utf-9"):
        with pytest.raises(KeyError):
            codec_for(bad)


def test_hl7_name():
    assert hl7_name("utf-8") == "UNICODE UTF-8" and hl7_name("utf8") == "UNICODE UTF-8"
    assert hl7_name("gb18030") == "GB 18030-2000"
    assert hl7_name("ascii") == "ASCII"
    assert hl7_name("latin-1") == "8859/1"
    for codec in ("utf-8", "gb18030", "ascii", "latin-1", "utf-16"):
        assert codec_for(hl7_name(codec)) in (codec, "latin-1")
    with pytest.raises(KeyError):
        hl7_name("no-such-codec")


# ------------------------------------------------------------------------------ property: round trip

VALUE = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(list("|^~\\&#$*@!%.\n\r 张伟李明医院")),
    ),
    max_size=12,
)
FIELD = st.lists(st.lists(st.lists(VALUE, min_size=1, max_size=3), min_size=1, max_size=3), min_size=1, max_size=3)
SEGMENT = st.tuples(st.sampled_from(["PID", "PV1", "OBX", "NTE", "ZXY", "Z01"]),
                    st.lists(FIELD, min_size=1, max_size=6))


@given(enc=st.one_of(st.just(ENC), ENCODINGS), codec=st.sampled_from(["utf-8", "gb18030"]),
       segments=st.lists(SEGMENT, min_size=1, max_size=4), sep=st.sampled_from(["\r", "\n", "\r\n"]))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_parse_roundtrip(enc, codec, segments, sep):
    fs, c, r, s = enc.field, enc.component, enc.repetition, enc.subcomponent
    values = ["APP", "FAC", "", "", "20260301", "", "ORU", "CTRL1", "P", "2.5", "", "", "", "", "CHN",
              hl7_name(codec)]
    msh = fs.join(["MSH", enc.characters] + [escape(v, enc) for v in values])
    msh = msh.replace(f"{fs}ORU{fs}", f"{fs}ORU{c}R01{fs}")
    lines = [msh]
    for name, fields in segments:
        lines.append(fs.join([name] + [
            r.join(c.join(s.join(escape(v, enc) for v in comp) for comp in rep) for rep in field)
            for field in fields]))
    data = (sep.join(lines) + sep).encode(codec)
    msg = parse(data)
    assert msg.charset == codec and msg.encoding == enc
    assert msg.control_id == "CTRL1" and msg.message_type == "ORU" and msg.trigger == "R01"
    assert msg.version == "2.5" and msg.charset_field == hl7_name(codec)
    assert [seg.name for seg in msg.segments] == ["MSH"] + [name for name, _ in segments]
    for seg, (_, fields) in zip(msg.segments[1:], segments):
        for n, field in enumerate(fields, 1):
            got = seg.field(n)
            for ri, rep in enumerate(field):
                for ci, comp in enumerate(rep, 1):
                    for si, value in enumerate(comp, 1):
                        assert seg.get(n, ci, si, ri) == value
                        if got:
                            assert got[ri][ci - 1][si - 1] == value


# ------------------------------------------------------------------------------ property: robustness

def exercise(msg: Message) -> None:
    for attr in ("message_type", "trigger", "structure", "control_id", "version", "sending_facility",
                 "sending_application", "charset_field"):
        assert isinstance(getattr(msg, attr), str)
    for seg in msg.segments:
        for n in range(len(seg) + 2):
            seg.field(n)
            seg.get(n, 2, 2, 1)
            seg.get(n)
            seg.reps(n)
            seg.raw(n)
    build_ack(msg, "AE", [AckError("PID-3", "101", "x")], control_id="A", now=NOW)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_parse_arbitrary_bytes(data):
    for candidate in (data, b"MSH|^~\\&|" + data):
        try:
            msg = parse(candidate)
        except HL7ParseError:
            continue
        exercise(msg)


@given(st.text(max_size=300), st.sampled_from(["ascii", "utf-8", "gb18030"]))
@settings(max_examples=300)
def test_parse_arbitrary_text(text, default):
    candidate = "MSH|^~\\&|" + text
    for data in (candidate, candidate.encode("utf-8", "surrogatepass"), candidate.encode("gb18030", "replace")):
        try:
            msg = parse(data, default_charset=default)
        except HL7ParseError:
            continue
        exercise(msg)


# ------------------------------------------------------------------------------ ACK

def ack_segments(data: bytes, codec: str = "ascii") -> list[list[str]]:
    text = data.decode(codec)
    assert text.endswith("\r") and "\n" not in text
    return [line.split("|") for line in text[:-1].split("\r")]


def test_ack_aa_echoes_control_id():
    msg = parse(adt_a04().encode("utf-8"))
    data = build_ack(msg, "AA", control_id="ACK0001", now=NOW)
    msh, msa = ack_segments(data, "utf-8")
    assert msh[:12] == ["MSH", "^~\\&", "YKT-GATEWAY", "YKT", "HIS", "H11010101", "20260301093000+0800", "",
                        "ACK^A04^ACK", "ACK0001", "P", "2.4"]
    assert msh[17] == "UNICODE UTF-8"
    assert msa == ["MSA", "AA", "MSG00001"]
    back = parse(data)
    assert back.message_type == "ACK" and back.trigger == "A04" and back.structure == "ACK"
    assert back.control_id == "ACK0001" and back.first("MSA").get(2) == "MSG00001"


def test_ack_ae_v25_err():
    msg = parse(adt_a04(version="2.5").encode("utf-8"))
    errors = [AckError("PID-3[2].1", "101", "社保卡号缺失 | 请补录"),
              AckError("OBX[2]-5", "102", "not a number", "W"),
              AckError("PV1", "100", "PV1 out of order"),
              AckError("", "207", "internal")]
    data = build_ack(msg, "AE", errors, control_id="ACK0002", now=NOW)
    ack = parse(data)
    assert ack.version == "2.5" and ack.charset == "utf-8"
    assert ack.first("MSA").get(1) == "AE" and ack.first("MSA").get(3) == "社保卡号缺失 | 请补录"
    err = ack.all("ERR")
    assert len(err) == 4
    assert err[0].raw(2) == "PID^1^3^2^1"
    assert err[0].raw(3) == "101^Required field missing^HL70357"
    assert err[0].get(4) == "E"
    assert err[0].raw(8) == "社保卡号缺失 \\F\\ 请补录" and err[0].get(8) == "社保卡号缺失 | 请补录"
    assert err[1].raw(2) == "OBX^2^5^1" and err[1].get(3, 2) == "Data type error" and err[1].get(4) == "W"
    assert err[2].raw(2) == "PV1^1" and err[2].get(3) == "100"
    assert err[3].raw(2) == "" and err[3].raw(3) == "207^Application internal error^HL70357"


def test_ack_ae_v23_err():
    msg = parse(adt_a04(version="2.3").encode("utf-8"))
    data = build_ack(msg, "AE", [AckError("PID-3.1", "101", "missing"), AckError("MSH-9", "200", "no")],
                     control_id="ACK3", now=NOW)
    ack = parse(data)
    err = ack.all("ERR")
    assert err[0].raw(1) == "PID^1^3^101&Required field missing&HL70357"
    assert err[1].raw(1) == "MSH^1^9^200&Unsupported message type&HL70357"
    assert len(err[0]) == 8  # ERR-1, then the v2.5 fields ERR-2..8
    assert err[0].get(2, 1) == "PID" and err[0].get(3, 1) == "101" and err[0].get(8) == "missing"
    assert ack.first("MSA").get(3) == "missing"


def test_ack_gb18030_chinese_text():
    msg = parse(adt_a04("GB 18030-2000").encode("gb18030"))
    text = "患者身份证号校验位错误"
    data = build_ack(msg, "AE", [AckError("PID-3.1", "102", text)], control_id="ACK4", now=NOW)
    assert text.encode("gb18030") in data
    assert text.encode("utf-8") not in data
    ack = parse(data)
    assert ack.charset == "gb18030" and ack.charset_field == "GB 18030-2000"
    assert ack.first("MSA").get(3) == text


def test_ack_ascii_fallback():
    msg = parse(adt_a04("").replace("张伟", "ZHANG^WEI").replace("北京市东城区东直门南大街5号", "X")
                .replace("内科门诊", "").replace("李明", "LI").replace("主任医师", "")
                .replace("医保电子凭证", "EC"))
    assert msg.charset == "ascii"
    data = build_ack(msg, "AE", [AckError("PID-5", "101", "姓名缺失")], control_id="A5", now=NOW)
    assert "姓名缺失".encode() in data  # no MSH-18: UTF-8 rather than losing the text
    msg = parse(adt_a04("ASCII").replace("张伟", "ZW").replace("北京市东城区东直门南大街5号", "X")
                .replace("内科门诊", "").replace("李明", "LI").replace("主任医师", "")
                .replace("医保电子凭证", "EC"))
    data = build_ack(msg, "AE", [AckError("PID-5", "101", "姓名缺失")], control_id="A6", now=NOW)
    assert data.decode("ascii").count("?") >= 4  # declared ASCII: replaced


def test_ack_without_message_from_raw_head():
    raw = adt_a04("GB 18030-2000", version="2.3").encode("gb18030")
    data = build_ack(None, "AR", [AckError("", "207", "无法解析")], control_id="A7", now=NOW, raw_head=raw[:120])
    ack = parse(data)
    assert ack.first("MSA").get(2) == "MSG00001" and ack.first("MSA").get(1) == "AR"
    assert ack.version == "2.3" and ack.trigger == "A04"
    assert ack.first("ERR").raw(1) == "^^^207&Application internal error&HL70357"
    # custom delimiters recovered
    data = build_ack(None, "AR", control_id="A8", now=NOW, raw_head=b"MSH#$*@!#HIS#H1#YKT#YKT#2026##ADT$A04#C77#P#2.5")
    assert data.startswith(b"MSH#$*@!#YKT-GATEWAY#YKT#HIS#H1#")
    assert parse(data).first("MSA").get(2) == "C77"
    # nothing usable: defaults
    for head in (None, b"", b"garbage", b"MSH|^^^^|x"):
        data = build_ack(None, "AR", [AckError("", "100", "no MSH")], control_id="A9", now=NOW, raw_head=head)
        ack = parse(data)
        assert ack.version == "2.5" and ack.first("MSA").get(2) == "" and ack.encoding == Encoding()
        assert ack.first("ERR").raw(3) == "100^Segment sequence error^HL70357"


def test_ack_uses_original_delimiters_and_escapes():
    text = "MSH#$*@!#HIS#H1#YKT#YKT#20260301##ADT$A04#C1#T#2.5\rPID#1\r"
    msg = parse(text)
    data = build_ack(msg, "AE", [AckError("PID-3", "101", "a#b$c")], control_id="X#1", now=NOW,
                     receiving_app="GW$1")
    ack = parse(data)
    assert ack.encoding == msg.encoding
    assert ack.sending_application == "GW$1" and ack.control_id == "X#1"
    assert ack.msh.get(11) == "T"
    assert ack.first("ERR").get(8) == "a#b$c"
    assert ack.first("ERR").raw(2) == "PID$1$3$1"


def test_ack_naive_time_and_bad_code():
    msg = parse(adt_a04())
    data = build_ack(msg, "AA", control_id="A", now=datetime(2026, 3, 1, 9, 30))
    assert parse(data).msh.get(7) == "20260301093000"
    with pytest.raises(ValueError):
        build_ack(msg, "OK", control_id="A", now=NOW)


def test_parse_location():
    assert parse_location("PID-3.1") == ("PID", 1, 3, 1, 1, None)
    assert parse_location("PID-3[2].1") == ("PID", 1, 3, 2, 1, None)
    assert parse_location("OBX[2]-5") == ("OBX", 2, 5, 1, None, None)
    assert parse_location("PID-3.4.2") == ("PID", 1, 3, 1, 4, 2)
    assert parse_location("PV1") == ("PV1", 1, None, None, None, None)
    assert parse_location("") is None and parse_location("patient.name") is None


def test_ack_to_a_header_seen_before_is_the_ack_a_first_one_gets():
    from datetime import timedelta

    from gateway.hl7 import ack

    originals = [adt_a04(charset, version=version).replace("MSG00001", control).encode(codec)
                 for charset, codec in (("UNICODE UTF-8", "utf-8"), ("GB 18030-2000", "gb18030"))
                 for version in ("2.3", "2.5") for control in ("C1", "C2")]
    errors = [AckError("PID-3.1", "101", "缺失")]
    acks = []
    for i, data in enumerate(originals):
        for code, errs in (("AA", []), ("AE", errors)):
            when = NOW + timedelta(seconds=i // 3)
            acks.append((data, code, errs, when, build_ack(parse(data), code, errs,
                                                           control_id=f"K{i}", now=when)))
    for i, (data, code, errs, when, first) in enumerate(acks):
        ack._TEMPLATES.clear()
        ack._last_ts = (None, "")
        assert build_ack(parse(data), code, errs, control_id=f"K{i // 2}", now=when) == first
    msh, msa = ack_segments(acks[0][4], "utf-8")
    assert msh[9] == "K0" and msa == ["MSA", "AA", "C1"]
    msh, msa = ack_segments(acks[2][4], "utf-8")
    assert msh[9] == "K1" and msa == ["MSA", "AA", "C2"]  # the same header, its own ids


def test_ack_timestamp_follows_the_clock_and_its_zone():
    from datetime import datetime, timedelta, timezone

    msg = parse(adt_a04().encode("utf-8"))
    for when, text in ((NOW, "20260301093000+0800"),
                       (NOW + timedelta(microseconds=999_999), "20260301093000+0800"),
                       (NOW + timedelta(seconds=1), "20260301093001+0800"),
                       (NOW.astimezone(timezone.utc), "20260301013000+0000"),
                       (NOW.astimezone(timezone(timedelta(hours=-5, minutes=-30))),
                        "20260228200000-0530"),
                       (datetime(2026, 3, 1, 9, 30), "20260301093000")):
        msh, _msa = ack_segments(build_ack(msg, "AA", control_id="T", now=when), "utf-8")
        assert msh[6] == text
