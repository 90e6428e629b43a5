"""src/mppsim/recorder/rtp/beat.py: the recorder reads its RTP sockets on a 10 ms beat (issue 22,
item 6), on real UDP sockets and a real asyncio loop."""
from __future__ import annotations

import asyncio
import select
import socket
import time

import pytest

from mppsim.recorder.rtp.beat import BEAT, Beat
from mppsim.recorder.rtp.ports import rtp_sockets

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="no epoll here (Linux only)")


class Got:
    def __init__(self):
        self.port = 0
        self.packets: list[tuple[float, bytes]] = []

    def connection_made(self, transport):
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data, addr):
        self.packets.append((time.monotonic(), data))


def test_every_packet_of_every_socket_is_read_in_order_within_a_beat_or_two():
    async def main():
        loop = asyncio.get_running_loop()
        beat = Beat(loop)
        socks = rtp_sockets("127.0.0.1", 2)
        got = [Got(), Got()]
        for sock, rx in zip(socks, got):
            beat.add(sock, rx)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent_at = []
        for i in range(30):                        # 3 packets a beat per socket at times
            for rx in got:
                tx.sendto(bytes([i]) * 172, ("127.0.0.1", rx.port))
            sent_at.append(time.monotonic())
            if i % 3 == 2:
                await asyncio.sleep(BEAT)
        await asyncio.sleep(3 * BEAT)
        tx.close()
        beat.close()
        return got, sent_at, beat.beats

    got, sent_at, beats = asyncio.run(main())
    for rx in got:
        assert [p[1][0] for p in rx.packets] == list(range(30))          # all, in order
        late = [t - s for (t, _d), s in zip(rx.packets, sent_at)]
        assert max(late) < 0.1, late                                     # read within the beat
    assert beats >= 10                                                   # it ran on its timer


def test_a_closed_stream_is_no_longer_read_and_the_beat_stops_with_the_last():
    async def main():
        loop = asyncio.get_running_loop()
        beat = Beat(loop)
        a, b = rtp_sockets("127.0.0.1", 2)
        ra, rb = Got(), Got()
        ta = beat.add(a, ra)
        tb = beat.add(b, rb)
        port_a = ra.port
        ta.close()
        assert a.fileno() == -1                                          # the socket is closed
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(b"x" * 20, ("127.0.0.1", rb.port))
        await asyncio.sleep(3 * BEAT)
        assert [d for _t, d in rb.packets] == [b"x" * 20]
        tb.close()
        stopped = beat._timer is None
        n = beat.beats
        await asyncio.sleep(3 * BEAT)
        tx.close()
        return port_a, stopped, n, beat.beats

    port_a, stopped, before, after = asyncio.run(main())
    assert port_a > 0
    assert stopped and before == after                                   # no sockets: no timer
