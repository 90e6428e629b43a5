"""pytest-qt: the Webex App face (src/mppsim/ui/webex_app.py) driven against real agents.

Each recording mode on the app: the indicator (R-UX-1), the recording items under More
(R-UX-4) and the in-call keypad's feature access codes (R-UX-5). After the Simulator reaches a
state (sim.wait_until), one refresh() must show it: the face never lags an event-loop turn.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QToolButton

from mppsim.app.simulator import Simulator
from tests.helpers import demo_org
from mppsim.ui.bridge import SimBridge
from mppsim.ui.webex_app import WebexApp

ON_DEMAND_USER_START = {"enabled": True, "record": "On Demand with User Initiated Start"}


@pytest.fixture
def live(tmp_path):
    """A fresh demo org per test (modes are changed per test); not conftest's module `sim`."""
    s = Simulator(demo_org(voicemail=False), run_dir=tmp_path).start()
    yield s
    s.stop()


def make_app(qtbot, sim, user):
    app = WebexApp(sim, user)
    qtbot.addWidget(app)
    app.show()
    return app


def find(w, cls, name):
    widget = w.findChild(cls, name)
    assert widget is not None, f"no {cls.__name__} named {name}"
    return widget


def recording_actions(app):
    """The recording QActions in the More menu (everything but Keypad)."""
    return [a for a in app.more_menu.actions()
            if a.objectName().startswith(f"webex_{app.key}_menu_") and not a.objectName().endswith("_keypad")]


def settle(sim, app, who, indicator, items):
    """Wait for the Simulator's state, then one refresh() must show it (no further waiting)."""
    sim.wait_until(lambda: sim.indicator(who, "webex-app") == indicator and sim.menu_items(who) == items,
                   5, f"{who}: indicator {indicator}, menu {items}")
    app.refresh()
    assert app.indicator_state() == indicator
    assert app.menu_labels() == items
    assert [a.text() for a in recording_actions(app)] == items
    label = find(app, QLabel, f"webex_{app.key}_indicator")
    expected = {"recording": "Recording", "paused": "Recording paused", "none": ""}[indicator]
    # the name says whose label it is; the description is what it shows (ui/a11y.py)
    assert label.text() == expected and label.accessibleDescription() == expected


def menu_action(app, name) -> QAction:
    """The QAction named `name` among those the More menu shows now."""
    found = [a for a in app.more_menu.actions() if a.objectName() == name]
    assert found, f"no action {name} under More; it has {[a.text() for a in app.more_menu.actions()]}"
    return found[0]


def trigger(app, label):
    action = menu_action(app, f"webex_{app.key}_menu_{label.lower().replace(' ', '_')}")
    assert action.text() == label
    action.trigger()


def answer_call_from_bob(qtbot, sim, app, user, number):
    sim.dial("bob", number)
    answer = find(app, QPushButton, f"webex_{user}_answer")
    qtbot.waitUntil(lambda: (app.refresh(), answer.isVisible())[1], timeout=3000)
    assert find(app, QPushButton, f"webex_{user}_decline").isVisible()
    assert find(app, QLabel, f"webex_{user}_toast_name").text() == "Bob Jones"
    qtbot.mouseClick(answer, Qt.LeftButton)
    sim.wait_for(user, "connected")
    app.refresh()
    assert find(app, QLabel, f"webex_{user}_caller").text() == "Bob Jones"
    assert find(app, QToolButton, f"webex_{user}_end").isVisible()


def test_r_ux_4_always_with_pause_resume_on_the_webex_app(qtbot, live):
    """R-UX-1, R-UX-4: alice (Always with Pause/Resume): Pause recording -> paused indicator and
    Resume recording; Resume recording -> recording again. Never Start or Stop."""
    sim = live
    app = make_app(qtbot, sim, "alice")
    answer_call_from_bob(qtbot, sim, app, "alice", "1001")
    settle(sim, app, "alice", "recording", ["Pause recording"])
    trigger(app, "Pause recording")
    settle(sim, app, "alice", "paused", ["Resume recording"])
    trigger(app, "Resume recording")
    settle(sim, app, "alice", "recording", ["Pause recording"])
    qtbot.mouseClick(find(app, QToolButton, "webex_alice_end"), Qt.LeftButton)
    sim.wait_for("alice", "ended")
    app.refresh()
    assert app.indicator_state() == "none" and app.menu_labels() == []


