"""The network side of a hunt group, call queue or auto attendant (issue 25): one agent of kind
"feature" per feature, its one line answering to the feature's extension (and E.164 number).

What a caller gets, as Webex Calling does it:
  * auto attendant: answered; the greeting and the menu ("Press 1. ...") in the feature's
    language; a key transfers the caller (REFER) to a queue, hunt group, user or a dialled
    extension, repeats the menu, or says goodbye;
  * call queue: answered; the welcome message, then music (or a tone) with the comfort message
    every N seconds, while the queue offers the caller to its agents by its routing policy;
  * hunt group: not answered (the caller hears ringing) while the members ring by its policy.

How a member takes the call (docs/decisions.md): the feature rings each member with an *offer*,
an INVITE whose Request-URI carries `mppsim-offer=<token>` and the caller's number, so the phone
shows "<caller> via <feature>" and rings. The first member to answer wins: the other offers are
cancelled (their phones stop ringing) and the caller is sent to that member's line, with a
REFER (answered caller) or a 302 (hunt group, still ringing), to a URI with
`mppsim-pickup=<token>`: the member's agent answers that call at once. It is the caller's own
INVITE to the member, so the member's agent applies the member's recording mode and keys, and
the recording names the caller; `mppsim-via` names the feature (the number dialled) and
`mppsim-cmp=1` says the compliance announcement has played (R-CMP-3: not again).

R-CMP-5: a PSTN call straight to the feature hears the compliance announcement before answer
(early media) in the feature's language, when the feature's location has it on.

pjsua2 holds 4 calls per process: the callers and the offers share them (app/features.py caps a
queue at 3 callers and a simultaneous ring at 3 members); a caller beyond that overflows.
"""
from __future__ import annotations

import itertools
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from mppsim.rules.schedule import is_open_now
from mppsim.sip.uri import name_and_user

from .announcements import announcement_file, duration, write_wav
from .feature_prompts import menu_prompts, prompt_file
from .feature_routing import MenuSession, RoutingState, offered, plan

if TYPE_CHECKING:
    from .calls import CallRecord

MAX_CALLS = 4                 # pjsua2's calls per process
WAITING_TONE_HZ = 660.0       # a queue's "tone" waiting audio: 0.5 s of 660 Hz every 3 s
MUSIC_NOTES_HZ = (392.0, 494.0, 587.0, 494.0)   # a queue's "music": G4 B4 D5 B4, 0.4 s each


@dataclass
class Caller:
    """A caller being served by the feature."""
    rec: "CallRecord"
    number: str                               # the caller's number (From user part)
    name: str
    compliance: bool = False                  # the compliance announcement has played
    phase: str = "new"                        # compliance | menu | waiting | ringing | handing | gone
    begun: str = ""                           # the phase whose audio has started
    player: Any = None                        # what it hears now; dropping it stops it
    gen: int = 0                              # a new step interrupts what was playing
    menu: MenuSession | None = None
    waves: list[list[str]] = field(default_factory=list)
    wave: int = -1
    offers: dict[str, str] = field(default_factory=dict)   # offer call key -> member extension
    token: str = ""
    since: float = field(default_factory=time.monotonic)


