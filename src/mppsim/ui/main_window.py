"""The main window: every user's devices side by side (MPP desk phone, Webex App), the
simulated PSTN parties, the recorder's status, real audio for one device, and a pane of events."""
from __future__ import annotations

import time

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QPoint, QRect, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow,
                               QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from mppsim.app.scenario_recorder import ScenarioRecorder
from mppsim.app.simulator import Simulator, SimulatorError

from . import a11y
from .action_tap import ActionTap

from .bridge import SimBridge
from .control_hub import ControlHub
from .portal import RecorderPortal
from .device_face import DeviceFace, safe_name
from .flow_layout import FlowLayout
from .mpp_phone import MppPhone
from .real_audio import RealAudio, audio_devices
from .scenario_player import ScenarioPlayer
from .webex_app import WebexApp

FACE_SCALE = 0.8   # the MPP art is 580 x 492 at 1.0; the overview fits the scale to the window
ZOOM_STEPS = (0.4, 2.0)         # smallest and largest MPP scale
FIT_SCALES = [round(1.0 - 0.05 * i, 2) for i in range(13)]   # 1.0 ... 0.4, the overview tries these
ENLARGED_MAX = 1.8
HIGHLIGHT = "border: 3px solid #c62828; border-radius: 6px; background: #fff5f5;"


def describe_event(ev: dict) -> str | None:
    """One readable line per event worth showing a person; None for the rest."""
    kind, agent = ev.get("event"), ev.get("agent", "")
    if kind == "call":
        remote = ev["remote"].get("name") or ev["remote"].get("user")
        text = f"{agent}/{ev['line']}: call {ev['call']} {ev['state']} ({ev['direction']}, {remote})"
        if ev["state"] == "ended":
            text += f": {ev.get('reason')}"
        return text
    if kind == "dtmf":
        return f"{agent}: DTMF {ev['digit']} received"
    if kind == "agent_up":
        if ev.get("restarted_by") == "supervisor":
            return f"{agent}: agent restarted after it died (pid {ev.get('pid')}, restart {ev.get('restarts')})"
        return f"{agent}: agent up (pid {ev.get('pid')})"
    if kind == "agent_down":
        return (f"{agent}: AGENT DOWN (exit {ev.get('returncode')})"
                + (": restarting it" if ev.get("restarting") else ""))
    if kind == "transferred":
        return f"{agent}: transferred to {ev.get('target')}"
    if kind == "recording":
        keys = sorted({k for d in ev["devices"].values() for k in d["softkeys"]})
        return (f"{agent}/{ev['line']}: recording {ev['state'] or 'none'}, icon {ev['indicator']}"
                + (f", softkeys {' '.join(keys)}" if keys else ""))
    if kind == "announcement":
        return f"{agent}: plays {ev['kind']} {ev['audio']} to {'+'.join(ev['to'])} ({ev['language']})"
    if kind == "recorder":
        failed = (ev.get("detail") or {}).get("failed")        # R-ORG-3: why the recording failed
        return f"{agent}: recorder {ev['op']} #{ev['recording']}" + (f" (failed: {failed})" if failed else "")
    if kind == "recording_refused":
        return f"{agent}: refused {ev['intent']} ({ev['source']}): {ev['why']}"
    if kind == "siprec":
        extra = f": {ev['reason']}" if ev.get("reason") else ""
        return f"{agent}: SIPREC session #{ev['recording']} {ev['state']} ({ev.get('dialect', '')}){extra}"
    if kind == "recorder_down":
        return f"RECORDER {ev['worker']} DOWN (exit {ev.get('returncode')}): recordings to it fail"
    if kind == "voicemail_message":
        return f"voicemail: {ev['seconds']:.1f} s message for {ev['mailbox']} from {ev['caller']}"
    if kind == "redirected":
        return f"{agent}: call {ev['call']} sent to voicemail"
    if kind == "log" and ev.get("level") in ("error", "warning"):
        return f"{agent}: {ev.get('level')}: {ev.get('text', '').strip().splitlines()[-1]}"
    return None


