"""RTP ports for a recording session's streams."""
from __future__ import annotations

import random
import socket

RTP_LOW, RTP_HIGH = 20000, 60000     # the range app/ports.py plans in; the kernel's is 32768+


def rtp_sockets(host: str, count: int) -> list[socket.socket]:
    """UDP sockets on even ports P, P+2, P+4...: the RTP ports of one session's streams. Many
    SRCs (SIPp's pcap play among them) send stream i to P + 2i, so the pair stays together;
    RTCP comes to the same port (a=rtcp), P+1 is left alone."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        base = random.randrange(RTP_LOW, RTP_HIGH - 2 * count, 2)
        socks = []
        try:
            for i in range(count):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((host, base + 2 * i))
            for sock in socks:
                sock.setblocking(False)
            return socks
        except OSError:
            for sock in socks:
                sock.close()
    raise OSError("no free even RTP port pair found")
