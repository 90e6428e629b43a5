"""The control channel between the app and its agents: JSON lines over TCP.

One JSON object per line, UTF-8. Three shapes (docs/protocol.md):
  request  {"id": 7, "cmd": "dial", "args": {...}}          app -> agent
  reply    {"reply": 7, "ok": true, "result": {...}}        agent -> app
           {"reply": 7, "ok": false, "error": "text"}
  event    {"event": "call", ...}                           agent -> app
The first line an agent sends after connecting is the event "hello" naming itself.
"""
from __future__ import annotations

import json
import socket
import threading
from typing import Any, Iterator

MAX_LINE = 1 << 20  # a line longer than this is a protocol error


class ChannelClosed(ConnectionError):
    pass


class Channel:
    """A JSON-lines connection. send() is thread safe; read from one thread only."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._buf = b""
        self.closed = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0) -> "Channel":
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, obj: dict[str, Any]) -> None:
        self.send_many([obj])

    def send_many(self, objs: list[dict[str, Any]]) -> None:
        """Several messages in one write (one wake-up of the reader)."""
        data = "".join(json.dumps(obj, separators=(",", ":")) + "\n" for obj in objs).encode()
        with self._send_lock:
            if self.closed:
                raise ChannelClosed("channel closed")
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self.closed = True
                raise ChannelClosed(str(exc)) from exc

    def read_available(self) -> list[dict[str, Any]]:
        """Read once from the socket (it must be readable) and return complete messages.

        Raises ChannelClosed at end of stream.
        """
        try:
            chunk = self.sock.recv(65536)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc
        if not chunk:
            raise ChannelClosed("peer closed the channel")
        self._buf += chunk
        return self._split()

    def messages(self) -> Iterator[dict[str, Any]]:
        """Blocking iterator over messages until the channel closes."""
        while True:
            try:
                batch = self.read_available()
            except ChannelClosed:
                return
            yield from batch

    def _split(self) -> list[dict[str, Any]]:
        out = []
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            if line.strip():
                out.append(json.loads(line))
        if len(self._buf) > MAX_LINE:
            raise ChannelClosed("line too long")
        return out

    def close(self) -> None:
        with self._send_lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
