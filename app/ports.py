"""Loopback port plan for one run: a SIP port (UDP and TCP) and an RTP range per line."""
from __future__ import annotations

import random
import socket

BLOCK = 50          # ports per line: SIP at +0, RTP/RTCP pairs from +10 (40 ports)
RTP_OFFSET = 10
LOW, HIGH = 20000, 60000


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


class PortPlan:
    """Hands out blocks of BLOCK ports whose SIP and first RTP ports are free right now.

    Random bases keep two runs on one machine (a test and the app, say) apart; pjsua itself
    steps over an RTP port that is taken within a line's range.
    """

    def __init__(self, rng: random.Random | None = None):
        self.rng = rng or random.Random()
        self.used: set[int] = set()

    def line_ports(self) -> tuple[int, int]:
        for _ in range(200):
            base = self.rng.randrange(LOW, HIGH - BLOCK, 2)
            if any(abs(base - u) < BLOCK for u in self.used):
                continue
            if port_free(base) and port_free(base + RTP_OFFSET) and port_free(base + RTP_OFFSET + 1):
                self.used.add(base)
                return base, base + RTP_OFFSET
        raise RuntimeError("no free loopback ports found for a SIP line")

    def single(self) -> int:
        sip, _ = self.line_ports()
        return sip
