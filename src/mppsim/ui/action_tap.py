"""What a person does on the faces, as Simulator intents: the click recorder's one hook.

The main window hands every face an ActionTap instead of the Simulator itself. It forwards
everything to the Simulator unchanged; each call of an intent that a scenario step can replay
(dial, answer, ... press, menu, the transfer and conference intents, mute, the Messages key) is
also reported to the listeners once it succeeded. The faces need no change for this, and a face
that gains a new control is recorded as long as the control calls one of these intents.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from mppsim.app.simulator import Simulator

# intents a scenario step replays; anything else (listen, status, restart_agent...) just passes
RECORDED = ("dial", "answer", "decline", "hangup", "hold", "resume", "transfer", "dtmf", "press", "menu",
            "start_transfer", "complete_transfer", "cancel_transfer", "start_conference", "merge_conference",
            "mute", "unmute", "call_voicemail")

Listener = Callable[[str, str, dict], None]     # (phase "before" | "done", intent, arguments)


class ActionTap:
    def __init__(self, sim: Simulator):
        self._sim = sim
        self._listeners: list[Listener] = []
        self._wrapped: dict[str, Callable] = {}

    def listen(self, fn: Listener) -> Callable[[], None]:
        """fn("before", intent, arguments by name) as an intent starts, and fn("done", ...) once it
        succeeded (not when it raised or a softkey/menu item was refused). Returns the unsubscribe."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._sim, name)
        if name not in RECORDED:
            return target
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            signature = inspect.signature(target)

            def wrapped(*args, **kwargs):
                arguments = dict(signature.bind(*args, **kwargs).arguments)
                for fn in list(self._listeners):
                    fn("before", name, arguments)      # what the person saw when they acted
                result = target(*args, **kwargs)
                if name in ("press", "menu") and not result:
                    return result          # refused: the phone did not offer it, nothing happened
                for fn in list(self._listeners):
                    fn("done", name, arguments)
                return result
            self._wrapped[name] = wrapped
        return wrapped
