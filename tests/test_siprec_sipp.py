"""What mppsim's SRC sends to an SRS that is not mppsim's (SIPp answering as an SRS), compared
with SIPREC from Webex Calling (R-REC-4, issue 11): headers, metadata element paths and value
formats, SDP, and every message of a recording's life. Also the size: a 6 kB metadata update.
"""
from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest

from tests.helpers import connect, finished
from mppsim.phone.network_src import NetworkSrc, Spec
from mppsim.sip import message as sip_message
from mppsim.siprec.sipmsg import metadata_part, sdp_part, split_multipart
from mppsim.siprec.webex import build, new_recording
from sipp_srs import AGENT_SDP, AgentLeg, SippSrs

NS = "{urn:ietf:params:xml:ns:siprec}"
BWNS = "{http://schema.broadsoft.com/broadworksCallRecording}"
URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# The element paths of a Webex Calling metadata document (captures in vendors' SIPp scenarios)
WEBEX_PATHS = {
    "recording_metadata", "recording_metadata/dataMode", "recording_metadata/recording",
    "recording_metadata/recording/requestor", "recording_metadata/recording/type",
    "recording_metadata/group", "recording_metadata/group/initiator", "recording_metadata/session",
    "recording_metadata/session/start-time", "recording_metadata/participant",
    "recording_metadata/participant/aor", "recording_metadata/participant/send",
    "recording_metadata/participant/send/id", "recording_metadata/stream",
    "recording_metadata/stream/label", "recording_metadata/stream/mode",
    "recording_metadata/extensiondata", "recording_metadata/extensiondata/broadWorksRecordingMetadata",
    *(f"recording_metadata/extensiondata/broadWorksRecordingMetadata/{k}" for k in (
        "extTrackingID", "serviceProviderID", "groupID", "userID", "callID", "callType",
        "recordingType")),
}
CALL_TYPE_PATHS = {"callingPartyNumber", "calledPartyNumber", "dialedDigits"}


def local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def paths(el: ET.Element, prefix: str = "") -> set[str]:
    here = f"{prefix}/{local(el.tag)}" if prefix else local(el.tag)
    out = {here}
    for child in el:
        out |= paths(child, here)
    return out


def parts_of(msg: sip_message.Message):
    parts = split_multipart(msg.header("content-type"), msg.text)
    return metadata_part(parts), sdp_part(parts), parts


def check_webex_metadata(xml: str, user_aor: str) -> ET.Element:
    """The document has exactly Webex Calling's shape and value formats."""
    assert "mppsim" not in xml                          # nothing invented in the metadata
    root = ET.fromstring(xml.encode())
    assert root.tag == NS + "recording_metadata"
    found = {p for p in paths(root) if "/callType/" not in p}
    assert found == WEBEX_PATHS | {p for p in found if p.endswith("/callType/origCall")
                                   or p.endswith("/callType/termCall")}
    call_type = root.find(f"{NS}extensiondata/{BWNS}broadWorksRecordingMetadata/{BWNS}callType")
    (half,) = list(call_type)
    assert local(half.tag) in ("origCall", "termCall")
    assert {local(c.tag) for c in half} <= CALL_TYPE_PATHS
    assert root.findtext(f"{NS}dataMode") == "complete"
    ids = [el.get(a) for el in root.iter() for a in ("id", "session", "group", "recording", "parent")
           if el.get(a)] + [el.text for el in root.iter(NS + "id")]
    assert ids and all(URN.match(i) for i in ids), ids
    assert root.findtext(f"{NS}group/{NS}initiator") == user_aor
    for p in root.findall(NS + "participant"):
        assert [local(c.tag) for c in p] == ["aor", "send"]
    assert root.find(NS + "participant").findtext(NS + "aor") == user_aor
    bw = root.find(f"{NS}extensiondata/{BWNS}broadWorksRecordingMetadata")
    assert bw.get("version") == "3.0"
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", bw.findtext(BWNS + "userID"))
    assert re.fullmatch(r"callhalf-\d+:0", bw.findtext(BWNS + "callID"))
    assert re.fullmatch(r"WBVDW\d{6}", bw.findtext(BWNS + "serviceProviderID"))
    assert re.fullmatch(re.escape(bw.findtext(BWNS + "serviceProviderID")) + r"L\d{5}", bw.findtext(BWNS + "groupID"))
    assert re.fullmatch(r"\d+:1", bw.findtext(BWNS + "extTrackingID"))
    for c in half:
        assert re.fullmatch(r"sip:(\+\d{8,15}|\d{2,8})@[\w.]+(;user=phone)?", c.text), c.text
    return root


