"""The network SRC's relay rules over real loopback TCP (issue 11): refusals, an unreachable SRS,
the SRS ending the session (BYE or a dropped connection), the SRS answering codecs the agent
lacks. The SRS here is a scripted socket; the agent leg is written by hand (tests/sipp_srs.py)."""
from __future__ import annotations

import socket
import threading

import pytest

from mppsim.phone.network_src import (OVER, OWES_ANSWER, TRANSITIONS, UP, IllegalTransition, NetworkSrc,
                                      Relay, RelayState, Spec)
from mppsim.sip import framing
from mppsim.sip import message as sip_message
from mppsim.siprec import wire as W
from sipp_srs import AGENT_SDP, AgentLeg

SRS_SDP = ("v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 6000 RTP/AVP {pt}\r\na=recvonly\r\nm=audio 6002 RTP/AVP {pt}\r\na=recvonly\r\n")


class ScriptedSrs:
    """Accepts one connection; answers the INVITE with ``code`` (and SDP offering ``pt``)."""

    def __init__(self, code: int = 200, pt: str = "0", then: str | None = None):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.code, self.pt, self.then = code, pt, then
        self.received: list[sip_message.Message] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"sip:srs@127.0.0.1:{self.port};transport=tcp"

    def read(self, conn, buf: bytes) -> tuple[sip_message.Message | None, bytes]:
        while True:
            raw, buf = framing.next_message(buf)
            if raw is not None:
                break
            data = conn.recv(65536)
            if not data:
                return None, buf
            buf += data
        msg = sip_message.read(raw)
        self.received.append(msg)
        return msg, buf

    def run(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        inv, buf = self.read(conn, b"")
        sdp = SRS_SDP.format(pt=self.pt) if self.code == 200 else None
        conn.sendall(W.response(inv, self.code, "OK" if self.code == 200 else "Forbidden here",
                                to_tag="srs1", contact=f"<{self.uri}>", sdp=sdp).encode())
        ack, buf = self.read(conn, buf)
        if self.then == "bye":
            conn.sendall((f"BYE sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{self.port};branch=z9hG4bKsrsbye\r\n"
                          f"From: {inv.header('to')};tag=srs1\r\nTo: {inv.header('from')}\r\n"
                          f"Call-ID: {inv.call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n").encode())
            self.read(conn, buf)
        elif self.then == "drop":
            conn.close()
            return
        else:
            while True:
                msg, buf = self.read(conn, buf)
                if msg is None:
                    break
                if not msg.is_response and msg.method != "ACK":
                    conn.sendall(W.response(msg, 200, "OK").encode())
        conn.close()


@pytest.fixture
def src():
    s = NetworkSrc(keep_sent=True)
    s.start()
    yield s
    s.stop()


def open_session(src, uri: str, rid: str, dialect: str = "webex") -> AgentLeg:
    src.open(rid, Spec(dialect, uri, '"A"<sip:+15550001001@127.0.0.1;user=phone>', metadata="<x/>"))
    return AgentLeg(src, rid)


def wait_for_request(leg: AgentLeg, method: str) -> sip_message.Message:
    while True:
        msg = leg._read()
        if not msg.is_response and msg.method == method:
            return msg


def test_a_refusal_reaches_the_agent_with_its_code_and_reason(src):
    srs = ScriptedSrs(code=403)
    resp = open_session(src, srs.uri, "r1").request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
    assert (resp.code, resp.reason) == (403, "Forbidden here")
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK"]          # the non-2xx was ACKed
    assert srs.received[1].header("via") == srs.received[0].header("via")  # in its transaction


def test_an_unreachable_recorder_is_a_503_at_once(src):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]          # nothing listens there once closed
    resp = open_session(src, f"sip:srs@127.0.0.1:{port};transport=tcp", "r2").request(
        "INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
    assert resp.code == 503 and "unreachable" in resp.reason.lower()


@pytest.mark.parametrize("then", ["bye", "drop"])
def test_the_srs_ending_the_session_ends_the_agents_leg(src, then):
    srs = ScriptedSrs(then=then)
    leg = open_session(src, srs.uri, f"r-{then}")
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 200
    leg.request("ACK", 1)
    bye = wait_for_request(leg, "BYE")
    assert bye.call_id == leg.call_id and bye.header("to").startswith("<sip:src-1001@127.0.0.1>;tag=agent")


def test_an_answer_without_the_agents_codecs_is_refused_and_the_srs_released(src):
    srs = ScriptedSrs(pt="9")      # G722 only: the agent sends PCMU/PCMA
    leg = open_session(src, srs.uri, "r4")
    resp = leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
    assert resp.code == 488 and "codecs" in resp.reason
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]


