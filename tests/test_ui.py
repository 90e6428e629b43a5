"""pytest-qt: the main window with real agents behind it — MPP phones, Webex Apps, PSTN faces."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton

from mppsim.app.simulator import Simulator
from tests.helpers import demo_org
from mppsim.ui.main_window import MainWindow


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


def softkey(w, user, label):
    """The MPP softkey button currently labelled `label` (None when not shown)."""
    for i in range(4):
        b = w.findChild(QPushButton, f"mpp_{user}_softkey_{i}")
        if b is not None and b.text() == label:
            return b
    return None


def test_click_a_call_through_the_main_window(qtbot, window):
    sim = window.sim
    alice = window.users["alice"].faces[0]
    bob = window.users["bob"].faces[0]
    # alice types bob's extension on her desk phone's keypad and presses Call
    for digit in "1002":
        qtbot.mouseClick(find(window, QPushButton, f"mpp_alice_key_{digit}"), Qt.LeftButton)
    qtbot.waitUntil(lambda: softkey(window, "alice", "Call") is not None, timeout=2000)
    qtbot.mouseClick(softkey(window, "alice", "Call"), Qt.LeftButton)

    qtbot.waitUntil(lambda: softkey(window, "bob", "Answer") is not None, timeout=3000)
    assert "Alice Smith" in bob.screen_text()
    qtbot.mouseClick(softkey(window, "bob", "Answer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Bob Jones" in alice.screen_text() and "Connected" in alice.screen_text(),
                    timeout=3000)
    # the same call shows on alice's Webex App
    webex = window.users["alice"].faces[1]
    qtbot.waitUntil(lambda: webex.indicator_state() == "recording", timeout=3000)
    qtbot.wait(800)
    assert sim.listen("bob", 0.5)["freq_hz"] == pytest.approx(1000, rel=0.02)   # real audio

    qtbot.mouseClick(find(window, QPushButton, "mpp_alice_hold"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "On hold" in alice.screen_text(), timeout=3000)
    qtbot.mouseClick(softkey(window, "alice", "Resume"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "On hold" not in alice.screen_text(), timeout=3000)

    qtbot.keyClick(alice, Qt.Key_Escape)          # Esc ends the call
    qtbot.waitUntil(lambda: "bob/bob: call bob:1 ended (in, Alice Smith): hangup" in window.events.toPlainText(),
                    timeout=3000)
    assert "bob/bob: call bob:1 ringing (in, Alice Smith)" in window.events.toPlainText()


def test_pstn_face_errors_and_a_declined_call(qtbot, window):
    entry = find(window, QLineEdit, "entry__14155550100")
    qtbot.keyClicks(entry, "9999")
    qtbot.keyClick(entry, Qt.Key_Return)
    status = find(window, QLabel, "status__14155550100")
    assert "to: '9999' is not a known extension or number" in status.text()
    qtbot.keyClicks(entry, "1004")
    qtbot.keyClick(entry, Qt.Key_Return)
    qtbot.waitUntil(lambda: softkey(window, "dave", "Decline") is not None, timeout=3000)
    qtbot.mouseClick(softkey(window, "dave", "Decline"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Call ended (declined)" in find(window, QLabel, "display__14155550100").text(),
                    timeout=3000)


def test_a_killed_agent_comes_back_by_itself_and_the_window_says_so(qtbot, window):
    window.sim.kill_agent("dave")
    status = find(window, QLabel, "status_dave")
    qtbot.waitUntil(lambda: "restarted after it died" in status.text(), timeout=8000)
    assert not find(window, QPushButton, "restart_dave").isVisible()
    from mppsim.app import device_view
    assert device_view.line_view(window.sim, "dave").state == "idle"     # what the faces draw


def test_a_killed_agent_shows_down_and_restarts_from_the_window(qtbot, window):
    window.sim.orch.supervise = False      # as with supervision off: restarted by hand
    window.sim.kill_agent("dave")
    status = find(window, QLabel, "status_dave")
    qtbot.waitUntil(lambda: "agent down" in status.text(), timeout=3000)
    restart = find(window, QPushButton, "restart_dave")
    assert restart.isVisible()
    qtbot.mouseClick(restart, Qt.LeftButton)
    qtbot.waitUntil(lambda: "agent up" in status.text(), timeout=5000)
    assert not restart.isVisible()


def test_r_ux_3_recording_softkeys_follow_the_policy_on_phone_and_app(qtbot, window):
    """R-UX-1/R-UX-3/R-UX-4 in the main window: alice is Always with Pause/Resume."""
    sim = window.sim
    alice, webex = window.users["alice"].faces
    sim.dial("bob", "1001")
    qtbot.waitUntil(lambda: softkey(window, "alice", "Answer") is not None, timeout=3000)
    qtbot.mouseClick(softkey(window, "alice", "Answer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: softkey(window, "alice", "PauseRec") is not None
                    and alice.recording_icon() == "recording", timeout=3000)
    assert webex.menu_labels() == ["Pause recording"]
    qtbot.mouseClick(softkey(window, "alice", "PauseRec"), Qt.LeftButton)
    qtbot.waitUntil(lambda: softkey(window, "alice", "ResumeRec") is not None
                    and webex.indicator_state() == "paused", timeout=3000)
    assert alice.recording_icon() == "paused"
    assert webex.menu_labels() == ["Resume recording"]
    assert softkey(window, "bob", "Record") is not None       # bob: On Demand (user start)


def test_real_audio_without_a_sound_card_says_so_once(qtbot, window, monkeypatch):
    """What the window says is the subject, not the query: PortAudio lists devices once per
    process and cannot list them again after test_sound_device abandoned a stream on its unplugged
    card (ui/real_audio.close_or_abandon), so the machine's answer depends on the tests before.
    The query's answer on a machine without a card is given here as PortAudio gives it."""
    from mppsim.ui import real_audio
    monkeypatch.setattr(real_audio, "audio_devices",
                        lambda: ([], "no audio device with a microphone and a speaker"))
    window.audio_choice.setCurrentIndex(1)
    window.audio_choice.setCurrentIndex(2)
    assert window.events.toPlainText().count("Running silent") == 1


