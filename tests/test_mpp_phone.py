"""pytest-qt: the MPP desk phone face (src/mppsim/ui/mpp_phone.py) driven in every recording mode, with real
agents behind it. Demo org modes: alice Always with Pause/Resume (8865, plus virtual line sales
1100 which is Always), bob On Demand with User Initiated Start (8851), carol Never (Webex App
only), dave Always (6871: monochrome skin)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from mppsim.app.simulator import Simulator
from tests.helpers import demo_org
from mppsim.ui.bridge import SimBridge
from mppsim.ui.mpp_phone import MppPhone, skin_for_model

ROOT = Path(__file__).resolve().parents[1]
REC_KEYS = {"Record", "PauseRec", "ResumeRec", "StopRec"}


@pytest.fixture
def running(qtbot, tmp_path):
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path).start()
    yield sim
    sim.stop()


@pytest.fixture
def phone(qtbot, running):
    """phone(user) -> an MppPhone refreshed on every event of that user's agent (as the main
    window does)."""
    bridge = SimBridge(running)
    phones = []

    def make(user: str, **kw) -> MppPhone:
        w = MppPhone(running, user, **kw)
        qtbot.addWidget(w)
        w.show()
        bridge.event.connect(lambda ev, w=w: w.refresh() if ev.get("agent") == user else None)
        phones.append(w)
        return w
    yield make
    bridge.deleteLater()


def softkey(w: MppPhone, label: str) -> QPushButton:
    """The softkey button showing `label` now (by objectName, as a tester would find it)."""
    for n in range(4):
        b = w.findChild(QPushButton, f"mpp_{w.user_id}_softkey_{n}")
        assert b is not None
        if b.text() == label:
            return b
    raise AssertionError(f"no softkey {label!r} on {w.user_id}'s phone: {w.softkey_labels()}")


def click(qtbot, w: MppPhone, name: str) -> None:
    b = w.findChild(QPushButton, f"mpp_{w.user_id}_{name}")
    assert b is not None, f"no button mpp_{w.user_id}_{name}"
    qtbot.mouseClick(b, Qt.LeftButton)


def rec_keys(w: MppPhone) -> list[str]:
    return [k for k in w.softkey_labels() if k in REC_KEYS]


def answer_on_phone(qtbot, w: MppPhone) -> None:
    qtbot.waitUntil(lambda: w.softkey_labels()[:2] == ["Answer", "Decline"], timeout=3000)
    assert "Ringing" in w.screen_text()
    qtbot.mouseClick(softkey(w, "Answer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Connected" in w.screen_text(), timeout=3000)


def settle(sim: Simulator, who: str, keys: list[str], icon: str) -> None:
    sim.wait_until(lambda: sim.softkeys(who) == keys and sim.indicator(who, "mpp") == icon, 3,
                   f"{who}: softkeys {keys}, icon {icon}")


def test_every_control_has_a_stable_object_name(qtbot, phone):
    w = phone("alice")
    assert w.objectName() == "mpp_alice" and w.accessibleName()
    names = ([f"softkey_{n}" for n in range(4)] + [f"linekey_{n}" for n in range(5)]
             + [f"key_{d}" for d in "0123456789"] + ["key_star", "key_hash"]
             + ["hold", "transfer", "conference", "speaker", "mute", "headset"]
             + [f"nav_{p}" for p in ("up", "down", "left", "right", "select")])
    for name in names:
        b = w.findChild(QPushButton, f"mpp_alice_{name}")
        assert b is not None and b.accessibleName(), name
    assert w.findChild(QPushButton, "mpp_alice_linekey_1").text() == "1100"   # virtual line sales
    assert w.skin_name == "color" and skin_for_model("6871") == "mono" and skin_for_model("7841") == "mono"
    assert w.softkey_labels() == ["Redial", "New call"]
    assert w.recording_icon() == "none" and "Idle" in w.screen_text()


def test_r_ux_1_always_shows_the_icon_and_no_recording_softkeys(qtbot, phone, running):
    """R-UX-1, R-UX-3: dave (Always, 6871 monochrome) gets the recording icon on the Calls screen
    and on the line key, the short message, and never a recording softkey; Esc ends the call."""
    w = phone("dave")
    assert w.skin_name == "mono"
    running.dial("carol", "1004")
    answer_on_phone(qtbot, w)
    qtbot.waitUntil(lambda: w.recording_icon() == "recording", timeout=3000)
    text = w.screen_text()
    assert "Carol Kowalska" in text and "1003" in text and "REC" in text and "Recording" in text
    assert w.line_icon(0) == "recording"
    assert rec_keys(w) == [] and w.softkey_labels() == ["End call", "Hold", "Transfer", "Conference"]
    qtbot.keyClick(w, Qt.Key_Escape)
    qtbot.waitUntil(lambda: "Call ended" in w.screen_text(), timeout=3000)
    assert w.recording_icon() == "none" and w.line_icon(0) == "none"


def test_r_ux_3_always_with_pause_resume_pauserec_and_resumerec(qtbot, phone, running):
    """R-UX-1, R-UX-3: alice (Always with Pause/Resume): PauseRec -> paused icon, 'Recording
    paused' and ResumeRec; ResumeRec -> recording icon and PauseRec again. The softkeys follow the
    Simulator's state within one refresh (one event-loop turn)."""
    w = phone("alice")
    running.dial("bob", "1001")
    answer_on_phone(qtbot, w)
    settle(running, "alice", ["PauseRec"], "recording")
    w.refresh()
    assert rec_keys(w) == ["PauseRec"] and w.recording_icon() == "recording"
    qtbot.mouseClick(softkey(w, "PauseRec"), Qt.LeftButton)
    settle(running, "alice", ["ResumeRec"], "paused")
    w.refresh()
    assert rec_keys(w) == ["ResumeRec"] and w.recording_icon() == "paused" and w.line_icon(0) == "paused"
    assert "Recording paused" in w.screen_text() and "PAUSED" in w.screen_text()
    qtbot.mouseClick(softkey(w, "ResumeRec"), Qt.LeftButton)
    settle(running, "alice", ["PauseRec"], "recording")
    w.refresh()
    assert rec_keys(w) == ["PauseRec"] and w.recording_icon() == "recording"
    assert "Recording resumed" in w.screen_text()


