"""How pjsua2 callbacks reach a process' main thread (the agent's).

A callback on a pjsua thread only `post`s (kind, call, data) and wakes the main loop through a
pipe the loop selects on; the main loop `drain`s the items into `on_<kind>` methods. So all
state changes and pjsua calls happen on one thread, with no locks (docs/decisions.md).
"""
from __future__ import annotations

import os
import queue
import traceback
from typing import Callable


class CallbackQueue:
    def __init__(self):
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)   # drain() reads it whether or not it woke us

    def post(self, item) -> None:
        """Any thread: hand an item to the main loop."""
        self._items.put(item)
        try:
            os.write(self.wake_w, b"x")
        except BlockingIOError:
            pass   # the pipe is full: the loop is awake anyway

    def fileno(self) -> int:
        return self.wake_r

    def drain(self, target, on_error: Callable[[str], None]) -> int:
        """Main thread: empty the wake-up pipe and call target.on_<kind>(call, data) per item;
        returns how many items there were."""
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass
        done = 0
        while True:
            try:
                kind, call, data = self._items.get_nowait()
            except queue.Empty:
                return done
            done += 1
            try:
                getattr(target, f"on_{kind}")(call, data)
            except Exception:  # one bad callback must not stop the process
                on_error(traceback.format_exc())

    def clear(self) -> None:
        while not self._items.empty():
            self._items.get_nowait()
