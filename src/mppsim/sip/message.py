"""SIP messages (RFC 3261 §7, §20): the one parser and serializer of every mppsim process (front
door, the agents' network SRC, the recorder; issue 20). No I/O.

``parse`` is for a server reading what strangers send: tolerant where real peers differ, and a
`ParseError` when the message cannot be used. ``read`` is the same parser for what a known peer
sent (our own pjsua2, an SRS's answers): it never raises on a header problem. ``serialize`` (and
the `request` / `response` builders on it) writes one, so ``parse(serialize(m))`` gives ``m`` back
(plus a Content-Length that matches its body).

Parsing is tolerant where real SRCs differ (compact forms, folding, LF line ends, Route without
angle brackets) and strict where an answer would otherwise be wrong. Whatever goes wrong is a
`ParseError` with a reason and the offending header, and - when Via, From, To, Call-ID and CSeq
could be read - with the half-parsed request, so the server can still answer 400 instead of
staying silent (issue 9, classes 12 and 13).

Header values are kept as text decoded with ``surrogateescape``: bytes that are not UTF-8
round-trip exactly into the answer and are detected (`has_bad_bytes`) rather than crashing an
encoder later.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mppsim.sip.limits import MAX_HEADERS, MAX_MESSAGE
from mppsim.sip.uri import name_addr

__all__ = ["MAX_MESSAGE", "Message", "Request", "Response", "ParseError", "parse", "read",
           "serialize", "request", "response", "split_head", "content_length", "split_commas",
           "has_bad_bytes", "header_lines", "tag_of", "canonical", "COMPACT", "REASONS"]

# RFC 3261 §7.3.3 compact forms, plus the extension headers' compact forms pjsip knows
COMPACT = {"a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
           "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact",
           "k": "supported", "l": "content-length", "m": "contact", "o": "event", "r": "refer-to",
           "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires",
           "y": "identity"}
# headers a request must carry to be answerable at all (RFC 3261 §8.1.1)
REQUIRED = ("via", "from", "to", "call-id", "cseq")
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_TAG = re.compile(r";\s*tag\s*=\s*([^;>\s,]+)", re.I)
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;\s,]+)", re.I)

REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Request Entity Too Large", 415: "Unsupported Media Type", 420: "Bad Extension",
           422: "Session Interval Too Small", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
           486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
           491: "Request Pending", 500: "Server Internal Error", 503: "Service Unavailable",
           513: "Message Too Large"}


_SURROGATE_ESCAPE = re.compile("[\udc80-\udcff]")


def has_bad_bytes(text: str) -> bool:
    """True when ``text`` came from bytes that were not UTF-8 (surrogate escapes). A regex: this
    runs on every header of every message, and a character loop in Python cost ~0.15 ms each."""
    return _SURROGATE_ESCAPE.search(text) is not None


@dataclass
class Message:
    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)   # (lower-case full name, value)
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n == name), default)

    def header(self, name: str) -> str:
        """The first value of ``name``, "" when absent."""
        return self.get(name) or ""

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def values(self, name: str) -> list[str]:
        """Every value of a multi-value header (Via, Contact, Route...): header lines in order,
        each split on the commas outside quotes and <> (RFC 3261 §7.3.1)."""
        return [p.strip() for v in self.get_all(name) for p in split_commas(v) if p.strip()]

    def has(self, name: str, value: str) -> bool:
        """Whether a line of header ``name`` has exactly ``value`` (surrounding space ignored)."""
        return any(v == value.strip() for v in self.get_all(name))

    def tokens(self, name: str) -> list[str]:
        """Comma-separated option tags of Require/Supported/Allow-like headers, lower case."""
        return [t.strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()]

    def by_name(self) -> dict[str, list[str]]:
        """{lower-case full name: [values in order]}: the shape SIPREC's helpers take."""
        out: dict[str, list[str]] = {}
        for n, v in self.headers:
            out.setdefault(n, []).append(v)
        return out

    @property
    def text(self) -> str:
        """The body as text (SDP, multipart); bytes that are not UTF-8 read as U+FFFD."""
        return self.body.decode("utf-8", "replace")

    @property
    def is_response(self) -> bool:
        return False

    @property
    def call_id(self) -> str:
        return (self.get("call-id") or "").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        num, _, method = (self.get("cseq") or "").strip().partition(" ")
        return int(num), method.strip().upper()

    @property
    def branch(self) -> str:
        m = _BRANCH.search(self.get("via") or "")
        return m.group(1) if m else ""

    @property
    def from_tag(self) -> str:
        return self.tag("from")

    @property
    def to_tag(self) -> str:
        return self.tag("to")

    def tag(self, name: str) -> str:
        """The tag parameter of a From or To value ("" when none)."""
        return tag_of(self.get(name) or "")


