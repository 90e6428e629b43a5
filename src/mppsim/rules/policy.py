"""The per-call recording policy: one state machine per call per recorded line (pure Python).

The agent that plays the network edge for a line feeds it call events (offered, answered, user
intents from a softkey, a Webex App menu item or a feature access code, hold, hang-up, recorder
results, the passing of time) and reads back what the devices show (state, indicator, softkeys,
menu items, a short message) and what the network must do (announcements and tones to the
parties, recorder actions, ending the call). It never sees audio: announcements are only ever
routed to parties, never into a recording (R-USR-4, R-CMP-6).

Both parties of an internal call may be recorded users: each one's agent runs its own policy and
makes its own recording.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from mppsim.rules.effective import (ALWAYS, ALWAYS_PAUSE, FAILURE_BEHAVIORS, NEVER, NOTIFY_ANNOUNCEMENT,
                        NOTIFY_BEEP, ON_DEMAND, ON_DEMAND_USER_START, EffectiveSettings)

# R-UX-6: the call-control API's recording states (None = nothing to record on this call)
PENDING, STARTED, PAUSED, STOPPED, FAILED = "pending", "started", "paused", "stopped", "failed"

# R-UX-3: MPP softkey labels (config codes crdstart, crdpause, crdresume, crdstop)
RECORD, PAUSE_REC, RESUME_REC, STOP_REC = "Record", "PauseRec", "ResumeRec", "StopRec"
SOFTKEY_ORDER = (RECORD, PAUSE_REC, RESUME_REC, STOP_REC)
# R-UX-4: the Webex App's More-menu items
MENU = {RECORD: "Start recording", PAUSE_REC: "Pause recording",
        RESUME_REC: "Resume recording", STOP_REC: "Stop recording"}

# User intents, whatever their source (softkey, menu item, feature access code)
INTENTS = ("record", "pause", "resume", "stop")
INTENT_KEY = {"record": RECORD, "pause": PAUSE_REC, "resume": RESUME_REC, "stop": STOP_REC}
# R-UX-5: feature access codes dialled during a call
FEATURE_CODES = {"*44": "record", "*45": "stop", "*48": "pause", "*49": "resume"}

# Which softkeys a mode can ever show (R-UX-3, per the MPP admin guides)
MODE_KEYS = {
    NEVER: (),
    ALWAYS: (),
    ALWAYS_PAUSE: (PAUSE_REC, RESUME_REC),
    ON_DEMAND: (RECORD, PAUSE_REC, RESUME_REC),
    ON_DEMAND_USER_START: (RECORD, PAUSE_REC, STOP_REC, RESUME_REC),
}

MESSAGES = {STARTED: "Recording", PAUSED: "Recording paused", STOPPED: "Recording stopped",
            FAILED: "Recording failed"}

LOCAL, REMOTE = "local", "remote"


@dataclass(frozen=True)
class Play:
    """An announcement or tone the network plays to parties of the call (never the recording)."""
    kind: str                    # compliance | start | stop | paused | resumed | beep | repeat | failed
    to: tuple[str, ...]          # LOCAL (the recorded line's user) and/or REMOTE (the other party)
    language: str
    audio: str = "announcement"  # announcement (spoken file) | tone (synthesised)
    into_recording: bool = False  # always False: kept as a field so tests can state the invariant


@dataclass(frozen=True)
class RecorderAction:
    """What the SIPREC client must do: op in start|pause|resume|stop|discard|metadata."""
    op: str
    recording: int               # 1, 2, ... recordings of this call (stop + Record = a new one)
    detail: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class CallAction:
    op: str                      # "end": the network ends the call (END_CALL_WITH_ANNOUNCEMENT)
    reason: str


@dataclass(frozen=True)
class Refused:
    """A user intent the mode or state does not allow (the phone shows a short note)."""
    intent: str
    source: str
    why: str


Action = Play | RecorderAction | CallAction | Refused


@dataclass(frozen=True)
class CallInfo:
    direction: str               # "in" | "out", seen from the recorded line
    remote_kind: str             # "internal" | "pstn" | "external"
    compliance_played: bool = False   # already played on this call before a transfer (R-CMP-3)
    voicemail: bool = False      # this "call" is a voicemail deposit (R-USR-3)

    @property
    def is_pstn(self) -> bool:
        return self.remote_kind == "pstn"

    @property
    def external(self) -> bool:
        return self.remote_kind != "internal"


class CallPolicy:
    def __init__(self, settings: EffectiveSettings, call: CallInfo):
        self.s = settings
        self.call = call
        self.state: str | None = None
        self.recording = 0            # number of the current/last recording of this call
        self.kept = True              # plain On Demand: the provisional recording is kept only on Record
        self.connected = False
        self.held = False
        self.ended = False
        self.compliance_played = call.compliance_played   # played or scheduled: once per call
        self.compliance_heard = call.compliance_played    # actually played (for the metadata)
        self.message = ""
        self.timers: dict[str, float] = {}
        self.actions: list[Action] = []

    # ----- what the devices show ---------------------------------------------------------
    @property
    def indicator(self) -> str:
        """R-UX-1: 'recording', 'paused' or 'none' (the icon on the Calls screen and line key)."""
        if self.ended or not self.kept:
            return "none"
        return {STARTED: "recording", PAUSED: "paused"}.get(self.state or "", "none")

    def allowed(self) -> tuple[str, ...]:
        """Softkeys whose action is possible now (R-UX-3), in the phone's order."""
        if self.ended or not self.connected or self.held or not self.s.records:
            return ()
        if self.state == FAILED or self.call.voicemail:
            return ()
        keys = MODE_KEYS.get(self.s.mode, ())
        now: set[str] = set()
        if self.state in (None, STOPPED) or (self.s.mode == ON_DEMAND and not self.kept):
            now.add(RECORD)
        elif self.state in (STARTED, PENDING):
            now |= {PAUSE_REC, STOP_REC}
        elif self.state == PAUSED:
            now |= {RESUME_REC, STOP_REC}
        return tuple(k for k in SOFTKEY_ORDER if k in keys and k in now)

    def softkeys(self, device: str = "mpp") -> tuple[str, ...]:
        """MPP softkeys for an MPP device; () for a device that is not an MPP."""
        return self.allowed() if device == "mpp" and device in self.s.devices else ()

    def menu_items(self, device: str = "webex-app") -> tuple[str, ...]:
        """R-UX-4: recording items under More in the Webex App call window."""
        if device != "webex-app" or device not in self.s.devices:
            return ()
        return tuple(MENU[k] for k in self.allowed())

    def view(self) -> dict:
        """Everything a device face needs, per device type."""
        return {
            "state": self.state, "indicator": self.indicator, "message": self.message,
            "devices": {d: {"indicator": self.indicator, "softkeys": list(self.softkeys(d)),
                            "menu": list(self.menu_items(d))} for d in self.s.devices},
        }

    def take_actions(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out

    def next_deadline(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    # ----- helpers ------------------------------------------------------------------------
    def _parties(self) -> tuple[str, ...]:
        return (LOCAL, REMOTE)

    def _play(self, kind: str, to: Iterable[str], audio: str = "announcement") -> None:
        to = tuple(to)
        if to:
            self.actions.append(Play(kind, to, self.s.language, audio))

    def _selected(self) -> bool:
        """R-USR-8: selective recording applies to Always and Always with Pause/Resume only."""
        if self.s.selective is None or self.s.mode not in (ALWAYS, ALWAYS_PAUSE):
            return True
        return self.s.selective.records(self.call.direction, self.call.external)

    def _user_announcement_to(self) -> tuple[str, ...]:
        """Who hears the user's start/stop announcement (R-USR-4, R-CMP-4, R-CMP-7)."""
        if self.call.is_pstn:
            if not self.s.announce_pstn:
                return ()
            if self.compliance_played:       # R-CMP-4: not again for the PSTN party
                return (LOCAL,)
            if self.call.direction == "out":  # R-CMP-7: user-level settings only for inbound calls
                return (LOCAL,)
            return self._parties()
        if self.call.external:
            return self._parties() if self.s.announce_pstn else ()
        return self._parties() if self.s.announce_internal else ()

    def _announce(self, kind: str) -> None:
        to = self._user_announcement_to()
        if to:
            self._play(kind, to)
            # R-USR-4, R-REC-2: the provider learns from metadata that it was played
            self.actions.append(RecorderAction("metadata", self.recording,
                                               {"announcement": kind, "to": list(to)}))

    def _set(self, state: str | None, now: float) -> None:
        self.state = state
        if state in MESSAGES and self.kept:
            self.message = MESSAGES[state]
        if state == STARTED and self.s.repeat_enabled and not self.held:
            self.timers["repeat"] = now + self.s.repeat_interval   # R-USR-6
        elif state != STARTED:
            self.timers.pop("repeat", None)

    def _start(self, now: float, provisional: bool = False) -> None:
        if self.s.recording_blocked:
            self.recorder_failed(now, self.s.recording_blocked)
            return
        self.recording += 1
        self.kept = not provisional
        self.actions.append(RecorderAction("start", self.recording, {
            "provisional": provisional, "voicemail": self.call.voicemail,
            "compliance_played": self.compliance_heard,            # R-CMP-6
            "streams": ["local-send", "remote-send"]}))  # R-REC-1: both directions
        self._set(PENDING, now)

    # ----- events -------------------------------------------------------------------------
    def offered(self, now: float) -> None:
        """An inbound call rings at the recorded line. R-CMP-2: an inbound PSTN caller hears
        the compliance announcement before the call is answered (early media)."""
        if (self.call.direction == "in" and self.call.is_pstn and self.s.compliance.inbound_pstn
                and self.s.provider is not None and not self.compliance_played):
            self._play("compliance", (REMOTE,))
            self.compliance_played = self.compliance_heard = True

    def records_on_answer(self) -> bool:
        """Whether `answered` will start a recording: the SIPREC leg may be made ready while the
        call rings (phone/siprec.py standby). The same conditions as below."""
        return (not self.call.voicemail and self.s.records and self._selected()
                and self.s.mode in (ALWAYS, ALWAYS_PAUSE, ON_DEMAND))

    def answered(self, now: float) -> None:
        """R-CMP-6: recording starts after the recording-enabled user answers."""
        self.connected = True
        c = self.s.compliance
        if (self.call.direction == "out" and self.call.is_pstn and c.outbound_pstn
                and self.s.provider is not None and not self.compliance_played):
            delay = c.delay_seconds if c.outbound_delay_enabled else 0   # R-CMP-2
            self.timers["compliance"] = now + delay
            self.compliance_played = True    # committed: plays once per call (R-CMP-3)
        if self.call.voicemail:
            return
        if not self.s.records or not self._selected():
            self.tick(now)
            return
        if self.s.mode in (ALWAYS, ALWAYS_PAUSE):
            self._start(now)
        elif self.s.mode == ON_DEMAND:
            self._start(now, provisional=True)   # R-USR-2: kept only if the user presses Record
        self.tick(now)

    def recorder_started(self, now: float) -> None:
        """The recorder accepted the session (SIPREC 200 OK)."""
        if self.state != PENDING:
            return
        self._set(STARTED, now)
        if self.kept:
            self._announce("start")

    def recorder_failed(self, now: float, reason: str) -> None:
        """R-ORG-3: the recorder cannot be reached; the call follows failureBehavior."""
        if self.ended:
            return
        self._set(FAILED, now)
        self.message = MESSAGES[FAILED]
        self.kept = True
        behavior = self.s.failure_behavior
        assert behavior in FAILURE_BEHAVIORS
        self.actions.append(RecorderAction("stop", self.recording, {"failed": reason}))
        if behavior in ("PROCEED_CALL_WITH_ANNOUNCEMENT", "END_CALL_WITH_ANNOUNCEMENT"):
            self._play("failed", self._parties())
        if behavior == "END_CALL_WITH_ANNOUNCEMENT":
            self.actions.append(CallAction("end", f"recording failed: {reason}"))

    def intent(self, intent: str, now: float, source: str = "softkey") -> bool:
        """A user asks to record / pause / resume / stop (R-UX-3, R-UX-4, R-UX-5)."""
        if intent not in INTENTS:
            raise ValueError(f"intent: {intent!r} not allowed; allowed: {', '.join(INTENTS)}")
        key = INTENT_KEY[intent]
        if key not in self.allowed():
            why = ("recording is not allowed for this line" if not self.s.records or self.s.mode == NEVER
                   else f"{key} is not offered in mode {self.s.mode!r} when the recording is "
                        f"{self.state or 'not started'}")
            self.actions.append(Refused(intent, source, why))
            return False
        if intent == "record":
            if self.s.mode == ON_DEMAND and not self.kept and self.state in (PENDING, STARTED, PAUSED):
                self.kept = True               # keep the provisional recording from the start
                self.actions.append(RecorderAction("metadata", self.recording, {"kept": True}))
                self._set(self.state, now)
                if self.state == STARTED:
                    self.message = MESSAGES[STARTED]
                    self._announce("start")
            else:
                self._start(now)
        elif intent == "pause":
            self.actions.append(RecorderAction("pause", self.recording))
            self._set(PAUSED, now)
            self._notify("paused")
        elif intent == "resume":
            self.actions.append(RecorderAction("resume", self.recording))
            self._set(STARTED, now)
            self.message = "Recording resumed"
            self._notify("resumed")
        elif intent == "stop":
            self.actions.append(RecorderAction("stop", self.recording))
            self._set(STOPPED, now)
            self._announce("stop")
        return True

    def _notify(self, kind: str) -> None:
        """R-USR-5: the pause/resume notification always plays when the user pauses or resumes."""
        if self.s.notification == NOTIFY_BEEP:
            self._play("beep", self._parties(), audio="tone")
        elif self.s.notification == NOTIFY_ANNOUNCEMENT:
            self._play(kind, self._parties())
        else:
            return
        self.actions.append(RecorderAction("metadata", self.recording,
                                           {"announcement": kind, "notification": self.s.notification}))

    def dtmf_sent(self, digits: str, now: float) -> bool:
        """R-UX-5: the user dialled digits during the call; a feature access code is an intent.
        Returns True when the digits completed a feature code (they are not sent on)."""
        buf = (getattr(self, "_fac", "") + digits)[-3:]
        self._fac = buf
        if buf in FEATURE_CODES:
            self._fac = ""
            self.intent(FEATURE_CODES[buf], now, source="fac")
            return True
        return False

    def hold(self, now: float) -> None:
        """On hold the recording goes on (silence); the reminder tone and the softkeys wait."""
        self.held = True
        self.timers.pop("repeat", None)

    def unhold(self, now: float) -> None:
        self.held = False
        if self.state == STARTED and self.s.repeat_enabled:
            self.timers["repeat"] = now + self.s.repeat_interval

    def hangup(self, now: float) -> None:
        if self.ended:
            return
        if self.state in (PENDING, STARTED, PAUSED):
            op = "stop" if self.kept else "discard"    # plain On Demand never kept: nothing stays
            self.actions.append(RecorderAction(op, self.recording))
            self._set(STOPPED, now)
        self.ended = True
        self.connected = False
        self.timers.clear()

    def voicemail_deposit(self, now: float) -> None:
        """R-USR-3: a voicemail message is recorded when recordVoicemailEnabled is on."""
        if self.s.enabled and self.s.record_voicemail and self.s.provider is not None:
            self.call = CallInfo(self.call.direction, self.call.remote_kind,
                                 self.call.compliance_played, voicemail=True)
            self.connected = True
            self._start(now)

    def tick(self, now: float) -> None:
        """Fire what is due: the delayed outbound compliance announcement, the repeat tone."""
        due = self.timers.get("compliance")
        if due is not None and now >= due:
            del self.timers["compliance"]
            self._play("compliance", (REMOTE,))
            self.compliance_heard = True
            if self.recording:
                self.actions.append(RecorderAction("metadata", self.recording, {"announcement": "compliance"}))
        due = self.timers.get("repeat")
        if due is not None and now >= due and self.state == STARTED and not self.held:
            self._play("repeat", self._parties(), audio="tone")   # R-USR-6: to all parties
            self.timers["repeat"] = due + self.s.repeat_interval
