"""Real audio for one device: the computer's microphone and speaker, for demos.

The sound card belongs to the GUI process (sounddevice, ui/real_audio.py); the agent exchanges
20 ms frames of 8 kHz 16-bit PCM with it over a loopback UDP socket. In the agent the bridge is
a conference port: as the device's source it sends what the microphone hears into the active
call (instead of a tone), and the active call's received audio is sent back to the speaker.
"""
from __future__ import annotations

import collections
import socket
import threading

import pjsua2 as pj

from .media import FRAME_SAMPLES, audio_format

FRAME_BYTES = FRAME_SAMPLES * 2
MAX_QUEUED = 10   # 200 ms: beyond that the oldest microphone frames are dropped (no drift)


class SoundBridge(pj.AudioMediaPort):
    def __init__(self, gui_port: int):
        super().__init__()
        self.peer = ("127.0.0.1", gui_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.mic: collections.deque[bytes] = collections.deque(maxlen=MAX_QUEUED)
        self.running = True
        self.createPort("soundcard", audio_format())
        threading.Thread(target=self._receive, name="sound-bridge", daemon=True).start()

    def _receive(self) -> None:
        """Microphone frames from the GUI (no pjsua calls on this thread)."""
        while self.running:
            try:
                data, _ = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(data) == FRAME_BYTES:
                self.mic.append(data)

    def onFrameRequested(self, frame):  # noqa: N802  (media clock thread: what the mic says)
        if self.mic:
            frame.buf = pj.ByteVector(self.mic.popleft())
            frame.size = FRAME_BYTES
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        else:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE

    def onFrameReceived(self, frame):  # noqa: N802  (what the user hears -> the speaker)
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO:
            try:
                self.sock.sendto(bytes(frame.buf), self.peer)
            except OSError:
                pass

    def close(self) -> None:
        self.running = False
        self.sock.close()
