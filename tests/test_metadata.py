"""SIPREC recording metadata (src/mppsim/siprec/metadata.py): one test per RFC 7865 / R-REC rule, both
dialects, the quirks a tolerant SRS accepts, and a hypothesis round trip. Pure, no SIP stack."""
from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.sip import message as sip_message
from mppsim.siprec import sipmsg
from mppsim.siprec.metadata import (
    CONTENT_TYPE, NS_BROADWORKS, NS_MPPSIM, NS_RECORDING, NS_SIPREC, Metadata, MetadataError,
    Participant, Stream, build, new_id, now_iso, parse,
)

DATA = Path(__file__).parent / "data" / "siprec"
R = f"{{{NS_RECORDING}}}"
S = f"{{{NS_SIPREC}}}"
M = f"{{{NS_MPPSIM}}}"
B = f"{{{NS_BROADWORKS}}}"

BROADWORKS = {
    "extTrackingID": "2be5c3c1-3b1d-4b5c-8c34-6e3f2a2c9d11", "serviceProviderID": "Acme-SP",
    "groupID": "Acme-Main", "userID": "alice.smith@acme.example", "callID": "callhalf-77:0",
    "callType": "origCall", "callingNumber": "sip:1001@127.0.0.1",
    "calledNumber": "tel:+14155550100", "recordingType": "on",
}


def sample(dialect: str = "rfc7866", **overrides) -> Metadata:
    """Alice (user) calls a PSTN number; two streams, one per direction (R-REC-1)."""
    sid, s1, s2 = new_id(dialect), new_id(dialect), new_id(dialect)
    md = Metadata(
        dialect=dialect, datamode="complete", group_id=new_id(dialect), session_id=sid,
        sip_session_id="3c26700b4e1f@127.0.0.1",
        participants=[Participant(new_id(dialect), "Alice Smith", "sip:1001@127.0.0.1", [s1], [s2]),
                      Participant(new_id(dialect), "", "tel:+14155550100", [s2], [s1])],
        streams=[Stream(s1, "1", sid), Stream(s2, "2", sid)],
        start_time="2025-03-04T10:15:00.000Z", stop_time=None, state="active",
        events=[{"announcement": "start", "to": ["local", "remote"], "time": "2025-03-04T10:15:00.100Z"}],
        broadworks=dict(BROADWORKS) if dialect == "webex" else None,
    )
    for key, value in overrides.items():
        setattr(md, key, value)
    return md


def xml_of(md: Metadata) -> ET.Element:
    return ET.fromstring(build(md)[1])


def fixture_metadata(name: str) -> str:
    msg = sip_message.read((DATA / name).read_bytes())
    parts = sipmsg.split_multipart(msg.header("content-type"), msg.text)
    return sipmsg.metadata_part(parts).body


# ----- RFC 7865, rfc7866 dialect -----------------------------------------------------------------

def test_rfc7865_content_type_and_root():
    """RFC 7865 §6.1 / RFC 9806: application/rs-metadata+xml, root <recording> in ...:recording:1."""
    content_type, text = build(sample())
    assert content_type == CONTENT_TYPE == "application/rs-metadata+xml"
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert ET.fromstring(text).tag == R + "recording"


@pytest.mark.parametrize("mode", ["complete", "partial"])
def test_rfc7865_6_1_datamode_first(mode):
    """RFC 7865 §6.1: <datamode> complete | partial comes first."""
    root = xml_of(sample(datamode=mode))
    assert root[0].tag == R + "datamode" and root[0].text == mode


def test_rfc7865_ids_are_base64_uuids():
    """RFC 7865 §6: ids are base64 of a UUID's 16 bytes; BroadWorks-style ids are urn:uuid."""
    assert len(base64.b64decode(new_id(), validate=True)) == 16
    assert new_id() != new_id()
    assert uuid.UUID(new_id("webex")).version == 4 and new_id("webex").startswith("urn:uuid:")


def test_now_iso_is_utc():
    assert now_iso().endswith("Z") and "T" in now_iso()


def test_rfc7865_6_2_group_and_6_3_session():
    """RFC 7865 §6.2/§6.3: group_id; session with sipSessionID, group-ref, start-/stop-time."""
    md = sample(stop_time="2025-03-04T10:20:00.000Z", state="stopped")
    root = xml_of(md)
    group = root.find(R + "group")
    assert group.get("group_id") == md.group_id
    assert group.findtext(R + "associate-time") == md.start_time
    session = root.find(R + "session")
    assert session.get("session_id") == md.session_id
    assert session.findtext(R + "sipSessionID") == md.sip_session_id
    assert session.findtext(R + "group-ref") == md.group_id
    assert session.findtext(R + "start-time") == md.start_time
    assert session.findtext(R + "stop-time") == md.stop_time


