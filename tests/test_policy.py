"""The per-call recording policy (src/mppsim/rules/policy.py): pure logic, table-driven + hypothesis.

Each test names the spec rules it proves (docs/recording-rules.md).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from mppsim.rules.effective import (ALWAYS, ALWAYS_PAUSE, MODES, NEVER, NOTIFY_ANNOUNCEMENT,
                                 NOTIFY_BEEP, ON_DEMAND, ON_DEMAND_USER_START, Compliance,
                                 EffectiveSettings, Selective)
from mppsim.rules.policy import (FEATURE_CODES, MODE_KEYS, PAUSE_REC, RECORD, RESUME_REC, STOP_REC,
                              CallAction, CallInfo, CallPolicy, Play, RecorderAction, Refused)

BOTH = ("mpp", "webex-app")


def eff(mode=ALWAYS, devices=BOTH, kind="user", **kw) -> EffectiveSettings:
    return EffectiveSettings(line_id="alice", owner="alice", kind=kind, devices=devices, enabled=mode != NEVER,
                             mode=mode, provider="Dubber", **kw)


# call types of the issue: internal, inbound PSTN, outbound PSTN, virtual line on a desk phone,
# virtual line on the Webex App (which supports Always only, R-VL-3)
CALL_TYPES = {
    "internal": (CallInfo("out", "internal"), {}),
    "pstn-in": (CallInfo("in", "pstn"), {}),
    "pstn-out": (CallInfo("out", "pstn"), {}),
    "vl-mpp": (CallInfo("in", "internal"), {"kind": "virtual_line", "devices": ("mpp",)}),
    "vl-webex": (CallInfo("in", "pstn"), {"kind": "virtual_line", "devices": ("webex-app",)}),
}


def start_call(mode, call_type="internal", **kw):
    call, extra = CALL_TYPES[call_type]
    p = CallPolicy(eff(mode, **{**extra, **kw}), call)
    p.offered(0.0) if call.direction == "in" else None
    p.answered(1.0)
    p.recorder_started(1.1)
    return p


def recorder_ops(actions):
    return [a.op for a in actions if isinstance(a, RecorderAction) and a.op != "metadata"]


# mode -> [(intent or None for the state right after answer, expected state, indicator, MPP softkeys)]
TABLE = {
    NEVER: [(None, None, "none", ()), ("record", None, "none", ()), ("pause", None, "none", ())],
    ALWAYS: [(None, "started", "recording", ()), ("pause", "started", "recording", ()),
             ("stop", "started", "recording", ()), ("record", "started", "recording", ())],
    ALWAYS_PAUSE: [(None, "started", "recording", (PAUSE_REC,)),
                   ("record", "started", "recording", (PAUSE_REC,)),
                   ("pause", "paused", "paused", (RESUME_REC,)),
                   ("pause", "paused", "paused", (RESUME_REC,)),
                   ("stop", "paused", "paused", (RESUME_REC,)),
                   ("resume", "started", "recording", (PAUSE_REC,))],
    ON_DEMAND: [(None, "started", "none", (RECORD,)),          # recording provisionally, not kept
                ("pause", "started", "none", (RECORD,)),
                ("record", "started", "recording", (PAUSE_REC,)),
                ("pause", "paused", "paused", (RESUME_REC,)),
                ("stop", "paused", "paused", (RESUME_REC,)),
                ("resume", "started", "recording", (PAUSE_REC,))],
    ON_DEMAND_USER_START: [(None, None, "none", (RECORD,)),
                           ("pause", None, "none", (RECORD,)),
                           ("record", "pending", "none", (PAUSE_REC, STOP_REC)),
                           ("ack", "started", "recording", (PAUSE_REC, STOP_REC)),
                           ("pause", "paused", "paused", (RESUME_REC, STOP_REC)),
                           ("resume", "started", "recording", (PAUSE_REC, STOP_REC)),
                           ("stop", "stopped", "none", (RECORD,)),
                           ("record", "pending", "none", (PAUSE_REC, STOP_REC)),
                           ("ack", "started", "recording", (PAUSE_REC, STOP_REC))],
}
MENU_OF = {RECORD: "Start recording", PAUSE_REC: "Pause recording", RESUME_REC: "Resume recording",
           STOP_REC: "Stop recording"}


# R-VL-3: a Webex App virtual line is Always only (the settings refuse the other modes there)
MODE_CALL = [(m, c) for m in MODES for c in CALL_TYPES if c != "vl-webex" or m in (ALWAYS, NEVER)]


@pytest.mark.parametrize("mode,call_type", MODE_CALL)
@pytest.mark.parametrize("source", ["softkey", "menu", "fac"])
def test_r_usr_2_r_ux_3_r_ux_4_r_ux_5_mode_by_call_type_by_intents(mode, call_type, source):
    """R-USR-2 modes; R-UX-1 indicator; R-UX-2 Record; R-UX-3 softkeys; R-UX-4 Webex App menu;
    R-UX-5 feature codes follow the softkey rules; R-UX-6 states; R-VL-1 virtual lines get every
    option; R-VL-3 a Webex App virtual line is Always only."""
    p = start_call(mode, call_type)
    devices = CALL_TYPES[call_type][1].get("devices", BOTH)
    codes = {v: k for k, v in FEATURE_CODES.items()}
    for intent, state, indicator, keys in TABLE[mode]:
        if intent == "ack":
            p.recorder_started(2.0)
        elif intent is not None:
            if source == "fac":
                p.dtmf_sent(codes[intent], 2.0)
            else:
                p.intent(intent, 2.0, source)
        assert p.state == state, (intent, p.state)
        assert p.indicator == indicator, intent
        assert p.softkeys("mpp") == (keys if "mpp" in devices else ())
        assert p.menu_items("webex-app") == (tuple(MENU_OF[k] for k in keys) if "webex-app" in devices else ())
        # R-UX-3: keys the mode never shows never appear
        assert set(p.allowed()) <= set(MODE_KEYS[mode])


def test_r_ux_3_intents_the_state_forbids_are_refused_and_change_nothing():
    p = start_call(ALWAYS_PAUSE)
    p.take_actions()
    assert p.intent("resume", 2.0) is False            # no ResumeRec while recording
    (refused,) = p.take_actions()
    assert isinstance(refused, Refused) and "ResumeRec is not offered" in refused.why
    assert p.state == "started"


def test_r_usr_2_always_records_from_answer_and_stops_at_hangup():
    """R-USR-2 Always; R-CMP-6 recording starts after answer; R-REC-1 both directions."""
    p = CallPolicy(eff(ALWAYS), CallInfo("in", "internal"))
    p.offered(0.0)
    assert p.take_actions() == [] and p.state is None  # nothing before answer
    p.answered(1.0)
    (start,) = [a for a in p.take_actions() if isinstance(a, RecorderAction)]
    assert start.op == "start" and start.detail["streams"] == ["local-send", "remote-send"]
    p.recorder_started(1.1)
    p.hangup(9.0)
    assert recorder_ops(p.take_actions()) == ["stop"]
    assert p.state == "stopped" and p.softkeys() == () and p.indicator == "none"


def test_r_usr_2_plain_on_demand_keeps_the_recording_only_after_record():
    """R-USR-2: plain On Demand records from answer but keeps it only if the user presses Record."""
    p = start_call(ON_DEMAND)
    assert recorder_ops(p.take_actions()) == ["start"]
    p.hangup(5.0)
    assert recorder_ops(p.take_actions()) == ["discard"]
    p = start_call(ON_DEMAND)
    p.take_actions()
    p.intent("record", 3.0)
    acts = p.take_actions()
    assert [a.detail for a in acts if isinstance(a, RecorderAction)][0] == {"kept": True}
    assert p.message == "Recording"
    p.hangup(5.0)
    assert recorder_ops(p.take_actions()) == ["stop"]


def test_r_usr_2_user_initiated_start_stop_then_record_makes_a_second_recording():
    p = start_call(ON_DEMAND_USER_START)
    assert recorder_ops(p.take_actions()) == []       # nothing before Record
    p.intent("record", 2.0)
    p.recorder_started(2.1)
    p.intent("stop", 3.0)
    p.intent("record", 4.0)
    p.recorder_started(4.1)
    p.hangup(5.0)
    ops = [(a.op, a.recording) for a in p.take_actions() if isinstance(a, RecorderAction) and a.op != "metadata"]
    assert ops == [("start", 1), ("stop", 1), ("start", 2), ("stop", 2)]


def test_r_ux_1_r_ux_3_phone_message_on_each_state_change():
    p = start_call(ON_DEMAND_USER_START)
    messages = []
    for step in ("record", "ack", "pause", "resume", "stop"):
        p.recorder_started(2.0) if step == "ack" else p.intent(step, 2.0)
        messages.append(p.message)
    assert messages == ["", "Recording", "Recording paused", "Recording resumed", "Recording stopped"]


@pytest.mark.parametrize("notification,expected", [
    ("None", []),
    (NOTIFY_BEEP, [("beep", "tone"), ("beep", "tone")]),
    (NOTIFY_ANNOUNCEMENT, [("paused", "announcement"), ("resumed", "announcement")]),
])
def test_r_usr_5_pause_resume_notification(notification, expected):
    """R-USR-5: none, beep or announcement, always when the user pauses or resumes, to all parties."""
    p = start_call(ALWAYS_PAUSE, notification=notification)
    p.take_actions()
    p.intent("pause", 2.0)
    p.intent("resume", 3.0)
    plays = [a for a in p.take_actions() if isinstance(a, Play)]
    assert [(a.kind, a.audio) for a in plays] == expected
    assert all(a.to == ("local", "remote") for a in plays)


@pytest.mark.parametrize("call_type,internal,pstn,to", [
    ("internal", True, False, ("local", "remote")),
    ("internal", False, True, None),
    ("pstn-in", False, True, ("local", "remote")),
    ("pstn-in", True, False, None),
    ("pstn-out", False, True, ("local",)),   # R-CMP-7: user-level announcements only for inbound
])
def test_r_usr_4_start_stop_announcement_switches_per_call_kind(call_type, internal, pstn, to):
    """R-USR-4: separate switches for PSTN and internal calls; reported as SIPREC metadata (R-REC-2)."""
    p = start_call(ON_DEMAND_USER_START, call_type, announce_internal=internal, announce_pstn=pstn)
    p.intent("record", 2.0)
    p.recorder_started(2.1)
    p.intent("stop", 3.0)
    acts = p.take_actions()
    plays = [a for a in acts if isinstance(a, Play)]
    meta = [a.detail for a in acts if isinstance(a, RecorderAction) and a.op == "metadata"]
    if to is None:
        assert plays == [] and meta == []
    else:
        assert [(a.kind, a.to) for a in plays] == [("start", to), ("stop", to)]
        assert [m["announcement"] for m in meta] == ["start", "stop"]


def compliance(**kw):
    return Compliance(**{"inbound_pstn": True, "outbound_pstn": True, **kw})


def test_r_cmp_2_inbound_pstn_caller_hears_compliance_before_answer():
    """R-CMP-1/R-CMP-2: inbound PSTN: before the call is answered, to the caller only."""
    p = CallPolicy(eff(ALWAYS, compliance=compliance()), CallInfo("in", "pstn"))
    p.offered(0.0)
    (play,) = p.take_actions()
    assert play == Play("compliance", ("remote",), "en_us")
    p.answered(1.0)
    p.recorder_started(1.1)
    start = [a for a in p.take_actions() if isinstance(a, RecorderAction) and a.op == "start"][0]
    assert start.detail["compliance_played"] is True     # R-CMP-6: the provider is told


def test_r_cmp_1_compliance_is_off_by_default_and_not_for_internal_calls():
    for call in (CallInfo("in", "pstn"), CallInfo("in", "internal")):
        settings = eff(ALWAYS) if call.is_pstn else eff(ALWAYS, compliance=compliance())
        p = CallPolicy(settings, call)
        p.offered(0.0)
        p.answered(1.0)
        assert not [a for a in p.take_actions() if isinstance(a, Play)]


def test_r_cmp_2_outbound_pstn_after_answer_plus_delay():
    """R-CMP-2: outbound PSTN: after answer, postponed by the delay (max 60 s)."""
    p = CallPolicy(eff(ALWAYS, compliance=compliance(outbound_delay_enabled=True, delay_seconds=7)),
                   CallInfo("out", "pstn"))
    p.answered(100.0)
    assert not [a for a in p.take_actions() if isinstance(a, Play)]
    assert p.next_deadline() == 107.0
    p.tick(106.9)
    assert not [a for a in p.take_actions() if isinstance(a, Play)]
    p.tick(107.0)
    assert [a for a in p.take_actions() if isinstance(a, Play)] == [Play("compliance", ("remote",), "en_us")]


def test_r_cmp_3_compliance_plays_once_per_call_even_across_a_transfer():
    p = CallPolicy(eff(ALWAYS, compliance=compliance()), CallInfo("in", "pstn"))
    p.offered(0.0)
    p.offered(0.5)
    assert len([a for a in p.take_actions() if isinstance(a, Play)]) == 1
    # the transferred leg carries the flag: no replay
    q = CallPolicy(eff(ALWAYS, compliance=compliance()), CallInfo("in", "pstn", compliance_played=p.compliance_played))
    q.offered(10.0)
    q.answered(11.0)
    assert not [a for a in q.take_actions() if isinstance(a, Play) and a.kind == "compliance"]


def test_r_cmp_4_user_announcement_suppressed_for_pstn_party_after_compliance():
    """R-CMP-4: the indicator still shows; R-CMP-7 user announcements as fallback only."""
    p = CallPolicy(eff(ALWAYS, compliance=compliance(), announce_pstn=True), CallInfo("in", "pstn"))
    p.offered(0.0)
    p.answered(1.0)
    p.recorder_started(1.1)
    plays = [a for a in p.take_actions() if isinstance(a, Play)]
    assert [(a.kind, a.to) for a in plays] == [("compliance", ("remote",)), ("start", ("local",))]
    assert p.indicator == "recording"


def test_r_cmp_7_user_announcements_play_when_compliance_did_not():
    p = CallPolicy(eff(ALWAYS, announce_pstn=True), CallInfo("in", "pstn"))
    p.offered(0.0)
    p.answered(1.0)
    p.recorder_started(1.1)
    assert [(a.kind, a.to) for a in p.take_actions() if isinstance(a, Play)] == [("start", ("local", "remote"))]


def test_r_cmp_5_announcements_use_the_lines_language():
    """R-CMP-5: a call to a virtual line uses the virtual line's announcement language."""
    p = CallPolicy(eff(ALWAYS, kind="virtual_line", devices=("mpp",), language="pl_pl",
                       compliance=compliance()), CallInfo("in", "pstn"))
    p.offered(0.0)
    assert p.take_actions()[0].language == "pl_pl"


