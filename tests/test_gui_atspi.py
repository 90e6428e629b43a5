"""A recorded call driven from outside the process through AT-SPI, as QA tools see the app (issue 23).

`mppsim gui` runs under Xvfb with its own D-Bus session bus (the accessibility bus is started
from it by at-spi-bus-launcher) and QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1; the SYSTEM python3 runs
tests/atspi_driver.py with Debian's python3-pyatspi: dial on alice's MPP, answer on bob's, read
"Connected" and the remote name from bob's screen, the REC indicator from alice's MPP and Webex
App, pause and resume from the Webex App's More menu, end the call. Then SIGTERM ends the GUI.
A second run, in an org that ends the calls it cannot record and has no recorder to reach,
reads why alice's call ended ("Call ended (recording failed)") as a QA tool would.

scripts/setup installs the Debian packages (xvfb, at-spi2-core, python3-pyatspi, dbus-daemon).
When one is missing the test fails and says which: an accessibility regression must not hide
behind a skip.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"
DRIVER = Path(__file__).with_name("atspi_driver.py")
BUS_LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
SETUP_HINT = "run scripts/setup (it installs xvfb, at-spi2-core, python3-pyatspi, dbus-daemon)"


def missing_tools() -> list[str]:
    missing = [tool for tool in ("Xvfb", "dbus-daemon") if shutil.which(tool) is None]
    if not Path(BUS_LAUNCHER).exists():
        missing.append(f"{BUS_LAUNCHER} (at-spi2-core)")
    if not Path(SYSTEM_PYTHON).exists():
        missing.append(SYSTEM_PYTHON)
    elif subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True).returncode != 0:
        missing.append("pyatspi for the system python3 (python3-pyatspi)")
    return missing


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def stop(proc: subprocess.Popen | None, sig=signal.SIGTERM) -> None:
    """End a process this test started and what it started (by pid)."""
    if proc is None or proc.poll() is not None:
        return
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def gui_on_atspi(tmp_path: Path, org: Path):
    """`mppsim gui --org ORG` on a display and a session bus of its own, accessibility on.
    Yields (gui, drive): drive(*args) runs tests/atspi_driver.py with args under the system
    python3 and returns its observations, asserting it passed."""
    missing = missing_tools()
    assert not missing, f"the AT-SPI test cannot run: missing {', '.join(missing)}; {SETUP_HINT}"
    procs: list[subprocess.Popen] = []
    bus_children: list[int] = []
    gui = None
    try:
        # a display of our own: Xvfb picks a free number and writes it to the pipe
        read_fd, write_fd = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24",
                                 "-nolisten", "tcp"], pass_fds=(write_fd,),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(xvfb)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            display = pipe.readline().strip()
        assert display, "Xvfb did not start"
        # a session bus of our own; the accessibility bus is activated from it, its socket in
        # our runtime folder (not ~/.cache, which another run on the machine may share)
        private = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                               stdout=subprocess.PIPE, text=True, env=private)
        procs.append(bus)
        address = bus.stdout.readline().strip()
        assert address.startswith("unix:"), f"dbus-daemon gave no address: {address!r}"
        env = {**os.environ, "DISPLAY": f":{display}", "DBUS_SESSION_BUS_ADDRESS": address,
               "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1", "QT_QPA_PLATFORM": "xcb",
               "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "XDG_RUNTIME_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
        gui = subprocess.Popen([sys.executable, "-m", "mppsim", "gui", "--org", str(org),
                                "--front-door-port", "0"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert "listening on" in gui.stdout.readline(), "mppsim gui did not start"
        # the driver: the system python3, outside the GUI's process and virtualenv
        driver_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        driver_env["PATH"] = "/usr/bin:/bin"

        def drive(*args: str) -> list[dict]:
            nonlocal bus_children
            run = subprocess.run([SYSTEM_PYTHON, str(DRIVER), *args], env=driver_env,
                                 capture_output=True, text=True, timeout=120)
            bus_children = descendants(bus.pid)
            steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
            failed = next((s["why"] for s in steps if s.get("step") == "failed"), None)
            assert run.returncode == 0, f"AT-SPI driver: {failed or run.stderr[-2000:]}\n{run.stdout[-3000:]}"
            assert steps[-1] == {"step": "done"}
            return steps

        yield gui, drive
        # and the GUI ends cleanly on SIGTERM, simulator included
        gui.send_signal(signal.SIGTERM)
        assert gui.wait(timeout=15) == 0
    finally:
        stop(gui)
        for proc in reversed(procs):
            stop(proc)
        for pid in bus_children:         # at-spi-bus-launcher and the accessibility bus
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def reads(steps: list[dict]) -> set[tuple[str, str]]:
    return {(s["id"], s["text"]) for s in steps if s.get("step") == "read"}


def test_a_recorded_call_driven_through_atspi(tmp_path):
    with gui_on_atspi(tmp_path, ROOT / "examples/demo-org.yaml") as (_gui, drive):
        started = time.monotonic()
        steps = drive()
        took = time.monotonic() - started
        seen = reads(steps)
        for wanted in [("mpp_bob_screen_state", "Connected"), ("mpp_bob_screen_title", "Alice Smith"),
                       ("mpp_alice_screen_rec", "REC"), ("mpp_alice_screen_rec", "PAUSED"),
                       ("webex_alice_indicator", "Recording"), ("webex_alice_indicator", "Recording paused")]:
            assert wanted in seen, f"the driver never read {wanted}: {sorted(seen)}"
        assert took < 60, f"the AT-SPI run took {took:.0f} s"


def test_a_call_ended_because_its_recording_failed_says_so_through_atspi(tmp_path):
    """R-ORG-3 as a QA tool sees it: the organisation ends calls it cannot record
    (END_CALL_WITH_ANNOUNCEMENT) and its recorder refuses connections (a port bound, never
    listening); alice's MPP reads "Call ended (recording failed)", not a plain "Call ended"."""
    data = yaml.safe_load((ROOT / "examples/demo-org.yaml").read_text())
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        recording = data["organisation"]["recording"]
        recording["failureBehavior"] = "END_CALL_WITH_ANNOUNCEMENT"
        recording["recorders"] = {recording["provider"]: f"sip:127.0.0.1:{dead.getsockname()[1]};transport=tcp"}
        org = tmp_path / "org.yaml"
        org.write_text(yaml.safe_dump(data))
        with gui_on_atspi(tmp_path, org) as (_gui, drive):
            seen = reads(drive("recording-failed"))
    assert ("mpp_alice_screen_state", "Call ended (recording failed)") in seen, sorted(seen)
