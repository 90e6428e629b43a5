"""Audio a simulated device sends (tone, file, silence) and captures (what its user hears).

All of it native pjmedia ports: no Python runs per 20 ms frame in an agent.
"""
from __future__ import annotations

import os
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import pjsua2 as pj

from .endpoint import CLOCK_RATE

if TYPE_CHECKING:   # numpy is imported when audio is analysed: an idle agent stays small
    import numpy as np

    from .analysis import Heard

WAV_HEADER = 44   # pjmedia's WAV writer: RIFF + fmt (16) + data header, PCM

FRAME_SAMPLES = CLOCK_RATE // 50  # 20 ms


def audio_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = CLOCK_RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = 20000
    return fmt


SILENCE_SECONDS = 60   # the silent loop's length: the media clock must be read within it


class MediaClock:
    """The conference bridge's own timeline, in samples: how far the looped silent player has
    played. The bridge reads the player once per 20 ms tick while anything listens to it, and
    every capture listens, so capture sample k was written at tick `capture.start + k`.
    Wall-clock mapping would drift: a loaded machine's media clock loses a few ticks a minute.
    """

    def __init__(self, tone_dir: Path):
        self.player = silent_player(tone_dir)
        self.total = 0
        self.last = self.player.getPos()

    def now(self) -> int:
        """Samples played so far; read at least once per SILENCE_SECONDS (the agent's loop
        reads it every pass, at least twice a second)."""
        pos = self.player.getPos()
        self.total += (pos - self.last) % (SILENCE_SECONDS * CLOCK_RATE)
        self.last = pos
        return self.total


class Capture:
    """What the user of one call hears, written by pjmedia's own WAV writer (no Python per frame).

    The silent player is linked to the writer besides the call: the bridge hands a port with
    nothing linked a NULL frame that the writer skips, so without it the file would have holes.
    pjmedia and stdio buffer up to ~0.5 s before it reaches the disk; the audio is read back and
    analysed only when somebody asks (`listen`, `hears`, reports), positions in MediaClock samples.
    """

    def __init__(self, path: Path, clock: MediaClock):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self.recorder: pj.AudioMediaRecorder | None = pj.AudioMediaRecorder()
        self.recorder.createRecorder(str(path))
        self.start = clock.now()          # media position of the file's first sample
        self.wall0 = time.time()
        clock.player.startTransmit(self.recorder)

    @property
    def port(self) -> "pj.AudioMedia | None":
        return self.recorder

    def available(self) -> int:
        """Samples on disk so far."""
        try:
            return max(0, (self.path.stat().st_size - WAV_HEADER) // 2)
        except OSError:
            return 0

    def position(self) -> int:
        """Samples the bridge has written into this capture by now (on disk or buffered)."""
        return self.clock.now() - self.start

    def samples(self, first: int = 0, last: int | None = None) -> "np.ndarray":
        """Samples [first, last) of the capture (sample indices; last None = what is on disk)."""
        import numpy as np
        n = self.available()
        first = min(n, max(0, first))
        last = n if last is None else min(n, max(first, last))
        if last <= first:
            return np.zeros(0, dtype=np.int16)
        with open(self.path, "rb") as f:
            f.seek(WAV_HEADER + 2 * first)
            data = f.read(2 * (last - first))
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")

    def heard(self, seconds: float | None = None, end: int | None = None) -> "Heard":
        """Analysis of the `seconds` before sample `end` (None = the end on disk)."""
        from .analysis import analyse
        end = self.available() if end is None else end
        first = 0 if seconds is None else end - int(round(seconds * CLOCK_RATE))
        return analyse(self.samples(first, end), CLOCK_RATE)

    def close(self) -> None:
        """Stop writing: pjmedia flushes and fixes the header when the port is really removed
        (asynchronously, within a bridge tick or two: see `closed`)."""
        self.recorder = None      # dropping the last reference destroys the pjsua recorder

    def closed(self) -> bool:
        """The writer has flushed and written the final header (data size = file size - 44)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(WAV_HEADER)
            size = self.path.stat().st_size
        except OSError:
            return False
        return len(head) == WAV_HEADER and int.from_bytes(head[40:44], "little") == size - WAV_HEADER


def silent_player(tone_dir: Path) -> pj.AudioMediaPlayer:
    """A looped SILENCE_SECONDS of silence (see MediaClock and Capture)."""
    path = tone_dir / f"silence-{SILENCE_SECONDS}s.wav"
    if not path.exists():
        tone_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(CLOCK_RATE)
            w.writeframes(bytes(2 * CLOCK_RATE * SILENCE_SECONDS))
        os.replace(tmp, path)
    player = pj.AudioMediaPlayer()
    player.createPlayer(str(path), 0)   # 0 = loop
    return player


TONEGEN_MAX_HZ = 3200   # pjmedia's ToneGenerator is right up to here at 8 kHz (measured)
HIGH_TONE_RATE = 16000  # above it, a generator at this rate; the bridge resamples it to 8 kHz


class Source:
    """What the device sends into its active calls: a steady tone, a looped WAV file, or nothing."""

    def __init__(self):
        self.port: pj.AudioMedia | None = None
        self.description: dict = {"kind": "silence"}

    def set_tone(self, freq: float, volume_db: float = -10.0) -> None:
        """A steady tone from pjmedia's own generator (not a looped file: pjmedia's file player
        adds a silent frame at every loop)."""
        gen = pj.ToneGenerator()
        # pjmedia's generator folds tones above 3200 Hz at 8 kHz (3300 Hz comes out at 1900 Hz);
        # at 16 kHz they are exact, and the bridge's resampler brings them to 8 kHz
        gen.createToneGenerator(HIGH_TONE_RATE if freq > TONEGEN_MAX_HZ else CLOCK_RATE, 1)
        desc = pj.ToneDesc()
        desc.freq1 = int(freq)
        desc.freq2 = 0
        desc.on_msec = 10000
        desc.off_msec = 0
        desc.volume = int(32767 * 10 ** (volume_db / 20))
        tones = pj.ToneDescVector()
        tones.append(desc)
        gen.play(tones, True)
        self.port = gen
        self.description = {"kind": "tone", "freq_hz": freq}

    def set_file(self, path: str) -> None:
        if not Path(path).is_file():
            raise ValueError(f"file: {path} does not exist")
        player = pj.AudioMediaPlayer()
        player.createPlayer(path, 0)  # 0 = loop
        self.port = player
        self.description = {"kind": "file", "file": path}

    def set_silence(self) -> None:
        self.port = None
        self.description = {"kind": "silence"}