def test_r_usr_6_repeat_tone_every_interval_while_recording_not_while_paused_or_held():
    p = start_call(ALWAYS_PAUSE, repeat_enabled=True, repeat_interval=10)
    p.take_actions()
    repeats = []
    for t in range(2, 60):
        if t == 25:
            p.intent("pause", t)
        if t == 35:
            p.intent("resume", t)
        if t == 47:
            p.hold(t)
        p.tick(float(t))
        repeats += [t for a in p.take_actions() if isinstance(a, Play) and a.kind == "repeat"]
    assert repeats == [12, 22, 45]
    assert p.next_deadline() is None  # held: nothing scheduled


@pytest.mark.parametrize("direction,remote,recorded", [
    ("in", "internal", False), ("in", "pstn", True), ("out", "internal", True), ("out", "pstn", False)])
def test_r_usr_8_selective_recording_by_direction_and_kind(direction, remote, recorded):
    sel = Selective(inbound_internal=False, inbound_external=True, outbound_internal=True, outbound_external=False)
    p = CallPolicy(eff(ALWAYS, selective=sel), CallInfo(direction, remote))
    p.answered(1.0)
    assert ("start" in recorder_ops(p.take_actions())) is recorded


def test_r_usr_8_selective_does_not_apply_to_on_demand():
    sel = Selective(False, False, False, False)
    p = start_call(ON_DEMAND_USER_START, selective=sel)
    assert p.softkeys() == (RECORD,)


