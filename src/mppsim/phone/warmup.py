"""A rehearsal of a recording's set-up in plain Python, run once by an agent when it has said
hello and waits for work.

An agent is forked from the zygote, so its first recorded call runs every line of the SIPREC
path for the first time in this process: Python specialises the bytecode as it goes, and every
page of shared objects it touches is copied for this process (copy-on-write). When many calls
start together, all agents pay that at once, on the path from a call's answer to its recorder's
INVITE. Rehearsing the pure parts here (metadata documents, the SIP and SDP text, the status
header, the event JSON) pays it while the agent is idle. Nothing here is sent or kept.
"""
from __future__ import annotations

import json
import uuid
from typing import Iterable

from mppsim.sip import message as sip_message
from mppsim.siprec import metadata as M
from mppsim.siprec import status as siprec_status
from mppsim.siprec import webex as WB
from mppsim.siprec import wire as W
from mppsim.rules.effective import EffectiveSettings
from mppsim.rules.policy import CallInfo, CallPolicy

_AGENT_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
              "m=audio 4000 RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
              "a=rtpmap:120 telephone-event/8000\r\na=label:1\r\n"
              "m=audio 4002 RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
              "a=rtpmap:120 telephone-event/8000\r\na=label:2\r\n")
_SRS_SDP = ("v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 6000 RTP/AVP 0\r\na=recvonly\r\nm=audio 6002 RTP/AVP 0\r\na=recvonly\r\n")


def rehearse(settings: Iterable[EffectiveSettings] = (), rounds: int = 3) -> int:
    """Run the set-up's pure code ``rounds`` times, with the recording policy of each of the
    agent's ``settings``; returns the bytes of text it produced."""
    produced = 0
    settings = list(settings)
    for _ in range(rounds):
        for s in settings:             # the Webex side's decisions: answer -> recorder start
            for direction in ("out", "in"):
                policy = CallPolicy(s, CallInfo(direction, "internal"))
                policy.offered(0.0)
                policy.answered(0.0)
                produced += len(policy.take_actions()) + len(json.dumps(policy.view()))
                policy.recorder_started(0.01)
                policy.hangup(1.0)
                produced += len(policy.take_actions()) + len(json.dumps(policy.view()))
        for dialect in ("webex", "rfc7866"):
            sid, s1, s2, p1, p2 = (M.new_id() for _ in range(5))
            md = M.Metadata(
                dialect="rfc7866", datamode="complete", group_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "warm-up")),
                session_id=sid, sip_session_id="warm-up@127.0.0.1",
                participants=[M.Participant(p1, "A", "sip:1001@127.0.0.1", [s1], [s2]),
                              M.Participant(p2, "B", "sip:1002@127.0.0.1", [s2], [s1])],
                streams=[M.Stream(s1, "1", sid), M.Stream(s2, "2", sid)],
                start_time=M.now_iso(), stop_time=None, state="active", events=[], broadworks=None)
            if dialect == "webex":
                rec = WB.new_recording(
                    user_aor="sip:1001@127.0.0.1", other_aors=["sip:1002@127.0.0.1"], call_id="warm-up@127.0.0.1",
                    platform=("SP", "Group", "user@example.com"), outgoing=True,
                    calling=WB.party_uri("1001", "127.0.0.1", True), called=WB.party_uri("1002", "127.0.0.1", True),
                    mode="Always", dialed=None)
                doc = WB.build(rec)
                status = siprec_status.encode(md.sip_session_id, md.state, [], {"sip:1002@127.0.0.1": "B"})
                offer = W.webex_offer(_AGENT_SDP, W.Origin("BroadWorks"), paused=False)
            else:
                doc = M.build(md)[1]
                status = ""
                offer = W.rfc7866_offer(_AGENT_SDP, paused=False)
            leg = W.Leg(dialect, "sip:srs@127.0.0.1:5060;transport=tcp", "sip:srs@127.0.0.1:5060",
                        '"A"<sip:1001@127.0.0.1;user=phone>', "<sip:src@127.0.0.1:5062;transport=tcp>;src",
                        "127.0.0.1", 5062)
            invite = sip_message.read(W.request(leg, "INVITE", sdp=offer, metadata=doc, extra={siprec_status.HEADER: status}))
            answer = W.response(invite, 200, "OK", to_tag="warm", contact="<sip:srs@127.0.0.1:5060>",
                                sdp=_SRS_SDP)
            agent_sdp = W.agent_answer(_AGENT_SDP, sip_message.read(answer).text, W.Origin("mppsim-src"))
            ack = W.request(leg, "ACK", cseq=leg.cseq)
            event = json.dumps({"event": "siprec", "agent": "warm-up", "state": "active", "setup_ms": 1.0},
                               separators=(",", ":"))
            produced += len(doc) + len(answer) + len(agent_sdp) + len(ack) + len(event)
    return produced
