"""One device view model (issue 20): what the MPP face and the Webex App face show, read from their
widgets, is what GET /mppsim/v1/devices/{id} serves, in every call state: idle, ringing,
connected, muted, paused, held, call waiting, two calls, consulting, conference, ended. Real agents
(SIP and RTP on loopback) behind both faces and the HTTP API; the walk is driven through the faces'
own controls where a user would press them. Then pure tests of app/device_view.py's functions."""
from __future__ import annotations

import time

import pytest
import requests
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QToolButton

from conftest import TONES, demo_org
from mppsim.app import device_view
from mppsim.app.device_view import Entry, LineView, mpp_screen, mpp_softkeys, webex_window
from mppsim.app.http_server import ApiServer
from mppsim.app.simulator import Simulator
from mppsim.rules.policy import SOFTKEY_ORDER
from mppsim.ui.mpp_phone import MORE, MppPhone
from mppsim.ui.webex_app import WebexApp


# ----- the faces and the API agree, call state by call state ------------------------------------
@pytest.fixture
def running(qtbot, tmp_path):
    # a long ring timeout: a call left ringing while the faces are compared must not time out
    sim = Simulator(demo_org(voicemail=False, ring_timeout=30), run_dir=tmp_path).start()
    for who, freq in TONES.items():
        sim.play(who, tone=freq)
    server = ApiServer(sim).start()
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {server.token}"
    api.base = f"{server.url}/mppsim/v1"
    yield sim, api
    server.stop()
    sim.stop()


def paged(labels: list[str]) -> list[str]:
    """The first page of softkeys the MPP draws for `labels` (paging is the face's own)."""
    return labels if len(labels) <= 4 else labels[:3] + [MORE]


def mpp_reads(w: MppPhone) -> dict:
    return {"softkeys": w.softkey_labels(), "indicator": w.recording_icon(),
            "text": w.screen_text().split("\n")}


def webex_reads(app: WebexApp) -> dict:
    """The Webex App as a user sees it: the page, its visible labels and controls, More's items."""
    page = {app.idle_page: "idle", app.toast_page: "toast", app.call_page: "call"}[app.stack.currentWidget()]

    def label(name: str) -> str | None:
        lab = app.findChild(QLabel, f"webex_{app.key}_{name}")
        return lab.text() if lab is not None and lab.isVisibleTo(app) else None
    buttons = {}
    for b in app.findChildren(QPushButton) + app.findChildren(QToolButton):
        name = b.objectName().removeprefix(f"webex_{app.key}_")
        if name != b.objectName() and b.isVisibleTo(app) and not name.startswith(("key_", "dtmf_")):
            buttons[name] = (b.text(), b.isEnabled())
    return {"page": page, "buttons": buttons, "menu": app.menu_labels(), "indicator": app.indicator_state(),
            **{n: label(n) for n in ("caller", "number", "state", "timer", "toast_name", "toast_number",
                                     "toast_title", "waiting_label", "idle_note")}}


