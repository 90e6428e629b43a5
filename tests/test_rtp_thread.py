"""Agents that read RTP on pjmedia's own thread (`Simulator(rtp_thread=True)`, what `mppsim
load` runs: issue 22, item 6). The RTP callbacks, RFC 4733 digits among them, then come from
that thread instead of the agent's pjsua poller: the same calls, recordings and digits."""
from __future__ import annotations

from pathlib import Path

import pytest

from mppsim.app.simulator import Simulator
from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read
from tests.helpers import TONES, connect, demo_org, finished, hang_up_everything, talk_for

RATE = 8000


@pytest.fixture(scope="module")
def tsim(tmp_path_factory):
    s = Simulator(demo_org(), run_dir=tmp_path_factory.mktemp("rtp-thread"), front_door_port=None,
                  rtp_thread=True)
    s.start()
    for who, freq in TONES.items():
        s.play(who, tone=freq)
    yield s
    s.stop()


def thread_names(pid: int) -> list[str]:
    return [(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()]


def test_every_agent_has_pjmedias_rtp_thread_and_an_apps_org_has_none(tsim, sim):
    assert all("media" in thread_names(a.pid) for a in tsim.orch.agents.values())
    assert not any("media" in thread_names(a.pid) for a in sim.orch.agents.values())


def test_r_rec_1_a_recorded_call_keeps_both_tones_on_their_channels(tsim):
    tsim.set_call_recording("dave", {"enabled": True, "record": "Always"})
    before = len(tsim.recordings("dave"))
    talk = talk_for(tsim, "carol", "dave", "1004", 2.0)
    (rec,) = finished(tsim, "dave", before + 1)[before:]
    rate, audio = read(rec["audio_path"])
    assert rate == RATE and audio.shape[1] == 2
    assert analyse(audio[:, 0], RATE).freq_hz == pytest.approx(TONES["dave"], rel=0.02)
    assert analyse(audio[:, 1], RATE).freq_hz == pytest.approx(TONES["carol"], rel=0.02)
    assert abs(audio.shape[0] / RATE - talk) < 0.1
    assert all(s["received"] > 80 and s["lost"] == 0 for s in rec["stream_stats"])


def test_dtmf_digits_arrive_from_the_rtp_thread(tsim):
    connect(tsim, "alice", "bob", "1002")
    try:
        tsim.dtmf("alice", "159*#")
        tsim.wait_until(lambda: tsim.status("bob")["calls"][-1]["dtmf"] == "159*#", 4, "digits at bob")
    finally:
        hang_up_everything(tsim)
