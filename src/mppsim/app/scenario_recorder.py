"""The recorder of clicks: what a person does on the faces and in Control Hub, written as a
scenario (docs/scenarios.md) that `mppsim run` replays.

Plain Python over a Simulator: the GUI feeds it each intent (ui/action_tap.py) and each settings
change (the store's subscription; app/recorded_settings.py turns it into `set` steps for a user,
virtual line, location or the organisation). Calls already up when recording starts become the
first steps (app/recorded_calls.py). Before every action, and at stop, it writes
  - `wait` for the time since the previous action (when it is 0.3 s or more), then
  - `expect` for every line whose observed state changed since the last look: call state, the
    microphone muted or not, and in a call a recording policy runs for, the indicator, the MPP's recording softkeys, the Webex
    App's recording menu items and the call-control recording state,
so the replay checks what the person saw at the moment they acted next, after the same delay.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from mppsim.rules.effective import ALWAYS, ALWAYS_PAUSE

from .recorded_calls import CallSetup
from .recorded_settings import SettingsSteps, set_patch, settings_diff  # noqa: F401 (public)
from .simulator import Party, Simulator

MIN_WAIT = 0.3          # shorter gaps are not worth a step
DTMF_MERGE = 1.0        # keypad digits this close together on one line are one dtmf step (*44)
# a face intent -> the step that replays it: (step name, the intent's argument for `to`)
STEP_OF = {"dial": ("dial", "to"), "transfer": ("transfer", "to"), "start_transfer": ("consult", "to"),
           "complete_transfer": ("complete_transfer", None), "cancel_transfer": ("cancel_transfer", None),
           "start_conference": ("start_conference", "to"), "merge_conference": ("merge_conference", None),
           "unmute": ("unmute", None)}


class ScenarioRecorder:
    def __init__(self, sim: Simulator, clock: Callable[[], float] = time.monotonic):
        self.sim = sim
        self.clock = clock
        self.steps: list[dict] = []
        self.notes: list[str] = []        # what happened that the format cannot replay
        self.started = time.strftime("%Y-%m-%d %H:%M")
        self._settings = SettingsSteps(sim.settings, sim.org, [p for p in sim.parties if p.kind != "pstn"])
        self._last_time: float | None = None
        self._last_step: dict | None = None
        # the replay starts from the org file with every line idle: settings already changed in
        # this run come first, then the calls already up, then what the devices show of them
        sets, notes = self._settings.steps()
        self.steps += sets
        self.notes += notes
        setup = CallSetup(sim).build()
        self.steps += setup.steps
        self.notes += setup.notes
        self._seen = {p.id: self.observe(p) for p in sim.parties}
        for p in setup.involved:
            seen = {k: v for k, v in self._seen[p.id].items() if k != "muted" or v}
            self.steps.append({"expect": {"who": p.id, **seen, "within": "3s"}})

    # ----- what the person did ------------------------------------------------------------
    def before_action(self, intent: str = "", args: dict | None = None) -> None:
        """A person is about to act: write what the devices show now (and the time since the last
        action). Called before the intent runs, so its effect is not mistaken for the cause."""
        args = args or {}
        who, now = str(args.get("who")), self.clock()
        if intent == "dtmf" and self._merges(who, now):
            return
        last = self._last_step
        if (intent == "hangup" and args.get("call") and last is not None and "hangup" in last
                and last["hangup"]["who"] == who and now - (self._last_time or 0) < DTMF_MERGE):
            return      # End call on a conference's host hangs up each member call at once
        self._look(now)

    def _merges(self, who: str, now: float) -> bool:
        """A keypad digit right after another on the same line: part of the same dtmf step."""
        last = self._last_step
        return (last is not None and "dtmf" in last and last["dtmf"]["who"] == who
                and self._last_time is not None and now - self._last_time < DTMF_MERGE)

    def action(self, intent: str, args: dict) -> None:
        """An intent from a face (ui/action_tap.py) that succeeded: dial, answer, ... press, menu,
        transfer and conference steps, mute, the Messages key."""
        who = str(args.get("who"))
        now = self.clock()
        last = self._last_step
        if intent == "dtmf" and last is not None and self._merges(who, now):
            last["dtmf"]["digits"] += str(args["digits"])
            self._last_time = now
            return
        if intent == "dial":
            step = {"dial": {"from": who, "to": str(args["to"])}}
        elif intent == "call_voicemail":        # the Messages key / voicemail button: *86
            step = {"dial": {"from": who, "to": "*86"}}
        elif intent == "mute":
            step = {"mute" if args.get("on", True) else "unmute": {"who": who}}
        elif intent in STEP_OF:
            name, to = STEP_OF[intent]
            step = {name: {"who": who, **({"to": str(args[to])} if to else {})}}
        elif intent == "dtmf":
            step = {"dtmf": {"who": who, "digits": str(args["digits"])}}
        elif intent == "press":
            step = {"press": {"who": who, "key": args["key"]}}
        elif intent == "menu":
            step = {"menu": {"who": who, "item": args["item"]}}
        else:                                   # answer, decline, hangup, hold, resume
            step = {intent: {"who": who}}
        self._add(step, now)

    def settings_changed(self, _line_ids=None) -> None:
        """The settings store committed a change (Control Hub's Save): the `set` steps of each
        user, virtual line, location or the organisation that changed."""
        now = self.clock()
        sets, notes = self._settings.steps()
        self.notes += notes
        if sets:
            self._look(now)
        for step in sets:
            self._add(step, now)

    def _add(self, step: dict, now: float) -> None:
        self.steps.append(step)
        self._last_step = step
        self._last_time = now

    # ----- what the person saw ------------------------------------------------------------
    def _look(self, now: float) -> None:
        if self._last_time is None:
            return
        gap = now - self._last_time
        self._last_time = now           # the next gap counts from this look
        if gap >= MIN_WAIT:
            self.steps.append({"wait": f"{gap:.1f}s"})
        for p in self.sim.parties:
            seen = self.observe(p)
            changed = {k: v for k, v in seen.items() if self._seen[p.id].get(k) != v}
            if changed:
                self.steps.append({"expect": {"who": p.id, **changed}})
            self._seen[p.id] = seen

    def observe(self, p: Party) -> dict:
        state = self.sim.call_state(p.id)
        seen: dict[str, Any] = {"call": state, "muted": self.sim.muted(p.id)}
        if p.kind == "pstn" or state not in ("connected", "held"):
            return seen
        view = self.sim.recording_view(p.id)
        if not view or view.get("state") == "pending":
            return seen     # none, or a moment between the request and the recorder's answer
        if view.get("state") is None and self.sim.settings.effective(p.line).mode in (ALWAYS, ALWAYS_PAUSE):
            return seen     # the moment between connect and the start of an automatic recording
        devices = {d.split()[0] for d in p.devices}
        seen["indicator"] = self.sim.indicator(p.id)
        if "mpp" in devices:
            seen["softkeys"] = self.sim.softkeys(p.id)
        if "webex-app" in devices:
            seen["menu"] = self.sim.menu_items(p.id)
        seen["recording"] = view.get("state") or "none"
        return seen

    # ----- the file -----------------------------------------------------------------------
    def stop(self) -> None:
        """The person pressed Stop: what they see now is the last thing checked."""
        self._look(self.clock())
        self._last_time = None

    def scenario(self, path: str | Path, name: str | None = None) -> dict:
        org = Path(self.sim.org.source).resolve() if self.sim.org.source else None
        rel = os.path.relpath(org, Path(path).resolve().parent) if org else "ORG FILE HERE"
        if org and rel.count("..") > 2:
            rel = str(org)      # far away: the absolute path reads better
        return {"name": name or Path(path).stem, "org": rel, "steps": list(self.steps)}

    def save(self, path: str | Path, name: str | None = None) -> Path:
        path = Path(path)
        data = self.scenario(path, name)
        head = [f"# Recorded in mppsim on {self.started}: the clicks on the faces and the Control Hub",
                "# changes, with the time between them and what the devices showed before each next action.",
                "# Replay: mppsim run " + path.name]
        head += [f"# note: {n}" for n in dict.fromkeys(self.notes)]
        body = yaml.safe_dump({"name": data["name"], "org": data["org"]}, sort_keys=False)
        steps = yaml.safe_dump({"steps": data["steps"]}, sort_keys=False, default_flow_style=None,
                               allow_unicode=True, width=120)
        path.write_text("\n".join(head) + "\n" + body + steps)
        return path
