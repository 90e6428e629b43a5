"""SIPREC client (RFC 7866): the network edge forks a recorded call to a recorder (SRS).

One recording session = its own INVITE dialog from the agent to the SRS, with two sendonly
audio streams (label 1 = the recorded user's send stream, label 2 = the other party's) and a
multipart body: SDP + RFC 7865 metadata. Pause/resume/announcements = re-INVITE with updated
metadata; stop = BYE. Two dialects (docs/protocol.md): `webex` (what Webex Calling/BroadWorks
sends, R-REC-4) and `rfc7866` (the standard shape).

pjsua2 facts used (../shared/DESIGN.md): audioCount = 2 with PJSUA_CALL_SET_MEDIA_DIR gives
two sendonly m-lines; labels and the pause's c=0.0.0.0 are written into the SDP in
onCallSdpCreated; `+sip.src` / `;src` come from the recording account's Contact params; the
INVITE is large, so the target URI says transport=tcp.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from recording.metadata import Metadata, Participant, Stream, build, new_id, now_iso
from recording.sipmsg import add_labels, set_connection_address, set_origin_user

from .calls import snapshot

if TYPE_CHECKING:
    from .calls import CallRecord

DIALECTS = ("webex", "rfc7866")
LABELS = ("1", "2")


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

    def onCallState(self, prm):  # noqa: N802
        snap = snapshot(self)
        if snap is not None:
            self._post(("siprec_state", self, snap))

    def onCallMediaState(self, prm):  # noqa: N802
        self._post(("siprec_media", self, None))

    def onCallSdpCreated(self, prm):  # noqa: N802
        """Runs synchronously while pjsua builds our SDP: add labels, dialect details, pause."""
        s = self.session
        sdp = add_labels(prm.sdp.wholeSdp, list(LABELS))
        if s.dialect == "webex":
            sdp = set_origin_user(sdp, "BroadWorks")
            if s.paused:
                sdp = set_connection_address(sdp, "0.0.0.0")   # BroadWorks-style pause
        prm.sdp.wholeSdp = sdp


@dataclass
class Session:
    """One recording session: one recording of one call."""
    key: str                      # the recorded call's key
    number: int                   # 1, 2, ... recordings of that call
    target: str
    dialect: str
    metadata: Metadata
    call: SiprecCall | None = None
    state: str = "starting"       # starting | active | paused | ended | failed
    paused: bool = False
    started_at: float = 0.0
    first_media_at: float | None = None
    auds: list = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    events_sent: int = 0          # metadata events already sent to the SRS
    retry_queued: bool = False


class SiprecClient:
    """Owns the agent's recording sessions. All methods run on the agent's main thread."""

    def __init__(self, agent, ep: pj.Endpoint, accounts: dict[str, pj.Account]):
        self.agent = agent
        self.ep = ep
        self.accounts = accounts            # dialect -> account with the right Contact param
        self.sessions: dict[tuple[str, int], Session] = {}
        self.calls: list[SiprecCall] = []   # kept for the process' life (docs/decisions.md)

    # ----- building the session ---------------------------------------------------------
    def _metadata(self, rec: "CallRecord", number: int, settings, dialect: str) -> Metadata:
        from .sipuri import parse_name_addr
        local_line = next(l for l in self.agent.lines if l.id == rec.line)
        mailbox = rec.extra.get("mailbox")
        if mailbox:   # a voicemail deposit is the mailbox owner's recording (R-USR-3)
            local_line = replace(local_line, extension=mailbox, display=self.agent.names.get(mailbox, mailbox))
        remote_name, remote_user = parse_name_addr(rec.remote_uri)
        remote_name = remote_name or self.agent.names.get(remote_user, "")
        local_aor = f"sip:{local_line.extension}@127.0.0.1"
        remote_aor = (f"tel:{remote_user}" if remote_user.startswith("+")
                      else f"sip:{remote_user}@127.0.0.1")
        session_id, s1, s2, p1, p2 = (new_id() for _ in range(5))
        # Both recordings of an internal call share the group / extTrackingID (R-REC-4):
        # derived from the recorded call's Call-ID, which both agents see.
        group = str(uuid.uuid5(uuid.NAMESPACE_URL, rec.sip_call_id or rec.key))
        broadworks = None
        if dialect == "webex":
            sp, grp, user = settings.platform
            outgoing = rec.direction == "out"
            broadworks = {
                "extTrackingID": group, "serviceProviderID": sp, "groupID": grp, "userID": user,
                "callID": rec.sip_call_id, "callType": "origCall" if outgoing else "termCall",
                "callingNumber": local_line.extension if outgoing else remote_user,
                "calledNumber": remote_user if outgoing else local_line.extension,
                "recordingType": settings.mode,
            }
        return Metadata(
            dialect=dialect, datamode="complete", group_id=group, session_id=session_id,
            sip_session_id=rec.sip_call_id,
            participants=[Participant(p1, local_line.display, local_aor, [s1], [s2]),
                          Participant(p2, remote_name or remote_user, remote_aor, [s2], [s1])],
            streams=[Stream(s1, LABELS[0], session_id), Stream(s2, LABELS[1], session_id)],
            start_time=now_iso(), stop_time=None, state="active", events=[], broadworks=broadworks)

    def _tx_option(self, session: Session, partial: bool = False) -> pj.SipTxOption:
        md = session.metadata
        if partial:
            # RFC 7865 partial update: the session, its state and the events not yet sent
            md = replace(md, datamode="partial", participants=[], streams=[],
                         events=md.events[session.events_sent:])
        content_type, xml = build(md)
        opt = pj.SipTxOption()
        mtype = pj.SipMediaType()
        mtype.type, mtype.subType = "multipart", "mixed"
        opt.multipartContentType = mtype
        part = pj.SipMultipartPart()
        ptype = pj.SipMediaType()
        ptype.type, ptype.subType = content_type.split("/", 1)
        part.contentType = ptype
        disposition = pj.SipHeader()
        disposition.hName, disposition.hValue = "Content-Disposition", "recording-session"
        part.headers.append(disposition)
        part.body = xml
        opt.multipartParts.append(part)
        for name, value in session.headers.items():
            h = pj.SipHeader()
            h.hName, h.hValue = name, value
            opt.headers.append(h)
        return opt

    def _media_param(self, session: Session, paused: bool, partial: bool = False) -> pj.CallOpParam:
        prm = pj.CallOpParam(True)
        prm.opt.audioCount = 2
        prm.opt.videoCount = 0
        prm.opt.flag |= pj.PJSUA_CALL_SET_MEDIA_DIR
        direction = pj.PJMEDIA_DIR_NONE if (paused and session.dialect == "rfc7866") else pj.PJMEDIA_DIR_ENCODING
        prm.opt.mediaDir = pj.IntVector([direction, direction])
        prm.txOption = self._tx_option(session, partial)
        return prm

    # ----- recorder actions (from the policy) -------------------------------------------
    def start(self, rec: "CallRecord", number: int, settings, target: str, detail: dict) -> None:
        uri, dialect = split_target(target)
        md = self._metadata(rec, number, settings, dialect)
        if detail.get("compliance_played"):
            md.events.append({"announcement": "compliance", "time": now_iso()})
        if detail.get("provisional"):
            md.events.append({"provisional": True, "time": now_iso()})
        session = Session(rec.key, number, uri, dialect, md)
        if dialect == "rfc7866":
            session.headers["Require"] = "siprec"
        else:
            session.headers["X-BroadWorks-Correlation-Info"] = md.group_id
        call = SiprecCall(self.agent.post, self.accounts[dialect], session)
        session.call = call
        self.calls.append(call)
        self.sessions[(rec.key, number)] = session
        session.started_at = time.monotonic()
        try:
            call.makeCall(uri, self._media_param(session, paused=False))
        except pj.Error as exc:
            self._failed(session, f"cannot reach the recorder at {uri}: {exc.info()}")

    def update(self, key: str, number: int, op: str, detail: dict) -> None:
        session = self.sessions.get((key, number))
        if session is None or session.state in ("ended", "failed"):
            return
        md = session.metadata
        if op == "pause":
            session.paused = True
            md.state = "paused"
            md.events.append({"paused": now_iso()})
        elif op == "resume":
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
            return          # the metadata goes out with the next re-INVITE or is in the INVITE
        if session.paused:
            self._unlink(session)
        else:
            self._link(session)
        self._send_update(session)

    def _send_update(self, session: Session) -> None:
        """re-INVITE with the new state and the unsent events. One INVITE transaction at a
        time: while one is under way pjsua says PJ_EINVALIDOP, so try again shortly."""
        if session.state in ("ended", "failed") or session.retry_queued:
            return
        unsent = len(session.metadata.events)
        try:
            session.call.reinvite(self._media_param(session, session.paused, partial=True))
            session.events_sent = unsent
        except pj.Error as exc:
            if exc.status == 70013:   # PJ_EINVALIDOP: a re-INVITE is still pending
                session.retry_queued = True
                self.agent.later(0.1, lambda: self._retry(session))
            else:
                self.agent.emit("log", level="warning", text=f"SIPREC re-INVITE failed: {exc.info()}")

    def _retry(self, session: Session) -> None:
        session.retry_queued = False
        self._send_update(session)

    def _hangup(self, session: Session) -> None:
        session.state = "ended"
        try:
            session.call.hangup(pj.CallOpParam(True))
        except pj.Error:
            pass

    def call_ended(self, key: str) -> None:
        """The recorded call is over: end its recording sessions (the policy said stop too)."""
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
        if st == pj.PJSIP_INV_STATE_CONFIRMED and s.state == "starting":
            s.state = "active"
            self.agent.emit("siprec", call=s.key, recording=s.number, state="active", target=s.target,
                            dialect=s.dialect, setup_ms=round((time.monotonic() - s.started_at) * 1000, 1))
            self.agent.edge.recorder_started(s.key)
            if s.paused or s.metadata.events:
                self.update(s.key, s.number, "metadata", {"sync": True})
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
            if s.state == "starting":
                self._failed(s, f"recorder answered {snap['status_code']} {snap['status_text']}")
            elif s.state in ("active", "paused"):
                self._failed(s, f"the recorder ended the session ({snap['status_code']})")
            else:
                self.agent.emit("siprec", call=s.key, recording=s.number, state="ended", target=s.target)
            s.auds = []

    def on_media(self, call: SiprecCall, _data) -> None:
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
        if rec is None or call is None or session.state in ("ended", "failed"):
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