def test_r_usr_3_voicemail_deposit_recorded_only_with_record_voicemail():
    for enabled in (True, False):
        p = CallPolicy(eff(ALWAYS, record_voicemail=enabled), CallInfo("in", "pstn"))
        p.voicemail_deposit(1.0)
        starts = [a for a in p.take_actions() if isinstance(a, RecorderAction) and a.op == "start"]
        assert bool(starts) is enabled
        if enabled:
            assert starts[0].detail["voicemail"] is True


@pytest.mark.parametrize("behavior,plays,ends", [
    ("PROCEED_WITH_CALL_NO_ANNOUNCEMENT", False, False),
    ("PROCEED_CALL_WITH_ANNOUNCEMENT", True, False),
    ("END_CALL_WITH_ANNOUNCEMENT", True, True),
])
def test_r_org_3_recorder_failure_follows_failure_behavior(behavior, plays, ends):
    p = CallPolicy(eff(ALWAYS, failure_behavior=behavior), CallInfo("in", "internal"))
    p.answered(1.0)
    p.take_actions()
    p.recorder_failed(1.5, "503 from recorder")
    acts = p.take_actions()
    assert p.state == "failed" and p.message == "Recording failed" and p.indicator == "none"
    assert bool([a for a in acts if isinstance(a, Play) and a.kind == "failed"]) is plays
    assert bool([a for a in acts if isinstance(a, CallAction)]) is ends
    assert p.softkeys() == ()


