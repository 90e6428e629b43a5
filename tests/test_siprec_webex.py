"""The SRC's webex dialect as pure text (issue 11, R-REC-4, R-USR-7): BroadWorks ids, the
metadata document, SDP shaping both ways, the request headers, mppsim's status header. No
sockets, no pjsua2."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from mppsim.rules import broadworks as BW
from mppsim.siprec import status as status
from mppsim.siprec import wire as W
from mppsim.siprec.metadata import parse
from mppsim.sip import message as sip_message
from mppsim.sip.sdp import streams_state
from mppsim.siprec.webex import RECORDING_TYPES, build, new_recording

AGENT_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
             "m=audio 40000 RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=rtcp:40001\r\na=sendonly\r\n"
             "a=rtpmap:0 PCMU/8000\r\na=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=label:1\r\n"
             "m=audio 40002 RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\n"
             "a=rtpmap:0 PCMU/8000\r\na=rtpmap:120 telephone-event/8000\r\na=label:2\r\n")


def recording(**kw):
    args = dict(user_aor="sip:1001@127.0.0.1", other_aors=["sip:+14155550100@127.0.0.1;user=phone"],
                call_id="abc@127.0.0.1", platform=(BW.service_provider_id("acme"), BW.group_id("acme", "hq"),
                                                   "alice@acme.example"),
                outgoing=True, calling="sip:+15550001001@127.0.0.1", called="sip:+14155550100@127.0.0.1",
                mode="Always", dialed="sip:+14155550100@127.0.0.1")
    args.update(kw)
    return new_recording(**args)


def test_r_usr_7_broadworks_ids_have_the_real_formats_and_are_stable():
    sp = BW.service_provider_id("acme-demo")
    assert re.fullmatch(r"WBVDW\d{6}", sp) and sp == BW.service_provider_id("acme-demo")
    assert BW.service_provider_id("other") != sp
    grp = BW.group_id("acme-demo", "hq")
    assert re.fullmatch(re.escape(sp) + r"L\d{5}", grp) and grp != BW.group_id("acme-demo", "wro")
    assert BW.user_id("alice", "acme-demo") == "alice@acme-demo.example"
    assert BW.user_id("alice", "acme-demo", "Alice.Smith@Acme.com") == "alice.smith@acme.com"
    assert BW.e164("1001", "US") == "+15550001001" and BW.e164("1001", "PL") == "+485550001001"
    assert re.fullmatch(r"callhalf-\d{9}:0", BW.call_half("x@y"))
    assert re.fullmatch(r"\d{7}:1", BW.ext_tracking_id("x@y")) and BW.ext_tracking_id("x@y") == BW.ext_tracking_id("x@y")


def test_r_rec_4_metadata_document_has_webex_callings_shape():
    rec = recording()
    xml = build(rec)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<recording_metadata ')
    assert "\n" not in xml.split("\n", 1)[1].rstrip("\n")            # one line, as BroadWorks
    assert "mppsim" not in xml and "<name>" not in xml and "<recv>" not in xml
    root = ET.fromstring(xml.encode())
    ns = "{urn:ietf:params:xml:ns:siprec}"
    assert root.find(f"{ns}group/{ns}initiator").text == "sip:1001@127.0.0.1"
    bw = root.find(f"{ns}extensiondata/{{http://schema.broadsoft.com/broadworksCallRecording}}broadWorksRecordingMetadata")
    assert [c.tag.split("}")[1] for c in bw] == ["extTrackingID", "serviceProviderID", "groupID", "userID",
                                                 "callID", "callType", "recordingType"]
    orig = bw.find("{*}callType/{*}origCall")
    assert [c.tag.split("}")[1] for c in orig] == ["callingPartyNumber", "calledPartyNumber", "dialedDigits"]
    # the recorder's tolerant parser reads it back
    md = parse(xml)
    assert md.dialect == "webex" and [p.aor for p in md.participants] == [
        "sip:1001@127.0.0.1", "sip:+14155550100@127.0.0.1;user=phone"]
    assert md.broadworks["callType"] == "origCall" and md.broadworks["recordingType"] == "on"
    assert [s.label for s in md.streams] == ["1", "2"]


def test_every_recording_mode_has_a_recording_type():
    from mppsim.rules.effective import MODES, NEVER
    assert set(RECORDING_TYPES) == set(MODES) - {NEVER}
    assert recording(mode="On Demand").broadworks["recordingType"] == "on-demand"


def test_participants_change_keeps_ids_of_those_who_stay():
    rec = recording()
    stay = rec.parties[1]
    rec.set_others([stay.aor, "sip:1003@127.0.0.1"])
    assert rec.parties[1] is stay and rec.parties[2].stream == rec.streams[1][0]
    assert len(build(rec)) > len(build(recording()))


def test_webex_offer_is_broadworks_sdp_and_pause_is_zero_address_and_inactive():
    origin = W.Origin("BroadWorks")
    offer = W.webex_offer(AGENT_SDP, origin, paused=False)
    lines = offer.split("\r\n")
    assert lines[1].startswith("o=BroadWorks ") and lines[1].split()[2] == "1"
    assert [l for l in lines if l.startswith("m=")] == ["m=audio 40000 RTP/AVP 111 101 0 8 9 107",
                                                       "m=audio 40002 RTP/AVP 111 101 0 8 9 107"]
    assert lines.count("a=ptime:20") == 2 and lines.count("a=maxptime:20") == 2
    assert streams_state(offer) == ["sendonly", "sendonly"]
    paused = W.webex_offer(AGENT_SDP, origin, paused=True)
    assert "c=IN IP4 0.0.0.0" in paused and paused.count("a=inactive") == 2
    assert paused.split("\r\n")[1].split()[2] == "2"                # a new version per offer
    compact = W.webex_offer(AGENT_SDP, W.Origin("BroadWorks"), paused=False, compact=True)
    assert "m=audio 40000 RTP/AVP 101 0\r\n" in compact


def test_agent_answer_keeps_only_what_the_agent_offered_with_its_payload_types():
    srs = ("v=0\r\no=srs 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
           "m=audio 5000 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=recvonly\r\n"
           "m=audio 5002 RTP/AVP 0\r\na=recvonly\r\n")
    ans = W.agent_answer(AGENT_SDP, srs, W.Origin("mppsim-src"))
    assert "m=audio 5000 RTP/AVP 0 120\r\n" in ans and "m=audio 5002 RTP/AVP 0\r\n" in ans
    assert "c=IN IP4 127.0.0.2" in ans and ans.count("a=recvonly") == 2 and "opus" not in ans
    with pytest.raises(ValueError, match="none of the agent's codecs"):
        W.agent_answer(AGENT_SDP, srs.replace("RTP/AVP 0\r\n", "RTP/AVP 9\r\n"), W.Origin("x"))
    with pytest.raises(ValueError, match="1 audio streams for 2"):
        W.agent_answer(AGENT_SDP, srs.split("m=audio 5002")[0], W.Origin("x"))


def test_r_rec_4_request_headers_per_dialect():
    leg = W.Leg("webex", "sip:srs@10.0.0.5:5070;transport=tcp", "sip:srs@10.0.0.5:5070;transport=tcp",
                '"Alice Smith"<sip:+15550001001@127.0.0.1;user=phone>', "<sip:127.0.0.1:5100;transport=tcp>;src",
                "127.0.0.1", 5100, extra={"X-BroadWorks-Correlation-Info": "1234567:1"})
    text = W.request(leg, "INVITE", sdp=W.webex_offer(AGENT_SDP, W.Origin("BroadWorks"), False),
                     metadata=build(recording()))
    msg = sip_message.read(text)
    start, h, body = msg.start_line, msg.by_name(), msg.text
    assert start == "INVITE sip:srs@10.0.0.5:5070;transport=tcp SIP/2.0"
    assert h["supported"] == [""] and h["recv-info"] == [""] and h["privacy"] == ["none"]
    assert h["mime-version"] == ["1.0"] and "require" not in h and "session-expires" not in h
    assert re.fullmatch(r"[0-9a-f]{32};remote=0{32}", h["session-id"][0])
    assert re.fullmatch(r"BW\d{15}-\d+@127\.0\.0\.1", h["call-id"][0])
    assert body.index("application/rs-metadata+xml") < body.index("application/sdp")
    assert int(h["content-length"][0]) == len(body.encode())
    bye = sip_message.read(W.request(leg, "BYE")).by_name()
    assert "content-type" not in bye and "contact" not in bye and bye["cseq"][0].endswith(" BYE")
    rfc = W.Leg("rfc7866", "sip:srs@h", "sip:srs@h", "<sip:src-1001@127.0.0.1>", "<sip:src@h>;+sip.src", "h", 1)
    h2 = sip_message.read(W.request(rfc, "INVITE", sdp=AGENT_SDP, metadata="<x/>")).by_name()
    assert h2["require"] == ["siprec"] and "mime-version" not in h2


def test_status_header_round_trips_into_the_recorders_metadata():
    md = parse(build(recording()))
    value = status.encode("call-1@h", "paused", [{"paused": "T1"}])
    assert "\n" not in value
    merged = status.merge(md, {"x-mppsim-status": [value]})
    assert merged.sip_session_id == "call-1@h" and merged.state == "paused" and merged.events == [{"paused": "T1"}]
    later = status.merge(parse(build(recording())), {"x-mppsim-status": [status.encode(None, "active", [{"resumed": "T2"}])]},
                         previous=merged)
    assert later.sip_session_id == "call-1@h" and later.events == [{"paused": "T1"}, {"resumed": "T2"}]
    untouched = parse(build(recording()))
    assert status.merge(untouched, {}) is untouched and status.decode({"x-mppsim-status": ["{bad"]}) is None


def test_status_header_names_the_participants_webex_metadata_does_not():
    md = parse(build(recording()))
    assert all(p.name == "" for p in md.participants)
    names = {"sip:1001@127.0.0.1": "Alice Smith"}
    merged = status.merge(md, {"x-mppsim-status": [status.encode("c@h", "active", [], names)]})
    assert [p.name for p in merged.participants] == ["Alice Smith", ""]
    again = status.merge(parse(build(recording())), {"x-mppsim-status": [status.encode(None, "active", [])]},
                         previous=merged)
    assert again.participants[0].name == "Alice Smith"            # kept from the session so far


def test_update_participants_hands_the_whole_new_list_to_the_network_src():
    """The call-feature API (docs/protocol.md): a conference's parties reach the SRS by UPDATE in
    a complete document, each other party sending stream 2, names in the status header."""
    from mppsim.phone.siprec import Session, SiprecClient
    from mppsim.siprec.metadata import Metadata, Participant, Stream

    class Src:
        def __init__(self):
            self.calls = []

        def set_document(self, rid, xml, st):
            self.calls.append(("doc", rid, xml, st))

        def update(self, rid, method):
            self.calls.append(("update", rid, method))

    client = object.__new__(SiprecClient)
    client.src, client.sessions = Src(), {}
    md = Metadata("webex", "complete", "g", "s", "call-1",
                  participants=[Participant("p1", "Alice Smith", "sip:1001@127.0.0.1", ["s1"], ["s2"]),
                                Participant("p2", "Bob Jones", "sip:1002@127.0.0.1", ["s2"], ["s1"])],
                  streams=[Stream("s1", "1", "s"), Stream("s2", "2", "s")])
    webex = recording(other_aors=["sip:1002@127.0.0.1"])
    client.sessions[("alice:1", 1)] = Session("alice:1", 1, "sip:srs@h", "webex", md, webex=webex,
                                              rid="alice:alice:1:1", state="active", handed_over=True)
    client.update_participants("alice:1", [{"user": "1002", "name": "Bob Jones"},
                                           {"user": "+14155550100", "name": ""}])
    (_doc, rid, xml, st), (_u, rid2, method) = client.src.calls
    assert rid == rid2 == "alice:alice:1:1" and method == "UPDATE"
    got = parse(xml)
    assert [p.aor for p in got.participants] == ["sip:1001@127.0.0.1", "sip:1002@127.0.0.1",
                                                 "sip:+14155550100@127.0.0.1;user=phone"]
    assert got.participants[1].send == got.participants[2].send == [webex.streams[1][0]]
    decoded = status.decode({"x-mppsim-status": [st]})
    assert decoded["names"]["sip:1002@127.0.0.1"] == "Bob Jones"
    assert decoded["events"][0]["participants"] == ["1002", "+14155550100"]
