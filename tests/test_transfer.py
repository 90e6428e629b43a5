"""Consult transfer as the MPP does it, over real SIP and RTP, with the recording following
the recorded user (issue 13, part 1). Audio is measured at each party and in the recorded WAV."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mppsim.app.simulator import SimulatorError
from tests.helpers import TONES, connect, finished
from mppsim.phone.analysis import analyse
from mppsim.siprec.metadata import parse
from mppsim.recorder.wavfile import read

RATE = 8000


@pytest.fixture(scope="module")
def sim_org():
    """`sim` rings 5 s: a consult call still ringing (blind transfer) must not end unanswered first."""
    return {"ring_timeout": 5, "voicemail": False}


def mode(sim, who, record, **extra):
    sim.set_call_recording(who, {"enabled": True, "record": record, **extra})


def hears(sim, who, freq, within=3.0):
    """Poll what `who` hears (not inside sim.wait_until: it holds the event lock a reply needs)."""
    deadline = time.monotonic() + within
    while True:
        got = (sim.listen(who, 0.4) or {}).get("freq_hz")
        if got and abs(got - freq) < freq * 0.02:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{who} hears {got} Hz, expected {freq} Hz")
        time.sleep(0.1)


def live_call(sim, who):
    p = sim.party(who)
    live = [ev for ev in sim.calls.values()
            if ev["agent"] == p.agent and ev["line"] == p.line and ev["state"] != "ended"]
    return live[-1] if live else None


def freq_of(samples):
    return analyse(samples, RATE).freq_hz


def documents(sim, rec):
    store = Path(rec["audio_path"]).parents[2]
    return [parse((store / f).read_bytes()) for f in rec["metadata_files"]]


def consult_and_answer(sim, who, number, target):
    consult = sim.start_transfer(who, number)
    sim.wait_for(target, "ringing", 3)
    sim.answer(target)
    sim.wait_until(lambda: sim.calls[consult]["state"] == "connected", 3, "consult answered")
    return consult


@pytest.mark.parametrize("dialect", ["webex", "rfc7866"])
def test_attended_consult_transfer_recording_follows_the_transferee(sim, dialect):
    """Bob (Always) is transferred by alice to carol. One recording of bob: left = bob, right =
    alice before the transfer and carol after; the recorder got a metadata document naming
    carol in place of alice (both dialects). Compliance is not involved (see R-CMP-3 test)."""
    target = sim.recorders.workers[0].target + (";dialect=rfc7866" if dialect == "rfc7866" else "")
    sim.orch.request("bob", "set_recorder", target=target)
    try:
        mode(sim, "bob", "Always")
        mode(sim, "alice", "Never")
        mode(sim, "carol", "Never")
        before = len(sim.recordings("bob"))
        connect(sim, "alice", "bob", "1002")
        sim.wait_until(lambda: sim.indicator("bob") == "recording", 3, "bob recording")
        hears(sim, "bob", TONES["alice"])
        time.sleep(1.0)
        consult_and_answer(sim, "alice", "1003", "carol")
        sim.wait_until(lambda: sim.call_state("bob") == "held", 3, "bob held")   # the transferee waits on hold
        hears(sim, "carol", TONES["alice"])                # alice and carol talk first
        sim.complete_transfer("alice")
        transferred_at = time.monotonic()
        sim.wait_for("alice", "ended", 4)
        sim.wait_until(lambda: sim.call_state("bob") == "connected", 3, "bob connected to carol")
        hears(sim, "bob", TONES["carol"])
        hears(sim, "carol", TONES["bob"])
        assert live_call(sim, "bob")["remote"]["user"] == "1003"
        assert sim.indicator("bob") == "recording"        # the same recording goes on
        time.sleep(1.5)
        sim.hangup("carol")
        sim.wait_for("bob", "ended", 3)
        recs = finished(sim, "bob", before + 1)[before:]
        assert len(recs) == 1, [r["id"] for r in recs]      # followed, not restarted
        rec = recs[0]
        assert rec["dialect"] == dialect
        rate, audio = read(rec["audio_path"])
        assert freq_of(audio[: RATE, 0]) == pytest.approx(TONES["bob"], rel=0.02)
        assert freq_of(audio[: RATE, 1]) == pytest.approx(TONES["alice"], rel=0.02)
        assert freq_of(audio[-RATE:, 1]) == pytest.approx(TONES["carol"], rel=0.02)
        assert freq_of(audio[-RATE:, 0]) == pytest.approx(TONES["bob"], rel=0.02)
        # the right channel changes party at the transfer: no alice tone in carol's part
        tail = audio[-int(1.2 * RATE):, 1]
        assert analyse(tail, RATE).active_seconds > 1.0
        docs = documents(sim, rec)
        assert {p.aor for p in docs[0].participants} == {"sip:1002@127.0.0.1", "sip:1001@127.0.0.1"}
        changed = [d for d in docs if any(p.aor == "sip:1003@127.0.0.1" for p in d.participants)]
        assert changed, "no metadata document names carol"
        last = changed[-1]
        # the whole new participant list, bob and carol, in a complete document by UPDATE (as
        # to any SRS: mppsim's recorder takes it since issue 9)
        assert last.datamode == "complete"
        assert {p.aor for p in last.participants} == {"sip:1002@127.0.0.1", "sip:1003@127.0.0.1"}
        if dialect == "rfc7866":       # the webex dialect carries mppsim's events in X-Mppsim-Status
            assert any(e.get("participants") == ["1003"] for e in last.events)
        else:
            assert last.broadworks["extTrackingID"] == docs[0].broadworks["extTrackingID"]
        assert time.monotonic() - transferred_at < 10
        # the index follows the change too (issue 9 item 7): carol joins the right channel
        # while alice's time there ends; the summary column names the latest other party
        timeline = json.loads(rec["participants_timeline"]) if isinstance(rec["participants_timeline"], str) \
            else rec["participants_timeline"]
        by_aor = {p["aor"]: p for p in timeline}
        assert by_aor["sip:1003@127.0.0.1"]["channel"] == "right", timeline
        assert by_aor["sip:1001@127.0.0.1"]["to"] is not None, timeline
        assert by_aor["sip:1001@127.0.0.1"]["to"] <= by_aor["sip:1003@127.0.0.1"]["from"] + 0.5, timeline
    finally:
        sim.orch.request("bob", "set_recorder", target=sim.recorders.workers[0].target)


def test_the_consulted_partys_recording_names_the_transferee_when_the_transfer_follows_at_once(sim):
    """Carol (Always) answers alice's consultation and alice transfers bob to her at once, while
    carol's SIPREC session may still be starting: carol's one recording names alice, then bob
    (the participant change made while the INVITE was on its way is sent once it is answered).
    "At once" is once carol's agent has taken the answer (its `connected` comes after the SIPREC
    INVITE has left): on a loaded machine alice's REFER could otherwise reach bob, and bob's
    INVITE with Replaces reach carol, before her agent took the answer; her recording then began
    on bob's call and named bob only (seen with the suite on two workers, docs/decisions.md)."""
    mode(sim, "carol", "Always")
    mode(sim, "alice", "Never")
    mode(sim, "bob", "Never")
    before = len(sim.recordings("carol"))
    connect(sim, "alice", "bob", "1002")
    consult_and_answer(sim, "alice", "1003", "carol")
    sim.wait_for("carol", "connected", 3)
    sim.complete_transfer("alice")
    sim.wait_for("alice", "ended", 4)
    sim.wait_until(lambda: sim.call_state("carol") == "connected" and sim.call_state("bob") == "connected",
                    3, "bob and carol connected")
    hears(sim, "carol", TONES["bob"])
    time.sleep(0.5)
    sim.hangup("bob")
    sim.wait_for("carol", "ended", 3)
    (rec,) = finished(sim, "carol", before + 1)[before:]
    right = [p["aor"] for p in rec["participants"] if p["channel"] == "right"]
    assert right == ["sip:1002@127.0.0.1"], rec["participants"]          # bob, at the end
    timeline = [(p["aor"], p["from"], p["to"]) for p in rec["participants_timeline"] if p["channel"] == "right"]
    assert [aor for aor, *_ in timeline] == ["sip:1001@127.0.0.1", "sip:1002@127.0.0.1"], timeline
    assert timeline[0][2] == timeline[1][1] < 1.0, timeline                # alice until the transfer


