"""pytest-qt: click a call through the first main window (real agents behind it)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton

from app.simulator import Simulator
from conftest import demo_org
from ui.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path):
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path).start()
    sim.play("alice", tone=1000)
    sim.play("bob", tone=1500)
    w = MainWindow(sim)
    qtbot.addWidget(w)
    w.show()
    yield w
    sim.stop()


def find(w, cls, name):
    widget = w.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name}"
    return widget


def test_click_a_call_through_the_main_window(qtbot, window):
    sim = window.sim
    # alice types bob's extension on her keypad and presses Call
    for digit in "1002":
        qtbot.mouseClick(find(window, QPushButton, f"key_alice_{digit}"), Qt.LeftButton)
    assert find(window, QLineEdit, "entry_alice").text() == "1002"
    qtbot.mouseClick(find(window, QPushButton, "call_alice"), Qt.LeftButton)

    bob_display = find(window, QLabel, "display_bob")
    qtbot.waitUntil(lambda: "Incoming call" in bob_display.text(), timeout=3000)
    assert "Alice Smith (1001)" in bob_display.text()
    answer = find(window, QPushButton, "answer_bob")
    assert answer.isEnabled()
    qtbot.mouseClick(answer, Qt.LeftButton)

    alice_display = find(window, QLabel, "display_alice")
    qtbot.waitUntil(lambda: "Bob Jones (1002)" in alice_display.text() and "00:0" in alice_display.text(),
                    timeout=3000)
    assert find(window, QPushButton, "hold_alice").isEnabled()
    assert not find(window, QPushButton, "answer_bob").isEnabled()
    qtbot.wait(800)
    heard = sim.listen("bob", 0.5)   # the call the GUI placed carries real audio
    assert heard["freq_hz"] == pytest.approx(1000, rel=0.02)

    qtbot.mouseClick(find(window, QPushButton, "hold_alice"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "On hold" in alice_display.text(), timeout=3000)
    qtbot.waitUntil(lambda: "Held by other party" in bob_display.text(), timeout=3000)
    qtbot.mouseClick(find(window, QPushButton, "resume_alice"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "hold" not in alice_display.text().lower(), timeout=3000)

    qtbot.mouseClick(find(window, QPushButton, "end_alice"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Call ended" in bob_display.text(), timeout=3000)
    events = find(window, type(window.events), "event_pane").toPlainText()
    assert "bob/bob: call bob:1 ringing (in, Alice Smith)" in events
    assert "bob/bob: call bob:1 ended (in, Alice Smith): hangup" in events


def test_enter_dials_and_errors_show_next_to_the_face(qtbot, window):
    entry = find(window, QLineEdit, "entry_carol")
    qtbot.keyClicks(entry, "9999")
    qtbot.keyClick(entry, Qt.Key_Return)
    status = find(window, QLabel, "status_carol")
    assert "to: '9999' is not a known extension or number" in status.text()
    qtbot.keyClicks(entry, "1004")
    qtbot.keyClick(entry, Qt.Key_Return)
    qtbot.waitUntil(lambda: "Incoming call" in find(window, QLabel, "display_dave").text(), timeout=3000)
    qtbot.mouseClick(find(window, QPushButton, "decline_dave"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Call ended (declined)" in find(window, QLabel, "display_carol").text(),
                    timeout=3000)


def test_a_killed_agent_shows_down_and_restarts_from_its_face(qtbot, window):
    window.sim.kill_agent("dave")
    display = find(window, QLabel, "display_dave")
    qtbot.waitUntil(lambda: "agent down" in display.text(), timeout=3000)
    restart = find(window, QPushButton, "restart_dave")
    assert restart.isVisible()
    qtbot.mouseClick(restart, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Idle" in display.text(), timeout=5000)
    assert not restart.isVisible()


def test_the_gui_process_never_imports_pjsua2():
    import subprocess
    import sys
    code = ("import ui.app, ui.main_window, ui.device_face, app.simulator, app.scenario, app.cli, sys; "
            "sys.exit(1 if 'pjsua2' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_r_ux_3_recording_softkeys_on_the_face_follow_the_policy(qtbot, window):
    """R-UX-1/R-UX-3 on the first window: alice is Always with Pause/Resume in the demo org."""
    sim = window.sim
    sim.dial("bob", "1001")
    answer = find(window, QPushButton, "answer_alice")
    qtbot.waitUntil(answer.isEnabled, timeout=3000)     # the face lights Answer when it rings
    qtbot.mouseClick(answer, Qt.LeftButton)
    pause = find(window, QPushButton, "softkey_alice_PauseRec")
    resume = find(window, QPushButton, "softkey_alice_ResumeRec")
    display = find(window, QLabel, "display_alice")
    qtbot.waitUntil(lambda: pause.isVisible() and "● REC" in display.text(), timeout=3000)
    assert not resume.isVisible() and not find(window, QPushButton, "softkey_alice_Record").isVisible()
    qtbot.mouseClick(pause, Qt.LeftButton)
    qtbot.waitUntil(lambda: resume.isVisible() and not pause.isVisible(), timeout=3000)
    assert "REC paused" in display.text() and "Recording paused" in display.text()
    assert find(window, QPushButton, "softkey_bob_Record").isVisible()   # bob: On Demand (user start)
