"""Real audio for demos: one chosen device uses the computer's microphone and speaker.

The sound card is opened here with sounddevice (PortAudio), at 8 kHz mono in 20 ms blocks, and
connected to the chosen device's agent over loopback UDP (phone/sound_bridge.py). Every other
device stays simulated. Without PortAudio or any audio device the app runs silent and says so
once.
"""
from __future__ import annotations

import collections
import socket
import threading

import numpy as np

from mppsim.app.simulator import Simulator, SimulatorError

RATE, BLOCK = 8000, 160


def audio_devices() -> tuple[list[str], str | None]:
    """(names of devices with both input and output, why there are none)."""
    try:
        import sounddevice as sd
    except OSError as exc:              # the PortAudio library is missing
        return [], f"no audio: {exc}"
    try:
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001 (PortAudio reports many kinds of failure)
        return [], f"no audio: {exc}"
    names = [d["name"] for d in devices if d["max_input_channels"] > 0 and d["max_output_channels"] > 0]
    return names, None if names else "no audio device with a microphone and a speaker"


class RealAudio:
    """At most one device at a time is connected to the sound card."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        self.who: str | None = None
        self.stream = None
        self.sock: socket.socket | None = None
        self.speaker: collections.deque[bytes] = collections.deque(maxlen=10)
        self.said_silent = False
        self._stop = threading.Event()

    def start(self, who: str, device: str | None = None) -> str:
        """Connect `who`'s device to the sound card. Returns a sentence for the user."""
        self.stop()
        names, why = audio_devices()
        if why is not None:
            if self.said_silent:
                return ""
            self.said_silent = True
            return f"Running silent: {why}."
        import sounddevice as sd
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        try:
            agent_port = self.sim._agent_req(who, "sound_bridge", port=self.sock.getsockname()[1])["port"]
        except SimulatorError as exc:
            self.sock.close()
            self.sock = None
            return f"Real audio refused: {exc}"
        peer = ("127.0.0.1", agent_port)
        sock = self.sock

        def callback(indata, outdata, _frames, _time, _status):
            sock.sendto(indata.tobytes(), peer)
            outdata[:] = (np.frombuffer(self.speaker.popleft(), dtype=np.int16).reshape(-1, 1)
                          if self.speaker else 0)

        self.stream = sd.Stream(samplerate=RATE, blocksize=BLOCK, channels=1, dtype="int16",
                                device=device, callback=callback)
        self._stop.clear()
        threading.Thread(target=self._receive, daemon=True, name="real-audio").start()
        self.stream.start()
        self.who = who
        return f"{who} uses this computer's microphone and speaker ({device or 'default device'})."

    def _receive(self) -> None:
        while not self._stop.is_set() and self.sock is not None:
            try:
                data, _ = self.sock.recvfrom(4096)
            except OSError:
                return
            self.speaker.append(data)

    def stop(self) -> None:
        self._stop.set()
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
        if self.who is not None:
            try:
                self.sim._agent_req(self.who, "sound_bridge_off")
            except SimulatorError:
                pass
            self.who = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
