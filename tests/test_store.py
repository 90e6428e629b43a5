"""src/mppsim/recorder/store.py: the recorder's store, with real files, real SQLite and real processes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mppsim.recorder import wavfile
from mppsim.recorder.store import Store

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
PARTIES = [{"name": "Alice", "aor": "sip:+14155550101@example.com", "channel": "left"},
           {"name": "Bob", "aor": "sip:+14155550102@example.com", "channel": "right"}]


def tone(freq: float, start: int, n: int) -> np.ndarray:
    """Samples start..start+n of a continuous tone: chunks join without a phase jump."""
    i = np.arange(start, start + n)
    return (8000 * np.sin(2 * np.pi * freq * i / RATE)).astype(np.int16)


def begin(store: Store, owner: str = "alice", provider: str = "Dubber", tier: str = "Go",
          started_at: datetime | None = T0, **kw):
    return store.begin("sess-1", "call-1@pbx", "rec-1@pbx", "webex", owner, PARTIES, provider,
                       tier, correlation="BW-123", worker="w0", started_at=started_at, **kw)


def record(store: Store, seconds: float = 0.5, **kw) -> str:
    w = begin(store, **kw)
    n = int(seconds * RATE)
    w.write(tone(1000, 0, n), tone(1500, 0, n))
    w.finish(ended_at=(kw.get("started_at") or T0) + timedelta(seconds=seconds))
    return w.id


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[np.argmax(spectrum)])


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


# ----- child processes: real recorder workers sharing the store -------------------------------

CHILD = textwrap.dedent('''
    import sys, time
    import numpy as np
    from mppsim.recorder.store import Store
    RATE = 8000
    def tone(freq, start, n):
        i = np.arange(start, start + n)
        return (8000 * np.sin(2 * np.pi * freq * i / RATE)).astype(np.int16)
    parties = [{"name": "A", "aor": "sip:a@x", "channel": "left"},
               {"name": "B", "aor": "sip:b@x", "channel": "right"}]
    mode, directory, tag = sys.argv[1], sys.argv[2], sys.argv[3]
    store = Store(directory)
    if mode == "crash":
        # real-time recording, 20 ms packets, until killed
        w = store.begin("s-" + tag, "c-" + tag, "r-" + tag, "webex", tag, parties, "Dubber", "Go",
                        worker=tag)
        w.add_metadata("<recording_metadata/>")
        print("id", w.id, flush=True)
        done = 0
        while True:
            w.write(tone(1000, done, 160), tone(1500, done, 160))
            done += 160
            print("frames", done, flush=True)
            time.sleep(0.02)
    elif mode == "busy":
        # several recordings, each with many index updates: contention on the write lock
        for k in range(int(sys.argv[4])):
            w = store.begin(f"s-{tag}-{k}", "c", "r", "rfc7866", tag, parties, "Webex", "",
                            worker=tag)
            for m in range(3):
                w.add_metadata(f"<doc n='{m}'/>")
            for j in range(40):
                w.write(tone(1000, j * 160, 160), tone(1500, j * 160, 160))
                w.announcement({"kind": "repeat", "n": j})
                if j == 10:
                    w.pause(1.0)
                if j == 20:
                    w.resume(2.0)
            w.finish()
        print("done", flush=True)
''')


def child(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_until_killed(tmp_path: Path, directory: Path, tag: str, seconds: float) -> tuple[str, int]:
    """Start a recording worker, SIGKILL it once it has written ``seconds`` of audio.
    Returns (recording id, frames the worker had handed to write() when killed)."""
    p = child(tmp_path, "crash", str(directory), tag)
    rec_id, frames = "", 0
    assert p.stdout is not None
    for line in p.stdout:
        key, value = line.split()
        if key == "id":
            rec_id = value
        elif int(value) >= seconds * RATE:
            frames = int(value)
            break
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert p.returncode == -signal.SIGKILL, p.stderr.read() if p.stderr else ""
    return rec_id, frames


# ----- audio and metadata ----------------------------------------------------------------------

def test_r_rec_1_left_and_right_keep_their_own_tones(store):
    """R-REC-1: two streams, one per direction: left = one participant's send stream, right =
    the other's (measured with an FFT)."""
    w = begin(store)
    for k in range(50):                                          # 1 s in 20 ms packets
        w.write(tone(1000, k * 160, 160), tone(1500, k * 160, 160))
    row = w.finish()
    rate, data = wavfile.read(row["audio_path"])
    assert rate == RATE and data.shape == (RATE, 2)
    assert peak_hz(data[:, 0]) == pytest.approx(1000, abs=5)
    assert peak_hz(data[:, 1]) == pytest.approx(1500, abs=5)
    # and no bleed: the other tone is >40 dB down in each channel
    for ch, other in ((0, 1500), (1, 1000)):
        spec = np.abs(np.fft.rfft(data[:, ch] * np.hanning(RATE)))
        freqs = np.fft.rfftfreq(RATE, 1 / RATE)
        assert spec[np.argmin(abs(freqs - other))] < spec.max() / 100
    assert row["talk_seconds"] == pytest.approx(1.0)
    assert row["state"] == "complete" and row["truncated"] == 0
    assert row["participants"] == PARTIES


