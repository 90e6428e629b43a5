"""The Webex Calling network edge of an agent's lines: runs the recording policy for each call.

No pjsua2 here. The agent calls the `call_*` hooks as its calls progress and the `intent` /
`dtmf_sent` hooks for what the user does; the edge runs one rules/policy.CallPolicy per call
of a line and reports, through the agent's `emit`, what each device shows (`recording` events)
and what the network does: announcements and tones to the parties (`announcement`), recorder
actions (`recorder`), refused intents (`recording_refused`). Audio and SIPREC come in later
issues: until a recorder is attached, a recorder start is acknowledged at once.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

from mppsim.rules.effective import EffectiveSettings
from mppsim.rules.policy import (FEATURE_CODES, INTENT_KEY, MENU, CallAction, CallInfo, CallPolicy,
                              Play, RecorderAction, Refused)

KEY_INTENT = {v: k for k, v in INTENT_KEY.items()}          # "PauseRec" -> "pause"
MENU_INTENT = {MENU[k]: KEY_INTENT[k] for k in MENU}          # "Pause recording" -> "pause"


class EdgeHost(Protocol):
    def emit(self, event: str, **fields) -> None: ...
    def later(self, delay: float, fn: Callable[[], None]) -> None: ...
    def end_call(self, key: str, reason: str) -> None: ...
    def play(self, key: str, play: Play) -> None: ...
    def recorder(self, key: str, action: RecorderAction, settings: EffectiveSettings) -> bool: ...


class EdgeError(ValueError):
    pass


class RecordingEdge:
    def __init__(self, host: EdgeHost, kinds: dict[str, str] | None = None):
        self.host = host
        self.kinds = dict(kinds or {})               # dialled number -> user | virtual_line | pstn
        self.settings: dict[str, EffectiveSettings] = {}
        self.policies: dict[str, CallPolicy] = {}    # call key -> policy
        self.lines: dict[str, str] = {}              # call key -> line id
        self.last_view: dict[str, dict] = {}
        self.scheduled: dict[str, float] = {}        # call key -> deadline a tick is queued for

    # ----- settings ---------------------------------------------------------------------
    def set_settings(self, line: str, settings: EffectiveSettings) -> None:
        """Effective settings for new calls; calls in progress keep the ones they started with."""
        self.settings[line] = settings

    def remote_kind(self, remote_user: str) -> str:
        kind = self.kinds.get(remote_user) or self.kinds.get(remote_user.lstrip("+"))
        if kind in ("user", "virtual_line", "feature"):    # a feature: a hunt group, queue, attendant
            return "internal"
        return "pstn" if kind == "pstn" else "external"

    # ----- call hooks -------------------------------------------------------------------
    def call_created(self, key: str, line: str, direction: str, remote_user: str,
                     compliance_played: bool = False, voicemail: bool = False) -> None:
        settings = self.settings.get(line)
        if settings is None or key in self.policies:
            return
        info = CallInfo(direction, self.remote_kind(remote_user), compliance_played, voicemail)
        self.policies[key] = CallPolicy(settings, info)
        self.lines[key] = line

    def call_offered(self, key: str) -> None:
        self._step(key, lambda p, now: p.offered(now))

    def call_answered(self, key: str) -> None:
        self._step(key, lambda p, now: p.answered(now))

    def call_held(self, key: str, held: bool) -> None:
        p = self.policies.get(key)
        if p is not None and p.held != held:
            self._step(key, lambda p, now: p.hold(now) if held else p.unhold(now))

    def voicemail_deposit(self, key: str) -> None:
        """R-USR-3: the caller starts leaving a message."""
        self._step(key, lambda p, now: p.voicemail_deposit(now))

    def call_ended(self, key: str) -> None:
        self._step(key, lambda p, now: p.hangup(now))

    def move_call(self, old: str, new: str) -> None:
        """A transfer continues call `old` as call `new`: its policy goes on under the new key
        (phone/transfer.py), with its timers rescheduled and the devices told."""
        p = self.policies.pop(old, None)
        if p is None:
            return
        self.policies[new] = p
        self.lines[new] = self.lines.pop(old)
        self.scheduled.pop(old, None)
        self.last_view.pop(old, None)
        self._drain(new, p, time.monotonic())

    def has_policy(self, key: str) -> bool:
        """The recording policy runs for call `key` (its line has recording settings)."""
        return key in self.policies

    def records_on_answer(self, key: str) -> EffectiveSettings | None:
        """The call's settings when its answer will start a recording, else None."""
        p = self.policies.get(key)
        return p.s if p is not None and p.records_on_answer() else None

    def compliance_played(self, key: str) -> bool:
        p = self.policies.get(key)
        return bool(p and p.compliance_played)

    # ----- user intents -----------------------------------------------------------------
    def press(self, key: str, softkey: str, device: str = "mpp") -> bool:
        if softkey not in KEY_INTENT:
            raise EdgeError(f"key: {softkey!r} not allowed; allowed: {', '.join(KEY_INTENT)}")
        return self._intent(key, KEY_INTENT[softkey], "softkey", device)

    def menu(self, key: str, item: str) -> bool:
        if item not in MENU_INTENT:
            raise EdgeError(f"item: {item!r} not allowed; allowed: {', '.join(MENU_INTENT)}")
        return self._intent(key, MENU_INTENT[item], "menu", "webex-app")

    def _intent(self, key: str, intent: str, source: str, device: str) -> bool:
        p = self.policies.get(key)
        if p is None:
            self.host.emit("recording_refused", call=key, intent=intent, source=source,
                           why="recording is not configured for this line")
            return False
        if device not in p.s.devices:
            raise EdgeError(f"device: this line has no {device}; it shows on {', '.join(p.s.devices)}")
        result = []
        self._step(key, lambda p, now: result.append(p.intent(intent, now, source)))
        return result[0]

    def dtmf_sent(self, key: str, digits: str) -> bool:
        """R-UX-5: True when the digits were a feature access code (then they are not sent)."""
        p = self.policies.get(key)
        if p is None:
            return False
        if digits in FEATURE_CODES:  # dialled in one go: an intent, never sent on
            self._step(key, lambda p, now: p.intent(FEATURE_CODES[digits], now, "fac"))
            return True
        result = []
        self._step(key, lambda p, now: result.append(any([p.dtmf_sent(d, now) for d in digits])))
        return result[0]

    def recorder_started(self, key: str) -> None:
        """The SRS accepted the recording session."""
        self._step(key, lambda p, now: p.recorder_started(now))

    def recorder_failed(self, key: str, reason: str) -> None:
        """The SRS refused the session or went away (R-ORG-3)."""
        self._step(key, lambda p, now: p.recorder_failed(now, reason))

    def view(self, key: str) -> dict | None:
        p = self.policies.get(key)
        return None if p is None else p.view()

    # ----- running the policy -----------------------------------------------------------
    def _step(self, key: str, fn) -> None:
        p = self.policies.get(key)
        if p is None:
            return
        now = time.monotonic()
        fn(p, now)
        self._drain(key, p, now)

    def _drain(self, key: str, p: CallPolicy, now: float) -> None:
        for _ in range(10):  # a recorder ack may produce more actions
            actions = p.take_actions()
            if not actions:
                break
            for action in actions:
                self._do(key, p, action, now)
        view = p.view()
        if view != self.last_view.get(key):
            self.last_view[key] = view
            self.host.emit("recording", call=key, line=self.lines[key], **view)
        deadline = p.next_deadline()
        if deadline is not None and self.scheduled.get(key) != deadline:
            self.scheduled[key] = deadline
            self.host.later(max(0.0, deadline - now), lambda: self._tick(key, deadline))
        if p.ended:
            self.policies.pop(key, None)
            self.scheduled.pop(key, None)

    def _tick(self, key: str, deadline: float) -> None:
        if self.scheduled.get(key) == deadline:
            del self.scheduled[key]
            self._step(key, lambda p, t: p.tick(t))

    def _do(self, key: str, p: CallPolicy, action, now: float) -> None:
        line = self.lines[key]
        if isinstance(action, Play):
            self.host.emit("announcement", call=key, line=line, kind=action.kind, to=list(action.to),
                           language=action.language, audio=action.audio)
            self.host.play(key, action)
        elif isinstance(action, RecorderAction):
            self.host.emit("recorder", call=key, line=line, op=action.op, recording=action.recording,
                           detail=action.detail)
            handled = self.host.recorder(key, action, p.s)
            if action.op == "start" and not handled:
                p.recorder_started(now)   # no recorder configured: accepted at once
        elif isinstance(action, CallAction):
            self.host.end_call(key, action.reason)
        elif isinstance(action, Refused):
            self.host.emit("recording_refused", call=key, line=line, intent=action.intent,
                           source=action.source, why=action.why)
