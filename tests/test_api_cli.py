"""`mppsim api` (issue 12, build 1): the simulator headless behind the HTTP APIs, until SIGTERM;
and the GUI starting the same server (port in the status bar, `--no-api` turns it off)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
ORG = ROOT / "examples" / "demo-org.yaml"


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_mppsim_api_serves_until_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.cli", "api", "--org", str(ORG), "--port", "0",
                             "--token", "s3cret", "--run-dir", str(tmp_path / "run")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"mppsim api exited early: {''.join(lines)}"
            lines.append(line)
            if line.startswith("token:"):
                break
        url_line = next(l for l in lines if l.startswith("listening on "))
        base = url_line.split()[-1]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        assert lines[-1].strip() == "token: s3cret"
        root = base[:-len("/v1")]
        status, err = get(f"{root}/mppsim/v1/devices")               # no token: 401
        assert status == 401 and err["trackingId"].startswith("MPPSIM_")
        status, body = get(f"{root}/mppsim/v1/devices", "s3cret")
        assert status == 200 and {"alice", "bob"} <= {d["id"] for d in body["devices"]}
        status, st = get(f"{root}/mppsim/v1/status", "s3cret")
        pids = [p for p in st["agent_pids"].values() if p]
        assert pids and all(alive(p) for p in pids)
        assert st["run_dir"] == str(tmp_path / "run")

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "stopping" in out
        time.sleep(0.5)
        assert not any(alive(p) for p in pids), "agents outlived mppsim api"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_mppsim_api_refuses_a_taken_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        r = subprocess.run([sys.executable, "-m", "mppsim.cli", "api", "--port", str(s.getsockname()[1])],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        s.close()
    assert r.returncode == 2
    assert "cannot listen on 127.0.0.1" in r.stderr


def test_mppsim_api_bad_org_names_the_problem(tmp_path):
    bad = tmp_path / "org.yaml"
    bad.write_text("organisation: {name: x}\nusers: nope\n")
    r = subprocess.run([sys.executable, "-m", "mppsim.cli", "api", "--org", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "users" in r.stderr


def test_gui_status_bar_shows_api(qtbot, tmp_path):
    from mppsim.app.http_server import ApiServer
    from mppsim.app.simulator import Simulator
    from mppsim.ui.main_window import MainWindow
    sim = Simulator(ORG, run_dir=tmp_path, front_door_port=None, recorder=False).start()
    server = ApiServer(sim).start()
    try:
        w = MainWindow(sim, api_url=server.url)
        qtbot.addWidget(w)
        assert f"API {server.url}/v1" in w.statusBar().currentMessage()
        status, body = get(f"{server.url}/mppsim/v1/devices/alice", server.token)
        assert status == 200 and body["call_state"] == "idle"
        w2 = MainWindow(sim)           # --no-api
        qtbot.addWidget(w2)
        assert "API off" in w2.statusBar().currentMessage()
    finally:
        server.stop()
        sim.stop()


def test_mppsim_api_stopped_cleanly_removes_its_temp_run_folder():
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.cli", "api", "--org", str(ORG), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lines and "logs: " in lines[-1]):
            line = proc.stdout.readline()
            assert line, f"mppsim api exited early: {''.join(lines)}"
            lines.append(line)
        run_dir = Path(lines[-1].rsplit("logs: ", 1)[1].strip())
        assert run_dir.is_dir()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert f"mppsim: run folder {run_dir} removed (--keep or --run-dir keeps it)" in out
    assert not run_dir.exists()
