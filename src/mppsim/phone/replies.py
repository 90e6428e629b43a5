"""Replies to control requests that cannot be answered at once (`listen` waits for audio)."""
from __future__ import annotations

from typing import Callable


class Deferred:
    """A handler returns one instead of a result; the agent's main loop calls `poll` every
    `every` seconds until it returns the result (a dict) or raises the agent's CommandError.
    The main loop never blocks, so calls and other requests go on meanwhile."""

    def __init__(self, poll: Callable[[], dict | None], every: float = 0.05):
        self.poll = poll
        self.every = every