@dataclass
class Request(Message):
    method: str = ""
    uri: str = ""


@dataclass
class Response(Message):
    status: int = 0
    reason: str = ""

    @property
    def is_response(self) -> bool:
        return True

    @property
    def code(self) -> int:
        return self.status

    @property
    def method(self) -> str:
        """The method of the request this answers (its CSeq)."""
        return self.cseq[1]


class ParseError(ValueError):
    """A message we cannot use. ``request`` is set when it can still be answered."""

    def __init__(self, reason: str, element: str = "", request: Request | None = None,
                 code: int = 400):
        super().__init__(reason)
        self.reason, self.element, self.request, self.code = reason, element, request, code


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """(head, rest) at the first blank line (CRLF CRLF, or LF LF), or None."""
    m = re.search(rb"\r?\n\r?\n", data)
    if m is None:
        return None
    return data[:m.start()], data[m.end():]


def content_length(head: bytes) -> int | None:
    """Content-Length of a raw head, None when absent; ValueError when not a number."""
    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", head)
    if m is None:
        return None
    value = m.group(1).strip()
    if not value.isdigit():
        raise ValueError(f"Content-Length {value[:20]!r} is not a number")
    return int(value)


def split_commas(value: str) -> list[str]:
    """A header value split on the commas outside quotes and <> (RFC 3261 §7.3.1): a display
    name or a URI parameter may hold a comma."""
    parts: list[str] = []
    cur: list[str] = []
    quoted, angle, esc = False, 0, False
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


def header_lines(lines: list[str]) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """Header lines -> ([(lower-case full name, value)], first problem or None): folded lines
    joined (RFC 3261 §7.3.1), compact forms expanded (§7.3.3), names case-insensitive (§7.3.1),
    a malformed line skipped and reported."""
    headers: list[tuple[str, str]] = []
    problem: tuple[str, str] | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and headers:          # folded (LWS continuation)
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not _TOKEN.match(name):
            problem = problem or (f"malformed header line {line[:40]!r}", name[:40])
            continue
        headers.append((COMPACT.get(name, name), value.strip()))
    return headers, problem


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data


def _parse(data: bytes, stream: bool) -> tuple[Message, tuple[str, str] | None]:
    """The one parser: (message, first problem or None). A start line that is neither a
    request's nor a status line gives a plain `Message`."""
    data = data.lstrip(b"\r\n")
    split = split_head(data)
    head, body = split if split is not None else (data, b"")
    text = head.decode("utf-8", "surrogateescape")
    lines = re.split(r"\r?\n", text)
    start = lines[0].strip()
    headers, problem = header_lines(lines[1:])
    if len(headers) > MAX_HEADERS:
        problem = problem or (f"more than {MAX_HEADERS} headers", "")
    msg: Message
    if (m := _REQUEST_LINE.match(start)):
        msg = Request(start, headers, b"", method=m.group(1).upper(), uri=m.group(2))
    elif (sm := _STATUS_LINE.match(start)):
        msg = Response(start, headers, b"", status=int(sm.group(1)), reason=sm.group(2))
    else:
        msg = Message(start, headers)
    # the body: Content-Length decides (UDP may carry padding after it; RFC 3261 §18.3)
    try:
        declared = content_length(head)
    except ValueError as exc:
        declared, problem = None, problem or (str(exc), "Content-Length")
    if declared is not None:
        if declared > len(body):
            problem = problem or (f"Content-Length {declared} but {len(body)} body bytes", "Content-Length")
        else:
            body = body[:declared]
    elif stream and body:
        problem = problem or ("no Content-Length on a stream transport", "Content-Length")
    msg.body = body
    return msg, problem


def parse(data: bytes | str, stream: bool = False) -> Request | Response:
    """One whole SIP message from a stranger. On a stream (TCP, TLS) the framing already applied
    Content-Length. Raises `ParseError` for what cannot be used, with the half-parsed request
    when it can still be answered."""
    data = _as_bytes(data)
    if len(data) > MAX_MESSAGE:
        raise ParseError("Message Too Large", "", None, 513)
    msg, problem = _parse(data, stream)
    if not isinstance(msg, (Request, Response)):
        raise ParseError(f"bad start line {msg.start_line[:60]!r}", "start-line")
    if isinstance(msg, Request):
        missing = [h for h in REQUIRED if msg.get(h) is None]
        if problem is None and missing:
            problem = (f"missing {', '.join(missing)}", missing[0])
        if problem is None:
            problem = _check_request(msg)
        if problem is not None:
            # the answer echoes them as they are; From/To are copied only when present
            answerable = all(msg.get(h) for h in ("via", "call-id", "cseq"))
            raise ParseError(problem[0], problem[1], msg if answerable else None)
    elif problem is not None:
        raise ParseError(problem[0], problem[1])
    return msg