def check_webex_headers(msg: sip_message.Message, display: str) -> None:
    h = msg.by_name()
    assert re.fullmatch(rf'"{display}"<sip:\+\d{{8,15}}@127\.0\.0\.1;user=phone>;tag=\d+-\d+', msg.header("from"))
    assert re.fullmatch(r"[0-9a-f]{32};remote=([0-9a-f]{32})", msg.header("session-id"))
    assert msg.header("mime-version") == "1.0" and msg.header("privacy") == "none"
    assert msg.header("accept") == ("application/media_control+xml,application/sdp,"
                                    "application/x-broadworks-call-center+xml")
    assert msg.header("allow") == "ACK,BYE,CANCEL,INFO,INVITE,OPTIONS,PRACK,REFER,NOTIFY"
    assert h["supported"] == [""] and h["recv-info"] == [""]
    for absent in ("session-expires", "min-se", "require", "user-agent"):
        assert absent not in h, absent
    assert msg.header("contact").endswith(";src")
    assert msg.header("content-type") == "multipart/mixed;boundary=UniqueBroadWorksBoundary"


def check_webex_sdp(sdp: str, paused: bool) -> None:
    lines = sdp.splitlines()
    assert lines[1].startswith("o=BroadWorks ")
    mlines = [l for l in lines if l.startswith("m=audio")]
    assert len(mlines) == 2 and all(l.endswith("RTP/AVP 111 101 0 8 9 107") for l in mlines)
    for needed in ("a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1", "a=rtpmap:101 telephone-event/8000",
                   "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000",
                   "a=rtpmap:107 telephone-event/48000", "a=ptime:20", "a=maxptime:20"):
        assert lines.count(needed) == 2, needed
    assert [l for l in lines if l.startswith("a=label:")] == ["a=label:1", "a=label:2"]
    if paused:
        assert "c=IN IP4 0.0.0.0" in lines and lines.count("a=inactive") == 2
    else:
        assert "c=IN IP4 127.0.0.1" in lines and lines.count("a=sendonly") == 2


@pytest.fixture(scope="module")
def sim_org():
    """`sim` with the demo org's own ring timeout."""
    return {"voicemail": False}


def test_r_rec_4_webex_dialect_as_webex_calling_sends_it_to_a_sipp_srs(sim, tmp_path):
    """R-REC-4 / issue 11: start, pause, announcement, resume and stop of a recording reach a
    SIPp SRS with Webex Calling's headers, metadata shape and values and SDP."""
    srs = SippSrs(tmp_path).start()
    sim.settings.set_org({"recorders": {"Dubber": srs.uri}})
    try:
        sim.set_call_recording("alice", {"enabled": True, "record": "Always with Pause/Resume",
                                          "notification": {"enabled": True, "type": "Beep"}})
        connect(sim, "bob", "alice", "1001")
        sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
        time.sleep(0.3)
        sim.press("alice", "PauseRec")
        time.sleep(0.6)
        sim.press("alice", "ResumeRec")
        time.sleep(0.6)
        sim.hangup("bob")
        assert srs.wait_done(10) == 0       # SIPp saw its scenario through: every message answered
    finally:
        sim.settings.set_org({"recorders": {"Dubber": None}})
        srs.stop()
    got = srs.received()
    methods = [m.method for m in got]
    assert methods[0] == "INVITE" and methods[-1] == "BYE"
    invites = [m for m in got if m.method == "INVITE"]
    assert len(invites) >= 3                      # start, pause, resume (+ beep events)
    first = invites[0]
    check_webex_headers(first, "Alice Smith")
    assert first.header("x-broadworks-correlation-info")
    seen_pause = seen_resume = False
    for inv in invites:
        check_webex_headers(inv, "Alice Smith")
        meta, sdp, parts = parts_of(inv)
        assert parts[0] is meta and parts[1] is sdp           # metadata first, as BroadWorks
        assert meta.headers["content-disposition"] == "recording-session"
        root = check_webex_metadata(meta.body, "sip:1001@127.0.0.1")
        bw = root.find(f"{NS}extensiondata/{BWNS}broadWorksRecordingMetadata")
        assert bw.findtext(BWNS + "extTrackingID") == first.header("x-broadworks-correlation-info")
        assert bw.findtext(BWNS + "userID") == "alice@acme-demo.example"
        assert bw.findtext(BWNS + "recordingType") == "on"
        assert local(list(bw.find(BWNS + "callType"))[0].tag) == "termCall"     # bob called alice
        paused = "c=IN IP4 0.0.0.0" in sdp.body
        check_webex_sdp(sdp.body, paused)
        seen_pause |= paused
        seen_resume |= seen_pause and not paused
    assert seen_pause and seen_resume
    # in-dialog requests carry the SRS's Session-ID back as remote=
    assert all(m.header("session-id").endswith(";remote=0123456789abcdef0123456789abcdef")
               for m in got[1:])


