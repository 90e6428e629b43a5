"""mppsim-recorder fed by a SIPREC client nobody here wrote: SIPp 3.6.1 (Debian `sip-tester`)
playing scenarios of tests/peers/sipp/ in the shapes real SRCs send (issue 9, classes 1-8), with
RTP on both streams (pcap play, tests/peers/rtp_pcap.py). Each test checks what was stored: the
WAV's channels by analysing samples (the tone sent on each stream is on its channel), the index
row, the metadata documents as received.

One recorder for the module, started with a short --rtp-timeout (class 6), on a free port.
"""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read
from tests.peers.recorder_proc import start_recorder
from tests.peers.rtp_pcap import Stream
from tests.peers.sipp_runner import SIPP, SippRun, run_sipp

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp not installed: scripts/setup installs the "
                                                      "Debian package sip-tester")

RTP_TIMEOUT = 2          # s: class 6, a session without BYE must end by itself


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    rec = start_recorder(tmp_path_factory.mktemp("sipp") / "store", "--rtp-timeout", str(RTP_TIMEOUT))
    yield rec
    rec.stop()


def unique(prefix: str) -> str:
    """A Call-ID pattern for SIPp's -cid_str: this test's recordings are found by it."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sipp(recorder, scenario: str, tmp_path: Path, tag: str, **kw) -> tuple[SippRun, str]:
    call_id = unique(tag)
    run = run_sipp(scenario, recorder.sip, tmp_path / tag, call_id=f"{call_id}-%u@%s", **kw)
    return run, call_id


def our_rows(recorder, call_id: str, settled: bool = True, timeout: float = 10.0) -> list[dict]:
    """Index rows of the recordings whose SIPREC dialog this test's SIPp made (once ended)."""
    def ours(r):
        return r["recording_call_id"].startswith(call_id) and (not settled or r["state"] != "recording")
    return recorder.wait_rows(ours, timeout, f"recording of {call_id}")


def segment(audio: np.ndarray, rate: int, start: float, end: float | None = None) -> np.ndarray:
    return audio[int(start * rate): None if end is None else int(end * rate)]


def assert_tone(samples: np.ndarray, rate: int, freq: float, min_active: float, what: str) -> None:
    heard = analyse(samples, rate)
    assert heard.freq_hz is not None and heard.freq_hz == pytest.approx(freq, rel=0.02), (what, heard)
    assert heard.active_seconds >= min_active, (what, heard)


def sent_part(message: str, content_type: str) -> bytes:
    """The body part of `content_type` in a message SIPp sent (bytes as on the wire)."""
    head, body = message.split("\n\n", 1)
    boundary = re.search(r'boundary="?([^";\r\n]+)', head).group(1)
    for part in body.replace("\r\n", "\n").split("--" + boundary):
        if "\n\n" in part and content_type.lower() in part.split("\n\n", 1)[0].lower():
            return part.split("\n\n", 1)[1].rstrip("\n").replace("\n", "\r\n").encode()
    raise AssertionError(f"no {content_type} part in {head[:200]}")


def sent_body(message: str) -> bytes:
    """The whole body of a message SIPp sent, as on the wire (CRLF, Content-Length bytes)."""
    head, body = message.split("\n\n", 1)
    length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
    return body.replace("\n", "\r\n").encode()[:length]


def stored_metadata(recorder, row: dict) -> list[bytes]:
    """The metadata documents of a recording (paths in the index are relative to the store)."""
    return [(recorder.store / name).read_bytes() for name in row["metadata_files"]]


def stats_by_channel(row: dict) -> dict[str, dict]:
    stats = row["stream_stats"]
    stats = json.loads(stats) if isinstance(stats, str) else stats
    return {s["channel"]: s for s in stats}


def answered_ports(run: SippRun) -> list[int]:
    oks = [m for d, m in run.messages if d == "received" and m.startswith("SIP/2.0 200")
           and "m=audio" in m]
    return [int(p) for p in re.findall(r"m=audio (\d+)", oks[0])] if oks else []