def test_row_has_every_field_and_metadata_is_kept_as_received(store):
    w = begin(store)
    docs = ["<recording_metadata xmlns='urn:ietf:params:xml:ns:siprec'>é</recording_metadata>",
            b"<?xml version='1.0' encoding='ISO-8859-1'?><x>\xe9</x>\r\n"]
    paths = [w.add_metadata(d) for d in docs]
    assert [p.name for p in paths] == ["metadata-001.xml", "metadata-002.xml"]
    assert paths[0].read_bytes() == docs[0].encode("utf-8")
    assert paths[1].read_bytes() == docs[1]
    w.announcement({"kind": "start", "played": True})
    row = w.finish(ended_at=T0 + timedelta(seconds=5))
    assert row["session_id"] == "sess-1" and row["sip_call_id"] == "call-1@pbx"
    assert row["recording_call_id"] == "rec-1@pbx" and row["correlation"] == "BW-123"
    assert row["dialect"] == "webex" and row["owner"] == "alice" and row["worker"] == "w0"
    assert row["started_at"] == "2025-03-01T09:00:00.000000+00:00"
    assert row["ended_at"] == "2025-03-01T09:00:05.000000+00:00"
    assert row["announcements"] == [{"kind": "start", "played": True}]
    assert row["metadata_files"] == [f"recordings/{w.id}/metadata-001.xml",
                                     f"recordings/{w.id}/metadata-002.xml"]
    assert row["audio_file"] == f"recordings/{w.id}/audio.wav"
    assert store.list(owner="alice")[0]["id"] == w.id and store.list(owner="bob") == []


def test_paused_segments_are_stored_and_paused_audio_is_not_written(store):
    """R-USR-2 Always with Pause/Resume, R-PRV-9: a pause leaves no gap in the file; the index
    keeps where the call was paused and for how long."""
    w = begin(store)
    w.write(tone(1000, 0, 8000), tone(1500, 0, 8000))
    w.pause(1.0)
    assert store.get(w.id)["paused_segments"] == [{"start": 1.0, "duration": None}]
    w.pause(1.5)                                          # a second pause changes nothing
    w.write(np.full(16000, 999, np.int16), np.full(16000, 999, np.int16))   # ignored
    w.resume(3.0)
    w.resume(3.1)                                         # ignored: not paused
    w.write(tone(1000, 8000, 4000), tone(1500, 8000, 4000))
    w.pause(3.5)
    row = w.finish(at_seconds=4.25)                       # a pause open at the end is closed
    assert row["paused_segments"] == [{"start": 1.0, "duration": 2.0},
                                      {"start": 3.5, "duration": 0.75}]
    assert row["talk_seconds"] == pytest.approx(1.5)
    data = wavfile.read(row["audio_path"])[1]
    assert data.shape == (12000, 2) and not (data == 999).all(axis=1).any()
    assert np.array_equal(data[:, 0], tone(1000, 0, 12000))


def test_write_refuses_unequal_or_float_blocks(store):
    w = begin(store)
    with pytest.raises(ValueError):
        w.write(np.zeros(10, np.int16), np.zeros(11, np.int16))
    with pytest.raises(TypeError):
        w.write(np.zeros(10, np.float32), np.zeros(10, np.float32))
    w.finish()
    with pytest.raises(RuntimeError):
        w.write(np.zeros(10, np.int16), np.zeros(10, np.int16))


