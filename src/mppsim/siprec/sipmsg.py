"""The multipart bodies and SRC marks both ends of SIPREC need (RFC 7866, RFC 2046).

The SRC builds a multipart/mixed INVITE body (SDP + metadata); the SRS finds the parts and tells
an SRC by its Contact or option tags. SIP messages and SDP themselves are the SIP toolkit's
(`mppsim.sip.message`, `mppsim.sip.sdp`). Everything here is text in, text out, and tolerant on input: real SRCs quote the boundary, fold headers, use
LF line ends, send a preamble or forget the closing delimiter (issue 4, part 3).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mppsim.sip.message import header_lines

METADATA_TYPES = ("application/rs-metadata+xml", "application/rs-metadata")

_HEADER_LINE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+[ \t]*:")
_BOUNDARY = re.compile(r'(?:^|;)\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.I)
_TOKEN = re.compile(r"^[A-Za-z0-9'()+_,\-./:=?]+$")  # RFC 2046 bchars that need no quoting
_SRC_PARAM = re.compile(r";\s*(?:\+sip\.src|src)\s*(?=$|[;>,=\s])", re.I)


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
    lines: list[str] = []
    pos = 0
    while pos < len(raw):
        eol = raw.find("\n", pos)
        end = len(raw) if eol < 0 else eol + 1
        line = raw[pos:end].rstrip("\r\n")
        if line == "":
            pos = end
            break
        if not (line[0] in " \t" and lines) and not _HEADER_LINE.match(line):
            break  # no blank line after the headers: the body starts here (tolerated)
        lines.append(line)
        pos = end
    fields: dict[str, str] = {}
    # the SIP toolkit's header reading (folding, case): MIME part headers share RFC 822's syntax
    for name, value in header_lines(lines)[0]:
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

def _values(headers, name: str) -> list[str]:
    """Values of ``name`` from a sip.message `Message` or a {lower-case name: values} dict."""
    if hasattr(headers, "get_all"):
        return headers.get_all(name)
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
