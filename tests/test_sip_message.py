"""The SIP toolkit's messages and stream framing (src/mppsim/sip/message.py, framing.py): one test
per RFC 3261 rule the parser relies on, the quirks real peers send (issue 9, issue 4), and
parse(serialize(m)) == m for any message. No sockets."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.sip import framing
from mppsim.sip import message as m
from mppsim.sip.limits import MAX_MESSAGE
from mppsim.sip.uri import name_addr

INVITE = ("INVITE sip:srs@127.0.0.1:5070 SIP/2.0\r\n"
          "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
          "f: \"Alice Smith\" <sip:1001@10.0.0.1>;tag=t1\r\n"
          "t: <sip:srs@127.0.0.1>\r\n"
          "i: call-1@10.0.0.1\r\n"
          "CSeq: 7 INVITE\r\n"
          "Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
          "Route: sip:127.0.0.1:5070;lr\r\n"
          "m: <sip:src@10.0.0.1:5060>;+sip.src\r\n"
          "Subject: folded\r\n continued\r\n"
          "l: 4\r\n\r\nbodyEXTRA")


# ----- RFC 3261 §7: message syntax --------------------------------------------------------------

def test_rfc3261_7_3_compact_forms_folding_and_content_length_cut():
    req = m.parse(INVITE.encode())
    assert isinstance(req, m.Request) and req.method == "INVITE"
    assert req.call_id == "call-1@10.0.0.1" and req.cseq == (7, "INVITE")
    assert req.from_tag == "t1" and req.to_tag == "" and req.branch == "z9hG4bKabc"
    assert req.get("subject") == "folded continued"
    assert req.body == b"body"            # UDP padding after Content-Length is not body (§18.3)


def test_rfc3261_7_1_request_line_and_7_2_status_line():
    req = m.parse(INVITE.encode())
    assert isinstance(req, m.Request) and (req.method, req.uri) == ("INVITE", "sip:srs@127.0.0.1:5070")
    resp = m.parse(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCSeq: 7 INVITE\r\n\r\n")
    assert isinstance(resp, m.Response) and resp.is_response
    assert (resp.status, resp.code, resp.reason, resp.method) == (180, 180, "Ringing", "INVITE")


def test_rfc3261_7_3_1_header_names_are_case_insensitive():
    req = m.parse(INVITE.replace("CSeq: 7", "cSEQ: 7").replace("Subject", "SUBJECT").encode())
    assert req.cseq == (7, "INVITE") and req.get("Subject") == req.get("subject") == "folded continued"


def test_rfc3261_7_3_1_folded_lines_join_with_one_space():
    assert m.parse(INVITE.encode()).get("subject") == "folded continued"
    msg = m.read("INVITE sip:a@b SIP/2.0\r\nAccept: application/sdp,\r\n\tapplication/rs-metadata\r\n\r\n")
    assert msg.get("accept") == "application/sdp, application/rs-metadata"


def test_rfc3261_7_3_1_multi_value_headers_are_rows_or_commas_and_keep_their_order():
    """Several rows of one header equal one row with their values comma-separated; a comma inside
    quotes or <> separates nothing."""
    req = m.parse(INVITE.replace("Route: sip:127.0.0.1:5070;lr\r\n",
                                 'Route: sip:127.0.0.1:5070;lr\r\nContact: "A, B" <sip:a@h;x=1,2>, <sip:b@h>\r\n')
                  .encode())
    assert req.values("record-route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert req.values("contact") == ['"A, B" <sip:a@h;x=1,2>', "<sip:b@h>", "<sip:src@10.0.0.1:5060>;+sip.src"]
    resp = m.read(b"SIP/2.0 200 OK\nVia: a\nVia: b\nContent-Length: 3\n\nabcdef")
    assert resp.get_all("via") == ["a", "b"] and resp.by_name()["via"] == ["a", "b"]


def test_rfc3261_7_3_3_compact_forms_expand_to_full_names():
    msg = m.read("INVITE sip:rec@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/TCP 127.0.0.1:5090\r\nf: <sip:a@b>;tag=1\r\n"
                 "t: <sip:rec@127.0.0.1>\r\ni: abc@127.0.0.1\r\nk: siprec\r\nm: <sip:src@127.0.0.1>;+sip.src\r\n"
                 "c: text/plain\r\nl: 2\r\n\r\nhi")
    assert msg.call_id == "abc@127.0.0.1" and msg.get("supported") == "siprec"
    assert msg.get("contact") == "<sip:src@127.0.0.1>;+sip.src"
    assert {"via", "from", "to", "content-type", "content-length"} <= set(msg.by_name())
    assert msg.text == "hi"


def test_rfc3261_18_3_udp_padding_after_content_length_is_not_body():
    req = m.parse(INVITE.encode())
    assert req.body == b"body"


def test_rfc3261_18_3_a_stream_message_with_a_body_needs_content_length():
    raw = INVITE.replace("l: 4\r\n", "").encode()
    assert m.parse(raw).body == b"bodyEXTRA"                # a datagram ends where it ends
    with pytest.raises(m.ParseError, match="no Content-Length on a stream"):
        m.parse(raw, stream=True)


def test_rfc3261_20_14_content_length_is_a_number_and_no_larger_than_the_body():
    with pytest.raises(m.ParseError, match="is not a number"):
        m.parse(INVITE.replace("l: 4", "l: four").encode())
    with pytest.raises(m.ParseError, match="Content-Length 400 but"):
        m.parse(INVITE.replace("l: 4", "l: 400").encode())


def test_rfc3261_8_1_1_a_request_needs_via_from_to_call_id_cseq():
    for name in ("Via: ", "f: ", "t: ", "i: ", "CSeq: "):
        line = next(l for l in INVITE.split("\r\n") if l.startswith(name))
        with pytest.raises(m.ParseError, match="missing"):
            m.parse(INVITE.replace(line + "\r\n", "").encode())


def test_rfc3261_8_1_1_5_cseq_method_matches_the_request_but_for_ack_and_cancel():
    with pytest.raises(m.ParseError, match="CSeq method INVITE differs from BYE"):
        m.parse(INVITE.replace("INVITE sip:", "BYE sip:").encode())
    ack = m.parse(INVITE.replace("INVITE sip:", "ACK sip:").encode())   # the ACK of a non-2xx
    assert ack.method == "ACK" and ack.cseq == (7, "INVITE")


def test_rfc3261_19_3_a_tag_is_a_header_parameter_not_a_uri_parameter():
    msg = m.read("OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b;tag=uri>\r\nFrom: \"x;tag=no\" <sip:c@d>;tag=f1\r\n\r\n")
    assert msg.to_tag == "" and msg.from_tag == "f1" and msg.tag("from") == "f1"
    assert m.tag_of("sip:a@b;tag=bare") == "bare"


def test_rfc3261_8_2_6_response_copies_via_from_callid_cseq_and_tags_to():
    req = m.parse(INVITE.encode())
    resp = m.parse(m.response(req, 200, to_tag="srs1", body=b"v=0\r\n", content_type="application/sdp"))
    assert isinstance(resp, m.Response) and resp.status == 200
    assert resp.get("via") == req.get("via") and resp.call_id == req.call_id
    assert resp.to_tag == "srs1" and resp.from_tag == "t1" and resp.body == b"v=0\r\n"
    # 100 Trying carries no To tag (§8.2.6.2); control characters never reach a reason phrase
    trying = m.parse(m.response(req, 100))
    assert trying.to_tag == ""
    assert b"\r\nX" not in m.response(req, 400, "bad\r\nX: injected")
    # a To that has a tag keeps it; the Via values may be given (the front door stamps received=)
    again = m.parse(m.response(resp, 200, to_tag="other", vias=["SIP/2.0/UDP h;received=1.2.3.4"], server=""))
    assert again.to_tag == "srs1" and again.get_all("via") == ["SIP/2.0/UDP h;received=1.2.3.4"]
    assert again.get("server") is None


# ----- what goes wrong: a reason, and an answer when one can be given (issue 9) ------------------

@pytest.mark.parametrize("raw,reason,answerable", [
    (INVITE.replace("CSeq: 7 INVITE", "CSeq: x INVITE"), "bad CSeq", True),
    (INVITE.replace("i: call-1@10.0.0.1\r\n", ""), "missing call-id", False),
    (INVITE.replace("f: \"Alice Smith\" <sip:1001@10.0.0.1>;tag=t1\r\n", ""), "missing from", True),
    (INVITE.replace("l: 4", "l: 400"), "Content-Length 400 but", True),
    (INVITE.replace("l: 4", "l: four"), "is not a number", True),
    (INVITE.replace("Subject: folded", "Subj\xe9ct folded"), "malformed header", True),
    ("GARBAGE\r\n\r\n", "bad start line", False),
    ("INVITE sip:1002@h SIP/3.0\r\nVia: x\r\n\r\n", "bad start line", False),
])
def test_issue_9_class_12_13_malformed_requests_say_why_and_stay_answerable(raw, reason, answerable):
    with pytest.raises(m.ParseError) as err:
        m.parse(raw.encode("latin-1"))
    assert reason in err.value.reason
    assert (err.value.request is not None) == answerable


def test_issue_9_class_12_non_utf8_header_bytes_round_trip_into_the_400():
    raw = INVITE.replace("Subject: folded", "Subject: caf\xe9").encode("latin-1")
    with pytest.raises(m.ParseError) as err:
        m.parse(raw)
    assert err.value.element == "subject" and "not UTF-8" in err.value.reason
    # the answer encodes (no UnicodeEncodeError on surrogates) and keeps the bytes it quotes
    out = m.response(err.value.request, 400, "Bad request: " + err.value.reason)
    assert out.startswith(b"SIP/2.0 400 Bad request")


def test_issue_9_class_2_messages_up_to_64k_and_513_beyond():
    big = INVITE.replace("l: 4\r\n\r\nbodyEXTRA", f"l: 60000\r\n\r\n{'x' * 60000}")
    assert len(m.parse(big.encode()).body) == 60000
    with pytest.raises(m.ParseError) as err:
        m.parse(b"x" * (MAX_MESSAGE + 1))
    assert err.value.code == 513 and m.MAX_MESSAGE == MAX_MESSAGE == 65535


def test_issue_9_class_8_route_without_angle_brackets_is_accepted():
    req = m.parse(INVITE.encode())
    assert name_addr(req.get("route")) == ("", "sip:127.0.0.1:5070", ";lr")


def test_lf_line_ends_and_crlf_before_the_start_line_are_tolerated():
    req = m.parse(b"\r\n\r\n" + INVITE.replace("\r\n", "\n").encode())
    assert req.method == "INVITE" and req.get("subject") == "folded continued" and req.body == b"body"


def test_read_never_raises_on_what_parse_refuses():
    """A known peer's message (pjsua2's wholeMsg) is read whatever its header problems."""
    msg = m.read(INVITE.replace("Subject: folded", "no colon here").replace("l: 4", "l: 400"))
    assert msg.method == "INVITE" and msg.get("subject") is None and msg.body == b"bodyEXTRA"
    odd = m.read("HELLO world\r\nX-A: 1\r\n\r\n")
    assert isinstance(odd, m.Request) and odd.method == "HELLO" and odd.get("x-a") == "1"
    assert m.read("INVITE sip:a@b SIP/2.0\r\nX-Mppsim-Compliance:  played \r\n\r\n").has(
        "x-mppsim-compliance", "played")


def test_option_tags_are_tokens_in_any_case():
    req = m.read("INVITE sip:a@b SIP/2.0\r\nRequire: 100rel, SipRec\r\nk: timer\r\nSupported: replaces\r\n\r\n")
    assert req.tokens("require") == ["100rel", "siprec"] and req.tokens("supported") == ["timer", "replaces"]


# ----- the serializer ---------------------------------------------------------------------------

def test_serialize_writes_canonical_names_and_a_true_content_length():
    req = m.parse(INVITE.encode())
    out = m.serialize(req)
    assert out.startswith(b"INVITE sip:srs@127.0.0.1:5070 SIP/2.0\r\nVia: ")
    assert b"\r\nCall-ID: call-1@10.0.0.1\r\n" in out and b"\r\nCSeq: 7 INVITE\r\n" in out
    assert out.endswith(b"\r\nContent-Length: 4\r\n\r\nbody") and out.count(b"Content-Length") == 1
    assert m.canonical("max-forwards") == "Max-Forwards" and m.canonical("WWW-AUTHENTICATE") == "WWW-Authenticate"


_TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=12)
_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e) | st.sampled_from(" é✓"),
                 max_size=40).map(str.strip).filter(lambda v: "," not in v)
_HEADERS = st.lists(st.tuples(_TOKEN.filter(lambda n: n not in m.COMPACT and n != "content-length"), _VALUE),
                    max_size=8)
_BASE = [("via", "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKx"), ("from", "<sip:a@b>;tag=1"),
         ("to", "<sip:c@d>"), ("call-id", "x@y")]


@hsettings(max_examples=200, deadline=None)
@given(method=st.sampled_from(["INVITE", "BYE", "UPDATE", "OPTIONS", "X-CUSTOM"]), user=_TOKEN,
       cseq=st.integers(0, 2 ** 31 - 1), extra=_HEADERS, body=st.binary(max_size=200))
def test_parse_of_serialize_is_identity_for_requests(method, user, cseq, extra, body):
    req = m.Request("", _BASE + [("cseq", f"{cseq} {method}")] + extra, body, method=method,
                    uri=f"sip:{user}@127.0.0.1:5070;transport=tcp")
    back = m.parse(m.serialize(req), stream=True)
    assert (back.method, back.uri, back.body) == (req.method, req.uri, req.body)
    assert [h for h in back.headers if h[0] != "content-length"] == req.headers


@hsettings(max_examples=100, deadline=None)
@given(status=st.integers(100, 699), reason=st.text("abcdefghij XYZ", max_size=20).map(str.strip),
       extra=_HEADERS, body=st.binary(max_size=100))
def test_parse_of_serialize_is_identity_for_responses(status, reason, extra, body):
    resp = m.Response("", _BASE + [("cseq", "1 INVITE")] + extra, body, status=status, reason=reason)
    back = m.parse(m.serialize(resp))
    assert (back.status, back.reason, back.body) == (status, reason, body)
    assert [h for h in back.headers if h[0] != "content-length"] == resp.headers


# ----- stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1) -----------------------------------------

def test_rfc3261_18_3_stream_framing_by_content_length():
    one = INVITE.replace("bodyEXTRA", "body").encode()
    msg, rest = framing.next_message(one + one[:30])
    assert msg == one and rest == one[:30]
    assert framing.next_message(rest) == (None, rest)          # incomplete: wait for more
    assert framing.next_message(one[:-2]) == (None, one[:-2])  # body incomplete
    two, rest = framing.next_message(rest + one[30:])
    assert two == one and rest == b""


def test_rfc5626_3_5_1_crlf_keep_alives_between_messages_are_dropped():
    one = INVITE.replace("bodyEXTRA", "body").encode()
    msg, rest = framing.next_message(b"\r\n\r\n" + one + b"\r\n")
    assert msg == one and rest == b"\r\n" and not framing.pending(rest)
    assert framing.next_message(b"\r\n\r\n") == (None, b"")
    assert framing.pending(b"\r\nINV")


def test_stream_framing_tolerates_lf_heads_and_frames_a_bad_length_as_zero():
    lf = INVITE.replace("bodyEXTRA", "body").replace("\r\n", "\n").encode()
    assert framing.next_message(lf) == (lf, b"")
    bad = INVITE.replace("l: 4", "l: four").replace("bodyEXTRA", "").encode()
    msg, rest = framing.next_message(bad)
    assert msg == bad and rest == b""
    with pytest.raises(m.ParseError, match="not a number"):   # the parser says why: a 400
        m.parse(msg, stream=True)


def test_stream_framing_refuses_a_message_larger_than_max_message():
    head = INVITE.split("\r\n\r\n")[0].replace("l: 4", f"l: {MAX_MESSAGE}")
    with pytest.raises(framing.MessageTooLarge) as err:
        framing.next_message(head.encode() + b"\r\n\r\n")
    assert err.value.head.startswith(b"INVITE sip:srs@")
    with pytest.raises(framing.MessageTooLarge) as err:
        framing.next_message(b"INVITE " + b"x" * MAX_MESSAGE)        # no end of head in sight
    assert len(err.value.head) == 4096
