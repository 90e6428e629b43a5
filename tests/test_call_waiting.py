"""Call waiting over real SIP and RTP (issue 13, part 3): the second call rings as waiting, the
user hears the call-waiting tone (measured in the captured samples), the other party and the
recording do not; answering holds the first; each call keeps its own recording; a third call
gets busy."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests.helpers import TONES, connect, finished
from mppsim.phone.analysis import analyse
from mppsim.phone.call_waiting import CW_BURST_S, CW_FREQ_HZ, cw_tone, may_wait
from mppsim.recorder.wavfile import read

RATE = 8000


def test_may_wait_rule():
    assert may_wait(["connected"]) and may_wait(["held"])
    assert not may_wait([]) and not may_wait(["ringing"]) and not may_wait(["dialing"])
    assert not may_wait(["connected", "held"])               # a third call is busy


def test_cw_tone_is_one_300_ms_burst_of_440_hz():
    x = cw_tone()
    assert len(x) == int(CW_BURST_S * RATE)
    assert analyse(x, RATE).freq_hz == pytest.approx(440, rel=0.01)


def tone_ms(samples: np.ndarray, freq: float, block: int = 160) -> float:
    """Milliseconds of 20 ms blocks carrying `freq` (over 20 % of the block's energy within
    +-40 Hz of it), whatever else plays at the same time."""
    n = len(samples) // block
    total = 0
    f = np.fft.rfftfreq(1024, 1 / RATE)
    near = np.abs(f - freq) < 40
    for i in range(n):
        b = samples[i * block:(i + 1) * block].astype(float)
        if np.sqrt(np.mean(b ** 2)) < 300:
            continue
        spec = np.abs(np.fft.rfft(b * np.hanning(block), 1024)) ** 2
        total += 20 if spec[near].sum() > 0.2 * spec.sum() else 0
    return total


def energy_at(samples: np.ndarray, freq: float) -> float:
    """Fraction of the signal's spectral energy within +-15 Hz of `freq`."""
    x = samples.astype(float)
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spec[np.abs(f - freq) < 15].sum() / max(spec.sum(), 1e-9))


@pytest.fixture(scope="module")
def sim_org():
    """`sim` rings 6 s: the waiting call must not end unanswered while the test listens to it."""
    return {"ring_timeout": 6, "voicemail": False}


def test_r_ux_1_second_call_waits_tone_heard_by_user_only_answer_holds_first_third_busy(sim):
    """R-UX-1/R-UX-3 per call: alice (Always with Pause/Resume) talks with bob; carol's call rings
    as waiting; alice hears a 300 ms 440 Hz burst over bob's audio, bob does not, nor does the
    recording; dave gets busy; answering carol holds bob; both calls recorded separately."""
    sim.set_call_recording("alice", {"enabled": True, "record": "Always with Pause/Resume"})
    before = len(sim.recordings("alice"))
    connect(sim, "bob", "alice", "1001")
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
    bob_call = sim.current_call("alice")["call"]
    time.sleep(0.5)
    sim.dial("carol", "1001")
    sim.wait_until(lambda: sim.waiting_call("alice") is not None, 3, "a waiting call at alice")
    waiting = sim.waiting_call("alice")
    assert waiting["remote"]["user"] == "1003"
    assert [c["state"] for c in sim.live_calls("alice")] == ["connected", "ringing"]
    sim.wait_until(lambda: sim.current_call("carol")["ringback"], 3, "ringback at carol")
    assert sim.call_state("carol") == "dialing"
    # per call: bob's call keeps its recording state and keys while carol's rings
    assert sim.indicator("alice", call=bob_call) == "recording"
    assert sim.softkeys("alice", call=bob_call) == ["PauseRec"]
    time.sleep(0.8)
    # a third call is busy
    sim.dial("dave", "1001")
    sim.wait_for("dave", "ended", 3)
    assert sim.current_call("dave")["reason"] == "busy"
    sim.answer("alice", call=waiting["call"])
    sim.wait_for("carol", "connected", 3)
    sim.wait_for("bob", "held", 3)
    time.sleep(0.8)
    assert sim.listen("carol", 0.4)["freq_hz"] == pytest.approx(TONES["alice"], rel=0.02)
    assert sim.listen("bob", 0.4)["active_seconds"] < 0.1          # bob waits on hold in silence
    sim.wait_until(lambda: sim.indicator("alice", call=waiting["call"]) == "recording", 3, "carol's call recorded")
    sim.hangup("carol")
    sim.hangup("bob")
    sim.wait_until(lambda: sim.calls[bob_call]["state"] == "ended"
                   and (sim.summaries.get(bob_call) or {}).get("capture_file"), 3, "bob's call over")
    # what alice heard on bob's call: bob's tone and one call-waiting burst on top
    _, heard = read(sim.summaries[bob_call]["capture_file"])
    heard = heard[:, 0] if heard.ndim > 1 else heard
    burst = tone_ms(heard, CW_FREQ_HZ)
    assert 200 <= burst <= 420, burst
    def bob_summaries():
        return [s for s in sim.summaries.values() if s["agent"] == "bob" and s["remote"]["user"] == "1001"
                and s.get("capture_file")]
    sim.wait_until(lambda: bob_summaries(), 3, "bob's call summary")
    bob_summary = bob_summaries()[-1]
    _, bob_heard = read(bob_summary["capture_file"])
    bob_heard = bob_heard[:, 0] if bob_heard.ndim > 1 else bob_heard
    assert tone_ms(bob_heard, CW_FREQ_HZ) == 0                       # the other party never hears it
    recs = finished(sim, "alice", before + 2)[before:]
    assert len(recs) == 2                                              # one recording per call
    for rec in recs:
        _, audio = read(rec["audio_path"])
        assert energy_at(audio[:, 0], CW_FREQ_HZ) < 0.01 and energy_at(audio[:, 1], CW_FREQ_HZ) < 0.01
    right = {round(analyse(read(r["audio_path"])[1][:, 1], RATE).freq_hz or 0) for r in recs}
    assert right == {TONES["bob"], TONES["carol"]}