def enlarge_on_double_click(card: QFrame) -> None:
    """A double-click on a device card (not on one of its keys) enlarges it in the main window."""
    window = card.window()
    if hasattr(window, "toggle_enlarged"):
        window.toggle_enlarged(card)


class UserDevices(QFrame):
    """One user: a header (name, number, agent state, restart) and their devices side by side.
    `faces_sim` is what the faces act on (the main window's ActionTap); `sim` by default."""

    def __init__(self, sim: Simulator, user, parent=None, faces_sim=None):
        super().__init__(parent)
        self.sim = sim
        self.user = user
        self.setObjectName(f"user_{safe_name(user.id)}")
        self.setFrameShape(QFrame.StyledPanel)
        faces_sim = faces_sim or sim
        mode = sim.call_recording(user.id).get("record", "Never") if user.licence != "None" else "no licence"
        title = QLabel(f"<b>{user.name}</b> · {user.extension} · {user.licence} · recording: {mode}")
        title.setObjectName(f"user_{safe_name(user.id)}_title")
        title.setToolTip(title.text())
        # the faces set the card's width, not the title (elided by the layout when longer)
        title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.status = a11y.Readout()
        self.status.setObjectName(f"status_{safe_name(user.id)}")
        self.status.setAccessibleName(f"{user.id} agent status")
        self.restart = QPushButton("Restart agent")
        self.restart.setObjectName(f"restart_{safe_name(user.id)}")
        self.restart.setAccessibleName(f"{user.id} restart agent")
        self.restart.clicked.connect(self.on_restart)
        header = QHBoxLayout()
        header.addWidget(title, 1)
        header.addWidget(self.status)
        header.addWidget(self.restart)
        row = QHBoxLayout()
        self.faces: list[QWidget] = []
        self.phone: MppPhone | None = None
        if user.has_mpp:
            phone = MppPhone(faces_sim, user.id)
            phone.setScale(FACE_SCALE)
            self.phone = phone
            self.faces.append(phone)
            row.addWidget(phone, 0, Qt.AlignTop)
        if user.has_webex_app:
            app = WebexApp(faces_sim, user.id)
            # one size for every view (idle, incoming, call): nothing moves when a call starts
            app.setFixedSize(app.sizeHint() + QSize(0, 16))   # + the End button's label
            self.faces.append(app)
            row.addWidget(app, 0, Qt.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        status = self.sim.agent_status.get(self.user.id, "up")
        up = status == "up"
        restarts = self.sim.agent_restarts.get(self.user.id, 0)
        if up:
            self.status.setText("● agent up" + (f" (restarted after it died, {restarts}×)" if restarts else ""))
        elif status == "restarting":
            self.status.setText("⚠ agent down: restarting it…")
        else:
            self.status.setText("⚠ agent down: calls to this user fail")
        self.status.setStyleSheet("color: #2e7d32;" if up else "color: #c62828; font-weight: bold;")
        self.restart.setVisible(not up)
        for face in self.faces:
            face.refresh()

    def on_restart(self) -> None:
        try:
            self.sim.restart_agent(self.user.id)
        except SimulatorError as exc:
            self.status.setText(str(exc))
        self.refresh()

    def set_scale(self, scale: float) -> None:
        if self.phone is not None:
            self.phone.setScale(scale)
        self.adjustSize()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        enlarge_on_double_click(self)


class PstnCard(QFrame):
    """The simulated PSTN parties, compact (no keypad: type the number), one above the other."""

    def __init__(self, faces: list[DeviceFace], parent=None):
        super().__init__(parent)
        self.setObjectName("pstn_card")
        self.setFrameShape(QFrame.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.setSpacing(4)
        lay.addWidget(QLabel("<b>Simulated PSTN</b>"))
        row = QHBoxLayout()
        for face in faces:
            face.set_compact(True)
            row.addWidget(face, 0, Qt.AlignTop)
        lay.addLayout(row)
        self.faces = faces

    def set_scale(self, _scale: float) -> None:
        pass

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        enlarge_on_double_click(self)


class CornerSlot(QWidget):
    """The menu bar's corner, kept empty and as large as `shown`, a child of the main window laid
    over it. AT-SPI lists a menu bar's menus only, so the controls there (computer audio, sound
    device, recorder status) were out of every tool's reach; over the slot they look the same."""

    def __init__(self, shown: QWidget, parent=None):
        super().__init__(parent)
        self.shown = shown
        shown.installEventFilter(self)

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.shown.sizeHint()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.shown.minimumSizeHint()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.shown and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()        # its text grew or shrank: the menu bar makes room again
            self.sync()
        return False

    def sync(self) -> None:
        host = self.shown.parentWidget()
        if host is not None and self.isVisible():
            self.shown.setGeometry(QRect(self.mapTo(host, QPoint(0, 0)), self.size()))
            self.shown.raise_()

    def moveEvent(self, event) -> None:  # noqa: N802
        super().moveEvent(event)
        self.sync()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.sync()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.sync()


class _Lines(QObject):
    changed = Signal(list)


class _Text(QObject):
    said = Signal(str)


def default_settings() -> QSettings:
    """Where the window keeps its size and layout (tests pass their own, in a temporary folder)."""
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "mppsim", "mppsim")


class MainWindow(QMainWindow):
    def __init__(self, sim: Simulator, parent=None, settings: QSettings | None = None,
                 api_url: str | None = None):
        super().__init__(parent)
        self.sim = sim
        self.settings = settings if settings is not None else default_settings()
        self.setObjectName("main_window")
        self.setWindowTitle(f"mppsim — {sim.org.name}")
        self.setAcceptDrops(True)          # drop a scenario file to load it
        self.bridge = SimBridge(sim, self)
        self.bridge.event.connect(self.on_event)
        # the sound card going away is noticed on PortAudio's thread: a signal brings it here
        self._audio_lost = _Text(self)
        self._audio_lost.said.connect(self.on_audio_lost)
        self.audio = RealAudio(sim, on_lost=self._audio_lost.said.emit)
        # the sound card stream and its receiving thread end with the window, closed or not
        audio = self.audio
        self.destroyed.connect(lambda *_: audio.stop())
        # the faces act through the tap: the click recorder hears every intent there
        self.tap = ActionTap(sim)
        self.recorder: ScenarioRecorder | None = None
        self._unlisten = None
        self._unsubscribe_store = None

        # ----- every device: user cards and the PSTN card, flowing over the width ----------------
        self.users: dict[str, UserDevices] = {}
        self.cards: list[QFrame] = []
        for user in sim.org.users:
            group = UserDevices(sim, user, faces_sim=self.tap)
            for face in group.faces:
                face.message.connect(self.log)
            self.users[user.id] = group
            self.cards.append(group)
        self.faces: dict[str, DeviceFace] = {}
        for party in sim.parties:
            if party.kind == "pstn":
                face = DeviceFace(self.tap, party)
                face.message.connect(self.log)
                self.faces[party.id] = face
        if self.faces:
            self.cards.append(PstnCard(list(self.faces.values())))
        self.devices = QWidget()
        self.devices.setObjectName("devices_overview")
        self.flow = FlowLayout(self.devices, spacing=8)
        self.flow.setContentsMargins(6, 6, 6, 6)
        # cards of one height share a row: users with the Webex App (the tallest face) first,
        # then the desk-phone-only users, then the PSTN (org order within each)
        def height_class(card: QFrame) -> int:
            if isinstance(card, UserDevices):
                return 0 if card.user.has_webex_app else 1
            return 2
        for card in sorted(self.cards, key=height_class):
            self.flow.addWidget(card)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("devices_scroll")
        self.scroll.setWidget(self.devices)
        self.scroll.setWidgetResizable(True)
        self.scroll.viewport().installEventFilter(self)
        self.zoom: float | None = None          # None: the overview fits the window
        self.scale = FACE_SCALE
        self.enlarged: QFrame | None = None
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self.apply_zoom)

        # real audio for one device (sounddevice), and the recorder's status
        self.audio_choice = QComboBox()
        self.audio_choice.setObjectName("real_audio_device")
        self.audio_choice.setAccessibleName("Computer audio: the device that uses this computer's microphone and speaker")
        self.audio_choice.addItem("Computer audio: off", None)
        for user in sim.org.users:
            self.audio_choice.addItem(f"Computer audio: {user.name} ({user.extension})", user.id)
        self.audio_choice.currentIndexChanged.connect(self.on_audio_choice)
        # which sound card (PortAudio device with a microphone and a speaker)
        self.sound_device = QComboBox()
        self.sound_device.setObjectName("sound_device")
        self.sound_device.setAccessibleName("Sound card for computer audio")
        names, why = audio_devices()
        self.sound_device.addItem("default sound card", None)
        for name in names:
            self.sound_device.addItem(name, name)
        if why is not None:
            self.sound_device.setItemText(0, f"({why})")
            self.sound_device.setEnabled(False)
        self.sound_device.currentIndexChanged.connect(self.on_audio_choice)
        self.recorder_status = a11y.Readout()
        self.recorder_status.setObjectName("recorder_status")
        self.recorder_status.setAccessibleName("Recorder status")
        self.recording_label = a11y.Readout("")
        self.recording_label.setObjectName("scenario_recording")
        self.recording_label.setAccessibleName("Scenario recording")
        self.recording_label.setStyleSheet("color: #c62828; font-weight: bold;")
        # in the menu bar's row, to leave the height to the devices
        top_widget = self.top_bar = QWidget(self)
        top = QHBoxLayout(top_widget)
        top.setContentsMargins(12, 0, 6, 0)
        top.addWidget(self.recording_label)
        top.addWidget(self.audio_choice)
        top.addWidget(self.sound_device)
        top.addWidget(self.recorder_status)

        self.events = QPlainTextEdit()
        self.events.setObjectName("event_pane")
        self.events.setAccessibleName("Call and recording events")
        events_title = QLabel("<b>Events</b>")
        events_title.setBuddy(self.events)
        self.events.setReadOnly(True)
        self.events.setMaximumBlockCount(2000)
        pane = QWidget()
        pane_layout = QVBoxLayout(pane)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(events_title)
        pane_layout.addWidget(self.events)

        # the scenario player, beside the devices
        self.player = ScenarioPlayer(sim)
        self.player.say.connect(self.show_caption)
        self.player.failed_at.connect(self.highlight)
        self.player.started.connect(lambda: self.highlight(""))

        # Devices | Control Hub | Recorder portal on the left; player and events on the right
        self.control_hub = ControlHub(sim)
        self.portal = RecorderPortal(sim)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("main_tabs")
        self.tabs.addTab(self.scroll, "Devices")
        self.tabs.addTab(self.control_hub, "Control Hub")
        self.tabs.addTab(self.portal, "Recorder portal")
        self.tabs.currentChanged.connect(lambda i: self.tabs.widget(i) is self.portal and self.portal.refresh())
        self.side = QSplitter(Qt.Vertical)
        self.side.setObjectName("side_split")
        self.side.addWidget(self.player)
        self.side.addWidget(pane)
        self.side.setSizes([560, 300])
        self.split = QSplitter(Qt.Horizontal)
        self.split.setObjectName("main_split")
        self.split.addWidget(self.tabs)
        self.split.addWidget(self.side)
        self.split.setStretchFactor(0, 1)
        self.split.setSizes([1540, 360])
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 4, 6, 2)
        outer.addWidget(self.split, 1)
        self.setCentralWidget(central)

        # the caption of a scenario's `say` step, over the window
        self.caption = QLabel(central)
        self.caption.setObjectName("caption_banner")
        self.caption.setAccessibleName("Caption")
        self.caption.setAlignment(Qt.AlignCenter)
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("background: rgba(20, 32, 43, 225); color: white; font-size: 22px;"
                                   "font-weight: 600; padding: 14px 22px; border-radius: 10px;")
        self.caption.setVisible(False)

        self._build_menus()
        self.corner_slot = CornerSlot(top_widget)
        self.corner_slot.setObjectName("menu_corner")
        self.menuBar().setCornerWidget(self.corner_slot, Qt.TopRightCorner)
        top_widget.setObjectName("menu_corner_controls")
        top_widget.raise_()
        door = f"front door sip:<extension>@127.0.0.1:{sim.front_door.port}" if sim.front_door else "front door off"
        api = f"API {api_url}/v1 and /mppsim/v1" if api_url else "API off"
        self.statusBar().showMessage(f"{len(sim.orch.agents)} agents · {door} · {api} · logs: {sim.run_dir}")
        self.refresh_recorder()
        self.restore_layout()
        a11y.identify_all(self)      # every objectName is the AccessibleId tools find it by

    # ----- menus ------------------------------------------------------------------------------
    def _action(self, menu, name: str, text: str, handler, shortcut=None, checkable=False) -> QAction:
        a = QAction(text, self)
        a.setObjectName(name)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.setCheckable(checkable)
        (a.toggled if checkable else a.triggered).connect(handler)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        scenario = self.menuBar().addMenu("&Scenario")
        self._action(scenario, "action_open_scenario", "Open scenario…", lambda: self.player.choose_file(),
                     QKeySequence.Open)
        self._action(scenario, "action_run_scenario", "Run", lambda: self.player.run(), "F5")
        self._action(scenario, "action_stop_scenario", "Stop", lambda: self.player.stop(), "Shift+F5")
        scenario.addSeparator()
        self.record_action = self._action(scenario, "action_record_scenario", "Record scenario",
                                          self._record_toggled, "Ctrl+R", checkable=True)
        view = self.menuBar().addMenu("&View")
        self._action(view, "action_overview", "Overview: every device", lambda: self.set_zoom(None), "Ctrl+0")
        self._action(view, "action_zoom_in", "Zoom in", lambda: self.set_zoom(self.scale * 1.15), QKeySequence.ZoomIn)
        self._action(view, "action_zoom_out", "Zoom out", lambda: self.set_zoom(self.scale / 1.15), QKeySequence.ZoomOut)

    # ----- overview, zoom, one device enlarged --------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.scroll.viewport() and event.type() == QEvent.Resize and self.zoom is None:
            self._fit_timer.start()
        return super().eventFilter(obj, event)

    def set_zoom(self, zoom: float | None) -> None:
        """None: the overview (the MPPs scaled so every device fits the window); else a fixed scale."""
        self.zoom = None if zoom is None else max(ZOOM_STEPS[0], min(ZOOM_STEPS[1], zoom))
        if self.enlarged is not None:
            self.toggle_enlarged(self.enlarged)
        self.apply_zoom()

    def apply_zoom(self) -> None:
        if self.enlarged is not None:
            return
        if self.zoom is not None:
            self._scale_all(self.zoom)
            return
        view = self.scroll.viewport().size()
        for scale in FIT_SCALES:
            self._scale_all(scale)
            if self.flow.heightForWidth(view.width()) <= view.height():
                break

    def _scale_all(self, scale: float) -> None:
        self.scale = scale
        for card in self.cards:
            card.set_scale(scale)
        self.flow.invalidate()
        self.devices.updateGeometry()
        self.flow.setGeometry(self.devices.rect())   # now, not at the next layout request

    def toggle_enlarged(self, card: QFrame) -> None:
        """Double-click on a device: it alone, as large as the window allows; again: back."""
        if self.enlarged is not None:
            for c in self.cards:
                c.setVisible(True)
            if isinstance(self.enlarged, PstnCard):
                for face in self.enlarged.faces:
                    face.set_compact(True)
            self.enlarged = None
            self.apply_zoom()
            return
        self.enlarged = card
        for c in self.cards:
            c.setVisible(c is card)
        if isinstance(card, UserDevices) and card.phone is not None:
            view = self.scroll.viewport().size()
            others = sum(f.width() + 8 for f in card.faces if f is not card.phone)
            fit = min((view.width() - others - 40) / 580, (view.height() - 60) / 492, ENLARGED_MAX)
            card.set_scale(max(self.scale, fit))
        if isinstance(card, PstnCard):
            for face in card.faces:
                face.set_compact(False)        # the full face, keypad included
                face.setFixedSize(face.sizeHint())
        card.adjustSize()
        self.flow.invalidate()

    # ----- say: the caption over the window ---------------------------------------------------
    def show_caption(self, text: str) -> None:
        self.caption.setText(text)
        self.caption.setVisible(bool(text))
        if text:
            self._place_caption()
            self.caption.raise_()

    def _place_caption(self) -> None:
        area = self.centralWidget().rect()
        width = int(area.width() * 0.7)
        height = self.caption.heightForWidth(width) if self.caption.hasHeightForWidth() else 80
        height = max(60, height)
        self.caption.setGeometry((area.width() - width) // 2, area.height() - height - 40, width, height)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.caption.isVisible():
            self._place_caption()

    # ----- a failed step: its device highlighted -------------------------------------------------
    def card_of(self, who: str) -> QFrame | None:
        try:
            party = self.sim.party(who)
        except SimulatorError:
            return None
        if party.kind == "pstn":
            return self.faces.get(party.id)
        return self.users.get(party.agent)

    def highlight(self, who: str) -> None:
        """Mark `who`'s device (the failed step's); "" clears every mark."""
        for widget in [*self.users.values(), *self.faces.values()]:
            widget.setStyleSheet("")
            widget.setProperty("highlighted", False)
        widget = self.card_of(who) if who else None
        if widget is not None:
            widget.setStyleSheet(f"#{widget.objectName()} {{ {HIGHLIGHT} }}")
            widget.setProperty("highlighted", True)
            self.tabs.setCurrentWidget(self.scroll)
            self.scroll.ensureWidgetVisible(widget)

    # ----- drag and drop a scenario -------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.toLocalFile().endswith((".yaml", ".yml")) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for u in event.mimeData().urls():
            if u.toLocalFile().endswith((".yaml", ".yml")):
                self.player.load(u.toLocalFile())
                event.acceptProposedAction()
                return

    # ----- the click recorder -----------------------------------------------------------------
    def _record_toggled(self, on: bool) -> None:
        if on and self.recorder is None:
            self.start_recording()
        elif not on and self.recorder is not None:
            path, _ = QFileDialog.getSaveFileName(self, "Save the recorded scenario", "recorded.yaml",
                                                  "Scenarios (*.yaml)")
            self.stop_recording(path or None)

    def start_recording(self) -> ScenarioRecorder:
        """Record scenario: every intent on the faces and every Control Hub change from now on."""
        rec = self.recorder = ScenarioRecorder(self.sim)

        def on_action(phase: str, intent: str, args: dict) -> None:
            if phase == "before":
                rec.before_action(intent, args)
            else:
                rec.action(intent, args)
                self._show_recording()
        self._unlisten = self.tap.listen(on_action)
        # the store calls back on the thread that changed it (the GUI's for Control Hub, another
        # for an API client): a signal brings it to the GUI thread
        hop = _Lines(self)
        hop.changed.connect(lambda lines: (rec.settings_changed(lines), self._show_recording()))
        unsubscribe = self._unsubscribe_store = self.sim.settings.subscribe(hop.changed.emit)
        hop.destroyed.connect(lambda *_: unsubscribe())     # the window went without Stop
        self.record_action.blockSignals(True)
        self.record_action.setChecked(True)
        self.record_action.blockSignals(False)
        self._show_recording()
        self.log("recording a scenario: the clicks on the faces and the Control Hub changes")
        return rec

    def stop_recording(self, path: str | Path | None) -> Path | None:
        """Stop recording; save the scenario to `path` (None: discard). Returns the file."""
        rec, self.recorder = self.recorder, None
        for undo in (self._unlisten, self._unsubscribe_store):
            if undo is not None:
                undo()
        self._unlisten = self._unsubscribe_store = None
        self.record_action.blockSignals(True)
        self.record_action.setChecked(False)
        self.record_action.blockSignals(False)
        self.recording_label.setText("")
        if rec is None or not path:
            return None
        rec.stop()
        saved = rec.save(path)
        self.log(f"scenario saved: {saved} ({len(rec.steps)} steps); replay: mppsim run {saved}")
        return saved

    def _show_recording(self) -> None:
        if self.recorder is not None:
            self.recording_label.setText(f"● Recording scenario · {len(self.recorder.steps)} steps")

    # ----- size and layout remembered -----------------------------------------------------------
    def restore_layout(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        size = s.value("window/size")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)      # position, screen, maximised
            if isinstance(size, QSize) and size.isValid():
                self.resize(size)               # exactly as left (restoreGeometry may clamp it)
        else:
            screen = self.screen().availableGeometry() if self.screen() else None
            self.resize(min(1920, screen.width()) if screen else 1600, min(1080, screen.height()) if screen else 1000)
        for key, splitter in (("layout/main_split", self.split), ("layout/side_split", self.side)):
            state = s.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)
        zoom = s.value("layout/zoom", "fit")
        try:
            self.zoom = None if zoom in (None, "fit") else float(zoom)
        except (TypeError, ValueError):
            self.zoom = None
        self.apply_zoom()

    def save_layout(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/size", self.size())
        s.setValue("layout/main_split", self.split.saveState())
        s.setValue("layout/side_split", self.side.saveState())
        s.setValue("layout/zoom", "fit" if self.zoom is None else self.zoom)
        s.sync()

    # ----- status and events ----------------------------------------------------------------
    def refresh_recorder(self) -> None:
        recorders = self.sim.recorders
        if recorders is None:
            self.recorder_status.setText("no embedded recorder")
            return
        states = [f"{w.name} {w.status}" for w in recorders.workers]
        bad = any(w.status != "up" for w in recorders.workers)
        self.recorder_status.setText(f"Recorder: {', '.join(states)} · store {self.sim.recorder_store}")
        self.recorder_status.setStyleSheet("color: #c62828; font-weight: bold;" if bad else "color: #2e7d32;")

    def on_audio_choice(self, _index: int) -> None:
        who = self.audio_choice.currentData()
        if who is None:
            self.audio.stop()
            self.log("computer audio off: every device is simulated")
            return
        text = self.audio.start(who, self.sound_device.currentData())
        if text:
            self.log(text)

    def on_audio_lost(self, text: str) -> None:
        """The sound card went away mid-call: the call goes on simulated; the choice shows off."""
        self.log(text)
        self.statusBar().showMessage(text, 10000)
        self.audio_choice.blockSignals(True)
        self.audio_choice.setCurrentIndex(0)
        self.audio_choice.blockSignals(False)

    def on_event(self, ev: dict) -> None:
        line = describe_event(ev)
        if line:
            self.log(line)
        agent = ev.get("agent")
        if agent in self.users:
            self.users[agent].refresh()
        for face in self.faces.values():
            if face.party.agent == agent:
                face.refresh()
        if ev.get("event") in ("recorder_down", "agent_up", "agent_down"):
            self.refresh_recorder()

    def log(self, text: str) -> None:
        self.events.appendPlainText(time.strftime("%H:%M:%S ") + text)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_layout()
        if self.recorder is not None:
            self.stop_recording(None)
        self.player.shutdown()
        self.audio.stop()
        self.portal.player.stop()
        super().closeEvent(event)
