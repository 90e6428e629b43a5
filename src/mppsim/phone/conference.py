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
from .transfer import TransferError

if TYPE_CHECKING:
    from .calls import CallRecord
    from .host import FeatureHost
    from .transfer import TransferDesk


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

    def __init__(self, host: "FeatureHost", transfers: "TransferDesk"):
        self.host = host
        self.transfers = transfers        # a conference starts as a consult call (phone/transfer.py)
        self.members: list[str] = []      # call keys; members[0] = the call holding the recording
        self.links: list[tuple] = []

    def active(self) -> bool:
        return len(self.members) == 2

    # ----- user actions ----------------------------------------------------------------------
    def start(self, to: str, call: str | None = None, line: str | None = None) -> dict:
        """MPP Conference + number: hold the call and call the third party (a consult call)."""
        if self.active():
            raise ConferenceError("conference: a conference is already under way; allowed: one")
        try:
            result = self.transfers.start(to, call, line)
        except TransferError as exc:
            raise ConferenceError(str(exc).replace("transfer", "conference")) from exc
        consult = self.host.calls[result["consult"]]
        consult.consult.kind = "conference"    # the faces offer Conference, not Transfer
        self.host.report_call(consult, changed=True)
        return result

    def merge(self, call: str | None = None, line: str | None = None) -> dict:
        """Conference pressed again: resume the held call and bridge it with the consult call."""
        host = self.host
        held, consult = self.transfers.pair(call, line)
        if consult.state not in ("connected", "held"):
            raise ConferenceError("conference: the consult call is not answered yet")
        if self.active():
            raise ConferenceError("conference: a conference is already under way")
        held.consult.call = None
        consult.consult.held = None
        self.members = [held.key, consult.key]
        for rec in (held, consult):
            rec.conference = held.key
        # one recording for the conference: the consult call's own one ends here
        self._stop_recording(consult.key, held.key, time.monotonic() + 3.0)
        if held.want_hold or held.state == "held":
            host.unhold(held)    # without holding the other (the agent's resume would)
        self.relink()
        self._participants(joined=consult)
        for rec in (held, consult):
            host.report_call(rec, changed=True)
        host.emit("conference", call=held.key, members=list(self.members), state="merged")
        return {"call": held.key, "members": list(self.members)}

    def _stop_recording(self, key: str, first: str, deadline: float) -> None:
        """End the consult call's own recording. A session still being set up is let finish
        first: cancelling its INVITE left the recorder's side open (seen: ~12 s)."""
        edge, siprec = self.host.edge, self.host.siprec
        if edge is None or not edge.has_policy(key):
            return
        if siprec is not None and siprec.starting(key) and time.monotonic() < deadline:
            self.host.later(0.1, lambda: self._stop_recording(key, first, deadline))
            return
        edge.call_ended(key)
        if siprec is not None:
            siprec.call_ended(key)
        # the devices show the conference's recording for both members, not "stopped"
        view = edge.view(first)
        rec = self.host.calls.get(key)
        if view is not None and rec is not None:
            self.host.emit("recording", call=key, line=rec.line, **{**view, "message": ""})

    # ----- media -----------------------------------------------------------------------------
    def relink(self) -> None:
        """(Re)build the bridge links; every media change of a member drops them."""
        if not self.active():
            return
        a, b = (self.host.calls.get(k) for k in self.members)
        if a is None or b is None or a.aud is None or b.aud is None:
            return
        try:
            a.aud.startTransmit(b.aud)
            b.aud.startTransmit(a.aud)
            if a.capture is not None and a.capture.port is not None:
                b.aud.startTransmit(a.capture.port)
            if b.capture is not None and b.capture.port is not None:
                a.aud.startTransmit(b.capture.port)
            if self.host.siprec is not None:
                self.host.siprec.feed(a.key, b.aud)   # right channel: the mix of the others
        except pj.Error as exc:   # a stream is being re-created: the next media update links again
            self.host.emit("log", level="debug", text=f"conference relink: {exc.info()}")

    def media_changed(self, rec: "CallRecord") -> None:
        if rec.key in self.members:
            self.relink()

    # ----- a party leaves --------------------------------------------------------------------
    def ended(self, rec: "CallRecord") -> bool:
        """`rec` ended. True when its recording moved to the remaining call (keep it going)."""
        if rec.key not in self.members:
            return False
        host = self.host
        first, other = self.members
        remaining = host.calls.get(other if rec.key == first else first)
        self.members = []
        moved = False
        if remaining is not None and remaining.active:
            remaining.conference = None
            if rec.key == first and host.edge is not None and host.edge.has_policy(first):
                # the recording goes on with the call that remains (as for a transfer)
                if host.siprec is not None:
                    host.siprec.move(first, remaining.key)
                host.edge.move_call(first, remaining.key)
                if host.siprec is not None:
                    host.siprec.relink(remaining.key)
                moved = True
            self._left(rec, remaining)
            host.report_call(remaining, changed=True)
        host.emit("conference", call=first, members=[remaining.key] if remaining else [], state="ended",
                   left=rec.key)
        return moved

    # ----- metadata --------------------------------------------------------------------------
    def _who(self, rec: "CallRecord") -> dict:
        name, user = name_and_user(rec.remote_uri)
        return {"user": user, "name": name or self.host.names.get(user, "") or user}

    def _change(self, key: str, change: str, who: dict, others: list[dict]) -> None:
        """Tell the recorder: the new participant list, with an event naming who joined or left."""
        siprec = self.host.siprec
        if siprec is None:
            return
        siprec.update_participants(key, others, "UPDATE", lambda dialect, _previous: {
            "participant_change": "conference", change: other_aor(who["user"], dialect)})

    def _participants(self, joined: "CallRecord") -> None:
        first = self.host.calls.get(self.members[0])
        if first is not None:
            self._change(first.key, "joined", self._who(joined), [self._who(first), self._who(joined)])

    def _left(self, rec: "CallRecord", remaining: "CallRecord") -> None:
        self._change(remaining.key, "left", self._who(rec), [self._who(remaining)])
