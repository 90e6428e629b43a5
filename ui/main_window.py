"""The first main window: every line of the org side by side, and a pane of events."""
from __future__ import annotations

import time

from PySide6.QtWidgets import (QGridLayout, QLabel, QMainWindow, QPlainTextEdit, QScrollArea,
                               QSplitter, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

from app.simulator import Simulator

from .bridge import SimBridge
from .device_face import DeviceFace

COLUMNS = 4


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


class MainWindow(QMainWindow):
    def __init__(self, sim: Simulator, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.setObjectName("main_window")
        self.setWindowTitle(f"mppsim — {sim.org.name}")
        self.bridge = SimBridge(sim, self)
        self.bridge.event.connect(self.on_event)

        grid = QGridLayout()
        self.faces: dict[str, DeviceFace] = {}
        for i, party in enumerate(sim.parties):
            face = DeviceFace(sim, party)
            face.message.connect(self.log)
            self.faces[party.id] = face
            grid.addWidget(face, i // COLUMNS, i % COLUMNS)
        devices = QWidget()
        devices.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidget(devices)
        scroll.setWidgetResizable(True)

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

        split = QSplitter(Qt.Vertical)
        split.addWidget(scroll)
        split.addWidget(pane)
        split.setSizes([790, 170])
        self.setCentralWidget(split)
        door = f"front door sip:<extension>@127.0.0.1:{sim.front_door.port}" if sim.front_door else "front door off"
        recorder = (f"recorder: {len(sim.recorders.workers)} worker(s), store {sim.recorder_store}"
                    if sim.recorders else "no embedded recorder")
        self.statusBar().showMessage(f"{len(sim.orch.agents)} agents · {door} · {recorder} · logs: {sim.run_dir}")
        self.resize(1100, 1020)

    def on_event(self, ev: dict) -> None:
        line = describe_event(ev)
        if line:
            self.log(line)
        for face in self.faces.values():
            if face.party.agent == ev.get("agent"):
                face.refresh()

    def log(self, text: str) -> None:
        self.events.appendPlainText(time.strftime("%H:%M:%S ") + text)