class ContactCentre:
    def __init__(self, host, config: dict):
        self.host = host
        self.f = config                                  # app/features.Feature.config()
        self.kind: str = config["kind"]
        self.language: str = config.get("language") or "en_us"
        self.compliance_on = False
        self.set_compliance(config.get("compliance") or {})
        self.kinds: dict[str, str] = dict(config.get("kinds") or {})
        self.callers: dict[str, Caller] = {}             # caller call key -> Caller
        self.offer_of: dict[str, str] = {}               # offer call key -> caller call key
        self.routing = RoutingState()
        self.tokens = itertools.count(1)

    def set_compliance(self, comp: dict) -> None:
        """R-CMP-1 at the feature's location: inbound PSTN calls hear it when a provider records."""
        self.compliance_on = bool(comp.get("inbound_pstn") and comp.get("provider"))

    # ----- who and what -------------------------------------------------------------------------
    @property
    def dial(self) -> str:
        return self.f.get("extension") or self.f.get("number") or ""

    def is_pstn(self, number: str) -> bool:
        return self.kinds.get(number) == "pstn" or self.kinds.get(number.lstrip("+")) == "pstn"

    def uri_for(self, target: str, **params: str) -> str | None:
        """The SIP URI of an extension or number, with mppsim's routing parameters."""
        base = self.host.directory.get(target) or self.host.directory.get(target.lstrip("+"))
        if base is None:
            return None
        return base + "".join(f";mppsim-{k}={v}" for k, v in params.items() if v)

    def emit(self, what: str, caller: Caller | None = None, **fields) -> None:
        self.host.emit("feature", feature=self.f["id"], type=self.kind, what=what,
                       call=caller.rec.key if caller else None,
                       caller=caller.number if caller else None, **fields)

    # ----- a caller arrives ---------------------------------------------------------------------
    def incoming(self, rec: "CallRecord", compliance_played: bool) -> None:
        name, number = name_and_user(rec.remote_uri)
        caller = Caller(rec, number, name or self.host.names.get(number, ""), compliance=compliance_played)
        live = sum(r.active for r in self.host.calls.values())
        waiting = [c for c in self.callers.values() if c.phase != "gone"]
        if live > MAX_CALLS or (self.kind == "call_queue" and len(waiting) >= int(self.f.get("size") or 3)):
            self.emit("overflow", caller, size=len(waiting))
            self.host.report_call(rec)
            self.route_away(caller, self.f.get("overflow") or {"action": "busy"})
            return
        self.callers[rec.key] = caller
        self.emit("arrived", caller, language=self.language)
        if self.compliance_on and not caller.compliance and self.is_pstn(number):
            # R-CMP-5: before answer, in the feature's language (R-CMP-2), then on as usual
            caller.phase = "compliance"
            rec.early_media = True
            self.host.answer_code(rec, 183)
        else:
            self.proceed(caller)
        self.host.report_call(rec)

    def proceed(self, caller: Caller) -> None:
        rec = caller.rec
        if self.kind == "hunt_group":
            caller.phase = "ringing"
            if not rec.early_media:
                self.host.answer_code(rec, 180)
            self.start_offers(caller)
        else:
            caller.phase = "menu" if self.kind == "auto_attendant" else "waiting"
            self.host.answer_code(rec, 200)

    def media_ready(self, rec: "CallRecord") -> None:
        """The caller's stream exists (again): start the audio of the phase it is in, once."""
        caller = self.callers.get(rec.key)
        if caller is None or rec.aud is None or caller.begun == caller.phase:
            return
        if caller.phase == "compliance":
            caller.begun = caller.phase
            path = announcement_file("compliance", self.language)
            self.play(caller, [("compliance", path)], then=lambda: self.after_compliance(caller))
        elif caller.phase == "menu":
            caller.begun = caller.phase
            # Webex Calling: the business-hours menu within the schedule, else the after-hours
            # one; chosen once, when the caller first hears it
            hours = "business_hours" if is_open_now(self.f.get("business_hours")) else "after_hours"
            caller.menu = MenuSession(self.f.get("menu" if hours == "business_hours" else "after_hours_menu") or {})
            self.emit("menu", caller, hours=hours)
            self.speak_menu(caller)
        elif caller.phase == "waiting":
            caller.begun = caller.phase
            first = [("queue_welcome", prompt_file("queue_welcome", self.language))] if self.f.get("welcome", True) else []
            self.play(caller, first, then=lambda: self.hold_music(caller))
            self.start_offers(caller)
        elif caller.phase == "ringing" and rec.early_media:
            caller.begun = caller.phase
            self.play(caller, [("ringback", self.ringback())], loop=True)

    def after_compliance(self, caller: Caller) -> None:
        caller.compliance = True
        self.emit("compliance", caller, language=self.language)
        caller.player = None
        caller.rec.early_media = True
        self.proceed(caller)
        self.media_ready(caller.rec)

    # ----- audio --------------------------------------------------------------------------------
    def play(self, caller: Caller, items: list[tuple[str, Path]], then=None, loop: bool = False) -> None:
        """Play the files one after the other (a new play interrupts), then call `then`."""
        caller.gen += 1
        gen = caller.gen
        caller.player = None
        self._next(caller, list(items), gen, then, loop)

    def _next(self, caller: Caller, items: list, gen: int, then, loop: bool) -> None:
        rec = caller.rec
        if caller.gen != gen or rec.state == "ended" or caller.phase == "gone":
            return
        if not items:
            if then is not None:
                then()
            return
        what, path = items.pop(0)
        if rec.aud is None:
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        caller.player = player
        self.emit("played", caller, prompt=what, language=self.language, seconds=round(duration(path), 2))
        if not loop:
            self.host.later(duration(path) + 0.2, lambda: self._next(caller, items, gen, then, loop))

    def speak_menu(self, caller: Caller) -> None:
        names = menu_prompts(caller.menu.keys())
        self.play(caller, [(n, prompt_file(n, self.language)) for n in names])

    def hold_music(self, caller: Caller) -> None:
        """Music or the tone, interrupted by the comfort message every `comfort_every` s."""
        if caller.phase != "waiting":
            return
        self.play(caller, [(self.f.get("waiting") or "music", self.waiting_audio())], loop=True)
        every = self.f.get("comfort_every")
        if every:
            gen = caller.gen
            self.host.later(float(every), lambda: self.comfort(caller, gen))

    def comfort(self, caller: Caller, gen: int) -> None:
        if caller.gen != gen or caller.phase != "waiting":
            return
        self.play(caller, [("queue_comfort", prompt_file("queue_comfort", self.language))],
                  then=lambda: self.hold_music(caller))

    def tone_dir(self) -> Path:
        d = self.host.run_dir / "tones"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def waiting_audio(self) -> Path:
        import numpy as np
        rate = 8000
        if (self.f.get("waiting") or "music") == "tone":
            path = self.tone_dir() / "queue-tone.wav"
            t = np.arange(int(0.5 * rate)) / rate
            burst = 0.3 * np.sin(2 * math.pi * WAITING_TONE_HZ * t)
            samples = np.concatenate([burst, np.zeros(int(2.5 * rate))])
        else:
            path = self.tone_dir() / "queue-music.wav"
            t = np.arange(int(0.4 * rate)) / rate
            env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
            samples = np.concatenate([0.25 * env * np.sin(2 * math.pi * f * t) for f in MUSIC_NOTES_HZ])
        if not path.is_file():
            write_wav(path, (samples * 32767).astype(np.int16))
        return path

    def ringback(self) -> Path:
        """North American ringback (440 + 480 Hz, 2 s on, 4 s off) as the hunt group's early media."""
        import numpy as np
        path = self.tone_dir() / "ringback.wav"
        if not path.is_file():
            rate = 8000
            t = np.arange(2 * rate) / rate
            on = 0.15 * (np.sin(2 * math.pi * 440 * t) + np.sin(2 * math.pi * 480 * t))
            write_wav(path, (np.concatenate([on, np.zeros(4 * rate)]) * 32767).astype(np.int16))
        return path

    # ----- auto attendant -----------------------------------------------------------------------
    def dtmf(self, rec: "CallRecord", digit: str) -> None:
        caller = self.callers.get(rec.key)
        if caller is None or caller.menu is None or caller.phase != "menu":
            return
        step = caller.menu.digit(digit)
        self.emit("key", caller, key=digit, do=step.do, target=step.target)
        prompts = [(n, prompt_file(n, self.language)) for n in step.prompts]
        if step.do == "transfer":
            target = step.target or ""
            if self.uri_for(target) is None:
                self.play(caller, [("aa_invalid", prompt_file("aa_invalid", self.language))],
                          then=lambda: self.speak_menu(caller))
                return
            self.play(caller, prompts, then=lambda: self.transfer(caller, target))
        elif step.do == "repeat":
            self.speak_menu(caller)
        elif step.do == "invalid":
            self.play(caller, prompts, then=lambda: self.speak_menu(caller))
        elif step.do == "exit":
            self.play(caller, prompts, then=lambda: self.host.hangup_record(rec))
        elif step.do == "collect":
            self.play(caller, prompts)

    def transfer(self, caller: Caller, target: str) -> None:
        """The caller goes on to `target` (REFER): a queue or hunt group, a user, a number."""
        uri = self.uri_for(target, via=self.dial, cmp="1" if caller.compliance else "")
        if uri is None:
            return
        caller.phase = "handing"
        caller.player = None
        self.emit("transfer", caller, target=target)
        caller.rec.transfer = "blind"
        caller.rec.call.xfer(uri, pj.CallOpParam(True))

    # ----- hunt group and queue: offers to the members ------------------------------------------
    def start_offers(self, caller: Caller) -> None:
        if self.kind == "call_queue" and self.serving() not in (None, caller):
            return      # first come, first served: the head of the queue is being offered
        caller.waves = plan(self.f.get("policy") or "regular", self.f.get("members") or [], self.routing)
        caller.wave = -1
        self.next_wave(caller)

    def serving(self) -> Caller | None:
        """The queue's head: the caller waiting longest."""
        waiting = [c for c in self.callers.values() if c.phase == "waiting"]
        return min(waiting, key=lambda c: c.since) if waiting else None

    def next_wave(self, caller: Caller) -> None:
        if caller.phase not in ("ringing", "waiting") or caller.rec.state == "ended":
            return
        self.cancel_offers(caller)
        caller.wave += 1
        if caller.wave >= len(caller.waves):
            self.emit("no_answer", caller)
            if self.kind == "hunt_group":
                self.route_away(caller, self.f.get("no_answer") or {"action": "busy"})
            else:       # a queue keeps its caller and goes round again
                self.host.later(1.0, lambda: caller.phase == "waiting" and self.start_offers(caller))
            return
        wave = caller.waves[caller.wave]
        free = MAX_CALLS - sum(r.active for r in self.host.calls.values())
        wave = wave[:max(0, free)]
        if not wave:
            self.host.later(1.0, lambda: self.next_wave(caller) if caller.wave >= 0 else None)
            caller.wave -= 1
            return
        offered(self.f.get("policy") or "regular", wave, self.routing)
        caller.token = f"{self.f['id']}-{next(self.tokens)}-{secrets.token_hex(3)}"
        for ext in wave:
            uri = self.uri_for(ext, offer=caller.token, via=self.dial, caller=caller.number)
            if uri is None:
                continue
            rec = self.host.offer(uri)
            caller.offers[rec.key] = ext
            self.offer_of[rec.key] = caller.rec.key
        self.emit("ringing", caller, members=wave, wave=caller.wave)
        wave_no = caller.wave
        self.host.later(float(self.f.get("advance_after") or 18.0),
                        lambda: caller.wave == wave_no and caller.offers and self.next_wave(caller))
        if not caller.offers:
            self.next_wave(caller)

    def cancel_offers(self, caller: Caller, keep: str | None = None) -> None:
        for key in list(caller.offers):
            if key == keep:
                continue
            rec = self.host.calls.get(key)
            if rec is not None and rec.active:
                self.host.hangup_record(rec)
            caller.offers.pop(key, None)

    def offer_state(self, rec: "CallRecord") -> bool:
        """An offer call changed; True when it was one (the agent does nothing more with it)."""
        caller_key = self.offer_of.get(rec.key)
        if caller_key is None:
            return False
        caller = self.callers.get(caller_key)
        if caller is None or caller.phase == "gone":
            if rec.active:
                self.host.hangup_record(rec)
            return True
        if rec.state == "connected" and rec.key in caller.offers:
            ext = caller.offers[rec.key]
            self.hand_over(caller, ext)
            self.host.later(0.2, lambda: rec.active and self.host.hangup_record(rec))
        elif rec.state == "ended":
            self.offer_of.pop(rec.key, None)
            if caller.offers.pop(rec.key, None) is not None and not caller.offers and caller.phase in ("ringing", "waiting"):
                self.next_wave(caller)     # everyone in the wave refused or went away
        return True

    def hand_over(self, caller: Caller, ext: str) -> None:
        """A member answered: the others stop ringing, the caller goes to that member's line."""
        self.cancel_offers(caller, keep=next(k for k, e in caller.offers.items() if e == ext))
        caller.offers.clear()
        self.routing.answered(ext, time.monotonic())
        uri = self.uri_for(ext, pickup=caller.token, via=self.dial, cmp="1" if caller.compliance else "")
        self.emit("answered", caller, member=ext)
        answered = caller.rec.state in ("connected", "held")
        caller.phase = "handing"
        caller.player = None
        if answered:
            caller.rec.transfer = "blind"
            caller.rec.call.xfer(uri, pj.CallOpParam(True))
        else:
            self.host.redirect(caller.rec, uri)
        if self.kind == "call_queue":
            nxt = self.serving()
            if nxt is not None:
                self.host.later(0.5, lambda: self.start_offers(nxt))

    def route_away(self, caller: Caller, action: dict) -> None:
        """No answer (hunt group) or no room (queue): busy, transfer, or the feature's voicemail."""
        what = action.get("action", "busy")
        caller.phase = "gone"
        self.emit("route", caller, action=what, target=action.get("target"))
        rec = caller.rec
        uri = None
        if what == "transfer":
            uri = self.uri_for(action.get("target") or "", via=self.dial, cmp="1" if caller.compliance else "")
        elif what == "voicemail" and self.host.voicemail:
            uri = self.host.voicemail.format(mailbox=self.dial)
        if uri is None:
            self.host.answer_code(rec, 486, "Busy Here")
        elif rec.state in ("connected", "held"):
            rec.transfer = "blind"
            rec.call.xfer(uri, pj.CallOpParam(True))
        else:
            self.host.redirect(rec, uri)

    def ended(self, rec: "CallRecord") -> None:
        if self.offer_state(rec):
            return
        caller = self.callers.pop(rec.key, None)
        if caller is None:
            return
        was = caller.phase
        caller.phase = "gone"
        caller.player = None
        self.cancel_offers(caller)
        self.emit("left", caller, phase=was)
        if self.kind == "call_queue":
            nxt = self.serving()
            if nxt is not None and not nxt.offers:
                self.start_offers(nxt)