def test_blind_after_consult_while_ringing_and_cancel_returns(sim):
    """Transfer pressed while the consult call still rings: the consult is cancelled and the held
    party goes to the target (the MPP's blind after consult). Cancel resumes the held call."""
    for who in ("alice", "bob", "carol"):
        mode(sim, who, "Never")
    connect(sim, "bob", "alice", "1001")
    # Cancel first
    consult = sim.start_transfer("alice", "1003")
    sim.wait_for("carol", "ringing", 3)
    # bob's agent reports the hold itself: that report may come after carol's ringing
    sim.wait_until(lambda: sim.call_state("bob") == "held", 3, "bob held")
    sim.cancel_transfer("alice")
    sim.wait_until(lambda: sim.calls[consult]["state"] == "ended", 3, "consult cancelled")
    sim.wait_until(lambda: sim.call_state("bob") == "connected", 3, "bob resumed")
    hears(sim, "bob", TONES["alice"])
    hears(sim, "alice", TONES["bob"])
    with pytest.raises(SimulatorError, match="no transfer under way"):
        sim.cancel_transfer("alice")
    # Then blind after consult
    sim.start_transfer("alice", "1003")
    sim.wait_for("carol", "ringing", 3)
    sim.complete_transfer("alice")          # carol has not answered yet
    sim.wait_for("alice", "ended", 4)
    sim.wait_until(lambda: (live_call(sim, "carol") or {}).get("remote", {}).get("user") == "1002"
                    and sim.call_state("carol") == "ringing", 4, "carol rung by bob")
    sim.answer("carol")
    sim.wait_for("bob", "connected", 3)
    hears(sim, "bob", TONES["carol"])
    hears(sim, "carol", TONES["bob"])


