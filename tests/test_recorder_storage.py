"""The recorder never loses a session silently (issue 26): what it accepted, it kept - or it said no.

Real small filesystems (a tmpfs each test mounts as root), the real `mppsim-recorder` process,
SIPp (Debian `sip-tester`) as the independent SIPREC client (tests/peers/sipp/rfc7866_storage.xml:
it takes a 503, or a BYE from the recorder mid-call), real SQLite. Checked: the sessions before
the disk filled are intact, the one that hit the limit is closed `truncated` with its audio so
far playable, the later ones are refused 503 with Retry-After and counted, no row stays
`recording`, the index passes integrity_check, recording resumes when space is back; a read-only
or vanished store; SIGTERM and SIGKILL mid-session.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from mppsim.phone.analysis import analyse
from mppsim.recorder import wavfile
from mppsim.recorder.store import RESERVE, Store
from tests.peers.recorder_proc import ROOT, start_recorder
from tests.peers.rtp_pcap import Stream
from tests.peers.sipp_runner import SIPP, SippRun, command, run_sipp

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp not installed: scripts/setup installs the "
                                                      "Debian package sip-tester")

SCENARIO = "rfc7866_storage.xml"      # the SRC hangs up after 3 s, unless the recorder does first


# --- helpers ---------------------------------------------------------------------------------

@contextlib.contextmanager
def small_fs(path: Path, size: str, options: str = ""):
    """A tmpfs of ``size`` mounted at ``path`` (root needed: the tests run as root here)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a {size} tmpfs at {path}: {done.stderr.strip()} - these tests need "
                    "root (mount -t tmpfs); run them as root or in a container that allows mounts")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path: Path) -> int:
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def ballast(path: Path, leave: int) -> None:
    """Fill the filesystem of ``path`` until about ``leave`` bytes are free."""
    size = free_bytes(path.parent) - leave
    assert size > 0, f"only {free_bytes(path.parent)} bytes free, wanted to leave {leave}"
    with open(path, "wb") as f:
        f.write(b"\1" * size)


def until(predicate, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}\n{log()[-3000:]}")


def stats(rec, settled=lambda st: True) -> dict:
    """`mppsim-recorder --stats` for this recorder; the status file is rewritten every second,
    so wait until it shows what ``settled`` expects (then return it; else the last one)."""
    line: dict = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-m", "mppsim.recorder.cli", "--stats", "--store", str(rec.store)],
                             capture_output=True, text=True, cwd=ROOT, timeout=30)
        lines = [json.loads(x) for x in out.stdout.splitlines() if json.loads(x)["pid"] == rec.proc.pid]
        if lines:
            line = lines[0]
            if settled(line):
                return line
        time.sleep(0.3)
    assert line, f"no --stats line of pid {rec.proc.pid}"
    return line


def session(rec, tmp_path: Path, tag: str) -> tuple[SippRun, str]:
    """One SIPREC session from SIPp: 700 Hz on the left stream, 1100 Hz on the right, 3 s."""
    call_id = f"{tag}-{uuid.uuid4().hex[:8]}"
    run = run_sipp(SCENARIO, rec.sip, tmp_path / tag, call_id=f"{call_id}-%u@%s",
                   streams=[Stream(700, 3.4), Stream(1100, 3.4, ssrc=0x2000)],
                   keys={"offer": "0 8 101", "session": tag}, timeout=20)
    assert run.returncode == 0, run.explain()
    return run, call_id


def rows_of(rec, call_id: str) -> list[dict]:
    return [r for r in rec.rows() if r["recording_call_id"].startswith(call_id)]


def settled_row(rec, call_id: str) -> dict:
    (row,) = until(lambda: [r for r in rows_of(rec, call_id) if r["state"] != "recording"], 10,
                   f"the row of {call_id} closed", rec.log)
    return row


def assert_refused(run: SippRun, word: str) -> None:
    (final,) = run.final("INVITE")
    assert final[0] == 503 and "storage" in final[1].lower() and word in final[1].lower(), final
    (resp,) = [m for m in run.received() if m.startswith("SIP/2.0 503")]
    assert "\nRetry-After: " in resp.replace("\r\n", "\n"), resp


def options(rec) -> str:
    """An OPTIONS over UDP, as an SRC's keep-alive sends it; the response's first line."""
    host, port = rec.host, rec.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(3)
        me = s.getsockname()[1]
        s.sendto((f"OPTIONS sip:srs@{host}:{port} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP {host}:{me};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                  f"From: <sip:keepalive@{host}>;tag=ka\r\nTo: <sip:srs@{host}>\r\n"
                  f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                  "Content-Length: 0\r\n\r\n").encode(), (host, port))
        data, _ = s.recvfrom(65536)
    return data.decode()


