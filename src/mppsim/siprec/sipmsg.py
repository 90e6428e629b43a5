"""Small SIP/SDP/multipart helpers both ends of SIPREC need (RFC 7866, RFC 2046, RFC 4566).

The SRC builds a multipart/mixed INVITE body (SDP + metadata) and labels its m-lines; the SRS reads
pjsua's ``rdata.wholeMsg``, finds the parts and tells pause from record by the SDP. Everything
here is text in, text out, and tolerant on input: real SRCs quote the boundary, fold headers, use
LF line ends, send a preamble or forget the closing delimiter (issue 4, part 3).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

METADATA_TYPES = ("application/rs-metadata+xml", "application/rs-metadata")

# RFC 3261 §7.3.3 compact forms, plus the extension headers' compact forms pjsip knows
COMPACT_FORMS = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "o": "event", "r": "refer-to", "s": "subject",
    "t": "to", "u": "allow-events", "v": "via", "x": "session-expires", "y": "identity",
}

_HEADER_LINE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+[ \t]*:")
_BOUNDARY = re.compile(r'(?:^|;)\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.I)
_TOKEN = re.compile(r"^[A-Za-z0-9'()+_,\-./:=?]+$")  # RFC 2046 bchars that need no quoting
_SRC_PARAM = re.compile(r";\s*(?:\+sip\.src|src)\s*(?=$|[;>,=\s])", re.I)
_LINE_SPLIT = re.compile(r"\r?\n")
_HEAD_END = re.compile(r"\r?\n\r?\n")


class MultipartError(ValueError):
    """A multipart body we cannot split (no boundary parameter)."""


@dataclass
class Part:
    content_type: str  # media type only, lower case: "application/sdp"
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names -> raw value
    body: str = ""


# ----- multipart/mixed ---------------------------------------------------------------------------

def build_multipart(parts: list[tuple[str, dict, str]], boundary: str | None = None) -> tuple[str, str]:
    """(content type, extra headers, body) triples -> (Content-Type header value, CRLF body)."""
    bodies = [body for _, _, body in parts]
    if boundary is None:
        import secrets   # here: hashlib (OpenSSL) would add ~4 MiB to every idle agent
        boundary = "mppsim-" + secrets.token_hex(8)
        while any(f"--{boundary}" in b for b in bodies):  # astronomically unlikely, but cheap
            boundary = "mppsim-" + secrets.token_hex(8)
    elif any(f"--{boundary}" in b for b in bodies):
        raise ValueError(f"boundary {boundary!r} occurs in a part body")
    out: list[str] = []
    for content_type, extra, body in parts:
        out.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n")
        out.extend(f"{name}: {value}\r\n" for name, value in extra.items())
        # The CRLF before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1), so the
        # body comes back byte for byte from split_multipart.
        out.append(f"\r\n{body}\r\n")
    out.append(f"--{boundary}--\r\n")
    param = boundary if _TOKEN.match(boundary) else f'"{boundary}"'
    return f"multipart/mixed;boundary={param}", "".join(out)


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a Content-Type value, quoted or not."""
    m = _BOUNDARY.search(content_type.split(";", 1)[1] if ";" in content_type else "")
    if not m:
        raise MultipartError(f"no boundary in Content-Type {content_type!r}")
    value = m.group(1) if m.group(1) is not None else m.group(2)
    if not value:
        raise MultipartError("empty boundary")
    return value


def split_multipart(content_type: str, body: bytes | str) -> list[Part]:
    """Parts of a multipart body; preamble and epilogue dropped, a missing close tolerated."""
    boundary = boundary_of(content_type)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    # A delimiter is a whole line "--boundary" (or "--boundary--"), transport padding allowed.
    delim = re.compile(r"^--" + re.escape(boundary) + r"(--)?[ \t]*\r?$", re.M)
    marks = list(delim.finditer(text))
    parts: list[Part] = []
    for i, mark in enumerate(marks):
        if mark.group(1):  # close delimiter: the rest is epilogue
            break
        start = text.find("\n", mark.end())
        if start < 0:
            break  # delimiter on the last line with nothing after it
        if i + 1 < len(marks):
            raw = text[start + 1:marks[i + 1].start()]
            raw = raw[:-2] if raw.endswith("\r\n") else raw[:-1] if raw.endswith("\n") else raw
        else:
            raw = text[start + 1:]  # no closing delimiter: the part runs to the end
        parts.append(_part(raw))
    return parts


