"""The agent's `listen`: wait for the audio asked about, then analyse it (phone/media.Capture).

The reply is deferred (phone/replies.py) until the capture file holds the seconds asked for:
pjmedia writes it in ~0.25 s blocks, and a call younger than the seconds asked has not heard
them yet. Plain Python over the capture's positions; no pjsua2 calls.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .calls import CallRecord


def listen_poll(rec: "CallRecord", seconds: float, asked: int | None,
                follow: Callable[[], "CallRecord"] | None = None,
                error: type[Exception] = ValueError) -> Callable[[], dict | None]:
    """The answer to `listen` once the capture file holds the `seconds` before the request
    (`asked`: the capture's position then), or the first `seconds` of a younger call.
    `follow`: the request named no call, so when this one ends (replaced by a transfer, say)
    listen to the line's call now, as a person holding the handset would. `error`: the agent's
    refusal (its text goes back to the app); `follow` raises it when the line has no call."""
    deadline = time.monotonic() + seconds + 3.0   # a loaded machine writes late: answer with what is there
    want = int(round(seconds * 8000))

    def poll() -> dict | None:
        nonlocal asked, rec, deadline
        if rec.state == "ended" and follow is not None:
            try:
                rec = follow()
            except error:
                pass
            else:
                asked = rec.capture.position() if rec.capture else None
                deadline = time.monotonic() + seconds + 3.0
        cap = rec.capture
        if rec.state == "ended":
            raise error(f"listen: call {rec.key} ended before {seconds:g} s could be heard; "
                               "what it heard is in its call summary (listen with call=...)")
        late = time.monotonic() > deadline
        if cap is None:
            return {"call": rec.key, "heard": None} if late else None
        if asked is None:        # the call's media was not up yet when asked
            asked = 0
        end = max(asked, want)
        if cap.available() >= end or late:
            return {"call": rec.key, "heard": cap.heard(seconds, end=min(end, cap.available())).to_dict()}
        return None
    return poll
