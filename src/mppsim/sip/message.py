"""SIP messages for the recorder's UAS (RFC 3261 §7, §20): parse what arrives, build answers.

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

MAX_MESSAGE = 65535          # bytes: the largest UDP datagram; TCP is held to the same
MAX_HEADERS = 256

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

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def tokens(self, name: str) -> list[str]:
        """Comma-separated option tags of Require/Supported/Allow-like headers, lower case."""
        return [t.strip().lower() for v in self.get_all(name) for t in v.split(",") if t.strip()]

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
        m = _TAG.search(self.get("from") or "")
        return m.group(1) if m else ""

    @property
    def to_tag(self) -> str:
        m = _TAG.search(self.get("to") or "")
        return m.group(1) if m else ""


@dataclass
class Request(Message):
    method: str = ""
    uri: str = ""


@dataclass
class Response(Message):
    status: int = 0
    reason: str = ""


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


def parse(data: bytes, stream: bool = False) -> Request | Response:
    """One whole SIP message. On a stream (TCP, TLS) the framing already applied Content-Length."""
    if len(data) > MAX_MESSAGE:
        raise ParseError("Message Too Large", "", None, 513)
    data = data.lstrip(b"\r\n")
    split = split_head(data)
    head, body = split if split is not None else (data, b"")
    text = head.decode("utf-8", "surrogateescape")
    lines = re.split(r"\r?\n", text)
    start = lines[0].strip()
    headers: list[tuple[str, str]] = []
    problem: tuple[str, str] | None = None
    for line in lines[1:]:
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
    if len(headers) > MAX_HEADERS:
        problem = problem or (f"more than {MAX_HEADERS} headers", "")
    m = _REQUEST_LINE.match(start)
    if m:
        msg: Request | Response = Request(start, headers, b"", method=m.group(1).upper(), uri=m.group(2))
    else:
        sm = _STATUS_LINE.match(start)
        if not sm:
            raise ParseError(f"bad start line {start[:60]!r}", "start-line")
        msg = Response(start, headers, b"", status=int(sm.group(1)), reason=sm.group(2))
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


def _cseq_ok(msg: Message) -> bool:
    try:
        num, method = msg.cseq
    except ValueError:
        return False
    return 0 <= num < 2 ** 31 and bool(method)


def _check_request(msg: Request) -> tuple[str, str] | None:
    if not _cseq_ok(msg):
        return f"bad CSeq {msg.get('cseq', '')[:40]!r}", "CSeq"
    if msg.cseq[1] != msg.method and msg.method not in ("ACK", "CANCEL"):
        return f"CSeq method {msg.cseq[1]} differs from {msg.method}", "CSeq"
    for name, value in msg.headers:
        if has_bad_bytes(value):
            return f"header {name} is not UTF-8", name
    return None


def _with_tag(to: str, tag: str) -> str:
    return to if _TAG.search(to) or not tag else f"{to};tag={tag}"


def response(req: Request, status: int, reason: str = "", to_tag: str = "",
             headers: list[tuple[str, str]] | None = None, body: bytes = b"",
             content_type: str = "") -> bytes:
    """An answer to ``req`` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied, To tagged."""
    reason = reason or REASONS.get(status, "Unknown")
    # a reason phrase is one line of text; the ones we build may quote what arrived
    reason = re.sub(r"[\x00-\x1f\x7f]", " ", reason)[:200]
    out = [f"SIP/2.0 {status} {reason}"]
    out += [f"Via: {v}" for v in req.get_all("via")]
    if req.get("from") is not None:
        out.append(f"From: {req.get('from')}")
    if req.get("to") is not None:
        out.append(f"To: {_with_tag(req.get('to'), to_tag if status > 100 else '')}")
    out.append(f"Call-ID: {req.call_id}")
    out.append(f"CSeq: {req.get('cseq', '').strip()}")
    for name, value in headers or []:
        out.append(f"{name}: {value}")
    if content_type:
        out.append(f"Content-Type: {content_type}")
    out.append("Server: mppsim-recorder")
    out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    out = [f"{method} {uri} SIP/2.0"] + [f"{n}: {v}" for n, v in headers]
    out.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


_NAME_ADDR = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^>]*)>(.*)$')


def name_addr(value: str) -> tuple[str, str, str]:
    """(display name, URI, parameters) of a From/To/Contact/Route value; a bare URI
    (``Route: sip:x;lr``) is accepted: then its parameters are header parameters."""
    m = _NAME_ADDR.match(value)
    if m:
        name = (m.group(1) if m.group(1) is not None else m.group(2) or "").strip()
        return re.sub(r"\\(.)", r"\1", name), m.group(3).strip(), m.group(4).strip()
    uri, _, params = value.strip().partition(";")
    return "", uri.strip(), (";" + params) if params else ""


def uri_user(uri: str) -> str:
    """The user part of sip:/sips:/tel: URIs ('' if none)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    if uri.lower().startswith("tel:"):
        return rest.split(";", 1)[0]
    return rest.split("@", 1)[0] if "@" in rest else ""
