"""SIPREC message helpers (src/mppsim/siprec/sipmsg.py): multipart bodies (RFC 2046) and SRC
detection (RFC 7866 / R-REC-4) on the captures in tests/data/siprec. Pure text, no SIP stack. SIP
headers and SDP are the SIP toolkit's: tests/test_sip_message.py, tests/test_sip_sdp.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.sip import message as sip_message
from mppsim.siprec import metadata
from mppsim.siprec.sipmsg import (
    MultipartError, Part, boundary_of, build_multipart, is_siprec_src, metadata_part, sdp_part,
    split_multipart,
)

DATA = Path(__file__).parent / "data" / "siprec"

SDP = ("v=0\r\no=- 3912 3912 IN IP4 127.0.0.1\r\ns=mppsim\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
       "m=audio 40002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")


def fixture(name: str) -> tuple[str, dict, str, list[Part]]:
    msg = sip_message.read((DATA / name).read_bytes())
    headers, body = msg.by_name(), msg.text
    return msg.start_line, headers, body, split_multipart(headers["content-type"][0], body)


# ----- multipart/mixed (RFC 2046 §5.1, RFC 7866 §9.1) --------------------------------------------

def test_rfc7866_9_1_body_is_sdp_plus_metadata_round_trip():
    """RFC 7866 §9.1: multipart/mixed = SDP + metadata (Content-Disposition: recording-session);
    every body comes back byte for byte."""
    md_type, md_xml = metadata.build(metadata_sample())
    content_type, body = build_multipart([
        ("application/sdp", {}, SDP),
        (md_type, {"Content-Disposition": "recording-session"}, md_xml)])
    assert content_type.startswith("multipart/mixed;boundary=")
    parts = split_multipart(content_type, body.encode())
    assert [p.content_type for p in parts] == ["application/sdp", "application/rs-metadata+xml"]
    assert sdp_part(parts).body == SDP and metadata_part(parts).body == md_xml
    assert metadata_part(parts).headers["content-disposition"] == "recording-session"
    assert body.endswith("--\r\n")


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60), min_size=1, max_size=4))
def test_rfc2046_round_trip_any_bodies(bodies):
    """RFC 2046: any bodies (CR, LF, dashes included) survive build + split unchanged."""
    content_type, body = build_multipart([("text/plain", {}, b) for b in bodies])
    assert [p.body for p in split_multipart(content_type, body)] == bodies


def test_build_refuses_boundary_inside_a_body():
    with pytest.raises(ValueError):
        build_multipart([("text/plain", {}, "x\r\n--abc\r\n")], boundary="abc")


def test_boundary_needing_quotes_is_quoted():
    content_type, body = build_multipart([("text/plain", {}, "hi")], boundary="a b")
    assert content_type == 'multipart/mixed;boundary="a b"'
    assert split_multipart(content_type, body)[0].body == "hi"


@pytest.mark.parametrize("content_type", [
    'multipart/mixed;boundary="foobar"', "multipart/mixed;boundary=foobar",
    'multipart/mixed; boundary = "foobar"', "Multipart/Mixed; charset=x; BOUNDARY=foobar",
])
def test_boundary_quoted_or_not_with_lws(content_type):
    """Quirk: a boundary in quotes, LWS around '=', any case."""
    assert boundary_of(content_type) == "foobar"


def test_no_boundary_is_an_error():
    with pytest.raises(MultipartError):
        split_multipart("multipart/mixed", "--x\r\n\r\nbody\r\n--x--\r\n")
    assert issubclass(MultipartError, ValueError)


def test_lf_preamble_missing_close_and_folded_headers():
    """Quirks: LF line ends, a preamble, folded part header, no blank line, no final boundary."""
    body = ("preamble, ignored\n--b\nContent-Type: application/sdp\nContent-Disposition: session;\n"
            " handling=required\n\nv=0\n--b\nContent-Type: application/rs-metadata\n"
            "<recording/>\n")
    parts = split_multipart("multipart/mixed;boundary=b", body)
    assert [p.content_type for p in parts] == ["application/sdp", "application/rs-metadata"]
    assert parts[0].body == "v=0"
    assert parts[0].headers["content-disposition"] == "session; handling=required"
    assert parts[1].body == "<recording/>\n"  # unterminated last part runs to the end


def test_epilogue_after_close_is_dropped():
    parts = split_multipart("multipart/mixed;boundary=b", "--b\r\n\r\none\r\n--b--\r\n--b\r\n\r\ntwo")
    assert [p.body for p in parts] == ["one"]
    assert parts[0].content_type == "text/plain"  # RFC 2046 default


@pytest.mark.parametrize("headers, found", [
    ({"content-type": "application/rs-metadata+xml"}, True),
    ({"content-type": "Application/RS-Metadata"}, True),  # RFC 7866's spelling, any case
    ({"content-type": "application/xml", "content-disposition": "Recording-Session;handling=required"}, True),
    ({"content-type": "application/xml"}, False),
])
def test_rfc7866_9_metadata_part_by_type_or_disposition(headers, found):
    """RFC 7866 §9 / RFC 9806: rs-metadata(+xml), or Content-Disposition recording-session."""
    body = "--b\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n<x/>\r\n--b--\r\n"
    parts = split_multipart("multipart/mixed;boundary=b", body)
    assert (metadata_part(parts) is parts[0]) is found
    assert sdp_part(parts) is None


# ----- SRC marks (RFC 7866 §6.1.1, R-REC-4) on the captures ---------------------------------------

def test_rfc7866_6_1_1_fixture_require_and_src_contact():
    """RFC 7866 §6.1.1: Require: siprec and Contact ;+sip.src mark an SRC."""
    start, headers, _, parts = fixture("rfc7866-invite.sip")
    assert start.startswith("INVITE ")
    assert headers["require"] == ["siprec"]
    assert is_siprec_src(headers)
    assert sdp_part(parts).headers["content-type"] == "application/SDP"  # as RFC 7866 writes it
    assert metadata_part(parts) is parts[1]


def test_r_rec_4_fixture_src_param_without_require():
    """R-REC-4: BroadWorks sends Contact ;src, no Require, X-BroadWorks-Correlation-Info."""
    _, headers, _, parts = fixture("broadworks-invite.sip")
    assert "require" not in headers
    assert is_siprec_src(headers)
    assert headers["x-broadworks-correlation-info"] == ["2be5c3c1-3b1d-4b5c-8c34-6e3f2a2c9d11"]
    assert metadata_part(parts) is parts[0] and sdp_part(parts) is parts[1]  # metadata first


def test_fixture_quirks_compact_headers_preamble_no_close():
    """Quirks fixture: LF, compact headers, k: siprec, quoted boundary with LWS, preamble,
    application/rs-metadata, no closing delimiter."""
    _, headers, _, parts = fixture("legacy-ns-no-labels.sip")
    assert is_siprec_src(headers) and headers["supported"] == ["siprec, timer"]
    assert [p.content_type for p in parts] == ["application/sdp", "application/rs-metadata"]
    assert metadata.parse(metadata_part(parts).body).session_id == "iNnk6I8MRqu8sORatjGicg=="


@pytest.mark.parametrize("headers, src", [
    ({"contact": ["<sip:src@127.0.0.1>;+sip.src"]}, True),
    ({"contact": ["<sip:127.0.0.1:5100;transport=tcp>;src"]}, True),
    ({"contact": ["<sip:127.0.0.1:5100;src>"]}, True),
    ({"contact": ['"A; B" <sip:a@127.0.0.1>;expires=60']}, False),
    ({"contact": ["<sip:a@127.0.0.1;srcport=5>"]}, False),
    ({"contact": ["<sip:srs@127.0.0.1>;+sip.srs"]}, False),
    ({"require": ["100rel, siprec"]}, True),
    ({"supported": ["SIPREC"]}, True),
    ({"supported": ["timer, 100rel"]}, False),
    ({"contact": "<sip:src@127.0.0.1>;+sip.src"}, True),  # a plain str value is fine too
    ({}, False),
])
def test_is_siprec_src(headers, src):
    """RFC 7866 §6.1.1 (+sip.src, Require: siprec) and R-REC-4 (;src)."""
    assert is_siprec_src(headers) is src


def test_is_siprec_src_takes_a_parsed_message_too():
    """The recorder passes its parsed request; compact forms count (k: siprec)."""
    assert is_siprec_src(sip_message.read("INVITE sip:r@h SIP/2.0\r\nk: siprec\r\n\r\n"))
    assert not is_siprec_src(sip_message.read("INVITE sip:r@h SIP/2.0\r\nm: <sip:a@h>\r\n\r\n"))


def metadata_sample() -> metadata.Metadata:
    sid, s1, s2 = metadata.new_id(), metadata.new_id(), metadata.new_id()
    return metadata.Metadata(
        dialect="rfc7866", datamode="complete", group_id=metadata.new_id(), session_id=sid,
        sip_session_id="x@127.0.0.1",
        participants=[metadata.Participant(metadata.new_id(), "Alice", "sip:1001@127.0.0.1", [s1], [s2]),
                      metadata.Participant(metadata.new_id(), "Bob", "sip:1002@127.0.0.1", [s2], [s1])],
        streams=[metadata.Stream(s1, "1", sid), metadata.Stream(s2, "2", sid)],
        start_time=metadata.now_iso(), stop_time=None, state="active", events=[], broadworks=None)
