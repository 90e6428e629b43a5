"""A recording session of the SRS keeps and changes its own state (src/mppsim/recorder/session.py,
issue 20): channels and timeline from the metadata, pause and resume from offers and status,
metadata updates, its timers, its end. Real parts: real UDP receivers, a real store in a temporary
folder, real SIP messages parsed by the recorder's parser; no recorder process, no network peer."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mppsim.recorder.rtp.ports import rtp_sockets
from mppsim.recorder.rtp.receiver import StreamReceiver
from mppsim.recorder.session import PAUSED_TIMEOUT, Session
from mppsim.recorder.store import Store
from mppsim.sip import message as sipm
from mppsim.sip.dialog import Dialog
from mppsim.recorder.answer import parse_offer
from mppsim.recorder.transport import Peer
from mppsim.siprec import metadata as md_mod
from mppsim.siprec import status as siprec_status
from mppsim.siprec.metadata import Metadata, Participant, Stream

SDP = ("v=0\r\no=src 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=label:1\r\na={state}\r\n"
       "m=audio 40002 RTP/AVP 0\r\na=label:2\r\na={state}\r\n")


def request(method: str = "INVITE", cseq: int = 1, headers: str = "") -> sipm.Request:
    text = (f"{method} sip:srs@127.0.0.1:5070 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKs" + str(cseq) + "\r\n"
            "From: \"Alice Smith\" <sip:1001@127.0.0.1>;tag=src1\r\nTo: <sip:srs@127.0.0.1>"
            + (";tag=srs1" if cseq > 1 else "") + "\r\n"
            f"Call-ID: rec-1@127.0.0.1\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:src@127.0.0.1:5060>;+sip.src\r\n{headers}Content-Length: 0\r\n\r\n")
    req = sipm.parse(text.encode())
    assert isinstance(req, sipm.Request)
    return req


def metadata(*participants: Participant, sip_session_id: str = "call-A") -> Metadata:
    return Metadata(dialect="rfc7866", datamode="complete", group_id="g1", session_id="s1",
                    sip_session_id=sip_session_id, participants=list(participants),
                    streams=[Stream("st1", "1", "s1"), Stream("st2", "2", "s1")])


ALICE = Participant("pa", "", "sip:1001@127.0.0.1", send=["st1"])
BOB = Participant("pb", "Bob", "sip:1002@127.0.0.1", send=["st2"])
CAROL = Participant("pc", "Carol", "sip:1003@127.0.0.1")


class Host:
    """What a session uses of its recorder, with a real store."""

    def __init__(self, folder):
        self.store = Store(folder)
        self.name = "w-test"
        self.lines: list[str] = []

    def out(self, text: str) -> None:
        self.lines.append(text)

    def provider_info(self) -> dict:
        return {}


@pytest.fixture
def host(tmp_path):
    h = Host(tmp_path / "store")
    yield h
    h.store.close()


@pytest.fixture
def lane():
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown(wait=True)


def session(host, lane, md: Metadata | None = None, state: str = "sendonly", sent: list | None = None) -> Session:
    req = request()
    peer = Peer("udp", ("127.0.0.1", 5060), (sent if sent is not None else []).append)
    now = time.monotonic()
    return Session(dialog=Dialog.from_invite(req, "127.0.0.1:5070", "udp"), peer=peer,
                   metadata=md or metadata(BOB, ALICE), offer=parse_offer(SDP.format(state=state)),
                   t0=now, wall0=time.time(), rate=8000, names={"1001": "Alice Smith"}, invite=req,
                   host=host, lane=lane, first_metadata=b"<x/>", last_sip=now, refreshed=now)


async def with_streams(s: Session) -> None:
    loop = asyncio.get_running_loop()
    for (_index, m), sock in zip(s.offer.recorded(), rtp_sockets("127.0.0.1", len(s.offer.recorded()))):
        _t, rx = await loop.create_datagram_endpoint(lambda: StreamReceiver(0, s.t0), sock=sock)
        s.add_stream(rx, m)


def settle(lane) -> None:
    lane.submit(lambda: None).result(5)      # the session's store jobs so far are done


def test_channels_follow_the_labels_of_the_streams_each_participant_sends(host, lane):
    s = session(host, lane, metadata(BOB, ALICE, CAROL))
    assert s.channels(s.metadata) == [
        {"name": "Alice Smith", "aor": "sip:1001@127.0.0.1", "id": "pa", "channel": "left"},   # name from the headers
        {"name": "Bob", "aor": "sip:1002@127.0.0.1", "id": "pb", "channel": "right"},
        {"name": "Carol", "aor": "sip:1003@127.0.0.1", "id": "pc", "channel": None}]         # both taken


def test_participants_sending_no_labelled_stream_take_the_free_channels_in_metadata_order(host, lane):
    md = metadata(Participant("px", "X", "sip:9@h"), Participant("py", "Y", "sip:8@h"))
    s = session(host, lane, md)
    assert [(c["aor"], c["channel"]) for c in s.channels(md)] == [("sip:9@h", "left"), ("sip:8@h", "right")]


def test_the_recorded_call_id_falls_back_from_sip_session_id_to_broadworks_to_the_invite(host, lane):
    s = session(host, lane)
    assert s.recorded_call_id == "call-A"
    s.metadata.sip_session_id = ""
    s.metadata.broadworks = {"callID": "bw-1"}
    assert s.recorded_call_id == "bw-1"
    s.metadata.broadworks = None
    assert s.recorded_call_id == "rec-1@127.0.0.1"          # never empty (issue 9, class 7)
    s.invite = request(headers="Session-ID: ab12;remote=cd34\r\n")
    assert s.recorded_call_id == "ab12"


def test_a_session_goes_live_paused_when_its_offer_is_inactive_and_the_row_says_so(host, lane):
    s = session(host, lane, state="inactive")
    s.start_timeline()
    s.go_live()
    assert (s.state, s.paused, s.sdp_paused, s.meta_paused, s.begun) == ("live", True, True, False, True)
    settle(lane)
    row = host.store.get(s.writer.id)
    assert row["paused_segments"] == [{"start": 0.0, "duration": None}]
    assert row["owner"] == "sip:1001@127.0.0.1" and row["worker"] == "w-test" and row["sip_call_id"] == "call-A"


def test_re_offers_pause_and_resume_and_answer_with_the_sessions_ports(host, lane):
    async def main():
        s = session(host, lane)
        await with_streams(s)
        s.start_timeline()
        s.go_live()
        assert not s.paused and s.sdp_version == 1
        ports = s.apply_offer(parse_offer(SDP.format(state="inactive")))
        assert s.paused and s.sdp_paused and s.sdp_version == 2
        assert ports == {0: s.receivers[0].port, 1: s.receivers[1].port} == s.ports()
        s.apply_offer(parse_offer(SDP.format(state="sendonly")))
        assert not s.paused and s.sdp_version == 3
        settle(lane)
        (segment,) = host.store.get(s.writer.id)["paused_segments"]
        assert segment["duration"] is not None and segment["duration"] >= 0
        assert [line.split()[0] for line in host.lines] == ["paused", "resumed"]
        closed = await s.end("bye")
        assert closed is not None and (closed.received, closed.discarded) == (0, False)
        row = host.store.get(s.writer.id)
        assert row["state"] == "complete" and row["ended_by"] == "bye" and s.state == "ended"
    asyncio.run(main())


def test_a_complete_metadata_update_moves_the_timeline(host, lane):
    s = session(host, lane, metadata(ALICE, BOB))
    s.start_timeline()
    s.go_live()
    time.sleep(0.01)
    _ctype, xml = md_mod.build(metadata(ALICE, Participant("pc", "Carol", "sip:1003@127.0.0.1", send=["st2"])))
    assert s.update_metadata(xml.encode(), request("UPDATE", 2)) is None
    on = {(e["aor"], e["channel"]): (e["from"], e["to"]) for e in s.timeline}
    assert on[("sip:1001@127.0.0.1", "left")] == (0.0, None)
    assert on[("sip:1002@127.0.0.1", "right")][1] > 0                      # Bob left the right channel
    assert on[("sip:1003@127.0.0.1", "right")][0] > 0 and on[("sip:1003@127.0.0.1", "right")][1] is None
    settle(lane)
    row = host.store.get(s.writer.id)
    assert [p["aor"] for p in row["participants"]] == ["sip:1001@127.0.0.1", "sip:1003@127.0.0.1"]
    assert len(row["participants_timeline"]) == 3


def test_a_status_header_alone_pauses_and_its_events_are_kept(host, lane):
    s = session(host, lane)
    s.start_timeline()
    s.go_live()
    value = siprec_status.encode(None, "paused", [{"announcement": "pause", "to": "both"}])
    assert s.update_metadata(None, request("UPDATE", 2, f"X-Mppsim-Status: {value}\r\n")) is None
    assert s.meta_paused and s.paused and not s.sdp_paused
    assert s.metadata.events == [{"announcement": "pause", "to": "both"}]
    settle(lane)
    assert host.store.get(s.writer.id)["announcements"] == [{"announcement": "pause", "to": "both"}]


def test_a_metadata_update_that_does_not_parse_is_reported_and_changes_nothing(host, lane):
    s = session(host, lane)
    s.start_timeline()
    s.go_live()
    before = (list(s.timeline), s.metadata, s.paused)
    reason = s.update_metadata(b"<not-metadata", request("UPDATE", 2))
    assert reason                                     # the recorder counts and logs it
    assert (list(s.timeline), s.metadata, s.paused) == before


def test_tick_says_why_a_session_must_end(host, lane):
    sent: list[bytes] = []
    s = session(host, lane, sent=sent)
    s.start_timeline()
    s.go_live()
    s.dialog.sent_ok(b"SIP/2.0 200 OK\r\n\r\n", reliable=False)
    now = time.monotonic()
    assert s.tick(now + 0.6, {}, rtp_timeout=30) is None and sent == [b"SIP/2.0 200 OK\r\n\r\n"]   # retransmitted
    assert s.tick(now + 40, {}, rtp_timeout=0) == "no-ack"
    s.acked()
    assert s.tick(time.monotonic() + 31, {}, rtp_timeout=30) == "timeout"
    s.paused = True                                   # a pause has no RTP by design
    assert s.tick(time.monotonic() + 31, {}, rtp_timeout=30) is None
    assert s.tick(time.monotonic() + PAUSED_TIMEOUT + 1, {}, rtp_timeout=30) == "timeout"
    s.paused, s.expires = False, 90
    s.refreshed_now()
    assert s.tick(time.monotonic() + 91, {}, rtp_timeout=0) == "session-timer"
    assert [line.split()[0] for line in host.lines] == ["no", "no", "no", "session"]


def test_a_plain_on_demand_recording_never_kept_is_discarded_at_its_end(host, lane):
    async def main():
        s = session(host, lane)
        s.metadata.events = [{"provisional": True}]
        s.start_timeline()
        s.go_live()
        s.begin("")
        settle(lane)
        rec_id = s.writer.id
        closed = await s.end("bye")
        assert closed.discarded and host.store.get(rec_id) is None
    asyncio.run(main())


def test_a_session_cancelled_before_its_answer_ends_without_a_row(host, lane):
    async def main():
        s = session(host, lane)
        s.cancel()
        assert s.cancelled
        assert await s.end("cancel", delete=True) is None
        assert s.state == "ended" and s.writer is None and host.store.list() == []
    asyncio.run(main())