def test_r_prv_6_r_usr_7_a_blocked_party_fails_at_start_visibly():
    """R-PRV-6 (manual provisioning missing) and R-USR-7 (platform info mismatch) make recording fail."""
    p = CallPolicy(eff(ALWAYS, recording_blocked="no Imagicle account for alice (R-PRV-6)"),
                   CallInfo("in", "internal"))
    p.answered(1.0)
    acts = p.take_actions()
    assert p.state == "failed" and p.message == "Recording failed"
    assert [a.detail for a in acts if isinstance(a, RecorderAction)] == [{"failed": "no Imagicle account for alice (R-PRV-6)"}]


def test_r_loc_1_no_provider_means_no_recording_and_no_keys():
    p = CallPolicy(replace(eff(ON_DEMAND_USER_START), provider=None), CallInfo("in", "internal"))
    p.answered(1.0)
    assert p.softkeys() == () and p.state is None
    assert p.intent("record", 2.0) is False


def test_r_ux_3_no_recording_keys_while_held_or_ringing():
    p = CallPolicy(eff(ON_DEMAND_USER_START), CallInfo("in", "internal"))
    p.offered(0.0)
    assert p.softkeys() == ()          # ringing: not the Connected key list
    p.answered(1.0)
    p.hold(2.0)
    assert p.softkeys() == ()
    p.unhold(3.0)
    assert p.softkeys() == (RECORD,)


