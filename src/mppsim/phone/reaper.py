"""Frees the pjsua2 Call objects of ended calls, so an agent under churn does not grow.

Why it needs care (docs/decisions.md): `Call::~Call()` clears the user data of pjsua call slot
`id` and hangs up whatever call is active in that slot, and slots are reused. A Call is freed
here only when
  - its call ended more than GRACE seconds ago (pjsua has finished with it), and
  - its slot is not active right now (`isActive()` is false), checked and freed
    on the pjsua poller thread (where incoming calls get their slots) while holding the
    agent's lock (which its main thread holds while it can place calls), so no new call can
    take the slot between the check and the free.
Then ~Call() only writes NULL into an unused slot.
"""
from __future__ import annotations

import threading
import time

GRACE = 2.0   # seconds after a call ended before its Call object may go


class Reaper:
    def __init__(self, lock: threading.Lock):
        self.lock = lock
        self.queue: list[tuple[float, object, object]] = []   # (due, call, detach callback)
        self.freed = 0

    def add(self, call, detach) -> None:
        """Main thread: `call` ended; `detach()` drops the agent's references to it."""
        self.queue.append((time.monotonic() + GRACE, call, detach))

    def run_due(self) -> None:
        """Poller thread, between event polls."""
        if not self.queue or self.queue[0][0] > time.monotonic():
            return
        with self.lock:
            now = time.monotonic()
            keep = []
            for item in self.queue:
                due, call, detach = item
                if due > now or call.isActive():
                    keep.append(item)
                    continue
                detach()
                self.freed += 1
            self.queue = keep
            item = call = detach = None   # the last references: ~Call() runs here, under the lock
