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
import re
import selectors
import signal
import socket
import sys
import threading
import urllib.parse
from typing import Mapping

__all__ = ["FrontDoor", "SipRequest", "SipParseError", "parse_request", "lookup_user", "main"]

log = logging.getLogger("mppsim.frontdoor")

SERVER_NAME = "mppsim-frontdoor"
ALLOW = "INVITE, ACK, OPTIONS, CANCEL, BYE"
HISTORY_LEN = 50
MAX_MESSAGE = 65536  # largest header block / message accepted
MAX_TCP_CONNECTIONS = 512
TCP_SEND_TIMEOUT = 0.5

COMPACT_FORMS = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
    "l": "content-length", "c": "content-type", "e": "content-encoding",
    "k": "supported", "s": "subject", "o": "event", "r": "refer-to",
    "b": "referred-by", "u": "allow-events", "x": "session-expires",
}
_CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}
_REQUIRED = ("via", "from", "to", "call-id", "cseq")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_TAG_RE = re.compile(r";\s*tag\s*=", re.IGNORECASE)
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


class SipParseError(ValueError):
    """The bytes are not a well-formed SIP request."""


class SipRequest:
    """A parsed SIP request: method, Request-URI, ordered headers, body."""

    __slots__ = ("method", "uri", "headers", "body")

    def __init__(self, method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b""):
        self.method = method
        self.uri = uri
        self.headers = headers  # [(lower-case long name, value)], in order
        self.body = body

    def get(self, name: str) -> str | None:
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def vias(self) -> list[str]:
        """Every Via value in order, comma-joined header lines split up."""
        out: list[str] = []
        for value in self.get_all("via"):
            out.extend(p.strip() for p in _split_commas(value) if p.strip())
        return out

    def __repr__(self) -> str:
        return f"SipRequest({self.method} {self.uri})"


