"""SIPREC client (RFC 7866): the network edge forks a recorded call to a recorder (SRS).

One recording session = its own INVITE dialog toward the SRS, with two sendonly audio streams
(label 1 = the recorded user's send stream, label 2 = the other party's) and a multipart body:
SDP + RFC 7865 metadata. Pause/resume = re-INVITE; announcements and other events = re-INVITE
with the new document; transfer/conference = UPDATE (or re-INVITE) with the new participants
(`update_participants`); stop = BYE. Two dialects (docs/protocol.md): `webex` (what Webex
Calling/BroadWorks sends, R-REC-4, issue 11) and `rfc7866` (the standard shape).

Real-size messages exceed what the PyPI pjsua2 can carry (4000 bytes), so pjsua2 holds only a
small SDP-only call toward the agent's network SRC (phone/network_src.py), which sends the real
messages; RTP still leaves pjmedia straight to the SRS (docs/decisions.md). pjsua2 facts used
(../shared/DESIGN.md): audioCount = 2 with PJSUA_CALL_SET_MEDIA_DIR gives two sendonly m-lines
(inactive when paused); labels are written into the SDP in onCallSdpCreated.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

import pjsua2 as pj

from mppsim.siprec import status as status_header
from mppsim.siprec.metadata import Metadata, Participant, Stream, build, new_id, now_iso
from mppsim.sip.sdp import add_labels
from mppsim.siprec.webex import WebexRecording, new_recording, party_uri
from mppsim.siprec.webex import build as build_webex

from .calls import snapshot
from .network_src import RID_HEADER, NetworkSrc, Spec

if TYPE_CHECKING:
    from .calls import CallRecord

DIALECTS = ("webex", "rfc7866")
LABELS = ("1", "2")
HOST = "127.0.0.1"   # the simulated network's host part in AoRs and party numbers; the agent
                     # sets it to its address (issue 21: nothing says 127.0.0.1 off loopback)
EMBEDDED_RECORDER_MAX = None   # the embedded recorder is on asyncio (issue 9): 64 kB messages


def user_aor(extension: str) -> str:
    """A simulated user's AoR (the recorder's `owner` of a recording)."""
    return f"sip:{extension}@{HOST}"


def other_aor(user: str, dialect: str) -> str:
    """The other party's AoR: internal ``sip:ext@host``; a PSTN number ``tel:+E164`` in the
    rfc7866 dialect, ``sip:+E164@host;user=phone`` as BroadWorks writes it in the webex one."""
    if user.startswith("+"):
        return f"sip:{user}@{HOST};user=phone" if dialect == "webex" else f"tel:{user}"
    return f"sip:{user}@{HOST}"


def split_target(target: str) -> tuple[str, str]:
    """'sip:srs@h:p;transport=tcp;dialect=rfc7866' -> (URI without the dialect param, dialect)."""
    dialect = "webex"
    parts = []
    for i, piece in enumerate(target.split(";")):
        if i > 0 and piece.lower().startswith("dialect="):
            dialect = piece.split("=", 1)[1].lower()
        else:
            parts.append(piece)
    uri = ";".join(parts)
    if "transport=" not in uri.lower():
        uri += ";transport=tcp"   # the INVITE with metadata is ~1.5 kB: UDP would fragment
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: {dialect!r} not allowed; allowed: {', '.join(DIALECTS)}")
    return uri, dialect


class SiprecCall(pj.Call):
    def __init__(self, post, account: pj.Account, session: "Session"):
        super().__init__(account)
        self._post = post
        self.session = session
        self.on_first_offer = None    # set by start(): the network SRC's early_offer

    def onCallState(self, prm):  # noqa: N802
        snap = snapshot(self)
        if snap is not None:
            self._post(("siprec_state", self, snap))

    def onCallMediaState(self, prm):  # noqa: N802
        self._post(("siprec_media", self, None))

    def onCallSdpCreated(self, prm):  # noqa: N802
        """Runs synchronously while pjsua builds our SDP: label the streams. The dialect's SDP
        (o=BroadWorks, codecs, pause by c=0.0.0.0) is the network SRC's business."""
        prm.sdp.wholeSdp = add_labels(prm.sdp.wholeSdp, list(LABELS))
        hand_over, self.on_first_offer = self.on_first_offer, None
        if hand_over is not None:     # the initial INVITE's offer: the SRS's INVITE can leave now
            hand_over(prm.sdp.wholeSdp)


