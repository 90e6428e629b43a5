"""SIP transports of the recorder: UDP, TCP and TLS on asyncio (RFC 3261 §18). The I/O only:
where a message ends on a stream is the SIP toolkit's (`mppsim.sip.framing`).

Each received message goes to ``on_message(data, peer)``; ``peer.send(bytes)`` answers on the same
transport (UDP: to the source address and port, as the recorder answers the sender - RFC 3581
symmetric response; TCP/TLS: on the same connection).

Stream transports frame by Content-Length and defend the server (issue 9, class 11):
- a message larger than ``MAX_MESSAGE`` is answered 513 (when it can be) and the connection closed;
- a message begun but not completed within ``PARTIAL_TIMEOUT`` closes the connection;
- a connection with no complete message for ``IDLE_TIMEOUT`` and no live session on it is closed;
- at most ``MAX_CONNECTIONS_PER_SOURCE`` connections per source IP (further ones are closed at once).
"""
from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mppsim.sip.framing import MessageTooLarge, next_message, pending
from mppsim.sip.limits import MAX_MESSAGE

log = logging.getLogger("mppsim.recorder")

IDLE_TIMEOUT = 30.0
PARTIAL_TIMEOUT = 10.0
MAX_CONNECTIONS_PER_SOURCE = 512


@dataclass(eq=False)
class Peer:
    """Where a message came from and how to answer it."""
    transport: str                    # udp | tcp | tls
    addr: tuple[str, int]
    _send: Callable[[bytes], None]
    connection: "StreamConnection | None" = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def send(self, data: bytes) -> None:
        try:
            self._send(data)
        except (OSError, RuntimeError) as exc:   # a closed connection: the peer went away
            log.debug("send to %s failed: %s", self.addr, exc)

    def __str__(self) -> str:
        return f"{self.transport}:{self.addr[0]}:{self.addr[1]}"


Handler = Callable[[bytes, Peer], None]
Oversize = Callable[[bytes, Peer], None]   # head of a too-large message: answer 513 if possible


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_message: Handler):
        self.on_message = on_message
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if not data.strip(b"\r\n\x00 "):
            return                     # keep-alive (CRLF, RFC 5626) or empty
        peer = Peer("udp", (addr[0], addr[1]), lambda b, a=addr: self.transport.sendto(b, a))
        self.on_message(data, peer)

    def error_received(self, exc):    # ICMP port unreachable for an answer: nothing to do
        log.debug("udp error: %s", exc)


@dataclass(eq=False)
class StreamConnection:
    server: "StreamServer"
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: Peer = field(init=False)
    sessions: int = 0                  # live recording sessions whose dialog uses this connection
    last_message: float = field(default_factory=time.monotonic)
    closed: bool = False               # the peer or we closed it; nothing more can arrive on it

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:   # noqa: BLE001 - already closed
            pass


class StreamServer:
    """TCP (or TLS with ``ssl_context``) listener with Content-Length framing and limits."""

    on_close: Callable[["StreamConnection"], None] = staticmethod(lambda _conn: None)

    def __init__(self, on_message: Handler, on_oversize: Oversize, ssl_context=None,
                 idle_timeout: float = IDLE_TIMEOUT, partial_timeout: float = PARTIAL_TIMEOUT,
                 max_per_source: int = MAX_CONNECTIONS_PER_SOURCE):
        self.on_message, self.on_oversize = on_message, on_oversize
        self.ssl_context = ssl_context
        self.name = "tls" if ssl_context else "tcp"
        self.idle_timeout, self.partial_timeout = idle_timeout, partial_timeout
        self.max_per_source = max_per_source
        self.connections: set[StreamConnection] = set()
        self.per_source: dict[str, int] = {}
        self.refused_connections = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Listen; ``reuse_port``: the recorder's worker processes share the port (SO_REUSEPORT,
        the kernel spreads new connections over them; recorder/pool.py)."""
        self.server = await asyncio.start_server(self._serve, host, port, ssl=self.ssl_context,
                                                 limit=MAX_MESSAGE + 1024, backlog=512,
                                                 reuse_port=reuse_port or None,
                                                 ssl_handshake_timeout=10 if self.ssl_context else None)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = writer.get_extra_info("peername") or ("?", 0)
        ip = addr[0]
        if self.per_source.get(ip, 0) >= self.max_per_source:
            self.refused_connections += 1
            log.info("refused %s connection from %s: %d connections from that source already",
                     self.name, ip, self.max_per_source)
            writer.close()
            return
        conn = StreamConnection(self, reader, writer)
        conn.peer = Peer(self.name, (ip, addr[1]), writer.write, conn)
        self.connections.add(conn)
        self.per_source[ip] = self.per_source.get(ip, 0) + 1
        try:
            await self._read_loop(conn)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        finally:
            self.connections.discard(conn)
            conn.closed = True
            try:
                self.on_close(conn)
            except Exception:   # noqa: BLE001 - the owner's bookkeeping must not leak the slot
                log.exception("on_close failed")
            self.per_source[ip] -= 1
            if not self.per_source[ip]:
                del self.per_source[ip]
            conn.close()

    async def _read_loop(self, conn: StreamConnection) -> None:
        buf = b""
        reader = conn.reader
        while True:
            # wait for data: the idle limit applies between messages, the partial limit inside one
            timeout = self.partial_timeout if pending(buf) else self.idle_timeout
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), timeout)
                    break
                except asyncio.TimeoutError:
                    if not pending(buf) and conn.sessions > 0:
                        continue        # an idle connection that carries a live session stays
                    log.info("closed %s connection from %s:%d: %s", self.name, *conn.peer.addr,
                             "message incomplete after %.0f s" % timeout if pending(buf)
                             else "idle %.0f s" % timeout)
                    return
            if not chunk:
                return
            buf += chunk
            while True:
                try:
                    msg, buf = next_message(buf)
                except MessageTooLarge as exc:
                    self.on_oversize(exc.head, conn.peer)
                    return                          # the rest of the stream cannot be framed
                if msg is None:
                    break
                conn.last_message = time.monotonic()
                self.on_message(msg, conn.peer)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()


async def start_udp(host: str, port: int, on_message: Handler) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(on_message), local_addr=(host, port))
    sock = transport.get_extra_info("socket")
    try:      # a burst of 64 kB INVITEs must not be dropped by a small receive buffer
        import socket as _s
        sock.setsockopt(_s.SOL_SOCKET, _s.SO_RCVBUF, 4 << 20)
    except OSError:
        pass
    return transport, transport.get_extra_info("sockname")[1]


def self_signed_context(directory: Path, host: str) -> ssl.SSLContext:
    """A server TLS context with a certificate made now (``--tls``): openssl makes an EC key and
    a 2-day self-signed certificate for ``host`` in ``directory`` (``<store>/tls``: the recorder
    writes nothing outside its store), replacing the previous run's."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = directory / "recorder-key.pem", directory / "recorder-cert.pem"
    key.unlink(missing_ok=True)          # openssl would keep the old key's mode
    san = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=mppsim-recorder", "-addext", f"subjectAltName={san}"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return tls_context_from(directory)


def tls_context_from(directory: Path) -> ssl.SSLContext:
    """The server TLS context of the certificate already in ``directory`` (a worker process
    serves the certificate its first worker made)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(directory / "recorder-cert.pem", directory / "recorder-key.pem")
    return ctx

