"""src/mppsim/phone/callback_queue.py: how pjsua2 callbacks reach the thread that handles them."""
from __future__ import annotations

import select
import threading

from mppsim.phone.callback_queue import CallbackQueue


class Target:
    def __init__(self):
        self.seen: list[tuple[str, object, object]] = []

    def on_state(self, call, data):
        self.seen.append(("state", call, data))

    def on_media(self, call, data):
        self.seen.append(("media", call, data))

    def on_bad(self, call, data):
        raise RuntimeError("a broken handler")


def readable(q: CallbackQueue) -> bool:
    return bool(select.select([q], [], [], 0)[0])


def on_thread(fn) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join()


def test_a_post_wakes_the_loop_and_drain_hands_items_over_in_order():
    q, target = CallbackQueue(), Target()
    on_thread(lambda: (q.post(("state", "c1", 1)), q.post(("media", "c1", None))))
    assert readable(q)
    q.drain(target, on_error=lambda text: None)
    assert target.seen == [("state", "c1", 1), ("media", "c1", None)]
    assert not readable(q)
    q.drain(target, on_error=lambda text: None)          # nothing left: nothing more handed over
    assert len(target.seen) == 2


def test_a_failing_handler_is_reported_and_the_rest_still_run():
    q, target, errors = CallbackQueue(), Target(), []
    for item in (("bad", None, None), ("state", "c1", 1)):
        q.post(item)
    q.drain(target, on_error=errors.append)
    assert target.seen == [("state", "c1", 1)]
    assert len(errors) == 1 and "a broken handler" in errors[0]