def read(data: bytes | str) -> Request | Response:
    """One SIP message from a known peer (pjsua2's ``wholeMsg``, an SRS's answer): the same
    parser as `parse`, but a header problem is skipped, not raised; a body longer than its
    Content-Length is cut to it, a shorter one kept. A start line that is not SIP reads as a
    request whose method is its first word."""
    msg, _problem = _parse(_as_bytes(data), False)
    if isinstance(msg, (Request, Response)):
        return msg
    words = msg.start_line.split()
    return Request(msg.start_line, msg.headers, msg.body, method=(words[0].upper() if words else ""),
                   uri=words[1] if len(words) > 1 else "")


def _cseq_ok(msg: Message) -> bool:
    try:
        num, method = msg.cseq
    except ValueError:
        return False
    return 0 <= num < 2 ** 31 and bool(method)


def _check_request(msg: Request) -> tuple[str, str] | None:
    if not _cseq_ok(msg):
        return f"bad CSeq {(msg.get('cseq') or '')[:40]!r}", "CSeq"
    if msg.cseq[1] != msg.method and msg.method not in ("ACK", "CANCEL"):
        return f"CSeq method {msg.cseq[1]} differs from {msg.method}", "CSeq"
    for name, value in msg.headers:
        if has_bad_bytes(value):
            return f"header {name} is not UTF-8", name
    return None


def tag_of(value: str) -> str:
    """The tag of a From/To value: a header parameter, never a URI parameter inside <>
    (RFC 3261 §19.3); "" when none."""
    m = _TAG.search(name_addr(value)[2])
    return m.group(1) if m else ""


def _with_tag(to: str, tag: str) -> str:
    return to if tag_of(to) or not tag else f"{to};tag={tag}"


# header names as RFC 3261 §20 (and the extensions') spell them; others get Title-Case
_CANONICAL = {"call-id": "Call-ID", "cseq": "CSeq", "www-authenticate": "WWW-Authenticate",
              "mime-version": "MIME-Version", "session-id": "Session-ID", "rseq": "RSeq",
              "rack": "RAck", "sip-etag": "SIP-ETag", "sip-if-match": "SIP-If-Match"}


def canonical(name: str) -> str:
    """How a header name is written: ``call-id`` -> ``Call-ID``, ``max-forwards`` -> ``Max-Forwards``."""
    low = name.lower()
    return _CANONICAL.get(low) or "-".join(p[:1].upper() + p[1:] for p in low.split("-"))


def _encode(start: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    out = [start]
    out += [f"{n}: {v}" if v else f"{n}:" for n, v in headers]
    out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def serialize(msg: Message) -> bytes:
    """The bytes of ``msg``: its start line, its headers in order (canonical names), a
    Content-Length that matches the body (any stored one is replaced), the body."""
    if isinstance(msg, Request):
        start = f"{msg.method} {msg.uri} SIP/2.0"
    elif isinstance(msg, Response):
        start = f"SIP/2.0 {msg.status} {msg.reason}".rstrip()
    else:
        start = msg.start_line
    return _encode(start, [(canonical(n), v) for n, v in msg.headers if n != "content-length"],
                   msg.body)


def response(req: Message, status: int, reason: str = "", to_tag: str = "",
             headers: list[tuple[str, str]] | None = None, body: bytes = b"",
             content_type: str = "", server: str = "mppsim-recorder",
             vias: list[str] | None = None) -> bytes:
    """An answer to ``req`` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied, To tagged
    (not on a 100, §8.2.6.2, nor when it has a tag). ``vias`` replaces the copied Via values
    (the front door stamps received=/rport= on the top one); ``server`` "" = no Server header."""
    reason = reason or REASONS.get(status, "Unknown")
    # a reason phrase is one line of text; the ones we build may quote what arrived
    reason = re.sub(r"[\x00-\x1f\x7f]", " ", reason)[:200]
    out: list[tuple[str, str]] = [("Via", v) for v in (req.get_all("via") if vias is None else vias)]
    from_, to = req.get("from"), req.get("to")
    if from_ is not None:
        out.append(("From", from_))
    if to is not None:
        out.append(("To", _with_tag(to, to_tag if status > 100 else "")))
    out.append(("Call-ID", req.call_id))
    out.append(("CSeq", (req.get("cseq") or "").strip()))
    out += headers or []
    if content_type:
        out.append(("Content-Type", content_type))
    if server:
        out.append(("Server", server))
    return _encode(f"SIP/2.0 {status} {reason}", out, body)


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A request: the headers as given, in order, then Content-Length and the body."""
    return _encode(f"{method} {uri} SIP/2.0", headers, body)
