"""The recorder portal (issue 6, part 3): what a provider's web portal shows of the recordings
mppsim's recorder made, with the access rules of the provider and tier.

    portal = RecorderPortal(sim); portal.refresh()

- a viewer selector (the administrator, or one user / virtual line account): who is looking;
- a table of the recordings that viewer may see, with filters;
- a player (sounddevice when an output device exists, else a silent timer-driven playback) and a
  two-lane waveform (left = the recorded line's send stream, right = the other party's) with the
  paused segments, announcement moments and the play position;
- the metadata documents exactly as received and as parsed;
- delete (confirmed), download (save as), share (a file URL copied to the clipboard).

Access (pure function `rights`, unit-tested):
- R-PRV-2 Dubber Go: only the user sees and manages their own recordings; administrators see
  nothing. Paid tiers (Team, Premier, Standard, AI): administrators see all. The Dubber tier is the
  organisation's current one (a contract covers the recordings already made, R-PRV-3).
- R-PRV-9 Webex as provider: administrators (compliance officers) see all; a user's own recordings
  follow their `callRecordingAccessSettings` (view and play, download, delete, share), which is
  what Control Hub's "user access to their call recordings" configures for the Webex provider.
  The other providers' portals (Dubber, Imagicle, CallCabinet) do not read these settings: there
  the user manages their own recordings in full.
- R-VL-4 a virtual line has its own provider account; with Dubber its recordings are heard
  through a team in the Dubber portal, which mppsim does not model: the assigned user does not
  see them as their own (the virtual line's own account, or an administrator on a paid tier, does).

The store is read through a read-only SQLite connection opened per refresh and closed at once,
in autocommit mode (no transaction left open), so the recorder keeps writing while the portal is
open (WAL readers never block the writer).
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout,
                               QWidget)

from mppsim.rules import providers as P
from mppsim.recorder import wavfile
from mppsim.siprec.metadata import MetadataError
from mppsim.siprec.metadata import parse as parse_metadata
from mppsim.sip.uri import user as uri_user

ADMIN = "Administrator"
ALL_OWNERS = "All owners"
_JSON_COLUMNS = ("participants", "paused_segments", "announcements", "metadata_files",
                 "participants_timeline", "stream_stats")      # the last two: docs/store.md


# ---------------------------------------------------------------------------------------------
# access: pure

@dataclass(frozen=True)
class Rights:
    view: bool = False          # listed and playable
    download: bool = False
    delete: bool = False
    share: bool = False
    why: str = ""               # the rule behind the decision, for the status line

    @property
    def any(self) -> bool:
        return self.view


FULL = dict(view=True, download=True, delete=True, share=True)


def rights(viewer: str, owner: str | None, owner_kind: str | None, provider: str | None,
           tier: str | None, access: Mapping[str, Any] | None = None) -> Rights:
    """What ``viewer`` (ADMIN or a line id) may do with a recording owned by line ``owner``
    (kind "user" or "virtual_line"; None when the owner is not a line of this organisation).

    ``provider`` is the recording's provider, ``tier`` the organisation's current Dubber tier,
    ``access`` the owner's callRecordingAccessSettings. R-PRV-2, R-PRV-3, R-PRV-9, R-VL-4.
    """
    if viewer == ADMIN:
        if provider == P.DUBBER:
            tier = tier or P.DEFAULT_TIER
        if P.admins_see_recordings(provider, tier):
            label = f"{provider} {tier}" if provider == P.DUBBER else str(provider)
            return Rights(**FULL, why=f"{label}: administrators access every recording "
                                      f"({'R-PRV-9' if provider == P.WEBEX else 'R-PRV-2'})")
        return Rights(why=f"{provider} {tier or ''}".strip()
                      + ": only the user sees and manages their own recordings (R-PRV-2)")
    if owner is None or viewer != owner:
        return Rights(why="not this viewer's recording")
    if provider == P.WEBEX:
        a = dict(access or {})
        if not a.get("viewAndPlayRecordingsEnabled"):
            return Rights(why="Webex: viewAndPlayRecordingsEnabled is off for this user (R-PRV-9)")
        return Rights(view=True, download=bool(a.get("downloadRecordingsEnabled")),
                      delete=bool(a.get("deleteRecordingsEnabled")),
                      share=bool(a.get("shareRecordingsEnabled")),
                      why="Webex: the user's callRecordingAccessSettings (R-PRV-9)")
    return Rights(**FULL, why=f"{provider}: the user manages their own recordings in the provider "
                              f"portal (R-PRV-2)" + (" (virtual line account, R-VL-4)"
                                                     if owner_kind == "virtual_line" else ""))


# ---------------------------------------------------------------------------------------------
# the store, read without locking it

def read_recordings(store_dir: str | Path) -> list[dict]:
    """Every row of the recorder's index, oldest first, read through a read-only connection that
    is closed before returning (autocommit: no transaction stays open)."""
    store_dir = Path(store_dir)
    index = store_dir / "index.sqlite"
    if not index.exists():
        return []
    conn = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True, timeout=1.0,
                           isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM recordings ORDER BY started_at, id").fetchall()
    except sqlite3.OperationalError:
        return []                      # index being created
    finally:
        conn.close()
    out = []
    for r in rows:
        d = dict(r)
        for k in _JSON_COLUMNS:
            d[k] = json.loads(d[k]) if d.get(k) else []
        d["audio_path"] = str(store_dir / d["audio_file"])
        d["truncated"] = bool(d.get("truncated"))
        out.append(d)
    return out


def storage_summary(store_dir: str | Path) -> tuple[str, bool]:
    """(one line on the recorder's store, True when it is a problem) from the status files the
    running recorders write every second (issue 26): free space, refused sessions, recordings
    truncated because the store failed - so an operator sees it before a customer does."""
    folder = Path(store_dir) / "status"
    states, free, refused, truncated = [], None, 0, 0
    for path in sorted(folder.glob("recorder-*.json")) if folder.is_dir() else []:
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if time.time() - path.stat().st_mtime > 10:
            continue                   # a recorder that stopped (or could not write it since)
        storage = st.get("storage") or {}
        states.append((storage.get("state") or "ok", storage.get("reason") or ""))
        if storage.get("free_bytes") is not None:
            free = storage["free_bytes"]
        refused += int(st.get("refused_storage") or 0)
        truncated += int(st.get("truncated_storage") or 0)
    if not states:
        return "Store: no running recorder reports on it", False
    bad = [f"{s}{' (' + why + ')' if why else ''}" for s, why in states if s != "ok"]
    space = f"{free / 1e9:.2f} GB free" if free is not None and free >= 1e8 else \
        (f"{(free or 0) // 1024} kB free" if free is not None else "free space unknown")
    text = (f"Store: {', '.join(bad) if bad else 'ok'} · {space} · {refused} session(s) refused "
            f"for storage · {truncated} recording(s) truncated by storage")
    return text, bool(bad or refused or truncated)


def aor_number(aor: str) -> str:
    """'sip:1004@127.0.0.1' -> '1004'; 'tel:+1415...' -> '+1415...' (the SIP toolkit's reading)."""
    return uri_user(aor)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def retention_left(row: dict, now: datetime | None = None) -> str:
    """'unlimited', 'N d' or 'expired' (R-PRV-2, R-PRV-3, R-PRV-9)."""
    exp = parse_time(row.get("retention_expires"))
    if exp is None:
        return "unlimited"
    left = (exp - (now or datetime.now(timezone.utc))).total_seconds()
    if left <= 0:
        return "expired"
    days = left / 86400
    return f"{days:.0f} d" if days >= 1 else f"{left / 3600:.1f} h"


def audio_position(call_seconds: float, pauses: Iterable[dict]) -> float:
    """Where a moment of the call lies in the audio file: pauses are left out of the audio
    (R-PRV-9: a pause leaves no gap), so every pause that ended before it shifts it back."""
    shift = 0.0
    for p in sorted(pauses, key=lambda p: p["start"]):
        dur = p.get("duration") or 0.0
        if p["start"] + dur <= call_seconds:
            shift += dur
        elif p["start"] < call_seconds:             # inside the pause: at the pause's marker
            shift += call_seconds - p["start"]
    return max(0.0, call_seconds - shift)


def pause_markers(row: dict) -> list[tuple[float, float]]:
    """(audio position, duration) of each paused segment."""
    out, shift = [], 0.0
    for p in sorted(row.get("paused_segments") or [], key=lambda p: p["start"]):
        dur = float(p.get("duration") or 0.0)
        out.append((max(0.0, p["start"] - shift), dur))
        shift += dur
    return out


def announcement_markers(row: dict) -> list[tuple[float, str]]:
    """(audio position, kind) of each announcement whose dict carries a time ('time' ISO or
    'at' call seconds); the others have no place on the time line."""
    start = parse_time(row.get("started_at"))
    out = []
    for a in row.get("announcements") or []:
        if isinstance(a.get("at"), (int, float)):
            t = float(a["at"])
        else:
            when = parse_time(a.get("time"))
            if when is None or start is None:
                continue
            t = (when - start).total_seconds()
        out.append((audio_position(max(0.0, t), row.get("paused_segments") or []),
                    str(a.get("announcement", "announcement"))))
    return out


def peaks(audio: np.ndarray, buckets: int) -> np.ndarray:
    """Per channel, the peak |sample| of each of ``buckets`` equal slices, scaled to 0..1:
    shape (channels, buckets)."""
    n, channels = audio.shape if audio.ndim == 2 else (audio.shape[0], 1)
    audio = audio.reshape(n, channels)
    out = np.zeros((channels, buckets))
    if n == 0 or buckets <= 0:
        return out
    edges = np.linspace(0, n, buckets + 1).astype(int)
    mag = np.abs(audio.astype(np.int32))
    for i in range(buckets):
        a, b = edges[i], max(edges[i + 1], edges[i] + 1)
        out[:, i] = mag[a:min(b, n)].max(axis=0) if a < n else 0
    return out / 32768.0


# ---------------------------------------------------------------------------------------------
# waveform

LANE_COLOURS = (QColor("#2f80ed"), QColor("#27ae60"))
PAUSE_COLOUR = QColor("#f2994a")
ANNOUNCE_COLOUR = QColor("#9b51e0")
POSITION_COLOUR = QColor("#eb5757")


class Waveform(QWidget):
    """One lane per channel, paused-segment markers (at the audio position where the pause
    happened, labelled with its duration), announcement moments, the play position."""

    BUCKETS = 800
    seek = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("portal_waveform")
        self.setMinimumHeight(170)
        self.lane_names: list[str] = []
        self.peaks = np.zeros((0, 0))
        self.seconds = 0.0
        self.pauses: list[tuple[float, float]] = []
        self.announcements: list[tuple[float, str]] = []
        self.position = 0.0

    @property
    def lanes(self) -> int:
        return self.peaks.shape[0]

    def clear(self) -> None:
        self.set_audio(np.zeros((0, 0)), 0.0, [], [], [])

    def set_audio(self, pk: np.ndarray, seconds: float, lane_names: list[str],
                  pauses: list[tuple[float, float]], announcements: list[tuple[float, str]]) -> None:
        self.peaks, self.seconds, self.lane_names = pk, seconds, lane_names
        self.pauses, self.announcements, self.position = pauses, announcements, 0.0
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    def _x(self, seconds: float, left: float, width: float) -> float:
        return left + width * (min(seconds, self.seconds) / self.seconds if self.seconds else 0)

    def mousePressEvent(self, e):  # noqa: N802
        if self.seconds > 0:
            left, width = 90, max(1, self.width() - 114)
            self.seek.emit(max(0.0, min(self.seconds, (e.position().x() - left) / width * self.seconds)))

    def paintEvent(self, _):  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        if not self.lanes:
            p.setPen(QColor("#888"))
            p.drawText(self.rect(), Qt.AlignCenter, "select a recording")
            return
        left, top, right_pad, bottom_pad = 90.0, 18.0, 24.0, 20.0
        width = self.width() - left - right_pad
        lane_h = (self.height() - top - bottom_pad) / self.lanes
        small = QFont(self.font())
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        p.setFont(small)
        # lanes
        for i in range(self.lanes):
            y0 = top + i * lane_h
            mid = y0 + lane_h / 2
            p.fillRect(QRectF(left, y0 + 2, width, lane_h - 4), QColor("#f4f6f8"))
            p.setPen(QColor("#444"))
            name = self.lane_names[i] if i < len(self.lane_names) else f"channel {i + 1}"
            p.drawText(QRectF(4, y0, left - 8, lane_h), Qt.AlignVCenter | Qt.AlignRight | Qt.TextWordWrap,
                       name)
            colour = LANE_COLOURS[i % len(LANE_COLOURS)]
            p.setPen(QPen(colour, 1))
            n = self.peaks.shape[1]
            half = lane_h / 2 - 4
            for x in range(int(width)):
                v = self.peaks[i, min(n - 1, int(x * n / max(1, width)))]
                h = max(0.5, v * half)
                p.drawLine(QPointF(left + x, mid - h), QPointF(left + x, mid + h))
        lanes_bottom = top + self.lanes * lane_h
        # time axis
        p.setPen(QColor("#666"))
        step = max(1, int(self.seconds / 8) or 1)
        t = 0
        while t <= self.seconds:
            x = self._x(t, left, width)
            p.drawLine(QPointF(x, lanes_bottom), QPointF(x, lanes_bottom + 4))
            p.drawText(QPointF(x + 2, lanes_bottom + 15), f"{t} s")
            t += step
        # paused segments: a band + marker where the audio resumes, labelled with the duration
        for at, dur in self.pauses:
            x = self._x(at, left, width)
            p.fillRect(QRectF(x - 3, top, 6, lanes_bottom - top),
                       QBrush(PAUSE_COLOUR, Qt.BDiagPattern))
            p.setPen(QPen(PAUSE_COLOUR, 2))
            p.drawLine(QPointF(x, top), QPointF(x, lanes_bottom))
            label = f"‖ paused {dur:.1f} s (not in the audio)"
            w = p.fontMetrics().horizontalAdvance(label)
            p.drawText(QPointF(x + 4 if x + 4 + w < left + width else x - 4 - w, top - 4), label)
        # announcements at (nearly) the same spot share one line: a pause's "paused" and
        # "resumed" tones both sit at the pause marker, since the pause is not in the audio
        groups: list[tuple[float, list[str]]] = []
        for at, kind in sorted(self.announcements):
            x = self._x(at, left, width)
            if groups and abs(groups[-1][0] - x) < 4:
                groups[-1][1].append(kind)
            else:
                groups.append((x, [kind]))
        for x, kinds in groups:
            p.setPen(QPen(ANNOUNCE_COLOUR, 2, Qt.DashLine))
            p.drawLine(QPointF(x, top), QPointF(x, lanes_bottom))
            label = "♪ " + ", ".join(kinds)
            w = p.fontMetrics().horizontalAdvance(label)
            tx = x + 4 if x + 4 + w < left + width else x - 4 - w
            p.setPen(ANNOUNCE_COLOUR)
            p.drawText(QPointF(tx, lanes_bottom - 4), label)
        # play position
        x = self._x(self.position, left, width)
        p.setPen(QPen(POSITION_COLOUR, 2))
        p.drawLine(QPointF(x, top - 2), QPointF(x, lanes_bottom + 2))


# ---------------------------------------------------------------------------------------------
# player

def output_device() -> tuple[bool, str]:
    """(an output device exists, why not)."""
    try:
        import sounddevice as sd
    except OSError as exc:
        return False, f"no audio device: {exc}"
    try:
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001 (PortAudio reports many kinds of failure)
        return False, f"no audio device: {exc}"
    if not any(d["max_output_channels"] > 0 for d in devices):
        return False, "no audio device"
    return True, ""


class Player:
    """Plays a WAV with sounddevice when it can; otherwise 'plays' silently on a QTimer so the
    position still advances. ``message`` says 'no audio device: silent playback' once."""

    TICK_MS = 50

    def __init__(self, on_tick, on_message, owner=None):
        self.file: str | None = None
        self.rate, self.audio = 8000, np.zeros((0, 2), dtype=np.int16)
        self.offset = 0.0
        self._t0: float | None = None
        self._sd = None
        self._said_silent = False
        self._on_tick, self._on_message = on_tick, on_message
        # The timer belongs to the widget that shows the position: it dies with it, so a tick can
        # never reach labels already deleted (a parentless timer outlived its portal, issue 14).
        self.timer = QTimer(owner)
        self.timer.setInterval(self.TICK_MS)
        self.timer.timeout.connect(self._tick)

    @property
    def seconds(self) -> float:
        return self.audio.shape[0] / self.rate if self.rate else 0.0

    @property
    def playing(self) -> bool:
        return self._t0 is not None

    def position(self) -> float:
        if self._t0 is None:
            return self.offset
        return min(self.seconds, self.offset + time.monotonic() - self._t0)

    def load(self, path: str | None) -> None:
        self.stop()
        self.file, self.offset = path, 0.0
        if path is None:
            self.rate, self.audio = 8000, np.zeros((0, 2), dtype=np.int16)
            return
        self.rate, self.audio = wavfile.read(path)

    def play(self, start: float | None = None) -> None:
        if self.file is None:
            return
        self.stop()
        if start is not None:
            self.offset = start
        if self.offset >= self.seconds:
            self.offset = 0.0
        ok, why = output_device()
        if ok:
            try:
                import sounddevice as sd
                sd.play(self.audio[int(self.offset * self.rate):], self.rate)
                self._sd = sd
            except Exception as exc:  # noqa: BLE001
                ok, why = False, f"no audio device: {exc}"
        if not ok and not self._said_silent:
            self._said_silent = True
            self._on_message(f"{why}: silent playback" if "no audio device" in why
                             else f"no audio device ({why}): silent playback")
        self._t0 = time.monotonic()
        self.timer.start()

    def stop(self) -> None:
        if self._t0 is not None:
            self.offset = self.position()
        self._t0 = None
        self.timer.stop()
        self._stop_sound()
        self._on_tick(self.offset)

    def release(self, *_args) -> None:
        """The owner widget is gone: stop the sound without reporting the position to it."""
        self._on_tick = lambda _pos: None
        self._on_message = lambda _text: None
        self._t0 = None
        self._stop_sound()

    def _stop_sound(self) -> None:
        if self._sd is not None:
            try:
                self._sd.stop()
            except Exception:  # noqa: BLE001 - a sound device gone away: nothing left to stop
                pass
            self._sd = None

    def _tick(self) -> None:
        pos = self.position()
        if pos >= self.seconds:
            self.stop()
            self.offset = 0.0 if self.seconds else self.offset
            self._on_tick(self.seconds)
            return
        self._on_tick(pos)


# ---------------------------------------------------------------------------------------------
# the portal

COLUMNS = ("Who", "Other party", "Direction", "Start", "Talk time", "Provider / tier",
           "Retention left", "Truncated", "State")


def fmt_seconds(s: float) -> str:
    s = max(0.0, float(s))
    return f"{int(s // 60)}:{s % 60:04.1f}"


class RecorderPortal(QWidget):
    """The recorder portal over a running Simulator (see the module docstring)."""

    def __init__(self, sim, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.setObjectName("portal")
        self.setWindowTitle("Recorder portal")
        self.rows: list[dict] = []             # visible to the viewer, after filters
        self._rights: dict[str, Rights] = {}
        self._metadata_cache: dict[str, str] = {}

        self.viewer = QComboBox(objectName="portal_viewer")
        self.viewer.addItem(ADMIN, ADMIN)
        for party in sim.parties:
            if party.kind == "user":
                self.viewer.addItem(f"{party.name} ({party.number})", party.id)
            elif party.kind == "virtual_line":
                self.viewer.addItem(f"{party.name} ({party.number}, virtual line account)", party.id)
        self.owner = QComboBox(objectName="portal_owner")
        self.owner.addItem(ALL_OWNERS, None)
        self.filter = QLineEdit(objectName="portal_filter")
        self.filter.setPlaceholderText("filter: name, number, provider…")
        self.filter.setClearButtonEnabled(True)
        refresh = QPushButton("Refresh", objectName="portal_refresh")
        self.access_label = QLabel(objectName="portal_access")
        self.access_label.setWordWrap(True)
        self.access_label.setStyleSheet("color:#555")
        self.storage_label = QLabel(objectName="portal_storage")
        self.storage_label.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("Viewer:"))
        top.addWidget(self.viewer, 2)
        top.addWidget(QLabel("Owner:"))
        top.addWidget(self.owner, 1)
        top.addWidget(self.filter, 2)
        top.addWidget(refresh)

        self.table = QTableWidget(0, len(COLUMNS), objectName="portal_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.play_btn = QPushButton("▶ Play", objectName="portal_play")
        self.stop_btn = QPushButton("■ Stop", objectName="portal_stop")
        self.position_label = QLabel("0:00.0 / 0:00.0", objectName="portal_position")
        self.download_btn = QPushButton("Download…", objectName="portal_download")
        self.delete_btn = QPushButton("Delete…", objectName="portal_delete")
        self.share_btn = QPushButton("Share", objectName="portal_share")
        self.status = QLabel(objectName="portal_status")
        self.status.setStyleSheet("color:#555")
        controls = QHBoxLayout()
        for w in (self.play_btn, self.stop_btn, self.position_label):
            controls.addWidget(w)
        controls.addStretch(1)
        for w in (self.share_btn, self.download_btn, self.delete_btn):
            controls.addWidget(w)

        self.waveform = Waveform()
        self.details = QLabel(objectName="portal_details")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)

        self.meta_tabs = QTabWidget(objectName="portal_metadata")
        self.meta_parsed = QPlainTextEdit(objectName="portal_metadata_parsed", readOnly=True)
        self.meta_raw = QPlainTextEdit(objectName="portal_metadata_raw", readOnly=True)
        self.meta_files = QComboBox(objectName="portal_metadata_files")
        raw_box = QWidget()
        rl = QVBoxLayout(raw_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.meta_files)
        rl.addWidget(self.meta_raw)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.Monospace)
        for w in (self.meta_parsed, self.meta_raw):
            w.setFont(mono)
            w.setLineWrapMode(QPlainTextEdit.NoWrap)
        # names for assistive tech and GUI test tools (five controls had none: issue 23)
        for w, accessible in ((self.viewer, "Portal viewer: whose recordings the portal shows"),
                              (self.owner, "Portal owner filter"), (self.filter, "Portal text filter"),
                              (self.meta_parsed, "Recording metadata, parsed"),
                              (self.meta_raw, "Recording metadata, raw XML"),
                              (self.meta_files, "Recording metadata file")):
            if not w.accessibleName():
                w.setAccessibleName(accessible)
        self.meta_tabs.addTab(self.meta_parsed, "Metadata (parsed)")
        self.meta_tabs.addTab(raw_box, "Metadata (as received)")

        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.details)
        dl.addWidget(self.waveform, 2)
        dl.addLayout(controls)
        dl.addWidget(self.meta_tabs, 2)

        split = QSplitter(Qt.Vertical)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([230, 570])
        self.table.setMinimumHeight(120)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.access_label)
        lay.addWidget(self.storage_label)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)

        self.player = Player(self._on_position, self.say, owner=self)
        self.destroyed.connect(self.player.release)
        self.viewer.currentIndexChanged.connect(lambda _i: self.refresh())
        self.owner.currentIndexChanged.connect(lambda _i: self._fill())
        self.filter.textChanged.connect(lambda _t: self._fill())
        refresh.clicked.connect(self.refresh)
        self.table.itemSelectionChanged.connect(self._on_select)
        self.play_btn.clicked.connect(self.play)
        self.stop_btn.clicked.connect(self.stop)
        self.download_btn.clicked.connect(self._download_clicked)
        self.delete_btn.clicked.connect(self._delete_clicked)
        self.share_btn.clicked.connect(self.share)
        self.waveform.seek.connect(self._seek)
        self._docs: list[tuple[str, str]] = []
        self.meta_files.currentIndexChanged.connect(
            lambda i: self.meta_raw.setPlainText(self._docs[i][1] if 0 <= i < len(self._docs) else ""))
        self._all: list[dict] = []
        self._set_buttons(None)
        self.resize(1100, 780)

    # ----- data ---------------------------------------------------------------------------
    def current_viewer(self) -> str:
        return self.viewer.currentData()

    def set_viewer(self, viewer: str) -> None:
        """ADMIN or a line id (user or virtual line)."""
        i = self.viewer.findData(viewer)
        if i < 0:
            raise KeyError(f"no viewer {viewer!r}")
        self.viewer.setCurrentIndex(i)
        self.refresh()

    def _party_of(self, aor: str):
        num = aor_number(aor)
        return next((p for p in self.sim.parties if p.number == num and p.kind != "pstn"), None)

    def _rights_for(self, row: dict, viewer: str, tier: str) -> Rights:
        party = self._party_of(row.get("owner", ""))
        access = None
        if party is not None and row.get("provider") == P.WEBEX:
            try:
                access = self.sim.settings.get_person(party.id).get("callRecordingAccessSettings")
            except KeyError:
                access = None
        return rights(viewer, party.id if party else None, party.kind if party else None,
                      row.get("provider") or None, tier, access)

    def refresh(self) -> None:
        """Re-read the store (read-only, no lock kept) and the settings; redraw."""
        viewer = self.current_viewer()
        tier = self.sim.settings.get_org().get("tier") or P.DEFAULT_TIER
        self._all, self._rights = [], {}
        for row in read_recordings(self.sim.recorder_store):
            r = self._rights_for(row, viewer, tier)
            if r.view:
                self._all.append(row)
                self._rights[row["id"]] = r
        org = self.sim.settings.get_org()
        provider = org.get("provider")
        admin_rule = rights(ADMIN, None, None, provider, tier)
        who = "the administrator" if viewer == ADMIN else self.viewer.currentText()
        self.access_label.setText(
            f"Provider {provider}{' ' + tier if provider == P.DUBBER else ''} · viewing as {who}: "
            f"{len(self._all)} recording(s) visible · "
            + (admin_rule.why if viewer == ADMIN else
               "a user sees their own recordings"
               + (" per callRecordingAccessSettings (R-PRV-9)" if provider == P.WEBEX else " (R-PRV-2)")))
        store_line, problem = storage_summary(self.sim.recorder_store)
        self.storage_label.setText(store_line)
        self.storage_label.setStyleSheet("color:#c0392b" if problem else "color:#555")
        # owners combo
        keep = self.owner.currentData()
        self.owner.blockSignals(True)
        self.owner.clear()
        self.owner.addItem(ALL_OWNERS, None)
        for aor in sorted({r["owner"] for r in self._all}):
            self.owner.addItem(self._owner_name(aor), aor)
        i = self.owner.findData(keep)
        self.owner.setCurrentIndex(max(0, i))
        self.owner.blockSignals(False)
        self._fill()

    def _owner_name(self, aor: str) -> str:
        p = self._party_of(aor)
        return f"{p.name} ({p.number})" if p else aor

    def _other(self, row: dict) -> str:
        others = [p for p in row.get("participants", []) if p.get("aor") != row.get("owner")]
        if not others:
            return ""
        o = others[0]
        num = aor_number(o.get("aor", ""))
        return f"{o.get('name') or num} ({num})" if o.get("name") and num else (o.get("name") or num)

    def _direction(self, row: dict) -> str:
        try:
            calls = self.sim.call_log()
        except Exception:  # noqa: BLE001
            return ""
        call = next((c for c in calls if c["sip_call_id"] == row.get("sip_call_id")), None)
        if call is None:
            return ""
        num = aor_number(row.get("owner", ""))
        if call["from"].get("number") == num:
            return "outgoing"
        if call["to"].get("number") == num:
            return "incoming"
        return ""

    def _matches(self, row: dict, text: str, owner: str | None) -> bool:
        if owner and row["owner"] != owner:
            return False
        if not text:
            return True
        hay = " ".join([self._owner_name(row["owner"]), self._other(row), row.get("provider", ""),
                        row.get("tier", ""), row.get("started_at", ""), row.get("state", "")]).lower()
        return all(word in hay for word in text.lower().split())

    def _fill(self) -> None:
        selected = self.selected_id()
        text, owner = self.filter.text().strip(), self.owner.currentData()
        self.rows = [r for r in self._all if self._matches(r, text, owner)]
        self.rows.sort(key=lambda r: r["started_at"], reverse=True)       # newest first
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        now = datetime.now(timezone.utc)
        for i, r in enumerate(self.rows):
            start = parse_time(r["started_at"])
            cells = (self._owner_name(r["owner"]), self._other(r), self._direction(r),
                     start.astimezone().strftime("%Y-%m-%d %H:%M:%S") if start else r["started_at"],
                     fmt_seconds(r.get("talk_seconds") or 0.0),
                     f"{r.get('provider') or '—'}{' / ' + r['tier'] if r.get('tier') else ''}",
                     retention_left(r, now), "yes" if r.get("truncated") else "no", state_text(r))
            for c, text_ in enumerate(cells):
                item = QTableWidgetItem(text_)
                item.setData(Qt.UserRole, r["id"])
                if c == len(cells) - 1 and r.get("suspect"):
                    # issue 9: RTP arrived but the audio is silence (or undecodable): say so
                    item.setToolTip(r.get("suspect_reason") or "suspect")
                    item.setForeground(QColor("#c0392b"))
                self.table.setItem(i, c, item)
        self.table.blockSignals(False)
        ids = [r["id"] for r in self.rows]
        if selected in ids:
            self.table.selectRow(ids.index(selected))
        elif self.rows:
            self.table.selectRow(0)
        else:
            self.table.clearSelection()
        self._on_select()

    # ----- selection and detail -----------------------------------------------------------
    def selected_id(self) -> str | None:
        sel = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not sel:
            return None
        item = self.table.item(sel[0].row(), 0)
        return item.data(Qt.UserRole) if item else None

    def select(self, rec_id: str) -> None:
        ids = [r["id"] for r in self.rows]
        self.table.selectRow(ids.index(rec_id))

    def row(self, rec_id: str | None) -> dict | None:
        return next((r for r in self.rows if r["id"] == rec_id), None)

    def _set_buttons(self, r: Rights | None) -> None:
        r = r or Rights()
        self.play_btn.setEnabled(r.view)
        self.stop_btn.setEnabled(r.view)
        self.download_btn.setEnabled(r.download)
        self.delete_btn.setEnabled(r.delete)
        self.share_btn.setEnabled(r.share)
        for btn, ok, what in ((self.download_btn, r.download, "download"),
                              (self.delete_btn, r.delete, "delete"), (self.share_btn, r.share, "share")):
            btn.setToolTip("" if ok else f"not allowed to {what}: {r.why}")

    def _on_select(self) -> None:
        rec_id = self.selected_id()
        row = self.row(rec_id)
        if row is not None and self.player.file == row["audio_path"]:
            self._set_buttons(self._rights.get(rec_id))
            return
        self.player.load(None)
        if row is None:
            self.waveform.clear()
            self.details.setText("")
            self.meta_parsed.setPlainText("")
            self.meta_raw.setPlainText("")
            self.meta_files.clear()
            self._set_buttons(None)
            self._on_position(0.0)
            return
        self._set_buttons(self._rights.get(rec_id))
        try:
            self.player.load(row["audio_path"])
        except (OSError, ValueError) as exc:
            self.say(f"cannot read {row['audio_path']}: {exc}")
        audio = self.player.audio
        names = {p.get("channel"): p.get("name") or aor_number(p.get("aor", ""))
                 for p in row.get("participants", [])}
        lanes = [f"L: {names.get('left', 'left')}", f"R: {names.get('right', 'right')}"][:audio.shape[1] or 2]
        pk = peaks(audio, Waveform.BUCKETS) if audio.size else np.zeros((2, 1))
        self.waveform.set_audio(pk, self.player.seconds, lanes, pause_markers(row), announcement_markers(row))
        pauses = row.get("paused_segments") or []
        self.details.setText(
            f"<b>{self._owner_name(row['owner'])}</b> ↔ {self._other(row) or '?'} · "
            f"{row.get('dialect', '')} metadata · talk {fmt_seconds(row.get('talk_seconds') or 0)}"
            + (f" · {len(pauses)} pause(s), {sum(p.get('duration') or 0 for p in pauses):.1f} s left out"
               if pauses else "")
            + (f" · {len(row.get('announcements') or [])} announcement(s)" if row.get("announcements") else "")
            + f"<br><span style='color:#777'>{row['audio_path']}</span>")
        self._show_metadata(row)
        self._on_position(0.0)

    def _show_metadata(self, row: dict) -> None:
        store = Path(self.sim.recorder_store)
        docs = []
        for rel in row.get("metadata_files") or []:
            try:
                docs.append((rel, (store / rel).read_text(encoding="utf-8", errors="replace")))
            except OSError as exc:
                docs.append((rel, f"<unreadable: {exc}>"))
        self._docs = docs
        self.meta_files.blockSignals(True)
        self.meta_files.clear()
        for rel, _ in docs:
            self.meta_files.addItem(Path(rel).name)
        self.meta_files.blockSignals(False)
        self.meta_raw.setPlainText(docs[0][1] if docs else "(no metadata document)")
        self.meta_parsed.setPlainText(metadata_summary(row, docs))

    # ----- player -------------------------------------------------------------------------
    def player_file(self) -> str | None:
        """The WAV being played (or loaded for playing)."""
        return self.player.file

    def player_position(self) -> float:
        """Seconds into the audio."""
        return self.player.position()

    def play(self) -> None:
        rec_id = self.selected_id()
        r = self._rights.get(rec_id) if rec_id else None
        if r is None or not r.view or self.player.file is None:
            return
        self.player.play()

    def stop(self) -> None:
        self.player.stop()

    def _seek(self, seconds: float) -> None:
        playing = self.player.playing
        self.player.stop()
        self.player.offset = seconds
        if playing:
            self.player.play()
        self._on_position(seconds)

    def _on_position(self, seconds: float) -> None:
        self.position_label.setText(f"{fmt_seconds(seconds)} / {fmt_seconds(self.player.seconds)}")
        self.waveform.set_position(seconds)

    def say(self, text: str) -> None:
        self.status.setText(text)

    # ----- delete, download, share ----------------------------------------------------------
    def _check(self, rec_id: str, what: str) -> Rights:
        r = self._rights.get(rec_id)
        if r is None or not getattr(r, what):
            raise PermissionError(f"{self.viewer.currentText()} may not {what} recording {rec_id}: "
                                  f"{r.why if r else 'not visible'}")
        return r

    def download(self, rec_id: str, target: str | Path) -> Path:
        """Copy the recording's WAV to ``target`` (a file, or a folder to put <id>.wav in)."""
        self._check(rec_id, "download")
        row = self.row(rec_id) or next(r for r in self._all if r["id"] == rec_id)
        target = Path(target)
        if target.is_dir():
            target = target / f"{rec_id}.wav"
        shutil.copyfile(row["audio_path"], target)
        self.say(f"downloaded to {target}")
        return target

    def delete(self, rec_id: str) -> bool:
        """Delete without asking (the button asks first)."""
        self._check(rec_id, "delete")
        from mppsim.recorder.store import Store
        if self.player.file and rec_id in self.player.file:
            self.player.load(None)
        store = Store(self.sim.recorder_store)
        try:
            gone = store.delete(rec_id)
        finally:
            store.close()
        self.say(f"recording {rec_id} deleted" if gone else f"recording {rec_id} was already gone")
        self.refresh()
        return gone

    def share(self) -> str | None:
        """Copy the selected recording's file URL to the clipboard."""
        rec_id = self.selected_id()
        if rec_id is None:
            return None
        self._check(rec_id, "share")
        url = QUrl.fromLocalFile(self.row(rec_id)["audio_path"]).toString()
        QGuiApplication.clipboard().setText(url)
        self.say(f"link copied: {url}")
        return url

    def _download_clicked(self) -> None:
        rec_id = self.selected_id()
        if rec_id is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Download recording", f"{rec_id}.wav", "WAV (*.wav)")
        if path:
            self.download(rec_id, path)

    def _delete_clicked(self) -> None:
        rec_id = self.selected_id()
        if rec_id is None:
            return
        row = self.row(rec_id)
        answer = QMessageBox.question(
            self, "Delete recording",
            f"Delete the recording of {self._owner_name(row['owner'])} with {self._other(row)} "
            f"({row['started_at'][:19]})? This cannot be undone.",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer == QMessageBox.Yes:
            self.delete(rec_id)

    def closeEvent(self, e):  # noqa: N802
        self.player.stop()
        super().closeEvent(e)


def state_text(row: dict) -> str:
    """The state column: the store's state, plus 'suspect' when the recorder flagged it, or
    'NO AUDIO' when what it flagged is missing RTP (issue 21: never a silent 'complete')."""
    state = row.get("state", "")
    if state == "truncated" and str(row.get("ended_by", "")).startswith("storage-"):
        state = f"truncated · {row['ended_by']}"          # issue 26: the store failed, not a crash
    if not row.get("suspect"):
        return state
    return f"{state} · {'NO AUDIO' if (row.get('suspect_reason') or '').startswith('no audio') else 'SUSPECT'}"


def metadata_summary(row: dict, docs: list[tuple[str, str]]) -> str:
    """The parsed view: dialect, participants, streams, events of every document received."""
    lines = [f"recording {row['id']} · dialect {row.get('dialect') or '?'} · "
             f"SIP Call-ID {row.get('sip_call_id') or '?'} · {len(docs)} document(s)"]
    if row.get("suspect"):
        lines.append(f"  SUSPECT: {row.get('suspect_reason') or 'flagged by the recorder'}")
    if row.get("ended_by"):
        lines.append(f"  ended by {row['ended_by']}")
    for st in row.get("stream_stats") or []:
        lines.append(f"  stream {st.get('label') or '?'} ({st.get('channel') or '-'}): "
                     f"{st.get('received', 0)} packets, {st.get('lost', 0)} lost, {st.get('late', 0)} late, "
                     f"{st.get('wrong_pt', 0)} wrong payload type, codecs {', '.join(st.get('codecs') or []) or '—'}")
    for p in row.get("participants_timeline") or []:
        to = f"{p['to']:.1f} s" if p.get("to") is not None else "end"
        lines.append(f"  on {p.get('channel') or '-'} from {p.get('from', 0):.1f} s to {to}: "
                     f"{p.get('name', '')} <{p.get('aor', '')}>")
    for p in row.get("participants") or []:
        lines.append(f"  channel {p.get('channel') or '?':5}  {p.get('name', '')} <{p.get('aor', '')}>")
    pauses = row.get("paused_segments") or []
    for p in pauses:
        lines.append(f"  paused at {p['start']:.2f} s (call time) for "
                     f"{p['duration'] if p.get('duration') is not None else '?'} s")
    for a in row.get("announcements") or []:
        lines.append(f"  announcement {a}")
    for rel, text in docs:
        lines.append("")
        lines.append(f"── {Path(rel).name}")
        try:
            md = parse_metadata(text.encode("utf-8"))
        except MetadataError as exc:
            lines.append(f"  not parsable: {exc}")
            continue
        lines.append(f"  dialect {md.dialect}, datamode {md.datamode}, state {md.state}")
        lines.append(f"  session {md.session_id}  group {md.group_id}")
        if md.start_time or md.stop_time:
            lines.append(f"  start {md.start_time or '—'}  stop {md.stop_time or '—'}")
        for p in md.participants:
            lines.append(f"  participant {p.name or '?'} <{p.aor}> sends {', '.join(p.send) or '—'}")
        for s in md.streams:
            lines.append(f"  stream {s.id} label {s.label or '—'} ({s.mode})")
        for ev in md.events:
            lines.append(f"  event {json.dumps(ev, sort_keys=True)}")
        if md.broadworks:
            lines.append("  broadworks " + ", ".join(f"{k}={v}" for k, v in md.broadworks.items()
                                                    if not isinstance(v, dict)))
    return "\n".join(lines)
