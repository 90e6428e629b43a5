"""Loopback port plan for one run: an RTP range per line (and the recorder workers' ports).

Agents bind their SIP ports themselves (port 0) and report them; see docs/decisions.md.
Everything planned here lies below Linux's ephemeral range (32768-60999 by default), which
every outgoing TCP connection and every port-0 bind draws from: a port planned there can be
taken by anybody between the check and the bind.
"""
from __future__ import annotations

import random
import socket

BLOCK = 50          # ports per line: SIP at +0, RTP/RTCP pairs from +10 (40 ports)
RTP_OFFSET = 10
LOW, HIGH = 10000, 32700


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

    def __init__(self, rng: random.Random | None = None, host: str = "127.0.0.1",
                 span: tuple[int, int] | None = None):
        self.rng = rng or random.Random()
        self.used: set[int] = set()
        self.host = host                        # issue 21: the run's address (network.address)
        self.low, self.high = span or (LOW, HIGH)   # network.rtp_ports: what a firewall opens

    def line_ports(self) -> tuple[int, int]:
        for _ in range(200):
            base = self.rng.randrange(self.low, self.high - BLOCK, 2)
            if any(abs(base - u) < BLOCK for u in self.used):
                continue
            if port_free(base, self.host) and port_free(base + RTP_OFFSET, self.host) \
                    and port_free(base + RTP_OFFSET + 1, self.host):
                self.used.add(base)
                return base, base + RTP_OFFSET
        raise RuntimeError("no free loopback ports found for a SIP line")

    def rtp_range(self) -> int:
        """First port of a line's RTP range (RTP_OFFSET.. of a block)."""
        return self.line_ports()[1]

    def single(self) -> int:
        sip, _ = self.line_ports()
        return sip
