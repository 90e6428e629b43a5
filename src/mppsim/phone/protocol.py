"""The control channel between the app and its agents: JSON lines over TCP.

One JSON object per line, UTF-8. Three shapes (docs/protocol.md):
  request  {"id": 7, "cmd": "dial", "args": {...}}          app -> agent
  reply    {"reply": 7, "ok": true, "result": {...}}        agent -> app
           {"reply": 7, "ok": false, "error": "text"}
  event    {"event": "call", ...}                           agent -> app
The first line an agent sends after connecting is the event "hello" naming itself.

Authentication (issue 22, docs/protocol.md "Who may command an agent"): the app makes a secret
per run and writes it into each agent's config. On accept the app sends a challenge; the
agent's hello carries its own nonce and an HMAC-SHA256 proof over both nonces; the app answers
with a welcome that proves the same secret the other way. Only then does either side act on a
line. The agent listens on nothing: it takes commands only on the connection it opened to its
run, after that run proved the secret. With TLS (`control_tls`) the agent also pins the app's
certificate by its SHA-256 fingerprint from the config, and the whole channel is encrypted.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import ssl
import threading
from typing import Any, Iterator

MAX_LINE = 1 << 20  # a line longer than this is a protocol error


AUTH_SCHEME = "hmac-sha256"
HANDSHAKE_TIMEOUT = 10.0   # s for the other side's next handshake line


class ChannelClosed(ConnectionError):
    pass


class AuthError(ConnectionError):
    """The other end of the control channel did not prove the run's secret."""


def new_secret() -> str:
    return secrets.token_hex(32)


def new_nonce() -> str:
    return secrets.token_hex(16)


def proof(secret: str, role: str, agent: str, first: str, second: str) -> str:
    """HMAC-SHA256 of `role|agent|first|second` under the run's secret. The role ("agent" or
    "app") keeps a proof from being reflected back as the other side's; the nonces of both
    sides keep it from being replayed on another connection."""
    msg = "|".join((role, agent, first, second)).encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def proof_ok(secret: str, given: object, role: str, agent: str, first: str, second: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given, proof(secret, role, agent, first, second))


def cert_fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def client_tls_context() -> ssl.SSLContext:
    """The agent's TLS context: no CA (the run's certificate is self-signed); the peer is
    checked by fingerprint after the handshake (Channel.connect)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Channel:
    """A JSON-lines connection. send() is thread safe; read from one thread only."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()
        self._buf = b""
        self.pending: list[dict[str, Any]] = []   # read during the handshake, not yet handled
        self.closed = False

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0,
                tls_fingerprint: str | None = None) -> "Channel":
        """A connection to the app; with `tls_fingerprint`, over TLS to exactly that certificate."""
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_fingerprint:
            sock = client_tls_context().wrap_socket(sock)
            der = sock.getpeercert(binary_form=True) or b""
            if not hmac.compare_digest(cert_fingerprint(der), tls_fingerprint.lower()):
                sock.close()
                raise AuthError(f"control channel: the certificate of {host}:{port} is not this run's")
        sock.settimeout(None)
        return cls(sock)

    def read_message(self, timeout: float = HANDSHAKE_TIMEOUT) -> dict[str, Any]:
        """The next message, waiting at most `timeout` (handshake only: the loops use select)."""
        if self.pending:
            return self.pending.pop(0)
        self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    batch = self.read_available()
                except ValueError as exc:
                    raise ChannelClosed(f"not a JSON line: {exc}") from exc
                if batch:
                    self.pending.extend(batch[1:])
                    return batch[0]
        finally:
            if not self.closed:
                try:
                    self.sock.settimeout(None)
                except OSError:
                    pass

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
        if self.pending:
            batch, self.pending = self.pending, []
            return batch
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
