"""Call waiting at the network edge of a line (issue 13, part 3).

A second call to a line that has one call up (connected or held) rings as a **waiting** call
instead of getting 486 Busy: the caller hears ringback, the user hears the call-waiting tone
over the call they are in (never the other party, never the recording), and both faces show
both calls. Answering it holds the first (the agent's `answer` already does). A third call, or a
second one while the line is still setting a call up, gets 486 Busy.

Why the limit of two: pjsua's PyPI build has 4 calls per process (../shared/DESIGN.md), and a
recorded user needs one SIPREC session per recorded call: active + its SIPREC + waiting + its
SIPREC = 4 (docs/decisions.md, "Call waiting").

The tone: the North American call-waiting tone (Telcordia GR-506 / ITU-T E.180 practice):
440 Hz, one 300 ms burst when the waiting call arrives, repeated every 10 s while it rings.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .announcements import SAMPLE_RATE, write_wav

if TYPE_CHECKING:
    from .calls import CallRecord
    from .host import FeatureHost

CW_FREQ_HZ = 440.0
CW_BURST_S = 0.300
CW_REPEAT_S = 10.0
CW_LEVEL_DBFS = -13.0
MAX_CALLS_PER_LINE = 2      # active (or held) + waiting


def cw_tone(rate: int = SAMPLE_RATE) -> np.ndarray:
    """One call-waiting burst as int16 samples (5 ms raised-cosine ramps: no clicks)."""
    n = int(round(CW_BURST_S * rate))
    x = np.sin(2 * np.pi * CW_FREQ_HZ * np.arange(n) / rate)
    ramp = int(0.005 * rate)
    r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    x[:ramp] *= r
    x[n - ramp:] *= r[::-1]
    return (x * 32767 * 10 ** (CW_LEVEL_DBFS / 20)).astype(np.int16)


def may_wait(others: list[str]) -> bool:
    """Pure rule: a new incoming call may ring as waiting when the line's other live calls are
    exactly one, and it is up (connected or held). `others` = their states."""
    return len(others) == 1 and others[0] in ("connected", "held")


class CallWaiting:
    def __init__(self, host: "FeatureHost", tone_dir: Path):
        self.host = host
        self.tone_path = Path(tone_dir) / "call-waiting.wav"
        self.players: list = []

    def accepts(self, rec: "CallRecord") -> bool:
        others = [r.state for r in self.host.calls.values()
                  if r.active and r is not rec and r.line == rec.line]
        return may_wait(others)

    def ringing(self, rec: "CallRecord") -> None:
        """The waiting call rings: mark it and start the tone cadence."""
        rec.waiting = True
        self._beep(rec)

    def _beep(self, rec: "CallRecord") -> None:
        if rec.state != "ringing":
            return
        import pjsua2 as pj
        if not self.tone_path.exists():
            write_wav(self.tone_path, cw_tone())
        for other in self.host.calls.values():
            # what the user hears = the capture of the call they are in (not a held one)
            if (other is not rec and other.active and other.line == rec.line and other.state == "connected"
                    and other.capture is not None and other.capture.port is not None):
                player = pj.AudioMediaPlayer()
                player.createPlayer(str(self.tone_path), pj.PJMEDIA_FILE_NO_LOOP)
                player.startTransmit(other.capture.port)
                if self.host.sound is not None:
                    player.startTransmit(self.host.sound)
                self.players.append(player)
                self.host.emit("call_waiting_tone", call=other.key, waiting=rec.key)
                self.host.later(CW_BURST_S + 0.3, lambda p=player: self._done(p))
        self.host.later(CW_REPEAT_S, lambda: self._beep(rec))

    def _done(self, player) -> None:
        if player in self.players:
            self.players.remove(player)