@dataclass
class Session:
    """One recording session: one recording of one call."""
    key: str                      # the recorded call's key
    number: int                   # 1, 2, ... recordings of that call
    target: str
    dialect: str
    metadata: Metadata            # state, events; the whole document in the rfc7866 dialect
    webex: WebexRecording | None = None   # the document in the webex dialect
    rid: str = ""                 # the network SRC's name for this session
    call: SiprecCall | None = None
    state: str = "starting"       # standby | starting | active | paused | ended | failed
    paused: bool = False
    started_at: float = 0.0
    first_media_at: float | None = None
    auds: list = field(default_factory=list)
    events_sent: int = 0          # metadata events already handed to the network SRC
    handed_over: bool = False     # a document went to the network SRC already
    names_changed: bool = False   # participants changed: their names go in the next status
    retry_queued: bool = False
    update_pending: str | None = None   # participants changed while starting: UPDATE/INVITE once active
    sent: list[int] = field(default_factory=list)   # RTP packets sent per stream, read at hang-up


class SiprecClient:
    """Owns the agent's recording sessions. All methods run on the agent's main thread; the SIP
    toward the SRS is the network SRC's (phone/network_src.py), the media stays in pjmedia."""

    def __init__(self, agent, ep: pj.Endpoint, accounts: dict[str, pj.Account]):
        self.agent = agent
        self.ep = ep
        self.accounts = accounts            # dialect -> account with the right Contact param
        self.sessions: dict[tuple[str, int], Session] = {}
        self.standbys: dict[str, Session] = {}   # call key -> its leg made ready while ringing
        self.dropped: dict[str, Session] = {}    # call key -> its standby, cancelled unused (reaped)
        self.calls: list[SiprecCall] = []   # kept for the process' life (docs/decisions.md)
        self.src = NetworkSrc(host=HOST, log=lambda text: agent.post(("siprec_log", None, text)),
                              tls_ca=getattr(agent, "tls_ca", ""))
        self.src.start()

    # ----- building the session ---------------------------------------------------------
    def _parties(self, rec: "CallRecord"):
        from mppsim.sip.uri import name_and_user
        local_line = next(l for l in self.agent.lines if l.id == rec.line)
        mailbox = rec.mailbox
        if mailbox:   # a voicemail deposit is the mailbox owner's recording (R-USR-3)
            local_line = replace(local_line, extension=mailbox, display=self.agent.names.get(mailbox, mailbox))
        remote_name, remote_user = name_and_user(rec.remote_uri)
        remote_name = remote_name or self.agent.names.get(remote_user, "")
        return local_line, remote_name, remote_user

    def _metadata(self, rec: "CallRecord", number: int, settings, dialect: str) -> Metadata:
        local_line, remote_name, remote_user = self._parties(rec)
        local_aor = user_aor(local_line.extension)
        remote_aor = other_aor(remote_user, dialect)
        session_id, s1, s2, p1, p2 = (new_id() for _ in range(5))
        # Both recordings of an internal call share the group (R-REC-4): derived from the
        # recorded call's Call-ID, which both agents see.
        group = str(uuid.uuid5(uuid.NAMESPACE_URL, rec.sip_call_id or rec.key))
        return Metadata(
            dialect=dialect, datamode="complete", group_id=group, session_id=session_id,
            sip_session_id=rec.sip_call_id,
            participants=[Participant(p1, local_line.display, local_aor, [s1], [s2]),
                          Participant(p2, remote_name or remote_user, remote_aor, [s2], [s1])],
            streams=[Stream(s1, LABELS[0], session_id), Stream(s2, LABELS[1], session_id)],
            start_time=now_iso(), stop_time=None, state="active", events=[], broadworks=None)

    def _webex(self, rec: "CallRecord", settings) -> tuple[WebexRecording, str]:
        """The BroadWorks-shaped document and the From header of a webex-dialect session."""
        local_line, _remote_name, remote_user = self._parties(rec)
        number = getattr(settings, "number", "") or local_line.extension
        own = party_uri(number, HOST, user_phone=not number.startswith("+"))
        other = party_uri(remote_user, HOST, user_phone=not remote_user.startswith("+"))
        outgoing = rec.direction == "out"
        webex = new_recording(
            user_aor=user_aor(local_line.extension), other_aors=[other_aor(remote_user, "webex")],
            call_id=rec.sip_call_id or rec.key, platform=tuple(settings.platform), outgoing=outgoing,
            calling=own if outgoing else other, called=other if outgoing else own, mode=settings.mode,
            dialed=(party_uri(remote_user, HOST, user_phone=False) if outgoing
                    # a call through a feature: the number the caller dialled (docs/decisions.md)
                    else party_uri(rec.via, HOST, user_phone=not rec.via.startswith("+")) if rec.via
                    else None))
        display = local_line.display.replace('"', "'")
        user = number if number.startswith("+") else local_line.extension
        return webex, f'"{display}"<sip:{user}@{HOST};user=phone>'

    def _document(self, session: Session, partial: bool = False) -> tuple[str, str | None]:
        """(metadata XML, X-Mppsim-Status value) for the next message; marks events as sent."""
        md = session.metadata
        first = session.events_sent == 0 and not session.handed_over
        session.handed_over = True
        new_events = md.events[session.events_sent:]
        session.events_sent = len(md.events)
        if session.dialect == "webex":
            names = None
            if first or session.names_changed:   # Webex Calling's metadata names nobody
                names = {p.aor: p.name for p in md.participants if p.name}
                session.names_changed = False
            return (build_webex(session.webex),
                    status_header.encode(md.sip_session_id if first else None, md.state, new_events, names))
        if partial:
            # RFC 7865 partial update: the session, its state and the events not yet sent
            md = replace(md, datamode="partial", participants=[], streams=[], events=new_events)
        return build(md)[1], None

    def _hand_over(self, session: Session, partial: bool = False) -> None:
        xml, status = self._document(session, partial)
        self.src.set_document(session.rid, xml, status)

    def _media_param(self, session: Session, paused: bool, partial: bool = False) -> pj.CallOpParam:
        """The pjsua2 leg's offer. ``partial`` is accepted for older callers and unused: the
        document goes to the network SRC by ``_hand_over`` (call features: ``update_participants``)."""
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 2
        prm.opt.videoCount = 0
        prm.opt.flag |= pj.PJSUA_CALL_SET_MEDIA_DIR
        # paused: a=inactive toward the network SRC, which writes the dialect's pause
        direction = pj.PJMEDIA_DIR_NONE if paused else pj.PJMEDIA_DIR_ENCODING
        prm.opt.mediaDir = pj.IntVector([direction, direction])
        h = pj.SipHeader()
        h.hName, h.hValue = RID_HEADER, session.rid
        prm.txOption.headers.append(h)
        return prm

    # ----- recorder actions (from the policy) -------------------------------------------
    def start(self, rec: "CallRecord", number: int, settings, target: str, detail: dict) -> None:
        uri, dialect = split_target(target)
        md = self._metadata(rec, number, settings, dialect)
        if detail.get("compliance_played"):
            md.events.append({"announcement": "compliance", "time": now_iso()})
        if detail.get("provisional"):
            md.events.append({"provisional": True, "time": now_iso()})
        if rec.via:     # through a hunt group, call queue or auto attendant (issue 25)
            md.events.append({"dialled": rec.via, "feature": self.agent.names.get(rec.via, rec.via),
                              "time": now_iso()})
        session = Session(rec.key, number, uri, dialect, md, rid=f"{self.agent.name}:{rec.key}:{number}")
        if dialect == "webex":
            session.webex, from_header = self._webex(rec, settings)
            extra = {"X-BroadWorks-Correlation-Info": session.webex.broadworks["extTrackingID"]}
            spec = Spec(dialect, uri, from_header, extra=extra)
        else:
            local_line, _n, _u = self._parties(rec)
            display = local_line.display.replace('"', "'")
            spec = Spec(dialect, uri, f'"{display}" <sip:src-{local_line.extension}@{HOST}>',
                        contact_user=f"src-{local_line.extension}")
        if target == self.agent.recorder_target:
            spec.max_size = EMBEDDED_RECORDER_MAX   # mppsim's own pjsua2 recorder (issue 9)
        spec.metadata, spec.status = self._document(session)
        standby = self.standbys.pop(rec.key, None)
        if standby is not None:
            if (standby.rid, standby.target, standby.dialect) == (session.rid, uri, dialect):
                self.src.open(session.rid, spec)      # the real headers and document
                session.call, standby.call.session = standby.call, session
                self.sessions[(rec.key, number)] = session
                session.started_at = time.monotonic()
                self.src.go(session.rid)
                return
            self._drop_standby(standby)   # made for another recorder: the ordinary way
        self.src.open(session.rid, spec)
        self.sessions[(rec.key, number)] = session
        session.started_at = time.monotonic()
        try:
            self._make_leg(session)
        except pj.Error as exc:
            self._failed(session, f"cannot reach the recorder at {uri}: {exc.info()}")

    def _make_leg(self, session: Session) -> None:
        """The session's pjsua2 call toward the network SRC; its offer goes on to the SRS as
        soon as pjsua2 has built it (`early_offer`), unless the session is on standby."""
        call = SiprecCall(self.agent.post, self.accounts[session.dialect], session)
        call.on_first_offer = lambda sdp: self.src.early_offer(session.rid, sdp)
        session.call = call
        self.calls.append(call)
        call.makeCall(self.src.uri, self._media_param(session, paused=False))
        self.agent.wake_poller()

    def standby(self, rec: "CallRecord", settings, target: str) -> None:
        """Make ready, while the call rings, the pjsua2 leg of the recording its answer will
        start: at the answer only the SRS's INVITE is left to send, not makeCall's media
        transports and SDP (p50 5 ms, up to 45 ms under a burst; docs/decisions.md). The network
        SRC keeps the leg's INVITE and sends nothing to the SRS until `start` says go; the leg
        of a call that ends unanswered is cancelled (`call_ended`) and the SRS never hears of it."""
        if rec.key in self.standbys or any(k == rec.key for k, _n in self.sessions):
            return
        uri, dialect = split_target(target)
        session = Session(rec.key, 1, uri, dialect, self._metadata(rec, 1, settings, dialect),
                          rid=f"{self.agent.name}:{rec.key}:1", state="standby")
        self.src.open(session.rid, Spec(dialect, uri, "", standby=True))
        try:
            self._make_leg(session)
        except pj.Error:
            self.src.discard(session.rid)
            return
        self.standbys[rec.key] = session

    def release_standby(self, key: str) -> None:
        """The call was answered (its recording, if any, has started) or has ended: a standby
        still here will not be used (a transfer's leg carries the recording on, say, or nobody
        answered); it gives back its pjsua call."""
        standby = self.standbys.pop(key, None)
        if standby is not None:
            self._drop_standby(standby)

    def detach(self, session: Session, skey: tuple[str, int] | None = None) -> None:
        """The reaper frees the session's pjsua2 call next: drop every reference to it."""
        if skey is not None:
            self.sessions.pop(skey, None)
        self.calls[:] = [c for c in self.calls if c is not session.call]
        session.call.session = None
        session.call = None

    def _drop_standby(self, session: Session) -> None:
        """Cancel an unused standby leg; its pjsua2 objects are reaped with its call's."""
        try:
            session.call.hangup(pj.CallOpParam(True))   # a CANCEL: the network SRC answers 487
        except pj.Error:
            pass
        self.src.discard(session.rid)
        self.dropped[session.key] = session

    def update(self, key: str, number: int, op: str, detail: dict) -> None:
        session = self.sessions.get((key, number))
        if session is None or session.state in ("ended", "failed"):
            return
        md = session.metadata
        media_change = False
        if op == "pause":
            media_change = not session.paused
            session.paused = True
            md.state = "paused"
            md.events.append({"paused": now_iso()})
        elif op == "resume":
            media_change = session.paused
            session.paused = False
            md.state = "active"
            md.events.append({"resumed": now_iso()})
        elif op == "metadata":
            md.events.append({**detail, "time": now_iso()})
        if op in ("stop", "discard"):
            md.stop_time = now_iso()
            md.state = "stopped"
            if op == "discard":
                md.events.append({"discarded": now_iso()})
            self._hangup(session)
            return
        if session.state == "starting":
            return          # the metadata goes out once the session is answered (on_state)
        if session.paused:
            self._unlink(session)
        else:
            self._link(session)
        if media_change:
            self._send_reinvite(session)     # pause/resume: the SRS gets a re-INVITE + metadata
        else:
            self._hand_over(session, partial=True)
            self.src.update(session.rid, "INVITE")

    def update_participants(self, key: str, others: list[dict], method: str = "UPDATE",
                            event: Callable[[str, list[str]], dict | None] | None = None) -> None:
        """The parties the recorded user talks with changed (transfer, conference; engineer E's
        features): ``others`` = [{"user": extension or E.164, "name": display name}, ...]. Every
        live recording of call ``key`` sends the whole new participant list to its SRS, by
        ``method`` UPDATE (default, as Webex Calling does) or INVITE (re-INVITE). ``event(dialect,
        previous other parties' AoRs)`` -> the feature's own event to add first (mppsim's
        ``participant_change``), or None."""
        for (k, _n), session in self.sessions.items():
            if k != key or session.state in ("ended", "failed"):
                continue
            md = session.metadata
            ev = event(session.dialect, [p.aor for p in md.participants[1:]]) if event else None
            if ev:
                md.events.append({**ev, "time": now_iso()})
            own = md.participants[0]
            s1, s2 = own.send[0], own.recv[0]
            md.participants[1:] = [Participant(new_id(), o.get("name") or o["user"],
                                               other_aor(o["user"], session.dialect), [s2], [s1])
                                   for o in others]
            if session.webex is not None:
                session.webex.set_others([other_aor(o["user"], "webex") for o in others])
            md.events.append({"participants": [o["user"] for o in others], "time": now_iso()})
            session.names_changed = True
            self._hand_over(session)          # complete: the participant list changed
            if session.state != "starting":
                self.src.update(session.rid, method)
            else:    # the INVITE may have left with the old list: send the new one once answered
                session.update_pending = method

    def _send_reinvite(self, session: Session) -> None:
        """re-INVITE toward the network SRC with the new media direction; the document goes with
        it. One INVITE transaction at a time: while one is under way pjsua says PJ_EINVALIDOP,
        so try again shortly."""
        if session.state in ("ended", "failed") or session.retry_queued:
            return
        self._hand_over(session, partial=True)
        try:
            session.call.reinvite(self._media_param(session, session.paused))
        except pj.Error as exc:
            if exc.status == 70013:   # PJ_EINVALIDOP: a re-INVITE is still pending
                session.retry_queued = True
                self.agent.later(0.1, lambda: self._retry(session))
            else:
                self.agent.emit("log", level="warning", text=f"SIPREC re-INVITE failed: {exc.info()}")

    def _retry(self, session: Session) -> None:
        session.retry_queued = False
        self._send_reinvite(session)

    def on_log(self, text: str) -> None:
        self.agent.emit("log", level="warning", text=text)

    @staticmethod
    def _sent(session: Session) -> list[int]:
        """RTP packets pjmedia sent on each recorded stream: with an external SRS, the only
        count mppsim has of what a recording should hold (issue 21)."""
        counts = []
        if session.call is None:
            return counts
        for i in range(2):
            try:
                counts.append(int(session.call.getStreamStat(i).rtcp.txStat.pkt))
            except pj.Error:
                break                     # no media (never answered, or already gone)
        return counts

    def _hangup(self, session: Session) -> None:
        session.state = "ended"
        session.sent = self._sent(session) or session.sent
        try:
            session.call.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass

    def call_ended(self, key: str) -> None:
        """The recorded call is over: end its recording sessions (the policy said stop too)."""
        self.release_standby(key)
        for (k, _n), session in list(self.sessions.items()):
            if k == key and session.state in ("starting", "active", "paused"):
                session.metadata.stop_time = now_iso()
                self._hangup(session)

    def target_down(self, target_prefix: str) -> None:
        """The app saw the recorder die: every live session to it has failed."""
        for session in list(self.sessions.values()):
            if session.target.startswith(target_prefix) and session.state in ("starting", "active", "paused"):
                self._failed(session, "the recorder went away")
                self._hangup(session)
                session.state = "failed"

    # ----- callbacks (main thread) ------------------------------------------------------
    def on_state(self, call: SiprecCall, snap: dict) -> None:
        s = call.session
        st = snap["pj_state"]
        if s is None:
            return                         # reaped (phone/agent.py reap): nothing is left to tell
        if s.state == "standby":           # never used, or cancelled unused: nothing to report
            if st == pj.PJSIP_INV_STATE_DISCONNECTED and self.standbys.get(s.key) is s:
                self.standbys.pop(s.key)    # refused before it was used: the ordinary way then
            return
        if st == pj.PJSIP_INV_STATE_CONFIRMED and s.state == "starting":
            s.state = "active"
            self.agent.emit("siprec", call=s.key, recording=s.number, state="active", target=s.target,
                            dialect=s.dialect, setup_ms=round((time.monotonic() - s.started_at) * 1000, 1),
                            **self._since_answer(s), **self.src.timing(s.rid))
            self.agent.edge.recorder_started(s.key)
            pending, s.update_pending = s.update_pending, None
            if s.paused:
                self._send_reinvite(s)
            elif len(s.metadata.events) > s.events_sent:
                self._hand_over(s, partial=True)
                self.src.update(s.rid, "INVITE")
            if pending:
                self._hand_over(s)
                self.src.update(s.rid, pending)
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
            if s.state == "starting":
                self._failed(s, f"recorder answered {snap['status_code']} {snap['status_text']}")
            elif s.state in ("active", "paused"):
                why = self.src.end_reason(s.rid)      # e.g. its store full (issue 26)
                self._failed(s, f"the recorder ended the session: {why}" if why
                             else f"the recorder ended the session ({snap['status_code']})")
            else:
                self.agent.emit("siprec", call=s.key, recording=s.number, state="ended", target=s.target,
                                sent=s.sent)
            s.auds = []

    def _since_answer(self, s: Session) -> dict:
        """How long after the recorded call was answered its recording began (and the SIPREC
        INVITE left): the audio a recording misses at its start."""
        rec = self.agent.calls.get(s.key)
        if rec is None or rec.connected_at is None:
            return {}
        now = time.time()
        return {"since_answer_ms": round((now - rec.connected_at) * 1000, 1),
                "invite_after_answer_ms": round((now - rec.connected_at - (time.monotonic() - s.started_at)) * 1000, 1)}

    def on_media(self, call: SiprecCall, _data) -> None:
        if call.session is not None:
            self._link(call.session)

    def _failed(self, session: Session, reason: str) -> None:
        if session.state == "failed":
            return
        session.state = "failed"
        self.agent.emit("siprec", call=session.key, recording=session.number, state="failed",
                        target=session.target, reason=reason)
        self.agent.edge.recorder_failed(session.key, reason)

    def _link(self, session: Session) -> None:
        """Fork: the user's own audio -> stream 1, what the other party sends -> stream 2."""
        rec = self.agent.calls.get(session.key)
        call = session.call
        if rec is None or call is None or session.state in ("standby", "ended", "failed"):
            return
        try:
            ci = call.getInfo()
        except pj.Error:
            return
        auds = []
        for idx in range(len(ci.media)):
            mi = ci.media[idx]
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.audioConfSlot >= 0:
                try:
                    auds.append(call.getAudioMedia(idx))
                except pj.Error:
                    return   # an inactive (paused) stream has no slot yet: the next media update links it
        session.auds = auds
        if len(auds) < 2 or session.paused:
            return
        local = self.agent.source.port
        if local is not None:
            if rec.source_linked is not None:
                local.startTransmit(auds[0])
            else:   # on hold the phone sends nothing: the recording gets silence
                local.stopTransmit(auds[0])
        if rec.aud is not None:
            rec.aud.startTransmit(auds[1])
        if session.first_media_at is None:
            session.first_media_at = time.monotonic()

    def _unlink(self, session: Session) -> None:
        """Nothing reaches the recorder while paused."""
        rec = self.agent.calls.get(session.key)
        if len(session.auds) < 2:
            return
        try:
            if self.agent.source.port is not None:
                self.agent.source.port.stopTransmit(session.auds[0])
            if rec is not None and rec.aud is not None:
                rec.aud.stopTransmit(session.auds[1])
        except pj.Error:
            pass

    def relink(self, key: str) -> None:
        """The recorded call's own streams changed (hold, re-INVITE): fork again."""
        for (k, _n), session in self.sessions.items():
            if k == key:
                self._link(session)

    # ----- for call features (transfer, conference) -------------------------------------
    def move(self, old_key: str, new_key: str) -> None:
        """Re-key the recording sessions of a call: the same recording goes on for the call
        that continues it (transfer, a conference's remaining call)."""
        for (k, n), session in list(self.sessions.items()):
            if k == old_key:
                del self.sessions[(k, n)]
                session.key = new_key
                self.sessions[(new_key, n)] = session

    def starting(self, key: str) -> bool:
        """A recording of call `key` is still being set up (its INVITE not answered)."""
        return any(k == key and s.state == "starting" for (k, _n), s in self.sessions.items())

    def feed(self, key: str, aud: pj.AudioMedia) -> None:
        """Mix another call's audio into the other-party stream of call `key`'s recordings
        (a conference: right channel = everyone but the user). Paused ones get nothing."""
        for (k, _n), session in self.sessions.items():
            if k == key and len(session.auds) >= 2 and not session.paused:
                aud.startTransmit(session.auds[1])

    def unfeed(self, key: str, aud: pj.AudioMedia) -> None:
        """`aud` no longer feeds call `key`'s recordings (the old leg of a transfer)."""
        for (k, _n), session in self.sessions.items():
            if k == key and len(session.auds) >= 2:
                try:
                    aud.stopTransmit(session.auds[1])
                except pj.Error:
                    pass

    def reapable(self, key: str) -> list[tuple[tuple[str, int], Session]]:
        """The sessions of ended call `key` that still hold a pjsua2 call (phone/reaper.py)."""
        return [(skey, s) for skey, s in self.sessions.items() if skey[0] == key and s.call is not None]