def test_the_agent_hanging_up_sends_bye_to_the_srs(src):
    srs = ScriptedSrs()
    leg = open_session(src, srs.uri, "r5", dialect="rfc7866")
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 200
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    srs.thread.join(5)
    methods = [m.method for m in srs.received]
    assert methods == ["INVITE", "ACK", "BYE"]
    assert srs.received[2].header("to").endswith(";tag=srs1")
    assert srs.received[2].start_line.startswith(f"BYE {srs.uri} ")          # to the SRS's Contact


def wait_until(predicate, timeout: float = 5.0) -> None:
    import time
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_early_offer_invites_the_srs_before_the_agents_invite_arrives(src):
    """The offer from pjsua2's onCallSdpCreated starts the SRS leg; the agent's INVITE, when it
    comes, gets the SRS's answer (docs/decisions.md: the SRS's INVITE leaves with the offer)."""
    srs = ScriptedSrs()
    leg = open_session(src, srs.uri, "r-early")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    src.early_offer("r-early", offer)
    wait_until(lambda: [m.method for m in srs.received] == ["INVITE", "ACK"])   # answered and ACKed
    resp = leg.request("INVITE", 1, offer)
    assert resp.code == 200 and "m=audio" in resp.text
    assert src.timing("r-early")["offer_ahead_ms"] > 0
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]   # one SRS leg, not two


def test_an_offer_whose_post_has_not_run_when_its_invite_is_read_still_takes_the_early_path(src, monkeypatch):
    """On a reused connection pjsua's INVITE follows its offer so closely that the loop often
    reads both in one pass, and I/O runs before posted work: the INVITE takes the waiting
    offer and the session is set up once, through the early path (offer_ahead_ms reported).
    The race is made certain here by holding the offer's post back until the INVITE is read."""
    srs = ScriptedSrs()
    leg = open_session(src, srs.uri, "r-race")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    held_back: list = []
    monkeypatch.setattr(src, "_post", held_back.append)
    src.early_offer("r-race", offer)
    monkeypatch.undo()
    resp = leg.request("INVITE", 1, offer)          # read and answered before the post runs
    assert resp.code == 200 and "m=audio" in resp.text
    assert src.timing("r-race")["offer_ahead_ms"] >= 0      # taken through the early path
    for fn in held_back:                            # the post, late: nothing left to do
        src._post(fn)
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]   # one SRS leg, not two


def test_an_early_offer_refused_gives_the_agents_invite_the_refusal(src):
    srs = ScriptedSrs(code=403)
    leg = open_session(src, srs.uri, "r-early-403")
    src.early_offer("r-early-403", AGENT_SDP.format(p1=40000, p2=40002))
    srs.thread.join(5)                       # INVITE refused and ACKed before the agent asks
    resp = leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
    assert (resp.code, resp.reason) == (403, "Forbidden here")


def test_an_srs_hanging_up_before_the_agents_invite_came_still_ends_the_agents_leg(src):
    srs = ScriptedSrs(then="bye")
    leg = open_session(src, srs.uri, "r-early-bye")
    src.early_offer("r-early-bye", AGENT_SDP.format(p1=40000, p2=40002))
    srs.thread.join(5)                       # answered, ACKed, then the SRS's BYE answered
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 200
    leg.request("ACK", 1)
    assert wait_for_request(leg, "BYE").call_id == leg.call_id


