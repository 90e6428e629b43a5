"""The voicemail agent's service: answer, greet, beep, keep the message (R-USR-3 deposits).

The network edge of users' agents redirects unanswered and declined calls here (302); the
mailbox is the Request-URI's user part. The deposit is recorded over SIPREC by the edge when the
mailbox owner's recordVoicemailEnabled is on (phone/edge.py, rules/policy.py).
"""
from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import pjsua2 as pj

from .announcements import duration, tone_wav
from .calls import CallRecord, MailboxCall
from mppsim.sip.uri import name_and_user
from .voicemail_menu import RETRIEVAL_CODE, Mailbox, MenuSession, prompt_file

if TYPE_CHECKING:
    from .host import FeatureHost
    from .media import Capture

GREETING = Path(__file__).resolve().parents[1] / "assets" / "speech" / "voicemail-greeting-en.wav"


class VoicemailService:
    def __init__(self, host: "FeatureHost"):
        self.host = host

    # ----- retrieval (issue 13): the owner calls in and uses the spoken menu ---------------------
    def is_retrieval(self, mailbox: str) -> bool:
        """*86 or the voicemail number itself: the caller's own mailbox, not a deposit."""
        return mailbox in (RETRIEVAL_CODE, self.host.lines[0].extension)

    def box(self, extension: str) -> Mailbox:
        return Mailbox(self.host.run_dir / "voicemail" / extension)

    def retrieve(self, rec: CallRecord) -> None:
        owner = name_and_user(rec.remote_uri)[1]
        if owner not in self.host.mailboxes:
            self.host.answer_code(rec, 404, "No Such Mailbox")
            return
        rec.voicemail = MailboxCall(retrieval=owner)
        self.host.answer_code(rec, 200)
        rec.voicemail.greeting = True          # the menu starts when the media is up

    def language(self, extension: str) -> str:
        line = self.host.mailboxes.get(extension, "")
        settings = self.host.edge.settings.get(line) if self.host.edge else None
        return settings.language if settings is not None else "en_us"

    def _menu_start(self, rec: CallRecord) -> None:
        owner = rec.voicemail.retrieval
        session = MenuSession(self.box(owner))
        rec.voicemail.menu = session
        self.host.emit("voicemail_menu", call=rec.key, mailbox=owner, step="start",
                        new=session.mailbox.new_count(), messages=len(session.mailbox.messages()))
        self._run(rec, session.start())

    def dtmf(self, rec: CallRecord, digit: str) -> None:
        state = rec.voicemail
        session = state.menu if state is not None else None
        if session is None or rec.state == "ended":
            return
        actions = session.digit(digit)
        self.host.emit("voicemail_menu", call=rec.key, mailbox=state.retrieval, step=digit,
                       new=session.mailbox.new_count(), messages=len(session.mailbox.messages()))
        self.mwi(state.retrieval)
        self._run(rec, actions)

    def _run(self, rec: CallRecord, actions: list[tuple[str, str]]) -> None:
        """Play the actions one after the other; a new digit interrupts (generation counter)."""
        rec.voicemail.menu_gen = gen = rec.voicemail.menu_gen + 1
        rec.voicemail.player = None          # dropping the player stops it
        self._next(rec, list(actions), gen)

    def _next(self, rec: CallRecord, actions: list, gen: int) -> None:
        if rec.voicemail.menu_gen != gen or rec.state == "ended" or not actions:
            return
        kind, what = actions.pop(0)
        if kind == "hangup":
            self.host.hangup_record(rec)
            return
        if kind == "prompt":
            path = prompt_file(what, self.language(rec.voicemail.retrieval))
        else:
            path = self.box(rec.voicemail.retrieval).folder / what
        if rec.aud is None or not path.is_file():
            self._next(rec, actions, gen)
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        rec.voicemail.player = player
        self.host.emit("voicemail_played", call=rec.key, kind=kind, what=what, file=str(path),
                        seconds=round(duration(path), 2))
        self.host.later(duration(path) + 0.25, lambda: self._next(rec, actions, gen))

    def mwi(self, extension: str) -> None:
        """Message waiting: the count of new messages in the mailbox, for the lamp and badge."""
        line = self.host.mailboxes.get(extension)
        if line:
            self.host.emit("mwi", mailbox=extension, line=line, new=self.box(extension).new_count())

    # ----- deposits ---------------------------------------------------------------------------
    def take_message(self, rec: CallRecord) -> None:
        """Answer at once; the greeting starts when the call's media is up (greeting())."""
        rec.voicemail = MailboxCall()
        self.host.answer_code(rec, 200)
        rec.voicemail.greeting = True

    def media_ready(self, rec: CallRecord) -> None:
        """The call's stream exists (again): the first time, greet (or start the menu)."""
        state = rec.voicemail
        if state is None or not state.greeting:
            return
        state.greeting = False
        if rec.aud is None:
            return
        if state.retrieval:
            self._menu_start(rec)
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(GREETING), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        state.player = player
        self.host.later(duration(GREETING) + 0.2, lambda: self.beep(rec))

    def beep(self, rec: CallRecord) -> None:
        rec.voicemail.player = None
        if rec.state == "ended" or rec.aud is None:
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(tone_wav("beep", self.host.run_dir / "tones")), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        rec.voicemail.player = player
        if rec.capture is not None:   # capture sample index, after the beep
            rec.voicemail.message_from = rec.capture.position() + int(0.3 * 8000)
        if self.host.edge is not None:
            self.host.edge.voicemail_deposit(rec.key)

    def call_over(self, rec: CallRecord, capture: "Capture") -> None:
        """The call's capture file is closed: a deposit that reached the beep left a message."""
        if rec.voicemail is not None and rec.voicemail.message_from is not None:
            self.save_message(rec, capture)

    def save_message(self, rec: CallRecord, capture: "Capture") -> None:
        """Keep what the caller said after the beep as the message (a WAV per message),
        cut from the call's closed capture file (phone/media.Capture)."""
        samples = capture.samples(rec.voicemail.message_from)
        mailbox = rec.mailbox or "unknown"
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{rec.key.replace(':', '-')}.wav"
        path = self.host.run_dir / "voicemail" / mailbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())
        _name, caller = name_and_user(rec.remote_uri)
        self.host.emit("voicemail_message", mailbox=mailbox, caller=caller, file=str(path),
                        seconds=round(samples.size / 8000, 2), heard=capture.heard(None).to_dict())
        self.mwi(mailbox)
