"""Audio a simulated device sends (tone, file, silence) and captures (what its user hears)."""
from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pjsua2 as pj

from .analysis import Heard, analyse
from .endpoint import CLOCK_RATE

FRAME_SAMPLES = CLOCK_RATE // 50  # 20 ms


def audio_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = CLOCK_RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = 20000
    return fmt


class CapturePort(pj.AudioMediaPort):
    """Keeps every frame a call delivers, stamped with the monotonic time it arrived.

    onFrameReceived runs on pjmedia's clock thread; the list append is atomic under the GIL.
    """

    def __init__(self, name: str):
        super().__init__()
        self.frames: list[tuple[float, np.ndarray]] = []
        self.active = True
        self.createPort(name, audio_format())

    def onFrameReceived(self, frame):  # noqa: N802 (pjsua2 name)
        if not self.active:
            return   # idle in the pool (the bridge calls every port, linked or not)
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        else:
            samples = np.frombuffer(bytes(frame.buf), dtype=np.int16)
        self.frames.append((time.monotonic(), samples))

    def onFrameRequested(self, frame):  # noqa: N802
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE

    def samples(self, since: float | None = None) -> np.ndarray:
        frames = self.frames[:]  # snapshot: the clock thread keeps appending
        if since is not None:
            frames = [f for f in frames if f[0] >= since]
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([f[1] for f in frames])

    def heard(self, seconds: float | None = None) -> Heard:
        since = None if seconds is None else time.monotonic() - seconds
        return analyse(self.samples(since), CLOCK_RATE)

    def save_wav(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(CLOCK_RATE)
            w.writeframes(self.samples().tobytes())


class PortPool:
    """Conference ports with Python callbacks are reused, never destroyed while pjsua runs:
    the bridge removes a port asynchronously, so a port deleted from Python can still be called
    back into a freed object (seen: a recorder worker died that way)."""

    def __init__(self, make):
        self.make = make
        self.idle: list = []
        self.all: list = []          # every port ever made, kept alive

    def take(self, name: str):
        if self.idle:
            port = self.idle.pop()
        else:
            port = self.make(name)
            self.all.append(port)
        port.frames = type(port.frames)()
        port.active = True
        return port

    def give_back(self, port) -> None:
        port.active = False
        port.frames = type(port.frames)()
        self.idle.append(port)


class Source:
    """What the device sends into its active calls: a steady tone, a looped WAV file, or nothing."""

    def __init__(self):
        self.port: pj.AudioMedia | None = None
        self.description: dict = {"kind": "silence"}

    def set_tone(self, freq: float, volume_db: float = -10.0) -> None:
        gen = pj.ToneGenerator()
        gen.createToneGenerator(CLOCK_RATE, 1)
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
