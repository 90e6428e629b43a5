"""One full example of each SIPREC message of each dialect, made by the code that sends them.

docs/protocol.md shows these (``python -m mppsim.siprec.examples`` prints the Markdown);
tests/test_protocol_examples.py checks that the docs still equal what the code makes. Ids, tags,
times and ports are fixed here so the output is stable; in a real session they are random.

The life of one recording: Alice (ext 1001) is called by a PSTN party, the recording starts, is
paused and resumed, a start announcement is reported, the call is transferred to Bob, then a
third party joins (conference), then the call ends.
"""
from __future__ import annotations

import uuid
from dataclasses import replace

from mppsim.rules import broadworks as BW
from mppsim.siprec import status as status
from mppsim.siprec import wire as W
from mppsim.siprec.metadata import Metadata, Participant, Stream, build as build_rfc7866
from mppsim.siprec.webex import WebexParty, WebexRecording, build as build_webex, new_recording

T0 = "2025-03-04T10:30:00Z"
CALL_ID = "2gQb9Kx1mT0aPz7LrS4uVw8yE3cN6dHf"          # the recorded call's Call-ID (pjsua's form)
SRS = "sip:srs@10.0.0.5:5070;transport=tcp"
SRC_PORT, SRC_LOCAL = 47100, 52344
AGENT_SDP = ("v=0\r\no=- 3950001 3950001 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
             "m=audio 42010 RTP/AVP 0 8 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:8 PCMA/8000\r\na=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=label:1\r\n"
             "m=audio 42012 RTP/AVP 0 8 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:8 PCMA/8000\r\na=rtpmap:120 telephone-event/8000\r\na=fmtp:120 0-16\r\na=label:2\r\n")
PAUSED_SDP = AGENT_SDP.replace("a=sendonly", "a=inactive")
STEPS = ("start", "pause", "resume", "announcement", "transfer", "conference", "end")


def _u(n: int) -> str:
    return f"urn:uuid:{uuid.UUID(int=0x6f51aaf9_3695_487a_8ef0_c61d5def0000 + n)}"


def _webex_recording() -> WebexRecording:
    platform = (BW.service_provider_id("acme-demo"), BW.group_id("acme-demo", "hq"), "alice@acme-demo.example")
    rec = new_recording(user_aor="sip:1001@127.0.0.1", other_aors=[], call_id=CALL_ID, platform=platform,
                        outgoing=False, calling="sip:+14155550100@127.0.0.1",
                        called="sip:+15550001001@127.0.0.1", mode="Always with Pause/Resume")
    rec.start_time = T0
    rec.recording_id, rec.group_id, rec.session_id, rec.extension_id = _u(1), _u(2), _u(3), _u(4)
    rec.streams = [(_u(5), "1"), (_u(6), "2")]
    rec.parties = [WebexParty(_u(7), "sip:1001@127.0.0.1", _u(5)),
                   WebexParty(_u(8), "sip:+14155550100@127.0.0.1;user=phone", _u(6))]
    return rec


def _rfc7866_metadata() -> Metadata:
    def b(n: int) -> str:
        return f"b3BlbnNpcHJlYy1pZC0{n:02d}"   # fixed base64-looking ids
    return Metadata(dialect="rfc7866", datamode="complete", group_id=str(uuid.UUID(int=42)), session_id=b(1),
                    sip_session_id=CALL_ID,
                    participants=[Participant(b(2), "Alice Smith", "sip:1001@127.0.0.1", [b(4)], [b(5)]),
                                  Participant(b(3), "+14155550100", "tel:+14155550100", [b(5)], [b(4)])],
                    streams=[Stream(b(4), "1", b(1)), Stream(b(5), "2", b(1))],
                    start_time="2025-03-04T10:30:00.000Z", events=[])


def _leg(dialect: str) -> W.Leg:
    if dialect == "webex":
        return W.Leg("webex", SRS, SRS, '"Alice Smith"<sip:+15550001001@127.0.0.1;user=phone>',
                     f"<sip:127.0.0.1:{SRC_PORT};transport=tcp>;src", "127.0.0.1", SRC_LOCAL,
                     call_id="BW103000123040325-1128331447@127.0.0.1", local_tag="1446583738-1741084200",
                     cseq=393429680, session_id="8f0c2b6e4d1a49c7a3e5f7091b2d4c6e",
                     extra={"X-BroadWorks-Correlation-Info": BW.ext_tracking_id(CALL_ID)})
    return W.Leg("rfc7866", SRS, SRS, '"Alice Smith" <sip:src-1001@127.0.0.1>',
                 f"<sip:src-1001@127.0.0.1:{SRC_PORT};transport=tcp>;+sip.src", "127.0.0.1", SRC_LOCAL,
                 call_id="5d1c9e07a4b3f2e1d0c9b8a7@127.0.0.1", local_tag="3141592653-5897932384",
                 cseq=11, session_id="0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a", boundary="mppsim-5eed0f1c2b3a4d5e")


