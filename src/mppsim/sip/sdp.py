"""SDP offer/answer for a recorder (RFC 3264, RFC 7866 §8.1): read the SRC's offer, answer
``recvonly`` on every audio stream it will record, with the codecs it can decode.

- Every m-line of the offer gets one in the answer, same order (RFC 3264 §6); non-audio ones,
  audio ones beyond `MAX_STREAMS`, and ones without a decodable codec get port 0.
- The answer keeps every payload type the SRC offered that the recorder decodes (so a switch
  between them needs no re-INVITE), plus telephone-event; the first offered one comes first.
- ``a=rtcp:<port>`` points RTCP at the RTP socket (RFC 3605), so nothing lands on port+1.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mppsim.recorder.rtp import codecs
from mppsim.siprec.sipmsg import sdp_streams_state

MAX_STREAMS = 2          # the WAV has two channels: left, right


class SdpError(ValueError):
    def __init__(self, code: int, reason: str, element: str = ""):
        super().__init__(reason)
        self.code, self.reason, self.element = code, reason, element


@dataclass
class Media:
    kind: str                       # audio | video | ...
    port: int
    proto: str
    fmts: list[str]
    rtpmap: dict[int, tuple[str, int, str]] = field(default_factory=dict)   # pt -> (enc, clock, rest)
    fmtp: dict[int, str] = field(default_factory=dict)
    label: str = ""
    state: str = "sendrecv"         # inactive | sendonly | recvonly | sendrecv (pause conventions)
    address: str = ""

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
            elif pt in codecs.STATIC:
                enc, clock, _ = codecs.STATIC[pt]
                out[pt] = (enc, clock)
        return out

    def decodable(self) -> dict[int, tuple[str, int]]:
        ok = codecs.supported()
        return {pt: f for pt, f in self.formats().items()
                if f[0] in ok or f[0] == codecs.TELEPHONE_EVENT}

    @property
    def recordable(self) -> bool:
        return self.kind == "audio" and self.port > 0 and any(
            enc != codecs.TELEPHONE_EVENT for enc, _ in self.decodable().values())


@dataclass
class Offer:
    media: list[Media]
    origin_user: str = ""

    @property
    def audio(self) -> list[Media]:
        return [m for m in self.media if m.kind == "audio"]

    def recorded(self) -> list[tuple[int, Media]]:
        """(index into media, m) of the audio streams recorded: the first MAX_STREAMS audio
        m-lines (left, right), whether or not they are currently paused."""
        return [(i, m) for i, m in enumerate(self.media) if m.kind == "audio"][:MAX_STREAMS]


_RTPMAP = re.compile(r"^a=rtpmap:(\d+)\s+([^/\s]+)/(\d+)(/\S+)?", re.I)
_FMTP = re.compile(r"^a=fmtp:(\d+)\s+(.*)$", re.I)


def parse_offer(text: str) -> Offer:
    if not text.strip():
        raise SdpError(488, "No SDP in the recording session offer", "application/sdp")
    lines = [l.strip() for l in re.split(r"\r?\n", text) if l.strip()]
    if not lines or not lines[0].startswith("v="):
        raise SdpError(400, "Bad SDP: it does not start with v=", "v=")
    media: list[Media] = []
    origin = ""
    states = sdp_streams_state(text)
    for line in lines:
        if line.startswith("o="):
            origin = line[2:].split(" ")[0]
        elif line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 3:
                raise SdpError(400, f"Bad SDP m-line {line[:60]!r}", "m=")
            try:
                port = int(parts[1].split("/")[0])
            except ValueError:
                raise SdpError(400, f"Bad SDP port in {line[:60]!r}", "m=") from None
            if not 0 <= port <= 65535:
                raise SdpError(400, f"Bad SDP port {port}", "m=")
            media.append(Media(parts[0].lower(), port, parts[2], parts[3:]))
        elif media:
            m = media[-1]
            if (r := _RTPMAP.match(line)):
                try:
                    m.rtpmap[int(r.group(1))] = (r.group(2), int(r.group(3)), r.group(4) or "")
                except ValueError:
                    pass
            elif (f := _FMTP.match(line)):
                m.fmtp[int(f.group(1))] = f.group(2)
            elif line.startswith("a=label:"):
                m.label = line[len("a=label:"):].strip()
            elif line.startswith("c="):
                fields = line[2:].split()
                m.address = fields[2].split("/")[0] if len(fields) >= 3 else ""
    if len(media) > 64:
        raise SdpError(488, f"{len(media)} m-lines: at most 64 accepted", "m=")
    for m, state in zip((m for m in media if m.kind == "audio"), states):
        m.state = state
    return Offer(media, origin)


def build_answer(offer: Offer, host: str, ports: dict[int, int], session_version: int) -> str:
    """``ports``: media index -> our RTP port for the recorded streams (others get 0)."""
    ip = "IP6" if ":" in host else "IP4"
    out = ["v=0", f"o=mppsim-recorder 1 {session_version} IN {ip} {host}", "s=mppsim-recorder",
           f"c=IN {ip} {host}", "t=0 0"]
    for i, m in enumerate(offer.media):
        port = ports.get(i, 0)
        fmts = m.decodable() if port else {}
        if not port or not fmts:
            out.append(f"m={m.kind} 0 {m.proto} {' '.join(m.fmts[:1]) or '0'}")
            continue
        pts = [int(f) for f in m.fmts if f.isdigit() and int(f) in fmts]
        out.append(f"m=audio {port} {m.proto} {' '.join(map(str, pts))}")
        for pt in pts:
            enc, clock, rest = m.rtpmap.get(pt) or (*codecs.STATIC[pt][:2], "")
            out.append(f"a=rtpmap:{pt} {enc}/{clock}{rest}")
            if pt in m.fmtp and fmts[pt][0] == codecs.TELEPHONE_EVENT:
                out.append(f"a=fmtp:{pt} {m.fmtp[pt]}")
        out.append(f"a=rtcp:{port}")
        if m.label:
            out.append(f"a=label:{m.label}")
        out.append("a=recvonly" if m.state != "inactive" else "a=inactive")
    return "\r\n".join(out) + "\r\n"
