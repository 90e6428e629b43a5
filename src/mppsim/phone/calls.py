"""pjsua2 Call and Account subclasses that hand every callback to the agent's main thread.

pjsua2 calls these on its own worker thread (or the media clock thread). They only take a
snapshot and post it: all state changes and all pjsua calls that follow happen in the agent's
main loop, so agent state needs no locks. The few answers pjsua wants synchronously (the Call
object for a transfer or a replacing INVITE) are given here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

if TYPE_CHECKING:
    from .media import CapturePort


def snapshot(call: pj.Call) -> dict[str, Any] | None:
    # A Call made for a transfer has no pjsua id until pjsua dials it; getInfo() on it
    # would hit an assertion and abort the process.
    if call.getId() < 0:
        return None
    try:
        ci = call.getInfo()
    except pj.Error:
        return None
    return {
        "pj_state": ci.state,
        "status_code": ci.lastStatusCode,
        "status_text": ci.lastReason,
        "remote_uri": ci.remoteUri,
        "sip_call_id": ci.callIdString,
        "acc_id": ci.accId,
        "role": ci.role,
        "connect_duration": ci.connectDuration.sec + ci.connectDuration.msec / 1000,
    }


class AgentCall(pj.Call):
    def __init__(self, post, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self._post = post
        self.account = account
        self.record: CallRecord | None = None
        self.related: str | None = None   # key of the call this one replaces or continues
        self.compliance_played = False    # told by the INVITE (a blind transfer, R-CMP-3)

    def onCallState(self, prm):  # noqa: N802 (pjsua2 names)
        snap = snapshot(self)
        if snap is not None:
            self._post(("state", self, snap))

    def onCallMediaState(self, prm):  # noqa: N802
        self._post(("media", self, None))

    def onDtmfDigit(self, prm):  # noqa: N802
        self._post(("dtmf", self, prm.digit))

    def onCallRedirected(self, prm):  # noqa: N802
        # The network sends unanswered calls to voicemail with a 302: follow it.
        self._post(("redirected", self, {"target": prm.targetUri}))
        return pj.PJSIP_REDIRECT_ACCEPT_REPLACE

    def onCallTransferRequest(self, prm):  # noqa: N802
        new_call = AgentCall(self._post, self.account)
        prm.newCall = new_call
        self._post(("transfer_request", self, {"new_call": new_call, "target": prm.dstUri}))

    def onCallTransferStatus(self, prm):  # noqa: N802
        self._post(("transfer_status", self, {"code": prm.statusCode, "final": prm.finalNotify}))

    def onCallReplaced(self, prm):  # noqa: N802
        new_call = AgentCall(self._post, self.account, prm.newCallId)
        prm.newCall = new_call
        self._post(("replaced", self, {"new_call": new_call}))


class LineAccount(pj.Account):
    def __init__(self, post, line_id: str):
        super().__init__()
        self._post = post
        self.line_id = line_id

    def onIncomingCall(self, prm):  # noqa: N802
        call = AgentCall(self._post, self, prm.callId)
        self._post(("incoming", call, {"msg": prm.rdata.wholeMsg}))


@dataclass
class CallRecord:
    """The agent's view of one call on one of its lines."""

    key: str
    call: AgentCall
    line: str
    direction: str                       # "in" | "out"
    created: float                       # time.time()
    remote_uri: str = ""
    sip_call_id: str = ""
    state: str = "dialing"               # dialing | ringing | connected | held | ended
    held_by: str | None = None           # None | local | remote | both
    ringback: bool = False               # outgoing call that got 180/183
    connected_at: float | None = None    # time.time()
    ended_at: float | None = None
    reason: str | None = None            # why it ended
    status_code: int = 0
    local_hangup: bool = False
    want_hold: bool = False              # the user put this call on hold
    transfer: str | None = None          # "blind" | "attended" while one is under way
    related: str | None = None           # call key this one came from (transfer, replace)
    dtmf: str = ""
    capture: "CapturePort | None" = None
    aud: pj.AudioMedia | None = None
    aud_slot: int = -1
    source_linked: Any = None            # the source port currently sent into this call
    heard: dict | None = None            # summary once ended
    capture_file: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state != "ended"
