"""SIPREC message helpers (src/mppsim/siprec/sipmsg.py): multipart bodies (RFC 2046), SIP headers
(RFC 3261), SRC detection (RFC 7866 / R-REC-4) and SDP labels and pauses. Pure text, no SIP stack."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.siprec import metadata
from mppsim.siprec.sipmsg import (
    MultipartError, Part, add_labels, boundary_of, build_multipart, is_siprec_src, metadata_part,
    parse_headers, sdp_labels, sdp_part, sdp_paused, sdp_streams_state, set_connection_address,
    set_origin_user, split_multipart,
)

DATA = Path(__file__).parent / "data" / "siprec"

SDP = ("v=0\r\no=- 3912 3912 IN IP4 127.0.0.1\r\ns=mppsim\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
       "m=audio 40002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")


def fixture(name: str) -> tuple[str, dict, str, list[Part]]:
    start, headers, body = parse_headers((DATA / name).read_bytes())
    return start, headers, body, split_multipart(headers["content-type"][0], body)


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


# ----- SIP headers ------------------------------------------------------------------------------

def test_rfc3261_7_3_3_compact_forms_and_folding():
    """RFC 3261 §7.3.3 compact forms (c m i l f t v k) expand to full names; folded lines join."""
    msg = ("INVITE sip:rec@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/TCP 127.0.0.1:5090\r\nf: <sip:a@b>;tag=1\r\n"
           "t: <sip:rec@127.0.0.1>\r\ni: abc@127.0.0.1\r\nk: siprec\r\nm: <sip:src@127.0.0.1>;+sip.src\r\n"
           "Accept: application/sdp,\r\n application/rs-metadata\r\nc: text/plain\r\nl: 2\r\n\r\nhi")
    start, headers, body = parse_headers(msg)
    assert start == "INVITE sip:rec@127.0.0.1 SIP/2.0"
    assert headers["call-id"] == ["abc@127.0.0.1"] and headers["supported"] == ["siprec"]
    assert headers["contact"] == ["<sip:src@127.0.0.1>;+sip.src"]
    assert {"via", "from", "to", "content-type", "content-length"} <= set(headers)
    assert headers["accept"] == ["application/sdp, application/rs-metadata"]
    assert body == "hi"


def test_repeated_headers_and_content_length_cut():
    msg = b"SIP/2.0 200 OK\nVia: a\nVia: b\nContent-Length: 3\n\nabcdef"
    start, headers, body = parse_headers(msg)
    assert start == "SIP/2.0 200 OK" and headers["via"] == ["a", "b"] and body == "abc"


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


# ----- SDP (RFC 4566, RFC 4574, RFC 7866 §7) ------------------------------------------------------

def test_rfc7866_7_1_1_two_m_lines_each_with_label():
    """RFC 7866 §7.1.1 / R-REC-1: two audio m-lines (one per direction), each with an a=label."""
    labelled = add_labels(SDP, ["1", "2"])
    assert sdp_labels(labelled) == ["1", "2"]
    assert labelled.count("a=label:") == 2 and labelled.endswith("\r\n") and "\n\n" not in labelled
    sections = labelled.split("m=audio")
    assert "a=label:1" in sections[1] and "a=label:2" in sections[2]


def test_add_labels_replaces_and_counts():
    relabelled = add_labels(add_labels(SDP, ["1", "2"]), ["96", "97"])
    assert sdp_labels(relabelled) == ["96", "97"] and relabelled.count("a=label:") == 2
    # a count mismatch labels what it can (it runs inside a pjsua callback, must not raise)
    assert sdp_labels(add_labels(SDP, ["1"])) == ["1", ""]
    assert sdp_labels(add_labels(SDP, ["1", "2", "3"])) == ["1", "2"]
    with pytest.raises(ValueError):
        add_labels(SDP, ["1", "two words"])


def test_labels_missing_read_as_empty_and_lf_kept():
    """Quirk: an SRC without labels; LF-only SDP stays LF."""
    lf = SDP.replace("\r\n", "\n")
    assert sdp_labels(lf) == ["", ""]
    assert "\r" not in add_labels(lf, ["a", "b"])


def test_labels_match_metadata_streams():
    """RFC 7865 §6.7: each metadata <stream><label> names an m-line of the SDP."""
    _, _, _, parts = fixture("broadworks-invite.sip")
    md = metadata.parse(metadata_part(parts).body)
    assert sdp_labels(sdp_part(parts).body) == [s.label for s in md.streams]


@pytest.mark.parametrize("sdp, states", [
    (SDP, ["sendonly", "sendonly"]),
    (SDP.replace("a=sendonly", "a=inactive"), ["inactive", "inactive"]),
    (SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"), ["inactive", "inactive"]),
    (SDP.replace("a=sendonly", "a=recvonly", 1), ["recvonly", "sendonly"]),
    (SDP.replace("m=audio 40002", "m=audio 0"), ["sendonly", "inactive"]),
    (SDP.replace("a=sendonly\r\n", ""), ["sendrecv", "sendrecv"]),
    (SDP.replace("a=sendonly\r\n", "").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n"), ["sendonly", "sendonly"]),
    # a media-level c= overrides the session's
    (SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0").replace(
        "m=audio 40002 RTP/AVP 0 101\r\n", "m=audio 40002 RTP/AVP 0 101\r\nc=IN IP4 127.0.0.1\r\n"),
     ["inactive", "sendonly"]),
    ("v=0\r\nm=video 5000 RTP/AVP 96\r\n", []),
])
def test_sdp_streams_state(sdp, states):
    """RFC 3264 §5.1 / RFC 7866 §7.1.1 pause (a=inactive) and R-REC-4 pause (c=0.0.0.0)."""
    assert sdp_streams_state(sdp) == states


def test_sdp_paused_either_convention():
    """RFC 7866 pause = a=inactive; R-REC-4 (webex) pause = c=IN IP4 0.0.0.0; both are paused."""
    assert not sdp_paused(SDP)
    assert sdp_paused(SDP.replace("a=sendonly", "a=inactive"))
    assert sdp_paused(set_connection_address(SDP, "0.0.0.0"))
    assert not sdp_paused(SDP.replace("a=sendonly", "a=inactive", 1))  # only one stream stopped
    assert not sdp_paused("v=0\r\n")


def test_r_rec_4_pause_and_resume_by_connection_address():
    """R-REC-4: pause rewrites session- and media-level c= to 0.0.0.0; resume restores it."""
    with_media_c = SDP.replace("a=sendonly", "c=IN IP4 127.0.0.1\r\na=sendonly")
    paused = set_connection_address(with_media_c, "0.0.0.0")
    assert paused.count("c=IN IP4 0.0.0.0") == 3 and "127.0.0.1\r\nt=" not in paused
    assert "o=- 3912 3912 IN IP4 127.0.0.1" in paused  # o= untouched
    resumed = set_connection_address(paused, "127.0.0.1")
    assert resumed == with_media_c and not sdp_paused(resumed)
    assert "c=IN IP6 ::1" in set_connection_address(SDP, "::1")


def test_r_rec_4_origin_user_broadworks():
    """R-REC-4: o=BroadWorks in the recording session's SDP."""
    sdp = set_origin_user(SDP, "BroadWorks")
    assert "\r\no=BroadWorks 3912 3912 IN IP4 127.0.0.1\r\n" in sdp
    assert sdp.replace("o=BroadWorks", "o=-") == SDP
    with pytest.raises(ValueError):
        set_origin_user(SDP, "Broad Works")
    with pytest.raises(ValueError):
        set_origin_user("v=0\r\n", "BroadWorks")


def metadata_sample() -> metadata.Metadata:
    sid, s1, s2 = metadata.new_id(), metadata.new_id(), metadata.new_id()
    return metadata.Metadata(
        dialect="rfc7866", datamode="complete", group_id=metadata.new_id(), session_id=sid,
        sip_session_id="x@127.0.0.1",
        participants=[metadata.Participant(metadata.new_id(), "Alice", "sip:1001@127.0.0.1", [s1], [s2]),
                      metadata.Participant(metadata.new_id(), "Bob", "sip:1002@127.0.0.1", [s2], [s1])],
        streams=[metadata.Stream(s1, "1", sid), metadata.Stream(s2, "2", sid)],
        start_time=metadata.now_iso(), stop_time=None, state="active", events=[], broadworks=None)
