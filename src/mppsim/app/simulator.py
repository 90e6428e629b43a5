"""The Simulator facade: everything the UI can do, from plain Python and pytest.

    with Simulator("examples/demo-org.yaml") as sim:
        sim.play("alice", tone=1000)
        sim.dial("alice", "1002")
        sim.wait_for("bob", "ringing")
        sim.answer("bob")

`who` names a line: a user id (their primary line), "user/line" or a virtual line id, or a PSTN
party's E.164 number. No Qt here; the UI subscribes to events through ui/bridge.py.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mppsim.phone.frontdoor import FrontDoor

from mppsim.rules.citations import cite
from mppsim.rules.settings import SettingsError, SettingsStore

from .network import check_address
from .org import Org, load_org
from .orchestrator import AgentError, Orchestrator
from .recorders import RecorderWorkers, workers_needed, write_provider_info

CALL_STATES = ("idle", "dialing", "ringing", "connected", "held", "ended")


class SimulatorError(RuntimeError):
    def __init__(self, message: str = "") -> None:
        super().__init__(cite(str(message)))


@dataclass(frozen=True)
class Party:
    """A line somebody can be reached on: the unit the UI shows and `who` names."""

    id: str          # user id, virtual line id, or E.164 number
    kind: str        # user | virtual_line | pstn
    agent: str       # agent process that owns the line
    line: str        # line id inside that agent
    name: str
    number: str      # extension or E.164
    devices: tuple[str, ...] = ()   # "mpp 8865", "webex-app" (users and virtual lines)


def parties_of(org: Org) -> list[Party]:
    out = []
    for u in org.users:
        devices = tuple(f"{d.type} {d.model}" if d.model else d.type for d in u.devices)
        out.append(Party(u.id, "user", u.id, u.id, u.name, u.extension, devices))
    for v in org.virtual_lines:
        out.append(Party(v.id, "virtual_line", v.user, v.id, v.name, v.extension, (v.device,)))
    for p in org.pstn:
        out.append(Party(p.number, "pstn", p.number, p.number, p.name, p.number))
    return out


class Simulator:
    def __init__(self, org: Org | str | Path, run_dir: str | Path | None = None,
                 front_door_port: int | None = 0, recorder: bool = True, supervise: bool = True,
                 launcher=None, control_host: str = "127.0.0.1", recorder_target: str | None = None,
                 recorder_store: str | Path | None = None, address: str | None = None,
                 rtp_thread: bool = False, recorder_workers: int = 1):
        """`launcher`, `control_host`: agents on the hosts of a cluster (app/cluster.py);
        `recorder_target` (+ its `recorder_store`, to read recordings back): an SRS that runs
        elsewhere, instead of the embedded recorder. `rtp_thread`: every agent reads RTP on
        pjmedia's own C thread, cheaper in calls and dearer idle (`mppsim load` sets it).
        `recorder_workers`: the embedded recorder's processes (`mppsim-recorder --workers`)."""
        self.org = org if isinstance(org, Org) else load_org(org)
        if address:      # issue 21: --address overrides the org file's network.address
            problem = check_address(address)
            if problem:
                raise SimulatorError(f"--address: {problem}")
            self.org = dataclasses.replace(self.org, network=self.org.network.with_address(address))
        self.address = self.org.network.address
        # Control Hub settings: one store; every change is pushed live to the agents
        self.settings = SettingsStore.from_org(self.org)
        self.orch = Orchestrator(self.org, run_dir, recording_for=self._recording_for,
                                 recorder_for=self._recorder_for, supervise=supervise,
                                 launcher=launcher, control_host=control_host,
                                 compliance_for=self.settings.compliance_at, rtp_thread=rtp_thread)
        self.recorder_target = recorder_target
        self.settings.subscribe(self._push_settings)
        # The embedded recorder (mppsim-recorder's workers): one store under the run folder
        self.recorder_store = Path(recorder_store) if recorder_store else self.orch.run_dir / "recorder"
        recorder = recorder and recorder_target is None
        self._tier: str | None = self.settings.get_org().get("tier")
        self.recorders = (RecorderWorkers(self.recorder_store, workers_needed(len(self.org.users)),
                                          self.orch.ports, self.orch.run_dir / "logs", self._recorder_down,
                                          self._recorder_moved, host=self.address,
                                          rtp_ports=self.org.network.rtp_ports,
                                          processes=recorder_workers)
                          if recorder else None)
        self.run_dir = self.orch.run_dir
        # a folder mppsim made (no run_dir given) is the one remove_run_dir may delete
        self.owns_run_dir = run_dir is None
        self.parties = parties_of(self.org)
        self._by_id = {p.id: p for p in self.parties}
        self._by_number = {p.number: p for p in self.parties}
        self.front_door_port = front_door_port
        self.front_door: FrontDoor | None = None
        self.events: list[dict] = []
        self._subscribers: list[Callable[[dict], None]] = []
        self._cv = threading.Condition()
        self.line_states: dict[tuple[str, str], str] = {}
        self.calls: dict[str, dict] = {}              # call key -> latest call event
        self.last_call: dict[tuple[str, str], str] = {}  # (agent, line) -> newest call key
        self.summaries: dict[str, dict] = {}          # call key -> call_summary event
        self.recording: dict[str, dict] = {}          # call key -> latest recording view
        self.network: dict[str, list[dict]] = {}      # call key -> announcement/recorder events
        self.mutes: dict[str, bool] = {}              # agent -> microphone muted (mute events)
        self.mwi: dict[str, int] = {}                 # line id -> new voicemail messages (mwi events)
        self.agent_status: dict[str, str] = {}        # up | down | restarting (supervisor)
        self.agent_restarts: dict[str, int] = {}      # agent -> restarts by the supervisor
        self.orch.subscribe(self._on_event)
        self.started = False

    # ----- life cycle -------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self.recorders is not None:
            write_provider_info(self.recorder_store, self.settings.get_org())
            self.recorders.start()
        try:
            self.orch.start()
        except Exception:
            if self.recorders is not None:
                self.recorders.stop()
            raise
        for name in self.orch.agents:
            self.agent_status.setdefault(name, "up")
        if self.front_door_port is not None:
            self.front_door = FrontDoor(self.address, self.front_door_port, self.orch.directory).start()
            # an agent restarted on other ports: the front door redirects to where it is now
            self.orch.directory_listeners.append(
                lambda d: self.front_door.update(d) if self.front_door is not None else None)
        self.started = True
        return self

    def stop(self) -> None:
        if self.front_door is not None:
            self.front_door.stop()
            self.front_door = None
        self.orch.stop()
        if self.recorders is not None:
            self.recorders.stop()
        self.started = False

    def remove_run_dir(self) -> bool:
        """After stop: delete the run folder if mppsim made it (a temp folder), so passed runs
        leave nothing behind. A folder the caller named is never deleted. True if removed."""
        import shutil
        if not self.owns_run_dir or self.started:
            return False
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return not self.run_dir.exists()

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- settings -------------------------------------------------------------------------
    def _recording_for(self, agent: str) -> dict[str, dict]:
        """Effective recording settings of an agent's lines (sent at every agent start)."""
        return {p.line: self.settings.effective(p.line).to_dict()
                for p in self.parties if (p.agent == agent or agent == "voicemail") and p.kind != "pstn"}

    def _recorder_for(self, agent: str) -> str | None:
        if self.recorder_target is not None:
            return self.recorder_target
        if self.recorders is None:
            return None
        users = [u.id for u in self.org.users]
        return self.recorders.target_for(users.index(agent) if agent in users else 0)

    def _recorder_down(self, worker, returncode: int) -> None:
        """A recorder worker died: the agents that used it fail their live sessions."""
        self._on_event({"event": "recorder_down", "agent": "", "worker": worker.name,
                        "target": worker.target, "returncode": returncode, "ts": time.time()})
        for name, handle in self.orch.agents.items():
            if handle.spec.kind == "user" and handle.status == "up":
                try:
                    self.orch.request(name, "recorder_down", target=worker.target.split(";")[0])
                except AgentError:
                    pass

    def _recorder_moved(self, worker) -> None:
        """The restarted recorder listens on another port: every agent gets the new target."""
        for name, handle in self.orch.agents.items():
            if handle.spec.kind in ("user", "voicemail") and handle.status == "up":
                try:
                    self.orch.request(name, "set_recorder", target=worker.target)
                except AgentError:
                    pass

    def recordings(self, who: str | None = None) -> list[dict]:
        """Recordings in the embedded recorder's store (all, or those of `who`'s line)."""
        if self.recorders is None and not (self.recorder_store / "index.sqlite").exists():
            return []
        from mppsim.recorder.store import Store
        owner = None
        if who is not None:
            p = self.party(who)
            owner = f"sip:{p.number}@{self.address}"
        return Store(self.recorder_store).list(owner=owner)

    def siprec_sessions(self) -> list[dict]:
        """The agents' own account of their recording sessions (their last `siprec` event each):
        target, state, and the RTP packets sent per stream. With an external SRS this is all
        mppsim knows of what a recording should hold."""
        last: dict[tuple, dict] = {}
        with self._cv:
            for ev in self.events:
                if ev.get("event") == "siprec":
                    last[(ev.get("agent"), ev.get("call"), ev.get("recording"))] = ev
        return list(last.values())

    def voicemails(self, who: str | None = None) -> list[dict]:
        """Messages left in voicemail (all, or in `who`'s mailbox), oldest first."""
        number = self.party(who).number if who is not None else None
        with self._cv:
            return [e for e in self.events if e["event"] == "voicemail_message"
                    and (number is None or e["mailbox"] == number)]

    def kill_recorder(self, worker: str = "w0") -> None:
        self.recorders.kill(worker)

    def restart_recorder(self, worker: str = "w0") -> None:
        self.recorders.restart(worker)

    def _push_settings(self, line_ids) -> None:
        if self.recorders is not None:
            org = self.settings.get_org()
            write_provider_info(self.recorder_store, org)
            if org.get("tier") and org.get("tier") != self._tier:
                # R-PRV-3: a tier change moves the retention of the recordings already made
                from datetime import datetime, timezone
                from mppsim.recorder.store import Store
                if self._tier is not None:
                    Store(self.recorder_store).set_tier(None, org["tier"], datetime.now(timezone.utc))
                self._tier = org["tier"]
        for line_id in line_ids:
            p = self._by_id.get(line_id)
            if p is None or p.kind == "pstn":
                continue
            settings = self.settings.effective(p.line).to_dict()
            # the line's own agent, and the voicemail agent that records its deposits (R-USR-3)
            for agent in (p.agent, "voicemail"):
                if self.agent_status.get(agent) != "up":
                    continue
                try:
                    self.orch.request(agent, "set_recording", line=p.line, settings=settings)
                except AgentError as exc:
                    print(f"mppsim: could not push settings to {agent}: {exc}", file=sys.stderr)
        for f in self.org.features:      # R-CMP-5: their location's compliance announcement
            if self.agent_status.get(f.id) != "up":
                continue
            try:
                self.orch.request(f.id, "set_feature_compliance", compliance=self.settings.compliance_at(f.location))
            except AgentError as exc:
                print(f"mppsim: could not push settings to {f.id}: {exc}", file=sys.stderr)

    def set_call_recording(self, who: str, patch: dict, view: str = "api") -> list[str]:
        """PUT a person's or virtual line's callRecording (Webex API field names); applies to
        calls that start from now on. Raises SimulatorError listing every refused field."""
        p = self.party(who)
        if p.kind == "pstn":
            raise SimulatorError(f"who: {who} is a PSTN party; only users and virtual lines are recorded")
        try:
            return self.settings.put_person(p.id, patch, view=view)
        except SettingsError as exc:
            raise SimulatorError(str(exc)) from exc

    def set_org_recording(self, patch: dict) -> list[str]:
        """Change the organisation's recording settings (the org file's organisation.recording
        keys, as Control Hub's Organisation page does): one atomic change, all or nothing."""
        try:
            return self.settings.set_org(patch)
        except SettingsError as exc:
            raise SimulatorError(str(exc)) from exc

    def set_location_recording(self, location: str, patch: dict) -> list[str]:
        """Change a location's recording settings (locations[].recording keys: provider,
        compliance, failureBehavior), as Control Hub's Locations page does."""
        try:
            return self.settings.set_location(str(location), patch)
        except SettingsError as exc:
            raise SimulatorError(str(exc)) from exc

    def call_recording(self, who: str) -> dict:
        """GET a person's or virtual line's callRecording as the Webex API shows it."""
        return self.settings.get_person(self.party(who).id)

    # ----- events -----------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[dict], None]) -> None:
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[dict], None]) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)

    def _on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        with self._cv:
            self.events.append(ev)
            agent = ev.get("agent", "")
            if kind == "call":
                self.calls[ev["call"]] = ev
                self.last_call[(agent, ev["line"])] = ev["call"]
                view = self.recording.get(ev["call"])
                if ev.get("ended_by") == "crash" and view and view.get("state") in ("pending", "started", "paused"):
                    # its agent died recording it: the recorder closes it (ended_by src-lost)
                    self.recording[ev["call"]] = {**view, "state": "stopped", "lost": True}
            elif kind == "line":
                self.line_states[(agent, ev["line"])] = ev["state"]
            elif kind == "call_summary":
                self.summaries[ev["call"]] = ev
            elif kind == "recording":
                self.recording[ev["call"]] = ev
            elif kind in ("announcement", "recorder", "recording_refused"):
                self.network.setdefault(ev["call"], []).append(ev)
            elif kind == "mwi":
                self.mwi[ev["line"]] = int(ev["new"])
            elif kind == "mute":
                self.mutes[agent] = bool(ev["muted"])
            elif kind == "agent_up":
                self.agent_status[agent] = "up"
                if ev.get("restarted_by") == "supervisor":
                    self.agent_restarts[agent] = int(ev.get("restarts", 1))
            elif kind == "agent_down":
                self.agent_status[agent] = "restarting" if ev.get("restarting") else "down"
                for key in [k for k in self.line_states if k[0] == agent]:
                    self.line_states[key] = "idle"
            self._cv.notify_all()
        for fn in list(self._subscribers):
            fn(ev)

    # ----- who ----------------------------------------------------------------------------
    def party(self, who: str) -> Party:
        who = str(who)
        if "/" in who:
            user, line = who.split("/", 1)
            p = self._by_id.get(line)
            if p is not None and p.agent == user:
                return p
            if line == user and user in self._by_id:
                return self._by_id[user]
            raise SimulatorError(f"who: {who!r}: {user} has no line {line!r}")
        p = self._by_id.get(who) or self._by_number.get(who) or self._by_number.get("+" + who)
        if p is None:
            raise SimulatorError(f"who: {who!r} is not a user, virtual line or PSTN number of "
                                 f"this org; known: {', '.join(self._by_id)}")
        return p

    def party_by_number(self, number: str) -> Party | None:
        return self._by_number.get(number) or self._by_number.get("+" + number)

    def unknown_number(self, to: str) -> str | None:
        """Why `to` reaches nobody (the allowed values), or None when it is an extension or
        number of the org, the mailbox code or a sip: URI: what the agents' dial accepts."""
        target = str(to).strip()
        cleaned = target.replace(" ", "").replace("-", "")
        if (target.startswith(("sip:", "sips:")) or (cleaned == "*86" and self.org.voicemail)
                or self.party_by_number(cleaned) is not None
                or getattr(self.org.resolve(cleaned), "kind", None) == "feature"):   # a hunt group, queue...
            return None
        features = [f.dial for f in self.org.features]
        return (f"to: {to!r} is not a known extension or number; allowed: "
                f"{', '.join([p.number for p in self.parties] + features)}"
                + (", *86 (voicemail)" if self.org.voicemail else "") + " or a sip: URI")

    def _req(self, who: str, cmd: str, **args) -> dict:
        p = self.party(who)
        try:
            return self.orch.request(p.agent, cmd, line=p.line, **args)
        except AgentError as exc:
            raise SimulatorError(str(exc)) from exc

    def _agent_req(self, who: str, cmd: str, **args) -> dict:
        p = self.party(who)
        try:
            return self.orch.request(p.agent, cmd, **args)
        except AgentError as exc:
            raise SimulatorError(str(exc)) from exc

    # ----- actions ----------------------------------------------------------------------------
    def dial(self, who: str, to: str) -> str:
        return self._req(who, "dial", to=str(to))["call"]

    def answer(self, who: str, call: str | None = None) -> str:
        return self._req(who, "answer", call=call)["call"]

    def decline(self, who: str, call: str | None = None) -> str:
        return self._req(who, "decline", call=call)["call"]

    def hangup(self, who: str, call: str | None = None) -> str:
        return self._req(who, "hangup", call=call)["call"]

    def hold(self, who: str, call: str | None = None) -> str:
        return self._req(who, "hold", call=call)["call"]

    def resume(self, who: str, call: str | None = None) -> str:
        return self._req(who, "resume", call=call)["call"]

    def transfer(self, who: str, to: str) -> str:
        """Blind transfer of `who`'s current call to `to`."""
        return self._req(who, "transfer", to=str(to))["call"]

    def consult(self, who: str, to: str) -> str:
        """First half of an attended transfer: hold the current call and call `to`."""
        return self.dial(who, to)

    def start_transfer(self, who: str, to: str) -> str:
        """MPP Transfer + number: hold `who`'s call and open a consult call to `to` on the same
        line; returns the consult call's key (finish with complete_transfer or cancel_transfer)."""
        return self._req(who, "transfer_start", to=str(to))["consult"]

    def cancel_transfer(self, who: str) -> str:
        """Cancel during a consult: the consult call ends and the held call is resumed."""
        return self._req(who, "transfer_cancel")["call"]

    def complete_transfer(self, who: str, consult: str | None = None) -> str:
        """Second half: connect the held party with the consult call's party. After
        start_transfer: attended once the consult call is answered, blind while it rings."""
        p = self.party(who)
        if consult is None:
            try:
                return self._req(who, "transfer_complete")["call"]
            except SimulatorError as exc:
                if "no transfer under way" not in str(exc):
                    raise
            live = [k for k, ev in self.calls.items()
                    if ev["agent"] == p.agent and ev["line"] == p.line and ev["state"] == "connected"]
            if not live:
                raise SimulatorError(f"{who} has no connected consult call to transfer to")
            consult = live[-1]
        return self._req(who, "transfer", consult=consult)["call"]

    def start_conference(self, who: str, to: str) -> str:
        """MPP Conference + number: hold `who`'s call and call `to`; returns the new call's key."""
        return self._req(who, "conference_start", to=str(to))["consult"]

    def merge_conference(self, who: str) -> list[str]:
        """Conference again: the held call and the new one become a three-way conference hosted
        by `who`'s network edge; returns the member call keys."""
        return self._req(who, "conference_merge")["members"]

    def hears_all(self, who: str, freqs: list[float], seconds: float = 0.6) -> dict[str, bool]:
        """Is each frequency present in what `who` hears now? {"1000.0": True, ...}"""
        return self._req(who, "listen", seconds=seconds, freqs=[float(f) for f in freqs]).get("present", {})

    def call_voicemail(self, who: str) -> str:
        """Dial *86 from `who`'s line: their mailbox's spoken menu (then dtmf 1/7/9/#)."""
        return self.dial(who, "*86")

    def feature_prompts(self, who: str) -> list[str]:
        """What hunt groups, call queues and auto attendants played to `who`'s calls, oldest
        first: prompt names (phone/feature_prompts.py), compliance, music, tone, ringback."""
        number = self.party(who).number
        with self._cv:
            return [e["prompt"] for e in self.events if e["event"] == "feature" and e.get("what") == "played"
                    and e.get("caller") in (number, number.lstrip("+"))]

    def messages_waiting(self, who: str) -> int:
        """New voicemail messages in `who`'s mailbox: the MPP lamp / Webex App badge (0 = off)."""
        p = self.party(who)
        with self._cv:
            return self.mwi.get(p.line, 0)

    def mute(self, who: str, on: bool = True) -> bool:
        """Mute (or unmute) `who`'s microphone: the other party and the recording's user
        channel get silence; the recording is not paused. Returns the new state."""
        return self._req(who, "mute", on=bool(on))["muted"]

    def unmute(self, who: str) -> bool:
        return self.mute(who, False)

    def muted(self, who: str) -> bool:
        """True while `who`'s microphone is muted (both faces show it)."""
        with self._cv:
            return self.mutes.get(self.party(who).agent, False)

    def dtmf(self, who: str, digits: str) -> str:
        return self._req(who, "dtmf", digits=str(digits))["call"]

    def play(self, who: str, tone: float | None = None, file: str | None = None,
             silence: bool = False) -> dict:
        return self._agent_req(who, "play", tone=tone, file=file, silence=silence or None)["source"]

    def listen(self, who: str, seconds: float = 1.0, call: str | None = None) -> dict | None:
        """What `who` hears in their current call over the last `seconds` (numpy analysis)."""
        # The agent answers once `seconds` of audio are on file (a young call waits for them)
        p = self.party(who)
        try:
            return self.orch.request(p.agent, "listen", timeout=float(seconds) + 10.0, line=p.line,
                                     seconds=seconds, call=call)["heard"]
        except AgentError as exc:
            raise SimulatorError(str(exc)) from exc

    def set_auto_answer(self, who: str, after: float | None) -> None:
        self._agent_req(who, "set_auto_answer", after=after)
        # in its config too: an agent restarted by the supervisor keeps answering
        self.orch.handle(self.party(who).agent).spec.auto_answer = after

    def press(self, who: str, key: str) -> bool:
        """Press a recording softkey on `who`'s MPP: Record, PauseRec, ResumeRec, StopRec."""
        self._require_device(who, "mpp")
        return self._req(who, "press", key=key)["done"]

    def menu(self, who: str, item: str) -> bool:
        """Pick a recording item under More in `who`'s Webex App call window."""
        self._require_device(who, "webex-app")
        return self._req(who, "menu", item=item)["done"]

    def _require_device(self, who: str, device: str) -> None:
        p = self.party(who)
        if p.kind == "pstn" or not any(d.split()[0] == device for d in p.devices):
            raise SimulatorError(f"who: {who} has no {device} device; it has: {', '.join(p.devices) or 'none'}")

    # ----- recording as the devices show it ----------------------------------------------
    def recording_view(self, who: str, call: str | None = None) -> dict | None:
        """The recording view (state, indicator, message, per-device softkeys and menu) of the
        call `call` (default: the newest call on `who`'s line), or None when no policy runs for it."""
        ev = self.calls.get(call) if call else self.current_call(who)
        with self._cv:
            return self.recording.get(ev["call"]) if ev else None

    def recording_state(self, who: str, call: str | None = None) -> str | None:
        view = self.recording_view(who, call)
        return view["state"] if view else None

    def indicator(self, who: str, device: str | None = None, call: str | None = None) -> str:
        """R-UX-1: 'recording', 'paused' or 'none' on the device (default: the line's first),
        for `call` (default: the newest call on the line)."""
        view = self.recording_view(who, call)
        call = self.calls.get(call) if call else self.current_call(who)
        if not view or not call or call["state"] == "ended":
            return "none"
        devices = view["devices"]
        dev = devices.get(device) if device else next(iter(devices.values()), None)
        return dev["indicator"] if dev else "none"

    def softkeys(self, who: str, call: str | None = None) -> list[str]:
        """R-UX-3: the recording softkeys `who`'s MPP shows now (for `call`, default the newest)."""
        view = self.recording_view(who, call)
        return list(view["devices"].get("mpp", {}).get("softkeys", [])) if view else []

    def menu_items(self, who: str, call: str | None = None) -> list[str]:
        """R-UX-4: the recording items under More in `who`'s Webex App now (for `call`)."""
        view = self.recording_view(who, call)
        return list(view["devices"].get("webex-app", {}).get("menu", [])) if view else []

    def network_events(self, who: str, kind: str | None = None) -> list[dict]:
        """Announcements, recorder actions and refusals of `who`'s newest call."""
        call = self.current_call(who)
        with self._cv:
            events = list(self.network.get(call["call"], [])) if call else []
        return [e for e in events if kind is None or e["event"] == kind]

    # ----- state ------------------------------------------------------------------------------
    def line_state(self, who: str) -> str:
        p = self.party(who)
        with self._cv:
            return self.line_states.get((p.agent, p.line), "idle")

    def current_call(self, who: str) -> dict | None:
        """The call `who` is in (the connected one), else the newest live call on the line, else
        the last one reported (just ended), as last reported."""
        p = self.party(who)
        with self._cv:
            key = self.last_call.get((p.agent, p.line))
            ev = self.calls.get(key) if key else None
            # Two live calls (call waiting, consult, a transfer's old and new legs): the current
            # one is the call the user is in, else the newest live one.
            live = [e for e in self.calls.values()
                    if e["agent"] == p.agent and e["line"] == p.line and e["state"] != "ended"]
            connected = [e for e in live if e["state"] == "connected"]
            hosts = [e for e in connected if e.get("conference") == e["call"]]
            if hosts:
                return hosts[-1]      # a conference: its first call holds the recording
            if connected:
                return connected[-1]
            if live and (ev is None or ev["state"] == "ended" or len(live) > 1):
                return live[-1]
            return ev

    def live_calls(self, who: str) -> list[dict]:
        """Every live call on `who`'s line, oldest first (call waiting, consult: two)."""
        p = self.party(who)
        with self._cv:
            return [ev for ev in self.calls.values()
                    if ev["agent"] == p.agent and ev["line"] == p.line and ev["state"] != "ended"]

    def waiting_call(self, who: str) -> dict | None:
        """The call ringing as a waiting call on `who`'s line (call waiting), if any."""
        return next((ev for ev in self.live_calls(who) if ev.get("waiting") and ev["state"] == "ringing"), None)

    def call_state(self, who: str) -> str:
        """State of the newest call on the line: dialing/ringing/connected/held/ended, or idle."""
        p = self.party(who)
        with self._cv:
            live = [ev for ev in self.calls.values()
                    if ev["agent"] == p.agent and ev["line"] == p.line and ev["state"] != "ended"]
            if live:
                order = ("connected", "held", "ringing", "dialing")
                return min((ev["state"] for ev in live), key=order.index)
            key = self.last_call.get((p.agent, p.line))
            return self.calls[key]["state"] if key else "idle"

    def wait_for(self, who: str, state: str, timeout: float = 5.0) -> None:
        """Wait until `who`'s call state (see call_state) is `state`; raise TimeoutError if not."""
        if state not in CALL_STATES:
            raise SimulatorError(f"state: {state!r} not allowed; allowed: {', '.join(CALL_STATES)}")
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                now = self.call_state(who)
                if now == state:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{who}: call is {now}, not {state}, after {timeout:g} s")
                self._cv.wait(left)

    def wait_calls_ended(self, timeout: float = 5.0) -> None:
        """Wait until every call has ended on all its legs, so call_log() has each call's final
        summary (talk time, what each side heard): a hangup returns before the far end's BYE."""
        self.wait_until(lambda: all(c["state"] == "ended" for c in self.call_log()), timeout,
                        "every call to end")

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or predicate}")
                self._cv.wait(left)

    # ----- agents -----------------------------------------------------------------------------
    def agent_of(self, who: str) -> str:
        return self.party(who).agent

    def kill_agent(self, name: str) -> None:
        self.orch.kill(name)

    def restart_agent(self, name: str) -> None:
        try:
            self.orch.restart(name)
        except AgentError as exc:
            raise SimulatorError(str(exc)) from exc

    def agent_pids(self) -> dict[str, int | None]:
        return {n: h.pid for n, h in self.orch.agents.items()}

    def status(self, who: str) -> dict:
        return self._agent_req(who, "status")

    # ----- call log ---------------------------------------------------------------------------
    def call_log(self) -> list[dict[str, Any]]:
        """Every call of the run, both legs merged by SIP Call-ID (the report's 'calls')."""
        with self._cv:
            finals = {**{k: v for k, v in self.calls.items()}, **self.summaries}
        groups: dict[str, list[dict]] = {}
        for ev in finals.values():
            groups.setdefault(ev.get("sip_call_id") or ev["call"], []).append(ev)
        out = [self._merge(cid, legs) for cid, legs in groups.items()]
        return sorted(out, key=lambda c: c["start"] or 0)

    def _describe_party(self, agent: str | None, line: str | None, remote: dict | None = None) -> dict:
        if agent is not None:
            p = next((p for p in self.parties if p.agent == agent and p.line == line), None)
            if p is not None:
                return {"id": p.id, "kind": p.kind, "name": p.name, "number": p.number}
            if agent == "voicemail":      # the mailbox service (a retrieval call, *86)
                return {"id": "voicemail", "kind": "voicemail", "name": "Voicemail", "number": ""}
            if agent in {f.id for f in self.org.features}:    # a hunt group, queue, attendant
                f = self.org.feature(agent)
                return {"id": f.id, "kind": f.kind, "name": f.name, "number": f.dial}
        remote = remote or {}
        user = remote.get("user", "")
        p = self.party_by_number(user)
        if p is not None:
            return {"id": p.id, "kind": p.kind, "name": p.name, "number": p.number}
        return {"id": None, "kind": "external", "name": remote.get("name") or user, "number": user,
                "uri": remote.get("uri", "")}

    def _merge(self, sip_call_id: str, legs: list[dict]) -> dict[str, Any]:
        out_leg = next((l for l in legs if l["direction"] == "out"), None)
        in_leg = next((l for l in legs if l["direction"] == "in"), None)
        if out_leg is not None:
            caller = self._describe_party(out_leg["agent"], out_leg["line"])
        else:
            caller = self._describe_party(None, None, in_leg["remote"])
        if in_leg is not None:
            callee = self._describe_party(in_leg["agent"], in_leg["line"])
        else:
            callee = self._describe_party(None, None, out_leg["remote"])
        connects = [l["connected_at"] for l in legs if l.get("connected_at")]
        ends = [l["ended_at"] for l in legs if l.get("ended_at")]
        answered = bool(connects)
        talk = None
        if answered and ends:
            talk = round(max(0.0, min(ends) - max(connects)), 3)
        return {
            "sip_call_id": sip_call_id,
            "type": call_type(caller["kind"], callee["kind"]),
            "from": caller, "to": callee,
            "answered": answered,
            "talk_time": talk,
            "start": min(l["created"] for l in legs),
            "end": min(ends) if ends else None,
            "state": "ended" if all(l["state"] == "ended" for l in legs) else "live",
            "reason": next((l["reason"] for l in legs if l.get("reason")), None),
            "legs": {
                l["agent"]: {
                    "recording": self._recording_summary(l["call"]),
                    "call": l["call"], "line": l["line"], "direction": l["direction"],
                    "heard": l.get("heard"), "dtmf_received": l.get("dtmf", ""),
                    "capture_file": l.get("capture_file"), "related": l.get("related"),
                    "reason": l.get("reason"), "ended_by": l.get("ended_by"),
                } for l in legs
            },
        }

    def _recording_summary(self, key: str) -> dict | None:
        """What the network did about recording on one leg: for the report."""
        with self._cv:
            view = self.recording.get(key)
            events = list(self.network.get(key, []))
        if view is None:
            return None
        return {
            "state": view["state"],
            "recordings": len([e for e in events if e["event"] == "recorder" and e["op"] == "start"]),
            "recorder": [{"op": e["op"], "recording": e["recording"], **e.get("detail", {})}
                         for e in events if e["event"] == "recorder"],
            "announcements": [{"kind": e["kind"], "to": e["to"], "language": e["language"]}
                              for e in events if e["event"] == "announcement"],
            "refused": [e["why"] for e in events if e["event"] == "recording_refused"],
        }


def call_type(caller_kind: str, callee_kind: str) -> str:
    """internal | pstn-in | pstn-out | external-in | external-out | voicemail (docs/scenarios.md)."""
    inside = ("user", "virtual_line")
    if caller_kind in inside and callee_kind in inside:
        return "internal"
    if caller_kind == "pstn" and callee_kind in inside:
        return "pstn-in"
    if caller_kind in inside and callee_kind == "pstn":
        return "pstn-out"
    if callee_kind == "voicemail":
        return "voicemail"            # a user listening to their mailbox
    if caller_kind == "external":
        return "external-in"
    if callee_kind == "external":
        return "external-out"
    return f"{caller_kind}-{callee_kind}"