def test_audio_reaches_disk_within_a_second_even_when_writes_stop(store):
    """Issue 4: audio is flushed at least every second; a stalled stream must not keep its last
    packets in the process' buffers."""
    w = begin(store)
    w.write(tone(1000, 0, 800), tone(1500, 0, 800))       # 100 ms, then nothing more
    time.sleep(1.0)
    with wave.open(str(w.path)) as f:                      # what is on disk, header included
        assert f.getnframes() == 800
    w.finish()


def test_bad_participants_and_tiers_are_refused(store):
    with pytest.raises(ValueError):
        store.begin("s", "c", "r", "webex", "o", [{"name": "x", "channel": "middle"}],
                    "Dubber", "Go")
    with pytest.raises(ValueError, match="R-PRV-2"):
        store.begin("s", "c", "r", "webex", "o", PARTIES, "Dubber", "Platinum")
    with pytest.raises(ValueError):
        store.set_tier(None, "Gold", T0)
    assert store.list() == []


def test_delete_removes_row_and_folder(store):
    rid = record(store)
    folder = store.recordings_dir / rid
    assert folder.is_dir()
    assert store.delete(rid) is True
    assert store.get(rid) is None and not folder.exists()
    assert store.delete(rid) is False


def test_list_filters(store):
    a = record(store, owner="alice", started_at=T0)
    b = record(store, owner="bob", started_at=T0 + timedelta(hours=1))
    assert [r["id"] for r in store.list()] == [a, b]
    assert [r["id"] for r in store.list(since=T0 + timedelta(minutes=1))] == [b]
    assert [r["id"] for r in store.list(until=T0 + timedelta(minutes=1))] == [a]
    assert [r["id"] for r in store.list(state="complete", correlation="BW-123")] == [a, b]


# ----- retention (R-PRV-2, R-PRV-3, R-PRV-9) ---------------------------------------------------

def test_r_prv_2_dubber_go_recordings_are_deleted_after_30_days(store):
    """R-PRV-2: Dubber Go keeps each recording 30 days."""
    rid = record(store, tier="Go")
    row = store.get(rid)
    assert parse(row["retention_expires"]) == T0 + timedelta(days=30)
    assert store.apply_retention(T0 + timedelta(days=29, hours=23)) == []
    assert store.apply_retention(T0 + timedelta(days=30)) == [rid]
    assert store.get(rid) is None and not (store.recordings_dir / rid).exists()


def test_r_prv_2_paid_tiers_keep_recordings_indefinitely(store):
    """R-PRV-2: paid tiers (Team, Premier, Standard, AI) have unlimited retention."""
    ids = [record(store, tier=t) for t in ("Team", "Premier", "Standard", "AI")]
    assert all(store.get(i)["retention_expires"] is None for i in ids)
    assert store.apply_retention(T0 + timedelta(days=3650)) == []


def test_r_prv_9_webex_keeps_recordings_one_year(store):
    """R-PRV-9: Webex as provider keeps recordings one year, whatever the Dubber tier."""
    rid = record(store, provider="Webex", tier="")
    assert parse(store.get(rid)["retention_expires"]) == T0 + timedelta(days=365)
    store.set_tier(None, "Go", T0 + timedelta(days=1))     # Dubber tiers do not apply
    assert parse(store.get(rid)["retention_expires"]) == T0 + timedelta(days=365)
    assert store.apply_retention(T0 + timedelta(days=364)) == []
    assert store.apply_retention(T0 + timedelta(days=365, seconds=1)) == [rid]


def test_r_prv_4_r_prv_5_imagicle_callcabinet_and_unknown_providers_are_kept(store):
    """R-PRV-4, R-PRV-5: unlimited storage; an external SRC's recording has no known policy."""
    ids = [record(store, provider=p, tier="") for p in ("Imagicle", "CallCabinet", "external")]
    assert [store.get(i)["retention_expires"] for i in ids] == [None, None, None]


def test_r_prv_3_free_to_paid_stops_automatic_deletion(store):
    """R-PRV-3: moving a user free -> paid stops automatic deletion."""
    rid = record(store, tier="Go")
    assert store.set_tier("alice", "Team", T0 + timedelta(days=10)) == [rid]
    assert store.get(rid)["retention_expires"] is None
    assert store.apply_retention(T0 + timedelta(days=400)) == []


