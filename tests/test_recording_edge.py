"""The recording policy applied by the agents over real calls: what each device shows.

Effective settings are pushed to the agents directly here (the settings store is tested in
tests/test_settings*.py); calls are real SIP between agent processes.
"""
from __future__ import annotations

import time


from tests.helpers import connect
from mppsim.rules.effective import (ALWAYS, ALWAYS_PAUSE, NEVER, NOTIFY_BEEP, ON_DEMAND,
                                 ON_DEMAND_USER_START, Compliance, EffectiveSettings)


def push(sim, who, mode, **kw):
    p = sim.party(who)
    devices = tuple(d.split()[0] for d in p.devices)
    eff = EffectiveSettings(line_id=p.line, owner=p.agent, kind=p.kind, devices=devices,
                            enabled=mode != NEVER, mode=mode, provider="Dubber", **kw)
    sim.orch.request(p.agent, "set_recording", line=p.line, settings=eff.to_dict())




def until(sim, predicate, what):
    sim.wait_until(predicate, 2.0, what)


def test_r_usr_2_always_with_pause_resume_on_the_desk_phone(sim):
    """R-USR-2, R-UX-1, R-UX-3: PauseRec -> paused icon and ResumeRec; ResumeRec -> recording."""
    push(sim, "alice", ALWAYS_PAUSE, notification=NOTIFY_BEEP)
    push(sim, "bob", NEVER)
    connect(sim, "bob", "alice", "1001")
    until(sim, lambda: sim.indicator("alice") == "recording", "alice recording")
    assert sim.softkeys("alice") == ["PauseRec"]
    assert sim.menu_items("alice") == ["Pause recording"]
    assert sim.indicator("bob") == "none" and sim.softkeys("bob") == []
    assert sim.press("alice", "PauseRec") is True
    until(sim, lambda: sim.indicator("alice") == "paused" and sim.softkeys("alice") == ["ResumeRec"],
          "alice paused with ResumeRec")
    assert sim.recording_view("alice")["message"] == "Recording paused"
    beeps = [e for e in sim.network_events("alice", "announcement") if e["kind"] == "beep"]
    assert beeps and beeps[0]["to"] == ["local", "remote"]
    assert sim.menu("alice", "Resume recording") is True
    until(sim, lambda: sim.indicator("alice") == "recording", "alice recording again")
    ops = [e["op"] for e in sim.network_events("alice", "recorder")]
    assert ops[:3] == ["start", "pause", "metadata"] and "resume" in ops
    sim.hangup("bob")
    until(sim, lambda: sim.network_events("alice", "recorder")[-1]["op"] == "stop", "recording stopped")


def test_r_ux_5_feature_codes_from_the_keypad_do_what_the_keys_do(sim):
    """R-UX-5: *44 start, *48 pause, *49 resume, *45 stop, one key at a time as on the keypad."""
    push(sim, "dave", ON_DEMAND_USER_START)
    push(sim, "carol", NEVER)
    connect(sim, "dave", "carol", "1003")
    until(sim, lambda: sim.softkeys("dave") == ["Record"], "Record offered")
    steps = [("*44", "recording", ["PauseRec", "StopRec"]), ("*48", "paused", ["ResumeRec", "StopRec"]),
             ("*49", "recording", ["PauseRec", "StopRec"]), ("*45", "none", ["Record"])]
    for code, indicator, keys in steps:
        for digit in code:
            sim.dtmf("dave", digit)
        until(sim, lambda: (sim.indicator("dave"), sim.softkeys("dave")) == (indicator, keys), code)
    deadline = time.monotonic() + 4
    while sim.status("carol")["calls"][-1]["dtmf"] != "*4" * 4 and time.monotonic() < deadline:
        time.sleep(0.1)   # RFC 4733 digits take ~0.2 s each on the wire
    # the first two digits of each code reach the far end before the code is complete; the
    # completing digit is taken by the network
    assert sim.status("carol")["calls"][-1]["dtmf"] == "*4" * 4


def test_r_usr_2_always_shows_icon_but_no_keys_and_refuses_pause(sim):
    push(sim, "bob", ALWAYS)
    push(sim, "alice", NEVER)
    connect(sim, "alice", "bob", "1002")
    until(sim, lambda: sim.indicator("bob") == "recording", "bob recording")
    assert sim.softkeys("bob") == []
    assert sim.press("bob", "PauseRec") is False
    refused = sim.network_events("bob", "recording_refused")
    assert refused and "PauseRec is not offered in mode 'Always'" in refused[0]["why"]