def test_r_cmp_3_consult_transfer_of_a_recorded_customer_no_replay_new_party_named(sim):
    """R-CMP-3: the customer heard the compliance announcement at alice; alice consults dave
    (Always) and transfers: dave's recording goes on with the customer and nobody hears the
    announcement again."""
    from mppsim.rules.effective import Compliance  # noqa: F401  (documents the setting below)
    sim.settings.set_org({"compliance": {"inboundPSTNCallsEnabled": True}})
    try:
        mode(sim, "alice", "Always")
        mode(sim, "dave", "Always")
        sim.dial("+14155550100", "1001")
        sim.wait_for("alice", "ringing", 3)
        sim.wait_until(lambda: [e["kind"] for e in sim.network_events("alice", "announcement")]
                        == ["compliance"], 3, "compliance at alice")
        sim.answer("alice")
        sim.wait_for("alice", "connected", 3)
        consult_and_answer(sim, "alice", "1004", "dave")
        sim.wait_until(lambda: sim.indicator("dave") == "recording", 3, "dave recording the consult")
        dave_call = sim.current_call("dave")["call"]
        sim.complete_transfer("alice")
        sim.wait_for("alice", "ended", 4)
        sim.wait_until(lambda: (live_call(sim, "dave") or {}).get("call", dave_call) != dave_call
                        and sim.call_state("dave") == "connected", 3, "dave with the customer")
        hears(sim, "dave", TONES["+14155550100"])
        hears(sim, "+14155550100", TONES["dave"])
        sim.wait_until(lambda: sim.indicator("dave") == "recording", 3, "dave still recording")
        kinds = [e["kind"] for e in sim.network_events("dave", "announcement")]
        assert "compliance" not in kinds
        assert not [e for e in sim.network_events("dave", "recorder") if e["op"] == "start"]
    finally:
        sim.settings.set_org({"compliance": {"inboundPSTNCallsEnabled": False}})


def test_blind_transfer_the_recording_waits_for_the_new_leg_and_follows(sim):
    """Blind: alice's leg with bob ends before carol answers bob's new call; bob's recording
    (Always) is neither stopped nor reaped meanwhile and goes on with carol: one recording, right
    channel alice then carol."""
    mode(sim, "bob", "Always")
    mode(sim, "alice", "Never")
    mode(sim, "carol", "Never")
    before = len(sim.recordings("bob"))
    connect(sim, "alice", "bob", "1002")
    sim.wait_until(lambda: sim.indicator("bob") == "recording", 3, "bob recording")
    hears(sim, "bob", TONES["alice"])
    time.sleep(1.0)
    sim.transfer("alice", "1003")
    sim.wait_for("alice", "ended", 3)
    sim.wait_for("carol", "ringing", 3)
    time.sleep(1.0)                               # the old leg is over, the new one rings
    sim.answer("carol")
    hears(sim, "bob", TONES["carol"])
    sim.wait_until(lambda: sim.indicator("bob") == "recording", 3, "bob still recording")
    time.sleep(1.2)
    sim.hangup("carol")
    recs = finished(sim, "bob", before + 1)[before:]
    assert len(recs) == 1
    _, audio = read(recs[0]["audio_path"])
    assert freq_of(audio[:RATE, 1]) == pytest.approx(TONES["alice"], rel=0.02)
    assert freq_of(audio[-RATE:, 1]) == pytest.approx(TONES["carol"], rel=0.02)