def test_r_prv_3_paid_to_free_deletes_30_days_after_the_change(store):
    """R-PRV-3: moving paid -> free ends unlimited retention: deleted 30 days later."""
    rid = record(store, tier="Team")
    change = T0 + timedelta(days=100)
    assert store.set_tier(None, "Go", change) == [rid]
    assert parse(store.get(rid)["retention_expires"]) == change + timedelta(days=30)
    assert store.apply_retention(change + timedelta(days=29)) == []
    assert store.apply_retention(change + timedelta(days=30)) == [rid]


def test_r_prv_3_tier_changes_apply_per_owner_and_only_after_the_recording(store):
    """R-PRV-3: a change for one user leaves others alone; a change before a recording does not
    alter it, and a recording finished after a change keeps the change (tier history)."""
    alice = record(store, owner="alice", tier="Go")
    bob = record(store, owner="bob", tier="Go")
    assert store.set_tier("alice", "Premier", T0 + timedelta(days=1)) == [alice]
    assert parse(store.get(bob)["retention_expires"]) == T0 + timedelta(days=30)
    later = record(store, owner="alice", tier="Go", started_at=T0 + timedelta(days=2))
    assert parse(store.get(later)["retention_expires"]) == T0 + timedelta(days=32)
    # a change while a recording is in progress counts when it finishes
    w = begin(store, owner="carol", tier="Go", started_at=T0 + timedelta(days=5))
    store.set_tier("carol", "Team", T0 + timedelta(days=5, seconds=1))
    assert w.finish(ended_at=T0 + timedelta(days=5, seconds=2))["retention_expires"] is None


def test_r_prv_3_back_and_forth(store):
    """R-PRV-3 both ways: Go -> Team -> Go: deleted 30 days after the last move to free."""
    rid = record(store, tier="Go")
    store.set_tier(None, "Team", T0 + timedelta(days=5))
    store.set_tier(None, "Go", T0 + timedelta(days=50))
    assert parse(store.get(rid)["retention_expires"]) == T0 + timedelta(days=80)


def test_r_prv_3_a_move_to_paid_after_the_expiry_does_not_revive(store):
    """R-PRV-3: a recording past its 30 days is due for deletion even if the move to a paid
    tier came later (retention ran late, e.g. the recorder was down)."""
    gone = record(store, owner="dave", tier="Go")
    store.set_tier("dave", "Team", T0 + timedelta(days=31))
    assert parse(store.get(gone)["retention_expires"]) == T0 + timedelta(days=30)
    assert store.apply_retention(T0 + timedelta(days=32)) == [gone]


def test_retention_never_deletes_a_recording_in_progress(store):
    w = begin(store, tier="Go", started_at=T0)
    assert store.apply_retention(T0 + timedelta(days=90)) == []
    w.finish()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ----- crashes ---------------------------------------------------------------------------------

def test_kill_9_mid_recording_is_repaired_and_keeps_the_flushed_audio(tmp_path):
    """Issue 4: after kill -9 the cut-off recording is repaired on restart: valid file, marked
    truncated, and every frame older than one second (the flush bound) is in it."""
    directory = tmp_path / "store"
    Store(directory)
    rid, frames = run_until_killed(tmp_path, directory, "w1", 1.5)
    store = Store(directory)                               # the restarted recorder
    row = store.get(rid)
    assert row["state"] == "recording"
    # even before repair the file is a valid WAV holding what its last flush declared
    with wave.open(row["audio_path"]) as f:
        assert f.getnframes() >= frames - RATE
    mtime = datetime.fromtimestamp(os.path.getmtime(row["audio_path"]), timezone.utc)

    assert store.repair_interrupted() == [rid]
    row = store.get(rid)
    assert row["state"] == "truncated" and row["truncated"] == 1
    assert parse(row["ended_at"]) == mtime
    with wave.open(row["audio_path"]) as f:
        kept = f.getnframes()
    assert frames - RATE <= kept <= frames + 160 * 10
    assert row["talk_seconds"] == pytest.approx(kept / RATE)
    assert parse(row["retention_expires"]) == parse(row["started_at"]) + timedelta(days=30)
    data = wavfile.read(row["audio_path"])[1]
    assert np.array_equal(data[:, 0], tone(1000, 0, kept))
    assert np.array_equal(data[:, 1], tone(1500, 0, kept))
    assert (store.recordings_dir / rid / "metadata-001.xml").read_text() == "<recording_metadata/>"
    assert store.repair_interrupted() == []                # once only


