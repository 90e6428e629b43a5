"""Issue 14: the scenario runner as a stepping engine (the GUI player's), and the `say` step."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mppsim.app.scenario import Runner, ScenarioError, parse_scenario
from tests.helpers import DEMO_ORG


def parsed(steps: list) -> object:
    return parse_scenario({"org": str(DEMO_ORG), "steps": steps}, Path("case.yaml"))


def test_say_takes_a_text_and_names_the_field_when_it_is_not_one():
    assert parsed([{"say": "Alice calls Bob"}]).steps[0].args == "Alice calls Bob"
    for bad in ("", "   ", {"text": "x"}, [1], True):
        with pytest.raises(ScenarioError) as exc:
            parsed([{"say": bad}])
        assert "steps[1].say" in str(exc.value) and "caption text" in str(exc.value)


def test_step_by_step_with_callbacks_speed_and_stop(sim):
    scenario = parsed([{"say": "hello"}, {"wait": "0.4s"}, {"dial": {"from": "alice", "to": "1002"}},
                       {"expect": {"who": "bob", "call": "ringing"}}, {"wait": "30s"}, {"hangup": {"who": "alice"}}])
    seen, said = [], []
    runner = Runner(sim, scenario, on_step=lambda r: seen.append((r.index, r.status)), on_say=said.append)
    runner.speed = 4.0
    assert runner.step().status == "passed" and said == ["hello"]
    t0 = time.monotonic()
    assert runner.step().status == "passed"
    assert time.monotonic() - t0 < 0.3                  # 0.4 s at 4x
    assert runner.step().status == "passed" and runner.step().status == "passed"
    assert seen[:2] == [(1, "running"), (1, "passed")] and runner.position == 4 and not runner.done
    # Stop from another thread ends the 30 s wait at once; the run is done after it
    threading.Timer(0.2, runner.stop).start()
    t0 = time.monotonic()
    result = runner.step()
    assert result.status == "skipped" and result.error == "stopped" and time.monotonic() - t0 < 2
    assert runner.done and runner.step() is None
    run = runner.finish()
    assert [s.status for s in run.steps] == ["passed"] * 4 + ["skipped", "skipped"]
    assert not run.passed and run.failed_step is None
    assert sim.call_state("bob") == "ended"             # finish hung up what was up
