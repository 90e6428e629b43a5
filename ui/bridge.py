"""Carries Simulator events (from its reader threads) into the Qt GUI thread as a signal."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.simulator import Simulator


class SimBridge(QObject):
    """`event` is emitted in the GUI thread: a signal emitted from another thread reaches
    receivers living in the GUI thread through Qt's queued connection."""

    event = Signal(dict)

    def __init__(self, sim: Simulator, parent: QObject | None = None):
        super().__init__(parent)
        self.sim = sim
        sim.subscribe(self.event.emit)