def assert_ok(run: SippRun) -> None:
    assert run.returncode == 0, run.explain()
    ports = answered_ports(run)
    # SIPp's pcap play reaches stream k at the answer's first port + 2k (tests/peers/rtp_pcap.py)
    assert ports and ports == [ports[0] + 2 * k for k in range(len(ports))], \
        f"recorder answered RTP ports {ports}: SIPp can only reach consecutive even ports P, P+2"


# --- class 7 + R-REC-4: the Webex Calling / BroadWorks dialect -------------------------------

def test_r_rec_4_webex_broadworks_session_from_sipp_is_recorded(recorder, tmp_path):
    """R-REC-4, R-REC-1: BroadWorks dialect (;src, no Require, X-BroadWorks-Correlation-Info,
    recording_metadata + broadWorksRecordingMetadata, o=BroadWorks, labels 1/2, offer
    111 101 0 8 9 107) with PCMU on both streams: label 1 on the left channel, label 2 on the
    right; names from From when the metadata has none; sip_call_id not empty (class 7)."""
    corr = str(uuid.uuid4())
    run, call_id = sipp(recorder, "webex_broadworks.xml", tmp_path, "webex",
                        streams=[Stream(700, 1.2), Stream(1100, 1.2, ssrc=0x2000)],
                        keys={"corr": corr}, hold_ms=1500)
    assert_ok(run)
    assert [code for code, _ in run.final("INVITE")] == [200]
    (row,) = our_rows(recorder, call_id)
    assert (row["dialect"], row["state"], row["ended_by"]) == ("webex", "complete", "bye")
    assert row["correlation"] == f"{corr}-1"
    assert [p["aor"] for p in row["participants"]] == ["sip:1001@127.0.0.1", "sip:+14155550100@127.0.0.1;user=phone"]
    assert row["participants"][0]["name"] == "Alice Smith"        # From's display name
    assert row["sip_call_id"] == "callhalf-1420123:1", "BroadWorks callID (docs/store.md, class 7)"
    rate, audio = read(row["audio_path"])
    assert_tone(audio[:, 0], rate, 700, 1.0, "left = label 1 = Alice's send stream")
    assert_tone(audio[:, 1], rate, 1100, 1.0, "right = label 2 = the other party")
    (invite,) = run.sent("INVITE")
    assert stored_metadata(recorder, row) == [sent_part(invite, "application/rs-metadata+xml")]
    stats = stats_by_channel(row)
    assert stats["left"]["received"] >= 55 and stats["right"]["received"] >= 55, stats
    assert (stats["left"]["lost"], stats["right"]["lost"], stats["left"]["wrong_pt"]) == (0, 0, 0), stats
    assert not row["suspect"]


# --- RFC 7866 --------------------------------------------------------------------------------

def test_rfc7866_session_from_sipp_is_recorded_with_names_from_metadata(recorder, tmp_path):
    """R-REC-1, R-REC-2: RFC 7866 / 7865 shape (Require: siprec, +sip.src, <recording>,
    participantstreamassoc), one stream per direction:
    label 96 (Alice sends) left, 97 (Bob sends) right; sipSessionID is the row's sip_call_id."""
    run, call_id = sipp(recorder, "rfc7866.xml", tmp_path, "rfc7866",
                        streams=[Stream(700, 1.2), Stream(1100, 1.2, ssrc=0x2000)],
                        keys={"offer": "0 8 101", "session": "a84b4c76e66710"}, hold_ms=1500)
    assert_ok(run)
    (row,) = our_rows(recorder, call_id)
    assert (row["dialect"], row["state"], row["ended_by"]) == ("rfc7866", "complete", "bye")
    assert [(p["aor"], p["name"]) for p in row["participants"]] == [
        ("sip:1001@example.com", "Alice Smith"), ("sip:1002@example.com", "Bob Jones")]
    assert row["sip_call_id"] == "a84b4c76e66710-1"
    rate, audio = read(row["audio_path"])
    assert_tone(audio[:, 0], rate, 700, 1.0, "left = label 96")
    assert_tone(audio[:, 1], rate, 1100, 1.0, "right = label 97")
    (invite,) = run.sent("INVITE")
    assert stored_metadata(recorder, row) == [sent_part(invite, "application/rs-metadata+xml")]