def test_rfc7865_6_5_participant_has_nameid_aor():
    """RFC 7865 §6.5: participant_id; nameID aor= with a name (E.164 kept for PSTN)."""
    md = sample()
    parts = xml_of(md).findall(R + "participant")
    assert [p.get("participant_id") for p in parts] == [p.id for p in md.participants]
    assert [p.find(R + "nameID").get("aor") for p in parts] == ["sip:1001@127.0.0.1", "tel:+14155550100"]
    assert parts[0].findtext(f"{R}nameID/{R}name") == "Alice Smith"
    assert parts[1].find(f"{R}nameID/{R}name") is None  # no name known: none written


def test_rfc7865_6_7_stream_has_label_and_session():
    """RFC 7865 §6.7: stream_id, session_id and the <label> of its m-line."""
    md = sample()
    streams = xml_of(md).findall(R + "stream")
    assert [(s.get("stream_id"), s.get("session_id"), s.findtext(R + "label")) for s in streams] == \
        [(s.id, md.session_id, s.label) for s in md.streams]


def test_rfc7865_6_4_6_6_session_and_participant_associations():
    """RFC 7865 §6.4/§6.6: sessionrecordingassoc, one participantsessionassoc per participant."""
    md = sample(stop_time="2025-03-04T10:20:00.000Z")
    root = xml_of(md)
    sra = root.find(R + "sessionrecordingassoc")
    assert sra.get("session_id") == md.session_id
    assert (sra.findtext(R + "associate-time"), sra.findtext(R + "disassociate-time")) == \
        (md.start_time, md.stop_time)
    psa = root.findall(R + "participantsessionassoc")
    assert [(a.get("participant_id"), a.get("session_id")) for a in psa] == \
        [(p.id, md.session_id) for p in md.participants]


def test_rfc7865_6_8_participantstreamassoc_send_recv():
    """RFC 7865 §6.8: each participant's send and recv stream ids (R-REC-1: one per direction)."""
    md = sample()
    assocs = xml_of(md).findall(R + "participantstreamassoc")
    got = [(a.get("participant_id"), [e.text for e in a.findall(R + "send")],
            [e.text for e in a.findall(R + "recv")]) for a in assocs]
    assert got == [(p.id, p.send, p.recv) for p in md.participants]


def test_r_rec_2_announcement_events_carried():
    """R-REC-2: announcements played at start/stop/pause/resume travel in the metadata."""
    events = [{"announcement": "start", "to": ["local", "remote"], "time": "2025-03-04T10:15:00Z"},
              {"paused": "2025-03-04T10:16:00Z"}, {"announcement": "compliance", "to": ["remote"]}]
    for dialect in ("rfc7866", "webex"):
        md = sample(dialect, events=events, state="paused")
        assert parse(build(md)[1]).events == events
        assert parse(build(md)[1]).state == "paused"


def test_r_rec_2_custom_data_in_own_namespace():
    """RFC 7865 extension rule: our state/events are in urn:mppsim:recording:1, under <session>."""
    root = xml_of(sample())
    status = root.find(f"{R}session/{M}status")
    assert status.findtext(M + "state") == "active"
    event = status.find(f"{M}events/{M}event")
    assert event.findtext(M + "announcement") == "start"
    assert [i.text for i in event.findall(f"{M}to/{M}item")] == ["local", "remote"]
    assert not [el for el in root.iter() if el.tag.startswith(R) and "mppsim" in el.tag]


# ----- R-REC-4, webex dialect --------------------------------------------------------------------

def test_r_rec_4_webex_root_element():
    """R-REC-4: <recording_metadata xmlns="urn:ietf:params:xml:ns:siprec"> with <dataMode>."""
    content_type, text = build(sample("webex"))
    root = ET.fromstring(text)
    assert content_type == "application/rs-metadata+xml"
    assert root.tag == S + "recording_metadata"
    assert root[0].tag == S + "dataMode" and root[0].text == "complete"


def test_r_rec_4_webex_group_and_session():
    """R-REC-4 draft shape: group/session carry id attributes; the session names its group."""
    md = sample("webex")
    root = xml_of(md)
    assert root.find(S + "group").get("id") == md.group_id
    session = root.find(S + "session")
    assert (session.get("id"), session.get("group")) == (md.session_id, md.group_id)
    assert session.findtext(S + "start-time") == md.start_time


