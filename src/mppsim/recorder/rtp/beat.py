"""Read every recorded stream's socket on a beat, instead of waking for each packet.

Why (docs/scaling.md, issue 22): at 100 calls recorded both sides the recorder takes 20,000
RTP packets a second on 400 sockets. Woken per packet, the recorder switched ~7,400 times a
second, and every sender's `sendto` paid for waking it. On a beat the recorder sleeps in its
timer; a packet that arrives meanwhile only marks its socket ready (epoll with nobody waiting:
no task to wake), and each beat reads every ready socket until none is left.

The cost: a packet is read up to BEAT s after it arrived. Both streams of a session are read
in the same beat, so their placement on the recording's timeline moves together; the session
holds JITTER (0.2 s) of audio back before it writes, far more than a beat.

Linux only (epoll); elsewhere, and with MPPSIM_RTP_BEAT=0, the streams are asyncio datagram
endpoints as before (`make_beat` returns None).
"""
from __future__ import annotations

import asyncio
import os
import select
import socket
from typing import Callable, Protocol

BEAT = 0.01          # s between reads: 10 ms, half an RTP packet interval
MAX_DATAGRAM = 2048


class Receiver(Protocol):
    def connection_made(self, transport) -> None: ...
    def datagram_received(self, data: bytes, addr) -> None: ...


class BeatTransport:
    """What a StreamReceiver needs of its transport: its port, and close."""

    def __init__(self, beat: "Beat", sock: socket.socket):
        self._beat, self._sock = beat, sock

    def get_extra_info(self, name: str, default=None):
        return self._sock.getsockname() if name == "sockname" else default

    def close(self) -> None:
        self._beat.remove(self._sock)


class Beat:
    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = BEAT):
        self.loop = loop
        self.interval = interval
        self._epoll = select.epoll()
        # fd -> (socket, socket.recv, receiver.datagram_received): the bound methods made once,
        # not twice per packet
        self._by_fd: dict[int, tuple[socket.socket, Callable, Callable]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._next = 0.0
        self.beats = 0

    def add(self, sock: socket.socket, receiver: Receiver) -> BeatTransport:
        sock.setblocking(False)
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._by_fd[sock.fileno()] = (sock, sock.recv, receiver.datagram_received)
        transport = BeatTransport(self, sock)
        receiver.connection_made(transport)
        if self._timer is None:
            self._next = self.loop.time() + self.interval
            self._timer = self.loop.call_at(self._next, self._run)
        return transport

    def remove(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        if fd >= 0 and self._by_fd.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:
                pass
        sock.close()
        if not self._by_fd and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        for entry in list(self._by_fd.values()):
            self.remove(entry[0])
        self._epoll.close()

    def _run(self) -> None:
        self.beats += 1
        try:
            self.read_ready()
        finally:
            if self._by_fd:
                # the next beat on the grid; after a stall, the next one from now
                now = self.loop.time()
                self._next += self.interval
                if self._next <= now:
                    self._next = now + self.interval
                self._timer = self.loop.call_at(self._next, self._run)
            else:
                self._timer = None

    def read_ready(self) -> int:
        """One datagram from each ready socket, again until none is ready (level-triggered):
        no read ends in EAGAIN, the usual case being one packet per socket per beat."""
        got = 0
        by_fd = self._by_fd
        events = self._epoll.poll(0)
        while events:
            for fd, _mask in events:
                entry = by_fd.get(fd)
                if entry is None:
                    continue
                _sock, recv, deliver = entry
                try:
                    data = recv(MAX_DATAGRAM)       # the sender's address is not used: no tuple
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    continue            # an ICMP error queued on the socket: nothing to read
                got += 1
                deliver(data, None)
            events = self._epoll.poll(0)
        return got


def make_beat(loop: asyncio.AbstractEventLoop) -> Beat | None:
    if not hasattr(select, "epoll") or os.environ.get("MPPSIM_RTP_BEAT") == "0":
        return None
    return Beat(loop)
