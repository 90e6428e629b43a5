"""Recording steps in scenarios: press, menu, set, and expect indicator/softkeys/menu."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mppsim.app.scenario import ScenarioError, load_scenario
from mppsim.app.simulator import SimulatorError

ROOT = Path(__file__).resolve().parents[1]


def test_r_ux_3_r_ux_4_recording_modes_example_passes_and_reports_recordings(tmp_path):
    """R-UX-3 softkeys and R-UX-4 menu items as the demo org's modes allow."""
    report = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "mppsim.cli", "run", str(ROOT / "examples" / "recording-modes.yaml"),
                           "--report", str(report)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = json.loads(report.read_text())["calls"]
    first = calls[0]["legs"]
    assert first["alice"]["recording"]["recordings"] == 1
    assert [r["op"] for r in first["alice"]["recording"]["recorder"]][:2] == ["start", "pause"]
    assert first["bob"]["recording"]["state"] == "stopped"
    # bob's start/stop announcements (internal calls on) were played to both parties
    kinds = [a["kind"] for a in first["bob"]["recording"]["announcements"]]
    assert kinds == ["start", "stop"]


def test_a_press_the_phone_does_not_offer_fails_the_step(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"org": str(ROOT / "examples" / "demo-org.yaml"), "steps": [
        {"dial": {"from": "bob", "to": "1004"}},
        {"answer": {"who": "dave"}},
        {"expect": {"who": "dave", "indicator": "recording"}},
        {"press": {"who": "dave", "key": "PauseRec"}},
    ]}))
    proc = subprocess.run([sys.executable, "-m", "mppsim.cli", "run", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "FAILED at step 4 (press): dave: PauseRec is not offered now (softkeys: [])" in proc.stdout
    assert "not offered in mode 'Always'" in proc.stdout


def test_recording_steps_are_validated(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"org": str(ROOT / "examples" / "demo-org.yaml"), "steps": [
        {"press": {"who": "bob", "key": "Pause"}},
        {"expect": {"who": "bob", "indicator": "on", "softkeys": ["Rec"]}},
        {"menu": {"who": "carol", "item": "Record"}},
        {"set": {"user": "carol"}},
    ]}))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "steps[1].press.key: 'Pause' not allowed; allowed: Record, PauseRec, ResumeRec, StopRec" in text
    assert "steps[2].expect.indicator: 'on' not allowed; allowed: recording, paused, none" in text
    assert "steps[2].expect.softkeys: 'Rec' not allowed" in text
    assert "steps[3].menu.item: 'Record' not allowed; allowed: Start recording, Pause recording" in text
    assert "steps[4].set.callRecording: missing" in text


def test_r_usr_6_a_refused_setting_names_the_field_and_changes_nothing(sim):
    before = sim.call_recording("alice")
    with pytest.raises(SimulatorError, match=r"repeat\.interval.*allowed: 10-90"):
        sim.set_call_recording("alice", {"repeat": {"enabled": True, "interval": 5}}, view="control_hub")
    assert sim.call_recording("alice") == before


def test_r_vl_3_webex_app_virtual_line_refuses_on_demand(tmp_path):
    from mppsim.app.simulator import Simulator
    from tests.helpers import demo_org
    org = demo_org()
    data = org.to_dict()
    data["virtual_lines"][0]["assigned_to"]["device"] = "webex-app"
    from mppsim.app.org import parse_org
    sim = Simulator(parse_org(data), run_dir=tmp_path)   # not started: settings only
    with pytest.raises(SimulatorError, match="R-VL-3|Always"):
        sim.set_call_recording("sales", {"enabled": True, "record": "On Demand with User Initiated Start"})