def test_r_rec_4_webex_participant_aor_and_send_ids():
    """R-REC-4: participant with <aor> and <send><id>stream</id></send>."""
    md = sample("webex")
    parts = xml_of(md).findall(S + "participant")
    assert [p.findtext(S + "aor") for p in parts] == [p.aor for p in md.participants]
    assert [[i.text for i in p.findall(f"{S}send/{S}id")] for p in parts] == \
        [p.send for p in md.participants]
    assert all(p.get("session") == md.session_id for p in parts)


def test_r_rec_4_webex_stream_label_and_mode():
    """R-REC-4: stream with <label> 1/2 and <mode>separate</mode>."""
    streams = xml_of(sample("webex")).findall(S + "stream")
    assert [(s.findtext(S + "label"), s.findtext(S + "mode")) for s in streams] == \
        [("1", "separate"), ("2", "separate")]


def test_r_rec_4_broadworks_extension_block():
    """R-REC-4: extensiondata (parent = session) with broadWorksRecordingMetadata version 3.0."""
    md = sample("webex")
    root = xml_of(md)
    ext = root.find(S + "extensiondata")
    assert ext.get("parent") == md.session_id and ext.get("id").startswith("urn:uuid:")
    bw = ext.find(B + "broadWorksRecordingMetadata")
    assert bw.get("version") == "3.0"
    assert [c.tag.removeprefix(B) for c in bw] == [
        "extTrackingID", "serviceProviderID", "groupID", "userID", "callID", "callType", "recordingType"]
    for key in ("extTrackingID", "serviceProviderID", "groupID", "userID", "callID", "recordingType"):
        assert bw.findtext(B + key) == BROADWORKS[key]
    orig = bw.find(f"{B}callType/{B}origCall")
    assert orig.findtext(B + "callingPartyNumber") == "sip:1001@127.0.0.1"
    assert orig.findtext(B + "calledPartyNumber") == "tel:+14155550100"
    assert ext.find(f"{M}status/{M}sipSessionID").text == md.sip_session_id


def test_r_rec_4_termcall():
    """R-REC-4: callType termCall for a recorded user who was called."""
    md = sample("webex", broadworks=dict(BROADWORKS, callType="termCall"))
    assert xml_of(md).find(f"{S}extensiondata/{B}broadWorksRecordingMetadata/{B}callType/{B}termCall") \
        is not None
    assert parse(build(md)[1]).broadworks["callType"] == "termCall"


def test_r_rec_4_webex_build_is_deterministic():
    """Updates re-send the same document shape: derived ids do not change between builds."""
    md = sample("webex")
    assert build(md) == build(md)


# ----- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["rfc7866", "webex"])
def test_round_trip(dialect):
    md = sample(dialect, stop_time="2025-03-04T10:20:00.000Z", state="stopped",
                events=[{"n": 3, "ok": True, "none": None, "x": 1.5, "nested": {"list": ["a", 2]}}])
    md.streams[1].mode = "mixed"
    assert parse(build(md)[1]) == md
    assert parse(build(md)[1].encode()) == md


_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f"),
                max_size=12).map(str.strip)