def _part(raw: str) -> Part:
    headers: list[str] = []
    pos = 0
    while pos < len(raw):
        eol = raw.find("\n", pos)
        end = len(raw) if eol < 0 else eol + 1
        line = raw[pos:end].rstrip("\r\n")
        if line == "":
            pos = end
            break
        if line[0] in " \t" and headers:  # folded header (LWS continuation)
            headers[-1] += " " + line.strip()
        elif _HEADER_LINE.match(line):
            headers.append(line)
        else:
            break  # no blank line after the headers: the body starts here (tolerated)
        pos = end
    fields: dict[str, str] = {}
    for line in headers:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    media_type = fields.get("content-type", "text/plain").split(";", 1)[0].strip().lower()
    return Part(content_type=media_type, headers=fields, body=raw[pos:])


def metadata_part(parts: list[Part]) -> Part | None:
    """The recording metadata part: by content type (either spelling) or by disposition."""
    for part in parts:
        disposition = part.headers.get("content-disposition", "").split(";", 1)[0].strip().lower()
        if part.content_type in METADATA_TYPES or disposition == "recording-session":
            return part
    return None


def sdp_part(parts: list[Part]) -> Part | None:
    return next((p for p in parts if p.content_type == "application/sdp"), None)


# ----- SIP headers -------------------------------------------------------------------------------

def parse_headers(message: str | bytes) -> tuple[str, dict[str, list[str]], str]:
    """A whole SIP message -> (start line, {lower-case full name: [values]}, body).

    One value per header line (commas are not split: Contact display names may hold them).
    The body is cut to Content-Length when the message carries more (a stream transport).
    """
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    text = text.lstrip("\r\n")  # CRLF keep-alives before the start line
    m = _HEAD_END.search(text)
    head, body = (text[:m.start()], text[m.end():]) if m else (text, "")
    lines = _LINE_SPLIT.split(head)
    start_line, unfolded = lines[0].strip(), []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    headers: dict[str, list[str]] = {}
    for line in unfolded:
        name, sep, value = line.partition(":")
        if not sep:
            continue  # not a header; ignore rather than fail the whole message
        name = name.strip().lower()
        headers.setdefault(COMPACT_FORMS.get(name, name), []).append(value.strip())
    return start_line, headers, _cut_to_length(body, headers.get("content-length"))


def _cut_to_length(body: str, lengths: list[str] | None) -> str:
    try:
        n = int(lengths[0]) if lengths else -1
    except ValueError:
        return body
    raw = body.encode("utf-8")
    if 0 <= n < len(raw):
        return raw[:n].decode("utf-8", "replace")
    return body


def _values(headers: dict, name: str) -> list[str]:
    value = headers.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def has_option_tag(headers: dict, name: str, tag: str) -> bool:
    """Whether a Require/Supported-style header lists ``tag`` (case-insensitive)."""
    return any(tok.strip().lower() == tag.lower()
               for value in _values(headers, name) for tok in value.split(","))


def is_siprec_src(headers: dict) -> bool:
    """Whether the request comes from a SIPREC SRC: Contact with ``+sip.src`` (RFC 7866) or
    ``;src`` (BroadWorks, R-REC-4), or the siprec option tag in Require or Supported."""
    if any(_SRC_PARAM.search(v) for v in _values(headers, "contact")):
        return True
    return has_option_tag(headers, "require", "siprec") or has_option_tag(headers, "supported", "siprec")


# ----- SDP ---------------------------------------------------------------------------------------

def _sections(sdp: str) -> tuple[str, bool, list[list[str]]]:
    """(line ending, ends with one, [session lines, m-section lines, ...])."""
    eol = "\r\n" if "\r\n" in sdp else "\n"
    trailing = sdp.endswith("\n")
    lines = _LINE_SPLIT.split(sdp[:-len(eol)] if sdp.endswith(eol) else sdp.rstrip("\r\n"))
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return eol, trailing, sections


