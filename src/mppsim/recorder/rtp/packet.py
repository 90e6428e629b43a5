"""RTP fixed header (RFC 3550 §5.1): the fields a receiver needs, garbage told apart."""
from __future__ import annotations

import struct
from typing import NamedTuple

_HEADER = struct.Struct("!BBHII")


class RtpPacket(NamedTuple):
    pt: int
    seq: int
    ts: int
    ssrc: int
    marker: bool
    payload: bytes


def is_rtcp(data: bytes) -> bool:
    """RTCP sent to the RTP port (a=rtcp or rtcp-mux): packet types 200-204 (RFC 5761 §4)."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 200 <= data[1] <= 204


def parse(data: bytes) -> RtpPacket | None:
    """The packet, or None when it is not RTP version 2 with a consistent length."""
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        return None
    offset = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:                                      # header extension (RFC 3550 §5.3.1)
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    end = len(data)
    if b0 & 0x20:                                      # padding: the last byte counts it
        pad = data[-1]
        if pad == 0 or pad > end - offset:
            return None
        end -= pad
    if offset > end:
        return None
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), data[offset:end])
