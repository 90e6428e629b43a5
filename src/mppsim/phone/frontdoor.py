"""Front door: a tiny stateless SIP redirect server.

It listens on one well-known address (UDP and TCP on the same host:port) and
answers an external caller's INVITE with ``302 Moved Temporarily`` whose
Contact is the URI of the simulated line owning the dialled extension, so
baresip, Linphone or a tester's SBC can call a simulated user by extension.

Pure standard library (no pjsua2, no Qt).  Run standalone with::

    python -m mppsim.phone.frontdoor --listen 127.0.0.1:5070 --directory dir.json

where ``dir.json`` is a JSON object mapping a dialled user part (``"1002"``,
``"+14155550100"``) to a contact URI (``"sip:1002@127.0.0.1:40123"``).
"""

from __future__ import annotations

import argparse
import collections
import errno
import hashlib
import json
import logging
import selectors
import signal
import socket
import sys
import threading
from typing import Mapping

from mppsim.sip import framing
from mppsim.sip import message as sip_message
from mppsim.sip.limits import MAX_MESSAGE
from mppsim.sip.message import ParseError, Request
from mppsim.sip.uri import user as uri_user

__all__ = ["FrontDoor", "parse_request", "lookup_user", "keep_transport", "main"]

log = logging.getLogger("mppsim.frontdoor")


def keep_transport(target: str, transport: str) -> str:
    """``target`` (a URI, or a name-addr) with ``;transport=`` set to the request's own, unless
    it is UDP (the default) or the target names a transport already."""
    if transport.lower() == "udp" or ";transport=" in target.lower():
        return target
    end = target.find(">")
    if end < 0:
        return f"{target};transport={transport.lower()}"
    return f"{target[:end]};transport={transport.lower()}{target[end:]}"

SERVER_NAME = "mppsim-frontdoor"
ALLOW = "INVITE, ACK, OPTIONS, CANCEL, BYE"
HISTORY_LEN = 50
MAX_TCP_CONNECTIONS = 512
TCP_SEND_TIMEOUT = 0.5


def parse_request(data: bytes, stream: bool = False) -> Request:
    """One complete SIP request (a UDP datagram, or one framed off a TCP stream).

    The SIP toolkit's parser; a response is refused here, as a redirect server takes requests only.
    Raises `ParseError`.
    """
    msg = sip_message.parse(data, stream=stream)
    if not isinstance(msg, Request):
        raise ParseError("a response, not a request", "start-line")
    return msg


def lookup_user(directory: Mapping[str, str], user: str) -> str | None:
    """Find ``user`` in ``directory``; E.164 matches with or without '+'."""
    if not user:
        return None
    for key in (user, user[1:] if user.startswith("+") else "+" + user):
        if key in directory:
            return directory[key]
    return None


def _via_params(via: str) -> list[str]:
    return [p.strip() for p in via.split(";")[1:]]


def _stamp_via(via: str, src_ip: str, src_port: int) -> str:
    """Add received= (and fill rport=) to the top Via (RFC 3261 §18.2.1, RFC 3581)."""
    parts = [p.strip() for p in via.split(";")]
    sent = parts[0]
    params = parts[1:]
    names = [p.split("=", 1)[0].strip().lower() for p in params]
    has_rport = "rport" in names
    sent_by = sent.split(None, 1)[1] if len(sent.split(None, 1)) == 2 else ""
    host = sent_by.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host[1:]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not has_rport and host == src_ip:
        return via
    kept = [p for p, n in zip(params, names) if n not in ("received", "rport")]
    out = [sent] + kept + [f"received={src_ip}"]
    if has_rport:
        out.append(f"rport={src_port}")
    return ";".join(out)


def _param(via: str, name: str) -> str:
    for p in _via_params(via):
        k, _, v = p.partition("=")
        if k.strip().lower() == name:
            return v.strip()
    return ""


def _make_tag(req: Request, vias: list[str]) -> str:
    # Stateless: derive the To tag from the request so retransmissions and the
    # CANCEL of an INVITE get the same tag (RFC 3261 §8.2.6.2).
    cseq_num = req.get("cseq").split()[0]
    key = "|".join((req.get("call-id"), req.from_tag,
                    _param(vias[0], "branch") if vias else "", cseq_num))
    return "fd" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]


