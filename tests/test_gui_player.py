"""Issue 14: the scenario player in the main window (pytest-qt, real agents behind the faces).

The player runs src/mppsim/app/scenario.py's Runner one step at a time: the step list shows each step's
state, the faces follow the agents, a failed step stops the run with its device highlighted and
the report saved; a `say` step shows a caption over the window.

Screenshots go to $MPPSIM_SCREENSHOTS (docs/screenshots when refreshing them), else tmp_path.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from mppsim.app.simulator import Simulator
from tests.helpers import ROOT
from mppsim.ui.main_window import MainWindow
from mppsim.ui.scenario_player import SPEEDS

pytest.importorskip("pytestqt")

DEMO_ORG = ROOT / "examples" / "demo-org.yaml"


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MPPSIM_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def gui(qtbot, tmp_path):
    """The demo org (as examples/*.yaml name it) in a 1920x1080 main window."""
    sim = Simulator(DEMO_ORG, run_dir=tmp_path / "run").start()
    w = MainWindow(sim, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    w.show()
    yield w
    w.player.shutdown()
    sim.stop()


def scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "case.yaml"
    path.write_text(f"name: case\norg: {DEMO_ORG}\nsteps:\n{body}")
    return path


def test_plays_demo_call_in_the_gui_step_pause_run_and_every_step_passes(qtbot, gui, tmp_path):
    player = gui.player
    assert player.load(ROOT / "examples" / "demo-call.yaml")
    n = len(player.scenario.steps)
    assert player.step_states() == ["pending"] * n and player.steps.count() == n
    player.speed.setCurrentIndex(SPEEDS.index(4.0))
    # Step: one step at a time, up to alice holding the call with bob (step 15)
    hold = next(s.index for s in player.scenario.steps if s.name == "hold")
    for i in range(hold):
        qtbot.mouseClick(player.step_btn, Qt.LeftButton)
        qtbot.waitUntil(lambda: player.step_states()[i] == "passed", timeout=8000)
    assert player.step_states()[hold:] == ["pending"] * (n - hold)
    # the faces move as the agents do: alice's phone shows the call on hold, bob's the call
    phone = gui.users["alice"].phone
    qtbot.waitUntil(lambda: "On hold" in phone.screen_text(), timeout=3000)
    assert "Alice" in gui.users["bob"].phone.screen_text()
    gui.grab().save(str(shots(tmp_path) / "player-mid-run.png"))
    # Run, Pause: it stops after the current step and stays
    qtbot.mouseClick(player.run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: player.step_states().count("passed") >= hold + 2, timeout=8000)
    qtbot.mouseClick(player.pause_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: "running" not in player.step_states(), timeout=8000)
    paused_at = player.step_states().count("passed")
    qtbot.wait(600)
    assert player.step_states().count("passed") == paused_at and player.running
    # Run to the end: every step passes, the report is saved
    qtbot.mouseClick(player.run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: player.result is not None, timeout=60000)
    assert player.step_states() == ["passed"] * n, player.step_errors()
    report = json.loads(player.report_path.read_text())
    assert report["passed"] and len(report["steps"]) == n
    assert "All" in player.status.text() and str(player.report_path) in player.status.text()
    assert not player.reason.isVisible()


def test_a_failing_expectation_stops_there_with_the_device_highlighted_and_the_report_saved(qtbot, gui, tmp_path):
    player = gui.player
    path = scenario(tmp_path, """\
  - play: {who: alice, tone: 1000}
  - dial: {from: alice, to: "1002"}
  - answer: {who: bob}
  - expect: {who: bob, hears: 440, within: 1s}
  - hangup: {who: alice}
""")
    assert player.load(path)
    qtbot.mouseClick(player.run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: player.result is not None, timeout=20000)
    assert player.step_states() == ["passed", "passed", "passed", "failed", "skipped"]
    error = player.step_errors()[3]
    assert "bob" in error and "expected 440 Hz" in error
    assert player.reason.isVisible() and "Step 4 (expect) failed" in player.reason.text()
    assert error in player.reason.text() and error in player.steps.item(3).text()
    # the failed step's device is highlighted (and only that one)
    assert gui.users["bob"].property("highlighted") is True
    assert not any(g.property("highlighted") for u, g in gui.users.items() if u != "bob")
    report = json.loads(player.report_path.read_text())
    assert not report["passed"] and report["steps"][3]["status"] == "failed"
    assert "FAILED at step 4" in player.status.text()
    # the run hung up what was up
    assert gui.sim.call_state("bob") == "ended"
    # a new run clears the mark
    qtbot.mouseClick(player.run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: not gui.users["bob"].property("highlighted"), timeout=3000)
    qtbot.waitUntil(lambda: player.result is not None and not player.running, timeout=20000)


def test_say_shows_a_caption_over_the_window_and_stop_ends_the_run(qtbot, gui, tmp_path):
    player = gui.player
    path = scenario(tmp_path, """\
  - say: "Alice calls Bob: watch the recording icon"
  - dial: {from: alice, to: "1002"}
  - answer: {who: bob}
  - wait: 30s
  - hangup: {who: alice}
""")
    assert player.load(path)
    qtbot.mouseClick(player.run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: player.step_states()[3] == "running", timeout=8000)
    assert gui.caption.isVisible() and gui.caption.text() == "Alice calls Bob: watch the recording icon"
    # the banner lies over the window, inside it
    assert gui.centralWidget().rect().contains(gui.caption.geometry())
    qtbot.waitUntil(lambda: gui.users["alice"].phone.recording_icon() == "recording", timeout=3000)
    gui.grab().save(str(shots(tmp_path) / "caption-banner.png"))
    # Stop ends the 30 s wait at once, hangs up and keeps the report
    qtbot.mouseClick(player.stop_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: player.result is not None, timeout=8000)
    assert player.step_states() == ["passed", "passed", "passed", "skipped", "skipped"]
    assert "Stopped after 3 of 5" in player.status.text()
    assert not gui.caption.isVisible()
    assert gui.sim.call_state("alice") == "ended"


def test_a_scenario_naming_lines_the_org_lacks_is_refused_with_the_reason(qtbot, gui, tmp_path):
    path = scenario(tmp_path, "  - dial: {from: zoe, to: \"1002\"}\n")
    assert not gui.player.load(path)
    assert "zoe" in gui.player.status.text() and gui.player.scenario is None
    # a scenario file dropped on the window is loaded
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ROOT / "examples" / "demo-tour.yaml"))])
    gui.dropEvent(QDropEvent(QPointF(400, 300), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert gui.player.scenario is not None and gui.player.scenario.name == "demo-tour"


def test_mppsim_gui_takes_a_scenario_and_runs_its_org():
    from mppsim import cli
    args = cli.build_parser().parse_args(["gui", "--scenario", str(ROOT / "examples" / "demo-tour.yaml")])
    assert Path(cli.gui_org(args)) == DEMO_ORG.resolve()
    args = cli.build_parser().parse_args(["gui", "--org", "x.yaml", "--scenario", "y.yaml"])
    assert cli.gui_org(args) == "x.yaml"


def test_mppsim_run_passes_the_narrated_demo_tour(qtbot, tmp_path):
    """examples/demo-tour.yaml (every recording mode, R-USR-2, with `say` captions) passes
    headless: `say` is accepted and does nothing there. Its last caption says what the portal
    shows afterwards (R-PRV-2: with Dubber Go only the user sees their own recordings)."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "mppsim.cli", "run", str(ROOT / "examples" / "demo-tour.yaml"),
                          "--report", str(tmp_path / "r.json"), "--run-dir", str(tmp_path / "run"),
                          "--speed", "8"],           # the presenter's pauses, 8x shorter
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    says = [s for s in report["steps"] if s["step"] == "say"]
    assert len(says) >= 8 and all(s["status"] == "passed" for s in says)
    modes = {"Never", "Always", "Always with Pause/Resume", "On Demand with User Initiated Start", "On Demand"}
    text = (ROOT / "examples" / "demo-tour.yaml").read_text()
    assert all(m in text for m in modes)
    assert len(report["recordings"]) == 5        # dave, alice, bob 3x (the last via the queue); carol none
    # the last caption against the portal over the same store, viewer by viewer
    from mppsim.ui.portal import RecorderPortal
    last = [s["args"] for s in report["steps"] if s["step"] == "say"][-1]
    sim = Simulator(DEMO_ORG, run_dir=tmp_path / "run")     # not started: the portal reads the run's store
    portal = RecorderPortal(sim)
    qtbot.addWidget(portal)
    portal.refresh()
    assert "0 recording(s) visible" in portal.access_label.text() and "the Administrator sees none" in last
    seen = {}
    for who in ("alice", "bob", "carol", "dave"):
        portal.set_viewer(who)
        seen[who] = len(portal.rows)
    assert seen == {"alice": 1, "bob": 3, "carol": 0, "dave": 1}
    named = {who for who in seen if sim.party(who).name.split()[0] in last}
    assert named == {who for who, n in seen.items() if n} and "as Viewer" in last
