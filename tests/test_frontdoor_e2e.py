"""External softphones call simulated users through the front door (302 to the user's agent)."""
from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TONES
from mppsim.phone.analysis import analyse

PEER = Path(__file__).parent / "peers" / "sip_caller.py"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_pjsua2_softphone_reaches_bob_by_extension(sim, transport):
    sim.set_auto_answer("bob", 0.3)
    try:
        out = subprocess.run(
            [sys.executable, str(PEER), "--to", f"sip:1002@127.0.0.1:{sim.front_door.port}",
             "--tone", "600", "--seconds", "2", "--transport", transport],
            capture_output=True, text=True, timeout=30)
    finally:
        sim.set_auto_answer("bob", None)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["redirected_to"] is not None, "the front door answered with a redirect"
    assert result["connected"]
    assert result["heard_hz"] == pytest.approx(TONES["bob"], rel=0.02)   # caller hears bob
    sim.wait_for("bob", "ended", 3)
    entry = sim.call_log()[-1]
    assert entry["type"] == "external-in" and entry["to"]["id"] == "bob"
    assert entry["from"]["number"] == "tester"
    assert entry["legs"]["bob"]["heard"]["freq_hz"] == pytest.approx(600, rel=0.02)  # bob hears caller


BARESIP_CONFIG = """\
poll_method epoll
sip_listen 127.0.0.1:0
audio_player aubridge,nil
audio_source ausine,600
audio_alert aubridge,nil
ausrc_srate 48000
auplay_srate 48000
ausrc_channels 2
auplay_channels 1
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aubridge.so
module sndfile.so
snd_path {snd}
module_app menu.so
module_app account.so
"""


@pytest.mark.skipif(shutil.which("baresip") is None, reason="Debian's baresip is not installed")
def test_baresip_calls_a_user_through_the_front_door(sim, tmp_path):
    snd = tmp_path / "snd"
    snd.mkdir()
    (tmp_path / "config").write_text(BARESIP_CONFIG.format(snd=snd))
    (tmp_path / "accounts").write_text("<sip:baresip@127.0.0.1>;regint=0\n")
    sim.set_auto_answer("carol", 0.2)
    proc = subprocess.Popen(
        ["baresip", "-f", str(tmp_path), "-e", f"/dial sip:1003@127.0.0.1:{sim.front_door.port}", "-t", "15"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        sim.wait_for("carol", "connected", 8)
        time.sleep(1.5)
        heard = sim.listen("carol", 1.0)
        assert heard["freq_hz"] == pytest.approx(600, rel=0.02), heard   # carol hears baresip's sine
        sim.hangup("carol")
        sim.wait_for("carol", "ended", 3)
        time.sleep(0.5)
    finally:
        sim.set_auto_answer("carol", None)
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    decoded = glob.glob(str(snd / "*-dec.wav"))
    assert decoded, f"baresip wrote no audio dump:\n{output[-2000:]}"
    with wave.open(decoded[0]) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)[:: w.getnchannels()]
        rate = w.getframerate()
    assert analyse(samples, rate).freq_hz == pytest.approx(TONES["carol"], rel=0.02)  # baresip hears carol
    assert sim.call_log()[-1]["from"]["number"] == "baresip"
