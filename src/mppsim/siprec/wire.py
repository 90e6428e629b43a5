"""SRC side: the SIP messages of a recording session toward the SRS, per dialect, as text.

Sans-I/O: the network SRC (phone/network_src.py) does the sockets, this module says what goes on
the wire. ``webex`` follows Webex Calling (BroadWorks) captures (issue 11): From = the recorded
user with their E.164 number and ``user=phone``, ``Session-ID``, ``MIME-Version``, ``Privacy``,
``Accept``, ``Allow``, empty ``Supported`` and ``Recv-Info``, no session timer headers; body
metadata first, then SDP ``o=BroadWorks`` offering ``111 101 0 8 9 107`` with ``ptime`` and
``maxptime``; pause = ``c=IN IP4 0.0.0.0`` + ``a=inactive``. ``rfc7866`` is the standard shape
(``Require: siprec``, ``+sip.src``, SDP first, the SRC's own codecs).

Also the SDP the agent's pjsua leg sees: ``agent_answer`` turns the SRS's answer into one that
names only what the agent offered (RFC 3264: the offerer may send any format of the answer).
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from mppsim.sip import message as sip_message
from mppsim.sip import sdp as sdpmod
from mppsim.siprec.sipmsg import build_multipart

# compiled on import (in the agents' zygote), not at first use in every agent
_SENDING = re.compile(r"a=(sendonly|sendrecv|recvonly)")

WEBEX_BOUNDARY = "UniqueBroadWorksBoundary"
WEBEX_ALLOW = "ACK,BYE,CANCEL,INFO,INVITE,OPTIONS,PRACK,REFER,NOTIFY"
WEBEX_ACCEPT = "application/media_control+xml,application/sdp,application/x-broadworks-call-center+xml"
RFC_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
METADATA_TYPE = "application/rs-metadata+xml"

# BroadWorks' offer: payload type, rtpmap, fmtp (captures of Webex Calling, issue 11)
WEBEX_CODECS = (("111", "opus/48000/2", "useinbandfec=1"), ("101", "telephone-event/8000", "0-15"),
                ("0", "PCMU/8000", None), ("8", "PCMA/8000", None), ("9", "G722/8000", None),
                ("107", "telephone-event/48000", "0-15"))
ZEROS = "0" * 32


# ----- SDP ----------------------------------------------------------------------------------------

def _audio(sdp: str) -> tuple[str, list[tuple[sdpmod.Media, str, list[tuple[str, str, str | None]]]]]:
    """(session-level address, [(audio m-line, its direction, [(pt, rtpmap, fmtp)])])."""
    parsed = sdpmod.parse(sdp)
    out = []
    for m in parsed.audio:
        formats = [(pt, m.rtpmap_text(int(pt)) if pt.isdigit() else "",
                    m.fmtp.get(int(pt)) if pt.isdigit() else None) for pt in m.fmts]
        out.append((m, m.direction or parsed.direction or "sendrecv", formats))
    return parsed.address, out


@dataclass
class Origin:
    """The o= line of one side of a dialog: its version goes up with every new offer/answer."""
    user: str
    session: int = field(default_factory=lambda: secrets.randbelow(10**9) + 10**9)
    version: int = 0

    def next(self, address: str) -> str:
        self.version += 1
        return f"o={self.user} {self.session} {self.version} IN IP4 {address}"


def webex_offer(agent_sdp: str, origin: Origin, paused: bool, compact: bool = False) -> str:
    """BroadWorks' offer for the agent's streams: same addresses, ports and labels.

    ``compact``: only the formats the agent itself has (PCMU, PCMA, telephone-event/8000), for
    an SRS that cannot take BroadWorks-size messages (mppsim's pjsua2 recorder, 4000 bytes)."""
    session_addr, mlines = _audio(agent_sdp)
    codecs: tuple[tuple[str, str, str | None], ...] = WEBEX_CODECS
    if compact:
        have = {enc.lower() for _, _, formats in mlines for _, enc, _ in formats}
        codecs = tuple(c for c in WEBEX_CODECS if c[1].lower() in have)
    session_addr = session_addr or mlines[0][0].connection     # pjsua writes c= per m-line only
    addr = "0.0.0.0" if paused else session_addr
    out = ["v=0", origin.next(session_addr), "s=-", f"c=IN IP4 {addr}", "t=0 0"]
    for m, _, _ in mlines:
        # the agent's profile and SDES keys go through (issue 21: RTP/SAVP and a=crypto for SRTP)
        out.append(f"m=audio {m.port} {m.proto or 'RTP/AVP'} " + " ".join(pt for pt, _, _ in codecs))
        if m.connection != session_addr and not paused:
            out.append(f"c=IN IP4 {m.connection}")
        for pt, enc, params in codecs:
            out.append(f"a=rtpmap:{pt} {enc}")
            if params:
                out.append(f"a=fmtp:{pt} {params}")
        out += ["a=ptime:20", "a=maxptime:20", "a=inactive" if paused else "a=sendonly"]
        out += [f"a={a}" for a in _crypto(m)]
        if m.label:
            out.append(f"a=label:{m.label}")
    return "\r\n".join(out) + "\r\n"


def rfc7866_offer(agent_sdp: str, paused: bool) -> str:
    """The standard dialect relays the agent's own offer (pjsua's a=inactive when paused)."""
    sdp = agent_sdp.replace("\r\n", "\n").replace("\n", "\r\n")
    if paused and "a=inactive" not in sdp:
        sdp = _SENDING.sub("a=inactive", sdp)
    return sdp


def agent_answer(agent_sdp: str, srs_sdp: str, origin: Origin) -> str:
    """The SRS's answer, as the agent's pjsua may read it: per m-line the SRS's address, port and
    direction, and only the formats the agent offered (matched by encoding name, the agent's
    payload types). Raises ValueError when an m-line keeps no audio format."""
    _, offered = _audio(agent_sdp)
    srs_addr, answered = _audio(srs_sdp)
    if len(answered) != len(offered):
        raise ValueError(f"the SRS answered {len(answered)} audio streams for {len(offered)} offered")
    out = ["v=0", origin.next(srs_addr or (answered[0][0].connection if answered else "127.0.0.1")), "s=-",
           f"c=IN IP4 {srs_addr or answered[0][0].connection}", "t=0 0"]
    for (mine, _, my_formats), (theirs, direction, their_formats) in zip(offered, answered):
        by_name = {enc.lower(): (pt, enc, params) for pt, enc, params in my_formats}
        kept = [by_name[enc.lower()] for _, enc, _ in their_formats if enc.lower() in by_name]
        if theirs.port and not any(not enc.lower().startswith("telephone-event") for _, enc, _ in kept):
            raise ValueError(f"the SRS accepted none of the agent's codecs on stream {mine.label or '?'}")
        if not kept:     # a rejected stream (port 0) keeps a format so the m-line stays valid
            kept = my_formats[:1]
        out.append(f"m=audio {theirs.port} {theirs.proto or mine.proto or 'RTP/AVP'} "
                   + " ".join(pt for pt, _, _ in kept))
        if theirs.connection != srs_addr:
            out.append(f"c=IN IP4 {theirs.connection}")
        for pt, enc, params in kept:
            out.append(f"a=rtpmap:{pt} {enc}")
            if params:
                out.append(f"a=fmtp:{pt} {params}")
        out.append(f"a={direction}")
        out += [f"a={a}" for a in _crypto(theirs)]
        if mine.label:
            out.append(f"a=label:{mine.label}")
    return "\r\n".join(out) + "\r\n"


def _crypto(m: sdpmod.Media) -> list[str]:
    """An m-line's SDES keys (RFC 4568 a=crypto), as its a= values."""
    return [a for a in m.attributes if a.lower().startswith("crypto:")]


# ----- SIP requests -------------------------------------------------------------------------------

@dataclass
class Leg:
    """The SRC's dialog toward the SRS (UAC side)."""
    dialect: str
    request_uri: str            # the SRS target; after the 2xx, the SRS's Contact
    to_uri: str
    from_header: str            # full From value without tag
    contact: str                # full Contact value
    local_host: str
    local_port: int
    call_id: str = ""
    local_tag: str = field(default_factory=lambda: f"{secrets.randbelow(10**10)}-{secrets.randbelow(10**10)}")
    remote_tag: str = ""
    cseq: int = field(default_factory=lambda: secrets.randbelow(10**8) + 1)
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    remote_session_id: str = ZEROS
    extra: dict[str, str] = field(default_factory=dict)   # dialect headers fixed per session
    route: list[str] = field(default_factory=list)
    boundary: str | None = None   # rfc7866 multipart boundary; None = a fresh random one each time
    transport: str = "TCP"        # the Via's: TCP, or TLS toward an SRS reached over the internet

    def __post_init__(self):
        if not self.call_id:
            if self.dialect == "webex":
                self.call_id = (f"BW{secrets.randbelow(10**15):015d}-{secrets.randbelow(10**10)}"
                                f"@{self.local_host}")
            else:
                self.call_id = f"{secrets.token_hex(12)}@{self.local_host}"


def _via(leg: Leg, branch: str) -> str:
    return f"SIP/2.0/{leg.transport} {leg.local_host}:{leg.local_port};branch={branch}"


def new_branch(dialect: str) -> str:
    return ("z9hG4bKBroadWorks.-" if dialect == "webex" else "z9hG4bK") + secrets.token_hex(8)


def body_for(leg: Leg, sdp: str | None, metadata: str | None) -> tuple[str, str]:
    """(Content-Type, body): multipart when there is metadata; webex puts the metadata first."""
    if metadata is None:
        return ("application/sdp", sdp) if sdp is not None else ("", "")
    meta = (METADATA_TYPE, {"Content-Disposition": "recording-session"}, metadata)
    if sdp is None:
        return METADATA_TYPE, metadata
    sdp_part: tuple[str, dict[str, str], str] = ("application/sdp", {}, sdp)
    if leg.dialect == "webex":
        return build_multipart([meta, sdp_part], boundary=WEBEX_BOUNDARY)
    return build_multipart([sdp_part, meta], boundary=leg.boundary)


def request(leg: Leg, method: str, *, sdp: str | None = None, metadata: str | None = None,
            extra: dict[str, str] | None = None, cseq: int | None = None, branch: str | None = None) -> str:
    """One request of the recording dialog. ``cseq`` given = reuse (ACK, CANCEL); else the
    next CSeq number is taken."""
    if cseq is None:
        leg.cseq += 1
        cseq = leg.cseq
    content_type, body = body_for(leg, sdp, metadata)
    to = f"<{leg.to_uri}>" + (f";tag={leg.remote_tag}" if leg.remote_tag else "")
    h: list[tuple[str, str]] = [
        ("Via", _via(leg, branch or new_branch(leg.dialect))),
        ("From", f"{leg.from_header};tag={leg.local_tag}"),
        ("To", to),
        ("Call-ID", leg.call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    h += [("Route", r) for r in leg.route]
    if method in ("INVITE", "UPDATE"):
        h.append(("Contact", leg.contact))
    h.append(("Session-ID", f"{leg.session_id};remote={leg.remote_session_id}"))   # RFC 7989: every request
    if leg.dialect == "webex":
        if method in ("INVITE", "UPDATE"):
            h += [("Supported", ""), ("Allow", WEBEX_ALLOW), ("Accept", WEBEX_ACCEPT), ("Recv-Info", ""),
                  ("Privacy", "none")]
    else:
        if method in ("INVITE", "UPDATE"):
            h += [("Require", "siprec"), ("Supported", "siprec"), ("Allow", RFC_ALLOW)]
    if method in ("INVITE", "UPDATE"):
        h += list(leg.extra.items())
    h += list((extra or {}).items())
    h.append(("Max-Forwards", "10" if leg.dialect == "webex" else "70"))
    if body:
        if leg.dialect == "webex":
            h.append(("MIME-Version", "1.0"))
        h.append(("Content-Type", content_type))
    return sip_message.request(method, leg.request_uri, h, body.encode("utf-8")).decode("utf-8", "surrogateescape")


def response(req: sip_message.Message, code: int, reason: str, *, to_tag: str = "",
             contact: str | None = None, sdp: str | None = None, extra: dict[str, str] | None = None) -> str:
    """A response to a request (the Via, From, To, Call-ID, CSeq copied), as text."""
    headers = [("Contact", contact)] if contact else []
    headers += list((extra or {}).items())
    body = (sdp or "").encode("utf-8")
    data = sip_message.response(req, code, reason, to_tag=to_tag, headers=headers, body=body,
                           content_type="application/sdp" if body else "", server="")
    return data.decode("utf-8", "surrogateescape")