class FrontDoor:
    """Stateless SIP redirect server on one host:port (UDP and TCP).

    ``directory`` maps a dialled user part (extension or E.164, '+' optional)
    to the contact URI of the simulated line that owns it.
    """

    def __init__(self, host: str, port: int, directory: Mapping[str, str]):
        self.host = host
        self.port = port
        self._directory: dict[str, str] = dict(directory)
        self.redirects = 0
        self.recent: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=HISTORY_LEN)
        self._stats_lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: dict[socket.socket, tuple[bytes, tuple]] = {}
        self._sel: selectors.BaseSelector | None = None

    # -- lifecycle -------------------------------------------------------

    @property
    def directory(self) -> dict[str, str]:
        return self._directory

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def update(self, directory: Mapping[str, str]) -> None:
        """Replace the whole directory atomically."""
        self._directory = dict(directory)

    def start(self) -> "FrontDoor":
        if self._thread is not None:
            raise RuntimeError("FrontDoor already started")
        family = socket.getaddrinfo(self.host, None, type=socket.SOCK_DGRAM)[0][0]
        attempts = 10 if self.port == 0 else 1
        last_exc: OSError | None = None
        for _ in range(attempts):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.bind((self.host, self.port))
            except OSError:
                udp.close()
                raise
            port = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
                tcp.listen(64)
            except OSError as exc:
                tcp.close()
                udp.close()
                last_exc = exc
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            break
        else:
            assert last_exc is not None
            raise last_exc
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"frontdoor-{port}", daemon=True)
        self._thread.start()
        log.info("front door listening on udp+tcp %s:%d", self.host, port)
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        thread.join(timeout=2.0)
        self._thread = None
        for conn in list(self._conns):
            self._close_conn(conn)
        for sock in (self._udp, self._tcp, self._wake_r, self._wake_w):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._udp = self._tcp = self._wake_r = self._wake_w = None

    def __enter__(self) -> "FrontDoor":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        self._sel = sel
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        sel.register(self._tcp, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if self._stopping.is_set():
                        break
                    try:
                        if key.data == "udp":
                            self._on_udp()
                        elif key.data == "accept":
                            self._on_accept()
                        elif key.data == "conn":
                            self._on_conn(key.fileobj)
                    except Exception:  # never let one message kill the server
                        log.exception("front door: unexpected error")
        finally:
            for conn in list(self._conns):
                self._close_conn(conn)
            sel.close()

    def _on_udp(self) -> None:
        for _ in range(64):  # drain a burst, then give TCP a turn
            try:
                data, addr = self._udp.recvfrom(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier send
                log.debug("udp recv error: %s", exc)
                continue
            if not data.strip(b"\r\n\x00 "):
                continue  # keep-alive
            try:
                req = parse_request(data)
            except ParseError as exc:
                log.debug("dropping malformed datagram from %s: %s", addr, exc)
                continue
            resp = self.handle(req, addr)
            if resp is not None:
                try:
                    self._udp.sendto(resp, addr)
                except OSError as exc:
                    log.debug("udp send to %s failed: %s", addr, exc)

    def _on_accept(self) -> None:
        try:
            conn, addr = self._tcp.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return
        if len(self._conns) >= MAX_TCP_CONNECTIONS:
            conn.close()
            return
        conn.settimeout(TCP_SEND_TIMEOUT)
        self._conns[conn] = (b"", addr)
        self._sel.register(conn, selectors.EVENT_READ, "conn")

    def _close_conn(self, conn: socket.socket) -> None:
        if self._conns.pop(conn, None) is None:
            return
        try:
            self._sel.unregister(conn)
        except (KeyError, ValueError, OSError, AttributeError):
            pass
        try:
            conn.close()
        except OSError:
            pass

    def _on_conn(self, conn: socket.socket) -> None:
        buf, addr = self._conns[conn]
        try:
            data = conn.recv(MAX_MESSAGE)
        except (BlockingIOError, InterruptedError, socket.timeout):
            return
        except OSError:
            self._close_conn(conn)
            return
        if not data:
            self._close_conn(conn)
            return
        buf += data
        try:
            while True:
                raw, buf = framing.next_message(buf)
                if raw is None:
                    break
                resp = self.handle(parse_request(raw, stream=True), addr, transport="tcp")
                if resp is not None:
                    conn.sendall(resp)
        except (ParseError, framing.MessageTooLarge) as exc:
            log.debug("closing TCP connection from %s: %s", addr, exc)
            self._close_conn(conn)
        except OSError as exc:
            log.debug("TCP connection from %s failed: %s", addr, exc)
            self._close_conn(conn)
        else:
            self._conns[conn] = (buf, addr)

    # -- the redirect logic ------------------------------------------------

    def handle(self, req: Request, addr: tuple, transport: str = "udp") -> bytes | None:
        """Build the response bytes for ``req`` received from ``addr`` over ``transport`` (None =
        no response). A redirect keeps the request's transport: a caller that came over TCP is
        sent to ``...;transport=tcp`` (without it RFC 3263 picks UDP, and a TCP-only SBC or a
        softphone set to TCP re-sent the INVITE over UDP)."""
        method = req.method
        user = uri_user(req.uri)
        extra: list[tuple[str, str]] = []
        if method == "ACK":
            self._record(method, user, 0)
            return None
        if method == "INVITE":
            target = lookup_user(self._directory, user)
            if target is not None:
                target = keep_transport(target.strip(), transport)
                contact = target if "<" in target else f"<{target}>"
                status, reason = 302, "Moved Temporarily"
                extra.append(("Contact", contact))
            else:
                status, reason = 404, "No such extension"
        elif method == "OPTIONS":
            status, reason = 200, "OK"
            extra.append(("Allow", ALLOW))
            extra.append(("Accept", "application/sdp"))
        elif method == "CANCEL":
            status, reason = 200, "OK"
        elif method == "BYE":
            status, reason = 481, "Call/Transaction Does Not Exist"
        else:
            status, reason = 405, "Method Not Allowed"
            extra.append(("Allow", ALLOW))
        self._record(method, user, status)
        return self._build_response(req, addr, status, reason, extra)

    def _record(self, method: str, user: str, status: int) -> None:
        with self._stats_lock:
            if status == 302:
                self.redirects += 1
            self.recent.append((method, user, status))
        log.debug("%s %s -> %s", method, user, status or "(no response)")

    def _build_response(self, req: Request, addr: tuple, status: int, reason: str,
                        extra: list[tuple[str, str]]) -> bytes:
        vias = req.values("via")
        stamped = [_stamp_via(via, addr[0], addr[1]) if i == 0 else via for i, via in enumerate(vias)]
        return sip_message.response(req, status, reason, to_tag=_make_tag(req, vias), headers=extra,
                                    server=SERVER_NAME, vias=stamped)


# -- command line --------------------------------------------------------


def _parse_listen(value: str) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    elif value.isdigit():
        host, port = "127.0.0.1", value
    else:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    try:
        return host or "127.0.0.1", int(port or 5070)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {value!r}") from None


def _load_directory(path: str | None, maps: list[str]) -> dict[str, str]:
    directory: dict[str, str] = {}
    if path:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ValueError(f"{path}: expected a JSON object of string -> string")
        directory.update(data)
    for item in maps:
        user, sep, uri = item.partition("=")
        if not sep or not user or not uri:
            raise ValueError(f"--map expects USER=URI, got {item!r}")
        directory[user.strip()] = uri.strip()
    return directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mppsim.phone.frontdoor",
                                 description="Stateless SIP redirect server (302 by extension).")
    ap.add_argument("--listen", type=_parse_listen, default=("127.0.0.1", 5070),
                    metavar="HOST:PORT", help="address for UDP and TCP (port 0 = any free port)")
    ap.add_argument("--directory", metavar="FILE",
                    help="JSON object: dialled user -> contact URI (re-read on SIGHUP)")
    ap.add_argument("--map", action="append", default=[], metavar="USER=URI",
                    help="extra directory entry (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        directory = _load_directory(args.directory, args.map)
    except (OSError, ValueError) as exc:
        print(f"frontdoor: {exc}", file=sys.stderr)
        return 2

    host, port = args.listen
    fd = FrontDoor(host, port, directory)
    try:
        fd.start()
    except OSError as exc:
        print(f"frontdoor: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1

    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    def on_hup(signum, frame):
        try:
            fd.update(_load_directory(args.directory, args.map))
            log.warning("directory reloaded (%d entries)", len(fd.directory))
        except (OSError, ValueError) as exc:
            log.error("directory reload failed: %s", exc)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)

    print(f"frontdoor listening on udp+tcp {host}:{fd.port}", flush=True)
    try:
        while not done.wait(0.5):
            if not fd.running:
                print("frontdoor: server thread died", file=sys.stderr)
                return 1
    finally:
        fd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