def disagreements(sim, api, mpp: MppPhone, app: WebexApp, who: str = "alice") -> list[str]:
    mpp.refresh()
    app.refresh()
    r = api.get(f"{api.base}/devices/{who}", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    dev = {d["type"]: d for d in body["devices"]}
    m, w = dev["mpp"], dev["webex-app"]
    seen_m, seen_w = mpp_reads(mpp), webex_reads(app)
    out = []

    def same(what, face, served):
        if face != served:
            out.append(f"{what}: face shows {face!r}, API serves {served!r}")
    same("mpp softkeys", seen_m["softkeys"], paged(m["softkeys"]))
    same("mpp indicator", seen_m["indicator"], m["indicator"])
    same("mpp muted", "Muted" in seen_m["text"], m["muted"])
    scr = m["screen"]
    for part in ("state", "title", "subtitle"):
        if scr[part] and scr[part] not in seen_m["text"]:
            out.append(f"mpp screen {part} {scr[part]!r} not on the screen: {seen_m['text']}")
    win = w["window"]
    same("webex page", seen_w["page"], win["page"])
    same("webex buttons", seen_w["buttons"], {b["name"]: (b["label"], b["enabled"]) for b in win["buttons"]})
    same("webex menu", seen_w["menu"], w["menu_items"])
    same("webex indicator", seen_w["indicator"], w["indicator"])
    same("webex waiting", seen_w["waiting_label"] or "", win["waiting"])
    if win["page"] == "call":
        same("webex caller", seen_w["caller"], win["caller"])
        same("webex number", seen_w["number"], win["number"])
        same("webex state", seen_w["state"], win["state"])
        if win["timer"]:
            same("webex timer", seen_w["timer"], win["timer"])
    elif win["page"] == "toast":
        same("webex toast", (seen_w["toast_title"], seen_w["toast_name"], seen_w["toast_number"]),
             (win["toast_title"], win["caller"], win["number"]))
    else:
        same("webex idle note", seen_w["idle_note"], win["idle_note"])
    same("top-level menu_items", body["menu_items"], w["menu_items"])
    shown_rec = [k for k in m["softkeys"] if k in SOFTKEY_ORDER]
    if shown_rec:       # call waiting and consulting show call keys in their place
        same("top-level softkeys", shown_rec, body["softkeys"])
    return out


def softkey(w: MppPhone, label: str) -> QPushButton:
    for n in range(4):
        b = w.findChild(QPushButton, f"mpp_{w.user_id}_softkey_{n}")
        if b.text() == label:
            return b
    raise AssertionError(f"no softkey {label!r}: {w.softkey_labels()}")


def test_mpp_and_webex_app_show_what_the_api_serves_in_every_call_state(qtbot, running):
    sim, api = running
    mpp = MppPhone(sim, "alice")
    qtbot.addWidget(mpp)
    mpp.setScale(1.0)
    mpp.show()
    app = WebexApp(sim, "alice")
    qtbot.addWidget(app)
    app.resize(340, 600)
    app.show()
    walked = []

    def agree(state: str, until) -> dict:
        """Wait for the state (`until` reads the faces), then the faces and the API must agree."""
        qtbot.waitUntil(lambda: (mpp.refresh(), app.refresh(), until())[-1], timeout=5000)
        problems = []
        for _ in range(30):         # an event between reading a face and the API: read again
            problems = disagreements(sim, api, mpp, app)
            if not problems:
                break
            time.sleep(0.1)
        assert not problems, f"{state}: " + "; ".join(problems)
        walked.append(state)
        return requests.get(f"{api.base}/devices/alice", headers=api.headers, timeout=10).json()

    def mpp_dev(body):
        return next(d for d in body["devices"] if d["type"] == "mpp")

    def window(body):
        return next(d for d in body["devices"] if d["type"] == "webex-app")["window"]

    body = agree("idle", lambda: mpp.softkey_labels() == ["Redial", "New call"])
    assert window(body)["page"] == "idle" and body["call_state"] == "idle"

    sim.dial("bob", "1001")
    body = agree("ringing", lambda: mpp.softkey_labels() == ["Answer", "Decline"])
    assert window(body)["page"] == "toast" and mpp_dev(body)["screen"]["title"] == "Bob Jones"

    qtbot.mouseClick(softkey(mpp, "Answer"), Qt.LeftButton)
    body = agree("connected", lambda: mpp.recording_icon() == "recording" and app.indicator_state() == "recording")
    assert mpp_dev(body)["softkeys"] == ["PauseRec", "End call", "Hold", "Transfer", "Conference"]
    assert window(body)["state"] == "Connected" and body["menu_items"] == ["Pause recording"]

    qtbot.mouseClick(app.findChild(QToolButton, "webex_alice_mute"), Qt.LeftButton)
    body = agree("muted", lambda: "Muted" in mpp.screen_text())
    assert body["muted"] and window(body)["state"] == "Muted"
    qtbot.mouseClick(app.findChild(QToolButton, "webex_alice_mute"), Qt.LeftButton)
    qtbot.waitUntil(lambda: not sim.muted("alice"), timeout=3000)

    app.findChild(type(app.keypad_action), "webex_alice_menu_pause_recording").trigger()
    body = agree("paused", lambda: mpp.recording_icon() == "paused" and app.indicator_state() == "paused")
    assert mpp_dev(body)["softkeys"][0] == "ResumeRec" and body["menu_items"] == ["Resume recording"]
    qtbot.mouseClick(softkey(mpp, "ResumeRec"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.indicator("alice", "mpp") == "recording", timeout=3000)

    qtbot.mouseClick(mpp.findChild(QPushButton, "mpp_alice_hold"), Qt.LeftButton)
    body = agree("held", lambda: "On hold" in mpp.screen_text())
    assert mpp_dev(body)["softkeys"] == ["Resume", "End call", "New call", "Transfer"]
    assert "resume" in [b["name"] for b in window(body)["buttons"]]
    qtbot.mouseClick(app.findChild(QToolButton, "webex_alice_resume"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.call_state("bob") == "connected", timeout=3000)

    sim.dial("carol", "1001")
    body = agree("call waiting", lambda: "Call waiting" in mpp.screen_text())
    assert mpp_dev(body)["softkeys"] == ["Answer", "Decline", "End call", "Hold"]
    assert mpp_dev(body)["screen"]["subtitle"] == "Waiting: Carol Kowalska (1003)"
    assert window(body)["waiting"] == "Carol Kowalska (1003) is calling" and body["waiting"]["state"] == "ringing"
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_waiting_answer"), Qt.LeftButton)
    body = agree("two calls", lambda: "Bob Jones on hold" in mpp.screen_text()
                 and sim.call_state("carol") == "connected" and mpp.recording_icon() == "recording")
    assert window(body)["caller"] == "Carol Kowalska"
    qtbot.mouseClick(softkey(mpp, "End call"), Qt.LeftButton)           # carol leaves; bob stays held
    qtbot.waitUntil(lambda: sim.call_state("carol") == "ended", timeout=3000)
    qtbot.waitUntil(lambda: (mpp.refresh(), "Resume" in mpp.softkey_labels())[1], timeout=3000)
    qtbot.mouseClick(softkey(mpp, "Resume"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.call_state("bob") == "connected", timeout=3000)

    # consult transfer from the MPP: Transfer, the number, Transfer
    qtbot.mouseClick(mpp.findChild(QPushButton, "mpp_alice_transfer"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.call_state("bob") == "held", timeout=3000)
    for d in "1004":
        qtbot.mouseClick(mpp.findChild(QPushButton, f"mpp_alice_key_{d}"), Qt.LeftButton)
    qtbot.mouseClick(softkey(mpp, "Transfer"), Qt.LeftButton)
    sim.wait_for("dave", "ringing", 3)
    body = agree("consult ringing", lambda: "Consult: ringing" in mpp.screen_text())
    assert mpp_dev(body)["softkeys"] == ["Transfer", "Cancel", "End call"]
    assert window(body)["state"] == "Bob Jones on hold"
    sim.answer("dave")
    body = agree("consulting", lambda: "Consulting" in mpp.screen_text() and mpp.recording_icon() == "recording")
    assert mpp_dev(body)["screen"]["subtitle"] == "Bob Jones on hold"
    assert window(body)["state"] == "Consulting · Bob Jones on hold"
    # the API's softkey press is checked against the same keys: Hold is not offered while consulting
    r = api.post(f"{api.base}/devices/alice/softkey", json={"key": "Hold"}, timeout=10)
    assert r.status_code == 409 and "shown: Transfer, Cancel, End call" in r.json()["message"]
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_transfer_cancel"), Qt.LeftButton)
    qtbot.waitUntil(lambda: sim.call_state("dave") == "ended" and sim.call_state("bob") == "connected",
                    timeout=4000)

    # conference from the Webex App: Transfer, the number, Add to call; Merge on the MPP
    qtbot.waitUntil(lambda: (app.refresh(), app.transfer_button.isEnabled())[1], timeout=3000)
    qtbot.mouseClick(app.findChild(QToolButton, "webex_alice_transfer"), Qt.LeftButton)
    qtbot.keyClicks(app.findChild(QLineEdit, "webex_alice_transfer_field"), "1003")
    qtbot.mouseClick(app.findChild(QPushButton, "webex_alice_conference_add"), Qt.LeftButton)
    sim.wait_for("carol", "ringing", 3)
    sim.answer("carol")
    body = agree("conference consult", lambda: mpp.softkey_labels() == ["Conference", "Cancel", "End call"]
                 and sim.call_state("carol") == "connected")
    assert [b["name"] for b in window(body)["buttons"]][-3:] == ["conference_merge", "transfer_cancel", "end"]
    qtbot.mouseClick(softkey(mpp, "Conference"), Qt.LeftButton)
    body = agree("conference", lambda: "Bob Jones, Carol Kowalska" in mpp.screen_text()
                 and mpp.recording_icon() == "recording" and app.indicator_state() == "recording")
    assert mpp_dev(body)["screen"]["state"] == "Conference" and mpp_dev(body)["softkeys"][-1] == "End call"
    assert window(body)["caller"] == "Conference" and window(body)["number"] == "Bob Jones, Carol Kowalska"

    qtbot.mouseClick(softkey(mpp, "End call"), Qt.LeftButton)           # the host leaving ends it
    sim.wait_for("bob", "ended", 3)
    sim.wait_for("carol", "ended", 3)
    body = agree("ended", lambda: mpp.softkey_labels() == ["Redial", "New call"]
                 and app.stack.currentWidget() is app.idle_page)
    assert body["call_state"] == "ended" and window(body)["idle_note"].startswith("Call with ")
    assert walked == ["idle", "ringing", "connected", "muted", "paused", "held", "call waiting", "two calls",
                      "consult ringing", "consulting", "conference consult", "conference", "ended"]


# ----- the model alone ------------------------------------------------------------------------
def call(state="connected", **extra) -> dict:
    return {"call": "c1", "state": state, "direction": "in", "remote": {"user": "1002", "name": "Bob Jones"},
            **extra}


def view(state="connected", c=None, **kw) -> LineView:
    c = call(state) if c is None and state not in ("idle", "down") else c
    v = LineView(line="alice", line_name="Alice Smith", state=state, call=c, **kw)
    if c:
        v.name, v.number = "Bob Jones", "1002"
    return v


@pytest.mark.parametrize("v, entry, keys", [
    (view("down"), Entry(), ["Restart"]),
    (view("idle"), Entry(), ["Redial", "New call"]),
    (view("idle"), Entry(composing=True), ["Call", "Delete", "Cancel"]),
    (view("idle"), Entry(dial_string="10"), ["Call", "Delete", "Cancel"]),
    (view("ringing"), Entry(), ["Answer", "Decline"]),
    (view("dialing", call("dialing", direction="out")), Entry(), ["End call"]),
    (view(rec_softkeys=["PauseRec"]), Entry(), ["PauseRec", "End call", "Hold", "Transfer", "Conference"]),
    (view("held", call("held", held_by="local")), Entry(), ["Resume", "End call", "New call", "Transfer"]),
    (view("held", call("held", held_by="remote")), Entry(), ["End call", "New call", "Transfer"]),
    (view("held"), Entry(pending="transfer", dial_string="1"), ["Transfer", "Delete", "Cancel"]),
    (view("held"), Entry(pending="conference"), ["Conference", "Delete", "Cancel"]),
    (view("held", call("dialing", consult_for="c0")), Entry(), ["Transfer", "Cancel", "End call"]),
    (view(c=call(consult_for="c0", consult_kind="conference")), Entry(), ["Conference", "Cancel", "End call"]),
    (view(c=call(conference="c1"), rec_softkeys=["StopRec"]), Entry(), ["StopRec", "End call"]),
    (view(waiting=call("ringing", call="c2")), Entry(), ["Answer", "Decline", "End call", "Hold"]),
    (view("held", waiting=call("ringing", call="c2")), Entry(), ["Answer", "Decline", "Resume", "End call"]),
])
def test_mpp_softkeys_per_state(v, entry, keys):
    assert mpp_softkeys(v, entry) == keys


def test_mpp_screen_texts():
    assert (mpp_screen(view("down")).state, mpp_screen(view("down")).title) == ("Line down", "No service")
    assert mpp_screen(view("idle")).clock
    s = mpp_screen(view(waiting=call("ringing", call="c2"), waiting_remote=("Carol Kowalska", "1003")))
    assert (s.state, s.title, s.subtitle) == ("Call waiting", "Bob Jones", "Waiting: Carol Kowalska (1003)")
    s = mpp_screen(view(held_other=call("held", call="c0"), held_other_name="Dave Wilson"))
    assert (s.state, s.subtitle) == ("Connected", "Dave Wilson on hold")
    s = mpp_screen(view("held", call("dialing", consult_for="c0"), consult_held={"call": "c0"},
                        consult_held_name="Dave Wilson"))
    assert (s.state, s.subtitle) == ("Consult: ringing", "Dave Wilson on hold")
    s = mpp_screen(view(c=call(conference="c1"), member_names=["Bob Jones", "Carol Kowalska"]))
    assert (s.state, s.title, s.subtitle) == ("Conference", "Conference", "Bob Jones, Carol Kowalska")
    s = mpp_screen(view("ended", call("ended", reason="busy")))
    assert s.state == "Call ended (busy)" and s.title == "Bob Jones"
    s = mpp_screen(view("held"), Entry(pending="transfer", dial_string="100"))
    assert s.subtitle == "Transfer to: 100"
    s = mpp_screen(view("idle"), Entry(composing=True))
    assert (s.state, s.title) == ("New call", "Enter number")
    assert mpp_screen(view(c=call(connected_at=100.0))).timer_since == 100.0


def test_webex_window_pages_labels_and_buttons():
    w = webex_window(view("ringing"), owner="alice")
    assert (w.page, w.caller, w.toast_title) == ("toast", "Bob Jones", "Incoming call")
    other = view("ringing")
    other.line, other.line_name = "sales", "Sales Line"
    assert webex_window(other, owner="alice").toast_title == "Incoming call on Sales Line"
    consult = view("held", call("dialing", consult_for="c0", consult_kind="conference"),
                   consult_held={"call": "c0"}, consult_held_name="Bob Jones")
    w = webex_window(consult, owner="alice")
    assert w.state == "Bob Jones on hold"
    assert [(b.name, b.enabled) for b in w.buttons] == [
        ("mute", False), ("hold", False), ("transfer", False), ("more", False),
        ("conference_merge", False), ("transfer_cancel", True), ("end", True)]
    held = webex_window(view("held", call("held", held_by="remote")), owner="alice")
    assert held.state == "Held by the other party" and held.button("hold") and not held.button("resume")
    muted = webex_window(view(muted=True), owner="alice")
    assert muted.state == "Muted" and muted.button("mute").label == "Unmute"
    ended = view("ended", call("ended", ended_at=1000.0))
    assert webex_window(ended, owner="alice", now=1005.0).idle_note == "Call with Bob Jones ended"
    assert webex_window(ended, owner="alice", now=1011.0).idle_note == ""
    assert webex_window(view("down"), owner="alice").button("call").enabled is False


def test_one_remote_of_names_a_party_as_the_phone_does():
    class Sim:     # only the directory look-up remote_of needs
        def party_by_number(self, number):
            return type("P", (), {"name": "Carol Kowalska"})() if number == "1003" else None
    assert device_view.remote_of(Sim(), None) == ("", "")
    assert device_view.remote_of(Sim(), {"remote": {"user": "1002", "name": "Bob"}}) == ("Bob", "1002")
    assert device_view.remote_of(Sim(), {"remote": {"user": "1003"}}) == ("Carol Kowalska", "1003")
    assert device_view.remote_of(Sim(), {"remote": {"user": "+4930"}}) == ("+4930", "+4930")
    assert device_view.elapsed(65) == "01:05" and device_view.elapsed(3723) == "1:02:03"
