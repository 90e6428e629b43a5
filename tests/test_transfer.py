"""Consult transfer as the MPP does it, over real SIP and RTP, with the recording following
the recorded user (issue 13, part 1). Audio is measured at each party and in the recorded WAV."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mppsim.app.simulator import SimulatorError
from conftest import TONES, connect, finished, toned_sim
from mppsim.phone.analysis import analyse
from mppsim.siprec.metadata import parse
from mppsim.recorder.wavfile import read

RATE = 8000


@pytest.fixture(scope="module")
def tsim(tmp_path_factory):
    s = toned_sim(tmp_path_factory, "xfer", ring_timeout=5)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _hang_up(request):
    yield
    if "tsim" in request.fixturenames:
        from conftest import hang_up_everything
        hang_up_everything(request.getfixturevalue("tsim"))


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
def test_attended_consult_transfer_recording_follows_the_transferee(tsim, dialect):
    """Bob (Always) is transferred by alice to carol. One recording of bob: left = bob, right =
    alice before the transfer and carol after; the recorder got a metadata document naming
    carol in place of alice (both dialects). Compliance is not involved (see R-CMP-3 test)."""
    target = tsim.recorders.workers[0].target + (";dialect=rfc7866" if dialect == "rfc7866" else "")
    tsim.orch.request("bob", "set_recorder", target=target)
    try:
        mode(tsim, "bob", "Always")
        mode(tsim, "alice", "Never")
        mode(tsim, "carol", "Never")
        before = len(tsim.recordings("bob"))
        connect(tsim, "alice", "bob", "1002")
        tsim.wait_until(lambda: tsim.indicator("bob") == "recording", 3, "bob recording")
        hears(tsim, "bob", TONES["alice"])
        time.sleep(1.0)
        consult_and_answer(tsim, "alice", "1003", "carol")
        tsim.wait_until(lambda: tsim.call_state("bob") == "held", 3, "bob held")   # the transferee waits on hold
        hears(tsim, "carol", TONES["alice"])                # alice and carol talk first
        tsim.complete_transfer("alice")
        transferred_at = time.monotonic()
        tsim.wait_for("alice", "ended", 4)
        tsim.wait_until(lambda: tsim.call_state("bob") == "connected", 3, "bob connected to carol")
        hears(tsim, "bob", TONES["carol"])
        hears(tsim, "carol", TONES["bob"])
        assert live_call(tsim, "bob")["remote"]["user"] == "1003"
        assert tsim.indicator("bob") == "recording"        # the same recording goes on
        time.sleep(1.5)
        tsim.hangup("carol")
        tsim.wait_for("bob", "ended", 3)
        recs = finished(tsim, "bob", before + 1)[before:]
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
        docs = documents(tsim, rec)
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
        tsim.orch.request("bob", "set_recorder", target=tsim.recorders.workers[0].target)


def test_the_consulted_partys_recording_names_the_transferee_when_the_transfer_follows_at_once(tsim):
    """Carol (Always) answers alice's consultation and alice transfers bob to her at once, while
    carol's SIPREC session may still be starting: carol's one recording names alice, then bob
    (the participant change made while the INVITE was on its way is sent once it is answered)."""
    mode(tsim, "carol", "Always")
    mode(tsim, "alice", "Never")
    mode(tsim, "bob", "Never")
    before = len(tsim.recordings("carol"))
    connect(tsim, "alice", "bob", "1002")
    consult_and_answer(tsim, "alice", "1003", "carol")
    tsim.complete_transfer("alice")
    tsim.wait_for("alice", "ended", 4)
    tsim.wait_until(lambda: tsim.call_state("carol") == "connected" and tsim.call_state("bob") == "connected",
                    3, "bob and carol connected")
    hears(tsim, "carol", TONES["bob"])
    time.sleep(0.5)
    tsim.hangup("bob")
    tsim.wait_for("carol", "ended", 3)
    (rec,) = finished(tsim, "carol", before + 1)[before:]
    right = [p["aor"] for p in rec["participants"] if p["channel"] == "right"]
    assert right == ["sip:1002@127.0.0.1"], rec["participants"]          # bob, at the end
    timeline = [(p["aor"], p["from"], p["to"]) for p in rec["participants_timeline"] if p["channel"] == "right"]
    assert [aor for aor, *_ in timeline] == ["sip:1001@127.0.0.1", "sip:1002@127.0.0.1"], timeline
    assert timeline[0][2] == timeline[1][1] < 1.0, timeline                # alice until the transfer


def test_blind_after_consult_while_ringing_and_cancel_returns(tsim):
    """Transfer pressed while the consult call still rings: the consult is cancelled and the held
    party goes to the target (the MPP's blind after consult). Cancel resumes the held call."""
    for who in ("alice", "bob", "carol"):
        mode(tsim, who, "Never")
    connect(tsim, "bob", "alice", "1001")
    # Cancel first
    consult = tsim.start_transfer("alice", "1003")
    tsim.wait_for("carol", "ringing", 3)
    # bob's agent reports the hold itself: that report may come after carol's ringing
    tsim.wait_until(lambda: tsim.call_state("bob") == "held", 3, "bob held")
    tsim.cancel_transfer("alice")
    tsim.wait_until(lambda: tsim.calls[consult]["state"] == "ended", 3, "consult cancelled")
    tsim.wait_until(lambda: tsim.call_state("bob") == "connected", 3, "bob resumed")
    hears(tsim, "bob", TONES["alice"])
    hears(tsim, "alice", TONES["bob"])
    with pytest.raises(SimulatorError, match="no transfer under way"):
        tsim.cancel_transfer("alice")
    # Then blind after consult
    tsim.start_transfer("alice", "1003")
    tsim.wait_for("carol", "ringing", 3)
    tsim.complete_transfer("alice")          # carol has not answered yet
    tsim.wait_for("alice", "ended", 4)
    tsim.wait_until(lambda: (live_call(tsim, "carol") or {}).get("remote", {}).get("user") == "1002"
                    and tsim.call_state("carol") == "ringing", 4, "carol rung by bob")
    tsim.answer("carol")
    tsim.wait_for("bob", "connected", 3)
    hears(tsim, "bob", TONES["carol"])
    hears(tsim, "carol", TONES["bob"])


def test_r_cmp_3_consult_transfer_of_a_recorded_customer_no_replay_new_party_named(tsim):
    """R-CMP-3: the customer heard the compliance announcement at alice; alice consults dave
    (Always) and transfers: dave's recording goes on with the customer and nobody hears the
    announcement again."""
    from mppsim.rules.effective import Compliance  # noqa: F401  (documents the setting below)
    tsim.settings.set_org({"compliance": {"inboundPSTNCallsEnabled": True}})
    try:
        mode(tsim, "alice", "Always")
        mode(tsim, "dave", "Always")
        tsim.dial("+14155550100", "1001")
        tsim.wait_for("alice", "ringing", 3)
        tsim.wait_until(lambda: [e["kind"] for e in tsim.network_events("alice", "announcement")]
                        == ["compliance"], 3, "compliance at alice")
        tsim.answer("alice")
        tsim.wait_for("alice", "connected", 3)
        consult_and_answer(tsim, "alice", "1004", "dave")
        tsim.wait_until(lambda: tsim.indicator("dave") == "recording", 3, "dave recording the consult")
        dave_call = tsim.current_call("dave")["call"]
        tsim.complete_transfer("alice")
        tsim.wait_for("alice", "ended", 4)
        tsim.wait_until(lambda: (live_call(tsim, "dave") or {}).get("call", dave_call) != dave_call
                        and tsim.call_state("dave") == "connected", 3, "dave with the customer")
        hears(tsim, "dave", TONES["+14155550100"])
        hears(tsim, "+14155550100", TONES["dave"])
        tsim.wait_until(lambda: tsim.indicator("dave") == "recording", 3, "dave still recording")
        kinds = [e["kind"] for e in tsim.network_events("dave", "announcement")]
        assert "compliance" not in kinds
        assert not [e for e in tsim.network_events("dave", "recorder") if e["op"] == "start"]
    finally:
        tsim.settings.set_org({"compliance": {"inboundPSTNCallsEnabled": False}})


def test_blind_transfer_the_recording_waits_for_the_new_leg_and_follows(tsim):
    """Blind: alice's leg with bob ends before carol answers bob's new call; bob's recording
    (Always) is neither stopped nor reaped meanwhile and goes on with carol: one recording, right
    channel alice then carol."""
    mode(tsim, "bob", "Always")
    mode(tsim, "alice", "Never")
    mode(tsim, "carol", "Never")
    before = len(tsim.recordings("bob"))
    connect(tsim, "alice", "bob", "1002")
    tsim.wait_until(lambda: tsim.indicator("bob") == "recording", 3, "bob recording")
    hears(tsim, "bob", TONES["alice"])
    time.sleep(1.0)
    tsim.transfer("alice", "1003")
    tsim.wait_for("alice", "ended", 3)
    tsim.wait_for("carol", "ringing", 3)
    time.sleep(1.0)                               # the old leg is over, the new one rings
    tsim.answer("carol")
    hears(tsim, "bob", TONES["carol"])
    tsim.wait_until(lambda: tsim.indicator("bob") == "recording", 3, "bob still recording")
    time.sleep(1.2)
    tsim.hangup("carol")
    recs = finished(tsim, "bob", before + 1)[before:]
    assert len(recs) == 1
    _, audio = read(recs[0]["audio_path"])
    assert freq_of(audio[:RATE, 1]) == pytest.approx(TONES["alice"], rel=0.02)
    assert freq_of(audio[-RATE:, 1]) == pytest.approx(TONES["carol"], rel=0.02)