def assert_index_sound(rec) -> None:
    """integrity_check ok and no row left `recording` (every session here has ended)."""
    conn = sqlite3.connect(f"file:{rec.store / 'index.sqlite'}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM recordings WHERE state='recording'").fetchone()[0] == 0
    finally:
        conn.close()


def assert_wav_final(path: str) -> float:
    """The header claims exactly the frames in the file (no repair needed); seconds of audio."""
    rate, channels, frames = wavfile.info(path)
    assert os.path.getsize(path) == wavfile.HEADER_BYTES + frames * channels * 2, path
    return frames / rate


def assert_tones(path: str, min_seconds: float) -> None:
    rate, audio = wavfile.read(path)
    for channel, freq in ((0, 700), (1, 1100)):
        heard = analyse(audio[:, channel], rate)
        assert heard.freq_hz == pytest.approx(freq, rel=0.02), (channel, heard)
        assert heard.active_seconds >= min_seconds, (channel, heard)


# --- pure parts ------------------------------------------------------------------------------

def test_storage_causes_and_min_free_sizes():
    """Which failures end a session, under which ended_by; --min-free's sizes."""
    import errno
    import argparse
    from mppsim.recorder.cli import size
    from mppsim.recorder.store import StorageFailure, storage_cause
    assert storage_cause(OSError(errno.ENOSPC, "full")) == "storage-full"
    assert storage_cause(OSError(errno.EDQUOT, "quota")) == "storage-full"
    assert storage_cause(OSError(errno.EROFS, "ro")) == "storage-read-only"
    assert storage_cause(OSError(errno.ENOENT, "gone")) == "storage-missing"
    assert storage_cause(OSError(errno.EIO, "io")) == "storage-error"
    assert storage_cause(sqlite3.OperationalError("database or disk is full")) == "storage-full"
    assert storage_cause(sqlite3.OperationalError("attempt to write a readonly database")) == "storage-read-only"
    assert storage_cause(sqlite3.OperationalError("database is locked")) is None     # busy, not broken
    assert storage_cause(ValueError("a bug")) is None
    assert storage_cause(StorageFailure("storage-full")) == "storage-full"
    assert [size(x) for x in ("500000", "512k", "50M", "2G", "1.5M")] == [
        500000, 512 * 1024, 50 << 20, 2 << 30, int(1.5 * (1 << 20))]
    with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
        size("lots")


# --- the store alone, on a full disk ---------------------------------------------------------

def test_store_writer_on_a_full_disk_closes_truncated_with_its_audio_so_far(tmp_path):
    """RecordingWriter on a 1 MB tmpfs: the write that hits ENOSPC raises StorageFailure and
    blocks every writer of the store, the reserve goes to the index, finish() leaves a valid WAV
    of what reached the disk and the row `truncated`; space back -> health ok, writes again."""
    from mppsim.recorder.store import StorageFailure
    with small_fs(tmp_path / "fs", "1M") as fs:
        store = Store(fs / "store")
        assert store.health(32 * 1024)["state"] == "ok" and (fs / "store" / RESERVE).exists()
        w = store.begin("s", "c", "rc", "rfc7866", "sip:a@x", [], provider="", tier="")
        other = store.begin("s2", "c2", "rc2", "rfc7866", "sip:b@x", [], provider="", tier="")
        block = np.full(8000, 1000, dtype=np.int16)           # 1 s of 8 kHz stereo: 32 kB
        with pytest.raises(StorageFailure) as failed:
            for _ in range(60):
                w.write(block, block)
                w.flush()
        assert failed.value.cause == "storage-full" and store.blocked == "storage-full"
        assert not (fs / "store" / RESERVE).exists(), "the reserve is given up for the index"
        with pytest.raises(StorageFailure):
            other.write(block, block)                          # stopped before touching the disk
        row = w.finish(at_seconds=9.0, ended_by="storage-full")
        assert (row["state"], row["truncated"], row["ended_by"]) == ("truncated", 1, "storage-full")
        seconds = assert_wav_final(row["audio_path"])
        assert row["talk_seconds"] == pytest.approx(seconds) and seconds > 3.0
        assert other.finish(ended_by="storage-full")["state"] == "truncated"
        health = store.health(32 * 1024)
        assert health["state"] == "full" and "kB free" in health["reason"], health
        for rid in (w.id, other.id):
            shutil.rmtree(fs / "store" / "recordings" / rid)
        health = store.health(32 * 1024)
        assert health["state"] == "ok" and store.blocked is None, health
        again = store.begin("s3", "c3", "rc3", "rfc7866", "sip:a@x", [], provider="", tier="")
        again.write(block, block)
        assert again.finish()["state"] == "complete"


