"""Three-way conference hosted by the user's network edge (issue 13, part 2).

As Webex Calling does, the conference is network-hosted: the host user's agent bridges its two
calls in its own pjmedia conference bridge, so everyone hears everyone:

    other A  <->  other B          (A's stream -> B's stream and back)
    user     ->   A and B          (the user's source feeds both calls, as for any call)
    A, B     ->   the user         (each call's capture also gets the other call's audio)

The user presses Conference on a call (it goes on hold), dials the third party (a consult call,
phone/transfer.py), and presses Conference again: the held call is resumed and the two are
merged. One party leaving returns the call to two.

Recording (docs/decisions.md, "Conference"): one SIPREC session per recorded user for the
conference, as Webex does: the first call's. At the merge the consult call's own recording
stops (it holds the consultation), the first call's session gets the other call's audio mixed
into its right channel (left = the user, right = the mix of the others) and a metadata update
listing the participant who joined. When a party leaves, an update lists who left; when it is the
first call's party, the session moves to the remaining call (as for a transfer).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pjsua2 as pj


from mppsim.sip.uri import name_and_user
from .siprec import other_aor
from .transfer import move_sessions, send_participants

if TYPE_CHECKING:
    from .agent import Agent
    from .calls import CallRecord


class ConferenceError(ValueError):
    pass


def tones_present(samples: np.ndarray, rate: int, freqs: list[float], share: float = 0.05) -> dict[str, bool]:
    """For each frequency: is it present in `samples` (at least `share` of the spectral energy
    within +-3 % of it)? Pure numpy; for `expect: {hears: [f1, f2]}`."""
    out = {}
    if samples.size < 256:
        return {str(f): False for f in freqs}
    x = samples.astype(np.float64)
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    total = spec.sum() or 1e-12
    for want in freqs:
        near = np.abs(f - float(want)) <= max(8.0, float(want) * 0.03)
        out[str(want)] = bool(spec[near].sum() / total >= share)
    return out


def with_tones(poll, capture, seconds: float, freqs: list[float]):
    """Wrap the agent's listen poll (phone/listening.py): once it answers, add `present` for
    each frequency over the last `seconds` on disk of the call's capture."""
    def wrapped():
        result = poll()
        if result is None:
            return None
        cap = capture()
        if cap is not None:
            end = cap.available()
            samples = cap.samples(end - int(round(seconds * 8000)), end)
            result["present"] = tones_present(samples, 8000, freqs)
        else:
            result["present"] = {str(f): False for f in freqs}
        return result
    return wrapped