def test_r_ux_2_on_demand_user_start_record_pause_resume_stop(qtbot, phone, running):
    """R-UX-2, R-UX-3: bob (On Demand with User Initiated Start): Record; then PauseRec/StopRec;
    paused: ResumeRec/StopRec; StopRec -> Record again. alice dials him from her keypad + Enter."""
    a, b = phone("alice"), phone("bob")
    for digit in "1002":
        click(qtbot, a, f"key_{digit}")
    assert "1002" in a.screen_text()
    qtbot.keyClick(a, Qt.Key_Return)
    qtbot.waitUntil(lambda: "Calling..." in a.screen_text() or "Connected" in a.screen_text(), timeout=3000)
    answer_on_phone(qtbot, b)
    settle(running, "bob", ["Record"], "none")
    b.refresh()
    assert rec_keys(b) == ["Record"] and b.recording_icon() == "none"
    steps = [("Record", ["PauseRec", "StopRec"], "recording"),
             ("PauseRec", ["ResumeRec", "StopRec"], "paused"),
             ("ResumeRec", ["PauseRec", "StopRec"], "recording"),
             ("StopRec", ["Record"], "none")]
    for key, keys, icon in steps:
        qtbot.mouseClick(softkey(b, key), Qt.LeftButton)
        settle(running, "bob", keys, icon)
        b.refresh()
        assert rec_keys(b) == keys and b.recording_icon() == icon, key
    assert "Recording stopped" in b.screen_text()
    # more than four keys: the fourth slot pages
    assert b.softkey_labels()[-1] == "More"
    shown = set(b.softkey_labels())
    qtbot.mouseClick(softkey(b, "More"), Qt.LeftButton)
    assert set(b.softkey_labels()) - {"More"} and not (set(b.softkey_labels()) - {"More"}) & (shown - {"More"})


def test_r_ux_5_feature_codes_on_the_keypad_do_what_the_softkeys_do(qtbot, phone, running):
    """R-UX-5: bob types *44 / *48 / *49 / *45 on his phone's keypad (clicks and keyboard) during the
    call: the same recording states, icons and softkeys as Record / PauseRec / ResumeRec / StopRec."""
    b = phone("bob")
    running.dial("alice", "1002")
    answer_on_phone(qtbot, b)
    settle(running, "bob", ["Record"], "none")
    for k in ("star", "4", "4"):
        click(qtbot, b, f"key_{k}")
    settle(running, "bob", ["PauseRec", "StopRec"], "recording")
    b.refresh()
    assert b.recording_icon() == "recording" and rec_keys(b) == ["PauseRec", "StopRec"]
    qtbot.keyClicks(b, "*48")
    settle(running, "bob", ["ResumeRec", "StopRec"], "paused")
    b.refresh()
    assert b.recording_icon() == "paused" and rec_keys(b) == ["ResumeRec", "StopRec"]
    qtbot.keyClicks(b, "*49")
    settle(running, "bob", ["PauseRec", "StopRec"], "recording")
    b.refresh()
    assert b.recording_icon() == "recording"
    qtbot.keyClicks(b, "*45")
    settle(running, "bob", ["Record"], "none")
    b.refresh()
    assert b.recording_icon() == "none" and rec_keys(b) == ["Record"]


