"""`mppsim gui` ends cleanly on Ctrl-C (SIGINT) and SIGTERM: the simulator's agents and recorder
stop and the command exits 0 (issue 23; it ignored Ctrl-C for 8 s and more before)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> set[int]:
    """Every descendant process of `pid` (from /proc)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            for child in task.read_text().split():
                if int(child) not in found:
                    found.add(int(child))
                    todo.append(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_gui_stops_the_simulator_and_exits_0(tmp_path, sig):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONUNBUFFERED": "1"}
    gui = subprocess.Popen([sys.executable, "-m", "mppsim", "gui", "--org", str(ROOT / "examples/demo-org.yaml"),
                            "--front-door-port", "0"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "listening on" in gui.stdout.readline(), "the GUI did not start its APIs"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(children(gui.pid)) < 5:   # 4 users, PSTN, voicemail, recorder
            time.sleep(0.1)
        agents = children(gui.pid)
        assert len(agents) >= 5, f"only {len(agents)} child processes"
        time.sleep(0.5)                   # the event loop runs
        started = time.monotonic()
        gui.send_signal(sig)
        code = gui.wait(timeout=15)
        took = time.monotonic() - started
    finally:
        if gui.poll() is None:
            gui.kill()
            gui.wait()
    out = gui.stdout.read()
    assert code == 0, f"exit {code} after {sig.name}:\n{out}"
    assert f"{sig.name}: stopped" in out
    assert took < 10, f"{took:.1f} s to stop"
    left = [pid for pid in agents if alive(pid)]
    assert not left, f"processes still running after the GUI exited: {left}"