def test_a_closed_recording_is_never_touched_by_a_later_crash(tmp_path):
    directory = tmp_path / "store"
    store = Store(directory)
    done = record(store, seconds=1.0)
    before_row = store.get(done)
    before = (sha(before_row["audio_path"]), os.path.getmtime(before_row["audio_path"]))
    dead, _ = run_until_killed(tmp_path, directory, "w2", 0.3)
    assert store.repair_interrupted() == [dead]
    assert store.get(done) == before_row
    assert (sha(before_row["audio_path"]), os.path.getmtime(before_row["audio_path"])) == before


def test_restart_of_one_worker_leaves_live_recordings_of_others_alone(tmp_path):
    """Several workers share a store: a worker's restart repairs its dead recordings only."""
    directory = tmp_path / "store"
    store = Store(directory)
    live = begin(store, owner="live", started_at=None)     # this process is alive
    live.write(tone(1000, 0, 800), tone(1500, 0, 800))
    dead, _ = run_until_killed(tmp_path, directory, "w3", 0.3)
    assert Store(directory).repair_interrupted() == [dead]
    assert store.get(live.id)["state"] == "recording"
    live.write(tone(1000, 800, 800), tone(1500, 800, 800))
    row = live.finish()
    assert row["state"] == "complete" and row["talk_seconds"] == pytest.approx(0.2)


def test_pid_reuse_does_not_pass_for_a_live_writer(store):
    """A restarted recorder may get its crashed predecessor's pid back (containers): the
    process start time tells them apart."""
    w = begin(store)
    store._update(w.id, writer_start="1")                 # same pid, other start time
    assert store.repair_interrupted() == [w.id]
    assert store.get(w.id)["state"] == "truncated"


def test_repair_of_an_entry_whose_audio_was_never_created(store):
    w = begin(store)
    store._update(w.id, writer_pid=None)
    w._wav.close()
    os.unlink(w.path)
    assert store.repair_interrupted() == [w.id]
    row = store.get(w.id)
    assert row["state"] == "truncated" and row["talk_seconds"] == 0
    assert wave_ok(row["audio_path"])


def test_orphan_folders_of_an_interrupted_delete_are_swept(store):
    rid = record(store)
    store._tx(lambda c: c.execute("DELETE FROM recordings WHERE id=?", (rid,)))  # crash here
    store.repair_interrupted()
    assert not (store.recordings_dir / rid).exists()


def wave_ok(path) -> bool:
    with wave.open(str(path)) as f:
        return f.getnchannels() == 2


# ----- concurrency -----------------------------------------------------------------------------

