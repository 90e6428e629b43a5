"""Carries Simulator events (from its reader threads) into the Qt GUI thread.

The reader threads only put events on a queue; a timer in the GUI thread drains it and emits
`event`. No Qt call is ever made from a reader thread, so a window closed (and its QObjects
deleted) while agents still talk cannot be touched from another thread.
"""
from __future__ import annotations

import queue

from PySide6.QtCore import QObject, QTimer, Signal

from mppsim.app.simulator import Simulator

DRAIN_EVERY_MS = 20


class SimBridge(QObject):
    event = Signal(dict)

    def __init__(self, sim: Simulator, parent: QObject | None = None):
        super().__init__(parent)
        self.sim = sim
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._put = self._queue.put
        sim.subscribe(self._put)
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_EVERY_MS)
        self._timer.timeout.connect(self._drain)
        self._timer.start()
        self.destroyed.connect(lambda *_: sim.unsubscribe(self._put))

    def _drain(self) -> None:
        while True:
            try:
                ev = self._queue.get_nowait()
            except queue.Empty:
                return
            self.event.emit(ev)