# --- class 1: PCMA, and RTP the recorder cannot decode -----------------------------------------

def test_pcma_only_offer_is_answered_and_recorded(recorder, tmp_path):
    """Class 1: an offer of PCMA only is answered with PCMA (not 488) and PCMA RTP is decoded."""
    run, call_id = sipp(recorder, "rfc7866.xml", tmp_path, "pcma",
                        streams=[Stream(700, 1.2, "PCMA"), Stream(1100, 1.2, "PCMA", ssrc=0x2000)],
                        keys={"offer": "8 101", "session": "pcma"}, hold_ms=1500)
    assert_ok(run)
    ok = [m for d, m in run.messages if d == "received" and m.startswith("SIP/2.0 200") and "m=audio" in m][0]
    assert all(line.split()[3] == "8" for line in re.findall(r"m=audio [^\r\n]*", ok)), ok
    (row,) = our_rows(recorder, call_id)
    rate, audio = read(row["audio_path"])
    assert_tone(audio[:, 0], rate, 700, 1.0, "left, PCMA")
    assert_tone(audio[:, 1], rate, 1100, 1.0, "right, PCMA")
    stats = stats_by_channel(row)
    assert stats["left"]["codec"].upper().startswith("PCMA") and stats["left"]["wrong_pt"] == 0, stats
    assert not row["suspect"]


def test_rtp_of_a_payload_type_never_announced_is_counted_and_the_recording_marked_suspect(recorder, tmp_path):
    """Class 1: RTP with a payload type the SRC did not announce (96, no rtpmap) cannot be
    decoded: the recording is silent although RTP arrived, so it is `suspect`, never a quiet
    `complete`; the wrong payload types are counted per stream."""
    run, call_id = sipp(recorder, "rfc7866.xml", tmp_path, "wrongpt",
                        streams=[Stream(700, 1.2, payload_type=96), Stream(1100, 1.2, payload_type=96, ssrc=0x2000)],
                        keys={"offer": "0 101", "session": "wrongpt"}, hold_ms=1500)
    assert_ok(run)
    (row,) = our_rows(recorder, call_id)
    stats = stats_by_channel(row)
    assert stats["left"]["wrong_pt"] >= 55 and stats["right"]["wrong_pt"] >= 55, stats
    assert row["suspect"] and row["suspect_reason"], row
    rate, audio = read(row["audio_path"])
    assert analyse(audio[:, 0], rate).active_seconds == 0


def test_wideband_g722_session_is_stored_wideband(recorder, tmp_path):
    """Build 1-2: G.722 is recorded and kept wideband: a 16 kHz WAV in which 5 and 6 kHz tones
    (above what 8 kHz audio can hold) are on their channels."""
    run, call_id = sipp(recorder, "rfc7866.xml", tmp_path, "g722",
                        streams=[Stream(5000, 1.2, "G722"), Stream(6000, 1.2, "G722", ssrc=0x2000)],
                        keys={"offer": "9 101", "session": "g722"}, hold_ms=1500)
    assert_ok(run)
    (row,) = our_rows(recorder, call_id)
    rate, audio = read(row["audio_path"])
    assert rate == row["rate"] == 16000
    assert_tone(audio[:, 0], rate, 5000, 1.0, "left, G.722")
    assert_tone(audio[:, 1], rate, 6000, 1.0, "right, G.722")


