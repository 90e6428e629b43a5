"""`mppsim load` (issue 10, item 4): recorded calls at a rate, a live table, a JSON report,
Ctrl-C that ends the calls cleanly and still writes the report. Real agents, real recorder."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mppsim.app.ports import PortPlan

ROOT = Path(__file__).resolve().parents[1]


def mppsim_load(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mppsim.cli", "load", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, text=True, **kw)


def store_rows(store: Path) -> list[dict]:
    if not (store / "index.sqlite").exists():
        return []
    db = sqlite3.connect(f"file:{store / 'index.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM recordings")]
    finally:
        db.close()


def test_r_usr_2_load_places_recorded_calls_and_writes_a_report(tmp_path):
    """Every user is recorded Always (R-USR-2): one recording per answered call, in the
    SIPREC dialect asked for."""
    report = tmp_path / "r.json"
    proc = mppsim_load("--users", "3", "--calls", "3", "--rate", "3", "--duration", "2", "--hold", "0.5",
                       "--dialect", "rfc7866", "--report", str(report), "--run-dir", str(tmp_path / "run"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=110)
    assert proc.returncode == 0, out
    assert "mppsim load done" in out and "calls: " in out and "SIPREC answer: p50" in out
    data = json.loads(report.read_text())
    calls = data["calls"]
    assert calls["offered"] >= 4 and calls["answered"] == calls["offered"] and calls["failed"] == 0
    assert data["agents"] == 6                       # 3 users + 3 PSTN parties, one call each
    assert data["recordings"]["failed"] == 0
    assert data["recordings"]["store"]["by_state"] == {"complete": calls["answered"]}
    assert data["siprec_answer_ms"]["p50"] is not None and data["cpu_cores"]["mean"] is not None
    rows = store_rows(tmp_path / "run" / "recorder")
    assert len(rows) == calls["answered"] and {r["dialect"] for r in rows} == {"rfc7866"}


def test_bad_load_options_are_refused_naming_the_option(tmp_path):
    proc = mppsim_load("--calls", "2", "--rate", "0", "--duration", "2", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--rate: 0 given; allowed: more than 0, at most 100 calls/s" in err
    proc = mppsim_load("--calls", "2", "--rate", "1", "--duration", "2", "--recorder", "srs.example.com",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--recorder: 'srs.example.com' is not a SIP URI" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_ends_the_calls_cleanly_and_still_writes_the_report(tmp_path, sig):
    """SIGINT to the foreground group (a terminal's Ctrl-C), or SIGTERM to mppsim alone (`kill`,
    a cancelled CI job): the same clean end and the same report."""
    report = tmp_path / "r.json"
    # A terminal's foreground job takes Ctrl-C; a job started with '&' by a non-interactive shell
    # ignores SIGINT and passes that on, which would leave nothing for this test to see.
    proc = mppsim_load("--calls", "2", "--rate", "2", "--duration", "60", "--hold", "30",
                       "--report", str(report), "--run-dir", str(tmp_path / "run"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "answered 2" in line or not line:
            break
    assert "answered 2" in lines[-1], "".join(lines)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)   # as a terminal's Ctrl-C: the whole foreground group
    else:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + out
    assert "mppsim load interrupted" in out
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    calls = data["calls"]
    assert calls["answered"] == 2 and calls["completed"] == 2 and calls["failed"] == 0
    # the calls were ended, so their recordings were finished, not left "recording"
    assert data["recordings"]["store"]["by_state"] == {"complete": 2}


def test_an_unreachable_recorder_gives_its_reason_and_the_run_folder_is_kept(tmp_path):
    with socket.socket() as s:            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = tmp_path / "out" / "r.json"  # its folder is made
    proc = mppsim_load("--calls", "1", "--rate", "1", "--duration", "1", "--hold", "0.5",
                       "--recorder", f"sip:srs@127.0.0.1:{port};transport=tcp", "--report", str(report),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=60)
    data = json.loads(report.read_text())
    assert data["recordings"]["failed"] == 1
    (why, count), = data["recordings"]["failures"].items()
    assert count == 1 and f"127.0.0.1:{port}" in why and "Connection refused" in why
    assert f"recording failures: {why} (1x)" in out
    # a run with a failure keeps its folder, and says where it is
    assert data["run_dir_removed"] is False and f"run folder: {data['run_dir']}" in out
    import shutil
    shutil.rmtree(data["run_dir"])


def test_the_live_table_is_drawn_on_a_terminal(tmp_path):
    master, slave = pty.openpty()
    proc = mppsim_load("--calls", "1", "--rate", "2", "--duration", "1", "--hold", "0.5",
                       stdout=slave, stderr=slave)
    os.close(slave)
    text = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            text += chunk
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(master)
    screen = text.decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "\x1b[H\x1b[2J" in screen                        # redrawn in place
    for label in ("calls offered", "calls answered", "calls failed", "recordings started",
                  "recordings failed", "SIPREC answer p50/p99 ms", "CPU, mppsim processes", "elapsed"):
        assert label in screen, label
    assert "100.0 %" in screen and "[########################################]" in screen


def test_load_records_to_an_external_recorder(tmp_path):
    """--recorder: the SIPREC sessions go to the SRS given (here a standalone mppsim-recorder)."""
    store = tmp_path / "store"
    store.mkdir()
    port = PortPlan().single()
    log = open(tmp_path / "recorder.out", "w")
    rec = subprocess.Popen([sys.executable, "-m", "mppsim.recorder.cli", "--listen", f"127.0.0.1:{port}",
                            "--store", str(store)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        report = tmp_path / "r.json"
        proc = mppsim_load("--calls", "2", "--rate", "2", "--duration", "1", "--hold", "0.5",
                           "--recorder", f"sip:srs@127.0.0.1:{port};transport=tcp", "--report", str(report),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
        data = json.loads(report.read_text())
        assert data["config"]["recorder"].startswith("sip:srs@127.0.0.1")
        assert data["recordings"]["store"] is None         # no embedded recorder ran
        answered = data["calls"]["answered"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(store_rows(store)) < answered:
            time.sleep(0.2)
        rows = store_rows(store)
        assert answered >= 2 and len(rows) == answered
    finally:
        rec.terminate()
        rec.wait(10)
        log.close()


def test_cpu_meter_reads_no_short_interval_and_sees_a_busy_core():
    """/proc counts 10 ms ticks per process: a first sample 0.1 s after start read 2.5 cores on a
    2-core machine. Intervals under 0.5 s give no sample; a busy loop reads as at most one core
    (and well above none, though another test worker may share the cores)."""
    from mppsim.app.load import CpuMeter
    meter = CpuMeter()
    assert meter.sample() == 0.0 and meter.samples == []
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        pass
    cores = meter.sample()
    assert meter.samples == [cores] and 0.25 < cores <= 1.1
