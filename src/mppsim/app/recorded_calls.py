"""The click recorder's first steps when calls are already up as recording starts: the steps
that bring a replay, which starts with every line idle, to the same calls.

Per call, oldest first: `dial` (or `consult` / `start_conference` for a consult call; `dial *86`
for a user listening to their mailbox), `answer`
when it was answered, the recording keys that reach the observed recording state (R-UX-3/R-UX-4:
Record for the On Demand modes, then PauseRec or StopRec; a Webex App-only line picks the
menu items), then `hold` for a side that holds a call nothing else explains, and `mute`. What
cannot be recreated faithfully (a three-way conference, a call with someone outside the org or a
voicemail deposit) is left out and named in a note. The recorder then writes the `expect` steps
of what the devices showed, so the replay checks it reached the same state before going on.
"""
from __future__ import annotations

from mppsim.rules.effective import ON_DEMAND, ON_DEMAND_USER_START
from mppsim.rules.policy import MENU, MODE_KEYS, PAUSE_REC, RECORD, STOP_REC

from .simulator import Party, Simulator

KEY_WITHIN = "3s"       # a key is offered once the network edge saw the call connected


def recording_keys(mode: str, state: str | None, indicator: str) -> list[str] | None:
    """The softkeys that take a freshly connected call of a line in `mode` to the recording
    `state` the person saw (None when no key sequence reaches it)."""
    if state in (None, "pending", "failed") or mode not in MODE_KEYS:
        return []
    keys: list[str] = []
    on_demand = mode in (ON_DEMAND, ON_DEMAND_USER_START)
    # plain On Demand records from the start but keeps it only after Record (indicator on)
    if on_demand and (state in ("paused", "stopped") or indicator != "none"):
        keys.append(RECORD)
    if state == "paused":
        keys.append(PAUSE_REC)
    elif state == "stopped":
        keys.append(STOP_REC)
    if any(k not in MODE_KEYS[mode] for k in keys):
        return None
    return keys


class CallSetup:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.steps: list[dict] = []
        self.notes: list[str] = []
        self.involved: list[Party] = []

    def party_of(self, leg: dict | None) -> Party | None:
        if leg is None:
            return None
        return next((p for p in self.sim.parties if p.agent == leg["agent"] and p.line == leg["line"]), None)

    def build(self) -> "CallSetup":
        live = sorted((ev for ev in self.sim.calls.values() if ev["state"] != "ended"),
                      key=lambda ev: ev.get("created") or 0)
        groups: dict[str, list[dict]] = {}
        for ev in live:
            groups.setdefault(ev.get("sip_call_id") or ev["call"], []).append(ev)
        made: list[dict] = []        # legs of the calls recreated
        for legs in groups.values():
            if self.call(legs):
                made += legs
        self.holds(made)
        self.mutes()
        return self

    def _involve(self, *parties: Party) -> None:
        for p in parties:
            if p not in self.involved:
                self.involved.append(p)

    def call(self, legs: list[dict]) -> bool:
        out = next((l for l in legs if l["direction"] == "out"), None)
        inn = next((l for l in legs if l["direction"] == "in"), None)
        caller, callee = self.party_of(out), self.party_of(inn)
        if any(l.get("conference") for l in legs):
            self.notes.append("a three-way conference was up when recording started: the replay does not have it")
            return False
        if caller is not None and callee is None and (out.get("remote") or {}).get("user") == "*86":
            self.steps.append({"dial": {"from": caller.id, "to": "*86"}})    # the mailbox answers by itself
            self._involve(caller)
            return True
        if caller is None or callee is None:
            who = (caller or callee).id if (caller or callee) else "someone"
            self.notes.append(f"{who}'s call with a party outside the org (or voicemail) was up when recording "
                              "started: the replay does not have it")
            return False
        to = callee.number
        kind = out.get("consult_kind") if out.get("consult_for") else None
        step = {"dial": {"from": caller.id, "to": to}} if kind is None else \
            {("start_conference" if kind == "conference" else "consult"): {"who": caller.id, "to": to}}
        self.steps.append(step)
        self._involve(caller, callee)
        if inn["state"] not in ("connected", "held"):
            return True         # dialling / ringing: the expect steps check it rings
        self.steps.append({"answer": {"who": callee.id}})
        for p in (caller, callee):
            self.steps.append({"expect": {"who": p.id, "call": "connected"}})
        for p, leg in ((caller, out), (callee, inn)):
            self.keys(p, leg)
        return True

    def keys(self, p: Party, leg: dict) -> None:
        view = self.sim.recording_view(p.id, leg["call"])
        if p.kind == "pstn" or not view:
            return
        device = next(iter(view.get("devices", {}).values()), {})
        keys = recording_keys(self.sim.settings.effective(p.line).mode, view.get("state"),
                              device.get("indicator", "none"))
        if keys is None:
            self.notes.append(f"{p.id}'s recording was {view.get('state')} when recording started, which its "
                              "recording mode's keys cannot reach: the replay's may differ")
            return
        devices = {d.split()[0] for d in p.devices}
        for key in keys:
            if "mpp" in devices:
                self.steps.append({"press": {"who": p.id, "key": key, "within": KEY_WITHIN}})
            else:
                self.steps.append({"menu": {"who": p.id, "item": MENU[key], "within": KEY_WITHIN}})

    def holds(self, made: list[dict]) -> None:
        """A side that put a call on hold, unless something else did: a consult (or conference)
        call holds the call it is for, answering or making a second call holds the first."""
        consulted = {l.get("consult_for") for l in made}
        for leg in made:
            if leg.get("held_by") not in ("local", "both") or leg["call"] in consulted:
                continue
            later = [l for l in made if l["agent"] == leg["agent"] and l["line"] == leg["line"]
                     and (l.get("created") or 0) > (leg.get("created") or 0)]
            if later:
                continue
            p = self.party_of(leg)
            if p is not None:
                self.steps.append({"hold": {"who": p.id}})

    def mutes(self) -> None:
        for agent, muted in sorted(self.sim.mutes.items()):
            p = next((p for p in self.involved if p.agent == agent), None)
            if muted and p is not None:
                self.steps.append({"mute": {"who": p.id}})