def test_r_ux_3_never_shows_no_icon_and_no_recording_softkeys(qtbot, phone, running):
    """R-UX-1, R-UX-3, R-UX-5: a user set to Never gets no icon and no recording softkey, and *44
    does nothing."""
    running.set_call_recording("dave", {"enabled": True, "record": "Never"})
    w = phone("dave")
    running.dial("carol", "1004")
    answer_on_phone(qtbot, w)
    qtbot.wait(300)
    assert w.recording_icon() == "none" and rec_keys(w) == []
    assert w.softkey_labels() == ["End call", "Hold", "Transfer", "Conference"]
    qtbot.keyClicks(w, "*44")
    qtbot.wait(300)
    w.refresh()
    assert w.recording_icon() == "none" and rec_keys(w) == [] and "REC" not in w.screen_text().split("\n")


def test_an_incoming_call_on_the_virtual_line_selects_its_line_key(qtbot, phone, running):
    """R-UX-1: the icon also shows on the line key of the recorded call (sales 1100, Always)."""
    w = phone("alice")
    running.dial("bob", "1100")
    qtbot.waitUntil(lambda: w.selected == "sales" and "Ringing" in w.screen_text(), timeout=3000)
    qtbot.mouseClick(softkey(w, "Answer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: w.line_icon(1) == "recording" and w.recording_icon() == "recording", timeout=3000)
    assert w.line_icon(0) == "none" and rec_keys(w) == []
    click(qtbot, w, "linekey_0")                  # back to the idle primary line
    assert w.selected == "alice" and w.recording_icon() == "none" and w.line_icon(1) == "recording"
    click(qtbot, w, "linekey_1")
    qtbot.keyClick(w, Qt.Key_Escape)
    qtbot.waitUntil(lambda: "Call ended" in w.screen_text(), timeout=3000)


def test_hold_key_and_errors_show_on_the_screen(qtbot, phone, running):
    w = phone("alice")
    qtbot.keyClicks(w, "9999")
    qtbot.keyClick(w, Qt.Key_Return)
    assert "9999" in w.screen_text() and "not a known extension" in w.screen_text()
    running.dial("bob", "1001")
    answer_on_phone(qtbot, w)
    click(qtbot, w, "hold")
    qtbot.waitUntil(lambda: "On hold" in w.screen_text(), timeout=3000)
    assert w.softkey_labels()[0] == "Resume" and rec_keys(w) == []
    click(qtbot, w, "hold")
    qtbot.waitUntil(lambda: "Connected" in w.screen_text(), timeout=3000)


def test_the_art_is_vector_and_scales(qtbot, phone):
    w = phone("alice")
    w.setScale(1.0)
    one = w.grab().toImage()
    w.setScale(2.0)
    two = w.grab().toImage()
    assert (two.width(), two.height()) == (2 * one.width(), 2 * one.height())
    # the softkey buttons follow the art
    b = w.findChild(QPushButton, "mpp_alice_softkey_0")
    assert b.width() > 100


@pytest.mark.skipif(not os.environ.get("MPPSIM_SCREENSHOTS"), reason="set MPPSIM_SCREENSHOTS=DIR to save")
def test_save_mpp_screenshots(qtbot, phone, running):
    out = Path(os.environ["MPPSIM_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    running.play("alice", tone=1000)
    a, d = phone("alice"), phone("dave")
    a.setScale(1.0)
    d.setScale(1.0)
    a.grab().save(str(out / "mpp-8865-idle.png"))
    running.dial("bob", "1001")
    answer_on_phone(qtbot, a)
    settle(running, "alice", ["PauseRec"], "recording")
    qtbot.wait(1100)
    a.refresh()
    a.grab().save(str(out / "mpp-8865-recording.png"))
    a.setScale(2.0)
    a.grab().save(str(out / "mpp-8865-recording@2x.png"))
    a.setScale(1.0)
    qtbot.mouseClick(softkey(a, "PauseRec"), Qt.LeftButton)
    settle(running, "alice", ["ResumeRec"], "paused")
    a.refresh()
    a.grab().save(str(out / "mpp-8865-paused.png"))
    running.dial("carol", "1004")
    answer_on_phone(qtbot, d)
    qtbot.waitUntil(lambda: d.recording_icon() == "recording", timeout=3000)
    qtbot.wait(1100)
    d.refresh()
    d.grab().save(str(out / "mpp-6871-recording.png"))
