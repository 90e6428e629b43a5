"""Two small things an agent does for a burst of calls (issue 10): the warm-up rehearsal of a
recording's set-up (src/mppsim/phone/warmup.py) and the events held from a call's answer until its
recorder's INVITE is on its way (Agent.emits_held). Pure logic; the burst figures are in
docs/scaling.md (bench/scale.py)."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from mppsim.phone.agent import Agent
from mppsim.phone.protocol import Channel
from mppsim.phone.warmup import rehearse
from mppsim.rules.effective import MODES, EffectiveSettings


@pytest.mark.parametrize("mode", MODES)
def test_the_rehearsal_runs_every_recording_mode_without_a_trace(mode):
    settings = EffectiveSettings("l1", "alice", "user", ("mpp", "webex-app"), enabled=mode != "Never", mode=mode,
                                 announce_internal=True, repeat_enabled=True, platform=("SP", "G", "u@x"))
    # documents, SIP text and events were made, and the policy's actions and views on top
    assert rehearse([settings], rounds=1) > rehearse([], rounds=1) > 5_000


def reader_of(sock: socket.socket) -> list[dict]:
    sock.settimeout(0.2)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    return [json.loads(line) for line in got.decode().splitlines()]


@pytest.fixture
def agent_and_app():
    mine, app = socket.socketpair()
    agent = Agent.__new__(Agent)        # only what emit needs: a name and the control channel
    agent.name, agent.chan, agent.stopping = "alice", Channel(mine), False
    yield agent, app
    mine.close()
    app.close()


def test_held_events_go_after_the_block_in_order_and_in_one_write(agent_and_app):
    agent, app = agent_and_app
    with agent.emits_held():
        agent.emit("call", state="connected")
        agent.emit("recorder", op="start")
        assert reader_of(app) == []                       # nothing has woken the app yet
    app.settimeout(1)
    first_read = app.recv(65536)                         # both lines arrive in one piece
    assert [json.loads(l)["event"] for l in first_read.decode().splitlines()] == ["call", "recorder"]
    agent.emit("siprec", state="active")                 # outside the block: at once
    assert [m["event"] for m in reader_of(app)] == ["siprec"]


def test_events_of_another_thread_are_not_held(agent_and_app):
    agent, app = agent_and_app
    with agent.emits_held():
        agent.emit("call", state="connected")
        other = threading.Thread(target=lambda: agent.emit("log", text="from the network SRC"))
        other.start()
        other.join()
        assert [m["event"] for m in reader_of(app)] == ["log"]
    assert [m["event"] for m in reader_of(app)] == ["call"]


def test_a_nested_block_does_not_send_early(agent_and_app):
    agent, app = agent_and_app
    with agent.emits_held():
        with agent.emits_held():
            agent.emit("a")
        agent.emit("b")
        assert reader_of(app) == []
    assert [m["event"] for m in reader_of(app)] == ["a", "b"]