def test_rfc7866_dialect_to_a_sipp_srs_is_the_standard_shape(sim, tmp_path):
    """The rfc7866 dialect stays available: Require: siprec, +sip.src, SDP then metadata,
    RFC 7865 root, pause as a=inactive."""
    srs = SippSrs(tmp_path).start()
    sim.settings.set_org({"recorders": {"Dubber": srs.uri + ";dialect=rfc7866"}})
    try:
        sim.set_call_recording("alice", {"enabled": True, "record": "Always with Pause/Resume"})
        connect(sim, "bob", "alice", "1001")
        sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
        sim.press("alice", "PauseRec")
        time.sleep(0.5)
        sim.hangup("bob")
        assert srs.wait_done(10) == 0
    finally:
        sim.settings.set_org({"recorders": {"Dubber": None}})
        srs.stop()
    invites = [m for m in srs.received() if m.method == "INVITE"]
    first = invites[0]
    assert first.header("require") == "siprec" and first.header("contact").endswith(";+sip.src")
    meta, sdp, parts = parts_of(first)
    assert parts[0] is sdp and parts[1] is meta
    assert ET.fromstring(meta.body.encode()).tag == "{urn:ietf:params:xml:ns:recording:1}recording"
    assert any(l == "a=inactive" for inv in invites[1:] for l in parts_of(inv)[1].body.splitlines())


# ----- the network SRC alone, with a raw agent leg ------------------------------------------------

def big_conference(user_aor: str, others: int):
    rec = new_recording(user_aor=user_aor, other_aors=[], call_id="conf-call@127.0.0.1",
                        platform=("WBVDW123456", "WBVDW123456L12345", "alice@acme-demo.example"),
                        outgoing=True, calling="sip:+15550001001@127.0.0.1", called="sip:1002@127.0.0.1;user=phone",
                        mode="Always", dialed="sip:1002@127.0.0.1")
    rec.set_others([f"sip:+4822{n:07d}@127.0.0.1;user=phone" for n in range(others)])
    return rec


def test_network_src_sends_a_6_kb_metadata_update_by_update_and_re_invite(tmp_path):
    """Issue 11 size: a conference's metadata update (~6 kB, more than pjsua2's 4000 bytes) goes
    to the SRS by UPDATE and by re-INVITE, and the SRS answers both; the agent's leg stays small."""
    srs = SippSrs(tmp_path).start()
    src = NetworkSrc(keep_sent=True)
    src.start()
    try:
        rec = big_conference("sip:1001@127.0.0.1", 1)
        src.open("r1", Spec("webex", srs.uri, '"Alice Smith"<sip:+15550001001@127.0.0.1;user=phone>',
                            extra={"X-BroadWorks-Correlation-Info": rec.broadworks["extTrackingID"]},
                            metadata=build(rec)))
        leg = AgentLeg(src, "r1")
        ok = leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
        assert ok.code == 200
        answer = ok.text
        assert "m=audio" in answer and " RTP/AVP 0 120" in answer       # the agent's own payload types
        leg.request("ACK", 1)
        rec.set_others([f"sip:+4822{n:07d}@127.0.0.1;user=phone" for n in range(16)])
        big = build(rec)
        assert len(big) > 5500
        for method in ("UPDATE", "INVITE"):
            src.set_document("r1", big, None)
            src.update("r1", method)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len([m for m in srs.received() if m.method == "ACK"]) < 2:
            time.sleep(0.05)
        assert leg.request("BYE", 2).code == 200
        assert srs.wait_done(10) == 0
    finally:
        src.stop()
        srs.stop()
    got = srs.received()
    assert [m.method for m in got] == ["INVITE", "ACK", "UPDATE", "INVITE", "ACK", "BYE"]
    for m in got[2:4]:
        assert len(sip_message.serialize(m)) > 6000
        meta, sdp, _ = parts_of(m)
        root = check_webex_metadata(meta.body, "sip:1001@127.0.0.1")
        assert len(root.findall(NS + "participant")) == 17
        check_webex_sdp(sdp.body, paused=False)
        check_webex_headers(m, "Alice Smith")


def test_a_6_kb_metadata_update_reaches_mppsims_recorder_and_is_stored(sim):
    """Issue 11: a metadata update over 4000 bytes reaches mppsim's recorder and is stored."""
    target = sim.recorders.workers[0].target
    src = NetworkSrc()
    src.start()
    try:
        rec = big_conference("sip:1001@127.0.0.1", 1)
        before = len(sim.recordings("alice"))
        from mppsim.siprec import status as siprec_status
        src.open("r6", Spec("webex", target, '"Alice Smith"<sip:+15550001001@127.0.0.1;user=phone>',
                            extra={"X-BroadWorks-Correlation-Info": rec.broadworks["extTrackingID"]},
                            metadata=build(rec), status=siprec_status.encode("conf-call@127.0.0.1", "active", [])))
        leg = AgentLeg(src, "r6")
        assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40010, p2=40012)).code == 200
        leg.request("ACK", 1)
        rec.set_others([f"sip:+4822{n:07d}@127.0.0.1;user=phone" for n in range(16)])
        big = build(rec)
        src.set_document("r6", big, None)
        src.update("r6", "UPDATE")
        time.sleep(1.0)
        leg.request("BYE", 2)
        (stored,) = finished(sim, "alice", before + 1)[before:]
        texts = [(sim.recorder_store / f).read_text() for f in stored["metadata_files"]]
        # the UPDATE is over 6 kB; its metadata document alone ~5.9 kB: far over pjsip's 4000
        assert any(len(t) > 4000 and t.count("<participant ") == 17 for t in texts)
    finally:
        src.stop()