def test_an_early_offer_whose_invite_never_comes_releases_the_srs(src, monkeypatch):
    import mppsim.phone.network_src as network_src
    monkeypatch.setattr(network_src, "ORPHAN_TIMEOUT", 0.3)
    srs = ScriptedSrs()
    src.open("r-orphan", Spec("webex", srs.uri, '"A"<sip:+15550001001@127.0.0.1;user=phone>', metadata="<x/>"))
    src.early_offer("r-orphan", AGENT_SDP.format(p1=40000, p2=40002))
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]


def test_two_documents_handed_over_before_a_message_goes_out_keep_both_status_events():
    """Plain On Demand's Record hands over {"kept"} then {"announcement": "start"} at once; when
    both arrive before the SRC sends the first re-INVITE, the first's events must not be lost
    (the recorder then discarded the recording as never kept: demo-tour flake)."""
    import json
    from mppsim.siprec import status as siprec_status
    s = NetworkSrc()
    s.open("r1", Spec("webex", "sip:srs@127.0.0.1:5060;transport=tcp", '"A"<sip:1@127.0.0.1>'))
    s.set_document("r1", "<a/>", siprec_status.encode("cid", "active", [{"kept": True}], {"x": "A"}))
    s.set_document("r1", "<b/>", siprec_status.encode(None, "paused", [{"announcement": "start"}]))
    s.set_document("r1", "<c/>", None)
    spec = s._specs["r1"]
    st = json.loads(spec.status)
    assert spec.metadata == "<c/>"
    assert st == {"sipSessionID": "cid", "state": "paused", "names": {"x": "A"},
                  "events": [{"kept": True}, {"announcement": "start"}]}
    spec.status = None                      # sent (_send_request): the next one starts afresh
    s.set_document("r1", "<d/>", siprec_status.encode(None, "active", [{"resumed": "t"}]))
    assert json.loads(spec.status)["events"] == [{"resumed": "t"}]


# --- standby: a leg made ready while the recorded call rings (src/mppsim/phone/siprec.py standby) ---------

def standby_session(src, srs, rid: str) -> AgentLeg:
    src.open(rid, Spec("webex", srs.uri, "", standby=True))
    return AgentLeg(src, rid)


def test_a_standby_sessions_invite_waits_until_go_then_the_srs_is_invited_at_once(src):
    """While the call rings the agent's INVITE is kept (100 Trying) and the SRS hears nothing;
    `go` (the answer) sends the SRS's INVITE with the spec given since, and the agent gets the
    SRS's answer."""
    import time
    srs = ScriptedSrs()
    leg = standby_session(src, srs, "r-standby")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    src.early_offer("r-standby", offer)
    answers: list = []
    asking = threading.Thread(target=lambda: answers.append(leg.request("INVITE", 1, offer)))
    asking.start()
    wait_until(lambda: "r-standby" in src._by_rid)          # the agent's INVITE is here, parked
    time.sleep(0.3)
    assert srs.received == [] and answers == []
    src.open("r-standby", Spec("webex", srs.uri, '"A"<sip:+15550001001@127.0.0.1;user=phone>',
                               metadata="<x/>"))
    src.go("r-standby")
    asking.join(5)
    (resp,) = answers
    assert resp.code == 200 and "m=audio" in resp.text
    assert src.timing("r-standby")["standby_ms"] >= 300
    assert "offer_ahead_ms" not in src.timing("r-standby")
    invite = srs.received[0]
    assert invite.method == "INVITE" and "+15550001001" in invite.header("from")   # the new spec's
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]


