"""Mute over real SIP and RTP (issue 13, part 4): while muted the other party and the
recording's user channel get silence (measured); the recording is not paused."""
from __future__ import annotations

import time

import pytest

from mppsim.app.simulator import SimulatorError
from tests.helpers import TONES, connect, finished, hang_up_everything
from mppsim.phone.analysis import active_blocks
from mppsim.recorder.wavfile import read

RATE = 8000


@pytest.fixture(scope="module")
def sim_org():
    """`sim` with the demo org's own ring timeout."""
    return {"voicemail": False}


def test_r_usr_2_mute_silences_the_far_end_and_the_user_channel_recording_goes_on(sim):
    """R-USR-2 (Always): ~2 s muted in the middle of a recorded call. Bob hears silence while
    alice is muted and her tone again after; the recording's left (user) channel is silent for
    as long as she was muted (measured: the two `listen`s inside take 0.3-0.5 s each) while the
    right channel (bob) never stops; no paused segment, one recording."""
    sim.set_call_recording("dave", {"enabled": True, "record": "Always"})
    before = len(sim.recordings("dave"))
    with pytest.raises(SimulatorError, match="no call to mute"):
        sim.mute("dave")
    connect(sim, "bob", "dave", "1004")
    sim.wait_until(lambda: sim.indicator("dave") == "recording", 3, "dave recording")
    time.sleep(1.0)
    assert sim.mute("dave") is True
    muted_at = time.monotonic()
    sim.wait_until(lambda: sim.muted("dave"), 2, "mute event")
    time.sleep(0.5)
    assert sim.listen("bob", 0.4)["active_seconds"] < 0.05         # bob hears nothing
    assert sim.listen("dave", 0.4)["freq_hz"] == pytest.approx(TONES["bob"], rel=0.02)   # dave still hears
    assert sim.recording_state("dave") == "started" and sim.indicator("dave") == "recording"
    time.sleep(1.0)
    assert sim.unmute("dave") is False
    muted_for = time.monotonic() - muted_at
    time.sleep(0.6)
    assert sim.listen("bob", 0.4)["freq_hz"] == pytest.approx(TONES["dave"], rel=0.02)
    time.sleep(0.6)
    sim.hangup("bob")
    sim.wait_for("dave", "ended", 3)
    (rec,) = finished(sim, "dave", before + 1)[before:]
    assert rec["paused_segments"] == []
    _, audio = read(rec["audio_path"])
    left_on = active_blocks(audio[:, 0], RATE)
    right_on = active_blocks(audio[:, 1], RATE)
    silent_left = (~left_on).sum() * 0.02
    # the muted stretch only: within a frame or two of the commands' round trips
    assert muted_for - 0.2 <= silent_left <= muted_for + 0.2, (silent_left, muted_for)
    assert right_on.mean() > 0.95                                    # bob's side never stops
    sim.wait_until(lambda: not sim.muted("dave"), 2, "un-muted after the call")
    hang_up_everything(sim)


def test_mute_is_refused_with_a_clear_error_for_a_bad_value(sim):
    connect(sim, "alice", "bob", "1002")
    from mppsim.app.orchestrator import AgentError
    with pytest.raises(AgentError, match="on: .yes. not allowed; allowed: true, false"):
        sim.orch.request("alice", "mute", on="yes")
    hang_up_everything(sim)
