"""Plays the network's announcements and tones to the parties of a call (pjsua2 side).

To the remote party = into the call's stream (what the far end receives); to the local user =
into the call's capture port (what the user hears). Never into a SIPREC stream: the fork takes
the user's own source and the far end's received audio only (phone/siprec.py), so what is played
here cannot reach a recording (R-USR-4, R-CMP-6).

An inbound call still ringing has no media: for the compliance announcement before answer
(R-CMP-2) the network answers 183 Session Progress with SDP (early media) and plays it then.
"""
from __future__ import annotations

from pathlib import Path

import pjsua2 as pj

from mppsim.rules.policy import LOCAL, REMOTE, Play

from .announcements import audio_file, duration


class Announcer:
    def __init__(self, agent, tone_dir: Path):
        self.agent = agent
        self.tone_dir = tone_dir
        self.pending: dict[str, list[Play]] = {}     # call key -> plays waiting for media
        self.players: list[pj.AudioMediaPlayer] = []  # kept until they are done

    def play(self, key: str, play: Play) -> None:
        rec = self.agent.calls.get(key)
        if rec is None or rec.state == "ended":
            return
        if rec.aud is None:
            self.pending.setdefault(key, []).append(play)
            if rec.state == "ringing" and not rec.early_media:
                rec.early_media = True
                self.agent.answer_code(rec, 183)     # early media for the announcement
            return
        self._start(rec, play)

    def media_ready(self, key: str) -> None:
        """The call's stream exists (again): play what was waiting."""
        rec = self.agent.calls.get(key)
        if rec is None or rec.aud is None:
            return
        for play in self.pending.pop(key, []):
            self._start(rec, play)

    def _start(self, rec, play: Play) -> None:
        path = audio_file(play.kind, play.language, play.audio, self.tone_dir)
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), pj.PJMEDIA_FILE_NO_LOOP)
        if REMOTE in play.to:
            player.startTransmit(rec.aud)
        if LOCAL in play.to and rec.capture is not None:
            player.startTransmit(rec.capture.port)
        self.players.append(player)
        self.agent.emit("played", call=rec.key, kind=play.kind, to=list(play.to), file=Path(path).name,
                        seconds=round(duration(path), 2))
        # Drop the player once it is done: removing its port also removes its links.
        self.agent.later(duration(path) + 0.3, lambda: self._done(player))

    def _done(self, player) -> None:
        if player in self.players:
            self.players.remove(player)
