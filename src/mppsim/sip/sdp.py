"""SDP (RFC 4566) for offers and answers alike, no I/O: ``parse`` reads a session description
into `SessionDescription`, ``str()`` writes one back, and a few text edits change one line kind of
an SDP someone else wrote while keeping every other byte (pjsua's, in its onCallSdpCreated).

Before issue 20 SDP was read three ways (the recorder's offer, the network SRC's relay, SIPREC's
pause test); all three now read through `_sections` and the per-section rules below.

Pause has two spellings and both read as ``inactive`` (`Media.state`): ``a=inactive`` (RFC 3264
§5.1, RFC 7866) and the old-style hold address ``c=IN IP4 0.0.0.0`` (RFC 3264 §8.4; BroadWorks,
R-REC-4); a rejected stream (port 0) is inactive too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 table 4: the static payload types an offer may use without an a=rtpmap
STATIC = {0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000),
          9: ("G722", 8000), 18: ("G729", 8000)}
TELEPHONE_EVENT = "TELEPHONE-EVENT"

_LINE_SPLIT = re.compile(r"\r?\n")
_RTPMAP = re.compile(r"^rtpmap:(\d+)\s+([^/\s]+)/(\d+)(/\S+)?", re.I)
_FMTP = re.compile(r"^fmtp:(\d+)\s+(.*)$", re.I)


class SdpError(ValueError):
    """An SDP that cannot be used; ``code`` is the SIP status that says so (400 or 488)."""

    def __init__(self, code: int, reason: str, element: str = ""):
        super().__init__(reason)
        self.code, self.reason, self.element = code, reason, element


@dataclass
class Media:
    """One m-section. ``address`` and ``direction`` are its own lines ("" = none: the session's
    apply); ``connection`` and ``state`` are what applies, computed by `parse`."""
    kind: str                       # audio | video | ...
    port: int
    proto: str
    fmts: list[str]
    address: str = ""
    direction: str = ""
    label: str = ""                 # a=label (RFC 4574)
    rtpmap: dict[int, tuple[str, int, str]] = field(default_factory=dict)   # pt -> (enc, clock, rest)
    fmtp: dict[int, str] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)   # other a= values, in order
    lines: list[str] = field(default_factory=list)        # other lines (b=, i=...), whole
    connection: str = ""
    state: str = "sendrecv"         # inactive | sendonly | recvonly | sendrecv (pause conventions)

    def formats(self) -> dict[int, tuple[str, int]]:
        """pt -> (ENCODING, clock) for every offered pt (static ones without rtpmap included)."""
        out = {}
        for f in self.fmts:
            if not f.isdigit():
                continue
            pt = int(f)
            if pt in self.rtpmap:
                enc, clock, _ = self.rtpmap[pt]
                out[pt] = (enc.upper(), clock)
            elif pt in STATIC:
                out[pt] = STATIC[pt]
        return out

    def rtpmap_text(self, pt: int) -> str:
        """``PCMU/8000`` (or ``opus/48000/2``) for a payload type, "" when unknown."""
        if pt in self.rtpmap:
            enc, clock, rest = self.rtpmap[pt]
            return f"{enc}/{clock}{rest}"
        return "{}/{}".format(*STATIC[pt]) if pt in STATIC else ""


@dataclass
class SessionDescription:
    origin: str = "- 0 0 IN IP4 127.0.0.1"     # the o= value
    name: str = "-"
    address: str = ""                          # session-level c= address
    timing: str = "0 0"
    direction: str = ""                        # session-level a=<direction>
    attributes: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    version: str = "0"

    @property
    def origin_user(self) -> str:
        return self.origin.split(" ")[0]

    @property
    def audio(self) -> list[Media]:
        return [m for m in self.media if m.kind == "audio"]

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        if self.address:
            out.append(_c_line(self.address))
        out += self.lines
        out.append(f"t={self.timing}")
        out += [f"a={a}" for a in self.attributes]
        if self.direction:
            out.append(f"a={self.direction}")
        for m in self.media:
            out.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.fmts)}".rstrip())
            if m.address:
                out.append(_c_line(m.address))
            out += m.lines
            for f in m.fmts:
                pt = int(f) if f.isdigit() else -1
                if pt in m.rtpmap:
                    out.append(f"a=rtpmap:{pt} {m.rtpmap_text(pt)}")
                if pt in m.fmtp:
                    out.append(f"a=fmtp:{pt} {m.fmtp[pt]}")
            out += [f"a={a}" for a in m.attributes]
            if m.label:
                out.append(f"a=label:{m.label}")
            if m.direction:
                out.append(f"a={m.direction}")
        return "\r\n".join(out) + "\r\n"


def _c_line(address: str) -> str:
    return f"c=IN {'IP6' if ':' in address else 'IP4'} {address}"


def _sections(sdp: str) -> tuple[str, bool, list[list[str]]]:
    """(line ending, ends with one, [session lines, m-section lines, ...]): the one tokenizer."""
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


def _direction(lines: list[str]) -> str | None:
    found = [l.strip()[2:] for l in lines if l.strip()[2:] in DIRECTIONS and l.startswith("a=")]
    return found[-1] if found else None


def _connection(lines: list[str]) -> str | None:
    c = next((l for l in lines if l.startswith("c=")), None)
    if c is None:
        return None
    fields = c[2:].split()
    return fields[2].split("/")[0] if len(fields) >= 3 else ""


def _state(section: list[str], session_dir: str | None, session_addr: str | None) -> str:
    fields = section[0].split()
    port = fields[1].split("/")[0] if len(fields) > 1 else ""
    addr = _connection(section[1:])
    addr = session_addr if addr is None else addr
    direction = _direction(section[1:]) or session_dir or "sendrecv"
    if direction == "inactive" or port == "0" or addr in ("0.0.0.0", "::"):
        return "inactive"
    return direction


def parse(text: str) -> SessionDescription:
    """An SDP; tolerant of LF line ends, blank lines, surrounding space and unknown lines.
    Raises `SdpError` (400) when it does not start with v= or an m-line is unreadable."""
    lines = [l.strip() for l in _LINE_SPLIT.split(text) if l.strip()]
    if not lines or not lines[0].startswith("v="):
        raise SdpError(400, "Bad SDP: it does not start with v=", "v=")
    _, _, sections = _sections("\n".join(lines))
    sdp = SessionDescription(version=lines[0][2:], origin="", name="", timing="")
    for line in sections[0][1:]:
        kind, value = line[:2], line[2:]
        if kind == "o=":
            sdp.origin = value
        elif kind == "s=":
            sdp.name = value
        elif kind == "c=":
            sdp.address = _connection([line]) or ""
        elif kind == "t=":
            sdp.timing = value
        elif kind == "a=" and value in DIRECTIONS:
            sdp.direction = value
        elif kind == "a=":
            sdp.attributes.append(value)
        else:
            sdp.lines.append(line)
    session_addr = _connection(sections[0])
    for section in sections[1:]:
        sdp.media.append(_media(section, sdp, session_addr))
    return sdp


def _media(section: list[str], sdp: SessionDescription, session_addr: str | None) -> Media:
    line = section[0]
    parts = line[2:].split()
    if len(parts) < 3:
        raise SdpError(400, f"Bad SDP m-line {line[:60]!r}", "m=")
    try:
        port = int(parts[1].split("/")[0])
    except ValueError:
        raise SdpError(400, f"Bad SDP port in {line[:60]!r}", "m=") from None
    if not 0 <= port <= 65535:
        raise SdpError(400, f"Bad SDP port {port}", "m=")
    m = Media(parts[0].lower(), port, parts[2], parts[3:])
    for line in section[1:]:
        kind, value = line[:2], line[2:]
        if kind == "c=":
            m.address = _connection([line]) or ""
        elif kind != "a=":
            m.lines.append(line)
        elif (r := _RTPMAP.match(value)):
            try:
                m.rtpmap[int(r.group(1))] = (r.group(2), int(r.group(3)), r.group(4) or "")
            except ValueError:
                m.attributes.append(value)
        elif (f := _FMTP.match(value)):
            m.fmtp[int(f.group(1))] = f.group(2)
        elif value.startswith("label:"):
            m.label = value[len("label:"):].strip()
        elif value in DIRECTIONS:
            m.direction = value
        else:
            m.attributes.append(value)
    m.connection = m.address or sdp.address
    m.state = _state(section, sdp.direction or None, session_addr)
    return m


# ----- text edits and reads that keep everything else -------------------------------------------

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


def labels(sdp: str) -> list[str]:
    """The a=label of each m=audio section, "" where there is none."""
    _, _, sections = _sections(sdp)
    return [next((l[len("a=label:"):].strip() for l in s if l.startswith("a=label:")), "")
            for s in sections[1:] if _is_audio(s)]


def streams_state(sdp: str) -> list[str]:
    """Per m=audio: inactive | sendonly | recvonly | sendrecv, by either pause convention (the
    module docstring). Never raises: it reads whatever SDP a peer sent."""
    _, _, sections = _sections(sdp)
    session_dir, session_addr = _direction(sections[0]), _connection(sections[0])
    return [_state(s, session_dir, session_addr) for s in sections[1:] if _is_audio(s)]


def paused(sdp: str) -> bool:
    """True when every audio stream is inactive (by either convention)."""
    states = streams_state(sdp)
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