def test_a_standby_cancelled_while_ringing_never_reaches_the_srs_and_is_forgotten(src):
    """The call ended unanswered: pjsua CANCELs the parked INVITE (200, then 487) and the SRS
    never hears of the session; nothing of it stays in the network SRC."""
    import time
    srs = ScriptedSrs()
    leg = standby_session(src, srs, "r-cancel")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    src.early_offer("r-cancel", offer)
    leg.sock.sendall((f"INVITE sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1INVITE\r\n"
                      f"From: <sip:src-1001@127.0.0.1>;tag=agent\r\nTo: <sip:src@127.0.0.1>\r\n"
                      f"Call-ID: {leg.call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:src-1001@127.0.0.1:9;transport=tcp>\r\n"
                      f"X-Mppsim-Recording: r-cancel\r\nContent-Type: application/sdp\r\n"
                      f"Content-Length: {len(offer)}\r\n\r\n{offer}").encode())
    trying = leg._read()
    assert trying.is_response and trying.code == 100
    leg.sock.sendall((f"CANCEL sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1INVITE\r\n"
                      f"From: <sip:src-1001@127.0.0.1>;tag=agent\r\nTo: <sip:src@127.0.0.1>\r\n"
                      f"Call-ID: {leg.call_id}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n").encode())
    answers = [leg._read(), leg._read()]
    assert sorted((m.code, m.header("cseq").split()[1]) for m in answers) == [(200, "CANCEL"), (487, "INVITE")]
    src.discard("r-cancel")
    time.sleep(0.3)
    assert srs.received == []
    with src._lock:
        assert "r-cancel" not in src._specs and "r-cancel" not in src._offers


def test_a_standby_whose_agent_invite_is_not_here_yet_goes_the_early_way(src):
    """`go` before the agent's INVITE arrived: the SRS's INVITE leaves with the kept offer and the
    agent's INVITE, when it comes, gets the SRS's answer; one SRS leg, not two."""
    srs = ScriptedSrs()
    leg = standby_session(src, srs, "r-standby-early")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    src.early_offer("r-standby-early", offer)
    src.go("r-standby-early")
    wait_until(lambda: [m.method for m in srs.received] == ["INVITE", "ACK"])
    resp = leg.request("INVITE", 1, offer)
    assert resp.code == 200 and "m=audio" in resp.text
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    srs.thread.join(5)
    assert [m.method for m in srs.received] == ["INVITE", "ACK", "BYE"]


def test_discard_of_an_unused_standby_leaves_nothing(src):
    src.open("r-gone", Spec("webex", "sip:srs@127.0.0.1:9;transport=tcp", "", standby=True))
    src.early_offer("r-gone", AGENT_SDP.format(p1=40000, p2=40002))
    src.discard("r-gone")
    wait_until(lambda: "r-gone" not in src._specs)
    with src._lock:
        assert "r-gone" not in src._offers


# --- the relay's lifecycle: one state field, moved only along TRANSITIONS -------------------------

ALL_MOVES = [(a, b) for a in RelayState for b in RelayState]


def relay_in(state: RelayState) -> Relay:
    relay = Relay("r", Spec("webex", "sip:srs@127.0.0.1:9;transport=tcp", ""), None, None)
    assert relay.state is RelayState.NEW
    relay.state = state
    return relay


@pytest.mark.parametrize("before,after", [m for m in ALL_MOVES if m[1] in TRANSITIONS[m[0]]],
                         ids=lambda s: s.value)
def test_every_legal_relay_transition_moves(before, after):
    relay = relay_in(before)
    relay.move(after)
    assert relay.state is after


@pytest.mark.parametrize("before,after", [m for m in ALL_MOVES if m[1] not in TRANSITIONS[m[0]]],
                         ids=lambda s: s.value)
def test_every_illegal_relay_transition_raises_and_leaves_the_state(before, after):
    relay = relay_in(before)
    with pytest.raises(IllegalTransition, match=f"{before.value} -> {after.value}"):
        relay.move(after)
    assert relay.state is before


