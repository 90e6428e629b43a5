"""One recorded stream: a UDP socket, RTP in, PCM on the recording's timeline, quality counters.

Placement: the first packet (and every new SSRC, or a timestamp jump that disagrees with the
arrival time by more than `REANCHOR` s) anchors the stream's RTP clock to its arrival time
since the session began; every later packet goes where its timestamp says. The two streams of a
session are thus aligned by arrival, and each stays continuous by its own clock. Missing audio
(loss, silence suppression, pause) is silence. A packet whose place was already written is `late`.

Counters (issue 9, Build 4): received, lost (sequence gaps: expected - received, per SSRC),
late, wrong_pt (a payload type the SDP did not announce, or one not decodable), dtmf
(RFC 4733 events), duplicates, garbage (not RTP), rtcp.
"""
from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from mppsim.recorder.rtp import codecs, srtp
from mppsim.recorder.rtp.packet import is_rtcp, parse

_HEADER = struct.Struct("!xBHII")   # the fixed header after its first byte: M/PT, seq, ts, SSRC
REANCHOR = 2.0                     # s: a sender stalled by load is not a timestamp jump
SILENCE = 16                       # |sample| at or below this is silence (suspect)


@dataclass
class StreamStats:
    received: int = 0
    lost: int = 0
    late: int = 0
    wrong_pt: int = 0
    dtmf: int = 0
    duplicates: int = 0
    garbage: int = 0
    rtcp: int = 0
    bytes: int = 0
    peak: int = 0              # largest |sample| decoded: all-silence detection (suspect)
    codecs: list[str] = field(default_factory=list)
    srtp: str = ""             # the SRTP suite when the stream is SRTP (SDES), else ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class _Seq:
    """Sequence accounting for one SSRC (RFC 3550 appendix A.1, simplified)."""

    def __init__(self, seq: int):
        self.base = self.max = seq
        self.cycles = 0
        self.received = 0

    def update(self, seq: int) -> str:
        """'ok', 'dup' or 'old' (arrived after a later one)."""
        delta = (seq - self.max) & 0xFFFF
        if delta == 0:
            return "dup" if self.received else "ok"
        if delta < 0x8000:
            if seq < self.max:
                self.cycles += 1 << 16
            self.max = seq
            return "ok"
        return "old"

    @property
    def expected(self) -> int:
        return self.cycles + self.max - self.base + 1


