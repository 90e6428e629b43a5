"""Who may command an agent (issue 22): only the run that started it proves the run's secret;
a foreign connection is refused and logged, on both ends of the control channel."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mppsim import IMPORT_ROOT
from mppsim.app.ports import PortPlan
from mppsim.app.simulator import Simulator
from mppsim.phone import protocol
from mppsim.phone.protocol import Channel
from tests.helpers import connect, demo_org


def test_proofs_are_bound_to_role_agent_and_both_nonces():
    secret = protocol.new_secret()
    p = protocol.proof(secret, "agent", "alice", "n1", "n2")
    assert protocol.proof_ok(secret, p, "agent", "alice", "n1", "n2")
    assert not protocol.proof_ok(secret, p, "app", "alice", "n1", "n2")        # not reflectable
    assert not protocol.proof_ok(secret, p, "agent", "bob", "n1", "n2")        # not another agent's
    assert not protocol.proof_ok(secret, p, "agent", "alice", "n1", "n3")      # not replayable
    assert not protocol.proof_ok(protocol.new_secret(), p, "agent", "alice", "n1", "n2")
    assert not protocol.proof_ok(secret, None, "agent", "alice", "n1", "n2")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Simulator(demo_org(), run_dir=tmp_path_factory.mktemp("auth"), recorder=False)
    s.start()
    yield s
    s.stop()


def impostor(sim: Simulator) -> Channel:
    return Channel.connect("127.0.0.1", sim.orch.control_port)


def test_the_app_refuses_a_hello_without_the_runs_secret_and_logs_it(sim):
    refused = []
    sim.subscribe(lambda ev: ev.get("event") == "control_refused" and refused.append(ev))
    chan = impostor(sim)
    challenge = chan.read_message()
    assert challenge["auth"] == "hmac-sha256" and len(challenge["challenge"]) == 32
    chan.send({"event": "hello", "agent": "alice", "pid": 1, "lines": [], "nonce": "x" * 32,
               "proof": protocol.proof("not the secret", "agent", "alice", challenge["challenge"], "x" * 32)})
    with pytest.raises(protocol.ChannelClosed):
        chan.read_message(timeout=3)            # closed, no welcome
    sim.wait_until(lambda: refused, 3, "the refusal published")
    assert refused[-1]["agent"] == "alice" and "does not prove this run's secret" in refused[-1]["why"]
    # the real alice still holds her channel: the impostor took nothing over
    assert sim.orch.request("alice", "ping")["pong"] is True
    assert sim.agent_status["alice"] == "up"


def test_the_app_refuses_a_connection_that_sends_no_hello(sim):
    before = len(sim.orch.refused)
    chan = impostor(sim)
    chan.read_message()
    chan.send({"id": 1, "cmd": "dial", "args": {"to": "1002"}})
    with pytest.raises(protocol.ChannelClosed):
        chan.read_message(timeout=3)
    deadline = time.monotonic() + 3
    while len(sim.orch.refused) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "not the hello of an agent of this run" in sim.orch.refused[-1]["why"]


def test_a_proven_agent_still_works_end_to_end(sim):
    connect(sim, "alice", "bob", "1002")
    sim.hangup("alice")
    sim.wait_for("bob", "ended", 3)


def agent_config(tmp_path: Path, control: str, secret: str, **extra) -> Path:
    cfg = {"agent": "lonely", "kind": "pstn", "run_dir": str(tmp_path), "control": control,
           "lines": [{"id": "+15550001", "extension": "+15550001", "display": "Lonely",
                      "sip_port": 0, "rtp_port": PortPlan().rtp_range()}],
           "control_secret": secret, **extra}
    path = tmp_path / "lonely.json"
    path.write_text(json.dumps(cfg))
    return path


def start_agent(config: Path, stderr: Path) -> subprocess.Popen:
    with open(stderr, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "mppsim.phone.agent", "--config", str(config)],
                                cwd=str(IMPORT_ROOT), stdin=subprocess.DEVNULL, stdout=err, stderr=err)


def test_an_agent_refuses_commands_from_a_listener_that_is_not_its_run(tmp_path):
    """Someone else listens where the agent's run should be (its app died, the port was taken):
    the agent proves itself, sees no proof back, and acts on nothing."""
    secret = protocol.new_secret()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    proc = start_agent(agent_config(tmp_path, f"127.0.0.1:{port}", secret), tmp_path / "err.log")
    try:
        listener.settimeout(20)
        sock, _ = listener.accept()
        chan = Channel(sock)
        chan.send({"challenge": "c" * 32, "auth": "hmac-sha256"})
        hello = chan.read_message(timeout=10)
        assert hello["event"] == "hello" and hello["agent"] == "lonely"
        assert protocol.proof_ok(secret, hello["proof"], "agent", "lonely", "c" * 32, hello["nonce"])
        # no secret here: a made-up welcome, then a command in the same write
        chan.send_many([{"welcome": "0" * 64}, {"id": 1, "cmd": "dial", "args": {"to": "sip:1@127.0.0.1:9"}}])
        with pytest.raises(protocol.ChannelClosed):
            chan.read_message(timeout=10)       # no reply to the command: the channel closes
        assert proc.wait(10) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    log = (tmp_path / "err.log").read_text()
    assert "refused the control channel" in log and "does not prove this run's secret" in log


def test_over_tls_the_agents_pin_the_runs_certificate(tmp_path):
    sim = Simulator(demo_org(), run_dir=tmp_path / "run", recorder=False)
    sim.orch.control_tls = True
    with sim:
        assert sim.orch.tls_fingerprint and len(sim.orch.tls_fingerprint) == 64
        chan = sim.orch.agents["alice"].chan
        assert chan.sock.version() in ("TLSv1.2", "TLSv1.3")
        connect(sim, "alice", "bob", "1002")
        sim.hangup("alice")
        sim.wait_for("bob", "ended", 3)
        # an agent given another fingerprint will not talk to this app
        cfg = agent_config(tmp_path, f"127.0.0.1:{sim.orch.control_port}", sim.orch.secret,
                           control_tls_sha256="ab" * 32)
        proc = start_agent(cfg, tmp_path / "err.log")
        assert proc.wait(20) != 0
        assert "is not this run's" in (tmp_path / "err.log").read_text()