def examples() -> dict[tuple[str, str], str]:
    """(dialect, step) -> the request exactly as the network SRC writes it."""
    out: dict[tuple[str, str], str] = {}
    for dialect in ("webex", "rfc7866"):
        leg = _leg(dialect)
        origin = W.Origin("BroadWorks", session=1741084200)
        branch = iter(f"z9hG4bK{'BroadWorks.-' if dialect == 'webex' else ''}{n:016x}" for n in range(1, 99))
        web, md = _webex_recording(), _rfc7866_metadata()
        sent_events = 0

        def doc(partial: bool, step_events: list[dict], state: str, first: bool = False):
            nonlocal sent_events
            md.events.extend(step_events)
            md.state = state
            new = md.events[sent_events:]
            sent_events = len(md.events)
            if dialect == "webex":
                return build_webex(web), {status.HEADER: status.encode(CALL_ID if first else None, state, new)}
            m = replace(md, datamode="partial", participants=[], streams=[], events=new) if partial else md
            return build_rfc7866(m)[1], None

        def offer(sdp: str, paused: bool, same: bool = False) -> str:
            if dialect == "webex":
                o = W.Origin("BroadWorks", origin.session, origin.version - 1) if same else origin
                return W.webex_offer(sdp, o, paused)
            return W.rfc7866_offer(sdp, paused)

        meta, extra = doc(False, [], "active", first=True)
        out[(dialect, "start")] = W.request(leg, "INVITE", sdp=offer(AGENT_SDP, False), metadata=meta,
                                            extra=extra, branch=next(branch))
        leg.remote_tag, leg.request_uri = "SRS-7c1f", "sip:srs@10.0.0.5:5070;transport=tcp"
        leg.remote_session_id = "0123456789abcdef0123456789abcdef"
        meta, extra = doc(True, [{"paused": "2025-03-04T10:30:20.000Z"}], "paused")
        out[(dialect, "pause")] = W.request(leg, "INVITE", sdp=offer(PAUSED_SDP, True), metadata=meta,
                                            extra=extra, branch=next(branch))
        meta, extra = doc(True, [{"resumed": "2025-03-04T10:30:40.000Z"}], "active")
        last = offer(AGENT_SDP, False)
        out[(dialect, "resume")] = W.request(leg, "INVITE", sdp=last, metadata=meta, extra=extra,
                                             branch=next(branch))
        meta, extra = doc(True, [{"announcement": "resumed", "to": ["local", "remote"],
                                  "time": "2025-03-04T10:30:40.100Z"}], "active")
        out[(dialect, "announcement")] = W.request(leg, "INVITE", sdp=offer(AGENT_SDP, False, same=True),
                                                   metadata=meta, extra=extra, branch=next(branch))
        # transfer: the PSTN party transferred the call to Bob (1002)
        web.set_others(["sip:1002@127.0.0.1"])
        web.parties[1].id = _u(9)
        md.participants[1:] = [Participant("b3BlbnNpcHJlYy1pZC0wNg", "Bob Jones", "sip:1002@127.0.0.1",
                                           [md.streams[1].id], [md.streams[0].id])]
        meta, extra = doc(False, [{"participants": ["1002"], "time": "2025-03-04T10:31:00.000Z"}], "active")
        out[(dialect, "transfer")] = W.request(leg, "UPDATE", sdp=offer(AGENT_SDP, False, same=True),
                                               metadata=meta, extra=extra, branch=next(branch))
        # conference: Carol (1003) joins Alice and Bob; sent by re-INVITE (UPDATE works the same)
        web.set_others(["sip:1002@127.0.0.1", "sip:1003@127.0.0.1"])
        web.parties[2].id = _u(10)
        md.participants.append(Participant("b3BlbnNpcHJlYy1pZC0wNw", "Carol Kowalska", "sip:1003@127.0.0.1",
                                           [md.streams[1].id], [md.streams[0].id]))
        meta, extra = doc(False, [{"participants": ["1002", "1003"], "time": "2025-03-04T10:32:00.000Z"}],
                          "active")
        out[(dialect, "conference")] = W.request(leg, "INVITE", sdp=offer(AGENT_SDP, False, same=True),
                                                 metadata=meta, extra=extra, branch=next(branch))
        out[(dialect, "end")] = W.request(leg, "BYE", branch=next(branch))
    return out


def markdown() -> str:
    parts = []
    for (dialect, step), text in examples().items():
        parts.append(f"#### {dialect}: {step} ({len(text.encode())} bytes)\n\n"
                     f"<!-- siprec-example {dialect} {step} -->\n```\n{text.replace(chr(13), '')}```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown())
