"""Voicemail: unanswered or declined calls go to the voicemail agent; R-USR-3 records deposits."""
from __future__ import annotations

import time
import wave

import numpy as np
import pytest

from mppsim.phone.analysis import analyse


@pytest.fixture(scope="module")
def sim_org():
    """`sim` with voicemail (the demo org's), unanswered calls going there after 2 s."""
    return {"ring_timeout": 2}


def leave_message(sim, caller, callee, number, decline=False):
    sim.dial(caller, number)
    sim.wait_for(callee, "ringing", 3)
    if decline:
        sim.decline(callee)
    sim.wait_for(caller, "connected", 6)         # the voicemail agent answers after the redirect
    time.sleep(1.5)
    greeting = sim.listen(caller, 1.0)
    time.sleep(5.5)                              # greeting (~5.7 s) + beep + a message
    sim.hangup(caller)
    time.sleep(0.8)
    return greeting


def read_wav(path):
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def test_unanswered_call_goes_to_voicemail_and_the_message_is_kept(sim):
    before = len(sim.voicemails("carol"))
    greeting = leave_message(sim, "+14155550100", "carol", "1003")
    assert greeting["active_seconds"] > 0.5                       # the caller hears the greeting
    assert sim.current_call("carol")["reason"] == "voicemail"
    (msg,) = sim.voicemails("carol")[before:]
    assert msg["caller"] == "+14155550100" and msg["mailbox"] == "1003"
    audio = read_wav(msg["file"])
    assert analyse(audio, 8000).freq_hz == pytest.approx(900, rel=0.02)   # what the caller said
    assert sim.recordings("carol") == []        # carol's recordVoicemailEnabled is off


def test_declined_call_goes_to_voicemail(sim):
    before = len(sim.voicemails("dave"))
    leave_message(sim, "alice", "dave", "1004", decline=True)
    assert len(sim.voicemails("dave")) == before + 1


def test_r_usr_3_record_voicemail_sends_the_deposit_over_siprec(sim):
    """R-USR-3: with recordVoicemailEnabled the message is also recorded at the provider."""
    sim.set_call_recording("bob", {"recordVoicemailEnabled": True})
    before = len(sim.recordings("bob"))
    leave_message(sim, "+14155550100", "bob", "1002")
    time.sleep(0.5)
    recs = [r for r in sim.recordings("bob") if r["state"] != "recording"][before:]
    assert len(recs) == 1
    rec = recs[0]
    assert rec["participants"][0]["aor"] == "sip:1002@127.0.0.1"   # bob's recording
    from mppsim.recorder.wavfile import read
    rate, audio = read(rec["audio_path"])
    assert analyse(audio[:, 1], rate).freq_hz == pytest.approx(900, rel=0.02)   # the caller's message
