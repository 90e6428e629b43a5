"""Issue 14 (2): the recorder of clicks. A session clicked on the faces and in Control Hub is saved
as a scenario with the time between actions and the `expect` steps of what the devices showed;
`mppsim run` replays it and passes (R-UX-2, R-UX-3: Record, PauseRec, ResumeRec on bob's MPP)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QComboBox, QPushButton

from mppsim.app.scenario import load_scenario
from mppsim.app.scenario_recorder import set_patch, settings_diff
from mppsim.app.simulator import Simulator
from tests.helpers import ROOT
from mppsim.ui.main_window import MainWindow

pytest.importorskip("pytestqt")

DEMO_ORG = ROOT / "examples" / "demo-org.yaml"


# ----- pure: what a `set` step sends ------------------------------------------------------------


def recording_tap(sim):
    """A tap on the faces' intents wired to a click recorder, as the GUI's Record scenario does."""
    from mppsim.app.scenario_recorder import ScenarioRecorder
    from mppsim.ui.action_tap import ActionTap
    tap = ActionTap(sim)
    rec = ScenarioRecorder(sim)
    tap.listen(lambda phase, intent, args: rec.before_action(intent, args) if phase == "before"
               else rec.action(intent, args))
    return tap, rec

def test_set_patch_sends_only_what_changed_and_only_enabled_false_to_turn_off():
    before = {"enabled": True, "record": "Never", "repeat": {"enabled": False, "interval": 20},
              "serviceProvider": "acme", "externalIdentifier": "carol"}
    after = {**before, "record": "Always", "repeat": {"enabled": True, "interval": 20},
             "externalIdentifier": "someone-else"}
    assert settings_diff(before, after) == {"record": "Always", "repeat": {"enabled": True}}
    assert set_patch(before, {**after, "enabled": False}) == {"enabled": False}     # R-USR-1
    assert set_patch({**before, "enabled": False}, after) == {
        "enabled": True, "record": "Always", "repeat": {"enabled": True, "interval": 20}}
    assert set_patch(before, before) == {}


def test_r_org_2_r_loc_1_org_and_location_changes_become_set_steps_that_rebuild_the_same_settings(tmp_path):
    """Organisation and location changes (R-PRV-7 terms + provider, R-PRV-6 an account, R-LOC-1,
    R-CMP-1 location-specific compliance, R-ORG-2 provider None with its confirmation), made
    before and while recording, become `set: {org: true, ...}` / `set: {location: ..., ...}`
    steps; a valid scenario whose set steps, run on a fresh org, give the same settings."""
    from mppsim.app.scenario import Runner
    from mppsim.app.scenario_recorder import ScenarioRecorder
    live = Simulator(DEMO_ORG, run_dir=tmp_path / "live")        # not started: settings only
    live.settings.accept_terms("Imagicle")                       # before recording started
    live.settings.set_org({"provider": "Imagicle"})
    rec = ScenarioRecorder(live)
    live.settings.subscribe(rec.settings_changed)
    live.settings.set_location("wro", {"provider": "None", "compliance": {"inboundPSTNCallsEnabled": True}})
    account = {**{k: v for k, v in zip(("serviceProvider", "externalGroup", "externalIdentifier"),
                                       live.settings.platform_info("alice"))}, "externalGroup": "wrong"}
    live.settings.set_provider_account("Imagicle", "alice", account)
    live.settings.set_org({"tier": "Team", "compliance": {"outboundPSTNCallsEnabled": True}})
    live.settings.put_person("carol", {"record": "Always"}, view="control_hub")
    live.settings.set_location("wro", {"provider": "organisation"})
    live.settings.set_org({"provider": "None"}, confirm_off=True)
    rec.stop()
    path = rec.save(tmp_path / "settings.yaml")
    load_scenario(path)                                          # a valid scenario
    steps = [s["set"] for s in yaml.safe_load(path.read_text())["steps"]]
    alice = live.settings.get_org()["accounts"]["Imagicle"]["users"]["alice"]
    assert alice["externalGroup"] == "wrong"
    assert steps == [
        {"org": True, "recording": {"provider": "Imagicle", "termsAccepted": ["Dubber", "Imagicle"]}},
        {"location": "wro", "recording": {"provider": "None", "compliance": {
            **live.settings.get_org()["compliance"], "inboundPSTNCallsEnabled": True,
            "outboundPSTNCallsEnabled": False}}},
        {"org": True, "recording": {"accounts": {"Imagicle": {"users": {"alice": alice}}}}},
        {"org": True, "recording": {"tier": "Team", "compliance": {"outboundPSTNCallsEnabled": True}}},
        {"user": "carol", "callRecording": {"record": "Always"}},
        {"location": "wro", "recording": {"provider": "organisation"}},
        {"org": True, "recording": {"provider": "None", "confirmOff": True}},     # R-ORG-2
    ]
    assert not rec.notes and "# note:" not in path.read_text()
    replay = Simulator(DEMO_ORG, run_dir=tmp_path / "replay")
    runner = Runner(replay, load_scenario(path))
    for step in load_scenario(path).steps:
        runner.do_set(step.args)
    assert replay.settings.get_org() == live.settings.get_org()
    for loc in ("hq", "wro"):
        assert replay.settings.get_location(loc) == live.settings.get_location(loc)
    for line in replay.settings.lines():
        assert replay.settings.get_person(line) == live.settings.get_person(line)


def test_set_org_and_location_steps_are_validated_and_a_bad_one_changes_nothing(tmp_path):
    from mppsim.app.scenario import Runner, ScenarioError
    from mppsim.app.simulator import SimulatorError
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"org": str(DEMO_ORG), "steps": [
        {"set": {"org": "yes please", "recording": {"provider": "Foo"}}},
        {"set": {"location": "nowhere", "recording": {"failureBehavior": "x"}}},
        {"set": {"org": True, "callRecording": {"record": "Always"}}},
        {"set": {"user": "bob", "location": "hq", "recording": {"provider": "Dubber"}}},
        {"press": {"who": "bob", "key": "Record", "within": "soon"}},
    ]}))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "steps[1].set.org: 'yes please' not allowed; allowed: true" in text
    assert "steps[1].set.recording.provider: 'Foo' is not allowed; allowed: Dubber, Imagicle, CallCabinet, Webex, None" in text
    assert "steps[2].set.location: 'nowhere' is not a location of the org; allowed: hq, wro" in text
    assert "steps[2].set.recording.failureBehavior: 'x' is not allowed; allowed: organisation, " in text
    assert "steps[3].set.callRecording: not allowed with org; the org's settings go under recording" in text
    assert "steps[4].set: give exactly one of user, line, org (true) or location; got user, location" in text
    assert "steps[5].press.within: 'soon' is not a duration" in text
    # valid in shape, refused by the rules (Imagicle's terms not accepted, R-PRV-7): nothing applies
    sim = Simulator(DEMO_ORG, run_dir=tmp_path / "run")
    before = sim.settings.get_org()
    runner = Runner(sim, load_scenario(_write(tmp_path, [{"wait": 0}])))
    with pytest.raises(SimulatorError, match="Imagicle"):
        runner.do_set({"org": True, "recording": {"tier": "Team", "provider": "Imagicle"}})
    assert sim.settings.get_org() == before
    with pytest.raises(SimulatorError, match="Imagicle"):
        runner.do_set({"location": "hq", "recording": {"failureBehavior": "END_CALL_WITH_ANNOUNCEMENT",
                                                      "provider": "Imagicle"}})
    assert sim.settings.get_location("hq")["failureBehavior"] == "organisation"


def _write(tmp_path, steps):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({"org": str(DEMO_ORG), "steps": steps}))
    return path


def test_recorder_merges_keypad_digits_and_replays_hold_menu_decline(sim, tmp_path):
    """Without the window: intents through the ActionTap (as the faces send them) become steps;
    *, 4, 8 typed on a keypad are one feature code step (R-UX-5); the file replays on the same
    org: alice (Always with Pause/Resume) pauses by *48 and resumes from the Webex menu (R-UX-4)."""
    from mppsim.app.scenario import Runner
    tap, rec = recording_tap(sim)
    tap.dial("bob", "1001")
    sim.wait_for("alice", "ringing", 3)
    tap.answer("alice")
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
    tap.hold("alice")
    sim.wait_for("alice", "held", 3)
    sim.wait_for("bob", "held", 3)
    tap.resume("alice")
    sim.wait_for("alice", "connected", 3)
    sim.wait_for("bob", "connected", 3)
    for digit in "*48":
        tap.dtmf("alice", digit)
    sim.wait_until(lambda: sim.indicator("alice") == "paused", 3, "alice paused")
    assert not tap.press("alice", "Record")            # not offered: refused, so not recorded
    tap.menu("alice", "Resume recording")
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording again")
    tap.hangup("bob")
    sim.wait_for("alice", "ended", 3)
    tap.dial("+14155550100", "1003")
    sim.wait_for("carol", "ringing", 3)
    tap.decline("carol")
    sim.wait_for("+14155550100", "ended", 3)
    rec.stop()
    path = rec.save(tmp_path / "keys.yaml")
    actions = [s for s in yaml.safe_load(path.read_text())["steps"] if next(iter(s)) not in ("wait", "expect")]
    assert actions == [
        {"dial": {"from": "bob", "to": "1001"}}, {"answer": {"who": "alice"}}, {"hold": {"who": "alice"}},
        {"resume": {"who": "alice"}}, {"dtmf": {"who": "alice", "digits": "*48"}},
        {"menu": {"who": "alice", "item": "Resume recording"}}, {"hangup": {"who": "bob"}},
        {"dial": {"from": "+14155550100", "to": "1003"}}, {"decline": {"who": "carol"}}]
    assert {"expect": {"who": "alice", "indicator": "paused", "softkeys": ["ResumeRec"],
                       "menu": ["Resume recording"], "recording": "paused"}} in yaml.safe_load(path.read_text())["steps"]
    result = Runner(sim, load_scenario(path)).run()
    assert result.passed, [(s.index, s.step, s.error) for s in result.steps if s.status != "passed"]


# ----- the GUI ------------------------------------------------------------------------------

@pytest.fixture
def gui(qtbot, tmp_path):
    sim = Simulator(DEMO_ORG, run_dir=tmp_path / "run").start()
    w = MainWindow(sim, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.resize(1920, 1080)
    w.show()
    yield w
    sim.stop()


def softkey(phone, label):
    for i in range(4):
        b = phone.findChild(QPushButton, f"{phone.objectName()}_softkey_{i}")
        if b is not None and b.text() == label:
            return b
    return None


def click_softkey(qtbot, phone, label):
    qtbot.waitUntil(lambda: softkey(phone, label) is not None, timeout=4000)
    qtbot.mouseClick(softkey(phone, label), Qt.LeftButton)


def hard_key(qtbot, phone, name):
    qtbot.mouseClick(phone.findChild(QPushButton, f"{phone.objectName()}_{name}"), Qt.LeftButton)


def choose(combo, value):
    combo.setCurrentIndex(combo.findData(value))
    combo.activated.emit(combo.currentIndex())


def test_a_recorded_session_of_clicks_replays_with_mppsim_run(qtbot, gui, tmp_path):
    """Clicks on the faces (R-UX-3 recording softkeys, the consult transfer, Mute, the Messages
    key) and Control Hub changes of a user, the organisation (R-PRV-2 tier) and a location
    (R-ORG-3 failure behaviour) become steps, and `mppsim run` passes on the saved file."""
    w = gui
    bob, dave, alice = w.users["bob"].phone, w.users["dave"].phone, w.users["alice"].phone
    w.record_action.trigger()                          # menu Scenario > Record scenario
    assert w.recorder is not None and "Recording scenario" in w.recording_label.text()
    # bob dials dave on his MPP keypad, dave answers with the Answer softkey
    for digit in "1004":
        qtbot.mouseClick(bob.findChild(QPushButton, f"mpp_bob_key_{digit}"), Qt.LeftButton)
    click_softkey(qtbot, bob, "Call")
    click_softkey(qtbot, dave, "Answer")
    # bob (On Demand with User Initiated Start) records, pauses, resumes
    click_softkey(qtbot, bob, "Record")
    click_softkey(qtbot, bob, "PauseRec")
    qtbot.wait(400)
    click_softkey(qtbot, bob, "ResumeRec")
    qtbot.waitUntil(lambda: softkey(bob, "PauseRec") is not None, timeout=4000)
    # dave mutes and unmutes with the Mute key
    hard_key(qtbot, dave, "mute")
    qtbot.waitUntil(lambda: w.sim.muted("dave"), timeout=3000)
    hard_key(qtbot, dave, "mute")
    qtbot.waitUntil(lambda: not w.sim.muted("dave"), timeout=3000)
    # bob's consult transfer: Transfer (dave held), 1001, Transfer; alice answers; Transfer again
    hard_key(qtbot, bob, "transfer")
    qtbot.waitUntil(lambda: w.sim.call_state("dave") == "held", timeout=3000)
    for digit in "1001":
        qtbot.mouseClick(bob.findChild(QPushButton, f"mpp_bob_key_{digit}"), Qt.LeftButton)
    click_softkey(qtbot, bob, "Transfer")
    click_softkey(qtbot, alice, "Answer")
    qtbot.waitUntil(lambda: softkey(bob, "Transfer") is not None and w.sim.call_state("alice") == "connected",
                    timeout=4000)
    qtbot.wait(300)
    click_softkey(qtbot, bob, "Transfer")
    qtbot.waitUntil(lambda: w.sim.call_state("bob") == "ended" and w.sim.call_state("dave") == "connected",
                    timeout=4000)
    qtbot.wait(300)
    click_softkey(qtbot, alice, "End call")
    qtbot.waitUntil(lambda: w.sim.call_state("dave") == "ended", timeout=4000)
    # Control Hub: carol Never -> On Demand with User Initiated Start; the organisation's Dubber
    # tier Go -> Team; Wroclaw's failure behaviour -> end the call with an announcement
    hub = w.control_hub
    w.tabs.setCurrentWidget(hub)
    hub.tabs.setCurrentWidget(hub.users_page)
    hub.users_page.select("carol")
    combo = hub.users_page.findChild(QComboBox, "ch_user_record")
    combo.setCurrentIndex(combo.findData("On Demand with User Initiated Start"))
    qtbot.mouseClick(hub.users_page.findChild(QPushButton, "ch_save"), Qt.LeftButton)
    assert w.sim.call_recording("carol")["record"] == "On Demand with User Initiated Start"
    hub.tabs.setCurrentWidget(hub.org_page)
    choose(hub.org_page.findChild(QComboBox, "ch_org_tier"), "Team")
    qtbot.mouseClick(hub.org_page.findChild(QPushButton, "ch_org_save"), Qt.LeftButton)
    assert w.sim.settings.get_org()["tier"] == "Team"
    hub.tabs.setCurrentWidget(hub.locations_page)
    choose(hub.locations_page.findChild(QComboBox, "ch_loc_select"), "wro")
    choose(hub.locations_page.findChild(QComboBox, "ch_loc_failure"), "END_CALL_WITH_ANNOUNCEMENT")
    qtbot.mouseClick(hub.locations_page.findChild(QPushButton, "ch_loc_save"), Qt.LeftButton)
    assert w.sim.settings.get_location("wro")["failureBehavior"] == "END_CALL_WITH_ANNOUNCEMENT"
    # alice's Messages key calls her mailbox; she hangs up
    hard_key(qtbot, alice, "messages")
    qtbot.waitUntil(lambda: w.sim.call_state("alice") == "connected", timeout=4000)
    qtbot.wait(300)
    click_softkey(qtbot, alice, "End call")
    qtbot.waitUntil(lambda: w.sim.call_state("alice") == "ended", timeout=4000)
    qtbot.wait(300)
    saved = w.stop_recording(tmp_path / "clicked.yaml")
    assert w.recorder is None and w.recording_label.text() == ""

    data = yaml.safe_load(saved.read_text())
    steps = data["steps"]
    actions = [s for s in steps if next(iter(s)) not in ("wait", "expect")]
    assert actions == [
        {"dial": {"from": "bob", "to": "1004"}},
        {"answer": {"who": "dave"}},
        {"press": {"who": "bob", "key": "Record"}},
        {"press": {"who": "bob", "key": "PauseRec"}},
        {"press": {"who": "bob", "key": "ResumeRec"}},
        {"mute": {"who": "dave"}},
        {"unmute": {"who": "dave"}},
        {"hold": {"who": "bob"}},                      # the Transfer key holds the call first
        {"consult": {"who": "bob", "to": "1001"}},
        {"answer": {"who": "alice"}},
        {"complete_transfer": {"who": "bob"}},
        {"hangup": {"who": "alice"}},
        {"set": {"user": "carol", "callRecording": {"record": "On Demand with User Initiated Start"}}},
        {"set": {"org": True, "recording": {"tier": "Team"}}},
        {"set": {"location": "wro", "recording": {"failureBehavior": "END_CALL_WITH_ANNOUNCEMENT"}}},
        {"dial": {"from": "alice", "to": "*86"}},
        {"hangup": {"who": "alice"}},
    ]
    assert "# note:" not in saved.read_text()
    expects = [s["expect"] for s in steps if "expect" in s]
    assert {"who": "dave", "muted": True} in expects                 # seen before the unmute
    assert {"who": "dave", "call": "ringing"} in expects
    assert any(e["who"] == "bob" and e.get("indicator") == "paused" and e.get("softkeys") == ["ResumeRec", "StopRec"]
               for e in expects)
    assert any(e["who"] == "dave" and e.get("indicator") == "recording" for e in expects)
    assert any(e == {"who": "bob", "call": "ended"} for e in expects)
    assert any("wait" in s for s in steps)             # the time between actions
    load_scenario(saved)                               # a valid scenario file

    out = subprocess.run([sys.executable, "-m", "mppsim.cli", "run", str(saved), "--run-dir", str(tmp_path / "replay")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, saved.read_text() + out.stdout[-3000:] + out.stderr[-2000:]
    assert f"all {len(steps)} steps passed" in out.stdout


# ----- calls already up when recording starts -------------------------------------------------

def test_calls_up_before_recording_are_recreated_first_and_the_replay_passes(sim, tmp_path):
    """Calls already up become the scenario's first steps: bob (On Demand with User Initiated
    Start) in a call with dave (Always), recorded then paused by bob (R-UX-3); a PSTN caller on
    hold by alice (Always with Pause/Resume); dave muted. The replay reaches the same state
    (checked by the expect steps written after the setup) and then replays the clicks."""
    from mppsim.app.scenario import Runner
    from tests.helpers import connect, hang_up_everything
    connect(sim, "bob", "dave", "1004")
    sim.wait_until(lambda: "Record" in sim.softkeys("bob"), 3, "bob offered Record")
    assert sim.press("bob", "Record")
    sim.wait_until(lambda: "PauseRec" in sim.softkeys("bob"), 3, "bob recording")
    assert sim.press("bob", "PauseRec")
    sim.wait_until(lambda: sim.indicator("bob") == "paused", 3, "bob paused")
    sim.mute("dave")
    connect(sim, "+14155550100", "alice", "1001")
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")
    sim.hold("alice")
    sim.wait_for("alice", "held", 3)
    # and the far end has seen the hold too: the recorder writes what each device shows when
    # it starts (CI once caught the PSTN side still "connected" and wrote that)
    sim.wait_for("+14155550100", "held", 3)

    tap, rec = recording_tap(sim)
    setup = [s for s in rec.steps if next(iter(s)) != "expect"]
    assert setup == [
        {"dial": {"from": "bob", "to": "1004"}}, {"answer": {"who": "dave"}},
        {"press": {"who": "bob", "key": "Record", "within": "3s"}},
        {"press": {"who": "bob", "key": "PauseRec", "within": "3s"}},
        {"dial": {"from": "+14155550100", "to": "1001"}}, {"answer": {"who": "alice"}},
        {"hold": {"who": "alice"}}, {"mute": {"who": "dave"}}]
    assert {"expect": {"who": "bob", "call": "connected", "indicator": "paused", "softkeys": ["ResumeRec", "StopRec"],
                       "recording": "paused", "within": "3s"}} in rec.steps
    assert any(s.get("expect", {}).get("who") == "dave" and s["expect"].get("muted") is True for s in rec.steps)
    assert not rec.notes
    tap.resume("alice")
    sim.wait_for("alice", "connected", 3)
    tap.mute("dave", False)
    tap.press("bob", "ResumeRec")
    sim.wait_until(lambda: sim.indicator("bob") == "recording", 3, "bob recording again")
    tap.hangup("bob")
    sim.wait_for("dave", "ended", 3)
    rec.stop()
    path = rec.save(tmp_path / "already-up.yaml")
    assert "calls were up" not in path.read_text()
    hang_up_everything(sim)
    sim.unmute("dave") if sim.muted("dave") else None
    result = Runner(sim, load_scenario(path)).run()
    assert result.passed, [(s.index, s.step, s.args, s.error) for s in result.steps if s.status != "passed"]


def test_conference_and_cancelled_consult_through_the_tap_become_steps_that_replay(sim, tmp_path):
    """The conference as a person clicks it (start_conference, the party answers, merge_conference;
    End call on the host hangs up each member call: no look in between) and a consult cancelled
    (cancel_transfer) are recorded as steps and replay on the same org."""
    from mppsim.app.scenario import Runner
    tap, rec = recording_tap(sim)
    tap.dial("bob", "1001")
    sim.wait_for("alice", "ringing", 3)
    tap.answer("alice")
    sim.wait_for("bob", "connected", 3)
    sim.wait_until(lambda: sim.indicator("alice") == "recording", 3, "alice recording")   # as a person sees it
    tap.start_conference("alice", "1003")
    sim.wait_for("carol", "ringing", 3)
    tap.answer("carol")
    sim.wait_until(lambda: len([c for c in sim.live_calls("alice") if c["state"] == "connected"]) == 1
                   and sim.call_state("carol") == "connected", 3, "alice's call to carol connected")
    sim.wait_until(lambda: sim.recording_state("alice") != "pending", 3, "alice's recording under way")
    tap.merge_conference("alice")
    sim.wait_until(lambda: any(c.get("conference") for c in sim.live_calls("alice")), 3, "the conference")
    sim.wait_for("bob", "connected", 3)
    for c in sim.live_calls("alice"):              # the MPP's End call on the host
        tap.hangup("alice", c["call"])
    sim.wait_for("bob", "ended", 3)
    sim.wait_for("carol", "ended", 3)
    # as a person would, act again once alice's phone has settled: the recorder writes what the
    # devices show at the next action, and the conference's end passes through a moment where
    # the remaining call shows PauseRec (CI's shuffled pass caught that moment and wrote it)
    sim.wait_until(lambda: not sim.live_calls("alice") and not sim.softkeys("alice"), 3, "alice idle")
    tap.dial("bob", "1004")
    sim.wait_for("dave", "ringing", 3)
    tap.answer("dave")
    sim.wait_for("bob", "connected", 3)
    sim.wait_until(lambda: sim.indicator("dave") == "recording", 3, "dave recording")
    tap.start_transfer("bob", "1003")
    sim.wait_for("carol", "ringing", 3)
    tap.cancel_transfer("bob")
    sim.wait_until(lambda: sim.call_state("carol") == "ended" and sim.call_state("dave") == "connected", 3,
                   "back to dave")
    tap.hangup("dave")
    sim.wait_for("bob", "ended", 3)
    rec.stop()
    path = rec.save(tmp_path / "conference.yaml")
    steps = yaml.safe_load(path.read_text())["steps"]
    actions = [s for s in steps if next(iter(s)) not in ("wait", "expect")]
    assert actions == [
        {"dial": {"from": "bob", "to": "1001"}}, {"answer": {"who": "alice"}},
        {"start_conference": {"who": "alice", "to": "1003"}}, {"answer": {"who": "carol"}},
        {"merge_conference": {"who": "alice"}}, {"hangup": {"who": "alice"}}, {"hangup": {"who": "alice"}},
        {"dial": {"from": "bob", "to": "1004"}}, {"answer": {"who": "dave"}},
        {"consult": {"who": "bob", "to": "1003"}}, {"cancel_transfer": {"who": "bob"}}, {"hangup": {"who": "dave"}}]
    i = steps.index({"hangup": {"who": "alice"}})
    assert steps[i + 1] == {"hangup": {"who": "alice"}}       # no look between the member calls
    hang_up = Runner(sim, load_scenario(path))
    result = hang_up.run()
    assert result.passed, [(s.index, s.step, s.args, s.error) for s in result.steps if s.status != "passed"]
