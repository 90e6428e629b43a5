"""The main window: every user's devices side by side (MPP desk phone, Webex App), the
simulated PSTN parties, the recorder's status, real audio for one device, and a pane of events."""
from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QMainWindow,
                               QPlainTextEdit, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from app.simulator import Simulator, SimulatorError

from .bridge import SimBridge
from .control_hub import ControlHub
from .portal import RecorderPortal
from .device_face import DeviceFace, safe_name
from .mpp_phone import MppPhone
from .real_audio import RealAudio, audio_devices
from .webex_app import WebexApp

FACE_SCALE = 0.8   # the MPP art is 580 x 492 at 1.0


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
        return f"{agent}: agent up (pid {ev.get('pid')})"
    if kind == "agent_down":
        return f"{agent}: AGENT DOWN (exit {ev.get('returncode')})"
    if kind == "transferred":
        return f"{agent}: transferred to {ev.get('target')}"
    if kind == "recording":
        keys = sorted({k for d in ev["devices"].values() for k in d["softkeys"]})
        return (f"{agent}/{ev['line']}: recording {ev['state'] or 'none'}, icon {ev['indicator']}"
                + (f", softkeys {' '.join(keys)}" if keys else ""))
    if kind == "announcement":
        return f"{agent}: plays {ev['kind']} {ev['audio']} to {'+'.join(ev['to'])} ({ev['language']})"
    if kind == "recorder":
        return f"{agent}: recorder {ev['op']} #{ev['recording']}"
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


class UserDevices(QFrame):
    """One user: a header (name, number, agent state, restart) and their devices side by side."""

    def __init__(self, sim: Simulator, user, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.user = user
        self.setObjectName(f"user_{safe_name(user.id)}")
        self.setFrameShape(QFrame.StyledPanel)
        mode = sim.call_recording(user.id).get("record", "Never") if user.licence != "None" else "no licence"
        title = QLabel(f"<b>{user.name}</b> · {user.extension} · {user.licence} · recording: {mode}")
        title.setObjectName(f"user_{safe_name(user.id)}_title")
        self.status = QLabel()
        self.status.setObjectName(f"status_{safe_name(user.id)}")
        self.restart = QPushButton("Restart agent")
        self.restart.setObjectName(f"restart_{safe_name(user.id)}")
        self.restart.setAccessibleName(f"Restart {user.name}'s agent")
        self.restart.clicked.connect(self.on_restart)
        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.status)
        header.addWidget(self.restart)
        row = QHBoxLayout()
        self.faces: list[QWidget] = []
        if user.has_mpp:
            phone = MppPhone(sim, user.id)
            phone.setScale(FACE_SCALE)
            self.faces.append(phone)
            row.addWidget(phone, 0, Qt.AlignTop)
        if user.has_webex_app:
            app = WebexApp(sim, user.id)
            self.faces.append(app)
            row.addWidget(app, 0, Qt.AlignTop)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        up = self.sim.agent_status.get(self.user.id, "up") == "up"
        self.status.setText("● agent up" if up else "⚠ agent down: calls to this user fail")
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


class MainWindow(QMainWindow):
    def __init__(self, sim: Simulator, parent=None, api_url: str | None = None):
        super().__init__(parent)
        self.sim = sim
        self.setObjectName("main_window")
        self.setWindowTitle(f"mppsim — {sim.org.name}")
        self.bridge = SimBridge(sim, self)
        self.bridge.event.connect(self.on_event)
        self.audio = RealAudio(sim)

        users = QVBoxLayout()
        self.users: dict[str, UserDevices] = {}
        for user in sim.org.users:
            group = UserDevices(sim, user)
            for face in group.faces:
                face.message.connect(self.log)
            self.users[user.id] = group
            users.addWidget(group)
        users.addStretch(1)

        pstn = QVBoxLayout()
        pstn.addWidget(QLabel("<b>Simulated PSTN</b>"))
        self.faces: dict[str, DeviceFace] = {}
        for party in sim.parties:
            if party.kind == "pstn":
                face = DeviceFace(sim, party)
                face.message.connect(self.log)
                self.faces[party.id] = face
                pstn.addWidget(face)
        pstn.addStretch(1)

        devices = QWidget()
        grid = QGridLayout(devices)
        grid.addLayout(users, 0, 0)
        grid.addLayout(pstn, 0, 1, Qt.AlignTop)
        scroll = QScrollArea()
        scroll.setWidget(devices)
        scroll.setWidgetResizable(True)

        # real audio for one device (sounddevice), and the recorder's status
        self.audio_choice = QComboBox()
        self.audio_choice.setObjectName("real_audio_device")
        self.audio_choice.setAccessibleName("Device that uses this computer's microphone and speaker")
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
        self.recorder_status = QLabel()
        self.recorder_status.setObjectName("recorder_status")
        top = QHBoxLayout()
        top.addWidget(self.audio_choice)
        top.addWidget(self.sound_device)
        top.addStretch(1)
        top.addWidget(self.recorder_status)

        self.events = QPlainTextEdit()
        self.events.setObjectName("event_pane")
        self.events.setAccessibleName("Call and recording events")
        self.events.setReadOnly(True)
        self.events.setMaximumBlockCount(2000)
        pane = QWidget()
        pane_layout = QVBoxLayout(pane)
        pane_layout.setContentsMargins(0, 0, 0, 0)
        pane_layout.addWidget(QLabel("<b>Events</b>"))
        pane_layout.addWidget(self.events)

        # Devices | Control Hub | Recorder portal, the events pane below all three
        self.control_hub = ControlHub(sim)
        self.portal = RecorderPortal(sim)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("main_tabs")
        self.tabs.addTab(scroll, "Devices")
        self.tabs.addTab(self.control_hub, "Control Hub")
        self.tabs.addTab(self.portal, "Recorder portal")
        self.tabs.currentChanged.connect(lambda i: self.tabs.widget(i) is self.portal and self.portal.refresh())
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.tabs)
        split.addWidget(pane)
        split.setSizes([760, 180])
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.addLayout(top)
        outer.addWidget(split)
        self.setCentralWidget(central)
        door = f"front door sip:<extension>@127.0.0.1:{sim.front_door.port}" if sim.front_door else "front door off"
        api = f"API {api_url}/v1 and /mppsim/v1" if api_url else "API off"
        self.statusBar().showMessage(f"{len(sim.orch.agents)} agents · {door} · {api} · logs: {sim.run_dir}")
        self.refresh_recorder()
        self.resize(1400, 1000)

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
        self.audio.stop()
        super().closeEvent(event)
