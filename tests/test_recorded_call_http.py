"""A recorded call driven only over plain HTTP (`requests`) through /mppsim/v1, then its audio
downloaded and its channels checked from the samples (issue 12, "Show it works"). Uses mppsim's
own pytest plugin (fixtures mppsim / mppsim_api, marker mppsim_org) — and tests that plugin,
including the run folder kept and named when a test fails (pytester)."""
from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]


def dominant_hz(x: np.ndarray, rate: int) -> float:
    x = x.astype(float) - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


@pytest.mark.mppsim_org("../examples/demo-org.yaml")
def test_recorded_call_over_http_r_usr_2_r_rec_1(mppsim_api):
    """alice (Always with Pause/Resume) calls bob; the call is recorded (R-USR-2); the WAV is stereo
    with alice's send stream on the left and bob's on the right (R-REC-1)."""
    http = requests.Session()
    http.headers.update(mppsim_api.headers)
    api = mppsim_api.control

    def post(path, **body):
        r = http.post(f"{api}{path}", json=body, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()

    post("/devices/alice/play", tone=1000)
    post("/devices/bob/play", tone=1500)
    post("/devices/alice/dial", to="1002")
    post("/devices/bob/wait", state="ringing", timeout=5)
    post("/devices/bob/answer")
    post("/devices/alice/wait", state="connected", timeout=5)
    time.sleep(2.0)                                   # two seconds of conversation
    post("/devices/alice/hangup")
    post("/devices/bob/wait", state="ended", timeout=5)

    t0 = time.monotonic()        # the API waits (at most 10 s) for the recording to be complete
    recs = http.get(f"{api}/recordings", params={"device": "alice", "state": "complete", "min_count": 1,
                                                 "timeout": 10}, timeout=20).json()
    assert len(recs["recordings"]) == 1, recs
    assert time.monotonic() - t0 < 10
    rec = recs["recordings"][0]
    assert [p["channel"] for p in rec["participants"]] == ["left", "right"]
    assert rec["participants"][0]["name"] == "Alice Smith" and rec["participants"][1]["name"] == "Bob Jones"
    assert rec["talk_seconds"] >= 1.5

    audio = http.get(rec["audio_url"], timeout=10)
    assert audio.status_code == 200 and audio.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    assert len(samples) / rate >= 1.5
    middle = samples[len(samples) // 4: 3 * len(samples) // 4]     # clear of the start/stop tones
    left, right = middle[:, 0], middle[:, 1]
    assert dominant_hz(left, rate) == pytest.approx(1000, rel=0.02)
    assert dominant_hz(right, rate) == pytest.approx(1500, rel=0.02)
    assert 20 * np.log10(np.sqrt(np.mean(left.astype(float) ** 2)) / 32768) > -30   # not near-silent

    meta = http.get(rec["metadata_urls"][0], timeout=10)
    assert meta.status_code == 200 and b"<recording" in meta.content


PLUGIN_TESTS = f"""
import pytest
import requests

@pytest.mark.mppsim_org({str(ROOT / "examples" / "demo-org.yaml")!r})
def test_passes(mppsim):
    assert mppsim.started and mppsim.party("alice").number == "1001"
    print("RUN_DIR_PASS", mppsim.run_dir)

def test_fails(mppsim, mppsim_api):          # no marker: the org of --mppsim-org
    print("RUN_DIR_FAIL", mppsim.run_dir)
    r = requests.get(mppsim_api.control + "/devices/carol", headers=mppsim_api.headers, timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "Carol Kowalska"
    assert mppsim.line_state("bob") == "busy"
"""


def test_plugin_keeps_and_names_the_run_folder_of_a_failed_test(pytester):
    """The mppsim fixture starts the marker's (or --mppsim-org's) org, stops it after each test,
    deletes a passing test's run folder and keeps a failing one's, naming it in the report."""
    pytester.makepyfile(test_uses_plugin=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-rA",
                                           "--mppsim-org", str(ROOT / "examples" / "demo-org.yaml"))
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    kept = next(line.split()[-1] for line in out.splitlines() if line.startswith("mppsim run folder kept: "))
    fail_dir = next(line.split()[-1] for line in out.splitlines() if "RUN_DIR_FAIL" in line)
    pass_dir = next(line.split()[-1] for line in out.splitlines() if "RUN_DIR_PASS" in line)
    assert kept == fail_dir
    assert Path(kept).is_dir() and (Path(kept) / "logs").is_dir()      # agent logs kept for the post-mortem
    assert not Path(pass_dir).exists()
    assert "- mppsim -" in out                                          # the report's own section


def test_plugin_without_org_says_how_to_give_one(pytester):
    pytester.makepyfile("def test_x(mppsim):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*--mppsim-org PATH*mppsim_org(path)*"])
    assert "mppsim run folder kept" not in result.stdout.str()     # nothing was started
    assert result.ret != 0