_ids = st.uuids().map(lambda u: base64.b64encode(u.bytes).decode())
_scalar = st.one_of(_text, st.integers(-10**6, 10**6), st.booleans(), st.none())
_key = st.from_regex(r"[a-z][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda k: not k.startswith("xml"))
_event = st.dictionaries(_key, st.one_of(_scalar, st.lists(_text, max_size=3)), max_size=4)
_times = st.one_of(st.none(), st.just("2025-03-04T10:15:00Z"), st.builds(now_iso))


@st.composite
def metadata(draw) -> Metadata:
    dialect = draw(st.sampled_from(["rfc7866", "webex"]))
    session_id = draw(_ids)
    streams = [Stream(draw(_ids), draw(st.sampled_from(["", "1", "2", "96", "a-b"])), session_id,
                      draw(st.sampled_from(["separate", "mixed"])))
               for _ in range(draw(st.integers(0, 4)))]
    stream_ids = [s.id for s in streams]
    pick = st.lists(st.sampled_from(stream_ids), unique=True, max_size=2) if stream_ids else st.just([])
    participants = [Participant(draw(_ids), draw(_text), draw(st.sampled_from(
                        ["sip:1001@127.0.0.1", "tel:+14155550100", "sip:+48221234567@127.0.0.1;user=phone"])),
                        draw(pick), draw(pick))
                    for _ in range(draw(st.integers(1, 4)))]
    bw = None
    if draw(st.booleans()):
        bw = {k: draw(_text.filter(bool)) for k in ("extTrackingID", "userID", "recordingType")}
        bw["callType"] = draw(st.sampled_from(["origCall", "termCall"]))
        bw["callingNumber"], bw["calledNumber"] = draw(_text.filter(bool)), draw(_text.filter(bool))
    return Metadata(dialect=dialect, datamode=draw(st.sampled_from(["complete", "partial"])),
                    group_id=draw(st.one_of(st.just(""), _ids)), session_id=session_id,
                    sip_session_id=draw(st.sampled_from(["", "abc@127.0.0.1"])),
                    participants=participants, streams=streams, start_time=draw(_times),
                    stop_time=draw(_times), state=draw(st.sampled_from(["active", "paused", "stopped"])),
                    events=draw(st.lists(_event, max_size=3)), broadworks=bw)


@hsettings(max_examples=150, deadline=None)
@given(metadata())
def test_round_trip_hypothesis(md):
    """parse(build(md)) == md for random participants, streams, events, both dialects."""
    assert parse(build(md)[1]) == md


# ----- tolerant parsing: fixtures and quirks (issue 4 part 3) ------------------------------------

def test_fixture_rfc7866_example_style():
    """RFC 7866-example-style INVITE: :1 namespace, foreign extension in <group> ignored."""
    md = parse(fixture_metadata("rfc7866-invite.sip"))
    assert (md.dialect, md.datamode, md.sip_session_id) == ("rfc7866", "complete", "a84b4c76e66710@127.0.0.1")
    assert [(p.name, p.aor) for p in md.participants] == \
        [("Alice Smith", "sip:1001@127.0.0.1"), ("Bob Jones", "sip:1002@127.0.0.1")]
    assert [s.label for s in md.streams] == ["96", "97"]
    assert md.participants[0].send == [md.streams[0].id] and md.participants[0].recv == [md.streams[1].id]
    assert md.state == "active" and md.events == [] and md.broadworks is None


def test_fixture_namespace_without_1_and_no_labels():
    """Quirks: urn:ietf:params:xml:ns:recording (no :1), dataMode spelling, streams without label."""
    md = parse(fixture_metadata("legacy-ns-no-labels.sip"))
    assert md.dialect == "rfc7866" and md.group_id == ""
    assert [s.label for s in md.streams] == ["", ""]
    assert [p.aor for p in md.participants] == ["tel:+14155550100", "sip:1001@127.0.0.1"]
    assert [p.send for p in md.participants] == [[md.streams[0].id], [md.streams[1].id]]


def test_fixture_broadworks():
    """R-REC-4 capture shape: webex dialect, BroadWorks fields, extTrackingID = correlation header."""
    headers = sip_message.read((DATA / "broadworks-invite.sip").read_bytes()).by_name()
    md = parse(fixture_metadata("broadworks-invite.sip"))
    assert md.dialect == "webex"
    assert md.broadworks["extTrackingID"] == headers["x-broadworks-correlation-info"][0]
    assert md.broadworks == {
        "extTrackingID": "2be5c3c1-3b1d-4b5c-8c34-6e3f2a2c9d11", "serviceProviderID": "Acme-SP",
        "groupID": "Acme-Main", "userID": "alice.smith@acme.example", "callID": "callhalf-1420123:0",
        "callType": "termCall", "callingNumber": "sip:+14155550100@127.0.0.1;user=phone",
        "calledNumber": "sip:1001@127.0.0.1", "recordingType": "on"}
    assert [s.label for s in md.streams] == ["1", "2"]
    assert [p.send for p in md.participants] == [[md.streams[0].id], [md.streams[1].id]]


DRAFT_SHAPE = """<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording'>
  <dataMode>partial</dataMode>
  <session id="s1"><start-time>2011-06-27T17:03:57</start-time><end-time>2011-06-27T17:05:00</end-time></session>
  <participant id="p1" session="s1"><aor>sip:sipp@192.0.2.40</aor><name>sipp </name><send>st1</send></participant>
  <stream id="st1" session="s1"><mode>separate</mode><label>1</label></stream>
  <futureelement>ignored</futureelement>
</recording>"""


def test_early_draft_shape_accepted():
    """Quirk: id=/session= attributes, <aor>/<name> children, send as text, end-time."""
    md = parse(DRAFT_SHAPE)
    assert (md.datamode, md.session_id, md.start_time, md.stop_time, md.state) == \
        ("partial", "s1", "2011-06-27T17:03:57", "2011-06-27T17:05:00", "stopped")
    assert md.participants == [Participant("p1", "sipp", "sip:sipp@192.0.2.40", ["st1"], [])]
    assert md.streams == [Stream("st1", "1", "s1", "separate")]


def test_leading_whitespace_and_bom_accepted():
    """Quirk: whitespace (and a BOM) before the XML declaration, which expat alone rejects."""
    text = build(sample())[1]
    assert parse(" \r\n" + text) == parse(text)
    assert parse(b"\xef\xbb\xbf\r\n" + text.encode()) == parse(text)


def test_rfc7865_partial_update_needs_no_participants():
    """RFC 7865 datamode partial: an update may carry only what changed (here the stop time)."""
    doc = (f'<recording xmlns="{NS_RECORDING}"><datamode>partial</datamode>'
           '<session session_id="AAAA"><stop-time>2025-03-04T10:20:00Z</stop-time></session></recording>')
    md = parse(doc)
    assert (md.datamode, md.participants, md.stop_time) == ("partial", [], "2025-03-04T10:20:00Z")


@pytest.mark.parametrize("body, reason", [
    ("", "empty"),
    ("this is not xml", "not XML"),
    ("<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete", "not XML"),
    ("<conference-info xmlns='urn:ietf:params:xml:ns:conference-info'/>", "root element"),
    ("<recording xmlns='urn:example:other'><datamode>complete</datamode></recording>", "namespace"),
    ("<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode>"
     "<session session_id='A'/></recording>", "no participants"),
    ("<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode>"
     "<participant participant_id='P'/></recording>", "no <session>"),
    ("<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>sometimes</datamode></recording>",
     "datamode"),
    ("<!DOCTYPE r [<!ENTITY a 'aaaa'>]><recording xmlns='urn:ietf:params:xml:ns:recording:1'/>", "DTD"),
])
def test_bad_metadata_rejected_with_reason(body, reason):
    """An SRS answers 4xx with a short reason and stays up: parse raises MetadataError(ValueError)."""
    with pytest.raises(MetadataError, match=reason) as info:
        parse(body)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("change, reason", [
    ({"dialect": "siprec2"}, "dialect"),
    ({"datamode": "full"}, "datamode"),
    ({"events": [{"bad key": "x"}]}, "event key"),
    ({"events": [{"when": object()}]}, "not supported"),
    ({"events": ["announcement"]}, "must be a dict"),
    ({"broadworks": {"callingNumber": "1001"}}, "callType"),
])
def test_build_refuses_what_it_cannot_write(change, reason):
    with pytest.raises(MetadataError, match=reason):
        build(sample(**change))


def test_issue_9_empty_ids_are_tolerated_and_reported():
    """Issue 9 class 4: Avaya sends an empty placeholder stream id; a participant may lack one.
    What can be understood is kept, the rest reported in `warnings`, nothing is refused."""
    md = parse("<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode>"
               "<session session_id='A'/><participant><nameID aor='sip:1@x'/></participant>"
               "<stream stream_id='' session_id='A'><label>1</label></stream>"
               "<stream stream_id='S2' session_id='A'><label>2</label></stream>"
               "<participantsessionassoc participant_id='P9' session_id='A'>"
               "<disassociate-time>2025-01-01T00:00:00Z</disassociate-time></participantsessionassoc>"
               "</recording>")
    assert [p.aor for p in md.participants] == ["sip:1@x"] and md.participants[0].id == "participant-1"
    assert [s.id for s in md.streams] == ["S2"]
    assert md.left == ["P9"]
    assert md.warnings == ["participant 1 without id", "stream 1 without id skipped"]


def test_issue_9_latin1_declared_and_utf16_metadata_parse_or_fail_cleanly():
    """Issue 9 class 12: a declared encoding is obeyed (bytes), UTF-16 with BOM too; a DTD
    hidden in UTF-16 is still refused."""
    doc = ("<?xml version='1.0' encoding='ISO-8859-1'?><recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
           "<datamode>complete</datamode><session session_id='A'/><participant participant_id='P'>"
           "<nameID aor='sip:1@x'><name>J\xe9r\xf4me</name></nameID></participant></recording>")
    assert parse(doc.encode("latin-1")).participants[0].name == "J\xe9r\xf4me"
    assert parse(doc).participants[0].name == "J\xe9r\xf4me"          # str with a declaration
    utf16 = doc.replace("ISO-8859-1", "UTF-16").encode("utf-16")
    assert parse(utf16).participants[0].name == "J\xe9r\xf4me"
    evil = ("<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE r [<!ENTITY a 'aaaa'>]>"
            "<recording xmlns='urn:ietf:params:xml:ns:recording:1'/>").encode("utf-16")
    with pytest.raises(MetadataError, match="DTD"):
        parse(evil)