class StreamReceiver(asyncio.DatagramProtocol):
    def __init__(self, rate: int, t0: float):
        self.rate = rate                   # the recording's sample rate; 0 = not decided yet
        self.on_first = None               # called with the encoding of the first audio packet
        self.t0 = t0                       # session start (monotonic)
        self.payload_types: dict[int, tuple[str, int]] = {}   # pt -> (encoding, rtp clock)
        self.decoders: dict[int, codecs.Decoder] = {}
        self._resamplers: dict[int, codecs.Resampler] = {}    # pt -> its stream's rate change
        self.events: set[int] = set()      # telephone-event pts
        self.stats = StreamStats()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.last_rx = 0.0                 # monotonic time of the last RTP packet
        self._pending: list[tuple[int, bytes]] = []           # (sample position, s16le pcm)
        self._written = 0                  # samples of this stream already handed out
        self._anchor: tuple[int, int, int] | None = None      # (ssrc, rtp ts, position)
        self._clock = 8000
        self._seqs: dict[int, _Seq] = {}
        self._lost_done = 0                # losses of SSRCs no longer sending
        self._last_pt = -1
        self.high = 0                      # end of the latest audio received (samples)
        self.srtp: srtp.Inbound | None = None   # SDES-keyed SRTP (issue 21), else plain RTP

    # -- configuration (SDP) ----------------------------------------------------------------
    def set_formats(self, formats: dict[int, tuple[str, int]]) -> None:
        """The payload types the SRC announced for this m-line: pt -> (encoding, clock)."""
        old, self.payload_types = self.payload_types, dict(formats)
        self.events = {pt for pt, (enc, _c) in formats.items() if enc.upper() == codecs.TELEPHONE_EVENT}
        # same codec: keep its state; new ones are made at their first packet (_decoder): an
        # offer lists formats never sent, and a G.722 or opus decoder costs ~0.2 ms to make
        self.decoders = {pt: dec for pt, dec in self.decoders.items()
                         if pt in formats and old.get(pt) == formats[pt]}

    def set_crypto(self, m) -> None:
        """The m-line's SDES key (a=crypto): SRTP from now on, and our key for the answer (the
        same context while the SRC keeps its key: its rollover counter lives there)."""
        theirs = srtp.offered(m.attributes)
        if theirs is None:
            self.srtp = None
        elif self.srtp is None or self.srtp.theirs != theirs:
            self.srtp = srtp.Inbound(theirs)
        m.answer_crypto = self.srtp.ours.attribute if self.srtp is not None else ""
        self.stats.srtp = self.srtp.theirs.suite if self.srtp is not None else ""

    def _decoder(self, pt: int) -> codecs.Decoder | None:
        dec = self.decoders.get(pt)
        if dec is None and pt in self.payload_types and pt not in self.events:
            dec = codecs.decoder(self.payload_types[pt][0], self.rate or 16000)
            if dec is not None:
                self.decoders[pt] = dec
        return dec

    # -- asyncio protocol --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def error_received(self, exc) -> None:
        pass

    def datagram_received(self, data: bytes, addr) -> None:
        st = self.stats
        if self.srtp is not None:
            plain = self.srtp.unprotect(data)
            if plain is None:
                st.garbage += 1            # not authenticated: a wrong key, a replay, plain RTP
                return
            data = plain
        # the common packet (no CSRC, extension or padding) without building an RtpPacket:
        # this runs 50 times a second per stream, hundreds of streams
        if len(data) > 12 and data[0] == 0x80:
            pt, seq, ts, ssrc = _HEADER.unpack_from(data)
            pt &= 0x7F
            payload = data[12:]
        else:
            pkt = parse(data)
            if pkt is None:
                if is_rtcp(data):
                    st.rtcp += 1
                else:
                    st.garbage += 1
                return
            pt, seq, ts, ssrc, payload = pkt.pt, pkt.seq, pkt.ts, pkt.ssrc, pkt.payload
        if 72 <= pt <= 76:                 # RTCP SR/RR/SDES/BYE/APP on the RTP port
            st.rtcp += 1
            return
        now = time.monotonic()
        self.last_rx = now
        seqs = self._seqs.get(ssrc)
        if seqs is None:
            seqs = self._seqs[ssrc] = _Seq(seq)
            order = "ok"
        else:
            order = seqs.update(seq)
        if order == "dup":
            st.duplicates += 1
            return
        seqs.received += 1
        st.received += 1
        st.bytes += len(payload)
        if pt in self.events:
            st.dtmf += 1
            return
        dec = self._decoder(pt)
        if dec is None:
            st.wrong_pt += 1
            return
        enc, clock = self.payload_types[pt]
        if not self.rate:
            if self.on_first is not None:
                self.on_first(enc)         # the session picks the file's rate for all streams
            if not self.rate:
                self.rate = codecs.audio_rate(enc)
        if pt != self._last_pt:
            self._last_pt = pt
            if enc not in st.codecs:
                st.codecs.append(enc)
        # where this packet goes on the recording's timeline
        arrival = int((now - self.t0) * self.rate)
        anchor = self._anchor
        if anchor is None or anchor[0] != ssrc or clock != self._clock:
            pos = arrival
            self._anchor, self._clock = (ssrc, ts, pos), clock
        else:
            delta = (ts - anchor[1]) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            pos = anchor[2] + delta * self.rate // clock
            if abs(pos - arrival) > REANCHOR * self.rate:
                pos = arrival              # a timestamp jump: trust the clock on the wall
                self._anchor = (ssrc, ts, pos)
        try:
            pcm = dec.decode(payload)
        except Exception:   # noqa: BLE001 - a corrupt payload is a lost packet, not a crash
            st.garbage += 1
            return
        if dec.rate != self.rate:
            rs = self._resamplers.get(pt)
            if rs is None or (rs.src, rs.dst) != (dec.rate, self.rate):
                rs = self._resamplers[pt] = codecs.Resampler(dec.rate, self.rate)
            pcm = rs(np.frombuffer(pcm, np.int16)).tobytes()
        if pos + len(pcm) // 2 <= self._written:
            st.late += 1
            return
        if order == "old":
            st.late += 1                   # reordered, but still in time to be placed
        self._pending.append((pos, pcm))
        end = pos + len(pcm) // 2
        if end > self.high:
            self.high = end

    # -- output ------------------------------------------------------------------------------
    def drain(self, upto: int) -> np.ndarray:
        """The stream's samples from where the last drain stopped up to position ``upto``."""
        n = upto - self._written
        if n <= 0:
            return np.zeros(0, np.int16)
        pending = self._pending
        if pending and pending[0][0] == self._written:
            # the usual case: the packets lie end to end from where the last drain stopped
            # (in order, none lost) and reach `upto`, and none that came later lies before it:
            # one join instead of a copy per packet (the same samples as _drain_copy)
            pcms, at = [], self._written
            for i, (pos, pcm) in enumerate(pending):
                if pos != at or at >= upto:
                    break
                pcms.append(pcm)
                at += len(pcm) // 2
            else:
                i = len(pending)
            if at >= upto and all(pos >= upto for pos, _pcm in pending[i:]):
                joined = b"".join(pcms)
                cut = 2 * n
                self._pending = ([(upto, joined[cut:])] if len(joined) > cut else []) + pending[i:]
                self._written = upto
                return self._peak_of(np.frombuffer(joined[:cut], np.int16))
        return self._drain_copy(upto)

    def _drain_copy(self, upto: int) -> np.ndarray:
        """drain's general case: gaps (silence), overlaps and packets out of order."""
        n = upto - self._written
        if n <= 0:
            return np.zeros(0, np.int16)
        out = bytearray(2 * n)
        keep = []
        start = self._written
        for pos, pcm in self._pending:
            end = pos + len(pcm) // 2
            if pos >= upto:
                keep.append((pos, pcm))
                continue
            a, b = max(pos, start), min(end, upto)
            if b > a:
                out[2 * (a - start):2 * (b - start)] = pcm[2 * (a - pos):2 * (b - pos)]
            if end > upto:
                keep.append((upto, pcm[2 * (upto - pos):]))
        self._pending = keep
        self._written = upto
        return self._peak_of(np.frombuffer(out, np.int16))

    def _peak_of(self, samples: np.ndarray) -> np.ndarray:
        if self.stats.peak <= SILENCE:     # only until the stream is known not to be all silence
            peak = max(int(samples.max()), -int(samples.min()))
            if peak > self.stats.peak:
                self.stats.peak = peak
        return samples

    def skip(self, upto: int) -> None:
        """Drop everything before ``upto`` (paused time is never stored)."""
        self.drain(upto)

    def final_stats(self) -> dict:
        st = self.stats
        st.lost = max(0, sum(s.expected - s.received for s in self._seqs.values()))
        return st.as_dict()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