def test_r_rec_4_webex_pause_by_null_address_and_resume_from_sipp(recorder, tmp_path):
    """R-REC-4, R-USR-2: BroadWorks pauses by re-INVITE with c=0.0.0.0 and resumes with the real
    address: both answered 200, one paused segment of about 1 s in the index, the paused time
    left out of the WAV, and the audio before and after on the same channels."""
    run, call_id = sipp(recorder, "webex_pause_resume.xml", tmp_path, "pause", keys={"corr": str(uuid.uuid4())},
                        streams=[Stream(700, 1.0), Stream(1100, 1.0, ssrc=0x2000)],
                        pcaps={"streams2.pcap": [Stream(900, 1.0, ssrc=0x1001), Stream(1500, 1.0, ssrc=0x2001)]})
    assert_ok(run)
    assert [c for c, _ in run.final("INVITE")] == [200, 200, 200]
    (row,) = our_rows(recorder, call_id)
    assert (row["state"], row["ended_by"]) == ("complete", "bye")
    (pause,) = row["paused_segments"]
    assert 0.9 <= pause["start"] <= 2.0 and 0.7 <= pause["duration"] <= 2.0, pause
    rate, audio = read(row["audio_path"])
    seconds = audio.shape[0] / rate
    assert seconds <= 2 * 1.1 + 0.3 + 0.5, f"{seconds} s: the pause is in the WAV"
    cut = pause["start"]
    assert_tone(segment(audio[:, 0], rate, 0, cut - 0.05), rate, 700, 0.8, "left before the pause")
    assert_tone(segment(audio[:, 1], rate, 0, cut - 0.05), rate, 1100, 0.8, "right before the pause")
    assert_tone(segment(audio[:, 0], rate, cut + 0.05), rate, 900, 0.8, "left after the resume")
    assert_tone(segment(audio[:, 1], rate, cut + 0.05), rate, 1500, 0.8, "right after the resume")


# --- class 2 + 7: transfer, a re-INVITE over 4000 bytes that changes the participants ----------

@pytest.mark.parametrize("transport", ["t1", "u1"])
def test_big_reinvite_after_a_transfer_updates_participants_and_keeps_recording(recorder, tmp_path, transport):
    """Classes 2 and 7: BroadWorks re-INVITEs after 7722 transfers the call to 7733, > 4000 bytes
    (over UDP too): it is answered 200, the index lists the current participants (7733, not 7722)
    with a timeline (7722 until the transfer, 7733 from it), both metadata documents are stored
    as received, and the audio after the re-INVITE is recorded on the same channels."""
    corr = str(uuid.uuid4())
    run, call_id = sipp(recorder, "webex_transfer_reinvite.xml", tmp_path, f"xfer{transport}",
                        transport=transport, keys={"corr": corr},
                        streams=[Stream(700, 1.0), Stream(1100, 1.0, ssrc=0x2000)],
                        pcaps={"streams2.pcap": [Stream(900, 1.0, ssrc=0x1001), Stream(1500, 1.0, ssrc=0x2001)]})
    assert_ok(run)
    invites = run.sent("INVITE")
    wire = [len(m.replace("\n", "\r\n").encode()) for m in invites]
    assert len(invites) == 2 and wire[1] > 4000, wire
    assert [c for c, _ in run.final("INVITE")] == [200, 200]
    (row,) = our_rows(recorder, call_id)
    assert [p["aor"] for p in row["participants"]] == ["sip:1001@127.0.0.1", "sip:7733@127.0.0.1"]
    timeline = {p["aor"]: p for p in row["participants_timeline"]}
    assert set(timeline) == {"sip:1001@127.0.0.1", "sip:7722@127.0.0.1", "sip:7733@127.0.0.1"}, timeline
    assert timeline["sip:1001@127.0.0.1"]["to"] is None or timeline["sip:1001@127.0.0.1"]["to"] >= 2.0
    assert 0.8 <= timeline["sip:7722@127.0.0.1"]["to"] <= 2.0, timeline
    assert timeline["sip:7733@127.0.0.1"]["from"] == pytest.approx(timeline["sip:7722@127.0.0.1"]["to"], abs=0.1)
    assert timeline["sip:7733@127.0.0.1"]["channel"] == timeline["sip:7722@127.0.0.1"]["channel"] == "right"
    assert stored_metadata(recorder, row) == [sent_part(m, "application/rs-metadata+xml") for m in invites]
    rate, audio = read(row["audio_path"])
    cut = timeline["sip:7722@127.0.0.1"]["to"]
    assert_tone(segment(audio[:, 1], rate, 0, cut - 0.05), rate, 1100, 0.8, "right before the transfer")
    assert_tone(segment(audio[:, 1], rate, cut + 0.05), rate, 1500, 0.8, "right after the transfer")
    assert_tone(segment(audio[:, 0], rate, cut + 0.05), rate, 900, 0.8, "left after the transfer")


