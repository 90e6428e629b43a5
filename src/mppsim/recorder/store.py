"""The recorder's store: per recording a folder with a stereo WAV and the metadata documents as
received, plus an SQLite index of every recording (issue 4, part 3).

    store = Store("/var/lib/mppsim/recordings")
    w = store.begin(session_id, sip_call_id, recording_call_id, "webex", "alice@example.com",
                    [{"name": "Alice", "aor": "sip:alice@x", "channel": "left"},
                     {"name": "Bob", "aor": "sip:bob@x", "channel": "right"}],
                    provider="Dubber", tier="Go")
    w.add_metadata(xml); w.write(left, right); w.pause(12.0); w.resume(14.5); w.finish()
    store.repair_interrupted(); store.apply_retention(now)

Layout of the folder:
    index.sqlite                   WAL mode; several recorder processes write it at once
    recordings/<id>/audio.wav      left = one participant's send stream, right = the other's
    recordings/<id>/metadata-001.xml, metadata-002.xml, ...   exactly as received

Concurrency: every process and thread gets its own SQLite connection; writes are short
`BEGIN IMMEDIATE` transactions (WAL readers never block them nor are blocked), retried on
SQLITE_BUSY. One recording has one writer (the worker that holds its SIPREC session); the index
row remembers that writer's pid and process start time, so `repair_interrupted` only touches
recordings whose writer is really gone, even while other workers keep recording.

Storage failures (issue 26): a full, read-only or vanished store is reported, never swallowed.
`health()` says whether new recordings can be taken (free space against a threshold, the folder
writable, the index there); the first ENOSPC blocks every writer of the store at once (`blocked`)
so that the space left - and a small reserve file given up at that moment - goes to closing the
rows (`truncated`, `ended_by` naming the cause) and the WAV headers, not to more audio that
cannot be kept. A close that still cannot reach the index is retried by `retry_pending()` until
it can: no row stays `recording` after its session ended.
"""
from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from mppsim.rules import providers
from mppsim.recorder import wavfile

log = logging.getLogger(__name__)

RECORDING, COMPLETE, TRUNCATED = "recording", "complete", "truncated"
STATES = (RECORDING, COMPLETE, TRUNCATED)
CHANNELS = ("left", "right")
ALL_OWNERS = "*"                       # set_tier for every owner (the Dubber tier is org-wide)

INDEX = "index.sqlite"
AUDIO = "audio.wav"
FLUSH_INTERVAL = 0.5                   # s; with the flusher's tick, audio is on disk within 1 s
BUSY_TIMEOUT_MS = 1000                 # short: a media thread must not hang on the index...
WRITE_DEADLINE = 15.0                  # ...but an index update is retried rather than lost

RESERVE = "reserve.bin"                # given up when the disk fills: room to close the rows
RESERVE_BYTES = 128 * 1024             # ~30 WAL pages: closing one row writes 3-4

# ended_by of a session the store could not keep (docs/store.md)
STORAGE_FULL, STORAGE_READ_ONLY, STORAGE_MISSING, STORAGE_ERROR = (
    "storage-full", "storage-read-only", "storage-missing", "storage-error")
STORAGE_CAUSES = (STORAGE_FULL, STORAGE_READ_ONLY, STORAGE_MISSING, STORAGE_ERROR)

_JSON_COLUMNS = ("participants", "paused_segments", "announcements", "metadata_files",
                 "participants_timeline", "stream_stats")
