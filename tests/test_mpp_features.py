"""pytest-qt: the MPP face's consult transfer (issue 13): the Transfer key holds the call and asks
for a number, dialling opens the consult call (Consulting softkeys), Transfer again completes,
Cancel returns. Real agents behind the face; audio checked at the parties."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from mppsim.app.simulator import Simulator
from tests.helpers import TONES, demo_org
from mppsim.ui.bridge import SimBridge
from mppsim.ui.mpp_phone import MppPhone

ROOT = Path(__file__).resolve().parents[1]


def shot(widget, name: str) -> None:
    """Save a screenshot when MPPSIM_SCREENSHOTS=DIR is set (docs/screenshots are made so)."""
    out = os.environ.get("MPPSIM_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(out) / name))


@pytest.fixture
def running(qtbot, tmp_path):
    sim = Simulator(demo_org(voicemail=False), run_dir=tmp_path).start()
    for who, freq in TONES.items():
        sim.play(who, tone=freq)
    yield sim
    sim.stop()


@pytest.fixture
def phone(qtbot, running):
    bridge = SimBridge(running)

    def make(user: str) -> MppPhone:
        w = MppPhone(running, user)
        qtbot.addWidget(w)
        w.setScale(1.0)
        w.show()
        bridge.event.connect(lambda ev, w=w: w.refresh() if ev.get("agent") == user else None)
        return w
    yield make
    bridge.deleteLater()


def click(qtbot, w: MppPhone, name: str) -> None:
    b = w.findChild(QPushButton, f"mpp_{w.user_id}_{name}")
    assert b is not None, name
    qtbot.mouseClick(b, Qt.LeftButton)


def softkey(w: MppPhone, label: str) -> QPushButton:
    for n in range(4):
        b = w.findChild(QPushButton, f"mpp_{w.user_id}_softkey_{n}")
        if b.text() == label:
            return b
    raise AssertionError(f"no softkey {label!r}: {w.softkey_labels()}")


def heard(sim, who, freq, within=3.0):
    deadline = time.monotonic() + within
    while True:
        got = (sim.listen(who, 0.4) or {}).get("freq_hz")
        if got and abs(got - freq) < freq * 0.02:
            return
        assert time.monotonic() < deadline, f"{who} hears {got} Hz, expected {freq}"
        time.sleep(0.1)


def connected_to(qtbot, running, w, caller, number):
    running.dial(caller, number)
    qtbot.waitUntil(lambda: w.softkey_labels()[:2] == ["Answer", "Decline"], timeout=3000)
    qtbot.mouseClick(softkey(w, "Answer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "Connected" in w.screen_text(), timeout=3000)


def test_transfer_key_consults_then_completes_attended(qtbot, phone, running):
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    click(qtbot, w, "transfer")                      # holds bob, asks for the number
    qtbot.waitUntil(lambda: running.call_state("bob") == "held", timeout=3000)
    assert w.softkey_labels() == ["Transfer", "Delete", "Cancel"] and "Transfer to" in w.screen_text()
    for d in "1004":
        click(qtbot, w, f"key_{d}")
    click(qtbot, w, "transfer")                      # dials the consult call
    running.wait_for("dave", "ringing", 3)
    qtbot.waitUntil(lambda: w.softkey_labels() == ["Transfer", "Cancel", "End call"], timeout=3000)
    assert "Consult: ringing" in w.screen_text()
    running.answer("dave")
    qtbot.waitUntil(lambda: "Consulting" in w.screen_text(), timeout=3000)
    assert "Bob Jones on hold" in w.screen_text() and "Dave Wilson" in w.screen_text()
    heard(running, "dave", TONES["alice"])
    shot(w, "mpp-8865-consulting.png")
    qtbot.mouseClick(softkey(w, "Transfer"), Qt.LeftButton)   # Transfer again: attended
    qtbot.waitUntil(lambda: running.call_state("alice") == "ended", timeout=4000)
    heard(running, "bob", TONES["dave"])
    heard(running, "dave", TONES["bob"])


def test_cancel_returns_to_the_held_call(qtbot, phone, running):
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    click(qtbot, w, "transfer")
    qtbot.waitUntil(lambda: running.call_state("bob") == "held", timeout=3000)
    w.refresh()
    shot(w, "mpp-8865-transfer-to.png")
    for d in "1004":
        click(qtbot, w, f"key_{d}")
    click(qtbot, w, "transfer")
    running.wait_for("dave", "ringing", 3)
    qtbot.waitUntil(lambda: "Cancel" in w.softkey_labels(), timeout=3000)
    qtbot.mouseClick(softkey(w, "Cancel"), Qt.LeftButton)
    qtbot.waitUntil(lambda: running.call_state("bob") == "connected", timeout=3000)
    qtbot.waitUntil(lambda: "Connected" in w.screen_text(), timeout=3000)
    # dave's phone stops ringing a moment later: its agent reports the CANCEL it got
    qtbot.waitUntil(lambda: running.call_state("dave") == "ended", timeout=3000)
    heard(running, "bob", TONES["alice"])
    # Transfer then Cancel before dialling: back to the call too
    click(qtbot, w, "transfer")
    qtbot.waitUntil(lambda: running.call_state("bob") == "held", timeout=3000)
    qtbot.mouseClick(softkey(w, "Cancel"), Qt.LeftButton)
    qtbot.waitUntil(lambda: running.call_state("bob") == "connected", timeout=3000)


def test_webex_app_consult_first_then_complete_transfer(qtbot, running):
    """Webex App: Transfer offers 'Transfer now' and 'Consult first'; consulting shows Complete
    transfer / Cancel transfer; completing connects bob with dave (audio measured)."""
    from PySide6.QtWidgets import QLabel, QLineEdit, QToolButton
    from mppsim.ui.webex_app import WebexApp
    app = WebexApp(running, "alice")
    qtbot.addWidget(app)
    app.show()
    running.dial("bob", "1001")
    running.wait_for("alice", "ringing", 3)
    running.answer("alice")
    running.wait_for("bob", "connected", 3)
    running.wait_for("alice", "connected", 3)
    transfer = app.findChild(QToolButton, "webex_alice_transfer")
    qtbot.waitUntil(lambda: (app.refresh(), transfer.isVisible() and transfer.isEnabled())[1], timeout=3000)
    qtbot.mouseClick(transfer, Qt.LeftButton)
    field = app.findChild(QLineEdit, "webex_alice_transfer_field")
    now = app.findChild(QPushButton, "webex_alice_transfer_go")
    consult = app.findChild(QPushButton, "webex_alice_transfer_consult")
    assert field.isVisible() and now.text() == "Transfer now" and consult.text() == "Consult first"
    qtbot.keyClicks(field, "1004")
    qtbot.mouseClick(consult, Qt.LeftButton)
    running.wait_for("dave", "ringing", 3)
    running.answer("dave")
    complete = app.findChild(QPushButton, "webex_alice_transfer_complete")

    def consulting():
        app.refresh()
        return complete.isVisible() and "Consulting" in app.findChild(QLabel, "webex_alice_state").text()
    qtbot.waitUntil(consulting, timeout=3000)
    assert app.findChild(QLabel, "webex_alice_caller").text() == "Dave Wilson"
    assert "Bob Jones on hold" in app.findChild(QLabel, "webex_alice_state").text()
    shot(app, "webex-consulting.png")
    heard(running, "dave", TONES["alice"])
    qtbot.mouseClick(complete, Qt.LeftButton)
    qtbot.waitUntil(lambda: running.call_state("alice") == "ended", timeout=4000)
    heard(running, "bob", TONES["dave"])
    heard(running, "dave", TONES["bob"])


def test_call_waiting_on_the_mpp_answer_holds_the_first_keys_follow_the_selected_call(qtbot, phone, running):
    """R-UX-1, R-UX-3 per call: while carol's call waits, alice's phone shows 'Call waiting' with
    Answer/Decline and the recording keys/icon of the call she is in (bob's); Answer holds bob
    and the keys/icon follow carol's call."""
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    running.wait_until(lambda: running.softkeys("alice") == ["PauseRec"]
                       and running.indicator("alice", "mpp") == "recording", 3, "alice recording")
    running.dial("carol", "1001")
    qtbot.waitUntil(lambda: "Call waiting" in w.screen_text(), timeout=3000)
    assert "Waiting: Carol Kowalska" in w.screen_text() and "Bob Jones" in w.screen_text()
    assert w.softkey_labels() == ["Answer", "Decline", "More"] or w.softkey_labels()[:2] == ["Answer", "Decline"]
    assert w.recording_icon() == "recording" and w.line_icon(0) == "recording"
    shot(w, "mpp-8865-call-waiting.png")
    qtbot.mouseClick(softkey(w, "Answer"), Qt.LeftButton)
    running.wait_for("bob", "held", 3)
    qtbot.waitUntil(lambda: "Carol Kowalska" in w.screen_text() and "Bob Jones on hold" in w.screen_text(),
                    timeout=3000)
    running.wait_until(lambda: running.softkeys("alice") == ["PauseRec"]
                       and running.indicator("alice", "mpp") == "recording", 3, "carol's call recorded")
    w.refresh()
    assert w.softkey_labels()[0] == "PauseRec" and w.recording_icon() == "recording"
    qtbot.mouseClick(softkey(w, "PauseRec"), Qt.LeftButton)      # pauses carol's recording only
    bob_call = next(c["call"] for c in running.live_calls("alice") if c["remote"]["user"] == "1002")
    running.wait_until(lambda: running.indicator("alice") == "paused", 3, "carol's recording paused")
    assert running.indicator("alice", call=bob_call) == "recording"
    shot(w, "mpp-8865-two-calls.png")
    heard(running, "carol", TONES["alice"])


def test_webex_app_call_waiting_row_answer_holds_the_first(qtbot, running):
    """Webex App: a waiting call shows '<name> is calling' with Answer / Decline under the call
    the user is in; Answer holds that call and the window follows the answered one."""
    from PySide6.QtWidgets import QLabel
    from mppsim.ui.webex_app import WebexApp
    app = WebexApp(running, "alice")
    qtbot.addWidget(app)
    app.show()
    running.dial("bob", "1001")
    running.wait_for("alice", "ringing", 3)
    running.answer("alice")
    running.wait_for("alice", "connected", 3)
    running.dial("carol", "1001")
    answer = app.findChild(QPushButton, "webex_alice_waiting_answer")
    qtbot.waitUntil(lambda: (app.refresh(), answer.isVisible())[1], timeout=3000)
    assert app.findChild(QLabel, "webex_alice_waiting_label").text() == "Carol Kowalska (1003) is calling"
    assert app.findChild(QLabel, "webex_alice_caller").text() == "Bob Jones"
    shot(app, "webex-call-waiting.png")
    qtbot.mouseClick(answer, Qt.LeftButton)
    running.wait_for("bob", "held", 3)
    qtbot.waitUntil(lambda: (app.refresh(), app.findChild(QLabel, "webex_alice_caller").text()
                             == "Carol Kowalska")[1], timeout=3000)
    assert not answer.isVisible()
    heard(running, "carol", TONES["alice"])


def test_mute_key_on_the_mpp_and_the_webex_app_silences_the_far_end(qtbot, phone, running):
    """Mute on the MPP: bob hears silence, the screen says Muted, the key is lit; the Webex App
    of the same user shows Unmute; Unmute there brings alice's tone back to bob."""
    from PySide6.QtWidgets import QToolButton
    from mppsim.ui.webex_app import WebexApp
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    heard(running, "bob", TONES["alice"])
    click(qtbot, w, "mute")
    qtbot.waitUntil(lambda: (w.refresh(), "Muted" in w.screen_text())[1], timeout=3000)
    assert w.muted
    time.sleep(0.5)
    assert running.listen("bob", 0.4)["active_seconds"] < 0.05
    shot(w, "mpp-8865-muted.png")
    app = WebexApp(running, "alice")
    qtbot.addWidget(app)
    app.show()
    mute = app.findChild(QToolButton, "webex_alice_mute")
    qtbot.waitUntil(lambda: (app.refresh(), mute.text() == "Unmute")[1], timeout=3000)
    shot(app, "webex-muted.png")
    qtbot.mouseClick(mute, Qt.LeftButton)
    qtbot.waitUntil(lambda: (app.refresh(), mute.text() == "Mute")[1], timeout=3000)
    heard(running, "bob", TONES["alice"])
    qtbot.waitUntil(lambda: (w.refresh(), "Muted" not in w.screen_text())[1], timeout=3000)


def test_conference_key_on_the_mpp_adds_a_party_and_merges(qtbot, phone, running):
    """Conference holds the call and asks for the number; Conference again on the answered
    call merges the three: everyone hears everyone (measured), the screen lists both parties,
    the softkeys are the conference's (recording keys + End call)."""
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    click(qtbot, w, "conference")
    qtbot.waitUntil(lambda: running.call_state("bob") == "held", timeout=3000)
    assert w.softkey_labels() == ["Conference", "Delete", "Cancel"]
    for d in "1003":
        click(qtbot, w, f"key_{d}")
    qtbot.mouseClick(softkey(w, "Conference"), Qt.LeftButton)
    running.wait_for("carol", "ringing", 3)
    running.answer("carol")
    qtbot.waitUntil(lambda: (w.refresh(), w.softkey_labels() == ["Conference", "Cancel", "End call"])[1],
                    timeout=3000)
    qtbot.mouseClick(softkey(w, "Conference"), Qt.LeftButton)
    # the merge is a re-INVITE (bob off hold) and a bridge change: 6 s leaves room for a loaded machine
    qtbot.waitUntil(lambda: (w.refresh(), "Bob Jones, Carol Kowalska" in w.screen_text())[1], timeout=6000)
    assert "Conference" in w.screen_text().split("\n")
    for who, others in (("bob", ["alice", "carol"]), ("carol", ["alice", "bob"]), ("alice", ["bob", "carol"])):
        deadline = time.monotonic() + 3
        while not all(running.hears_all(who, [TONES[o] for o in others]).values()):
            assert time.monotonic() < deadline, f"{who} does not hear {others}"
            time.sleep(0.15)
    qtbot.waitUntil(lambda: (w.refresh(), w.softkey_labels()[-1] == "End call")[1], timeout=3000)
    shot(w, "mpp-8865-conference.png")
    qtbot.mouseClick(softkey(w, "End call"), Qt.LeftButton)      # the host leaving ends it
    running.wait_for("bob", "ended", 3)
    running.wait_for("carol", "ended", 3)


def test_webex_app_add_to_call_and_merge(qtbot, running):
    from PySide6.QtWidgets import QLabel, QLineEdit, QToolButton
    from mppsim.ui.webex_app import WebexApp
    app = WebexApp(running, "alice")
    qtbot.addWidget(app)
    app.show()
    running.dial("bob", "1001")
    running.wait_for("alice", "ringing", 3)
    running.answer("alice")
    running.wait_for("alice", "connected", 3)
    transfer = app.findChild(QToolButton, "webex_alice_transfer")
    qtbot.waitUntil(lambda: (app.refresh(), transfer.isVisible() and transfer.isEnabled())[1], timeout=3000)
    qtbot.mouseClick(transfer, Qt.LeftButton)
    qtbot.keyClicks(app.findChild(QLineEdit, "webex_alice_transfer_field"), "1003")
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_conference_add"), Qt.LeftButton)
    running.wait_for("carol", "ringing", 3)
    running.answer("carol")
    qtbot.waitUntil(lambda: (app.refresh(), app.findChild(QPushButton, "webex_alice_conference_merge") is not None
                             and app.findChild(QPushButton, "webex_alice_conference_merge").isVisible()
                             and app.findChild(QPushButton, "webex_alice_conference_merge").isEnabled())[1],
                    timeout=3000)
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_conference_merge"), Qt.LeftButton)
    qtbot.waitUntil(lambda: (app.refresh(), app.findChild(QLabel, "webex_alice_caller").text() == "Conference")[1],
                    timeout=3000)
    assert app.findChild(QLabel, "webex_alice_number").text() == "Bob Jones, Carol Kowalska"
    deadline = time.monotonic() + 3
    while not all(running.hears_all("bob", [TONES["alice"], TONES["carol"]]).values()):
        assert time.monotonic() < deadline
        time.sleep(0.15)
    qtbot.waitUntil(lambda: (app.refresh(), app.indicator_state() == "recording")[1], timeout=3000)
    shot(app, "webex-conference.png")


def test_softkey_sets_per_state_connected_holding(qtbot, phone, running):
    """MPP softkeys per state (issue 13): Connected and Holding (Consulting, Conference and Call
    waiting are checked in their own tests above); the Webex App shows Resume while holding."""
    from PySide6.QtWidgets import QToolButton
    from mppsim.ui.webex_app import WebexApp
    running.set_call_recording("alice", {"enabled": True, "record": "Always"})
    w = phone("alice")
    connected_to(qtbot, running, w, "bob", "1001")
    assert w.softkey_labels() == ["End call", "Hold", "Transfer", "Conference"]
    click(qtbot, w, "hold")
    qtbot.waitUntil(lambda: (w.refresh(), "On hold" in w.screen_text())[1], timeout=3000)
    assert w.softkey_labels() == ["Resume", "End call", "New call", "Transfer"]
    shot(w, "mpp-8865-holding.png")
    app = WebexApp(running, "alice")
    qtbot.addWidget(app)
    app.show()
    resume = app.findChild(QToolButton, "webex_alice_resume")
    qtbot.waitUntil(lambda: (app.refresh(), resume.isVisible())[1], timeout=3000)
    assert not app.findChild(QToolButton, "webex_alice_hold").isVisible()
    shot(app, "webex-holding.png")
