"""Scenario files: a YAML list of steps run against a Simulator (format in docs/scenarios.md).

The whole file is checked before anything starts; every error names the step and the field.
A run stops at the first failed step; the report says which step failed and why, lists every
call with its parties, type, talk time and what each side heard.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from mppsim.phone.feature_prompts import PROMPTS as FEATURE_PROMPTS
from mppsim.rules.citations import cite
from mppsim.recorder.session import NO_AUDIO
from mppsim.rules.policy import MENU, SOFTKEY_ORDER

from .simulator import CALL_STATES, Simulator, SimulatorError

INDICATORS = ("recording", "paused", "none")
# what a hunt group, call queue or auto attendant plays to a caller (expect: prompt; issue 25)
FEATURE_SOUNDS = (*FEATURE_PROMPTS, "compliance", "music", "tone", "ringback")
# R-UX-6 states, and "none" for a call nothing records
RECORDING_STATES = ("none", "pending", "started", "paused", "stopped", "failed")

DEFAULT_WITHIN = 2.0
FREQ_TOLERANCE = 0.02  # a heard tone matches when within 2 %


class ScenarioError(ValueError):
    def __init__(self, source: str, errors: list[str]):
        self.errors = errors
        super().__init__(cite(f"invalid scenario {source}:\n" + "\n".join(f"  - {e}" for e in errors), "\n  "))


class StepFailed(AssertionError):
    pass


class Stopped(Exception):
    """The run was stopped from outside (the GUI's Stop) in the middle of a step."""


def parse_duration(value: Any) -> float:
    """2, 2.5, "2s", "500ms", "1.5 s" -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("negative")
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*", str(value))
    if not m:
        raise ValueError("not a duration")
    n = float(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n


# step name -> (required fields, optional fields); "wait" takes a scalar
STEP_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "play": ({"who"}, {"tone", "file", "silence"}),
    "dial": ({"from", "to"}, set()),
    "expect": ({"who"}, {"call", "line", "hears", "dtmf", "within", "indicator", "softkeys", "menu",
                         "recording", "device", "recordings", "waiting", "messages", "muted",
                         "recorded_audio", "prompt"}),
    "press": ({"who", "key"}, {"within"}),          # within: wait that long for the key to be offered
    # user/line + callRecording; org: true + recording; location + recording (the org file's blocks)
    "set": (set(), {"user", "line", "callRecording", "org", "location", "recording"}),
    "menu": ({"who", "item"}, {"within"}),
    "answer": ({"who"}, set()),
    "decline": ({"who"}, set()),
    "hangup": ({"who"}, set()),
    "hold": ({"who"}, set()),
    "resume": ({"who"}, set()),
    "transfer": ({"who", "to"}, {"attended", "within"}),
    "consult": ({"who", "to"}, set()),               # MPP Transfer + number: hold, consult call
    "complete_transfer": ({"who"}, set()),           # Transfer again (attended / blind after consult)
    "cancel_transfer": ({"who"}, set()),             # Cancel: consult ends, held call resumes
    "conference": ({"who", "to"}, {"within"}),      # Conference, dial, the party answers, Conference again
    "start_conference": ({"who", "to"}, set()),      # the conference in a person's steps: Conference + number
    "merge_conference": ({"who"}, set()),            # ... and Conference again once the party answered
    "mute": ({"who"}, set()),                        # microphone muted: far end + recording's user channel silent
    "unmute": ({"who"}, set()),
    "dtmf": ({"who", "digits"}, set()),
    "auto_answer": ({"who"}, {"after"}),
    "wait": (set(), set()),
    "say": (set(), set()),     # a caption for a demo audience: a scalar text
}


@dataclass
class Step:
    index: int          # 1-based, as people count
    name: str
    args: Any

    def label(self) -> str:
        return f"step {self.index} ({self.name})"


@dataclass
class Scenario:
    source: Path
    org: Path
    steps: list[Step]
    name: str = ""


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read {path.expanduser().resolve()}: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(str(path), [f"not valid YAML: {exc}"]) from exc
    return parse_scenario(data, path)


def org_location_ids(org_path: Path | None) -> list[str] | None:
    """The location ids of the org file (for `set: {location: ...}`), None when unreadable (the
    org's own errors are reported when it loads)."""
    try:
        data = yaml.safe_load(org_path.read_text()) if org_path else None
        return [str(loc["id"]) for loc in data["locations"]]
    except Exception:
        return None


def parse_scenario(data: Any, path: Path, known_who: Callable[[str], bool] | None = None) -> Scenario:
    errors: list[str] = []
    if not isinstance(data, dict):
        raise ScenarioError(str(path), ["the file must be a mapping with keys org and steps"])
    for key in data:
        if key not in ("org", "steps", "name"):
            errors.append(f"{key}: unknown key; allowed: name, org, steps")
    org = data.get("org")
    org_path = None
    if not isinstance(org, str) or not org:
        errors.append("org: missing; give the org file's path, relative to this file")
    else:
        org_path = (path.parent / org).resolve()
        if not org_path.is_file():
            errors.append(f"org: {org} does not exist (looked at {org_path})")
    raw_steps = data.get("steps")
    steps: list[Step] = []
    if not isinstance(raw_steps, list) or not raw_steps:
        errors.append("steps: missing or empty; a list of steps such as - dial: {from: alice, to: '1002'}")
        raw_steps = []
    for i, raw in enumerate(raw_steps, start=1):
        where = f"steps[{i}]"
        if not isinstance(raw, dict) or len(raw) != 1:
            errors.append(f"{where}: each step is a mapping with one key; allowed: {', '.join(STEP_FIELDS)}")
            continue
        (name, args), = raw.items()
        if name not in STEP_FIELDS:
            errors.append(f"{where}: unknown step {name!r}; allowed: {', '.join(STEP_FIELDS)}")
            continue
        errors.extend(check_step(where, name, args, path))
        if name == "set" and isinstance(args, dict) and "location" in args:
            locations = org_location_ids(org_path)
            if locations is not None and str(args["location"]) not in locations:
                errors.append(f"{where}.set.location: {args['location']!r} is not a location of the org; "
                              f"allowed: {', '.join(locations)}")
        steps.append(Step(i, name, args))
    if org_path is not None and not errors:
        errors.extend(check_against_org(steps, org_path))
    if errors:
        raise ScenarioError(str(path), errors)
    assert org_path is not None
    return Scenario(path, org_path, steps, str(data.get("name", path.stem)))


# steps whose `to` is a number to reach (a party of the org, a sip: URI or the mailbox code)
DIALLED_STEPS = ("dial", "transfer", "consult", "conference", "start_conference")
MAILBOX_CODE = "*86"


def check_against_org(steps: list[Step], org_path: Path) -> list[str]:
    """The names a step uses must exist in the scenario's org: a misspelt party (`who: alcie`),
    a number nobody has, a softkey on a user without an MPP. Found here, the run exits 2 before
    any agent starts instead of failing half-way as if the product were wrong. An org that does
    not load is reported by the run itself (also before anything starts)."""
    from mppsim.app.org import OrgError, load_org
    from mppsim.app.simulator import parties_of
    try:
        org = load_org(org_path)
    except OrgError:
        return []
    parties = {p.id: p for p in parties_of(org)}
    by_number = {p.number: p for p in parties.values()}
    errors: list[str] = []

    def party(value: Any):
        who = str(value)
        if "/" in who:
            user, line = who.split("/", 1)
            p = parties.get(line)
            if p is not None and p.agent == user and p.kind != "pstn":
                return p
            return parties.get(user) if line == user else None
        return parties.get(who) or by_number.get(who) or by_number.get("+" + who)

    names = ", ".join(p.id for p in parties.values() if p.kind != "pstn")
    numbers = ", ".join(p.number for p in parties.values())
    for step in steps:
        a = step.args
        if not isinstance(a, dict):
            continue
        where = f"steps[{step.index}].{step.name}"
        for key in ("who", "from", "user", "line"):
            if key not in a:
                continue
            found = party(a[key])
            if step.name == "set" and (found is None or found.kind == "pstn"):   # settings are a line's
                errors.append(f"{where}.{key}: {a[key]!r} is not a user or virtual line of the org "
                              f"{org_path.name}; allowed: {names}")
            elif found is None:
                errors.append(f"{where}.{key}: {a[key]!r} is not a user, line or PSTN number of the org "
                              f"{org_path.name}; allowed: {names}, or a PSTN number ({', '.join(p.number for p in org.pstn) or 'none'})")
        if step.name in DIALLED_STEPS and "to" in a:
            to = str(a["to"]).strip()
            cleaned = to.replace(" ", "").replace("-", "")
            reachable = (to.startswith(("sip:", "sips:")) or (cleaned == MAILBOX_CODE and org.voicemail)
                         or org.resolve(cleaned) is not None)
            if not reachable:
                errors.append(f"{where}.to: {a['to']!r} is not a number of the org {org_path.name}; "
                              f"allowed: {numbers}" + (f", {MAILBOX_CODE} (voicemail)" if org.voicemail else "")
                              + " or a sip: URI")
        p = party(a["who"]) if "who" in a else None
        if p is None:
            continue
        devices = {d.split()[0] for d in p.devices}
        needs = [("press", "mpp", "key"), ("menu", "webex-app", "item")]
        for step_name, device, key in needs:
            if step.name == step_name and device not in devices:
                errors.append(f"{where}.{key}: {a.get(key)!r}: {a['who']} has no {device} "
                              f"(devices: {', '.join(sorted(devices)) or 'none'})")
        if step.name == "expect":
            for key, device in (("softkeys", "mpp"), ("menu", "webex-app")):
                if key in a and device not in devices:
                    errors.append(f"{where}.{key}: {a['who']} has no {device} "
                                  f"(devices: {', '.join(sorted(devices)) or 'none'})")
            if "device" in a and a["device"] not in devices:
                errors.append(f"{where}.device: {a['device']!r} not allowed; allowed: "
                              f"{', '.join(sorted(devices)) or 'none'} ({a['who']}'s devices)")
    return errors


def check_step(where: str, name: str, args: Any, path: Path) -> list[str]:
    errs: list[str] = []
    if name == "say":
        if not isinstance(args, (str, int, float)) or isinstance(args, bool) or not str(args).strip():
            errs.append(f"{where}.say: {args!r} not allowed; give the caption text, e.g. say: \"Alice calls Bob\"")
        return errs
    if name == "wait":
        try:
            parse_duration(args)
        except ValueError:
            errs.append(f"{where}.wait: {args!r} is not a duration; e.g. 2s, 500ms, 1.5")
        return errs
    if not isinstance(args, dict):
        return [f"{where}.{name}: expected a mapping with {', '.join(sorted(STEP_FIELDS[name][0]))}"]
    required, optional = STEP_FIELDS[name]
    for key in sorted(required - set(args)):
        errs.append(f"{where}.{name}.{key}: missing; required")
    for key in sorted(set(args) - required - optional):
        errs.append(f"{where}.{name}.{key}: unknown field; allowed: {', '.join(sorted(required | optional))}")
    for key in ("within", "after"):
        if key in args:
            try:
                parse_duration(args[key])
            except ValueError:
                errs.append(f"{where}.{name}.{key}: {args[key]!r} is not a duration; e.g. 2s, 500ms")
    if name == "play":
        given = [k for k in ("tone", "file", "silence") if k in args]
        if len(given) != 1:
            errs.append(f"{where}.play: give exactly one of tone (Hz), file (WAV path) or silence: true")
        if "tone" in args and (not isinstance(args["tone"], (int, float)) or not 50 <= args["tone"] <= 3800):
            errs.append(f"{where}.play.tone: {args['tone']!r} not allowed; allowed: 50-3800 (Hz)")
        if "file" in args and not (path.parent / str(args["file"])).is_file():
            errs.append(f"{where}.play.file: {args['file']} does not exist (looked at "
                        f"{(path.parent / str(args['file'])).resolve()}; relative to the scenario file)")
    if name == "expect":
        checks = [k for k in ("call", "line", "hears", "dtmf", "indicator", "softkeys", "menu", "recording",
                              "recordings", "waiting", "messages", "muted", "recorded_audio", "prompt") if k in args]
        if "recorded_audio" in args and not isinstance(args["recorded_audio"], bool):
            errs.append(f"{where}.expect.recorded_audio: {args['recorded_audio']!r} not allowed; allowed: "
                        "true (the newest finished recording got audio on every stream), false (marked no audio)")
        if "prompt" in args and args["prompt"] not in FEATURE_SOUNDS:
            errs.append(f"{where}.expect.prompt: {args['prompt']!r} not allowed; allowed: {', '.join(FEATURE_SOUNDS)}")
        if "messages" in args and (not isinstance(args["messages"], int) or isinstance(args["messages"], bool)
                                   or args["messages"] < 0):
            errs.append(f"{where}.expect.messages: {args['messages']!r} not allowed; allowed: a count, 0 or more")
        if "muted" in args and not isinstance(args["muted"], bool):
            errs.append(f"{where}.expect.muted: {args['muted']!r} not allowed; allowed: true, false")
        if "waiting" in args and not isinstance(args["waiting"], bool):
            errs.append(f"{where}.expect.waiting: {args['waiting']!r} not allowed; allowed: true, false")
        if "recordings" in args and (not isinstance(args["recordings"], int) or args["recordings"] < 0):
            errs.append(f"{where}.expect.recordings: {args['recordings']!r} not allowed; allowed: a count, 0 or more")
        if not checks:
            errs.append(f"{where}.expect: give at least one of call, line, hears, dtmf, indicator, "
                        "softkeys, menu, recording, recordings, waiting, messages, muted, recorded_audio, prompt")
        if "indicator" in args and args["indicator"] not in INDICATORS:
            errs.append(f"{where}.expect.indicator: {args['indicator']!r} not allowed; allowed: {', '.join(INDICATORS)}")
        for key, allowed in (("softkeys", SOFTKEY_ORDER), ("menu", tuple(MENU.values()))):
            if key in args:
                if not isinstance(args[key], list):
                    errs.append(f"{where}.expect.{key}: give a list, e.g. [] or [{allowed[1]}]")
                else:
                    for item in args[key]:
                        if item not in allowed:
                            errs.append(f"{where}.expect.{key}: {item!r} not allowed; allowed: {', '.join(allowed)}")
        for key in ("call", "line"):
            if key in args and args[key] not in CALL_STATES:
                errs.append(f"{where}.expect.{key}: {args[key]!r} not allowed; allowed: {', '.join(CALL_STATES)}")
        def is_freq(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        if "hears" in args and args["hears"] != "silence" and not is_freq(args["hears"]) and not (
                isinstance(args["hears"], list) and args["hears"] and all(is_freq(v) for v in args["hears"])):
            errs.append(f"{where}.expect.hears: {args['hears']!r} not allowed; allowed: a frequency in Hz, "
                        "a list of frequencies (all must be heard) or silence")
        if "recording" in args and args["recording"] not in RECORDING_STATES:
            errs.append(f"{where}.expect.recording: {args['recording']!r} not allowed; "
                        f"allowed: {', '.join(RECORDING_STATES)}")
    if name == "set":
        errs += check_set(where, args)
    if name == "press" and "key" in args and args["key"] not in SOFTKEY_ORDER:
        errs.append(f"{where}.press.key: {args['key']!r} not allowed; allowed: {', '.join(SOFTKEY_ORDER)}")
    if name == "menu" and "item" in args and args["item"] not in MENU.values():
        errs.append(f"{where}.menu.item: {args['item']!r} not allowed; allowed: {', '.join(MENU.values())}")
    if name == "dtmf" and "digits" in args and not re.fullmatch(r"[0-9*#A-Da-d]+", str(args["digits"])):
        errs.append(f"{where}.dtmf.digits: {args['digits']!r} not allowed; allowed: 0-9 * # A-D")
    if name == "transfer" and "attended" in args and not isinstance(args["attended"], bool):
        errs.append(f"{where}.transfer.attended: {args['attended']!r} not allowed; allowed: true, false")
    return errs


def check_set(where: str, args: dict) -> list[str]:
    """`set` names one level: a user or virtual line (callRecording, Webex API names), the
    organisation (org: true) or a location (recording: the org file's blocks, docs/org-file.md)."""
    from mppsim.rules.settings import check_location_block, check_org_block
    levels = [k for k in ("user", "line", "org", "location") if k in args]
    if len(levels) != 1:
        return [f"{where}.set: give exactly one of user, line, org (true) or location"
                + (f"; got {', '.join(levels)}" if levels else "")]
    level = levels[0]
    if level in ("user", "line"):
        if "recording" in args:
            return [f"{where}.set.recording: not allowed with {level}; a {level}'s settings go under "
                    "callRecording (Webex API field names)"]
        if not isinstance(args.get("callRecording"), dict):
            return [f"{where}.set.callRecording: missing; a mapping with Webex API field names, "
                    "e.g. {enabled: true, record: Always}"]
        return []
    errs: list[str] = []
    if level == "org" and args["org"] is not True:
        errs.append(f"{where}.set.org: {args['org']!r} not allowed; allowed: true")
    if "callRecording" in args:
        errs.append(f"{where}.set.callRecording: not allowed with {level}; the {level}'s settings go under "
                    "recording (the org file's " + ("organisation.recording" if level == "org"
                                                    else "locations[].recording") + " keys)")
    block = args.get("recording")
    if not isinstance(block, dict) or not block:
        example = "{provider: Imagicle}" if level == "org" else "{provider: organisation}"
        errs.append(f"{where}.set.recording: missing; a mapping with the org file's keys, e.g. {example}")
    elif level == "org":
        errs += check_org_block(block, f"{where}.set.recording")
    else:
        errs += check_location_block(block, f"{where}.set.recording")
    return errs


@dataclass
class StepResult:
    index: int
    step: str
    args: Any
    status: str = "skipped"  # passed | failed | skipped (and "running" while it runs)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class RunResult:
    scenario: Scenario
    steps: list[StepResult]
    calls: list[dict] = field(default_factory=list)
    recordings: list[dict] = field(default_factory=list)
    run_dir: str = ""
    seconds: float = 0.0
    recording_failures: list[dict] = field(default_factory=list)
    interrupted: bool = False     # Ctrl-C or SIGTERM ended the run; the steps after it are skipped
    run_dir_removed: bool = False  # a passed run's temp folder, deleted (mppsim run without --keep)
    siprec: list[dict] = field(default_factory=list)   # the agents' side: target, sent packets

    @property
    def passed(self) -> bool:
        return all(s.status == "passed" for s in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def without_audio(self) -> list[dict]:
        """Recordings marked no audio by the recorder (issue 21)."""
        return [r for r in self.recordings if (r.get("suspect_reason") or "").startswith(NO_AUDIO)]

    def report(self) -> dict[str, Any]:
        return {
            "scenario": str(self.scenario.source), "name": self.scenario.name,
            "org": str(self.scenario.org), "passed": self.passed,
            "seconds": round(self.seconds, 3), "run_dir": self.run_dir,
            "run_dir_removed": self.run_dir_removed, "interrupted": self.interrupted,
            "steps": [vars(s) for s in self.steps],
            "calls": self.calls,
            "recordings": self.recordings,
            "recording_failures": self.recording_failures,
            "siprec": self.siprec,
        }


class Runner:
    """Runs a scenario's steps against a Simulator: all at once (`run`), or one at a time
    (`step` ... `finish`) for a player such as the GUI's, which shows each step's state.

    on_step(result) is called when a step starts (status "running") and when it ends;
    on_say(text) for a `say` step (a caption; nothing else happens). `speed` divides every
    `wait`; `stop()` (any thread) ends a `wait` or an `expect` at once and the run after it.
    """

    def __init__(self, sim: Simulator, scenario: Scenario, echo: Callable[[str], None] | None = None,
                 on_step: Callable[[StepResult], None] | None = None,
                 on_say: Callable[[str], None] | None = None):
        self.sim = sim
        self.scenario = scenario
        self.echo = echo or (lambda _line: None)
        self.on_step = on_step or (lambda _result: None)
        self.on_say = on_say or (lambda _text: None)
        self.speed = 1.0
        self.stopped = threading.Event()
        self.results = [StepResult(s.index, s.name, s.args) for s in scenario.steps]
        self.position = 0          # index of the next step to run
        self._t0: float | None = None

    @property
    def done(self) -> bool:
        """No step left to run: all ran, one failed, or the run was stopped."""
        return (self.position >= len(self.results) or self.stopped.is_set()
                or any(r.status == "failed" for r in self.results))

    def stop(self) -> None:
        self.stopped.set()

    def step(self) -> StepResult | None:
        """Run the next step; its result, or None when the run is done."""
        if self.done:
            return None
        if self._t0 is None:
            self._t0 = time.monotonic()
        step, result = self.scenario.steps[self.position], self.results[self.position]
        self.position += 1
        start = time.monotonic()
        result.status, result.error = "running", None
        self.on_step(result)
        try:
            getattr(self, f"do_{step.name}")(step.args)
            result.status = "passed"
        except Stopped:
            result.status, result.error = "skipped", "stopped"
        except (StepFailed, SimulatorError, TimeoutError) as exc:
            result.status = "failed"
            result.error = str(exc)
        result.seconds = round(time.monotonic() - start, 3)
        if result.status != "skipped":
            mark = "ok  " if result.status == "passed" else "FAIL"
            self.echo(f"{mark} {step.index:>3} {step.name} {json.dumps(step.args)}"
                      + (f"\n         -> {result.error}" if result.error else ""))
        self.on_step(result)
        return result

    def run(self) -> RunResult:
        while self.step() is not None:
            pass
        return self.finish()

    def finish(self) -> RunResult:
        """Hang up what is still up and collect the report (after the last step, a failure or Stop)."""
        t0 = self._t0 if self._t0 is not None else time.monotonic()
        # Calls still up at the end (or at a failure) are hung up, so every call in the
        # report has its final summary: what each side heard, talk time.
        self.hang_up_all()
        try:
            self.sim.wait_until(lambda: all(c["state"] == "ended" for c in self.sim.call_log()), 3.0)
        except TimeoutError:
            pass
        time.sleep(0.3)   # the recorder finishes its entries after the BYEs
        # A SIPREC session still open here would be closed by the recorder's shutdown with no
        # audio counted (ended_by: shutdown): give the agents' BYEs time to close it normally.
        deadline = time.monotonic() + 5.0
        while (time.monotonic() < deadline
               and any(r["state"] == "recording" for r in self.sim.recordings())):
            time.sleep(0.1)
        recordings = [{k: r.get(k) for k in ("id", "owner", "participants", "started_at", "ended_at",
                                             "talk_seconds", "paused_segments", "announcements", "state",
                                             "truncated", "provider", "tier", "retention_expires",
                                             "audio_path", "metadata_files", "dialect", "sip_call_id",
                                             "suspect", "suspect_reason")}
                      | {"streams": stream_counts(r)}
                      for r in self.sim.recordings()]
        # a recording that could not start (recorder unreachable, refused): the agent's reason
        failures = [{"who": ev.get("agent"), "call": ev.get("call"), "target": ev.get("target"),
                     "reason": ev.get("reason")}
                    for ev in list(self.sim.events) if ev.get("event") == "siprec" and ev.get("state") == "failed"]
        siprec = [{k: e.get(k) for k in ("agent", "call", "recording", "target", "state", "reason", "sent")}
                  for e in self.sim.siprec_sessions()]
        return RunResult(self.scenario, self.results, self.sim.call_log(), recordings, str(self.sim.run_dir),
                         time.monotonic() - t0, recording_failures=failures, siprec=siprec)

    def hang_up_all(self) -> None:
        for ev in list(self.sim.calls.values()):
            if ev["state"] != "ended":
                try:
                    self.sim.orch.request(ev["agent"], "hangup", call=ev["call"])
                except Exception:
                    pass  # it ended meanwhile

    # ----- steps ------------------------------------------------------------------------------
    def do_play(self, a: dict) -> None:
        if "file" in a:
            self.sim.play(a["who"], file=str((self.scenario.source.parent / a["file"]).resolve()))
        elif "tone" in a:
            self.sim.play(a["who"], tone=float(a["tone"]))
        else:
            self.sim.play(a["who"], silence=True)

    def do_dial(self, a: dict) -> None:
        self.sim.dial(str(a["from"]), str(a["to"]))

    def wait_ringing(self, who: str) -> None:
        """A person answers when the phone rings: wait for it (a dial step returns at once).
        A waiting call (call waiting) rings while the line shows the call the user is in."""
        self.sim.wait_until(lambda: self.sim.call_state(who) == "ringing" or self.sim.waiting_call(who) is not None,
                            DEFAULT_WITHIN, f"{who}'s phone to ring")

    def do_answer(self, a: dict) -> None:
        self.wait_ringing(str(a["who"]))
        self.sim.answer(str(a["who"]))

    def do_decline(self, a: dict) -> None:
        self.wait_ringing(str(a["who"]))
        self.sim.decline(str(a["who"]))

    def do_hangup(self, a: dict) -> None:
        self.sim.hangup(str(a["who"]))

    def do_hold(self, a: dict) -> None:
        who = str(a["who"])
        self.sim.hold(who)
        self.sim.wait_for(who, "held", DEFAULT_WITHIN)

    def do_resume(self, a: dict) -> None:
        who = str(a["who"])
        self.sim.resume(who)
        self.sim.wait_for(who, "connected", DEFAULT_WITHIN)

    def do_set(self, a: dict) -> None:
        if "org" in a:
            self.sim.set_org_recording(a["recording"])
        elif "location" in a:
            self.sim.set_location_recording(str(a["location"]), a["recording"])
        else:
            self.sim.set_call_recording(str(a.get("user") or a.get("line")), a["callRecording"])

    def offered(self, a: dict, shown: Callable[[str], list[str]], item: str) -> None:
        """`within`: wait that long for the phone to offer the key (or the app the item)."""
        if "within" in a:
            who = str(a["who"])
            try:
                self.sim.wait_until(lambda: item in shown(who), parse_duration(a["within"]),
                                    f"{who} to offer {item}")
            except TimeoutError:
                pass     # the press below fails and says what is offered

    def do_press(self, a: dict) -> None:
        # A person can only press a key the phone shows: a refused press fails the step.
        self.offered(a, self.sim.softkeys, a["key"])
        if not self.sim.press(str(a["who"]), a["key"]):
            raise StepFailed(f"{a['who']}: {a['key']} is not offered now "
                             f"(softkeys: {self.sim.softkeys(str(a['who']))}); {self.refusal(a['who'])}")

    def do_menu(self, a: dict) -> None:
        self.offered(a, self.sim.menu_items, a["item"])
        if not self.sim.menu(str(a["who"]), a["item"]):
            raise StepFailed(f"{a['who']}: {a['item']!r} is not in the More menu now "
                             f"(menu: {self.sim.menu_items(str(a['who']))}); {self.refusal(a['who'])}")

    def refusal(self, who: str) -> str:
        refused = self.sim.network_events(str(who), "recording_refused")
        return refused[-1]["why"] if refused else ""

    def do_dtmf(self, a: dict) -> None:
        self.sim.dtmf(str(a["who"]), str(a["digits"]))

    def do_wait(self, value: Any) -> None:
        if self.stopped.wait(parse_duration(value) / self.speed):
            raise Stopped()

    def do_say(self, text: Any) -> None:
        self.on_say(str(text))

    def do_auto_answer(self, a: dict) -> None:
        after = a.get("after")
        self.sim.set_auto_answer(str(a["who"]), None if after is None else parse_duration(after))

    def do_transfer(self, a: dict) -> None:
        who, to = str(a["who"]), str(a["to"])
        within = parse_duration(a.get("within", 5))
        if not a.get("attended"):
            self.sim.transfer(who, to)
            return
        # Attended: consult the target, who picks up, then complete the transfer.
        consult = self.sim.start_transfer(who, to)
        target = self.sim.party_by_number(to)
        if target is not None:
            self.sim.wait_for(target.id, "ringing", within)
            self.sim.answer(target.id)
        self.sim.wait_until(lambda: self.sim.calls.get(consult, {}).get("state") == "connected",
                            within, f"{who}'s consult call to {to} to be answered")
        self.sim.complete_transfer(who)

    def do_consult(self, a: dict) -> None:
        self.sim.start_transfer(str(a["who"]), str(a["to"]))

    def do_complete_transfer(self, a: dict) -> None:
        self.sim.complete_transfer(str(a["who"]))

    def do_cancel_transfer(self, a: dict) -> None:
        self.sim.cancel_transfer(str(a["who"]))

    def do_conference(self, a: dict) -> None:
        """Conference on `who`'s call, dial `to` (a simulated party, who answers), Conference again."""
        who, to = str(a["who"]), str(a["to"])
        within = parse_duration(a.get("within", 5))
        call = self.sim.start_conference(who, to)
        target = self.sim.party_by_number(to)
        if target is not None:
            self.wait_ringing(target.id)
            self.sim.answer(target.id)
        self.sim.wait_until(lambda: self.sim.calls.get(call, {}).get("state") == "connected",
                            within, f"{who}'s call to {to} to be answered")
        # a person greets the third party before merging: its recording (if any) is under way
        self.sim.wait_until(lambda: self.sim.recording_state(who, call) != "pending", within,
                            f"{who}'s recording of the call to {to} to start")
        self.sim.merge_conference(who)

    def do_start_conference(self, a: dict) -> None:
        self.sim.start_conference(str(a["who"]), str(a["to"]))

    def do_merge_conference(self, a: dict) -> None:
        self.sim.merge_conference(str(a["who"]))

    def do_mute(self, a: dict) -> None:
        self.sim.mute(str(a["who"]))

    def do_unmute(self, a: dict) -> None:
        self.sim.unmute(str(a["who"]))

    def do_expect(self, a: dict) -> None:
        who = str(a["who"])
        within = parse_duration(a.get("within", DEFAULT_WITHIN))
        deadline = time.monotonic() + within
        while True:
            problem = self.check(who, a)
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise StepFailed(f"{who}: {problem} (waited {within:g} s)")
            if self.stopped.wait(0.1):
                raise Stopped()

    def check(self, who: str, a: dict) -> str | None:
        if "call" in a and self.sim.call_state(who) != a["call"]:
            return f"call is {self.sim.call_state(who)}, expected {a['call']}"
        if "line" in a and self.sim.line_state(who) != a["line"]:
            return f"line is {self.sim.line_state(who)}, expected {a['line']}"
        if "dtmf" in a:
            call = self.sim.current_call(who)
            got = self.sim.status(who)["calls"]
            got = next((c["dtmf"] for c in got if call and c["call"] == call["call"]), "")
            if got != str(a["dtmf"]):
                return f"received DTMF {got!r}, expected {str(a['dtmf'])!r}"
        if "indicator" in a:
            got = self.sim.indicator(who, a.get("device"))
            if got != a["indicator"]:
                return f"indicator is {got}, expected {a['indicator']}"
        if "softkeys" in a and self.sim.softkeys(who) != list(a["softkeys"]):
            return f"softkeys are {self.sim.softkeys(who)}, expected {list(a['softkeys'])}"
        if "menu" in a and self.sim.menu_items(who) != list(a["menu"]):
            return f"Webex App menu is {self.sim.menu_items(who)}, expected {list(a['menu'])}"
        if "recording" in a:
            got = self.sim.recording_state(who) or "none"
            if got != a["recording"]:
                return f"recording is {got}, expected {a['recording']}"
        if "prompt" in a and a["prompt"] not in self.sim.feature_prompts(who):
            heard = self.sim.feature_prompts(who)
            return f"has not heard {a['prompt']} from a feature" + (f" (heard: {', '.join(heard)})" if heard else "")
        if "messages" in a and self.sim.messages_waiting(who) != a["messages"]:
            return f"has {self.sim.messages_waiting(who)} new voicemail messages, expected {a['messages']}"
        if "muted" in a and self.sim.muted(who) != a["muted"]:
            return f"microphone is {'muted' if self.sim.muted(who) else 'not muted'}, expected muted: {a['muted']}"
        if "waiting" in a and (self.sim.waiting_call(who) is not None) != a["waiting"]:
            return f"has {'a' if self.sim.waiting_call(who) else 'no'} waiting call, expected waiting: {a['waiting']}"
        if "recorded_audio" in a:
            done = [r for r in self.sim.recordings(who) if r["state"] != "recording"]
            if not done:
                return "has no finished recording in the embedded recorder (an external SRS's are not seen)"
            reason = done[-1].get("suspect_reason") or ""
            has_audio = not reason.startswith(NO_AUDIO)
            if has_audio != a["recorded_audio"]:
                counts = ", ".join(f"{s['channel']} {s['received']}" for s in stream_counts(done[-1]))
                return (f"newest recording {'got audio' if has_audio else reason}"
                        f" (RTP packets: {counts or 'no streams'}), expected recorded_audio: {a['recorded_audio']}")
        if "recordings" in a:
            done = [r for r in self.sim.recordings(who) if r["state"] != "recording"]
            if len(done) != a["recordings"]:
                return f"has {len(done)} finished recordings, expected {a['recordings']}"
        if "hears" in a and isinstance(a["hears"], list):
            got = self.sim.hears_all(who, a["hears"])
            missing = [f for f in a["hears"] if not got.get(str(float(f)))]
            if missing:
                return f"does not hear {', '.join(f'{f:g} Hz' for f in missing)} (of {a['hears']})"
        elif "hears" in a:
            heard = self.sim.listen(who, 0.6)
            freq = heard and heard.get("freq_hz")
            if a["hears"] == "silence":
                if heard and heard["active_seconds"] > 0.1:
                    return f"hears {freq:.0f} Hz at {heard['rms_dbfs']} dBFS, expected silence"
            else:
                want = float(a["hears"])
                if not freq or abs(freq - want) > want * FREQ_TOLERANCE:
                    return f"hears {f'{freq:.0f} Hz' if freq else 'silence'}, expected {want:g} Hz"
        return None


def stream_counts(row: dict) -> list[dict]:
    """A recording's packets per stream (the store's stream_stats): the report's and run's view."""
    return [{"channel": st.get("channel") or st.get("label") or str(i), "label": st.get("label", ""),
             "codec": st.get("codec", ""), "received": st.get("received", 0), "lost": st.get("lost", 0)}
            for i, st in enumerate(row.get("stream_stats") or [])]


def run_file(path: str | Path, report: str | Path | None = None, run_dir: str | Path | None = None,
             echo: Callable[[str], None] | None = print, speed: float = 1.0, keep: bool = True,
             address: str | None = None) -> RunResult:
    """Run a scenario file. `keep=False`: a passed run's temp folder is deleted afterwards (a
    failed or interrupted run keeps it, and a `run_dir` given is never deleted). Ctrl-C (or
    SIGTERM turned into KeyboardInterrupt by the CLI) stops the run and still writes the report."""
    scenario = load_scenario(path)
    report_path = Path(report).expanduser() if report is not None else None
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
    sim = Simulator(scenario.org, run_dir=run_dir, address=address)
    with sim:
        runner = Runner(sim, scenario, echo)
        runner.speed = speed
        try:
            result = runner.run()
        except KeyboardInterrupt:
            runner.stop()
            for r in runner.results:
                if r.status == "running":
                    r.status, r.error = "skipped", "interrupted"
            result = runner.finish()
            result.interrupted = True
    # a recording that could not be made keeps the folder too: its logs say why
    if not keep and result.passed and not result.interrupted and not result.recording_failures:
        result.run_dir_removed = sim.remove_run_dir()
    if report_path is not None:
        report_path.write_text(json.dumps(result.report(), indent=2, default=str))
    return result
