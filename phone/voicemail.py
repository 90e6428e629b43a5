"""The voicemail agent's service: answer, greet, beep, keep the message (R-USR-3 deposits).

The network edge of users' agents redirects unanswered and declined calls here (302); the
mailbox is the Request-URI's user part. The deposit is recorded over SIPREC by the edge when the
mailbox owner's recordVoicemailEnabled is on (phone/edge.py, recording/policy.py).
"""
from __future__ import annotations

import time
import wave
from pathlib import Path

import pjsua2 as pj

from .announcements import duration, tone_wav
from .calls import CallRecord
from .sipuri import parse_name_addr

GREETING = Path(__file__).resolve().parents[1] / "assets" / "speech" / "voicemail-greeting-en.wav"


class VoicemailService:
    def __init__(self, agent):
        self.agent = agent

    def take_message(self, rec: CallRecord) -> None:
        """Answer at once; the greeting starts when the call's media is up (greeting())."""
        self.agent.answer_code(rec, 200)
        rec.extra["greeting"] = True

    def greeting(self, rec: CallRecord) -> None:
        if rec.extra.pop("greeting", None) is None or rec.aud is None:
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(GREETING), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        rec.extra["player"] = player
        self.agent.later(duration(GREETING) + 0.2, lambda: self.beep(rec))

    def beep(self, rec: CallRecord) -> None:
        rec.extra.pop("player", None)
        if rec.state == "ended" or rec.aud is None:
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(tone_wav("beep", self.agent.run_dir / "tones")), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(rec.aud)
        rec.extra["player"] = player
        if rec.capture is not None:   # capture sample index, after the beep
            rec.extra["message_from"] = rec.capture.position() + int(0.3 * 8000)
        if self.agent.edge is not None:
            self.agent.edge.voicemail_deposit(rec.key)

    def save_message(self, rec: CallRecord, capture) -> None:
        """Keep what the caller said after the beep as the message (a WAV per message),
        cut from the call's closed capture file (phone/media.Capture)."""
        samples = capture.samples(rec.extra["message_from"])
        mailbox = rec.extra.get("mailbox", "unknown")
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{rec.key.replace(':', '-')}.wav"
        path = self.agent.run_dir / "voicemail" / mailbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())
        _name, caller = parse_name_addr(rec.remote_uri)
        self.agent.emit("voicemail_message", mailbox=mailbox, caller=caller, file=str(path),
                        seconds=round(samples.size / 8000, 2), heard=capture.heard(None).to_dict())