# --- class 3: metadata-only UPDATE ----------------------------------------------------------------

def test_metadata_only_update_is_accepted_and_the_joining_participant_indexed(recorder, tmp_path):
    """Class 3: an UPDATE carrying only a partial metadata document (Carol joins) gets 200, the
    document is stored, Carol is in the participants and the timeline from that moment, and the
    audio is not interrupted."""
    run, call_id = sipp(recorder, "rfc7866_update.xml", tmp_path, "update",
                        streams=[Stream(700, 2.2), Stream(1100, 2.2, ssrc=0x2000)],
                        keys={"offer": "0 101", "session": "update"})
    assert_ok(run)
    assert [code for code, _ in run.final("UPDATE")] == [200]
    (row,) = our_rows(recorder, call_id)
    names = [(p["aor"], p["name"]) for p in row["participants"]]
    assert ("sip:1003@example.com", "Carol White") in names and len(names) == 3, names
    carol = [p for p in row["participants_timeline"] if p["aor"] == "sip:1003@example.com"]
    assert len(carol) == 1 and 0.7 <= carol[0]["from"] <= 1.8 and carol[0]["channel"] == "right", carol
    (invite,), (update,) = run.sent("INVITE"), run.sent("UPDATE")
    stored = stored_metadata(recorder, row)
    assert len(stored) == 2 and stored[0] == sent_part(invite, "application/rs-metadata+xml")
    assert stored[1] == sent_body(update)
    rate, audio = read(row["audio_path"])
    assert_tone(audio[:, 0], rate, 700, 2.0, "left across the UPDATE")
    assert_tone(audio[:, 1], rate, 1100, 2.0, "right across the UPDATE")


# --- class 4: Avaya's empty placeholder stream ----------------------------------------------------

def test_avaya_metadata_with_an_empty_placeholder_stream_id_is_recorded(recorder, tmp_path):
    """Class 4: one <stream stream_id=""> placeholder does not reject the session: 200, both
    streams recorded on their channels, participants named from the metadata."""
    run, call_id = sipp(recorder, "avaya_placeholder.xml", tmp_path, "avaya",
                        streams=[Stream(700, 1.2), Stream(1100, 1.2, ssrc=0x2000)],
                        keys={"offer": "0 8 101", "session": "avaya"}, hold_ms=1500)
    assert_ok(run)
    (row,) = our_rows(recorder, call_id)
    assert [p["name"] for p in row["participants"]] == ["Alice Smith", "Bob Jones"]
    rate, audio = read(row["audio_path"])
    assert_tone(audio[:, 0], rate, 700, 1.0, "left = label 1")
    assert_tone(audio[:, 1], rate, 1100, 1.0, "right = label 2")


# --- class 5: G.722-only re-INVITE ----------------------------------------------------------------