class Conferences:
    """The agent's conferences: at most one (pjsua's 4 calls: two calls + one SIPREC + the
    consult's SIPREC until the merge)."""

    def __init__(self, agent: "Agent"):
        self.agent = agent
        self.members: list[str] = []      # call keys; members[0] = the call holding the recording
        self.links: list[tuple] = []

    def active(self) -> bool:
        return len(self.members) == 2

    # ----- user actions ----------------------------------------------------------------------
    def merge(self, call: str | None = None, line: str | None = None) -> dict:
        """Conference pressed again: resume the held call and bridge it with the consult call."""
        agent = self.agent
        held, consult = agent.transfers._pair(call, line)
        if consult.state not in ("connected", "held"):
            raise ConferenceError("conference: the consult call is not answered yet")
        if self.active():
            raise ConferenceError("conference: a conference is already under way")
        held.extra.pop("consult", None)
        consult.extra.pop("consult_for", None)
        self.members = [held.key, consult.key]
        for rec in (held, consult):
            rec.extra["conference"] = held.key
            rec.extra.pop("last_reported", None)
        # one recording for the conference: the consult call's own one ends here
        self._stop_recording(consult.key, held.key, time.monotonic() + 3.0)
        if held.want_hold or held.state == "held":
            # resume the held call without holding the other (the agent's resume would)
            held.want_hold = False
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            agent.reinvite_when_free(held, lambda: held.call.reinvite(prm), hold=False)
        self.relink()
        self._participants(joined=consult)
        for rec in (held, consult):
            agent.report_call(rec)
        agent.emit("conference", call=held.key, members=list(self.members), state="merged")
        return {"call": held.key, "members": list(self.members)}

    def _stop_recording(self, key: str, host: str, deadline: float) -> None:
        """End the consult call's own recording. A session still being set up is let finish
        first: cancelling its INVITE left the recorder's side open (seen: ~12 s)."""
        agent = self.agent
        if agent.edge is None or key not in agent.edge.policies:
            return
        starting = agent.siprec is not None and any(
            k == key and s.state == "starting" for (k, _n), s in agent.siprec.sessions.items())
        if starting and time.monotonic() < deadline:
            agent.later(0.1, lambda: self._stop_recording(key, host, deadline))
            return
        agent.edge.call_ended(key)
        if agent.siprec is not None:
            agent.siprec.call_ended(key)
        # the devices show the conference's recording for both members, not "stopped"
        view = agent.edge.view(host)
        rec = agent.calls.get(key)
        if view is not None and rec is not None:
            agent.emit("recording", call=key, line=rec.line, **{**view, "message": ""})

    # ----- media -----------------------------------------------------------------------------
    def relink(self) -> None:
        """(Re)build the bridge links; every media change of a member drops them."""
        if not self.active():
            return
        a, b = (self.agent.calls.get(k) for k in self.members)
        if a is None or b is None or a.aud is None or b.aud is None:
            return
        try:
            a.aud.startTransmit(b.aud)
            b.aud.startTransmit(a.aud)
            if a.capture is not None and a.capture.port is not None:
                b.aud.startTransmit(a.capture.port)
            if b.capture is not None and b.capture.port is not None:
                a.aud.startTransmit(b.capture.port)
            if self.agent.siprec is not None:
                for (k, _n), session in self.agent.siprec.sessions.items():
                    if k == a.key and len(session.auds) >= 2 and not session.paused:
                        b.aud.startTransmit(session.auds[1])   # right channel: the mix of the others
        except pj.Error as exc:   # a stream is being re-created: the next media update links again
            self.agent.emit("log", level="debug", text=f"conference relink: {exc.info()}")

    def media_changed(self, rec: "CallRecord") -> None:
        if rec.key in self.members:
            self.relink()

    # ----- a party leaves --------------------------------------------------------------------
    def ended(self, rec: "CallRecord") -> bool:
        """`rec` ended. True when its recording moved to the remaining call (keep it going)."""
        if rec.key not in self.members:
            return False
        agent = self.agent
        first, other = self.members
        remaining = agent.calls.get(other if rec.key == first else first)
        self.members = []
        moved = False
        if remaining is not None and remaining.active:
            remaining.extra.pop("conference", None)
            remaining.extra.pop("last_reported", None)
            if rec.key == first and agent.edge is not None and first in agent.edge.policies:
                # the recording goes on with the call that remains (as for a transfer)
                if agent.siprec is not None:
                    move_sessions(agent.siprec, first, remaining.key)
                agent.edge.move_call(first, remaining.key)
                if agent.siprec is not None:
                    agent.siprec.relink(remaining.key)
                moved = True
            self._left(rec, remaining)
            agent.report_call(remaining)
        agent.emit("conference", call=first, members=[remaining.key] if remaining else [], state="ended",
                   left=rec.key)
        return moved

    # ----- metadata --------------------------------------------------------------------------
    def _who(self, rec: "CallRecord") -> dict:
        name, user = name_and_user(rec.remote_uri)
        return {"user": user, "name": name or self.agent.names.get(user, "") or user}

    def _change(self, key: str, change: str, who: dict, others: list[dict]) -> None:
        """Tell the recorder: the new participant list, with an event naming who joined or left."""
        siprec = self.agent.siprec
        if siprec is None:
            return
        send_participants(siprec, key, others, lambda s: {"participant_change": "conference",
                                                          change: other_aor(who["user"], s.dialect)})

    def _participants(self, joined: "CallRecord") -> None:
        first = self.agent.calls.get(self.members[0])
        if first is not None:
            self._change(first.key, "joined", self._who(joined), [self._who(first), self._who(joined)])

    def _left(self, rec: "CallRecord", remaining: "CallRecord") -> None:
        self._change(remaining.key, "left", self._who(rec), [self._who(remaining)])