def test_r_ux_5_feature_codes_map_to_intents_and_are_not_sent_on():
    p = start_call(ON_DEMAND_USER_START)
    assert p.dtmf_sent("*", 2.0) is False and p.dtmf_sent("4", 2.0) is False
    assert p.dtmf_sent("4", 2.0) is True and p.state == "pending"
    assert p.dtmf_sent("5", 2.0) is False      # an ordinary digit afterwards is just a digit


# ----- invariants (hypothesis) ----------------------------------------------------------------
EVENTS = st.lists(st.sampled_from(["record", "pause", "resume", "stop", "ack", "hold", "unhold",
                                   "tick", "offered", "fail", "fac44", "fac45", "fac48", "fac49"]),
                  max_size=25)


@st.composite
def scenarios(draw):
    mode = draw(st.sampled_from(MODES))
    call = CallInfo(draw(st.sampled_from(["in", "out"])), draw(st.sampled_from(["internal", "pstn", "external"])))
    s = eff(mode, notification=draw(st.sampled_from(["None", NOTIFY_BEEP, NOTIFY_ANNOUNCEMENT])),
            repeat_enabled=draw(st.booleans()), repeat_interval=10,
            announce_internal=draw(st.booleans()), announce_pstn=draw(st.booleans()),
            compliance=Compliance(inbound_pstn=draw(st.booleans()), outbound_pstn=draw(st.booleans()),
                                  outbound_delay_enabled=draw(st.booleans()), delay_seconds=draw(st.integers(0, 60))))
    return s, call, draw(EVENTS)


