"""The recorder of clicks: what a person does on the faces and in Control Hub, written as a
scenario (docs/scenarios.md) that `mppsim run` replays.

Plain Python over a Simulator: the GUI feeds it each intent (ui/action_tap.py) and each settings
change (the store's subscription). Before every action, and at stop, it writes
  - `wait` for the time since the previous action (when it is 0.3 s or more), then
  - `expect` for every line whose observed state changed since the last look: call state, and
    in a call a recording policy runs for, the indicator, the MPP's recording softkeys, the Webex
    App's recording menu items and the call-control recording state,
so the replay checks what the person saw at the moment they acted next, after the same delay.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from recording.settings import SettingsStore

from .simulator import Party, Simulator

MIN_WAIT = 0.3          # shorter gaps are not worth a step
DTMF_MERGE = 1.0        # keypad digits this close together on one line are one dtmf step (*44)
READ_ONLY = ("serviceProvider", "externalGroup", "externalIdentifier")


def settings_diff(before: dict, after: dict) -> dict:
    """The fields of `after` that differ from `before` (nested), read-only ones left out."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        if key in READ_ONLY:
            continue
        old = before.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            sub = settings_diff(old, value)
            if sub:
                out[key] = sub
        elif value != old:
            out[key] = value
    return out


def set_patch(before: dict, after: dict) -> dict:
    """What a `set` step sends to go from `before` to `after` (R-USR-1: off sends only enabled)."""
    if not after.get("enabled", True):
        return {"enabled": False}
    if not before.get("enabled", True):
        return {k: v for k, v in after.items() if k not in READ_ONLY}
    return settings_diff(before, after)


class ScenarioRecorder:
    def __init__(self, sim: Simulator, clock: Callable[[], float] = time.monotonic):
        self.sim = sim
        self.clock = clock
        self.steps: list[dict] = []
        self.notes: list[str] = []        # what happened that the format cannot replay
        self.started = time.strftime("%Y-%m-%d %H:%M")
        self._lines = [p for p in sim.parties if p.kind != "pstn"]
        self._settings = {p.id: sim.settings.get_person(p.id) for p in self._lines}
        self._org_settings = sim.settings.get_org()
        self._seen = {p.id: self.observe(p) for p in sim.parties}
        self._last_time: float | None = None
        self._last_step: dict | None = None
        # the replay starts from the org file: settings already changed in this run come first
        fresh = SettingsStore.from_org(sim.org)
        for p in self._lines:
            patch = set_patch(fresh.get_person(p.id), self._settings[p.id])
            if patch:
                self.steps.append({"set": {self._kind(p): p.id, "callRecording": patch}})
        if any(s["state"] != "ended" for s in sim.calls.values()):
            self.notes.append("calls were up when recording started: the replay does not have them")

    # ----- what the person did ------------------------------------------------------------
    def before_action(self, intent: str = "", args: dict | None = None) -> None:
        """A person is about to act: write what the devices show now (and the time since the last
        action). Called before the intent runs, so its effect is not mistaken for the cause."""
        if not (intent == "dtmf" and self._merges(str((args or {}).get("who")), self.clock())):
            self._look(self.clock())

    def _merges(self, who: str, now: float) -> bool:
        """A keypad digit right after another on the same line: part of the same dtmf step."""
        last = self._last_step
        return (last is not None and "dtmf" in last and last["dtmf"]["who"] == who
                and self._last_time is not None and now - self._last_time < DTMF_MERGE)

    def action(self, intent: str, args: dict) -> None:
        """An intent from a face (ui/action_tap.py) that succeeded: dial, answer, ... press, menu."""
        who = str(args.get("who"))
        now = self.clock()
        last = self._last_step
        if intent == "dtmf" and last is not None and self._merges(who, now):
            last["dtmf"]["digits"] += str(args["digits"])
            self._last_time = now
            return
        if intent == "dial":
            step = {"dial": {"from": who, "to": str(args["to"])}}
        elif intent == "transfer":
            step = {"transfer": {"who": who, "to": str(args["to"])}}
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
        """The settings store committed a change (Control Hub's Save): one `set` per line changed."""
        now = self.clock()
        for p in self._lines:
            after = self.sim.settings.get_person(p.id)
            patch = set_patch(self._settings[p.id], after)
            self._settings[p.id] = after
            if patch:
                self._look(now)
                self._add({"set": {self._kind(p): p.id, "callRecording": patch}}, now)
        org = self.sim.settings.get_org()
        if org != self._org_settings:
            self._org_settings = org
            self.notes.append("organisation or location settings changed: scenarios cannot set "
                              "those, so the replay runs with the org file's")

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
        seen: dict[str, Any] = {"call": state}
        if p.kind == "pstn" or state not in ("connected", "held"):
            return seen
        view = self.sim.recording_view(p.id)
        if not view or view.get("state") == "pending":
            return seen     # none, or a moment between the request and the recorder's answer
        devices = {d.split()[0] for d in p.devices}
        seen["indicator"] = self.sim.indicator(p.id)
        if "mpp" in devices:
            seen["softkeys"] = self.sim.softkeys(p.id)
        if "webex-app" in devices:
            seen["menu"] = self.sim.menu_items(p.id)
        seen["recording"] = view.get("state") or "none"
        return seen

    @staticmethod
    def _kind(p: Party) -> str:
        return "user" if p.kind == "user" else "line"

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
