"""Real audio for demos: one chosen device uses the computer's microphone and speaker.

The sound card is opened here with sounddevice (PortAudio), at 8 kHz mono in 20 ms blocks, and
connected to the chosen device's agent over loopback UDP (phone/sound_bridge.py). Every other
device stays simulated. Without PortAudio or any audio device the app runs silent and says so
once. When the sound card goes away mid-call (unplugged, its sound server gone) the stream ends:
the agent is told, the call stays up (simulated from then on) and `on_lost` says so.

The stream asks for 200 ms of latency. A PulseAudio device reached through ALSA's pulse plugin
(how PortAudio reaches PulseAudio and PipeWire) at PortAudio's default 40 ms ran 2-5 blocks a
second instead of 50, and at 100 ms its first block came after 2 s and then 7 in all; at 200 ms
the first came after 0.5 s and then 48-51 a second (a PulseAudio null sink on a loaded 2-core
machine, tests/test_sound_device.py; issue 23).
"""
from __future__ import annotations

import collections
import socket
import threading
import time

import numpy as np

from typing import Callable

from mppsim.app.simulator import Simulator, SimulatorError

RATE, BLOCK = 8000, 160
LATENCY = 0.2      # seconds; see the module docstring
LOST_AFTER = 2.5   # seconds without a block once it ran: the device is gone (start-up stalls last 1 s)
STOP_WAIT = 2.0    # seconds stop() waits for a stream to close


def close_quietly(stream) -> None:
    try:
        stream.stop()
        stream.close()
    except Exception:  # noqa: BLE001 (a stream whose device went away may refuse either)
        pass


def close_or_abandon(stream) -> None:
    """Close `stream`, waiting STOP_WAIT at most. A device that went away can leave PortAudio's
    thread waiting on it for ever (seen with a PulseAudio server killed mid-stream): then the
    stream is left behind, and so is sounddevice's Pa_Terminate at exit, which would wait too
    and keep the process from ending."""
    closing = threading.Thread(target=close_quietly, args=(stream,), daemon=True)
    closing.start()
    closing.join(STOP_WAIT)
    if closing.is_alive():
        import atexit

        import sounddevice
        atexit.unregister(sounddevice._exit_handler)


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

    def __init__(self, sim: Simulator, on_lost: Callable[[str], None] | None = None):
        self.sim = sim
        self.on_lost = on_lost          # called (from PortAudio's thread) when the card goes away
        self.lost = ""                  # the last such sentence
        self.who: str | None = None
        self._lock = threading.Lock()
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
        beat = {"last": 0.0}            # when the sound card last asked for a block (0: not yet)

        def callback(indata, outdata, _frames, _time, _status):
            beat["last"] = time.monotonic()
            sock.sendto(indata.tobytes(), peer)
            outdata[:] = (np.frombuffer(self.speaker.popleft(), dtype=np.int16).reshape(-1, 1)
                          if self.speaker else 0)

        self.stream = sd.Stream(samplerate=RATE, blocksize=BLOCK, channels=1, dtype="int16",
                                device=device, callback=callback, latency=LATENCY,
                                finished_callback=lambda: self._lose(stop, who, device))
        stop = self._stop = threading.Event()      # this stream's: set when it is over, however
        threading.Thread(target=self._receive, args=(sock, stop, beat, who, device), daemon=True,
                         name="real-audio").start()
        self.who = who
        self.stream.start()
        return f"{who} uses this computer's microphone and speaker ({device or 'default device'})."

    def _lose(self, stop: threading.Event, who: str, device: str | None) -> None:
        """The sound card went away under `who`'s stream (PortAudio ended it, or it fell silent):
        the agent stops waiting for the microphone, the call goes on, and on_lost says so."""
        with self._lock:
            if stop.is_set():
                return                     # stop() ended this stream, or it was lost already
            stop.set()
            self.who = None
            stream, self.stream = self.stream, None
        # never stop a stream from its own callback thread, nor wait on a device that is gone
        threading.Thread(target=close_or_abandon, args=(stream,), daemon=True).start()
        self.lost = (f"Computer audio lost: the sound device {device or '(default)'} went away; "
                     f"{who}'s call goes on, simulated")
        try:
            self.sim._agent_req(who, "sound_bridge_off")
        except SimulatorError:
            pass
        if self.on_lost is not None:
            self.on_lost(self.lost)

    def _receive(self, sock: socket.socket, stop: threading.Event, beat: dict, who: str,
                 device: str | None) -> None:
        """The far party's audio for the speaker; and the watchdog: a device that has given blocks
        and then none for LOST_AFTER seconds is gone (PortAudio may wait on it for ever)."""
        sock.settimeout(0.25)
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(4096)
                self.speaker.append(data)
            except socket.timeout:
                pass
            except OSError:
                return
            if beat["last"] and time.monotonic() - beat["last"] > LOST_AFTER:
                self._lose(stop, who, device)
                return

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            stream, self.stream = self.stream, None
        if stream is not None:
            close_or_abandon(stream)
        if self.who is not None:
            try:
                self.sim._agent_req(self.who, "sound_bridge_off")
            except SimulatorError:
                pass
            self.who = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
