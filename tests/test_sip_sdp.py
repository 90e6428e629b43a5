"""The SIP toolkit's SDP (src/mppsim/sip/sdp.py): one test per RFC 4566 / RFC 3264 / RFC 4574 rule
it relies on, the two pause conventions (RFC 7866, R-REC-4), the text edits an SRC makes to pjsua's
SDP, and str(parse(x)) round trips. No sockets."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.sip import message as sip_message
from mppsim.sip import sdp
from mppsim.siprec import metadata
from mppsim.siprec.sipmsg import metadata_part, sdp_part, split_multipart

DATA = Path(__file__).parent / "data" / "siprec"

SDP = ("v=0\r\no=- 3912 3912 IN IP4 127.0.0.1\r\ns=mppsim\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
       "m=audio 40002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")


# ----- parse (RFC 4566) -------------------------------------------------------------------------

def test_rfc4566_5_session_fields_and_media_sections():
    s = sdp.parse(SDP)
    assert (s.version, s.origin, s.name, s.address, s.timing) == ("0", "- 3912 3912 IN IP4 127.0.0.1", "mppsim",
                                                                  "127.0.0.1", "0 0")
    assert s.origin_user == "-" and [m.port for m in s.media] == [40000, 40002]
    assert [(m.kind, m.proto, m.fmts) for m in s.audio] == [("audio", "RTP/AVP", ["0", "101"])] * 2


def test_rfc4566_5_7_media_connection_overrides_the_sessions():
    s = sdp.parse(SDP.replace("m=audio 40002 RTP/AVP 0 101\r\n", "m=audio 40002 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.9/127\r\n"))
    assert [(m.address, m.connection) for m in s.media] == [("", "127.0.0.1"), ("10.0.0.9", "10.0.0.9")]
    assert sdp.parse(SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1")).media[0].connection == "::1"


def test_rfc4566_6_rtpmap_fmtp_and_rfc3551_static_payload_types():
    s = sdp.parse("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 111 8 9 18 101\r\n"
                  "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n"
                  "a=fmtp:101 0-15\r\na=ptime:20\r\n")
    m = s.media[0]
    assert m.formats() == {111: ("OPUS", 48000), 8: ("PCMA", 8000), 9: ("G722", 8000), 18: ("G729", 8000),
                           101: (sdp.TELEPHONE_EVENT, 8000)}
    assert m.rtpmap_text(111) == "opus/48000/2" and m.rtpmap_text(8) == "PCMA/8000" and m.rtpmap_text(96) == ""
    assert m.fmtp == {111: "useinbandfec=1", 101: "0-15"} and m.attributes == ["ptime:20"]


def test_rfc4574_label_and_rfc3264_5_1_direction_per_stream():
    s = sdp.parse(sdp.add_labels(SDP.replace("a=sendonly", "a=recvonly", 1), ["1", "2"]))
    assert [(m.label, m.direction, m.state) for m in s.media] == [("1", "recvonly", "recvonly"),
                                                                  ("2", "sendonly", "sendonly")]


def test_rfc4566_5_a_sdp_starts_with_v_and_m_lines_are_readable():
    for bad in ("", "o=- 1 1 IN IP4 h\r\n", "v=0\r\nm=audio\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n",
                "v=0\r\nm=audio 70000 RTP/AVP 0\r\n"):
        with pytest.raises(sdp.SdpError) as err:
            sdp.parse(bad)
        assert err.value.code == 400


def test_lf_line_ends_blank_lines_and_surrounding_space_are_tolerated():
    s = sdp.parse("\n" + SDP.replace("\r\n", "\n  \n").replace("a=sendonly", "a=sendonly  "))
    assert [m.state for m in s.media] == ["sendonly", "sendonly"] and s.address == "127.0.0.1"


# ----- pause (RFC 3264 §5.1 / §8.4, RFC 7866 §7.1.1, R-REC-4) -----------------------------------

@pytest.mark.parametrize("text, states", [
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
def test_streams_state_by_either_pause_convention(text, states):
    """RFC 3264 §5.1 / RFC 7866 §7.1.1 pause (a=inactive) and R-REC-4 pause (c=0.0.0.0); the
    parsed SDP says the same as the text reading."""
    assert sdp.streams_state(text) == states
    if text.startswith("v=0\r\no="):
        assert [m.state for m in sdp.parse(text).audio] == states


def test_paused_either_convention():
    """RFC 7866 pause = a=inactive; R-REC-4 (webex) pause = c=IN IP4 0.0.0.0; both are paused."""
    assert not sdp.paused(SDP)
    assert sdp.paused(SDP.replace("a=sendonly", "a=inactive"))
    assert sdp.paused(sdp.set_connection_address(SDP, "0.0.0.0"))
    assert not sdp.paused(SDP.replace("a=sendonly", "a=inactive", 1))  # only one stream stopped
    assert not sdp.paused("v=0\r\n")


# ----- text edits that keep every other byte -----------------------------------------------------

def test_rfc7866_7_1_1_two_m_lines_each_with_label():
    """RFC 7866 §7.1.1 / R-REC-1: two audio m-lines (one per direction), each with an a=label."""
    labelled = sdp.add_labels(SDP, ["1", "2"])
    assert sdp.labels(labelled) == ["1", "2"]
    assert labelled.count("a=label:") == 2 and labelled.endswith("\r\n") and "\n\n" not in labelled
    sections = labelled.split("m=audio")
    assert "a=label:1" in sections[1] and "a=label:2" in sections[2]


def test_add_labels_replaces_and_counts():
    relabelled = sdp.add_labels(sdp.add_labels(SDP, ["1", "2"]), ["96", "97"])
    assert sdp.labels(relabelled) == ["96", "97"] and relabelled.count("a=label:") == 2
    # a count mismatch labels what it can (it runs inside a pjsua callback, must not raise)
    assert sdp.labels(sdp.add_labels(SDP, ["1"])) == ["1", ""]
    assert sdp.labels(sdp.add_labels(SDP, ["1", "2", "3"])) == ["1", "2"]
    with pytest.raises(ValueError):
        sdp.add_labels(SDP, ["1", "two words"])


def test_labels_missing_read_as_empty_and_lf_kept():
    """Quirk: an SRC without labels; LF-only SDP stays LF."""
    lf = SDP.replace("\r\n", "\n")
    assert sdp.labels(lf) == ["", ""]
    assert "\r" not in sdp.add_labels(lf, ["a", "b"])


def test_labels_match_metadata_streams():
    """RFC 7865 §6.7: each metadata <stream><label> names an m-line of the SDP."""
    msg = sip_message.read((DATA / "broadworks-invite.sip").read_bytes())
    parts = split_multipart(msg.header("content-type"), msg.text)
    md = metadata.parse(metadata_part(parts).body)
    assert sdp.labels(sdp_part(parts).body) == [s.label for s in md.streams]


def test_r_rec_4_pause_and_resume_by_connection_address():
    """R-REC-4: pause rewrites session- and media-level c= to 0.0.0.0; resume restores it."""
    with_media_c = SDP.replace("a=sendonly", "c=IN IP4 127.0.0.1\r\na=sendonly")
    paused = sdp.set_connection_address(with_media_c, "0.0.0.0")
    assert paused.count("c=IN IP4 0.0.0.0") == 3 and "127.0.0.1\r\nt=" not in paused
    assert "o=- 3912 3912 IN IP4 127.0.0.1" in paused  # o= untouched
    resumed = sdp.set_connection_address(paused, "127.0.0.1")
    assert resumed == with_media_c and not sdp.paused(resumed)
    assert "c=IN IP6 ::1" in sdp.set_connection_address(SDP, "::1")


def test_r_rec_4_origin_user_broadworks():
    """R-REC-4: o=BroadWorks in the recording session's SDP."""
    text = sdp.set_origin_user(SDP, "BroadWorks")
    assert "\r\no=BroadWorks 3912 3912 IN IP4 127.0.0.1\r\n" in text
    assert text.replace("o=BroadWorks", "o=-") == SDP
    with pytest.raises(ValueError):
        sdp.set_origin_user(SDP, "Broad Works")
    with pytest.raises(ValueError):
        sdp.set_origin_user("v=0\r\n", "BroadWorks")


