"""RTP captures for SIPp's `play_pcap_audio`: tones encoded as PCMU, PCMA or G.722, one or more
streams in one pcap file.

SIPp (3.6.1) plays a pcap to the first `m=audio` of the far end's SDP, and shifts every packet's
destination port by (packet's port - lowest port in the capture). So a capture with stream k sent
to BASE + 2*k reaches the recorder's k-th `m=audio` when the recorder answers its streams on
consecutive even ports (P, P+2, ...), which is what tests/test_sipp_recorder.py relies on and
checks (see `stream_offset`).

Encoders are independent of the recorder's decoders: G.711 from the stdlib's `audioop` (CPython
< 3.13, as mppsim requires), G.722 from the `g722` package (sippy's libg722).
"""
from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8, "G722": 9}
SAMPLE_RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}   # audio rate (G.722 RTP clock is 8000)
STREAM_PORT_STEP = 2        # stream k goes to the far end's first RTP port + 2*k
PCAP_BASE_PORT = 40000      # any: SIPp only uses the differences between ports
PTIME = 0.02


def tone(freq: float, seconds: float, rate: int = 8000, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def encode(codec: str, pcm: np.ndarray) -> bytes:
    """pcm: int16 at SAMPLE_RATES[codec]."""
    raw = pcm.astype("<i2").tobytes()
    if codec == "PCMU":
        return audioop.lin2ulaw(raw, 2)
    if codec == "PCMA":
        return audioop.lin2alaw(raw, 2)
    if codec == "G722":
        from G722 import G722
        return bytes(G722(16000, 64000).encode(pcm.astype(np.int16)))
    raise ValueError(f"codec: {codec!r}; allowed: {', '.join(PAYLOAD_TYPES)}")


@dataclass
class Stream:
    """One RTP stream of a capture: `freq` Hz for `seconds`, starting `start` s into the capture."""
    freq: float
    seconds: float
    codec: str = "PCMU"
    start: float = 0.0
    ssrc: int = 0x1000
    payload_type: int | None = None      # default: the codec's static type
    garbage_every: int = 0               # every n-th packet replaced by junk (not RTP at all)

    def packets(self) -> list[tuple[float, bytes]]:
        rate = SAMPLE_RATES[self.codec]
        encoded = encode(self.codec, tone(self.freq, self.seconds, rate))
        frame = len(encoded) // int(round(self.seconds / PTIME))    # bytes per 20 ms
        pt = PAYLOAD_TYPES[self.codec] if self.payload_type is None else self.payload_type
        out = []
        for i in range(len(encoded) // frame):
            header = struct.pack("!BBHII", 0x80, pt | (0x80 if i == 0 else 0), i & 0xFFFF,
                                 (i * 160) & 0xFFFFFFFF, self.ssrc)
            payload = header + encoded[i * frame:(i + 1) * frame]
            if self.garbage_every and i % self.garbage_every == self.garbage_every - 1:
                payload = b"\x00junk" * 7
            out.append((self.start + i * PTIME, payload))
        return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _frame(src_port: int, dst_port: int, payload: bytes) -> bytes:
    """Ethernet + IPv4 + UDP around one RTP packet (SIPp rewrites addresses, ports, checksum)."""
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\0" * 12 + b"\x08\x00" + ip + udp


def write_pcap(path: Path, streams: list[Stream | None]) -> Path:
    """Stream k (None = nothing on it) to PCAP_BASE_PORT + STREAM_PORT_STEP * k, in time order."""
    packets = []
    for k, s in enumerate(streams):
        if s is None:
            continue
        port = PCAP_BASE_PORT + STREAM_PORT_STEP * k
        packets += [(t, k, _frame(port, port, p)) for t, p in s.packets()]
    if not packets:
        raise ValueError("streams: at least one stream needs packets")
    packets.sort(key=lambda p: (p[0], p[1]))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))     # DLT_EN10MB
        for t, _k, frame in packets:
            sec, usec = int(t), int(round((t - int(t)) * 1e6))
            f.write(struct.pack("<IIII", 1_700_000_000 + sec, usec, len(frame), len(frame)) + frame)
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.peers.rtp_pcap streams.pcap 700 1100 --seconds 10 --codec PCMA`: a capture
    for SIPp's play_pcap_audio with one tone per stream (stream k to the answer's port + 2k)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tests.peers.rtp_pcap", description=main.__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("freqs", type=float, nargs="+", help="one tone (Hz) per stream")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--codec", default="PCMU", choices=sorted(PAYLOAD_TYPES))
    args = ap.parse_args(argv)
    write_pcap(args.out, [Stream(f, args.seconds, args.codec, ssrc=0x1000 + k) for k, f in enumerate(args.freqs)])
    print(f"{args.out}: {len(args.freqs)} streams of {args.seconds:g} s {args.codec}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
