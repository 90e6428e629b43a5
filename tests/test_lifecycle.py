"""Supervision: nothing leaks over many calls, a dead agent is reported and restartable."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mppsim.app.ports import port_free
from mppsim.app.simulator import Simulator, SimulatorError
from tests.helpers import demo_org


def socket_count(pid: int) -> int:
    """UDP sockets (SIP and RTP/RTCP) the process holds. TCP is left out: pjsip keeps the
    connection to the recorder open between recordings and closes it when idle."""
    udp = set()
    for table in ("udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            udp |= {line.split()[9] for line in path.read_text().splitlines()[1:]}
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).removeprefix("socket:[").rstrip("]") in udp)


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def one_call(sim: Simulator) -> None:
    sim.dial("alice", "1002")
    sim.wait_for("bob", "ringing", 3)
    sim.answer("bob")
    sim.wait_for("alice", "connected", 3)
    time.sleep(0.3)   # talk a moment: pjlib frees a closed socket's slot only after 500 ms
    sim.hangup("alice")
    sim.wait_for("bob", "ended", 3)
    time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_twenty_calls_in_a_row_leave_nothing_behind(tmp_path):
    threads_before = threading.active_count()
    sim = Simulator(demo_org(), run_dir=tmp_path)
    sim.start()
    pids = {n: p for n, p in sim.agent_pids().items()}
    ports = [line["sip_port"] for spec in sim.orch.specs for line in spec.lines]
    try:
        sim.play("alice", tone=1000)
        one_call(sim)
        time.sleep(1.0)
        baseline = {n: (socket_count(pids[n]), thread_count(pids[n])) for n in ("alice", "bob")}
        for _ in range(20):
            one_call(sim)
        time.sleep(1.5)  # let the last BYE transactions finish
        for name in ("alice", "bob"):
            status = sim.status(name)
            assert not [c for c in status["calls"] if c["state"] != "ended"], f"{name} has live calls"
            assert status["lines"][name] == "idle"
            assert (socket_count(pids[name]), thread_count(pids[name])) == baseline[name], \
                f"{name}: sockets/threads grew from {baseline[name]}"
        assert len([c for c in sim.call_log() if c["answered"]]) == 21
    finally:
        sim.stop()
    assert not [n for n, pid in pids.items() if alive(pid)], "agent processes left running"
    assert all(port_free(p) for p in ports), "SIP ports still bound after stop"
    deadline = time.monotonic() + 3
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() <= threads_before, [t.name for t in threading.enumerate()]


def test_a_killed_agent_is_reported_down_and_can_be_restarted(tmp_path):
    """Without supervision (test_supervision.py has it on, the default) a dead agent stays
    down: calls to it are refused at once until someone restarts it."""
    sim = Simulator(demo_org(), run_dir=tmp_path)
    sim.orch.supervise = False
    with sim:
        downs = []
        sim.subscribe(lambda ev: ev["event"] == "agent_down" and downs.append(ev))
        sim.kill_agent("bob")
        sim.wait_until(lambda: sim.agent_status["bob"] == "down", 3, "bob reported down")
        assert downs and downs[0]["agent"] == "bob" and downs[0]["returncode"] != 0
        start = time.monotonic()
        with pytest.raises(SimulatorError, match="agent bob is down"):
            sim.answer("bob")
        assert time.monotonic() - start < 1.0   # refused at once, not hung on
        with pytest.raises(SimulatorError, match="to: 1002 is unavailable: its agent is down"):
            sim.dial("alice", "1002")
        sim.restart_agent("bob")
        assert sim.agent_status["bob"] == "up"
        sim.play("bob", tone=1500)
        one_call(sim)


def test_a_crashed_app_leaves_no_agents_or_recorders_behind(tmp_path):
    """The agents follow their control channel, the recorder workers their parent."""
    import json
    import subprocess
    import sys
    code = (
        "import json, os\n"
        "from tests.helpers import demo_org\n"
        "from mppsim.app.simulator import Simulator\n"
        f"sim = Simulator(demo_org(), run_dir={str(tmp_path)!r}).start()\n"
        "pids = list(sim.agent_pids().values()) + [w.proc.pid for w in sim.recorders.workers]\n"
        "print(json.dumps(pids), flush=True)\n"
        "os._exit(1)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    pids = json.loads(out.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 8
    while [p for p in pids if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if alive(p)], "children outlived the crashed app"
