"""Scenario files: validation up front, `mppsim run` exit codes, the report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mppsim.app.scenario import ScenarioError, load_scenario, parse_duration

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo-call.yaml"


def write(tmp_path, steps, org="../examples/demo-org.yaml"):
    # The scenario lives beside the repo's examples so relative paths resolve.
    path = tmp_path / "s.yaml"
    org_path = (ROOT / "examples" / "demo-org.yaml") if org else None
    path.write_text(yaml.safe_dump({"org": str(org_path) if org_path else None, "steps": steps}))
    return path


def mppsim(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mppsim.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("text,seconds", [(2, 2.0), ("2s", 2.0), ("500ms", 0.5), ("1.5 s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_every_bad_step_is_reported_with_its_index_and_field(tmp_path):
    path = write(tmp_path, [
        {"dial": {"from": "alice"}},
        {"expect": {"who": "bob", "call": "rining"}},
        {"play": {"who": "bob", "tone": 20000}},
        {"frobnicate": {}},
        {"wait": "soon"},
        {"dtmf": {"who": "alice", "digits": "12x"}},
    ])
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "steps[1].dial.to: missing; required" in text
    assert "steps[2].expect.call: 'rining' not allowed; allowed: idle, dialing, ringing, connected, held, ended" in text
    assert "steps[3].play.tone: 20000 not allowed; allowed: 50-3800 (Hz)" in text
    assert "steps[4]: unknown step 'frobnicate'" in text
    assert "steps[5].wait: 'soon' is not a duration" in text
    assert "steps[6].dtmf.digits: '12x' not allowed" in text


def test_a_scenario_without_org_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("steps: [{wait: 1}]\n")
    with pytest.raises(ScenarioError, match="org: missing"):
        load_scenario(path)


def test_demo_scenario_passes_and_the_report_describes_every_call(tmp_path):
    report = tmp_path / "r.json"
    proc = mppsim("run", str(DEMO), "--report", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all 40 steps passed" in proc.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is True
    assert [s["status"] for s in data["steps"]] == ["passed"] * 40
    types = [c["type"] for c in data["calls"]]
    assert types == ["internal", "internal", "pstn-in", "internal", "pstn-in", "pstn-out"]
    first = data["calls"][0]
    assert first["from"]["id"] == "alice" and first["to"]["id"] == "bob" and first["answered"]
    assert first["talk_time"] > 0.5
    assert first["legs"]["alice"]["heard"]["freq_hz"] == pytest.approx(1500, rel=0.02)
    assert first["legs"]["bob"]["heard"]["freq_hz"] == pytest.approx(1000, rel=0.02)
    assert first["legs"]["bob"]["dtmf_received"] == "123#"
    assert Path(first["legs"]["bob"]["capture_file"]).is_file()
    # the attended transfer: the customer ends up talking to dave
    handed_over = data["calls"][4]
    assert handed_over["from"]["id"] == "+14155550100" and handed_over["to"]["id"] == "dave"
    assert handed_over["legs"]["dave"]["heard"]["freq_hz"] == pytest.approx(900, rel=0.02)
    # issue 21: packets per stream in the report and the run's output; none marked no audio
    assert any(len(r["streams"]) == 2 and min(st["received"] for st in r["streams"]) > 50
               for r in data["recordings"]), data["recordings"]
    assert "RTP packets left" in proc.stdout and "NO AUDIO" not in proc.stdout


def test_a_failing_step_is_named_and_the_exit_code_is_1(tmp_path):
    path = write(tmp_path, [
        {"play": {"who": "alice", "tone": 1000}},
        {"dial": {"from": "alice", "to": "1002"}},
        {"expect": {"who": "bob", "call": "ringing"}},
        {"answer": {"who": "bob"}},
        {"expect": {"who": "bob", "hears": 440, "within": "1s"}},
        {"hangup": {"who": "alice"}},
    ])
    report = tmp_path / "r.json"
    proc = mppsim("run", str(path), "--report", str(report))
    assert proc.returncode == 1
    assert "FAILED at step 5 (expect): bob: hears 1000 Hz, expected 440 Hz" in proc.stdout
    data = json.loads(report.read_text())
    assert [s["status"] for s in data["steps"]] == ["passed"] * 4 + ["failed", "skipped"]


def test_an_invalid_scenario_exits_2_and_starts_nothing(tmp_path):
    path = write(tmp_path, [{"dial": {"from": "alice"}}])
    proc = mppsim("run", str(path))
    assert proc.returncode == 2
    assert "steps[1].dial.to: missing" in proc.stderr


def test_headless_app_runs_the_demo_and_says_what_it_did():
    proc = mppsim(timeout=180)  # no DISPLAY in the test environment: the demo runs headless
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no display, so running the demo headless" in proc.stdout
    assert "pstn-out  Bob Jones (1002) -> Piotr Nowak (+48221234567): answered" in proc.stdout


def test_issue_21_recorded_audio_expect_and_the_run_s_no_audio_warning(capsys):
    """Pure logic over the store's rows: `expect: recorded_audio` and `mppsim run`'s output."""
    from mppsim.app.scenario import RunResult, Runner, Scenario
    from mppsim.cli import print_recordings
    silent = {"id": "r1", "owner": "sip:1001@10.0.0.5", "state": "complete", "talk_seconds": 4.1,
              "participants": [], "paused_segments": [], "audio_path": "/x.wav", "suspect": 1,
              "suspect_reason": "no audio: no RTP packet arrived on any of the 2 streams in 4.1 s",
              "stream_stats": [{"channel": "left", "received": 0}, {"channel": "right", "received": 0}]}

    class Sim:
        def recordings(self, who=None):
            return [silent]

    runner = Runner.__new__(Runner)
    runner.sim = Sim()
    assert runner.check("alice", {"recorded_audio": False}) is None
    problem = runner.check("alice", {"recorded_audio": True})
    assert "no audio" in problem and "left 0, right 0" in problem
    from mppsim.app.scenario import stream_counts
    result = RunResult(Scenario(Path("s.yaml"), Path("o.yaml"), []), [],
                       recordings=[{**silent, "streams": stream_counts(silent)}])
    print_recordings(result)
    out = capsys.readouterr().out
    assert "RTP packets left 0, right 0" in out and "!! NO AUDIO: no audio: no RTP packet" in out
