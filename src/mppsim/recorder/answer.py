"""SDP offer/answer for a recorder (RFC 3264, RFC 7866 §8.1): read the SRC's offer, answer
``recvonly`` on every audio stream it will record, with the codecs it can decode. The SDP itself
is the SIP toolkit's (`mppsim.sip.sdp`); what the recorder decodes is its own (`rtp.codecs`).

- Every m-line of the offer gets one in the answer, same order (RFC 3264 §6); non-audio ones,
  audio ones beyond `MAX_STREAMS`, and ones without a decodable codec get port 0.
- The answer keeps every payload type the SRC offered that the recorder decodes (so a switch
  between them needs no re-INVITE), plus telephone-event; the first offered one comes first.
- ``a=rtcp:<port>`` points RTCP at the RTP socket (RFC 3605), so nothing lands on port+1.
"""
from __future__ import annotations

from dataclasses import dataclass

from mppsim.recorder.rtp import codecs
from mppsim.sip import sdp
from mppsim.sip.sdp import SdpError

__all__ = ["MAX_STREAMS", "Media", "Offer", "SdpError", "build_answer", "parse_offer"]

MAX_STREAMS = 2          # the WAV has two channels: left, right
MAX_MEDIA = 64           # m-lines of one offer: more is an attack, not a quirk


@dataclass
class Media(sdp.Media):
    """An offered m-line, with what the recorder can make of it."""

    answer_crypto: str = ""     # our a=crypto for it when it is SRTP (set by its receiver)

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


def parse_offer(text: str) -> Offer:
    if not text.strip():
        raise SdpError(488, "No SDP in the recording session offer", "application/sdp")
    parsed = sdp.parse(text)
    if len(parsed.media) > MAX_MEDIA:
        raise SdpError(488, f"{len(parsed.media)} m-lines: at most {MAX_MEDIA} accepted", "m=")
    return Offer([Media(**vars(m)) for m in parsed.media], parsed.origin_user)


def build_answer(offer: Offer, host: str, ports: dict[int, int], session_version: int) -> str:
    """``ports``: media index -> our RTP port for the recorded streams (others get 0)."""
    ip = "IP6" if ":" in host else "IP4"
    answer = sdp.SessionDescription(origin=f"mppsim-recorder 1 {session_version} IN {ip} {host}",
                                    name="mppsim-recorder", address=host, timing="0 0")
    for i, m in enumerate(offer.media):
        port = ports.get(i, 0)
        fmts = m.decodable() if port else {}
        if not port or not fmts:
            answer.media.append(sdp.Media(m.kind, 0, m.proto, m.fmts[:1] or ["0"]))
            continue
        pts = [int(f) for f in m.fmts if f.isdigit() and int(f) in fmts]
        answer.media.append(sdp.Media(
            "audio", port, m.proto, [str(pt) for pt in pts],
            rtpmap={pt: m.rtpmap.get(pt) or (*sdp.STATIC[pt], "") for pt in pts},
            fmtp={pt: m.fmtp[pt] for pt in pts if pt in m.fmtp and fmts[pt][0] == codecs.TELEPHONE_EVENT},
            attributes=[f"rtcp:{port}"] + ([f"crypto:{m.answer_crypto}"] if m.answer_crypto else []),
            label=m.label,
            direction="recvonly" if m.state != "inactive" else "inactive"))
    return str(answer)
