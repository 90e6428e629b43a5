"""Decoders for what SRCs send, from libraries where one is right (G.711 is two 256-entry tables):

- PCMU / PCMA: G.711 tables built here at import from the ITU G.711 segment formulas (256 entries
  each, applied with numpy indexing). aiortp 0.8.0's A-law table has the wrong sign (0xD5 decodes
  to -8, ITU says +8): a PCMA stream was stored polarity-inverted, and a mix of a PCMA and a PCMU
  channel cancelled what both carried. Its µ-law table is right but one source for both is simpler;
- G722: the ``G722`` package (C extension) through aiortp's wrapper: 16 kHz audio, RTP clock 8000;
- opus: ``opuslib`` (ctypes on the system libopus), decoded at the recording's rate; offered and
  accepted only when libopus loads;
- telephone-event (RFC 4733): recognised and counted, not audio;
- rate changes (a G.722 stream in a narrowband file, or the reverse): a windowed-sinc FIR, one per
  stream (its history spans packets), not a 2-tap average. soxr was tried: its streaming mode
  holds back 30-110 ms and releases it in bursts, which breaks placing packets by position.

Each decoder returns int16 samples at its ``rate``; stateful ones (G722, opus) are one per stream.
"""
from __future__ import annotations

import logging

import numpy as np

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


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    """(A-law, µ-law) code -> int16, from ITU-T G.711 tables 1a/2a: a code is sign, 3-bit segment,
    4-bit step; A-law codes are sent with even bits inverted (XOR 0x55), µ-law with all bits
    inverted. Values are on the 16-bit scale (A-law's 13-bit and µ-law's 14-bit levels shifted)."""
    code = np.arange(256)
    a = code ^ 0x55
    seg, step = (a >> 4) & 7, a & 15
    mag = np.where(seg == 0, 8 * (2 * step + 1), (8 * (2 * step + 33)) << np.maximum(seg - 1, 0))
    alaw = np.where(a & 0x80, mag, -mag)               # A-law: sign bit 1 = positive
    u = ~code & 0xFF
    seg, step = (u >> 4) & 7, u & 15
    mag = ((2 * step + 33) << (seg + 2)) - 132           # µ-law: bias 33 on the 14-bit scale
    ulaw = np.where(u & 0x80, -mag, mag)                 # µ-law: sign bit 1 = negative
    return alaw.astype(np.int16), ulaw.astype(np.int16)


def _g711_encoders() -> tuple[np.ndarray, np.ndarray]:
    """(A-law, µ-law) int16 (as uint16 index) -> code, the G.711 encoder's segment search."""
    x = np.arange(65536, dtype=np.int64)
    x = np.where(x >= 32768, x - 65536, x)
    # A-law on 13 bits: negative values are one's-complemented (-1 is the smallest negative step)
    v = x >> 3
    positive = v >= 0
    v = np.where(positive, v, -v - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), v)
    step = np.where(seg < 2, v >> 1, v >> np.minimum(np.maximum(seg, 1), 7)) & 0xF
    a = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | step)
    alaw = a ^ np.where(positive, 0xD5, 0x55)
    # µ-law on 14 bits, clipped at 8159, biased by 33
    v = x >> 2
    negative = v < 0
    v = np.minimum(np.where(negative, -v, v), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), v)
    u = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((v >> (np.minimum(seg, 7) + 1)) & 0xF))
    ulaw = u ^ np.where(negative, 0x7F, 0xFF)
    return alaw.astype(np.uint8), ulaw.astype(np.uint8)


ALAW_DECODE, ULAW_DECODE = _g711_tables()
ALAW_ENCODE, ULAW_ENCODE = _g711_encoders()


class G711Codec:
    """One G.711 law: ``decode`` code bytes -> s16le, ``encode`` s16le -> code bytes (the same
    interface as aiortp's codecs, which tests and tools used to encode tones)."""

    def __init__(self, decode_table: np.ndarray, encode_table: np.ndarray):
        self._dec, self._enc = decode_table, encode_table
        # each code byte's sample as two translate tables (low and high byte of s16le): a
        # packet decodes with two bytes.translate, about half numpy's cost per 160-byte packet
        le = decode_table.astype("<i2").view(np.uint8).reshape(256, 2)
        self._lo, self._hi = le[:, 0].tobytes(), le[:, 1].tobytes()

    def decode(self, payload: bytes) -> bytes:
        out = bytearray(2 * len(payload))
        out[0::2] = payload.translate(self._lo)
        out[1::2] = payload.translate(self._hi)
        return bytes(out)

    def encode(self, pcm: bytes) -> bytes:
        return self._enc[np.frombuffer(pcm, "<u2")].tobytes()


def PcmaCodec() -> G711Codec:       # noqa: N802 - the name aiortp's class had; callers keep it
    return G711Codec(ALAW_DECODE, ALAW_ENCODE)


def PcmuCodec() -> G711Codec:       # noqa: N802
    return G711Codec(ULAW_DECODE, ULAW_ENCODE)


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


def _halfband_lowpass(taps: int = 63, cutoff: float = 0.2375, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed sinc, cut-off as a fraction of the high rate (0.2375 x 16 kHz = 3.8 kHz);
    with 63 taps a 5 kHz tone folding to 3 kHz is ~70 dB down (a 2-tap average keeps ~30 % of it)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, beta)
    return h / h.sum()


_LOWPASS = _halfband_lowpass()


class Resampler:
    """One stream's 2:1 rate change (16 kHz G.722 in an 8 kHz file, or 8 kHz G.711 in a 16 kHz
    one): an FIR low-pass whose history spans packets, so every packet gives exactly its share of
    samples (the receiver places packets by position). The filter's delay, 31 samples at 16 kHz
    (~2 ms), is the same for every packet. Other ratios never occur (opus is decoded at the file's
    rate) and fall back to linear interpolation."""

    def __init__(self, src: int, dst: int):
        self.src, self.dst = src, dst
        self._hist = np.zeros(len(_LOWPASS) - 1, np.float64)

    def _filter(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate((self._hist, x))
        self._hist = buf[len(buf) - len(self._hist):]
        return np.convolve(buf, _LOWPASS, mode="valid")

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        if self.src == self.dst or len(pcm) == 0:
            return pcm
        if self.src == 2 * self.dst:
            y = self._filter(pcm.astype(np.float64))[0::2]
        elif self.dst == 2 * self.src:
            up = np.zeros(2 * len(pcm))
            up[0::2] = pcm
            y = 2 * self._filter(up)
        else:
            n = int(round(len(pcm) * self.dst / self.src))
            y = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm)
        return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """int16 from ``src`` to ``dst`` Hz in one piece (a fresh Resampler: no history kept)."""
    return Resampler(src, dst)(pcm)