def test_g722_only_reinvite_is_taken_and_the_session_goes_on(recorder, tmp_path):
    """Class 5: a session in PCMU re-INVITEd with G.722 only is answered 200 with G.722 (not 500),
    and both parts are recorded on the right channels."""
    run, call_id = sipp(recorder, "rfc7866_g722_reinvite.xml", tmp_path, "g722re",
                        streams=[Stream(700, 1.0), Stream(1100, 1.0, ssrc=0x2000)],
                        pcaps={"streams2.pcap": [Stream(1500, 1.0, "G722", ssrc=0x1001),
                                                 Stream(2500, 1.0, "G722", ssrc=0x2001)]},
                        keys={"offer": "0 101", "session": "g722re"})
    assert_ok(run)
    assert [c for c, _ in run.final("INVITE")] == [200, 200]
    ok2 = [m for d, m in run.messages if d == "received" and m.startswith("SIP/2.0 200") and "m=audio" in m][-1]
    assert all(line.split()[3] == "9" for line in re.findall(r"m=audio [^\r\n]*", ok2)), ok2
    (row,) = our_rows(recorder, call_id)
    assert row["state"] == "complete" and row["ended_by"] == "bye"
    rate, audio = read(row["audio_path"])
    half = audio.shape[0] / rate / 2
    assert_tone(segment(audio[:, 0], rate, 0, half - 0.1), rate, 700, 0.8, "left, PCMU part")
    assert_tone(segment(audio[:, 1], rate, 0, half - 0.1), rate, 1100, 0.8, "right, PCMU part")
    assert_tone(segment(audio[:, 0], rate, half + 0.1), rate, 1500, 0.8, "left, G.722 part")
    assert_tone(segment(audio[:, 1], rate, half + 0.1), rate, 2500, 0.8, "right, G.722 part")


# --- class 6: no BYE -------------------------------------------------------------------------------

def test_session_without_bye_ends_by_rtp_timeout(recorder, tmp_path):
    """Class 6 / Build 1: the SRC sends 1 s of RTP and vanishes without a BYE: after
    --rtp-timeout the recording is ended (`ended_by: timeout`), never left `recording`, and the
    WAV stops growing."""
    run, call_id = sipp(recorder, "rfc7866_no_bye.xml", tmp_path, "nobye",
                        streams=[Stream(700, 1.0), Stream(1100, 1.0, ssrc=0x2000)],
                        keys={"offer": "0 101", "session": "nobye"}, hold_ms=1100)
    assert_ok(run)
    assert run.sent("BYE") == []
    (row,) = our_rows(recorder, call_id, timeout=RTP_TIMEOUT + 8)
    assert row["state"] in ("complete", "truncated") and row["ended_by"] == "timeout", row
    rate, audio = read(row["audio_path"])
    assert audio.shape[0] / rate <= 1.0 + RTP_TIMEOUT + 1.5
    assert_tone(audio[:, 0], rate, 700, 0.9, "left")
    assert_tone(audio[:, 1], rate, 1100, 0.9, "right")


# --- class 8: Route without angle brackets -------------------------------------------------------

@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_route_without_angle_brackets_is_answered(recorder, tmp_path, transport):
    """Class 8: `Route: sip:srs@host:port;transport=..;lr` (no <>) is accepted and recorded, or
    refused with 400 and a reason - never silence (SIPp would time out)."""
    run, call_id = sipp(recorder, "rfc7866_route_no_brackets.xml", tmp_path, f"route{transport}",
                        transport=transport, streams=[Stream(700, 1.0), Stream(1100, 1.0, ssrc=0x2000)],
                        keys={"offer": "0 101", "session": "route"}, hold_ms=1200)
    assert run.returncode == 0, run.explain()
    ((code, reason),) = run.final("INVITE")
    assert code in (200, 400), (code, reason)
    if code == 200:
        (row,) = our_rows(recorder, call_id)
        rate, audio = read(row["audio_path"])
        assert_tone(audio[:, 0], rate, 700, 0.9, "left")
        assert_tone(audio[:, 1], rate, 1100, 0.9, "right")
    else:
        assert "route" in reason.lower(), reason