def drive(s, call, events):
    p = CallPolicy(s, call)
    actions, views = [], []
    t = 0.0
    if call.direction == "in":
        p.offered(t)
    p.answered(t)
    for ev in events:
        t += 7.0
        if ev in ("record", "pause", "resume", "stop"):
            p.intent(ev, t)
        elif ev.startswith("fac"):
            for d in "*" + ev[3:]:
                p.dtmf_sent(d, t)
        elif ev == "ack":
            p.recorder_started(t)
        elif ev == "fail":
            p.recorder_failed(t, "gone")
        elif ev in ("hold", "unhold", "tick", "offered"):
            getattr(p, ev)(t)
        p.tick(t)
        actions += p.take_actions()
        views.append((p.state, p.indicator, p.allowed()))
    p.hangup(t + 1)
    actions += p.take_actions()
    return p, actions, views


@hsettings(max_examples=300, deadline=None)
@given(scenarios())
def test_invariants_keys_modes_compliance_and_announcements(case):
    s, call, events = case
    p, actions, views = drive(s, call, events)
    for state, indicator, keys in views:
        assert set(keys) <= set(MODE_KEYS[s.mode])                 # R-UX-3: never a forbidden key
        if s.mode == ALWAYS:
            assert not {RECORD, PAUSE_REC, STOP_REC} & set(keys)    # R-USR-2 Always
        if state == "paused" and keys:
            assert RESUME_REC in keys                              # a paused call offers Resume
        if indicator != "none":
            assert s.mode != NEVER                                 # Never: no icon
    compliance_plays = [a for a in actions if isinstance(a, Play) and a.kind == "compliance"]
    assert len(compliance_plays) <= 1                              # R-CMP-3 once per call
    assert all(not a.into_recording for a in actions if isinstance(a, Play))   # never into the recording
    assert all("audio" not in a.detail for a in actions if isinstance(a, RecorderAction))


@given(mode=st.sampled_from(MODES), direction=st.sampled_from(["in", "out"]),
       remote=st.sampled_from(["internal", "pstn", "external"]), voicemail=st.booleans(),
       selective=st.one_of(st.none(), st.builds(Selective, st.booleans(), st.booleans(), st.booleans(), st.booleans())))
@hsettings(max_examples=200, deadline=None)
def test_records_on_answer_says_exactly_whether_the_answer_starts_a_recording(mode, direction, remote, voicemail, selective):
    """src/mppsim/phone/siprec.py makes a SIPREC leg ready while a call rings when the policy says its answer
    will record (docs/decisions.md, "standby"): that must agree with what `answered` does."""
    p = CallPolicy(eff(mode, selective=selective), CallInfo(direction, remote, voicemail=voicemail))
    if direction == "in":
        p.offered(0.0)
    predicted = p.records_on_answer()
    p.take_actions()
    p.answered(1.0)
    assert predicted is ("start" in recorder_ops(p.take_actions()))