def test_a_close_the_full_index_cannot_take_is_done_when_space_is_back(tmp_path):
    """Even the reserve used up (a ballast takes the last block): the row's close fails with
    'database or disk is full', is kept, the store blocked; space back, the next health check
    closes it - the row never stays `recording` once its session ended."""
    from mppsim.recorder.store import StorageFailure
    with small_fs(tmp_path / "fs", "1M") as fs:
        store = Store(fs / "store")
        assert store.health(32 * 1024)["state"] == "ok"
        w = store.begin("s", "c", "rc", "rfc7866", "sip:a@x", [], provider="", tier="")
        block = np.full(8000, 1000, dtype=np.int16)
        w.write(block, block)
        w.flush()
        store.release_reserve()
        fd = os.open(fs / "ballast", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\1" * 4096)
        os.close(fd)
        with pytest.raises(StorageFailure, match="closed later"):
            w.finish(ended_by="bye")
        assert store.get(w.id)["state"] == "recording" and store.blocked == "storage-full"
        assert store.health(32 * 1024)["state"] == "full"
        (fs / "ballast").unlink()
        health = store.health(32 * 1024)
        assert (health["state"], health["pending_closes"]) == ("ok", 0), health
        row = store.get(w.id)
        assert (row["state"], row["ended_by"], row["talk_seconds"]) == ("complete", "bye", 1.0)


# --- the recorder: disk full, read-only, vanished -----------------------------------------------

def test_disk_fills_earlier_kept_the_filling_one_truncated_later_refused_then_recording_resumes(tmp_path):
    """The issue's run, with SIPp: session 1 stored complete; the disk nearly full (a ballast
    file); session 2 fills it mid-call: the recorder BYEs it with a Reason, its row is closed
    truncated (ended_by storage-full) with its audio so far playable; sessions 3 and 4 get 503
    with Retry-After, OPTIONS too, and --stats counts them; no row `recording`, integrity ok;
    the ballast removed, session 5 is recorded without a restart."""
    with small_fs(tmp_path / "fs", "1500k") as fs:
        rec = start_recorder(fs, "--min-free", "48k", "--rtp-timeout", "5")    # its log beside fs
        try:
            run, first = session(rec, tmp_path, "one")
            assert [c for c, _ in run.final("INVITE")] == [200]
            row1 = settled_row(rec, first)
            assert (row1["state"], row1["ended_by"]) == ("complete", "bye")
            assert assert_wav_final(row1["audio_path"]) > 2.5
            assert (rec.store / RESERVE).exists()

            ballast(fs / "ballast", leave=72 * 1024)
            until(lambda: stats(rec)["storage"]["free_bytes"] < 100 * 1024, 5, "the recorder sees the ballast")
            t0 = time.monotonic()
            run, second = session(rec, tmp_path, "two")
            took = time.monotonic() - t0
            assert [c for c, _ in run.final("INVITE")] == [200]
            (bye,) = [m for m in run.received() if m.startswith("BYE ")]
            assert 'Reason: SIP;cause=503;text="Recorder storage full"' in bye, bye
            assert not run.sent("BYE"), "the recorder hung up first"
            assert took < 3.5, took
            row2 = settled_row(rec, second)
            assert (row2["state"], row2["truncated"], row2["ended_by"]) == ("truncated", 1, "storage-full")
            assert row2["ended_at"] is not None
            seconds = assert_wav_final(row2["audio_path"])
            assert 0.3 < seconds < 3.0 and row2["talk_seconds"] == pytest.approx(seconds, abs=0.01)
            assert_tones(row2["audio_path"], min(0.25, seconds / 2))

            for tag in ("three", "four"):
                run, later = session(rec, tmp_path, tag)
                assert_refused(run, "full")
                assert rows_of(rec, later) == [], "a refused session leaves no row"
            first_line = options(rec).split("\r\n", 1)[0]
            assert first_line.startswith("SIP/2.0 503 Recorder storage full"), first_line
            st = stats(rec, lambda st: st["refused_storage"] == 2)
            assert (st["refused_storage"], st["truncated_storage"]) == (2, 1), st
            assert st["storage"]["state"] == "full" and st["refused"].get("503 Recorder storage full") == 2, st
            assert st["ended"].get("storage-full") == 1
            from mppsim.ui.portal import state_text, storage_summary       # what the portal shows
            line, problem = storage_summary(rec.store)
            assert problem and line.startswith("Store: full (") and "2 session(s) refused" in line \
                and "1 recording(s) truncated" in line, line
            assert state_text(row2) == "truncated · storage-full"
            assert rec.alive()
            assert_index_sound(rec)
            assert assert_wav_final(row1["audio_path"]) > 2.5        # earlier recordings intact
            assert_tones(row1["audio_path"], 2.0)

            (fs / "ballast").unlink()
            until(lambda: stats(rec)["storage"]["state"] == "ok", 5, "storage ok again", rec.log)
            assert options(rec).startswith("SIP/2.0 200 OK")
            run, fifth = session(rec, tmp_path, "five")
            assert [c for c, _ in run.final("INVITE")] == [200]
            row5 = settled_row(rec, fifth)
            assert (row5["state"], row5["ended_by"]) == ("complete", "bye")
            assert_tones(row5["audio_path"], 2.0)
            assert_index_sound(rec)
            assert "store full" in rec.log() and "recording again" in rec.log()
        finally:
            assert rec.stop() == 0


def test_default_min_free_refuses_on_a_tiny_disk_with_the_reason(tmp_path):
    """The issue's 1.5 MB tmpfs with the default --min-free (a minute of WAV for a new session
    and those in flight, + 1 MiB): every session is refused with a 503 that says why, before
    a 200 could promise a recording."""
    with small_fs(tmp_path / "fs", "1500k") as fs:
        rec = start_recorder(fs)
        try:
            run, call_id = session(rec, tmp_path, "tiny")
            assert_refused(run, "low")
            assert "kB needed" in run.final("INVITE")[0][1]
            assert rows_of(rec, call_id) == []
            st = stats(rec, lambda st: st["refused_storage"] == 1)
            assert st["storage"]["state"] == "low" and st["min_free"] > 1500 * 1024, st
            assert st["refused_storage"] == 1, st
        finally:
            assert rec.stop() == 0


def test_read_only_store_ends_the_live_session_refuses_then_records_again_when_writable(tmp_path):
    """The store's folder becomes read-only while a session records (a read-only filesystem
    mounted over it: Linux refuses to remount a filesystem read-only while files are open for
    writing): that session is ended with a BYE whose Reason says so, INVITE and OPTIONS get 503
    'read-only', the recorder stays up; writable again (unmounted), the ended session's row is
    closed truncated (storage-read-only) and the recorder records without a restart."""
    store = tmp_path / "store"
    rec = start_recorder(store, "--min-free", "1M")
    try:
        run, first = session(rec, tmp_path, "before")
        assert settled_row(rec, first)["state"] == "complete"
        during = f"during-{uuid.uuid4().hex[:8]}"
        work = tmp_path / "during"
        sipp = subprocess.Popen(command(SCENARIO, rec.sip, work, call_id=f"{during}-%u@%s", timeout=20,
                                        streams=[Stream(700, 3.4), Stream(1100, 3.4, ssrc=0x2000)],
                                        keys={"offer": "0 8 101", "session": "during"}),
                                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            until(lambda: rows_of(rec, during), 5, "the session recording", rec.log)
            time.sleep(0.8)
            with small_fs(store, "64k", ",ro"):
                out, _ = sipp.communicate(timeout=20)
                live = SippRun(sipp.returncode, work, out)
                assert live.returncode == 0, live.explain()
                (bye,) = [m for m in live.received() if m.startswith("BYE ")]
                assert 'Reason: SIP;cause=503;text="Recorder storage read-only"' in bye, bye
                assert "store read-only" in rec.log()
                run, _ = session(rec, tmp_path, "ro")
                assert_refused(run, "read-only")
                assert options(rec).startswith("SIP/2.0 503 Recorder storage read-only")
                assert rec.alive()
        finally:
            if sipp.poll() is None:
                sipp.kill()
        until(lambda: "recording again" in rec.log(), 5, "the recorder sees the store writable", rec.log)
        row = settled_row(rec, during)
        assert (row["state"], row["truncated"], row["ended_by"]) == ("truncated", 1, "storage-read-only")
        assert 0.8 < assert_wav_final(row["audio_path"]) < 3.0      # what came before it
        run, after = session(rec, tmp_path, "after")
        row = settled_row(rec, after)
        assert (row["state"], row["ended_by"]) == ("complete", "bye")
        assert_tones(row["audio_path"], 2.0)
        assert stats(rec, lambda st: st["refused_storage"] == 1)["truncated_storage"] == 1
        assert_index_sound(rec)
    finally:
        assert rec.stop() == 0


def test_vanished_store_folder_refuses_then_a_new_one_records(tmp_path):
    """The store's folder removed while running: 503 'missing', no crash; the folder made
    again (empty), the recorder makes a new index in it and records without a restart."""
    store = tmp_path / "store"
    rec = start_recorder(store, "--min-free", "1M")
    try:
        shutil.rmtree(store)
        until(lambda: "store missing" in rec.log(), 5, "the recorder sees the folder gone", rec.log)
        run, _ = session(rec, tmp_path, "gone")
        assert_refused(run, "missing")
        assert rec.alive()
        store.mkdir()
        until(lambda: "recording again" in rec.log(), 5, "the recorder sees the folder back", rec.log)
        run, after = session(rec, tmp_path, "back")
        row = settled_row(rec, after)
        assert (row["state"], row["ended_by"]) == ("complete", "bye")
        assert_index_sound(rec)
    finally:
        assert rec.stop() == 0


# --- shutdown ------------------------------------------------------------------------------------

def test_sigterm_mid_session_byes_closes_the_row_and_exits_0(tmp_path):
    """SIGTERM while SIPp is recording: the SRC gets a BYE with a Reason, the row is closed
    (ended_by shutdown) with a final WAV header, and the recorder exits 0."""
    rec = start_recorder(tmp_path / "store")
    call_id = f"term-{uuid.uuid4().hex[:8]}"
    work = tmp_path / "term"
    cmd = command(SCENARIO, rec.sip, work, call_id=f"{call_id}-%u@%s", timeout=20,
                  streams=[Stream(700, 3.4), Stream(1100, 3.4, ssrc=0x2000)],
                  keys={"offer": "0 8 101", "session": "term"})
    sipp = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        until(lambda: rows_of(rec, call_id), 5, "the session recording", rec.log)
        time.sleep(1.2)
        rec.proc.send_signal(signal.SIGTERM)
        assert rec.proc.wait(10) == 0
        out, _ = sipp.communicate(timeout=20)
    finally:
        if sipp.poll() is None:
            sipp.kill()
    run = SippRun(sipp.returncode, work, out)
    # (SIPp counts the call failed all the same: the exiting recorder closes the TCP connection)
    (bye,) = [m for m in run.received() if m.startswith("BYE ")]
    assert 'Reason: SIP;cause=503;text="Recorder shutting down"' in bye, run.explain()
    assert [m for d, m in run.messages if d == "sent"][-1].startswith("SIP/2.0 200 OK"), "BYE answered"
    (row,) = Store(rec.store).list()
    assert (row["state"], row["ended_by"]) == ("complete", "shutdown") and row["ended_at"]
    assert 1.0 < assert_wav_final(row["audio_path"]) < 3.0


def test_sigkill_mid_session_leaves_a_row_the_next_start_repairs(tmp_path):
    """SIGKILL: nothing can close the row then; the next start repairs it (truncated, ended_by
    crash, the WAV's header made final from the audio on disk)."""
    rec = start_recorder(tmp_path / "store")
    call_id = f"kill-{uuid.uuid4().hex[:8]}"
    work = tmp_path / "kill"
    cmd = command(SCENARIO, rec.sip, work, call_id=f"{call_id}-%u@%s", timeout=20,
                  streams=[Stream(700, 3.4), Stream(1100, 3.4, ssrc=0x2000)],
                  keys={"offer": "0 8 101", "session": "kill"})
    sipp = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: rows_of(rec, call_id), 5, "the session recording", rec.log)
        time.sleep(1.5)
        rec.proc.kill()
        rec.proc.wait(5)
    finally:
        sipp.kill()
        sipp.wait(5)
    (row,) = Store(rec.store).list()
    assert row["state"] == "recording"
    again = start_recorder(rec.store)
    try:
        (row,) = Store(rec.store).list()
        assert (row["state"], row["truncated"], row["ended_by"]) == ("truncated", 1, "crash")
        assert assert_wav_final(row["audio_path"]) > 0.5
    finally:
        assert again.stop() == 0
