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

No Qt here; pjsua2 only through the agent's own methods.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pjsua2 as pj

from mppsim.siprec.metadata import now_iso

from .siprec import other_aor
from mppsim.sip.uri import name_and_user

if TYPE_CHECKING:
    from .agent import Agent
    from .calls import CallRecord


class TransferError(ValueError):
    """A transfer request the current calls do not allow; the text says why."""


class TransferDesk:
    def __init__(self, agent: "Agent"):
        self.agent = agent
        self.following: dict[str, str] = {}   # new call key -> old call key whose recording it takes over

    # ----- the phone's Transfer key ---------------------------------------------------------
    def start(self, to: str, call: str | None = None, line: str | None = None) -> dict:
        """Transfer pressed on a call, then a number dialled: hold it, open the consult call."""
        held = self.agent.find_call(call, line, prefer=("connected", "held"))
        if self.consult_of(held) is not None:
            raise TransferError(f"call: {held.key} already has a consult call; complete or cancel it")
        result = self.agent.cmd_dial(to, line=held.line)     # holds the connected call first
        consult = self.agent.calls[result["call"]]
        consult.extra["consult_for"] = held.key
        consult.extra["consult_target"] = self.agent.resolve(to)
        held.extra["consult"] = consult.key
        consult.extra.pop("last_reported", None)    # the faces learn it is a consult call
        self.agent.report_call(consult)
        return {"call": held.key, "consult": consult.key}

    def consult_of(self, held: "CallRecord") -> "CallRecord | None":
        rec = self.agent.calls.get(held.extra.get("consult", ""))
        return rec if rec is not None and rec.active else None

    def _pair(self, call: str | None, line: str | None) -> tuple["CallRecord", "CallRecord"]:
        """(held call, consult call) of the transfer under way on `line` (or of `call`, either half)."""
        live = [r for r in self.agent.calls.values() if r.active and (line is None or r.line == line)]
        for consult in reversed(live):
            held = self.agent.calls.get(consult.extra.get("consult_for", ""))
            if held is None or not held.active:
                continue
            if call is None or call in (consult.key, held.key):
                return held, consult
        raise TransferError("transfer: no transfer under way" + (f" on line {line}" if line else "")
                            + "; press Transfer on a call first")

    def complete(self, call: str | None = None, line: str | None = None) -> dict:
        """Transfer pressed again: attended after answer, blind after consult while ringing."""
        held, consult = self._pair(call, line)
        if consult.state in ("connected", "held"):
            held.transfer = "attended"
            held.call.xferReplaces(consult.call, pj.CallOpParam(True))
            return {"call": held.key, "consult": consult.key, "mode": "attended"}
        # Ringing: the consult call is cancelled first, so the target's line is free when the
        # transferee's INVITE arrives; the REFER goes out when the cancel is done (ended()).
        consult.extra["then_refer"] = held.key
        self.agent.hangup_record(consult)
        return {"call": held.key, "consult": consult.key, "mode": "blind-after-consult"}

    def cancel(self, call: str | None = None, line: str | None = None) -> dict:
        """Cancel: the consult call ends, the held call comes back."""
        held, consult = self._pair(call, line)
        consult.extra["then_resume"] = held.key
        self.agent.hangup_record(consult)
        return {"call": held.key, "consult": consult.key}

    # ----- hooks from the agent --------------------------------------------------------------
    def follows(self, rec: "CallRecord") -> bool:
        """A new call that continues a recorded call of ours (transfer, Replaces): it will take
        the old call's recording over when answered, rather than start its own (True)."""
        edge = self.agent.edge
        if not rec.related or edge is None or rec.related not in edge.policies:
            return False
        self.following[rec.key] = rec.related
        return True

    def answered(self, rec: "CallRecord") -> None:
        """The continuing call is up: move the policy and the recording sessions onto it."""
        old_key = self.following.pop(rec.key, None)
        if old_key is None:
            return
        agent = self.agent
        old = agent.calls.get(old_key)
        if agent.siprec is not None:
            if old is not None and old.active and old.aud is not None:
                for (k, _n), session in agent.siprec.sessions.items():
                    if k == old_key and len(session.auds) >= 2:
                        try:   # the old leg no longer feeds the recording
                            old.aud.stopTransmit(session.auds[1])
                        except pj.Error:
                            pass
            moved = move_sessions(agent.siprec, old_key, rec.key)
            update_participants(agent.siprec, rec.key, rec, moved)
            agent.siprec.relink(rec.key)
        agent.edge.move_call(old_key, rec.key)
        agent.emit("recording_follows", call=rec.key, previous=old_key,
                   remote=name_and_user(rec.remote_uri)[1])

    def keeps_recording(self, rec: "CallRecord") -> bool:
        """Called when `rec` ends. True: its recording is being taken over by a continuing call
        still ringing, so it must not stop. Also finishes the phone's pending transfer steps."""
        agent = self.agent
        held = agent.calls.get(rec.extra.pop("then_refer", ""))
        if held is not None and held.active:
            target = rec.extra.get("consult_target")
            held.extra.pop("consult", None)
            try:
                agent.cmd_transfer(to=target, call=held.key)
            except Exception as exc:   # reported, the held call stays on hold
                agent.emit("log", level="warning", text=f"blind transfer after consult failed: {exc}")
        held = agent.calls.get(rec.extra.pop("then_resume", ""))
        if held is not None and held.active:
            held.extra.pop("consult", None)
            try:
                agent.cmd_resume(call=held.key)
            except Exception as exc:
                agent.emit("log", level="warning", text=f"resume after cancelled transfer failed: {exc}")
        if rec.key in self.following:
            # the continuing call never came up: the old call's recording ends now, if that
            # call is over too
            old_key = self.following.pop(rec.key)
            old = agent.calls.get(old_key)
            if old is None or not old.active:
                agent.edge.call_ended(old_key)
                if agent.siprec is not None:
                    agent.siprec.call_ended(old_key)
            return False
        return rec.key in self.following.values()


def move_sessions(siprec, old_key: str, new_key: str) -> list:
    """Re-key the SIPREC sessions of a call: the same recording goes on for the new call."""
    moved = []
    for (k, n), session in list(siprec.sessions.items()):
        if k == old_key:
            del siprec.sessions[(k, n)]
            session.key = new_key
            siprec.sessions[(new_key, n)] = session
            moved.append(session)
    return moved


def update_participants(siprec, key: str, rec: "CallRecord", sessions: list) -> None:
    """The recorded call's other party changed (transfer): tell the recorder who is on the
    call now, with an event saying who left and who joined (send_participants)."""
    name, user = name_and_user(rec.remote_uri)
    name = name or siprec.agent.names.get(user, "") or user
    events = {}
    for session in sessions:
        if len(session.metadata.participants) >= 2:
            events[id(session)] = {"participant_change": "transfer", "left": session.metadata.participants[1].aor,
                                   "joined": other_aor(user, session.dialect)}
    send_participants(siprec, key, [{"user": user, "name": name}], lambda s: events.get(id(s)))


def send_participants(siprec, key: str, others: list[dict], event) -> None:
    """The SIPREC client's update_participants: the whole new participant list by UPDATE, as
    Webex Calling sends a participant change, to mppsim's own recorder as to any SRS (since
    issue 9 it takes 64 kB messages and metadata-only UPDATEs). `event(session)` -> the dict of
    mppsim's event to add, or None."""
    for (k, _n), session in siprec.sessions.items():
        if k != key or session.state in ("ended", "failed"):
            continue
        ev = event(session)
        if ev:
            session.metadata.events.append({**ev, "time": now_iso()})
    siprec.update_participants(key, others, "UPDATE")