def test_r_ux_4_always_shows_the_indicator_and_no_recording_items(qtbot, live):
    """R-UX-1, R-UX-4: Always: the recording indicator, and More holds no recording item at all."""
    sim = live
    sim.set_call_recording("alice", {"enabled": True, "record": "Always"})
    app = make_app(qtbot, sim, "alice")
    answer_call_from_bob(qtbot, sim, app, "alice", "1001")
    settle(sim, app, "alice", "recording", [])
    assert [a.objectName() for a in app.more_menu.actions() if not a.isSeparator()] == ["webex_alice_menu_keypad"]


def test_r_ux_4_on_demand_with_user_initiated_start_on_the_webex_app(qtbot, live):
    """R-UX-4: On Demand with User Initiated Start: Start recording; then Pause / Stop;
    paused: Resume / Stop; stopped: Start recording again (a new recording)."""
    sim = live
    sim.set_call_recording("carol", ON_DEMAND_USER_START)
    app = make_app(qtbot, sim, "carol")
    answer_call_from_bob(qtbot, sim, app, "carol", "1003")
    settle(sim, app, "carol", "none", ["Start recording"])
    trigger(app, "Start recording")
    settle(sim, app, "carol", "recording", ["Pause recording", "Stop recording"])
    trigger(app, "Pause recording")
    settle(sim, app, "carol", "paused", ["Resume recording", "Stop recording"])
    trigger(app, "Resume recording")
    settle(sim, app, "carol", "recording", ["Pause recording", "Stop recording"])
    trigger(app, "Stop recording")
    settle(sim, app, "carol", "none", ["Start recording"])


def test_r_ux_4_never_shows_no_indicator_and_no_recording_items(qtbot, live):
    """R-UX-1, R-UX-4: carol is Never: no indicator, no recording items, only Keypad under More."""
    sim = live
    app = make_app(qtbot, sim, "carol")
    answer_call_from_bob(qtbot, sim, app, "carol", "1003")
    qtbot.wait(500)     # give a (wrong) recording every chance to appear
    settle(sim, app, "carol", "none", [])
    assert not find(app, QLabel, "webex_carol_indicator").isVisible() or app.indicator_state() == "none"
    assert [a.text() for a in app.more_menu.actions() if not a.isSeparator()] == ["Keypad"]


def test_r_ux_5_feature_codes_from_the_app_keypad_act_like_the_menu(qtbot, live):
    """R-UX-5: *44 / *48 / *49 / *45 typed on the Webex App's in-call keypad (More > Keypad)
    start, pause, resume and stop as the menu items do (R-UX-4: the items follow)."""
    sim = live
    sim.set_call_recording("carol", ON_DEMAND_USER_START)
    app = make_app(qtbot, sim, "carol")
    answer_call_from_bob(qtbot, sim, app, "carol", "1003")
    settle(sim, app, "carol", "none", ["Start recording"])
    menu_action(app, "webex_carol_menu_keypad").trigger()
    assert find(app, type(app.keypad), "webex_carol_keypad").isVisible()

    def dial(code):
        for digit in code:
            name = {"*": "star", "#": "hash"}.get(digit, digit)
            qtbot.mouseClick(find(app, QPushButton, f"webex_carol_dtmf_{name}"), Qt.LeftButton)

    dial("*44")
    settle(sim, app, "carol", "recording", ["Pause recording", "Stop recording"])
    dial("*48")
    settle(sim, app, "carol", "paused", ["Resume recording", "Stop recording"])
    dial("*49")
    settle(sim, app, "carol", "recording", ["Pause recording", "Stop recording"])
    dial("*45")
    settle(sim, app, "carol", "none", ["Start recording"])