def test_two_writer_processes_and_a_reader_at_once(tmp_path):
    """Two workers create the store together and write the index hard while a reader lists it:
    no 'database is locked', nothing lost."""
    directory = tmp_path / "store"
    n = 6
    procs = [child(tmp_path, "busy", str(directory), tag, str(n)) for tag in ("wa", "wb")]
    deadline = time.monotonic() + 60
    while not (directory / "index.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    reader = Store(directory)
    reads = 0
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        for r in reader.list():
            json.dumps(r)
            reader.get(r["id"])
        reads += 1
    outs = [p.communicate(timeout=30) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err.lower() and out.strip() == "done"
    assert reads > 0
    rows = reader.list()
    assert len(rows) == 2 * n
    for r in rows:
        assert r["state"] == "complete" and r["worker"] in ("wa", "wb")
        assert len(r["announcements"]) == 40 and len(r["metadata_files"]) == 3
        assert r["paused_segments"] == [{"start": 1.0, "duration": 1.0}]
        assert r["talk_seconds"] == pytest.approx(30 * 160 / RATE)  # 10 writes while paused
        assert wave_ok(r["audio_path"])


def test_issue_9_old_store_gets_the_new_columns_and_finish_sets_them_with_the_state(tmp_path):
    """docs/store.md: columns are added, never renamed. A store made before issue 9 opens with
    ended_by, participants_timeline, stream_stats, suspect, suspect_reason (defaults); finish()
    sets them in the same transaction as the state, so no reader sees `complete` without them."""
    import sqlite3
    conn = sqlite3.connect(tmp_path / "index.sqlite")
    conn.execute("CREATE TABLE recordings (id TEXT PRIMARY KEY, session_id TEXT NOT NULL DEFAULT '', "
                 "sip_call_id TEXT NOT NULL DEFAULT '', recording_call_id TEXT NOT NULL DEFAULT '', "
                 "correlation TEXT NOT NULL DEFAULT '', dialect TEXT NOT NULL DEFAULT '', "
                 "owner TEXT NOT NULL DEFAULT '', participants TEXT NOT NULL DEFAULT '[]', "
                 "started_at TEXT NOT NULL, ended_at TEXT, talk_seconds REAL NOT NULL DEFAULT 0, "
                 "paused_segments TEXT NOT NULL DEFAULT '[]', announcements TEXT NOT NULL DEFAULT '[]', "
                 "provider TEXT NOT NULL DEFAULT '', tier TEXT NOT NULL DEFAULT '', retention_expires TEXT, "
                 "truncated INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'recording', "
                 "audio_file TEXT NOT NULL, metadata_files TEXT NOT NULL DEFAULT '[]', "
                 "worker TEXT NOT NULL DEFAULT '', rate INTEGER NOT NULL DEFAULT 8000, writer_pid INTEGER, "
                 "writer_start TEXT)")
    conn.execute("INSERT INTO recordings (id, started_at, audio_file, state) VALUES "
                 "('old', '2025-01-01T00:00:00.000000+00:00', 'recordings/old/audio.wav', 'complete')")
    conn.commit()
    conn.close()
    store = Store(tmp_path)
    (old,) = store.list()
    assert (old["ended_by"], old["participants_timeline"], old["stream_stats"], old["suspect"],
            old["suspect_reason"]) == ("", [], [], 0, "")
    w = store.begin("s", "c", "r", "rfc7866", "sip:a@x", [{"aor": "sip:a@x", "channel": "left"}], "", "")
    row = w.finish(ended_by="timeout", stream_stats=[{"label": "1", "lost": 2}], suspect=1,
                   suspect_reason="silence")
    assert (row["state"], row["ended_by"], row["stream_stats"], row["suspect"]) == (
        "complete", "timeout", [{"label": "1", "lost": 2}], 1)


@pytest.mark.parametrize("with_syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_group_flush_syncs_once_per_file_system_then_every_header_claims_its_audio(
        store, monkeypatch, with_syncfs):
    """The flusher's group commit: every due writer's audio to the OS, one syncfs for their
    file system (or, where there is none, an fsync per file), then each header claims exactly
    the audio that is on disk. 200 recordings made 800 fsyncs a second before this."""
    import mppsim.recorder.store as store_mod
    if not with_syncfs:
        monkeypatch.setattr(store_mod, "_LIBC", None)
    syncs = []
    real = store_mod._syncfs
    monkeypatch.setattr(store_mod, "_syncfs", lambda folder: syncs.append(folder) or real(folder))
    writers = [begin(store) for _ in range(3)]
    for k, w in enumerate(writers):
        with store_mod._FLUSHER._lock:                # this test is their only flusher
            store_mod._FLUSHER._writers.discard(w)
        w._flush_interval = 0.0                       # due at once
        w.write(tone(1000, 0, 800 * (k + 1)), tone(1500, 0, 800 * (k + 1)))
    before = [wave_frames_of(w.path) for w in writers]
    store_mod._Flusher.flush_group(writers)
    assert before == [0, 0, 0]                        # nothing claimed before the group flush
    assert [wave_frames_of(w.path) for w in writers] == [800, 1600, 2400]
    assert len(syncs) == 1                            # one file system: one sync for all three
    store_mod._Flusher.flush_group(writers)           # nothing new: nothing to sync
    assert len(syncs) == 1
    for w in writers:
        rec = w.finish()
        assert rec["state"] == "complete"


def wave_frames_of(path) -> int:
    with wave.open(str(path)) as f:
        return f.getnframes()
