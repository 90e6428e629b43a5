"""Real audio for one device (issue 5 item 4): the agent side, with this test as the sound card.

This machine has no audio device, so the test plays the GUI's part: it sends microphone frames
over UDP and receives what the user hears, and checks both by frequency.
"""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from mppsim.phone.analysis import analyse


def test_the_chosen_device_talks_and_listens_through_the_sound_card_link(sim):
    gui = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gui.bind(("127.0.0.1", 0))
    gui.setblocking(False)
    agent_port = sim.orch.request("alice", "sound_bridge", port=gui.getsockname()[1])["port"]
    try:
        sim.dial("alice", "1002")
        sim.wait_for("bob", "ringing", 3)
        sim.answer("bob")
        sim.wait_for("alice", "connected", 3)
        t = np.arange(160) / 8000
        heard = []
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < 1.5:           # 1.5 s of "microphone": a 600 Hz tone
            frame = (8000 * np.sin(2 * np.pi * 600 * (t + n * 0.02))).astype(np.int16)
            gui.sendto(frame.tobytes(), ("127.0.0.1", agent_port))
            n += 1
            try:
                while True:
                    data, _ = gui.recvfrom(4096)
                    heard.append(np.frombuffer(data, dtype=np.int16))
            except BlockingIOError:
                pass
            time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
        assert sim.listen("bob", 0.8)["freq_hz"] == pytest.approx(600, rel=0.02)      # bob hears the mic
        speaker = analyse(np.concatenate(heard), 8000)
        assert speaker.freq_hz == pytest.approx(1500, rel=0.02)                        # the speaker gets bob
    finally:
        sim.orch.request("alice", "sound_bridge_off")
        sim.play("alice", tone=1000)
        gui.close()


def test_without_an_audio_device_the_app_runs_silent_and_says_so_once(sim):
    """This machine has no sound card: choosing real audio says so once, nothing breaks."""
    from mppsim.ui.real_audio import RealAudio, audio_devices
    names, why = audio_devices()
    if names:
        pytest.skip("this machine has an audio device")
    audio = RealAudio(sim)
    first = audio.start("alice")
    assert first.startswith("Running silent: ") and why in first
    assert audio.start("bob") == ""          # said once
    assert audio.who is None and sim.status("alice")["source"]["kind"] != "soundcard"