def test_r_usr_2_both_parties_recorded_each_get_their_own_recording(sim):
    push(sim, "alice", ALWAYS)
    push(sim, "bob", ON_DEMAND)
    connect(sim, "alice", "bob", "1002")
    until(sim, lambda: sim.indicator("alice") == "recording", "alice recording")
    until(sim, lambda: sim.softkeys("bob") == ["Record"], "bob offered Record")
    assert sim.indicator("bob") == "none"     # plain On Demand: recorded provisionally, no icon
    sim.press("bob", "Record")
    until(sim, lambda: sim.indicator("bob") == "recording", "bob keeps his recording")
    starts = [e for who in ("alice", "bob") for e in sim.network_events(who, "recorder") if e["op"] == "start"]
    assert {e["agent"] for e in starts} == {"alice", "bob"}


def test_r_cmp_2_inbound_pstn_compliance_before_answer_in_the_callees_language(sim):
    push(sim, "carol", ALWAYS, compliance=Compliance(inbound_pstn=True), language="pl_pl")
    sim.dial("+14155550100", "1003")
    sim.wait_for("carol", "ringing", 3)
    until(sim, lambda: [e["kind"] for e in sim.network_events("carol", "announcement")] == ["compliance"],
          "compliance announcement while ringing")
    (ann,) = sim.network_events("carol", "announcement")
    assert ann["to"] == ["remote"] and ann["language"] == "pl_pl"
    sim.answer("carol")
    until(sim, lambda: sim.indicator("carol") == "recording", "carol recording")
    start = [e for e in sim.network_events("carol", "recorder") if e["op"] == "start"][0]
    assert start["detail"]["compliance_played"] is True


def test_settings_pushed_mid_call_apply_to_the_next_call_only(sim):
    push(sim, "alice", NEVER)
    connect(sim, "alice", "bob", "1002")
    push(sim, "alice", ALWAYS)
    time.sleep(0.2)
    assert sim.indicator("alice") == "none"
    sim.hangup("alice")
    sim.wait_for("bob", "ended", 3)
    connect(sim, "alice", "bob", "1002")
    until(sim, lambda: sim.indicator("alice") == "recording", "alice recording on the next call")


def test_r_cmp_3_compliance_not_replayed_after_a_blind_transfer(sim):
    """R-CMP-3: the customer heard it at alice; transferred to dave, nobody plays it again."""
    for who in ("alice", "dave"):
        push(sim, who, ALWAYS, compliance=Compliance(inbound_pstn=True))
    sim.dial("+14155550100", "1001")
    sim.wait_for("alice", "ringing", 3)
    until(sim, lambda: [e["kind"] for e in sim.network_events("alice", "announcement")] == ["compliance"],
          "compliance at alice")
    sim.answer("alice")
    sim.wait_for("alice", "connected", 3)
    sim.transfer("alice", "1004")
    sim.wait_for("dave", "ringing", 3)
    sim.answer("dave")
    sim.wait_for("dave", "connected", 3)
    until(sim, lambda: sim.indicator("dave") == "recording", "dave recording")
    assert [e for e in sim.network_events("dave", "announcement") if e["kind"] == "compliance"] == []
    start = [e for e in sim.network_events("dave", "recorder") if e["op"] == "start"][0]
    assert start["detail"]["compliance_played"] is True     # R-CMP-6: the provider is told it played


def test_r_usr_7_platform_mismatch_fails_recording_until_the_provider_account_is_fixed(tmp_path):
    """R-PRV-6 + R-USR-7 over real calls: Imagicle (manual provisioning) records alice only once
    its account for her carries her platform info; a wrong External Group makes it fail."""
    from mppsim.app.simulator import Simulator
    from tests.helpers import demo_org
    with Simulator(demo_org(), run_dir=tmp_path) as sim:
        sim.settings.accept_terms("Imagicle")
        sim.settings.set_org({"provider": "Imagicle"})
        info = sim.call_recording("alice")
        account = {"serviceProvider": info["serviceProvider"], "externalGroup": "wrong-group",
                   "externalIdentifier": info["externalIdentifier"]}
        sim.settings.set_provider_account("Imagicle", "alice", account)
        connect(sim, "bob", "alice", "1001")
        until(sim, lambda: sim.recording_state("alice") == "failed", "recording failed")
        assert sim.recording_view("alice")["message"] == "Recording failed"
        assert sim.indicator("alice") == "none" and sim.softkeys("alice") == []
        stop = sim.network_events("alice", "recorder")[-1]
        assert stop["op"] == "stop" and "externalGroup" in stop["detail"]["failed"]
        assert sim.call_state("alice") == "connected"   # PROCEED_WITH_CALL_NO_ANNOUNCEMENT
        sim.hangup("bob")
        sim.wait_for("alice", "ended", 3)
        sim.settings.set_provider_account("Imagicle", "alice", {**account, "externalGroup": info["externalGroup"]})
        connect(sim, "bob", "alice", "1001")
        until(sim, lambda: sim.indicator("alice") == "recording", "recording after the fix")
