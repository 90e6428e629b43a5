"""Decoders for what SRCs send, all from libraries (no hand-written codec):

- PCMU / PCMA: aiortp's G.711 codecs (lookup tables, C-speed ``bytes.translate``);
- G722: the ``G722`` package (C extension) through aiortp's wrapper: 16 kHz audio, RTP clock 8000;
- opus: ``opuslib`` (ctypes on the system libopus), decoded at the recording's rate; offered and
  accepted only when libopus loads;
- telephone-event (RFC 4733): recognised and counted, not audio.

Each decoder returns int16 samples at its ``rate``; stateful ones (G722, opus) are one per stream.
"""
from __future__ import annotations

import logging

import numpy as np
from aiortp.codecs.g711 import PcmaCodec, PcmuCodec

log = logging.getLogger("mppsim.recorder")

try:
    from aiortp.codecs.g722 import G722Codec
    G722Codec()
    HAVE_G722 = True
except Exception:   # noqa: BLE001 - the C extension missing or failing: G.722 is then refused
    HAVE_G722 = False

try:
    import opuslib
    opuslib.Decoder(16000, 1)
    HAVE_OPUS = True
except Exception:   # noqa: BLE001 - no libopus on this machine
    HAVE_OPUS = False

# static payload types (RFC 3551) a SDP may use without rtpmap
STATIC = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1)}
TELEPHONE_EVENT = "TELEPHONE-EVENT"


def supported() -> set[str]:
    names = {"PCMU", "PCMA"}
    if HAVE_G722:
        names.add("G722")
    if HAVE_OPUS:
        names.add("OPUS")
    return names


def audio_rate(encoding: str) -> int:
    """Sample rate of the decoded audio (G.722 is wideband although its RTP clock is 8000)."""
    return {"G722": 16000, "OPUS": 16000}.get(encoding.upper(), 8000)


class Decoder:
    rate = 8000

    def decode(self, payload: bytes) -> bytes:
        """s16le PCM bytes at ``self.rate``."""
        raise NotImplementedError


class _G711(Decoder):
    def __init__(self, codec):
        self.codec = codec

    def decode(self, payload: bytes) -> bytes:
        return self.codec.decode(payload)


class _G722(Decoder):
    rate = 16000

    def __init__(self):
        self.codec = G722Codec()

    def decode(self, payload: bytes) -> bytes:
        return self.codec.decode(payload)


class _Opus(Decoder):
    def __init__(self, rate: int):
        self.rate = rate
        self.dec = opuslib.Decoder(rate, 1)     # stereo opus is folded to mono by libopus

    def decode(self, payload: bytes) -> bytes:
        # 120 ms is the longest opus frame
        return self.dec.decode(payload, self.rate * 120 // 1000)


_PCMU, _PCMA = PcmuCodec(), PcmaCodec()   # stateless: shared


def decoder(encoding: str, rate_wanted: int = 16000) -> Decoder | None:
    enc = encoding.upper()
    if enc == "PCMU":
        return _G711(_PCMU)
    if enc == "PCMA":
        return _G711(_PCMA)
    if enc == "G722" and HAVE_G722:
        return _G722()
    if enc == "OPUS" and HAVE_OPUS:
        return _Opus(rate_wanted)
    return None


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """int16 between 8 and 16 kHz: linear interpolation up, a 2-tap average down. Only used when a
    stream's codec rate differs from the recording's (a G.722 re-INVITE on a narrowband file)."""
    if src == dst or len(pcm) == 0:
        return pcm
    if dst == src * 2:
        x = pcm.astype(np.float32)
        out = np.empty(len(x) * 2, np.float32)
        out[0::2] = x
        out[1::2] = np.concatenate((x[1:], x[-1:])) * 0.5 + x * 0.5
        return out.astype(np.int16)
    if src == dst * 2:
        x = pcm[: len(pcm) // 2 * 2].astype(np.int32)
        return ((x[0::2] + x[1::2]) // 2).astype(np.int16)
    n = int(round(len(pcm) * dst / src))
    return np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
