"""Recording for real: SIPREC from the agents to mppsim's recorder, audio checked from the file.

Real calls, real SIPREC sessions (both dialects), the recorder worker writing SQLite + WAV.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from mppsim.app.simulator import Simulator
from tests.helpers import connect, finished, demo_org, talk_for
from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read

RATE = 8000


@pytest.fixture(scope="module")
def sim_org():
    """`sim` is the demo org as it is (voicemail on, its own ring timeout)."""
    return {}


def mode(sim, who, record, **extra):
    sim.set_call_recording(who, {"enabled": True, "record": record, **extra})






def channel_freq(audio, channel):
    return analyse(audio[:, channel], RATE).freq_hz


def test_a_ringing_call_gets_its_siprec_leg_ready_and_an_unanswered_one_reaches_no_recorder(sim):
    """A lone call that its answer will record has its SIPREC leg made ready while it rings
    (docs/decisions.md, "standby"); the caller giving up leaves no recording, no session at the
    recorder and nothing behind in the agent once its objects are reaped."""
    mode(sim, "dave", "Always")
    before_rows = len(sim.recordings("dave"))
    before = sim.status("dave")["resources"]
    sim.dial("carol", "1004")
    sim.wait_for("dave", "ringing", 3)
    ringing = sim.status("dave")["resources"]
    assert ringing["siprec_standbys"] == before["siprec_standbys"] + 1, ringing
    assert ringing["siprec_calls"] == before["siprec_calls"] + 1 and ringing["siprec_sessions"] == before["siprec_sessions"]
    sim.hangup("carol")
    sim.wait_for("dave", "ended", 3)
    deadline = time.monotonic() + 6       # the reaper frees a Call 2 s after its end
    while time.monotonic() < deadline:
        now = sim.status("dave")["resources"]
        if now["siprec_standbys"] == before["siprec_standbys"] and now["siprec_calls"] == before["siprec_calls"]:
            break
        time.sleep(0.2)
    assert now["siprec_standbys"] == before["siprec_standbys"] and now["siprec_calls"] == before["siprec_calls"], now
    assert len(sim.recordings("dave")) == before_rows          # the recorder never heard of it


def test_r_rec_1_always_two_channels_each_sides_tone_and_length_matches_talk_time(sim):
    """R-REC-1: both directions recorded, left = the recorded user's send, right = the other's;
    the recorded length is within 100 ms of the talk time."""
    mode(sim, "dave", "Always")
    before = len(sim.recordings("dave"))
    started = []
    watch = lambda ev: started.append(ev) if ev.get("event") == "siprec" and ev.get("state") == "active" else None  # noqa: E731
    sim.subscribe(watch)
    try:
        talk = talk_for(sim, "carol", "dave", "1004", 2.0)
    finally:
        sim.unsubscribe(watch)
    # a lone call recorded from its answer had its SIPREC leg made ready while it rang: at the
    # answer the network SRC sent the SRS's INVITE at once, the agent's own INVITE had been
    # waiting there (docs/decisions.md, "standby")
    (active,) = [ev for ev in started if ev["agent"] == "dave"]
    assert active["standby_ms"] >= 0 and "offer_ahead_ms" not in active, active
    (rec,) = finished(sim, "dave", before + 1)[before:]
    assert rec["participants"][0]["aor"] == "sip:1004@127.0.0.1" and rec["participants"][0]["channel"] == "left"
    rate, audio = read(rec["audio_path"])
    assert rate == RATE and audio.shape[1] == 2
    assert channel_freq(audio, 0) == pytest.approx(700, rel=0.02)    # dave's own tone
    assert channel_freq(audio, 1) == pytest.approx(2000, rel=0.02)   # carol's tone
    assert abs(audio.shape[0] / RATE - talk) < 0.1, (audio.shape[0] / RATE, talk)
    assert rec["talk_seconds"] == pytest.approx(audio.shape[0] / RATE, abs=0.05)
    assert rec["dialect"] == "webex" and rec["state"] == "complete" and not rec["truncated"]
    assert rec["provider"] == "Dubber" and rec["tier"] == "Go" and rec["retention_expires"]   # R-PRV-2: 30 days
    # issue 9: one recorder process for the app; the quality counters of the agents' own SIPREC
    assert len(sim.recorders.workers) == 1 and rec["ended_by"] == "bye" and rec["suspect"] == 0
    assert [s["channel"] for s in rec["stream_stats"]] == ["left", "right"]
    assert all(s["received"] > 80 and s["lost"] == 0 and s["wrong_pt"] == 0 for s in rec["stream_stats"])


def test_r_usr_2_pause_leaves_two_seconds_out_and_marks_a_paused_segment(sim):
    """R-USR-2 Always with Pause/Resume: 2 s paused are absent from the audio, present in the
    index; the recorder received the metadata updates (R-REC-2)."""
    mode(sim, "alice", "Always with Pause/Resume")
    before = len(sim.recordings("alice"))
    connect(sim, "bob", "alice", "1001")
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
    start = time.monotonic()
    time.sleep(1.0)
    sim.press("alice", "PauseRec")
    time.sleep(2.0)
    sim.press("alice", "ResumeRec")
    time.sleep(1.0)
    sim.hangup("bob")
    total = time.monotonic() - start
    (rec,) = finished(sim, "alice", before + 1)[before:]
    rate, audio = read(rec["audio_path"])
    (segment,) = rec["paused_segments"]
    assert segment["duration"] == pytest.approx(2.0, abs=0.15)
    assert abs(audio.shape[0] / RATE - (total - 2.0)) < 0.2
    # no silent gap in the stored audio: the paused time is left out, not stored as silence
    active = analyse(audio[:, 0], RATE).active_seconds
    assert active == pytest.approx(audio.shape[0] / RATE, abs=0.15)
    assert len(rec["metadata_files"]) >= 3      # the INVITE's document + pause + resume updates


def test_r_usr_2_on_demand_nothing_before_record_stop_ends_second_record_second_recording(sim):
    mode(sim, "bob", "On Demand with User Initiated Start")
    before = len(sim.recordings("bob"))
    connect(sim, "bob", "carol", "1003")
    time.sleep(0.8)
    assert len(sim.recordings("bob")) == before            # nothing before Record
    sim.press("bob", "Record")
    time.sleep(1.0)
    sim.press("bob", "StopRec")
    time.sleep(0.5)
    assert len(finished(sim, "bob", before + 1)) == before + 1
    sim.press("bob", "Record")
    time.sleep(1.0)
    sim.hangup("bob")
    recs = finished(sim, "bob", before + 2)[before:]
    assert len(recs) == 2
    for rec in recs:
        rate, audio = read(rec["audio_path"])
        assert 0.8 < audio.shape[0] / RATE < 1.3
        assert channel_freq(audio, 0) == pytest.approx(1500, rel=0.02)


def test_r_usr_2_plain_on_demand_without_record_keeps_nothing(sim):
    mode(sim, "carol", "On Demand")
    before = len(sim.recordings("carol"))
    connect(sim, "+14155550100", "carol", "1003")
    time.sleep(1.0)
    sim.hangup("carol")
    time.sleep(1.0)
    assert len(sim.recordings("carol")) == before
    connect(sim, "+14155550100", "carol", "1003")
    time.sleep(0.5)
    sim.menu("carol", "Start recording")
    time.sleep(0.5)
    sim.hangup("carol")
    (rec,) = finished(sim, "carol", before + 1)[before:]
    rate, audio = read(rec["audio_path"])
    assert audio.shape[0] / RATE > 0.8          # kept from answer, not from the Record press


def test_r_usr_4_announcements_reach_the_parties_but_never_the_recording(sim):
    """R-USR-4 / R-USR-5: the start announcement and the beeps are heard by both parties
    (measured in what they receive) and absent from the recording."""
    mode(sim, "bob", "On Demand with User Initiated Start",
         startStopAnnouncement={"internalCallsEnabled": True, "pstnCallsEnabled": True},
         notification={"enabled": True, "type": "Beep"})
    for who in ("bob", "dave"):
        sim.play(who, silence=True)
    try:
        before = len(sim.recordings("bob"))
        connect(sim, "dave", "bob", "1002")
        time.sleep(0.5)
        sim.press("bob", "Record")
        time.sleep(2.5)        # "This call is being recorded." ~2 s
        heard_by_dave = sim.listen("dave", 2.5)
        heard_by_bob = sim.listen("bob", 2.5)
        sim.press("bob", "PauseRec")
        time.sleep(0.6)
        beep = sim.listen("dave", 0.6)
        sim.hangup("dave")
        assert heard_by_dave["active_seconds"] > 1.0 and heard_by_bob["active_seconds"] > 1.0
        assert beep["freq_hz"] == pytest.approx(1400, rel=0.02)
        (rec,) = finished(sim, "bob", before + 1)[before:]
        rate, audio = read(rec["audio_path"])
        assert audio.shape[0] / RATE > 2.0
        assert np.abs(audio).max() < 100, "announcement audio leaked into the recording"
        kinds = [a.get("announcement") for a in rec["announcements"]]
        assert "start" in kinds      # R-REC-2: the provider learns it was played
    finally:
        sim.play("bob", tone=1500)
        sim.play("dave", tone=700)


def test_r_rec_4_both_parties_recorded_share_the_correlation_not_the_call_id(sim):
    """R-REC-4: two sessions for one internal call share extTrackingID, not Call-ID."""
    mode(sim, "alice", "Always")
    mode(sim, "dave", "Always")
    a0, d0 = len(sim.recordings("alice")), len(sim.recordings("dave"))
    connect(sim, "alice", "dave", "1004")
    time.sleep(0.8)
    sim.hangup("alice")
    (ra,) = finished(sim, "alice", a0 + 1)[a0:]
    (rd,) = finished(sim, "dave", d0 + 1)[d0:]
    assert ra["correlation"] == rd["correlation"] and ra["correlation"]
    assert ra["recording_call_id"] != rd["recording_call_id"]
    assert ra["sip_call_id"] == rd["sip_call_id"]


def test_rfc7866_dialect_target_is_recorded_too(sim):
    """The standard shape (Require: siprec, +sip.src, a=inactive pauses) to the same recorder."""
    target = sim.recorders.workers[0].target + ";dialect=rfc7866"
    sim.orch.request("alice", "set_recorder", target=target)
    try:
        mode(sim, "alice", "Always with Pause/Resume")
        before = len(sim.recordings("alice"))
        connect(sim, "bob", "alice", "1001")
        time.sleep(0.6)
        sim.press("alice", "PauseRec")
        time.sleep(1.0)
        sim.press("alice", "ResumeRec")
        time.sleep(0.6)
        sim.hangup("bob")
        (rec,) = finished(sim, "alice", before + 1)[before:]
        assert rec["dialect"] == "rfc7866"
        assert rec["paused_segments"][0]["duration"] == pytest.approx(1.0, abs=0.15)
        rate, audio = read(rec["audio_path"])
        assert channel_freq(audio, 1) == pytest.approx(1500, rel=0.02)
    finally:
        sim.orch.request("alice", "set_recorder", target=sim.recorders.workers[0].target)


def test_r_org_3_killed_recorder_call_goes_on_device_shows_failed_restart_repairs(tmp_path):
    """kill -9 the recorder mid-call: the call goes on, the phone shows recording failed; after
    a restart the partial recording plays and is marked truncated (R-ORG-3 proceed)."""
    with Simulator(demo_org(), run_dir=tmp_path) as sim:
        sim.play("alice", tone=1000)
        sim.play("bob", tone=1500)
        mode(sim, "alice", "Always")
        connect(sim, "bob", "alice", "1001")
        sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "recording")
        time.sleep(2.0)            # more than a flush interval of audio on disk
        sim.kill_recorder("w0")
        sim.wait_until(lambda: sim.recording_state("alice") == "failed", 5, "recording failed")
        assert sim.recording_view("alice")["message"] == "Recording failed"
        assert sim.call_state("alice") == "connected"
        time.sleep(0.5)
        assert sim.listen("bob", 0.4)["freq_hz"] == pytest.approx(1000, rel=0.02)   # audio still flows
        sim.hangup("bob")
        sim.restart_recorder("w0")
        (rec,) = sim.recordings("alice")
        assert rec["state"] == "truncated" and rec["truncated"]
        rate, audio = read(rec["audio_path"])
        assert audio.shape[0] / RATE > 1.0
        assert channel_freq(audio, 0) == pytest.approx(1000, rel=0.02)


def test_r_rec_3_the_fork_adds_no_delay_on_the_call_path(sim):
    """R-REC-3: mppsim measures the delay its own fork adds to the call path (goal: none).
    Median of 3 onsets each way; a 40 ms allowance covers frame and jitter-buffer quantisation."""
    def delay(record: str) -> float:
        mode(sim, "alice", record)
        samples = []
        for _ in range(3):
            sim.play("alice", silence=True)
            connect(sim, "alice", "bob", "1002")
            time.sleep(0.5)
            started = sim.orch.request("alice", "play", tone=1000)["started"]
            time.sleep(0.5)
            onset = sim.orch.request("bob", "onset", after=started)["onset"]
            sim.hangup("alice")
            sim.wait_for("bob", "ended", 3)
            time.sleep(0.3)
            samples.append((onset - started) * 1000)
        return sorted(samples)[1]
    try:
        mode(sim, "bob", "Never")
        without, with_recording = delay("Never"), delay("Always")
    finally:
        sim.play("alice", tone=1000)
    assert with_recording - without < 40, (without, with_recording)
