"""The SIP toolkit's size limits, and the recorder's per-source request rate limit
(docs/protocol.md, "Recorder limits").

``MAX_MESSAGE`` is the one message size every mppsim SIP endpoint accepts (front door, network
SRC, recorder; UDP and TCP alike): 65535 bytes, the largest IP datagram (RFC 791 / RFC 8200 16-bit
length fields). A message a peer could not also have sent over UDP is not one a real SBC sends,
and one limit on every transport keeps a message's fate independent of how it came. It is 16 times
the 4000 bytes of the PyPI pjsua2 (PJSIP_MAX_PKT_LEN) and ten times the 4-7 kB SIPREC requests with
metadata that SBCs and the webex dialect send (tests/test_siprec_sipp.py sends over 6000 bytes);
the recorder has held every transport to it since issue 9. Before issue 20 the front door took
65536, the network SRC 1 MiB and the recorder 65535.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

MAX_MESSAGE = 65535         # bytes, head and body of one message
MAX_HEADERS = 256           # header lines of one message: more is an attack, not a quirk

RATE_PER_SOURCE = 200.0     # requests/s sustained per source IP ...
BURST_PER_SOURCE = 400.0    # ... with this burst


@dataclass
class Bucket:
    tokens: float = BURST_PER_SOURCE
    at: float = field(default_factory=time.monotonic)

    def take(self, rate: float, burst: float) -> bool:
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