def reachable(start: RelayState) -> set[RelayState]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in TRANSITIONS[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_every_relay_state_is_reachable_from_new_and_every_one_can_end():
    assert reachable(RelayState.NEW) == set(RelayState)
    for state in RelayState:
        assert RelayState.ENDED in reachable(state)
    assert TRANSITIONS[RelayState.ENDED] == frozenset()


def test_the_relay_state_groups_say_what_the_old_flags_said():
    """over = the old `ended`; up = `established and not ended`; owes_answer = the SRS's outcome
    is known and the agent's INVITE not answered (`result` set, not `answered`)."""
    assert OVER == {RelayState.REFUSED, RelayState.HUNG_UP, RelayState.ENDED}
    assert UP == {RelayState.ACCEPTED, RelayState.LIVE}
    assert OWES_ANSWER == {RelayState.ACCEPTED, RelayState.REFUSED, RelayState.HUNG_UP}
    for state in RelayState:
        relay = relay_in(state)
        assert (relay.over, relay.up, relay.owes_answer) == (state in OVER, state in UP, state in OWES_ANSWER)


def test_a_relays_transactions_go_one_at_a_time_and_one_that_sends_nothing_lets_the_next_go():
    relay = relay_in(RelayState.LIVE)
    ran: list[str] = []
    relay.queue(lambda: ran.append("a"))                # sent: under way until job_done
    relay.queue(lambda: ran.append("b") or False)       # sends nothing
    relay.queue(lambda: ran.append("c"))
    assert ran == ["a"]
    relay.job_done()
    assert ran == ["a", "b", "c"] and len(relay.jobs) == 1   # c under way
    relay.job_done()
    assert not relay.jobs
    relay.queue(lambda: ran.append("d"))                # an idle queue runs it at once
    assert ran[-1] == "d"


def test_a_transaction_answered_while_it_is_being_sent_runs_the_next_at_once():
    """A send that fails closes the connection, and its pending request is finished (job_done)
    before the job returns: the next job must run, and only once."""
    relay = relay_in(RelayState.LIVE)
    ran: list[str] = []
    relay.queue(lambda: ran.append("a"))
    relay.queue(lambda: ran.append("b"))

    def fails_while_sending():
        ran.append("c")
        relay.job_done()                  # what Conn.close -> _on_srs_close -> finish does
        return True
    relay.jobs.insert(1, fails_while_sending)
    relay.job_done()                      # a answered: c runs, finishes inside, b runs
    assert ran == ["a", "c", "b"] and len(relay.jobs) == 1


@pytest.fixture
def paths(monkeypatch):
    """Every relay's states as the real flows move it (a spy: `Relay.move` still runs)."""
    seen: dict[str, list[str]] = {}
    move = Relay.move

    def spy(self, to):
        move(self, to)
        seen.setdefault(self.rid, ["new"]).append(to.value)
    monkeypatch.setattr(Relay, "move", spy)
    return seen


def test_relay_paths_of_the_agent_first_flows(src, paths):
    srs = ScriptedSrs()
    leg = open_session(src, srs.uri, "p-live")
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 200
    leg.request("ACK", 1)
    assert leg.request("BYE", 2).code == 200
    refusing = ScriptedSrs(code=403)
    assert open_session(src, refusing.uri, "p-403").request(
        "INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 403
    g722 = ScriptedSrs(pt="9")
    assert open_session(src, g722.uri, "p-488").request(
        "INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 488
    hanging = ScriptedSrs(then="bye")
    leg = open_session(src, hanging.uri, "p-srs-bye")
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002)).code == 200
    leg.request("ACK", 1)
    wait_for_request(leg, "BYE")
    assert paths == {"p-live": ["new", "inviting", "accepted", "live", "ended"],
                     "p-403": ["new", "inviting", "refused", "ended"],
                     "p-488": ["new", "inviting", "accepted", "ended"],
                     "p-srs-bye": ["new", "inviting", "accepted", "live", "ended"]}
    for rid in paths:
        assert src._by_rid[rid].state is RelayState.ENDED     # keep_sent keeps them to look at


def test_relay_paths_of_the_early_and_standby_flows(src, paths, monkeypatch):
    import mppsim.phone.network_src as network_src
    monkeypatch.setattr(network_src, "ORPHAN_TIMEOUT", 0.3)
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    hanging = ScriptedSrs(then="bye")
    leg = open_session(src, hanging.uri, "p-hung-up")
    src.early_offer("p-hung-up", offer)
    hanging.thread.join(5)
    wait_until(lambda: paths.get("p-hung-up", [])[-1:] == ["hung-up"])
    assert leg.request("INVITE", 1, offer).code == 200
    leg.request("ACK", 1)
    wait_for_request(leg, "BYE")
    refusing = ScriptedSrs(code=403)
    leg = open_session(src, refusing.uri, "p-early-403")
    src.early_offer("p-early-403", offer)
    refusing.thread.join(5)
    wait_until(lambda: paths.get("p-early-403", [])[-1:] == ["refused"])
    assert leg.request("INVITE", 1, offer).code == 403
    orphan = ScriptedSrs()
    open_session(src, orphan.uri, "p-orphan")
    src.early_offer("p-orphan", offer)
    orphan.thread.join(5)
    parked = ScriptedSrs()
    leg = standby_session(src, parked, "p-standby")
    answers: list = []
    asking = threading.Thread(target=lambda: answers.append(leg.request("INVITE", 1, offer)))
    asking.start()
    wait_until(lambda: paths.get("p-standby") == ["new", "parked"])
    src.go("p-standby")
    asking.join(5)
    assert answers[0].code == 200
    # the relay moves to live just after it has sent the agent its 200, on the SRC's own thread
    wait_until(lambda: paths.get("p-standby", [])[-1:] == ["live"])
    wait_until(lambda: "p-orphan" in paths and paths["p-orphan"][-1] == "ended")
    assert paths == {"p-hung-up": ["new", "inviting", "accepted", "hung-up", "ended"],
                     "p-early-403": ["new", "inviting", "refused", "ended"],
                     "p-orphan": ["new", "inviting", "accepted", "ended"],
                     "p-standby": ["new", "parked", "inviting", "accepted", "live"]}


def test_relay_path_of_a_cancelled_standby(src, paths):
    srs = ScriptedSrs()
    leg = standby_session(src, srs, "p-cancel")
    offer = AGENT_SDP.format(p1=40000, p2=40002)
    leg.sock.sendall((f"INVITE sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK2INVITE\r\n"
                      f"From: <sip:src-1001@127.0.0.1>;tag=agent\r\nTo: <sip:src@127.0.0.1>\r\n"
                      f"Call-ID: {leg.call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:src-1001@127.0.0.1:9;transport=tcp>\r\n"
                      f"X-Mppsim-Recording: p-cancel\r\nContent-Type: application/sdp\r\n"
                      f"Content-Length: {len(offer)}\r\n\r\n{offer}").encode())
    assert leg._read().code == 100
    leg.sock.sendall((f"CANCEL sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK2INVITE\r\n"
                      f"From: <sip:src-1001@127.0.0.1>;tag=agent\r\nTo: <sip:src@127.0.0.1>\r\n"
                      f"Call-ID: {leg.call_id}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n").encode())
    assert sorted(m.code for m in (leg._read(), leg._read())) == [200, 487]
    assert paths == {"p-cancel": ["new", "parked", "ended"]}


@pytest.mark.parametrize("code", [200, 513])
def test_the_4000_byte_warning_only_toward_an_srs_that_did_not_take_the_message(code):
    """mppsim's own recorder takes 64 kB: a 5 kB INVITE answered is no reason to warn. One that
    is refused 513 (or never answered) is, and the log says the PyPI pjsua2's limit."""
    logs: list[str] = []
    s = NetworkSrc(keep_sent=True, log=logs.append)
    s.start()
    try:
        srs = ScriptedSrs(code=code)
        s.open("big", Spec("rfc7866", srs.uri, '"A"<sip:+15550001001@127.0.0.1;user=phone>',
                           metadata="<x>" + "y" * 5000 + "</x>"))
        resp = AgentLeg(s, "big").request("INVITE", 1, AGENT_SDP.format(p1=40000, p2=40002))
        assert resp.code == code
        assert len(srs.received[0].body) > 4000      # the INVITE the SRS got: its body alone
    finally:
        s.stop()
    warned = [line for line in logs if "pjsua2-based SRS drops messages over 4000 bytes" in line]
    if code == 200:
        assert warned == []
    else:
        assert len(warned) == 1 and "was refused 513" in warned[0] and srs.uri in warned[0]
