"""`mppsim-recorder --workers N` (recorder/pool.py): N processes behind one SIP port, fed by SIPp
(Debian `sip-tester`), a SIPREC client nobody here wrote.

TCP sessions are spread over the workers by the kernel (SO_REUSEPORT), UDP stays with the first;
every worker writes to the one store, and its rows name it (`worker`). A worker killed mid-session
is started again and the recording it left is repaired `truncated`, while the other worker's
recordings complete; SIGTERM to the first worker ends every worker's sessions (`shutdown`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read
from tests.peers.recorder_proc import start_recorder
from tests.peers.rtp_pcap import Stream
from tests.peers.sipp_runner import SIPP, command, run_sipp

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp not installed: scripts/setup installs the "
                                                      "Debian package sip-tester")

KEYS = {"offer": "0 8 101", "session": "a84b4c76e66710"}


def sessions(rec, workdir: Path, tag: str, calls: int, transport: str = "tn", hold_s: float = 1.5,
             wait: bool = True):
    """SIPp places `calls` RFC 7866 sessions with a tone on each stream (-t tn: a TCP connection
    per call). (the Call-ID prefix of this batch, SIPp's result or - wait=False - its process)."""
    call_id = f"{tag}-{uuid.uuid4().hex[:8]}"
    tone = max(1.2, hold_s - 0.5)
    kw = dict(transport=transport, calls=calls, rate=40, limit=calls, hold_ms=int(hold_s * 1000),
              call_id=f"{call_id}-%u@%s", keys=KEYS, trace_messages=False, timeout=hold_s + 20,
              streams=[Stream(700, tone), Stream(1100, tone, ssrc=0x2000)])
    if wait:
        return call_id, run_sipp("rfc7866.xml", rec.sip, workdir / tag, **kw)
    cmd = command("rfc7866.xml", rec.sip, workdir / tag, **kw)
    return call_id, subprocess.Popen(cmd, cwd=workdir / tag, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)


def rows_of(rec, call_id: str, count: int, settled: bool = True, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = [r for r in rec.rows() if r["recording_call_id"].startswith(call_id)
                and (not settled or r["state"] != "recording")]
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{len(rows)}/{count} recordings of {call_id}; recorder log tail:\n"
                         + "\n".join(rec.log().splitlines()[-30:]))


def tones_right(row: dict) -> bool:
    rate, audio = read(row["audio_path"])
    left, right = analyse(audio[:, 0], rate), analyse(audio[:, 1], rate)
    return (left.freq_hz is not None and abs(left.freq_hz - 700) < 14 and left.active_seconds >= 1.0
            and right.freq_hz is not None and abs(right.freq_hz - 1100) < 22 and right.active_seconds >= 1.0)


def test_tcp_sessions_spread_over_the_workers_udp_stays_with_the_first(tmp_path):
    rec = start_recorder(tmp_path / "store", "--workers", "2")
    try:
        pids = rec.ready["workers"]
        assert len(pids) == 2 and pids[0] == rec.proc.pid, rec.ready
        # one TCP connection per call (-t tn): the kernel picks a worker for each
        tcp_id, run = sessions(rec, tmp_path, "wtcp", 16)
        assert run.returncode == 0, run.explain()
        rows = rows_of(rec, tcp_id, 16)
        assert {(r["state"], r["ended_by"]) for r in rows} == {("complete", "bye")}
        assert {r["worker"] for r in rows} == {"w0", "w1"}, [r["worker"] for r in rows]
        assert all(tones_right(r) for r in rows)
        # UDP: the first worker only (a flow hashed over the workers would move when one restarts)
        udp_id, run = sessions(rec, tmp_path, "wudp", 4, transport="u1")
        assert run.returncode == 0, run.explain()
        rows = rows_of(rec, udp_id, 4)
        assert {r["worker"] for r in rows} == {"w0"} and all(tones_right(r) for r in rows)
        # --stats lists every worker's counters
        status = [json.loads(p.read_text()) for p in (rec.store / "status").glob("recorder-*.json")]
        assert sorted(s["name"] for s in status if s["pid"] in pids) == ["w0", "w1"]
    finally:
        assert rec.stop() == 0, rec.log()
    assert not any(_alive(pid) for pid in pids), "a worker outlived the first one"


def test_a_worker_killed_mid_session_is_started_again_and_nothing_stored_is_lost(tmp_path):
    """kill -9 of the second worker with sessions on both: its recordings are repaired `truncated`
    by the worker started in its place, the first worker's complete with their tones, and the
    port takes new sessions on both workers again."""
    rec = start_recorder(tmp_path / "store", "--workers", "2")
    try:
        first, second = rec.ready["workers"]
        call_id, sipp = sessions(rec, tmp_path, "wkill", 12, hold_s=4.0, wait=False)
        live = rows_of(rec, call_id, 12, settled=False, timeout=15)
        assert {r["worker"] for r in live} == {"w0", "w1"}, [r["worker"] for r in live]
        time.sleep(2.0)                    # a second of audio or more flushed by every worker
        os.kill(second, signal.SIGKILL)
        sipp.wait(60)
        rows = rows_of(rec, call_id, 12, timeout=20)
        by_worker = {w: [r for r in rows if r["worker"] == w] for w in ("w0", "w1")}
        assert all(r["state"] == "complete" and tones_right(r) for r in by_worker["w0"]), by_worker["w0"]
        # what the dead worker had written stays: its rows closed, the audio it flushed kept
        assert all(r["state"] == "truncated" for r in by_worker["w1"]), by_worker["w1"]
        for r in by_worker["w1"]:
            rate, audio = read(r["audio_path"])      # a WAV that reads, with what was flushed
            kept = analyse(audio[:, 0], rate)
            assert kept.freq_hz is not None and abs(kept.freq_hz - 700) < 14 and kept.active_seconds >= 0.25, \
                f"the dead worker's audio before the kill: {kept}"
        assert "worker w1" in rec.log() and "starting it again" in rec.log()
        again, run = sessions(rec, tmp_path, "wagain", 12)
        assert run.returncode == 0, run.explain()
        rows = rows_of(rec, again, 12)
        assert {r["worker"] for r in rows} == {"w0", "w1"} and all(tones_right(r) for r in rows)
        assert _alive(first)
    finally:
        assert rec.stop() == 0, rec.log()


def test_sigterm_to_the_first_worker_ends_every_workers_sessions(tmp_path):
    rec = start_recorder(tmp_path / "store", "--workers", "2")
    pids = rec.ready["workers"]
    call_id, sipp = sessions(rec, tmp_path, "wterm", 10, hold_s=20.0, wait=False)
    try:
        live = rows_of(rec, call_id, 10, settled=False, timeout=15)
        assert {r["worker"] for r in live} == {"w0", "w1"}
        time.sleep(1.0)
        assert rec.stop(20) == 0, rec.log()
        rows = rows_of(rec, call_id, 10, timeout=5)
        assert {(r["state"], r["ended_by"]) for r in rows} == {("complete", "shutdown")}, \
            [(r["worker"], r["state"], r["ended_by"]) for r in rows]
        assert not any(_alive(pid) for pid in pids)
    finally:
        sipp.kill()
        sipp.wait()


@pytest.mark.parametrize("value", ["0", "17"])
def test_workers_out_of_range_is_refused_naming_the_allowed_values(tmp_path, value):
    r = subprocess.run([sys.executable, "-m", "mppsim.recorder.cli", "--store", str(tmp_path),
                        "--workers", value], capture_output=True, text=True, timeout=30,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2 and "--workers: allowed 1-16" in r.stderr, r.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:       # a zombie child of ours is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