def test_the_gui_process_never_imports_pjsua2():
    import subprocess
    import sys
    code = ("import mppsim.ui.app, mppsim.ui.main_window, mppsim.ui.device_face, mppsim.app.simulator, mppsim.app.scenario, mppsim.cli, sys; "
            "sys.exit(1 if 'pjsua2' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_r_usr_2_control_hub_to_phone_to_portal(qtbot, window):
    """The demo's cause and effect: carol goes from Never to On Demand in the Control Hub view,
    takes a call, presses Start recording in her Webex App, hangs up; the portal lists the
    recording, plays the right file and shows two waveform lanes (R-USR-2, R-UX-4, R-PRV-2)."""
    from PySide6.QtWidgets import QComboBox
    sim = window.sim
    hub = window.control_hub
    window.tabs.setCurrentWidget(hub)
    hub.tabs.setCurrentWidget(hub.users_page)
    hub.users_page.select("carol")
    record = find(window, QComboBox, "ch_user_record")
    record.setCurrentText("On Demand with User Initiated Start")
    qtbot.mouseClick(find(window, QPushButton, "ch_save"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.call_recording("carol")["record"] == "On Demand with User Initiated Start",
                    timeout=3000)

    window.tabs.setCurrentIndex(0)
    webex = window.users["carol"].faces[0]
    sim.play("+14155550100", tone=900)
    sim.dial("+14155550100", "1003")
    qtbot.waitUntil(lambda: sim.call_state("carol") == "ringing", timeout=3000)
    sim.answer("carol")
    qtbot.waitUntil(lambda: webex.menu_labels() == ["Start recording"], timeout=3000)
    from PySide6.QtGui import QAction
    qtbot.waitUntil(lambda: window.findChild(QAction, "webex_carol_menu_start_recording") is not None,
                    timeout=3000)
    window.findChild(QAction, "webex_carol_menu_start_recording").trigger()   # More > Start recording
    qtbot.waitUntil(lambda: webex.indicator_state() == "recording", timeout=3000)
    qtbot.wait(1500)
    sim.hangup("+14155550100")
    qtbot.waitUntil(lambda: any(r["state"] == "complete" for r in sim.recordings("carol")), timeout=5000)

    portal = window.portal
    window.tabs.setCurrentWidget(portal)
    portal.set_viewer("carol")                # Dubber Go: the user sees her own recording
    portal.refresh()
    (rec,) = [r for r in sim.recordings("carol")]
    portal.select(rec["id"])
    qtbot.mouseClick(find(window, QPushButton, "portal_play"), Qt.LeftButton)
    qtbot.waitUntil(lambda: portal.player_position() > 0.2, timeout=3000)
    assert portal.player_file() == rec["audio_path"]
    from mppsim.ui.portal import Waveform
    assert find(window, Waveform, "portal_waveform").lanes == 2