def _join(eol: str, trailing: bool, sections: list[list[str]]) -> str:
    text = eol.join(line for section in sections for line in section)
    return text + eol if trailing else text


def _is_audio(section: list[str]) -> bool:
    return bool(section) and section[0].startswith("m=audio")


def add_labels(sdp: str, labels: list[str]) -> str:
    """Give the m=audio sections, in order, ``a=label:X`` (RFC 4574), replacing any label.

    A count mismatch is not an error: this runs inside pjsua's onCallSdpCreated, where raising
    would break the call; surplus labels are unused, surplus m-lines keep what they had.
    """
    for label in labels:
        if not label or any(c.isspace() for c in label):
            raise ValueError(f"bad label {label!r}")
    eol, trailing, sections = _sections(sdp)
    audio = [s for s in sections[1:] if _is_audio(s)]
    for section, label in zip(audio, labels):
        section[:] = [l for l in section if not l.startswith("a=label:")] + [f"a=label:{label}"]
    return _join(eol, trailing, sections)


def sdp_labels(sdp: str) -> list[str]:
    """The a=label of each m=audio section, "" where there is none."""
    _, _, sections = _sections(sdp)
    return [next((l[len("a=label:"):].strip() for l in s if l.startswith("a=label:")), "")
            for s in sections[1:] if _is_audio(s)]


_DIRECTIONS = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")


def _direction(lines: list[str]) -> str | None:
    found = [l[2:].strip() for l in lines if l.strip() in _DIRECTIONS]
    return found[-1] if found else None


def _connection(lines: list[str]) -> str | None:
    c = next((l for l in lines if l.startswith("c=")), None)
    if c is None:
        return None
    fields = c[2:].split()
    return fields[2].split("/")[0] if len(fields) >= 3 else ""


def sdp_streams_state(sdp: str) -> list[str]:
    """Per m=audio: inactive | sendonly | recvonly | sendrecv.

    Inactive covers both pause conventions: ``a=inactive`` (RFC 7866) and the old-style hold
    address ``c=IN IP4 0.0.0.0`` (BroadWorks, R-REC-4), plus a rejected stream (port 0).
    """
    _, _, sections = _sections(sdp)
    session_dir, session_addr = _direction(sections[0]), _connection(sections[0])
    states = []
    for section in (s for s in sections[1:] if _is_audio(s)):
        fields = section[0].split()
        port = fields[1].split("/")[0] if len(fields) > 1 else ""
        addr = _connection(section[1:])
        addr = session_addr if addr is None else addr
        direction = _direction(section[1:]) or session_dir or "sendrecv"
        if direction == "inactive" or port == "0" or addr in ("0.0.0.0", "::"):
            states.append("inactive")
        else:
            states.append(direction)
    return states


def sdp_paused(sdp: str) -> bool:
    """True when every audio stream is inactive (by either convention)."""
    states = sdp_streams_state(sdp)
    return bool(states) and all(s == "inactive" for s in states)


def set_connection_address(sdp: str, address: str) -> str:
    """Rewrite every session- and media-level c= line to ``address`` (webex-dialect pause)."""
    eol, trailing, sections = _sections(sdp)
    addrtype = "IP6" if ":" in address else "IP4"
    for section in sections:
        for i, line in enumerate(section):
            if line.startswith("c="):
                fields = line[2:].split()
                nettype = fields[0] if fields else "IN"
                section[i] = f"c={nettype} {addrtype} {address}"
    return _join(eol, trailing, sections)


def set_origin_user(sdp: str, user: str) -> str:
    """Set the o= username (BroadWorks writes ``o=BroadWorks``, R-REC-4)."""
    if not user or any(c.isspace() for c in user):
        raise ValueError(f"bad o= username {user!r}")
    eol, trailing, sections = _sections(sdp)
    for i, line in enumerate(sections[0]):
        if line.startswith("o="):
            fields = line[2:].split(" ")
            sections[0][i] = "o=" + " ".join([user] + fields[1:])
            return _join(eol, trailing, sections)
    raise ValueError("SDP has no o= line")
