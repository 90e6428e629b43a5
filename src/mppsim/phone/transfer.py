"""Consult transfer as an MPP does it, and the recording that follows its user across a transfer.

The phone side (the user pressing Transfer):
  start    -> the current call goes on hold and a consult call opens on the same line;
  complete -> consult answered: attended transfer (REFER with Replaces);
              consult still ringing: the phone's "blind after consult": the consult call is
              cancelled and, once it is gone, the held party is blind-transferred to its target;
  cancel   -> the consult call ends and the held call is resumed.

The network side (every agent, whoever pressed Transfer): when a call of a recorded line is
continued by another one (this agent is the transferee, whose new INVITE replaces the old leg,
or the target, whose consult leg is replaced), the recording is not restarted. The new call takes
over the old call's policy and SIPREC sessions once it is answered; the recorder gets a metadata
update naming the new other party (docs/decisions.md, "Transfer"). The compliance announcement is
not replayed: the policy that played it is the one that goes on (R-CMP-3).

No Qt and no pjsua2 here: calls are acted on through the agent's FeatureHost (phone/host.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .siprec import other_aor
from mppsim.sip.uri import name_and_user

if TYPE_CHECKING:
    from .calls import CallRecord
    from .host import FeatureHost


class TransferError(ValueError):
    """A transfer request the current calls do not allow; the text says why."""


class TransferDesk:
    def __init__(self, host: "FeatureHost"):
        self.host = host
        self.following: dict[str, str] = {}   # new call key -> old call key whose recording it takes over

    # ----- the phone's Transfer key ---------------------------------------------------------
    def start(self, to: str, call: str | None = None, line: str | None = None) -> dict:
        """Transfer pressed on a call, then a number dialled: hold it, open the consult call."""
        held = self.host.find_call(call, line, prefer=("connected", "held"))
        if self.consult_of(held) is not None:
            raise TransferError(f"call: {held.key} already has a consult call; complete or cancel it")
        consult = self.host.dial(to, line=held.line)     # holds the connected call first
        consult.consult.held = held.key
        consult.consult.target = self.host.resolve(to)
        held.consult.call = consult.key
        self.host.report_call(consult, changed=True)    # the faces learn it is a consult call
        return {"call": held.key, "consult": consult.key}

    def consult_of(self, held: "CallRecord") -> "CallRecord | None":
        rec = self.host.calls.get(held.consult.call or "")
        return rec if rec is not None and rec.active else None

    def pair(self, call: str | None, line: str | None) -> tuple["CallRecord", "CallRecord"]:
        """(held call, consult call) of the transfer under way on `line` (or of `call`, either half)."""
        live = [r for r in self.host.calls.values() if r.active and (line is None or r.line == line)]
        for consult in reversed(live):
            held = self.host.calls.get(consult.consult.held or "")
            if held is None or not held.active:
                continue
            if call is None or call in (consult.key, held.key):
                return held, consult
        raise TransferError("transfer: no transfer under way" + (f" on line {line}" if line else "")
                            + "; press Transfer on a call first")

    def complete(self, call: str | None = None, line: str | None = None) -> dict:
        """Transfer pressed again: attended after answer, blind after consult while ringing."""
        held, consult = self.pair(call, line)
        if consult.state in ("connected", "held"):
            self.host.attended_transfer(held, consult)
            return {"call": held.key, "consult": consult.key, "mode": "attended"}
        # Ringing: the consult call is cancelled first, so the target's line is free when the
        # transferee's INVITE arrives; the REFER goes out when the cancel is done (ended()).
        consult.consult.then_refer = held.key
        self.host.hangup_record(consult)
        return {"call": held.key, "consult": consult.key, "mode": "blind-after-consult"}

    def cancel(self, call: str | None = None, line: str | None = None) -> dict:
        """Cancel: the consult call ends, the held call comes back."""
        held, consult = self.pair(call, line)
        consult.consult.then_resume = held.key
        self.host.hangup_record(consult)
        return {"call": held.key, "consult": consult.key}

    # ----- hooks from the agent --------------------------------------------------------------
    def follows(self, rec: "CallRecord") -> bool:
        """A new call that continues a recorded call of ours (transfer, Replaces): it will take
        the old call's recording over when answered, rather than start its own (True)."""
        edge = self.host.edge
        if not rec.related or edge is None or not edge.has_policy(rec.related):
            return False
        self.following[rec.key] = rec.related
        return True

    def taking_over(self, key: str) -> bool:
        """A continuing call still ringing is taking over call `key`'s recording."""
        return key in self.following.values()

    def answered(self, rec: "CallRecord") -> None:
        """The continuing call is up: move the policy and the recording sessions onto it."""
        old_key = self.following.pop(rec.key, None)
        if old_key is None:
            return
        host = self.host
        old = host.calls.get(old_key)
        siprec = host.siprec
        if siprec is not None:
            if old is not None and old.active and old.aud is not None:
                siprec.unfeed(old_key, old.aud)   # the old leg no longer feeds the recording
            siprec.move(old_key, rec.key)
            self._participants(rec)
            siprec.relink(rec.key)
        host.edge.move_call(old_key, rec.key)
        host.emit("recording_follows", call=rec.key, previous=old_key,
                  remote=name_and_user(rec.remote_uri)[1])

    def keeps_recording(self, rec: "CallRecord") -> bool:
        """Called when `rec` ends. True: its recording is being taken over by a continuing call
        still ringing, so it must not stop. Also finishes the phone's pending transfer steps."""
        host = self.host
        step, rec.consult.then_refer = rec.consult.then_refer, None
        held = host.calls.get(step or "")
        if held is not None and held.active:
            held.consult.call = None
            try:
                host.blind_transfer(held, rec.consult.target)
            except Exception as exc:   # reported, the held call stays on hold
                host.emit("log", level="warning", text=f"blind transfer after consult failed: {exc}")
        step, rec.consult.then_resume = rec.consult.then_resume, None
        held = host.calls.get(step or "")
        if held is not None and held.active:
            held.consult.call = None
            try:
                host.resume(held)
            except Exception as exc:
                host.emit("log", level="warning", text=f"resume after cancelled transfer failed: {exc}")
        if rec.key in self.following:
            # the continuing call never came up: the old call's recording ends now, if that
            # call is over too
            old_key = self.following.pop(rec.key)
            old = host.calls.get(old_key)
            if old is None or not old.active:
                host.edge.call_ended(old_key)
                if host.siprec is not None:
                    host.siprec.call_ended(old_key)
            return False
        return self.taking_over(rec.key)

    # ----- metadata --------------------------------------------------------------------------
    def _participants(self, rec: "CallRecord") -> None:
        """The recorded call's other party changed: tell the recorder who is on the call now,
        with an event saying who left and who joined (docs/protocol.md)."""
        name, user = name_and_user(rec.remote_uri)
        name = name or self.host.names.get(user, "") or user

        def event(dialect: str, previous: list[str]) -> dict | None:
            if not previous:
                return None
            return {"participant_change": "transfer", "left": previous[0], "joined": other_aor(user, dialect)}
        self.host.siprec.update_participants(rec.key, [{"user": user, "name": name}], "UPDATE", event)