# ----- serialize ---------------------------------------------------------------------------------

def test_str_writes_rfc4566_order_and_reads_back():
    text = str(sdp.parse(sdp.add_labels(SDP, ["1", "2"])))
    assert text.startswith("v=0\r\no=- 3912 3912 IN IP4 127.0.0.1\r\ns=mppsim\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
    assert "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=sendonly\r\n" in text
    assert sdp.parse(text) == sdp.parse(sdp.add_labels(SDP, ["1", "2"]))


_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
_ADDR = st.one_of(st.just(""), st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))
_DIRECTION = st.sampled_from(("",) + sdp.DIRECTIONS)


@st.composite
def _media(draw):
    pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=5, unique=True))
    rtpmap = {pt: (draw(_WORD), draw(st.sampled_from([8000, 16000, 48000])), draw(st.sampled_from(["", "/2"])))
              for pt in pts if draw(st.booleans())}
    fmtp = {pt: draw(st.text("abc=;-0123456789", min_size=1, max_size=12).filter(lambda v: v.strip() == v))
            for pt in pts if draw(st.booleans())}
    return sdp.Media(draw(st.sampled_from(["audio", "video", "text"])), draw(st.integers(0, 65535)),
                     draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF"])), [str(p) for p in pts],
                     address=draw(_ADDR), direction=draw(_DIRECTION), label=draw(st.one_of(st.just(""), _WORD)),
                     rtpmap=rtpmap, fmtp=fmtp,
                     attributes=draw(st.lists(st.sampled_from(["ptime:20", "maxptime:40", "rtcp-mux",
                                                               "rtcp:5001"]), max_size=3)))


@hsettings(max_examples=200, deadline=None)
@given(user=_WORD, address=_ADDR, direction=_DIRECTION, media=st.lists(_media(), max_size=4))
def test_parse_of_str_is_identity(user, address, direction, media):
    """An offer or an answer written by str() reads back as the same object (aiortc's shape)."""
    original = sdp.SessionDescription(origin=f"{user} 1 2 IN IP4 127.0.0.1", name="-", address=address,
                                      timing="0 0", direction=direction, media=media)
    back = sdp.parse(str(original))
    for m in original.media:        # what applies is computed by parse, never written
        m.connection = m.address or address
        applied = m.direction or direction or "sendrecv"      # RFC 3264 §5.1: the default
        m.state = "inactive" if m.port == 0 or m.connection in ("0.0.0.0", "::") else applied
    assert back == original
    assert [m.state for m in back.audio] == sdp.streams_state(str(original))
