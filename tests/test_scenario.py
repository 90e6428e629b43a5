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
    proc = mppsim("run", str(DEMO), "--report", str(report), "--run-dir", str(tmp_path / "run"))  # a named folder is kept
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
    # every recording is closed when the report is written (none left to the recorder's shutdown)
    assert data["recordings"] and all(r["state"] != "recording" for r in data["recordings"]), data["recordings"]
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
    proc = mppsim("run", str(path), "--report", str(report), "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 1
    assert f"logs and captured audio: {tmp_path / 'run'}" in proc.stdout    # a failed run keeps its folder
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


SHORT = """org: {org}
steps:
  - dial: {{from: alice, to: "1002"}}
  - answer: {{who: bob}}
  - expect: {{who: alice, call: connected}}
  - wait: {wait}
  - hangup: {{who: alice}}
"""


def mppsim_in(cwd, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mppsim.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_a_misspelt_party_or_number_exits_2_before_anything_starts(tmp_path):
    (tmp_path / "s.yaml").write_text(
        f"org: {ROOT / 'examples' / 'demo-org.yaml'}\nsteps:\n"
        "  - dial: {from: alcie, to: '1009'}\n"
        "  - press: {who: '+14155550100', key: Record}\n"
        "  - expect: {who: bob, device: webex-app, call: idle}\n")
    proc = mppsim_in(tmp_path, "run", "s.yaml", "--run-dir", "rd", "--report", "r.json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "steps[1].dial.from: 'alcie' is not a user, line or PSTN number" in proc.stderr
    assert "allowed: alice, bob, carol, dave, sales" in proc.stderr
    assert "steps[1].dial.to: '1009' is not a number of the org" in proc.stderr
    assert "steps[2].press.key: 'Record': +14155550100 has no mpp" in proc.stderr
    assert "steps[3].expect.device: 'webex-app' not allowed; allowed: mpp (bob's devices)" in proc.stderr
    assert proc.stdout == ""                       # no step ran
    assert not (tmp_path / "rd").exists()         # no agent, no recorder: nothing started
    assert not (tmp_path / "r.json").exists()


def test_a_missing_file_names_the_path_it_tried(tmp_path):
    proc = mppsim_in(tmp_path, "run", "nope.yaml")
    assert proc.returncode == 2
    assert f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory" in proc.stderr
    proc = mppsim_in(tmp_path, "check-org", "orgs/nope.yaml")
    assert proc.returncode == 2
    assert f"cannot read file {tmp_path / 'orgs' / 'nope.yaml'}: No such file or directory" in proc.stderr


def test_from_another_folder_a_passed_run_leaves_no_folder_and_the_report_lands_where_asked(tmp_path):
    work = tmp_path / "my-tests"
    (work / "scenarios").mkdir(parents=True)
    # the org named relative to the scenario file, which is named relative to where the user stands
    (work / "demo-org.yaml").write_text((ROOT / "examples" / "demo-org.yaml").read_text())
    (work / "scenarios" / "s.yaml").write_text(SHORT.format(org="../demo-org.yaml", wait=0.5))
    proc = mppsim_in(work, "run", "scenarios/s.yaml", "--report", "out/new/report.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((work / "out" / "new" / "report.json").read_text())
    assert report["passed"] and report["run_dir_removed"] is True
    assert not Path(report["run_dir"]).exists()
    assert f"run folder {report['run_dir']} removed (passed; --keep keeps it)" in proc.stdout
    assert f"report: {work / 'out' / 'new' / 'report.json'}" in proc.stdout
    assert report["recordings"] and report["recordings"][0]["state"] == "complete"


def test_sigterm_ends_a_run_as_ctrl_c_does_and_writes_the_report(tmp_path):
    import signal
    import time
    (tmp_path / "s.yaml").write_text(SHORT.format(org=ROOT / "examples" / "demo-org.yaml", wait=30))
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.cli", "run", "s.yaml", "--report", "r.json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        out = ""
        while "ok     3 expect" not in out and time.monotonic() < deadline:
            out += proc.stdout.readline()
        assert "ok     3 expect" in out
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + rest + err
    assert "INTERRUPTED after 3 of 5 steps" in rest
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True and report["run_dir_removed"] is False
    assert [s["status"] for s in report["steps"]] == ["passed"] * 3 + ["skipped"] * 2
    assert report["calls"][0]["state"] == "ended"          # the calls were ended cleanly
    assert Path(report["run_dir"]).is_dir()        # an interrupted run keeps its folder
    import shutil
    shutil.rmtree(report["run_dir"])


def test_names_are_checked_against_the_org_with_the_allowed_values(tmp_path):
    path = write(tmp_path, [
        {"dial": {"from": "alice/nosuch", "to": "*86"}},                        # *86: the mailbox, fine
        {"dial": {"from": "alice/sales", "to": "sip:someone@127.0.0.1:5099"}},  # a URI, fine
        {"set": {"user": "+14155550100", "callRecording": {"enabled": True}}},
        {"expect": {"who": "carol", "softkeys": []}},                          # carol: Webex App only
        {"menu": {"who": "bob", "item": "Start recording"}},                    # bob: MPP only
        {"transfer": {"who": "alice", "to": "1999"}},
    ])
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.errors == [
        "steps[1].dial.from: 'alice/nosuch' is not a user, line or PSTN number of the org demo-org.yaml; "
        "allowed: alice, bob, carol, dave, sales, or a PSTN number (+14155550100, +48221234567)",
        "steps[3].set.user: '+14155550100' is not a user or virtual line of the org demo-org.yaml; "
        "allowed: alice, bob, carol, dave, sales",
        "steps[4].expect.softkeys: carol has no mpp (devices: webex-app)",
        "steps[5].menu.item: 'Start recording': bob has no webex-app (devices: mpp)",
        "steps[6].transfer.to: '1999' is not a number of the org demo-org.yaml; allowed: 1001, 1002, 1003, "
        "1004, 1100, +14155550100, +48221234567, *86 (voicemail) or a sip: URI",
    ]


def test_scripts_mppsim_runs_in_the_folder_you_are_in(tmp_path):
    """`~/mppsim/scripts/mppsim check-org org.yaml` from ~/my-tests reads ~/my-tests/org.yaml."""
    (tmp_path / "org.yaml").write_text((ROOT / "examples" / "demo-org.yaml").read_text())
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "mppsim"), "check-org", "org.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "org.yaml: ok: 2 locations, 4 users" in proc.stdout


def test_an_unreachable_recorder_is_named_with_its_reason_in_the_output_and_the_report(tmp_path):
    import socket
    with socket.socket() as s:            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = f"sip:127.0.0.1:{port};transport=tcp"
    (tmp_path / "s.yaml").write_text(
        f"org: {ROOT / 'examples' / 'demo-org.yaml'}\nsteps:\n"
        f"  - set: {{org: true, recording: {{recorders: {{Dubber: '{target}'}}}}}}\n"
        "  - dial: {from: bob, to: '1001'}\n  - answer: {who: alice}\n"
        "  - expect: {who: alice, call: connected}\n  - hangup: {who: bob}\n")
    proc = mppsim_in(tmp_path, "run", "s.yaml", "--report", "r.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 recording(s) could not be made:" in proc.stdout
    assert f"alice: recorder {target}: " in proc.stdout and "Connection refused" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    (failure,) = report["recording_failures"]
    assert failure["who"] == "alice" and failure["target"] == target and "Connection refused" in failure["reason"]
    assert report["run_dir_removed"] is False       # kept: its logs say more
    import shutil
    shutil.rmtree(report["run_dir"])


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
