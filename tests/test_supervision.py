"""Supervision (issue 22): an agent killed in the middle of a recorded call is restarted, its
far end hangs up with a reason, and both recordings close saying why."""
from __future__ import annotations

import os
import signal
import time

from mppsim.app.orchestrator import AGENT_LOST, FAR_END_LOST
from mppsim.app.simulator import Simulator
from tests.helpers import connect, demo_org, finished


def always(sim: Simulator, *who: str) -> None:
    for w in who:
        sim.set_call_recording(w, {"enabled": True, "record": "Always"})


def test_kill_9_mid_recorded_call_restarts_the_agent_and_ends_the_call_with_a_reason(tmp_path):
    with Simulator(demo_org(), run_dir=tmp_path) as sim:
        sim.play("alice", tone=1000)
        sim.play("dave", tone=700)
        always(sim, "alice", "dave")
        events = []
        sim.subscribe(events.append)
        connect(sim, "alice", "dave", "1004")
        sim.wait_until(lambda: sim.indicator("alice") == "recording" and sim.indicator("dave") == "recording",
                       3, "both recorded")
        time.sleep(1.0)
        old_pid = sim.agent_pids()["dave"]
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)          # as a user would: kill -9 from a shell

        # the far end hangs up at once, with a reason
        sim.wait_for("alice", "ended", 3)
        alice_end = [ev for ev in events if ev.get("event") == "call" and ev["agent"] == "alice"
                     and ev["state"] == "ended"][-1]
        assert alice_end["reason"] == FAR_END_LOST and alice_end["ended_by"] == "remote"
        assert time.monotonic() - killed < 3

        # dave is back by himself: a new process, reachable, his line idle
        sim.wait_until(lambda: sim.agent_status["dave"] == "up" and sim.agent_pids()["dave"] != old_pid,
                       10, "dave restarted")
        down = next(ev for ev in events if ev.get("event") == "agent_down" and ev["agent"] == "dave")
        up = [ev for ev in events if ev.get("event") == "agent_up" and ev["agent"] == "dave"][-1]
        assert down["restarting"] is True and down["returncode"] != 0
        assert up["restarted_by"] == "supervisor" and up["restarts"] == 1
        assert time.monotonic() - killed < 5
        assert sim.status("dave")["lines"]["dave"] == "idle"
        assert sim.line_states[("dave", "dave")] == "idle"

        # the call log says what happened on both legs
        (logged,) = [c for c in sim.call_log() if "dave" in c["legs"] and "alice" in c["legs"]]
        assert logged["state"] == "ended"
        assert logged["legs"]["dave"]["reason"] == AGENT_LOST and logged["legs"]["dave"]["ended_by"] == "crash"
        assert logged["legs"]["alice"]["reason"] == FAR_END_LOST
        assert logged["legs"]["dave"]["recording"]["state"] == "stopped"
        assert logged["legs"]["alice"]["recording"]["state"] == "stopped"

        # both recordings are closed: alice's by her BYE, dave's when the recorder saw its SRC go
        (alice_rec,) = finished(sim, "alice", 1, timeout=8)
        (dave_rec,) = finished(sim, "dave", 1, timeout=8)
        assert alice_rec["ended_by"] == "bye" and alice_rec["state"] == "complete"
        assert dave_rec["ended_by"] == "src-lost", dave_rec
        assert dave_rec["talk_seconds"] > 0.8

        # and he takes calls again, recorded
        connect(sim, "alice", "dave", "1004")
        sim.wait_until(lambda: sim.indicator("dave") == "recording", 3, "dave recorded again")
        sim.hangup("alice")
        sim.wait_for("dave", "ended", 3)
        assert len(finished(sim, "dave", 2, timeout=6)) == 2


def test_an_agent_that_keeps_dying_is_left_down(tmp_path, monkeypatch):
    from mppsim.app import orchestrator
    monkeypatch.setattr(orchestrator, "MAX_RESTARTS", 1)
    with Simulator(demo_org(), run_dir=tmp_path) as sim:
        downs = []
        sim.subscribe(lambda ev: ev.get("event") == "agent_down" and downs.append(ev))
        first = sim.agent_pids()["bob"]
        sim.kill_agent("bob")
        sim.wait_until(lambda: sim.agent_status["bob"] == "up" and sim.agent_pids()["bob"] != first,
                       10, "bob restarted once")
        sim.kill_agent("bob")
        sim.wait_until(lambda: len(downs) == 2, 3, "second death reported")
        assert [d["restarting"] for d in downs] == [True, False]
        time.sleep(1.0)
        assert sim.agent_status["bob"] == "down"
        sim.restart_agent("bob")            # by hand, as before
        assert sim.agent_status["bob"] == "up"


def test_without_supervision_a_dead_agent_stays_down(tmp_path):
    sim = Simulator(demo_org(), run_dir=tmp_path)
    sim.orch.supervise = False
    with sim:
        sim.kill_agent("carol")
        sim.wait_until(lambda: sim.agent_status["carol"] == "down", 3, "carol down")
        time.sleep(1.0)
        assert sim.agent_status["carol"] == "down"


def test_mppsim_load_counts_a_dead_agents_calls_failed_and_goes_on(tmp_path):
    from mppsim.app.load import LoadConfig, run_load
    killed: list[str] = []

    def show(r):
        if killed or r.stats.elapsed < 1.0:
            return
        live = [c for c in r.calls.values() if c.connected_at is not None and not c.ended]
        if live:
            victim = live[0].callee
            killed.append(victim)
            os.kill(r.sim.orch.agents[r.sim.agent_of(victim)].pid, signal.SIGKILL)

    report = run_load(LoadConfig(calls=3, rate=3, duration=3, hold=1.5), users=3,
                      run_dir=str(tmp_path / "run"), show=show, out=lambda _t: None)
    assert killed, "no call was live to kill an agent in"
    calls = report["calls"]
    lost = calls["failures"].get("agent down", 0) + calls["failures"].get("far end lost", 0)
    assert lost >= 1, calls
    assert calls["answered"] > lost and calls["offered"] >= 6     # the others went on
    assert report["agents_down"]
