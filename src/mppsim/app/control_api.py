"""mppsim's own control API under /mppsim/v1 (issue 12): the Simulator over HTTP, for test tools
that are not Python. Documented in docs/openapi.yaml (served at /mppsim/v1/openapi.yaml).

Field names are snake_case like the rest of mppsim (events, scenario reports, the recorder's
`recordings` table); the Webex API beside it (/v1, app/webex_api.py) keeps Webex's camelCase.
Errors use the shared Webex error shape (app/http_server.py): 400 a bad field (named, with the
allowed values), 404 an unknown device / recording / run, 422 a number to call that reaches
nobody, 409 an action the device cannot do in its current state (the Simulator's reason as
message).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from mppsim.rules.policy import MENU, SOFTKEY_ORDER

from .device_view import CALL_SOFTKEYS, device_state, line_state, line_view, mpp_softkeys
from .http_server import HttpError, Request, Response, Router
from .simulator import CALL_STATES, Simulator, SimulatorError

PREFIX = "/mppsim/v1"
OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"   # docs/openapi.yaml links here
SSE_KEEPALIVE = 15.0        # s between comment lines on an idle event stream (proxies, dead peers)
MAX_WAIT = 60.0             # s: the longest a request may block (wait, listen, scenario ?wait)
RECORDING_FIELDS = ("id", "owner", "participants", "started_at", "ended_at", "talk_seconds",
                    "paused_segments", "announcements", "state", "truncated", "provider", "tier",
                    "retention_expires", "dialect", "sip_call_id", "session_id", "recording_call_id",
                    "rate", "metadata_files", "audio_path")


def body_of(req: Request) -> dict:
    data = req.json()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HttpError(400, "body: must be a JSON object")
    return data


def field(body: dict, name: str, kind: type | tuple, required: bool = True, what: str = "") -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise HttpError(400, f"{name}: missing; {what}".rstrip("; "))
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise HttpError(400, f"{name}: {value!r} not allowed; {what}".rstrip("; "))
    if not isinstance(value, kind):
        raise HttpError(400, f"{name}: {value!r} not allowed; {what}".rstrip("; "))
    return value


def seconds(req: Request, body: dict, name: str, default: float) -> float:
    value = body.get(name, req.arg(name))
    if value is None:
        return default
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HttpError(400, f"{name}: {value!r} not allowed; a number of seconds from 0 to {MAX_WAIT:g}") from None
    if not 0 <= v <= MAX_WAIT or isinstance(value, bool):
        raise HttpError(400, f"{name}: {value!r} not allowed; a number of seconds from 0 to {MAX_WAIT:g}")
    return v


class ControlApi:
    def __init__(self, sim: Simulator, server=None):
        self.sim = sim
        self.server = server
        self._store = None
        self._runs: dict[str, dict] = {}
        self._run_lock = threading.Lock()

    # ----- helpers ------------------------------------------------------------------------
    def party(self, device_id: str):
        try:
            return self.sim.party(device_id)
        except SimulatorError as exc:
            raise HttpError(404, str(exc)) from None

    def act(self, fn, *args, **kwargs):
        """Run a Simulator action; its refusal (no call to answer, agent down...) is a 409."""
        try:
            return fn(*args, **kwargs)
        except SimulatorError as exc:
            raise HttpError(409, str(exc)) from None
        except TimeoutError as exc:
            raise HttpError(409, str(exc)) from None

    def reachable(self, to) -> str:
        """A `to` that reaches nobody is a 422 naming the allowed numbers (not a 409: nothing
        about the device's state would make it work)."""
        why = self.sim.unknown_number(str(to))
        if why is not None:
            raise HttpError(422, why)
        return str(to)

    def store(self):
        if self.sim.recorders is None:
            raise HttpError(404, "this simulator runs without the embedded recorder")
        if self._store is None:
            from mppsim.recorder.store import Store
            self._store = Store(self.sim.recorder_store)
        return self._store

    def recording_json(self, req: Request, rec: dict) -> dict:
        out = {k: rec.get(k) for k in RECORDING_FIELDS}
        out["audio_url"] = f"{req.base_url}{PREFIX}/recordings/{rec['id']}/audio"
        out["metadata_urls"] = [f"{req.base_url}{PREFIX}/recordings/{rec['id']}/metadata/{i}"
                                for i in range(1, len(rec.get("metadata_files") or []) + 1)]
        return out

    # ----- the API itself -----------------------------------------------------------------
    def openapi(self, req: Request):
        if not OPENAPI.is_file():
            raise HttpError(404, f"the OpenAPI document is not installed here (looked at {OPENAPI})")
        return Response(200, OPENAPI.read_bytes(), {"Content-Type": "application/yaml"})

    def status(self, req: Request):
        sim = self.sim
        return {"org": sim.org.name, "org_file": str(sim.org.source) if sim.org.source else None,
                "run_dir": str(sim.run_dir), "started": sim.started,
                "agents": dict(sim.agent_status), "agent_pids": sim.agent_pids(),
                "front_door_port": sim.front_door.port if sim.front_door is not None else None,
                "recorder": sim.recorders is not None}

    def devices(self, req: Request):
        kind = req.arg("kind")
        kinds = ("user", "virtual_line", "pstn")
        if kind is not None and kind not in kinds:
            raise HttpError(400, f"kind: {kind!r} not allowed; allowed: {', '.join(kinds)}")
        items = []
        for p in self.sim.parties:
            if kind is None or p.kind == kind:
                items.append({"id": p.id, "kind": p.kind, "name": p.name, "number": p.number,
                              "agent": p.agent, "devices": list(p.devices),
                              "call_state": line_state(self.sim, p.id)})
        return {"devices": items}

    def features(self, req: Request):
        """The hunt groups, call queues and auto attendants, and what they hold now (issue 25)."""
        sim = self.sim
        with sim._cv:
            calls = [c for c in sim.calls.values() if c["state"] != "ended"]
            played = [e for e in sim.events if e["event"] == "feature" and e.get("what") == "played"]
        out = []
        for f in sim.org.features:
            cfg = f.config()
            out.append({"id": f.id, "kind": f.kind, "name": f.name, "extension": f.extension, "number": f.number,
                        "location": f.location, "language": f.language,
                        "policy": f.policy if f.kind != "auto_attendant" else None,
                        "members": [m.extension for m in f.members], "menu": cfg["menu"],
                        "agent_status": sim.agent_status.get(f.id, "unknown"),
                        "calls": [{k: c.get(k) for k in ("call", "state", "direction", "remote", "via")}
                                  for c in calls if c["agent"] == f.id],
                        "prompts": [e["prompt"] for e in played if e["agent"] == f.id][-10:]})
        return {"features": out}

    def device(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        return device_state(self.sim, p.id)

    def dial(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        to = field(body_of(req), "to", (str, int), what="the number or extension to call, e.g. \"1002\"")
        return {"call": self.act(self.sim.dial, p.id, self.reachable(to))}

    def _call_action(self, name: str):
        def handler(req: Request, deviceId: str):
            p = self.party(deviceId)
            call = field(body_of(req), "call", str, required=False, what="a call id from the device's state")
            return {"call": self.act(getattr(self.sim, name), p.id, call)}
        handler.__name__ = name
        return handler

    def transfer(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        body = body_of(req)
        to = self.reachable(field(body, "to", (str, int), what="the number or extension to transfer to"))
        attended = body.get("attended", False)
        if not isinstance(attended, bool):
            raise HttpError(400, f"attended: {attended!r} not allowed; allowed: true, false")
        if not attended:
            return {"call": self.act(self.sim.transfer, p.id, str(to))}
        within = seconds(req, body, "within", 5.0)
        consult = self.act(self.sim.consult, p.id, str(to))
        target = self.sim.party_by_number(str(to))
        if target is not None:   # a simulated target picks up, like the scenario step does
            self.act(self.sim.wait_for, target.id, "ringing", within)
            self.act(self.sim.answer, target.id)
        self.act(self.sim.wait_until, lambda: self.sim.calls.get(consult, {}).get("state") == "connected",
                 within, f"{p.id}'s consult call to {to} to be answered")
        return {"call": self.act(self.sim.complete_transfer, p.id, consult), "consult": consult}

    def dtmf(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        digits = str(field(body_of(req), "digits", (str, int), what="digits 0-9, *, #, A-D"))
        if not digits or any(c not in "0123456789*#ABCDabcd" for c in digits):
            raise HttpError(400, f"digits: {digits!r} not allowed; allowed characters: 0-9 * # A-D")
        return {"call": self.act(self.sim.dtmf, p.id, digits)}

    def softkey(self, req: Request, deviceId: str):
        """Press a softkey the MPP shows now: a recording key or a call-handling key."""
        p = self.party(deviceId)
        key = field(body_of(req), "key", str, what=f"a softkey label, e.g. {', '.join(SOFTKEY_ORDER)}")
        if not any(d.split()[0] == "mpp" for d in p.devices):
            raise HttpError(409, f"{p.id} has no mpp device; it has: {', '.join(p.devices) or 'none'}")
        shown = mpp_softkeys(line_view(self.sim, p.id))    # what the MPP face shows now
        if key not in shown:
            raise HttpError(409, f"key: {key!r} is not shown on {p.id}'s MPP now; shown: {', '.join(shown)}")
        if key in SOFTKEY_ORDER:
            done = self.act(self.sim.press, p.id, key)
            refused = self.sim.network_events(p.id, "recording_refused")
            return {"key": key, "done": done, "refused": None if done else (refused[-1]["why"] if refused else "")}
        if key in CALL_SOFTKEYS:
            return {"key": key, "done": True, "call": self.act(getattr(self.sim, CALL_SOFTKEYS[key]), p.id)}
        raise HttpError(409, f"key: {key!r} needs more input on the phone; use the dial or transfer "
                             f"operation instead")

    def menu(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        item = field(body_of(req), "item", str, what=f"allowed: {', '.join(MENU.values())}")
        if item not in MENU.values():
            raise HttpError(400, f"item: {item!r} not allowed; allowed: {', '.join(MENU.values())}")
        done = self.act(self.sim.menu, p.id, item)
        refused = self.sim.network_events(p.id, "recording_refused")
        return {"item": item, "done": done, "refused": None if done else (refused[-1]["why"] if refused else "")}

    def play(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        body = body_of(req)
        given = [k for k in ("tone", "file", "silence") if body.get(k) not in (None, False)]
        if len(given) != 1:
            raise HttpError(400, "body: give exactly one of tone (Hz), file (a WAV path on this machine) "
                                 "or silence (true)")
        if "tone" in given:
            tone = body["tone"]
            if isinstance(tone, bool) or not isinstance(tone, (int, float)) or not 20 <= tone <= 4000:
                raise HttpError(400, f"tone: {tone!r} not allowed; a frequency in Hz from 20 to 4000")
            return {"source": self.act(self.sim.play, p.id, tone=float(tone))}
        if "file" in given:
            path = field(body, "file", str, what="a WAV file's path on the simulator's machine")
            if not Path(path).is_file():
                raise HttpError(400, f"file: {path} does not exist on the simulator's machine")
            return {"source": self.act(self.sim.play, p.id, file=str(Path(path).resolve()))}
        if body["silence"] is not True:
            raise HttpError(400, f"silence: {body['silence']!r} not allowed; allowed: true")
        return {"source": self.act(self.sim.play, p.id, silence=True)}

    def listen(self, req: Request, deviceId: str):
        p = self.party(deviceId)
        body = body_of(req)
        secs = seconds(req, body, "seconds", 1.0)
        call = field(body, "call", str, required=False, what="a call id")
        return {"heard": self.act(self.sim.listen, p.id, seconds=secs, call=call)}

    def wait(self, req: Request, deviceId: str):
        """Block until the device's call state is `state` (or 409 after `timeout` s)."""
        p = self.party(deviceId)
        body = body_of(req)
        state = field(body, "state", str, what=f"allowed: {', '.join(CALL_STATES)}")
        if state not in CALL_STATES:
            raise HttpError(400, f"state: {state!r} not allowed; allowed: {', '.join(CALL_STATES)}")
        self.act(self.sim.wait_for, p.id, state, seconds(req, body, "timeout", 5.0))
        return device_state(self.sim, p.id)

    def calls(self, req: Request):
        return {"calls": self.sim.call_log()}

    def recordings(self, req: Request):
        who = req.arg("device")
        state = req.arg("state")
        states = ("recording", "complete", "truncated")
        if state is not None and state not in states:
            raise HttpError(400, f"state: {state!r} not allowed; allowed: {', '.join(states)}")
        owner = None
        if who is not None:
            owner = f"sip:{self.party(who).number}@127.0.0.1"
        raw = req.arg("min_count", "0")
        if not raw.isdigit():
            raise HttpError(400, f"min_count: {raw!r} not allowed; a whole number of recordings")
        # min_count + timeout: wait (at most timeout s) until that many match, so a script needs
        # no polling loop after a hang-up; then answer what there is either way
        deadline = time.monotonic() + seconds(req, {}, "timeout", 0.0)
        while True:
            recs = self.store().list(owner=owner, state=state)
            if len(recs) >= int(raw) or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        return {"recordings": [self.recording_json(req, r) for r in recs]}

    def _recording(self, rec_id: str) -> dict:
        rec = self.store().get(rec_id)
        if rec is None:
            raise HttpError(404, f"no recording with id {rec_id}")
        return rec

    def recording(self, req: Request, recordingId: str):
        return self.recording_json(req, self._recording(recordingId))

    def recording_audio(self, req: Request, recordingId: str):
        rec = self._recording(recordingId)
        path = Path(rec["audio_path"])
        if not path.is_file():
            raise HttpError(404, f"recording {recordingId} has no audio file")
        data = path.read_bytes()   # a snapshot: a recording still being written keeps growing
        return Response(200, data, {"Content-Type": "audio/wav",
                                    "Content-Disposition": f'attachment; filename="{recordingId}.wav"'})

    def recording_metadata(self, req: Request, recordingId: str, n: str):
        rec = self._recording(recordingId)
        files = rec.get("metadata_files") or []
        if not n.isdigit() or not 1 <= int(n) <= len(files):
            raise HttpError(404, f"recording {recordingId} has metadata documents 1..{len(files)}, not {n}")
        path = Path(rec["audio_path"]).parent / Path(files[int(n) - 1]).name
        return Response(200, path.read_bytes(), {"Content-Type": "application/rs-metadata+xml"})

    # ----- scenarios ----------------------------------------------------------------------
    def run_scenario(self, req: Request):
        from .scenario import STEP_FIELDS, Runner, Scenario, ScenarioError, Step, check_step, load_scenario
        body = body_of(req)
        wait = req.arg("wait", "false").lower()
        if wait not in ("true", "false"):
            raise HttpError(400, f"wait: {wait!r} not allowed; allowed: true, false")
        if ("path" in body) == ("steps" in body):
            raise HttpError(400, "body: give either path (a scenario file on the simulator's machine) "
                                 "or steps (a list of steps as in docs/scenarios.md)")
        try:
            if "path" in body:
                scenario = load_scenario(field(body, "path", str, what="a scenario file's path"))
            else:
                steps, errors = [], []
                raw = body["steps"]
                if not isinstance(raw, list) or not raw:
                    raise HttpError(400, "steps: must be a non-empty list of steps")
                base = Path.cwd() / "api-scenario.yaml"
                for i, item in enumerate(raw, start=1):
                    if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in STEP_FIELDS:
                        errors.append(f"steps[{i}]: each step is a mapping with one key; allowed: "
                                      f"{', '.join(STEP_FIELDS)}")
                        continue
                    (name, args), = item.items()
                    errors += check_step(f"steps[{i}]", name, args, base)
                    steps.append(Step(i, name, args))
                if errors:
                    raise ScenarioError("(request body)", errors)
                scenario = Scenario(base, Path(""), steps, str(body.get("name", "api")))
        except ScenarioError as exc:
            raise HttpError(400, str(exc), errors=[{"description": e, "errorCode": 40000} for e in exc.errors])
        with self._run_lock:
            if any(r["state"] == "running" for r in self._runs.values()):
                raise HttpError(409, "a scenario is already running on this simulator; wait for it")
            run_id = uuid.uuid4().hex[:12]
            run = self._runs[run_id] = {"id": run_id, "name": scenario.name, "state": "running",
                                         "log": [], "report": None, "done": threading.Event()}

        def work():
            try:
                result = Runner(self.sim, scenario, run["log"].append).run()
                run["report"] = json.loads(json.dumps(result.report(), default=str))
                run["state"] = "passed" if result.passed else "failed"
            except Exception as exc:  # the runner itself broke: say so in the run
                run["state"] = "error"
                run["log"].append(f"error: {type(exc).__name__}: {exc}")
            finally:
                run["done"].set()
        threading.Thread(target=work, name=f"scenario-{run_id}", daemon=True).start()
        if wait == "true":
            run["done"].wait(600)
            return Response(200, self.run_json(req, run))
        return Response(202, self.run_json(req, run), {"Location": f"{PREFIX}/scenario-runs/{run_id}"})

    def run_json(self, req: Request, run: dict) -> dict:
        return {"id": run["id"], "name": run["name"], "state": run["state"], "log": list(run["log"]),
                "report": run["report"], "url": f"{req.base_url}{PREFIX}/scenario-runs/{run['id']}"}

    def scenario_run(self, req: Request, runId: str):
        run = self._runs.get(runId)
        if run is None:
            raise HttpError(404, f"no scenario run with id {runId}")
        return self.run_json(req, run)

    # ----- events (Server-Sent Events) ------------------------------------------------------
    def events(self, req: Request):
        """Every event the agents report, as `id: <n>` / `event: <kind>` / `data: <json>`; n is the
        event's index in this run. ?since=N (or Last-Event-ID) first replays the events after N."""
        since = req.headers.get("last-event-id") or req.arg("since")
        kinds = set(filter(None, (req.arg("kinds") or "").split(",")))
        if since is not None and not str(since).lstrip("-").isdigit():
            raise HttpError(400, f"since: {since!r} not allowed; an event number (the id of an event)")
        sim = self.sim
        wake = threading.Event()

        def on_event(_ev):
            wake.set()
        with sim._cv:       # read the position and subscribe at once: nothing is lost
            pos = max(0, int(since) + 1) if since is not None else len(sim.events)
            sim.subscribe(on_event)
        stopping = self.server.stopping if self.server is not None else threading.Event()

        def frames() -> Iterator[bytes]:
            nonlocal pos
            last = time.monotonic()
            try:
                yield b": mppsim event stream\nretry: 1000\n\n"
                while not stopping.is_set():
                    with sim._cv:
                        new = sim.events[pos:]
                    if new:
                        for i, ev in enumerate(new, start=pos):
                            if not kinds or ev.get("event") in kinds:
                                yield sse(i, ev)
                        pos += len(new)
                        last = time.monotonic()
                        continue
                    if wake.wait(0.5):
                        wake.clear()
                    elif time.monotonic() - last >= SSE_KEEPALIVE:
                        last = time.monotonic()
                        yield b": keep-alive\n\n"
            finally:
                sim.unsubscribe(on_event)
        return Response(200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
                        stream=frames())


def sse(n: int, ev: dict) -> bytes:
    data = json.dumps(ev, default=str)
    return f"id: {n}\nevent: {ev.get('event', 'message')}\ndata: {data}\n\n".encode()


def register(router: Router, sim, server=None) -> ControlApi:
    api = ControlApi(sim, server)
    r = router.add
    r("GET", f"{PREFIX}/openapi.yaml", api.openapi)
    r("GET", f"{PREFIX}/status", api.status)
    r("GET", f"{PREFIX}/devices", api.devices)
    r("GET", f"{PREFIX}/devices/{{deviceId}}", api.device)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/dial", api.dial)
    for name in ("answer", "decline", "hangup", "hold", "resume"):
        r("POST", f"{PREFIX}/devices/{{deviceId}}/{name}", api._call_action(name))
    r("POST", f"{PREFIX}/devices/{{deviceId}}/transfer", api.transfer)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/dtmf", api.dtmf)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/softkey", api.softkey)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/menu", api.menu)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/play", api.play)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/listen", api.listen)
    r("POST", f"{PREFIX}/devices/{{deviceId}}/wait", api.wait)
    r("GET", f"{PREFIX}/calls", api.calls)
    r("GET", f"{PREFIX}/features", api.features)
    r("GET", f"{PREFIX}/recordings", api.recordings)
    r("GET", f"{PREFIX}/recordings/{{recordingId}}", api.recording)
    r("GET", f"{PREFIX}/recordings/{{recordingId}}/audio", api.recording_audio)
    r("GET", f"{PREFIX}/recordings/{{recordingId}}/metadata/{{n}}", api.recording_metadata)
    r("POST", f"{PREFIX}/scenario-runs", api.run_scenario)
    r("GET", f"{PREFIX}/scenario-runs/{{runId}}", api.scenario_run)
    r("GET", f"{PREFIX}/events", api.events)
    return api