# Columns added after the first release (docs/store.md): created on new stores, added to old ones
# at open. Never renamed, never removed.
_ADDED_COLUMNS = (
    ("ended_by", "TEXT NOT NULL DEFAULT ''"),
    ("participants_timeline", "TEXT NOT NULL DEFAULT '[]'"),
    ("stream_stats", "TEXT NOT NULL DEFAULT '[]'"),
    ("suspect", "INTEGER NOT NULL DEFAULT 0"),
    ("suspect_reason", "TEXT NOT NULL DEFAULT ''"),
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS recordings (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL DEFAULT '',
        sip_call_id TEXT NOT NULL DEFAULT '',
        recording_call_id TEXT NOT NULL DEFAULT '',
        correlation TEXT NOT NULL DEFAULT '',
        dialect TEXT NOT NULL DEFAULT '',
        owner TEXT NOT NULL DEFAULT '',
        participants TEXT NOT NULL DEFAULT '[]',
        started_at TEXT NOT NULL,
        ended_at TEXT,
        talk_seconds REAL NOT NULL DEFAULT 0,
        paused_segments TEXT NOT NULL DEFAULT '[]',
        announcements TEXT NOT NULL DEFAULT '[]',
        provider TEXT NOT NULL DEFAULT '',
        tier TEXT NOT NULL DEFAULT '',
        retention_expires TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'recording'
            CHECK (state IN ('recording', 'complete', 'truncated')),
        audio_file TEXT NOT NULL,
        metadata_files TEXT NOT NULL DEFAULT '[]',
        worker TEXT NOT NULL DEFAULT '',
        rate INTEGER NOT NULL DEFAULT 8000,
        writer_pid INTEGER,
        writer_start TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS recordings_owner ON recordings(owner, started_at)",
    "CREATE INDEX IF NOT EXISTS recordings_state ON recordings(state)",
    "CREATE INDEX IF NOT EXISTS recordings_expiry ON recordings(retention_expires)",
    # R-PRV-3 needs the tier history, not only the current tier: a recording's expiry depends on
    # every change since it was made (providers.retention_expiry takes them all)
    """CREATE TABLE IF NOT EXISTS tier_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        at TEXT NOT NULL,
        tier TEXT NOT NULL
    )""",
)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# small helpers

def _utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC (what the recorder's --now override passes)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def iso(dt: datetime) -> str:
    """Fixed-width ISO UTC, so that SQL string order is time order."""
    return _utc(dt).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _is_busy(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()     # the command name may contain spaces
    return fields[0], fields[19]                      # stat fields 3 (state) and 22 (starttime)


_HAVE_PROC = Path("/proc/self/stat").exists()


def _writer_identity() -> tuple[int, str | None]:
    pid = os.getpid()
    stat = _proc_stat(pid)
    return pid, stat[1] if stat else None


def _writer_alive(pid: int | None, start: str | None) -> bool:
    """Is the process that wrote a recording still running? The start time guards against pid
    reuse (a restarted container's recorder is likely to get the same small pid back)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                                          # exists, owned by someone else
    if not _HAVE_PROC:
        return True
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):         # gone meanwhile, or killed but not reaped
        return False
    return start is None or stat[1] == start


class StorageFailure(Exception):
    """A write the store could not do because of the storage itself (full, read-only, gone)."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


def storage_cause(exc: BaseException) -> str | None:
    """The ended_by cause when ``exc`` is the storage failing (disk full, read-only, folder
    gone, I/O error), None for anything else (a bug, a busy index)."""
    if isinstance(exc, StorageFailure):
        return exc.cause
    if isinstance(exc, OSError):
        return {errno.ENOSPC: STORAGE_FULL, errno.EDQUOT: STORAGE_FULL, errno.EFBIG: STORAGE_FULL,
                errno.EROFS: STORAGE_READ_ONLY, errno.EACCES: STORAGE_READ_ONLY,
                errno.EPERM: STORAGE_READ_ONLY, errno.ENOENT: STORAGE_MISSING,
                errno.ESTALE: STORAGE_MISSING, errno.EIO: STORAGE_ERROR}.get(exc.errno or 0)
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "full" in text:
            return STORAGE_FULL
        if "readonly" in text or "read-only" in text:
            return STORAGE_READ_ONLY
        if "unable to open" in text or "no such table" in text:
            return STORAGE_MISSING
        if "disk i/o" in text:
            return STORAGE_ERROR
    return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file_durably(path: Path, data: bytes) -> None:
    """Write via a temporary name: a crash leaves the whole document or none of it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _check_participants(participants: Sequence[dict]) -> list[dict]:
    out = []
    for p in participants:
        if not isinstance(p, dict):
            raise ValueError(f"participant must be a dict, got {p!r}")
        channel = p.get("channel")
        if channel not in CHANNELS + (None,):
            raise ValueError(f"participant channel must be 'left', 'right' or absent, got {channel!r}")
        out.append({"name": p.get("name", ""), "aor": p.get("aor", ""), "channel": channel,
                    **{k: v for k, v in p.items() if k not in ("name", "aor", "channel")}})
    return out


def _check_provider_tier(provider: str, tier: str) -> str:
    """The tier to store; a Dubber recording without one is on the default (free) tier."""
    if provider == providers.DUBBER:
        tier = tier or providers.DEFAULT_TIER
        if tier not in providers.DUBBER_TIERS:
            raise ValueError(f"unknown Dubber tier {tier!r}; allowed: "
                             f"{', '.join(providers.DUBBER_TIERS)} (R-PRV-2)")
    return tier


def _expiry(provider: str, tier: str, started_at: str,
            changes: Iterable[tuple[str, str]]) -> str | None:
    """retention_expires for a row: providers.retention_expiry over the tier history.

    A provider mppsim does not know (an external SRC recorded by the standalone recorder, or
    none) gets no automatic deletion: nobody told mppsim it may throw the audio away.
    """
    if provider not in providers.PROFILES:
        return None
    when = providers.retention_expiry(parse_iso(started_at), tier or providers.DEFAULT_TIER,
                                      [(parse_iso(at), t) for at, t in changes], provider=provider)
    return iso(when) if when is not None else None


# ---------------------------------------------------------------------------------------------
# the flusher: "audio is flushed at least every second" even when writes stop arriving

class _Flusher:
    """One daemon thread per process flushing every open writer that has unflushed audio.

    RecordingWriter.write flushes too, but a stream that stalls (RTP stops, a pause starts) would
    otherwise leave its last half second in the process' buffers until the next write.
    """

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._writers: "weakref.WeakSet[RecordingWriter]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._pid = 0

    def add(self, writer: "RecordingWriter") -> None:
        with self._lock:
            self._writers.add(writer)
            if self._pid != os.getpid():              # first use, or a fork lost the thread
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="wav-flusher", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            with self._lock:
                writers = list(self._writers)
            self.flush_group(writers)

    @staticmethod
    def flush_group(writers: "Iterable[RecordingWriter]") -> None:
        """Group commit: every due writer's audio to the OS, one sync per file system, then the
        headers. 200 recordings flushing twice a second each made 800 fsyncs a second (each a
        device flush); this makes two syncs a second. The order that keeps a WAV valid on disk
        stays: the audio is durable before its header claims it; the header itself reaches the
        disk with the next sync (0.5 s later) or at close (its own fsync)."""
        staged: dict[int, list[tuple[RecordingWriter, int]]] = {}
        for w in writers:
            try:
                n = w._stage_if_due()
                if n is not None:
                    staged.setdefault(w._dev, []).append((w, n))
            except StorageFailure as exc:         # disk full etc.: its session ends
                log.warning("flushing recording %s failed: %s", w.id, exc)
            except Exception:                     # keep the others going
                log.exception("flushing recording %s failed", w.id)
        for group in staged.values():
            synced = _syncfs(group[0][0].folder)
            for w, n in group:
                try:
                    if not synced:
                        with w._lock:             # no syncfs here: each file on its own
                            if w._finished:
                                continue
                            try:
                                os.fsync(w._wav.fileno())
                            except OSError as exc:
                                raise w._failed_locked(exc) from exc
                    w._commit(n)
                except StorageFailure as exc:
                    log.warning("flushing recording %s failed: %s", w.id, exc)
                except Exception:
                    log.exception("flushing recording %s failed", w.id)


def _syncfs(folder: Path) -> bool:
    """syncfs(2) of the file system holding ``folder`` (Linux); False where there is none or it
    failed (the caller then fsyncs each file, which reports a write error per file)."""
    fn = getattr(_LIBC, "syncfs", None) if _LIBC is not None else None
    if fn is None:
        return False
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return fn(fd) == 0
    finally:
        os.close(fd)


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:        # not a C library we can open
    _LIBC = None


_FLUSHER = _Flusher(FLUSH_INTERVAL / 2)


# ---------------------------------------------------------------------------------------------

class Store:
    """A recordings folder and its SQLite index. Safe to share between threads; every process
    opens its own Store on the same folder."""

    def __init__(self, directory: str | os.PathLike, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.dir = Path(directory)
        self.recordings_dir = self.dir / "recordings"
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.index_path = self.dir / INDEX
        self.flush_interval = flush_interval
        self._local = threading.local()
        self.blocked: str | None = None        # a storage cause: every writer stops until cleared
        self._pending: dict[str, dict] = {}    # rec_id -> close that could not reach the index
        self._generation = 0                   # bumped by reopen(): threads' connections renew
        self._init_db()
        self._index_key = self._key(self.index_path)

    # -- connections and transactions --------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: SQLite connections never cross
        processes or threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "generation", 0) != self._generation:
            try:
                conn.close()
            except sqlite3.Error:
                pass
            conn = None
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.index_path, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None)   # we issue BEGIN/COMMIT ourselves
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # WAL + NORMAL: commits do not fsync; the index may lose the last updates on power
            # loss but never gets corrupt, and repair_interrupted reconstructs from the files
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
            self._local.generation = self._generation
        return conn

    def _tx(self, fn: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        """Run ``fn`` in one transaction, retried while the database is busy.

        Writes take the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
        upgrades from read to write in WAL mode fails at once with SQLITE_BUSY, without waiting
        for busy_timeout, which is the classic source of 'database is locked' with several writers.
        """
        deadline = time.monotonic() + WRITE_DEADLINE
        delay = 0.005
        while True:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = fn(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _init_db(self) -> None:
        # journal_mode=WAL is persistent in the file; switching needs a moment of exclusive
        # access, which several workers starting together may have to wait for
        deadline = time.monotonic() + WRITE_DEADLINE
        while True:
            try:
                mode = self._conn().execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.index_path}: cannot use WAL mode (got {mode!r}); "
                               "is it on a network filesystem?")

        def create(conn: sqlite3.Connection) -> None:
            for stmt in _SCHEMA:            # not executescript: it would COMMIT our transaction
                conn.execute(stmt)
            have = {r[1] for r in conn.execute("PRAGMA table_info(recordings)")}
            for name, decl in _ADDED_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE recordings ADD COLUMN {name} {decl}")
            if conn.execute("PRAGMA user_version").fetchone()[0] != 2:
                conn.execute("PRAGMA user_version=2")     # not rewritten: a reader on a full disk
        self._tx(create)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads' objects go)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- storage health (issue 26) -----------------------------------------------------------

    @staticmethod
    def _key(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
            return st.st_dev, st.st_ino
        except OSError:
            return None

    def health(self, min_free: int) -> dict:
        """Can new recordings be taken? ``state``: ok | low (free space under ``min_free``) |
        full (a write failed for lack of space, until the space is back) | read-only | missing
        (the folder is gone) | error; ``reason`` says it in words.

        The folder there again (an operator recreated or remounted it) with its index or its
        recordings folder gone: both are made again. A store blocked by a failed write takes
        writes again once ``min_free`` plus the reserve is free (not sooner: it would fill at
        once) and every close left to retry is done."""
        out = {"state": "ok", "reason": "", "free_bytes": None, "total_bytes": None,
               "min_free": int(min_free), "reserve": (self.dir / RESERVE).exists(),
               "pending_closes": len(self._pending)}
        try:
            vfs = os.statvfs(self.dir)
        except OSError:
            self.block(STORAGE_MISSING)
            return dict(out, state="missing", reason=f"store folder {self.dir} is gone")
        out["free_bytes"] = free = vfs.f_bavail * vfs.f_frsize
        out["total_bytes"] = vfs.f_blocks * vfs.f_frsize
        if vfs.f_flag & os.ST_RDONLY or not os.access(self.dir, os.W_OK) \
                or (self.recordings_dir.is_dir() and not os.access(self.recordings_dir, os.W_OK)):
            self.block(STORAGE_READ_ONLY)
            return dict(out, state="read-only", reason=f"store folder {self.dir} is not writable")
        if not self.recordings_dir.is_dir() or self._key(self.index_path) != self._index_key:
            try:
                self.reopen()
            except (OSError, sqlite3.Error) as exc:
                return dict(out, state="error", reason=f"index cannot be made again: {exc}")
        if self._pending and self.blocked is None:
            self.retry_pending()
        if self.blocked is not None:
            # writable again once the reserve is back and min_free is left beside it (sooner,
            # the first session would fill the disk again at once)
            self.retry_pending()
            self.ensure_reserve(min_free, force=True)
            free = out["free_bytes"] = self._free()
            if self._pending or not (self.dir / RESERVE).exists() or free < min_free:
                state = {STORAGE_FULL: "full", STORAGE_READ_ONLY: "read-only",
                         STORAGE_MISSING: "missing"}.get(self.blocked, "error")
                why = (f"{len(self._pending)} recordings cannot be closed in the index" if self._pending
                       else f"{free // 1024} kB free, {(min_free + RESERVE_BYTES) // 1024} kB needed")
                return dict(out, state=state, reason=why, pending_closes=len(self._pending))
            log.warning("store %s writable again after %s (%d kB free)", self.dir, self.blocked,
                        free // 1024)
            self.blocked = None
        if free < min_free:
            return dict(out, state="low", reason=f"{free // 1024} kB free, {min_free // 1024} kB needed")
        self.ensure_reserve(min_free)
        out["reserve"] = (self.dir / RESERVE).exists()
        out["pending_closes"] = len(self._pending)
        return out

    def _free(self) -> int:
        try:
            vfs = os.statvfs(self.dir)
        except OSError:
            return 0
        return vfs.f_bavail * vfs.f_frsize

    def reopen(self) -> None:
        """The index file was removed or replaced under us: every thread opens the new one.
        Sessions writing then are stopped (their rows were in the index that is gone)."""
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self._generation += 1
        self._init_db()
        self._index_key = self._key(self.index_path)
        log.warning("store %s: index opened again (it was removed or replaced)", self.dir)

    def ensure_reserve(self, min_free: int = 0, force: bool = False) -> None:
        """Keep RESERVE_BYTES allocated, to be given up when the disk fills (release_reserve);
        made only when ``min_free`` (at least as much again) stays free beside it."""
        path = self.dir / RESERVE
        if path.exists() or (self.blocked is not None and not force):
            return
        try:
            if self._free() < RESERVE_BYTES + max(min_free, RESERVE_BYTES):
                return
            with open(path, "wb") as f:
                f.write(b"\0" * RESERVE_BYTES)
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            try:
                path.unlink()
            except OSError:
                pass

    def release_reserve(self) -> bool:
        try:
            (self.dir / RESERVE).unlink()
            return True
        except OSError:
            return False

    def block(self, cause: str) -> None:
        """A write failed for ``cause``: every writer stops, the reserve goes to the index."""
        if self.blocked is None:
            log.warning("store %s: %s, writes stopped", self.dir, cause)
        self.blocked = cause
        if cause == STORAGE_FULL:
            self.release_reserve()

    def retry_pending(self) -> list[str]:
        """Close the rows whose close could not reach the index before (truncated)."""
        done = []
        for rec_id, args in list(self._pending.items()):
            try:
                self._finish_row(rec_id, **args)
            except (OSError, sqlite3.Error):
                continue
            del self._pending[rec_id]
            done.append(rec_id)
        return done

    def pending_close(self, rec_id: str, **args: Any) -> None:
        self._pending[rec_id] = args

    # -- recording ---------------------------------------------------------------------------

    def begin(self, session_id: str, sip_call_id: str, recording_call_id: str, dialect: str,
              owner: str, participants: Sequence[dict], provider: str, tier: str,
              correlation: str = "", worker: str = "", *, rate: int = 8000,
              started_at: datetime | None = None) -> "RecordingWriter":
        """Create a recording (row first, then folder and WAV) and return its writer. When the
        folder or the WAV cannot be made, the row is taken back (StorageFailure)."""
        if self.blocked is not None:
            raise StorageFailure(self.blocked, "store blocked")
        participants = _check_participants(participants)
        tier = _check_provider_tier(provider, tier)
        started = iso(started_at or _now())
        rec_id = uuid.uuid4().hex
        audio_rel = f"recordings/{rec_id}/{AUDIO}"
        pid, pstart = _writer_identity()

        def insert(conn: sqlite3.Connection) -> None:
            expires = _expiry(provider, tier, started, self._changes(conn, owner))
            conn.execute(
                "INSERT INTO recordings (id, session_id, sip_call_id, recording_call_id, "
                "correlation, dialect, owner, participants, started_at, provider, tier, "
                "retention_expires, state, audio_file, worker, rate, writer_pid, writer_start) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec_id, session_id, sip_call_id, recording_call_id, correlation, dialect, owner,
                 json.dumps(participants), started, provider, tier, expires, RECORDING,
                 audio_rel, worker, rate, pid, pstart))
        # the row exists before the folder: a folder without a row can then only be the rest of
        # an interrupted delete, which repair_interrupted may sweep away safely
        self._tx(insert)
        folder = self.recordings_dir / rec_id
        try:
            folder.mkdir()
            wav = wavfile.WavWriter(folder / AUDIO, rate=rate, channels=2)
            _fsync_dir(folder)
        except OSError as exc:
            cause = storage_cause(exc) or STORAGE_ERROR
            if cause == STORAGE_FULL:
                self.block(cause)
            try:
                self.delete(rec_id)
            except (OSError, sqlite3.Error):
                self.pending_close(rec_id, ended_at=_now(), talk_seconds=0.0, paused=[],
                                   state=TRUNCATED, extra={"ended_by": cause})
            raise StorageFailure(cause, str(exc)) from exc
        writer = RecordingWriter(self, rec_id, wav, self.flush_interval)
        _FLUSHER.add(writer)
        return writer

    def _changes(self, conn: sqlite3.Connection, owner: str) -> list[tuple[str, str]]:
        rows = conn.execute("SELECT at, tier FROM tier_changes WHERE owner IN (?, ?) ORDER BY seq",
                            (owner, ALL_OWNERS)).fetchall()
        return [(r["at"], r["tier"]) for r in rows]

    def _update(self, rec_id: str, **cols: Any) -> None:
        cols = {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in cols.items()}
        sets = ", ".join(f"{k}=?" for k in cols)
        self._tx(lambda c: c.execute(f"UPDATE recordings SET {sets} WHERE id=?",
                                     (*cols.values(), rec_id)))

    def _finish_row(self, rec_id: str, ended_at: datetime, talk_seconds: float,
                    paused: list[dict], state: str = COMPLETE,
                    only_if_recording: bool = False, extra: dict | None = None) -> bool:
        """Close a row: end time, talk time, state, and the expiry over the tier history."""
        def close(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT * FROM recordings WHERE id=?", (rec_id,)).fetchone()
            if row is None or (only_if_recording and row["state"] != RECORDING):
                return False
            expires = _expiry(row["provider"], row["tier"], row["started_at"],
                              self._changes(conn, row["owner"]))
            ended = max(parse_iso(row["started_at"]), _utc(ended_at))   # clocks do step back
            conn.execute(
                "UPDATE recordings SET ended_at=?, talk_seconds=?, paused_segments=?, state=?, "
                "truncated=?, retention_expires=? WHERE id=?",
                (iso(ended), round(talk_seconds, 6), json.dumps(paused), state,
                 int(state == TRUNCATED), expires, rec_id))
            if extra:          # in the same transaction: no reader sees the state without them
                cols = {k: json.dumps(v) if k in _JSON_COLUMNS else v for k, v in extra.items()}
                conn.execute(f"UPDATE recordings SET {', '.join(f'{k}=?' for k in cols)} WHERE id=?",
                             (*cols.values(), rec_id))
            return True
        return self._tx(close)

    # -- queries -----------------------------------------------------------------------------

    def _row(self, row: sqlite3.Row) -> dict:
        d = dict(row)
        for k in _JSON_COLUMNS:
            d[k] = json.loads(d[k])
        d["audio_path"] = str(self.dir / d["audio_file"])       # derived, not stored
        return d

    def get(self, rec_id: str) -> dict | None:
        row = self._tx(lambda c: c.execute("SELECT * FROM recordings WHERE id=?",
                                           (rec_id,)).fetchone(), write=False)
        return self._row(row) if row is not None else None

    def list(self, owner: str | None = None, state: str | None = None,
             correlation: str | None = None, session_id: str | None = None,
             since: datetime | None = None, until: datetime | None = None) -> list[dict]:
        """Recordings matching every filter given, oldest first."""
        where, args = [], []
        for col, val in (("owner", owner), ("state", state), ("correlation", correlation),
                         ("session_id", session_id)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if since is not None:
            where.append("started_at>=?")
            args.append(iso(since))
        if until is not None:
            where.append("started_at<?")
            args.append(iso(until))
        sql = "SELECT * FROM recordings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, id"
        rows = self._tx(lambda c: c.execute(sql, args).fetchall(), write=False)
        return [self._row(r) for r in rows]

    # -- maintenance -------------------------------------------------------------------------

    def delete(self, rec_id: str) -> bool:
        """Delete a recording's row, then its folder. Deleting one still being written makes its
        writer's later index updates no-ops (apply_retention never does that)."""
        gone = self._tx(lambda c: c.execute("DELETE FROM recordings WHERE id=?",
                                            (rec_id,)).rowcount)
        shutil.rmtree(self.recordings_dir / rec_id, ignore_errors=True)
        return bool(gone)

    def repair_interrupted(self) -> list[str]:
        """Repair every recording left in state 'recording' by a writer process that is gone.

        Run on recorder (re)start. The WAV gets a valid header (wavfile.repair), the row becomes
        truncated with ended_at = the audio file's mtime (the last moment audio reached the
        disk) and talk_seconds = the audio in the file. Recordings of live writers (other
        workers, or this process) are left alone, and so is every finished recording.
        """
        rows = self._tx(lambda c: c.execute(
            "SELECT id, audio_file, rate, writer_pid, writer_start, paused_segments "
            "FROM recordings WHERE state=?", (RECORDING,)).fetchall(), write=False)
        repaired = []
        for r in rows:
            if _writer_alive(r["writer_pid"], r["writer_start"]):
                continue
            path = self.dir / r["audio_file"]
            if path.exists():
                mtime = path.stat().st_mtime            # before repair touches the file
                talk = wavfile.repair(path, rate=r["rate"])
            else:                                       # crashed between row and file
                path.parent.mkdir(parents=True, exist_ok=True)
                wavfile.WavWriter(path, rate=r["rate"]).close()
                mtime, talk = path.stat().st_mtime, 0.0
            ended = datetime.fromtimestamp(mtime, timezone.utc)
            # an open pause segment keeps duration null: the pause lasted until the crash
            if self._finish_row(r["id"], ended, talk, json.loads(r["paused_segments"]),
                                state=TRUNCATED, only_if_recording=True, extra={"ended_by": "crash"}):
                repaired.append(r["id"])
        self._sweep_orphans()
        return repaired

    def _sweep_orphans(self) -> None:
        """Remove folders without a row: leftovers of a delete cut short by a crash."""
        folders = [p for p in self.recordings_dir.iterdir() if p.is_dir()]
        # rows read after listing: a concurrent begin inserts its row before its folder
        ids = set(self._tx(lambda c: [r[0] for r in c.execute("SELECT id FROM recordings")],
                           write=False))
        for p in folders:
            if p.name not in ids:
                shutil.rmtree(p, ignore_errors=True)

    def apply_retention(self, now: datetime) -> list[str]:
        """Delete every finished recording whose retention expired at or before ``now``
        (R-PRV-2: Dubber Go 30 days; R-PRV-9: Webex one year; paid tiers never)."""
        ids = self._tx(lambda c: [r[0] for r in c.execute(
            "SELECT id FROM recordings WHERE retention_expires IS NOT NULL "
            "AND retention_expires<=? AND state!=? ORDER BY retention_expires",
            (iso(now), RECORDING))], write=False)
        return [i for i in ids if self.delete(i)]

    def set_tier(self, owner_or_all: str | None, tier: str, at: datetime) -> list[str]:
        """Record a Dubber tier change at ``at`` for one owner (None or "*": every owner) and
        recompute the expiry of their Dubber recordings (R-PRV-3: free -> paid stops deletion,
        paid -> free deletes 30 days after the change). Returns the ids whose expiry changed."""
        tier = _check_provider_tier(providers.DUBBER, tier)
        owner = ALL_OWNERS if owner_or_all in (None, ALL_OWNERS) else owner_or_all

        def change(conn: sqlite3.Connection) -> list[str]:
            conn.execute("INSERT INTO tier_changes (owner, at, tier) VALUES (?,?,?)",
                         (owner, iso(at), tier))
            sql = "SELECT id, owner, tier, started_at, retention_expires FROM recordings " \
                  "WHERE provider=?"
            args: list[Any] = [providers.DUBBER]
            if owner != ALL_OWNERS:
                sql += " AND owner=?"
                args.append(owner)
            changed = []
            for r in conn.execute(sql, args).fetchall():
                new = _expiry(providers.DUBBER, r["tier"], r["started_at"],
                              self._changes(conn, r["owner"]))
                if new != r["retention_expires"]:
                    conn.execute("UPDATE recordings SET retention_expires=? WHERE id=?",
                                 (new, r["id"]))
                    changed.append(r["id"])
            return changed
        return self._tx(change)


class RecordingWriter:
    """Writes one recording: audio, metadata documents, pauses, announcements.

    Thread-safe: SIP signalling (metadata, pause) and the media thread (write) may call it from
    different threads. The audio lock is never held across an index update, so a busy index
    cannot stall the media thread beyond one fsync.
    """

    def __init__(self, store: Store, rec_id: str, wav: wavfile.WavWriter,
                 flush_interval: float) -> None:
        self.store = store
        self.id = rec_id
        self.folder = store.recordings_dir / rec_id
        self._wav = wav
        self._dev = 0                     # the file system's device (group commit)
        self._flush_interval = flush_interval
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._paused_at: tuple[float, float] | None = None   # (call seconds, monotonic)
        self._segments: list[dict] = []
        self._announcements: list[dict] = []
        self._metadata: list[str] = []
        self._finished = False
        self.error: str | None = None     # the storage cause of a failed write: no more audio
        self._generation = store._generation   # another: the index it is in is gone

    @property
    def path(self) -> Path:
        return self._wav.path

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    @property
    def talk_seconds(self) -> float:
        return self._wav.seconds

    def add_metadata(self, xml_text: str | bytes) -> Path:
        """Keep a metadata document exactly as received (str is stored as UTF-8)."""
        data = xml_text.encode("utf-8") if isinstance(xml_text, str) else bytes(xml_text)
        with self._lock:
            self._metadata.append(f"recordings/{self.id}/metadata-{len(self._metadata) + 1:03d}.xml")
            files = list(self._metadata)
        path = self.store.dir / files[-1]
        _write_file_durably(path, data)
        self.store._update(self.id, metadata_files=files)
        return path

    def write(self, left: np.ndarray, right: np.ndarray) -> None:
        """Append equal-length int16 blocks of the two send streams. Ignored while paused
        (the caller should not send audio then; this keeps a late packet out of the file)."""
        left, right = np.asarray(left), np.asarray(right)
        if left.ndim != 1 or left.shape != right.shape:
            raise ValueError(f"left and right must be 1-D and of equal length, "
                             f"got {left.shape} and {right.shape}")
        with self._lock:
            if self._finished:
                raise RuntimeError(f"recording {self.id} is finished")
            self._check_locked()
            if self._paused_at is not None:
                return
            try:
                # buffered only: the flusher thread puts it on disk (_stage_if_due, group sync)
                self._wav.append(np.column_stack((left, right)))
            except OSError as exc:
                raise self._failed_locked(exc) from exc

    @property
    def failure(self) -> str | None:
        """The storage cause that stops this writer (its own failed write, the store blocked by
        another's, or its index gone), None while it can write. Cheap: read every tick."""
        if self.error is None and not self._finished:
            if self.store.blocked is not None:
                return self.store.blocked
            if self.store._generation != self._generation:
                return STORAGE_MISSING
        return self.error

    def _check_locked(self) -> None:
        if self.error is None and self.store.blocked is not None:
            self.error = self.store.blocked
        if self.error is None and self.store._generation != self._generation:
            self.error = STORAGE_MISSING
        if self.error is not None:
            raise StorageFailure(self.error, f"recording {self.id}: writes stopped")

    def _failed_locked(self, exc: BaseException) -> StorageFailure:
        """A write failed: this writer stops for good; a full disk stops every writer."""
        cause = storage_cause(exc) or STORAGE_ERROR
        self.error = cause
        if cause == STORAGE_FULL:
            self.store.block(cause)
        return StorageFailure(cause, str(exc))

    def flush(self) -> None:
        """Put all audio written so far on disk (valid WAV header included)."""
        with self._lock:
            if not self._finished:
                self._check_locked()
                try:
                    self._flush_locked()
                except OSError as exc:
                    raise self._failed_locked(exc) from exc

    def _flush_locked(self) -> None:
        self._wav.flush()
        self._last_flush = time.monotonic()

    def _stage_if_due(self) -> int | None:
        """Flusher thread, first step: the audio to the OS; the data bytes to commit, or None."""
        with self._lock:
            if (self._finished or self.error is not None or not self._wav.dirty
                    or time.monotonic() - self._last_flush < self._flush_interval):
                return None
            try:
                staged = self._wav.stage()
                self._dev = self._dev or os.fstat(self._wav.fileno()).st_dev
            except OSError as exc:
                raise self._failed_locked(exc) from exc
            self._last_flush = time.monotonic()
            return staged

    def _commit(self, staged: int) -> None:
        """Flusher thread, last step, after the file system was synced: the header claims it."""
        with self._lock:
            if self._finished or self.error is not None:
                return
            try:
                self._wav.commit(staged)
            except OSError as exc:
                raise self._failed_locked(exc) from exc


    def pause(self, at_seconds: float) -> None:
        """Start a paused segment ``at_seconds`` into the call. A second pause is ignored."""
        with self._lock:
            if self._finished or self._paused_at is not None:
                return
            if self.error is None:
                try:
                    self._flush_locked()      # what was recorded before the pause is safe
                except OSError as exc:
                    raise self._failed_locked(exc) from exc
            self._paused_at = (float(at_seconds), time.monotonic())
            # an open segment (duration null) in the index: a crash during the pause shows it
            segments = self._segments + [{"start": float(at_seconds), "duration": None}]
        self.store._update(self.id, paused_segments=segments)

    def resume(self, at_seconds: float) -> None:
        """End the paused segment ``at_seconds`` into the call. Ignored when not paused."""
        with self._lock:
            if self._finished or self._paused_at is None:
                return
            self._close_segment(float(at_seconds))
            segments = list(self._segments)
        self.store._update(self.id, paused_segments=segments)

    def _close_segment(self, at_seconds: float | None) -> None:
        assert self._paused_at is not None
        start, since = self._paused_at
        duration = at_seconds - start if at_seconds is not None else time.monotonic() - since
        self._segments.append({"start": start, "duration": round(max(0.0, duration), 6)})
        self._paused_at = None

    def announcement(self, event: dict) -> None:
        """Note an announcement played (kind, when, to whom: the caller's dict, kept as is)."""
        if not isinstance(event, dict):
            raise TypeError(f"announcement must be a dict, got {type(event).__name__}")
        with self._lock:
            self._announcements.append(dict(event))
            announcements = list(self._announcements)
        self.store._update(self.id, announcements=announcements)

    def finish(self, at_seconds: float | None = None, ended_at: datetime | None = None,
               truncated: bool = False, **columns: Any) -> dict:
        """Final flush and close; the row becomes complete with its retention expiry, and gets
        ``columns`` (e.g. ended_by, stream_stats) in the same transaction.

        A pause still open is closed at ``at_seconds`` into the call (or by wall clock).
        Calling finish again returns the row unchanged. When the audio could not all be
        written (``truncated``, or a write failed: ``error``), the WAV is cut to what is on disk
        with a valid header and the row becomes ``truncated``. When even the index cannot be
        written (a full disk), the reserve is given up and the close retried; failing that, it
        is left to ``Store.retry_pending`` and StorageFailure is raised.
        """
        with self._lock:
            if self._finished:
                return self.store.get(self.id) or {}
            if self._paused_at is not None:
                self._close_segment(at_seconds)
            try:
                self._wav.close()
            except OSError as exc:
                self._failed_locked(exc)
            self._finished = True
            talk, segments = self._wav.seconds, list(self._segments)
            if self.error is not None:
                truncated = True
                try:            # in place: sizes from what reached the disk, no new blocks
                    talk = wavfile.repair(self.path, rate=self._wav.rate)
                except (OSError, ValueError) as exc:
                    log.warning("recording %s: WAV not repaired: %s", self.id, exc)
        state = TRUNCATED if truncated else COMPLETE
        ended = ended_at or _now()
        for attempt in range(2):
            try:
                self.store._finish_row(self.id, ended, talk, segments, state=state, extra=columns)
                break
            except (OSError, sqlite3.Error) as exc:
                cause = storage_cause(exc)
                if cause is not None and attempt == 0 and self.store.release_reserve():
                    continue
                if cause is not None:
                    self.store.block(cause)
                # (a busy index past WRITE_DEADLINE too: the row must not stay `recording`)
                self.store.pending_close(self.id, ended_at=ended, talk_seconds=talk, paused=segments,
                                         state=state, extra=columns)
                raise StorageFailure(cause or STORAGE_ERROR, f"recording {self.id} closed later: {exc}") from exc
        try:
            return self.store.get(self.id) or {}
        except (OSError, sqlite3.Error):
            return {}

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