def _split_commas(value: str) -> list[str]:
    """Split a header value on commas that are outside quotes and <>."""
    parts, cur, quoted, angle, esc = [], [], False, 0, False
    for ch in value:
        if esc:
            esc = False
        elif quoted and ch == "\\":
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        elif ch == "," and not quoted and not angle:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split a message into header block and the rest (body)."""
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        return data[:idx], data[idx + 4:]
    idx = data.find(b"\n\n")  # tolerate bare-LF senders
    if idx >= 0:
        return data[:idx], data[idx + 2:]
    return data, b""  # datagram without the blank line: headers only


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("not UTF-8") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError(f"bad start line {start!r}")
    method, uri, version = parts
    if version.upper() != "SIP/2.0":
        if method.upper() == "SIP/2.0":
            raise SipParseError("a response, not a request")
        raise SipParseError(f"bad version {version!r}")
    if not _TOKEN_RE.match(method) or not uri or ":" not in uri:
        raise SipParseError(f"bad start line {start!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (tolerated)
            if not headers:
                raise SipParseError("continuation before any header")
            n, v = headers[-1]
            headers[-1] = (n, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or not _TOKEN_RE.match(name):
            raise SipParseError(f"bad header line {line!r}")
        headers.append((COMPACT_FORMS.get(name, name), value.strip()))
    return method.upper(), uri, headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for n, v in headers:
        if n == "content-length":
            try:
                cl = int(v)
            except ValueError as exc:
                raise SipParseError(f"bad Content-Length {v!r}") from exc
            if cl < 0 or cl > MAX_MESSAGE:
                raise SipParseError(f"bad Content-Length {v!r}")
            return cl
    return None


def parse_request(data: bytes) -> SipRequest:
    """Parse one complete SIP request (e.g. a UDP datagram).

    Raises :class:`SipParseError` for anything that is not a well-formed
    request with the mandatory Via, From, To, Call-ID and CSeq headers.
    """
    head, body = _split_head(data.lstrip(b"\r\n"))
    method, uri, headers = _parse_head(head)
    cl = _content_length(headers)
    if cl is not None:
        if len(body) < cl:
            raise SipParseError("body shorter than Content-Length")
        body = body[:cl]
    req = SipRequest(method, uri, headers, body)
    for name in _REQUIRED:
        if not req.get(name):
            raise SipParseError(f"missing {name} header")
    cseq = req.get("cseq").split()
    if len(cseq) != 2 or not cseq[0].isdigit():
        raise SipParseError("bad CSeq")
    return req


def request_user(uri: str) -> str:
    """User part of a Request-URI: ``sip:1002@h:p;x=y`` -> ``1002``.

    Accepts ``sip:``, ``sips:`` and ``tel:``; returns ``""`` if there is none.
    """
    uri = uri.strip()
    if uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return ""
    scheme = scheme.lower()
    if scheme == "tel":
        number = rest.split(";", 1)[0]
        return urllib.parse.unquote(number).translate(_VISUAL_SEPARATORS)
    if scheme not in ("sip", "sips"):
        return ""
    rest = rest.split("?", 1)[0]
    if "@" not in rest:
        return ""
    userinfo = rest.rsplit("@", 1)[0]
    user = urllib.parse.unquote(userinfo.split(":", 1)[0])  # drop any password
    user = user.split(";", 1)[0]  # params in the user part (e.g. 1002;isub=...)
    if ";user=phone" in rest.lower():
        user = user.translate(_VISUAL_SEPARATORS)
    return user


def lookup_user(directory: Mapping[str, str], user: str) -> str | None:
    """Find ``user`` in ``directory``; E.164 matches with or without '+'."""
    if not user:
        return None
    for key in (user, user[1:] if user.startswith("+") else "+" + user):
        if key in directory:
            return directory[key]
    return None


def _has_tag(to_value: str) -> bool:
    # Ignore the display name and the bracketed URI (a URI param named tag is not a To tag).
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", to_value)
    stripped = re.sub(r"<[^>]*>", "", stripped)
    return bool(_TAG_RE.search(stripped))


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


def _from_tag(from_value: str) -> str:
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", from_value)
    stripped = re.sub(r"<[^>]*>", "", stripped)
    m = re.search(r";\s*tag\s*=\s*([^;\s]+)", stripped, re.IGNORECASE)
    return m.group(1) if m else ""


def _make_tag(req: SipRequest, vias: list[str]) -> str:
    # Stateless: derive the To tag from the request so retransmissions and the
    # CANCEL of an INVITE get the same tag (RFC 3261 §8.2.6.2).
    cseq_num = req.get("cseq").split()[0]
    key = "|".join((req.get("call-id"), _from_tag(req.get("from")),
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
        self._conns: dict[socket.socket, tuple[bytearray, tuple]] = {}
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
            except SipParseError as exc:
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
        self._conns[conn] = (bytearray(), addr)
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
            for req in self._frame(buf):
                resp = self.handle(req, addr)
                if resp is not None:
                    conn.sendall(resp)
        except SipParseError as exc:
            log.debug("closing TCP connection from %s: %s", addr, exc)
            self._close_conn(conn)
        except OSError as exc:
            log.debug("TCP connection from %s failed: %s", addr, exc)
            self._close_conn(conn)

    @staticmethod
    def _frame(buf: bytearray):
        """Yield complete requests from a TCP stream buffer, consuming them."""
        while True:
            # keep-alive pings (CRLF / CRLFCRLF) between messages are ignored
            i = 0
            while i < len(buf) and buf[i] in (0x0D, 0x0A):
                i += 1
            if i:
                del buf[:i]
            if not buf:
                return
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_MESSAGE:
                    raise SipParseError("header block too large")
                return
            head = bytes(buf[:end])
            method, uri, headers = _parse_head(head)
            cl = _content_length(headers) or 0  # mandatory on TCP; treat missing as 0
            total = end + 4 + cl
            if len(buf) < total:
                return
            msg = bytes(buf[:total])
            del buf[:total]
            yield parse_request(msg)

    # -- the redirect logic ------------------------------------------------

    def handle(self, req: SipRequest, addr: tuple) -> bytes | None:
        """Build the response bytes for ``req`` received from ``addr`` (None = no response)."""
        method = req.method
        user = request_user(req.uri)
        extra: list[tuple[str, str]] = []
        if method == "ACK":
            self._record(method, user, 0)
            return None
        if method == "INVITE":
            target = lookup_user(self._directory, user)
            if target is not None:
                target = target.strip()
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

    def _build_response(self, req: SipRequest, addr: tuple, status: int, reason: str,
                        extra: list[tuple[str, str]]) -> bytes:
        vias = req.vias()
        lines = [f"SIP/2.0 {status} {reason}"]
        for i, via in enumerate(vias):
            if i == 0:
                via = _stamp_via(via, addr[0], addr[1])
            lines.append(f"Via: {via}")
        lines.append(f"From: {req.get('from')}")
        to = req.get("to")
        if status > 100 and not _has_tag(to):
            to = f"{to};tag={_make_tag(req, vias)}"
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.get('call-id')}")
        lines.append(f"CSeq: {req.get('cseq')}")
        for name, value in extra:
            lines.append(f"{name}: {value}")
        lines.append(f"Server: {SERVER_NAME}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


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