def test_r_ux_4_items_follow_events_through_the_bridge(qtbot, live):
    """R-UX-1, R-UX-4: wired like the main window (SimBridge event -> refresh()), the face
    follows a pause made elsewhere (the Simulator API) with no further action."""
    sim = live
    app = make_app(qtbot, sim, "alice")
    bridge = SimBridge(sim, app)
    bridge.event.connect(lambda ev: app.refresh() if ev.get("agent") == "alice" else None)
    sim.dial("bob", "1001")
    qtbot.waitUntil(lambda: find(app, QPushButton, "webex_alice_answer").isVisible(), timeout=3000)
    sim.answer("alice")
    qtbot.waitUntil(lambda: app.indicator_state() == "recording", timeout=5000)
    assert app.menu_labels() == ["Pause recording"]
    sim.menu("alice", "Pause recording")
    qtbot.waitUntil(lambda: app.indicator_state() == "paused", timeout=3000)
    assert app.menu_labels() == ["Resume recording"]
    banner = find(app, QLabel, "webex_alice_banner")
    assert banner.isVisible() and banner.text() == "Recording paused"


def test_keyboard_digits_dial_enter_calls_esc_ends(qtbot, live):
    """Digits typed on the app go to the dial field, Enter calls, Esc ends the call."""
    sim = live
    app = make_app(qtbot, sim, "alice")
    app.setFocus()
    qtbot.keyClicks(app, "1002")
    field = find(app, QLineEdit, "webex_alice_dial_field")
    assert field.text() == "1002"
    qtbot.keyClick(field, Qt.Key_Return)
    sim.wait_for("bob", "ringing")
    sim.answer("bob")
    sim.wait_for("alice", "connected")
    app.refresh()
    assert find(app, QLabel, "webex_alice_caller").text() == "Bob Jones"
    qtbot.keyClick(app, Qt.Key_Escape)
    sim.wait_for("bob", "ended")


def test_decline_from_the_toast_and_every_control_is_named(qtbot, live):
    sim = live
    app = make_app(qtbot, sim, "carol")
    assert app.objectName() == "webex_carol" and app.accessibleName()
    for suffix in ("answer", "decline", "dial_field", "call", "indicator"):
        w = app.findChild(object, f"webex_carol_{suffix}")
        assert w is not None, suffix
    for suffix in ("end", "hold", "resume", "mute", "transfer", "more"):
        b = find(app, QToolButton, f"webex_carol_{suffix}")
        assert b.accessibleName()
    more = find(app, QToolButton, "webex_carol_more")
    assert more.menu() is None and app.more_menu.parent() is more   # opened by a click (ui/a11y.ToolMenu)
    sim.dial("bob", "1003")
    qtbot.waitUntil(lambda: (app.refresh(), find(app, QPushButton, "webex_carol_decline").isVisible())[1],
                    timeout=3000)
    qtbot.mouseClick(find(app, QPushButton, "webex_carol_decline"), Qt.LeftButton)
    sim.wait_for("bob", "ended")
    # carol's own leg may end a moment after bob's: wait for her view, not a fixed moment
    qtbot.waitUntil(lambda: (app.refresh(), find(app, QLineEdit, "webex_carol_dial_field").isVisible())[1],
                    timeout=3000)


def test_hold_resume_and_transfer_from_the_call_window(qtbot, live):
    sim = live
    app = make_app(qtbot, sim, "alice")
    answer_call_from_bob(qtbot, sim, app, "alice", "1001")
    hold, resume = find(app, QToolButton, "webex_alice_hold"), find(app, QToolButton, "webex_alice_resume")
    qtbot.mouseClick(hold, Qt.LeftButton)
    sim.wait_until(lambda: sim.call_state("alice") == "held", 5, "alice held")
    app.refresh()
    assert resume.isVisible() and not hold.isVisible()
    assert find(app, QLabel, "webex_alice_state").text() == "On hold"
    assert app.menu_labels() == []          # R-UX-3/4: no recording items while on hold
    qtbot.mouseClick(resume, Qt.LeftButton)
    sim.wait_until(lambda: sim.call_state("alice") == "connected", 5, "alice resumed")
    app.refresh()
    assert hold.isVisible()
    qtbot.mouseClick(find(app, QToolButton, "webex_alice_transfer"), Qt.LeftButton)
    field = find(app, QLineEdit, "webex_alice_transfer_field")
    assert field.isVisible()
    qtbot.keyClicks(field, "1004")
    qtbot.keyClick(field, Qt.Key_Return)
    sim.wait_for("dave", "ringing")
