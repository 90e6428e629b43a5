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
        self.offer: str | None = None     # a feature rings this line for a caller (phone/contact_centre.py)

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
class Consult:
    """A call's part in a consult transfer or conference (phone/transfer.py, phone/conference.py)."""

    call: str | None = None              # on the held call: its consult call's key
    held: str | None = None              # on a consult call: the held call's key
    kind: str = "transfer"               # on a consult call: what the faces offer (transfer | conference)
    target: str | None = None            # on a consult call: the URI it dialled
    then_refer: str | None = None        # on a consult call being cancelled: blind-transfer this held call
    then_resume: str | None = None       # ... or resume this held call


@dataclass
class MailboxCall:
    """A call the voicemail agent took: a deposit or its owner's retrieval (phone/voicemail.py)."""

    greeting: bool = False               # the greeting (or the menu) starts once the media is up
    retrieval: str | None = None         # the mailbox owner listening to their messages
    menu: Any = None                     # phone/voicemail_menu.MenuSession of a retrieval
    menu_gen: int = 0                    # a new digit interrupts what the menu was playing
    player: Any = None                   # what plays now; dropping it stops it
    message_from: int | None = None      # capture sample index after the beep: the message


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
    ended_by: str | None = None          # local | remote, once ended
    ended_by_network: str | None = None  # why the network ended it (failureBehavior)
    timed_out: bool = False              # nobody answered within the ring timeout
    far_end_lost: bool = False           # the app reported the far end's agent dead
    to_voicemail: bool = False           # the network sent the caller to voicemail (302)
    transport: str = "udp"               # the dialog's transport (its INVITE's): our Contact says it
    redirected_to: str | None = None     # a 302 this call followed
    early_media: bool = False            # answered 183 to play an announcement before answer
    mailbox: str | None = None           # a voicemail deposit's mailbox (the voicemail agent)
    last_reported: tuple | None = None   # what the last `call` event said
    media_changed_at: float = 0.0        # time.monotonic() of the last re-created stream
    last_digit: tuple[str, float] = ("", 0.0)   # DTMF digit and when (echo of a re-INVITE)
    waiting: bool = False                # rang as a waiting call (phone/call_waiting.py)
    conference: str | None = None        # the conference it belongs to (its first call's key)
    consult: Consult = field(default_factory=Consult)
    voicemail: MailboxCall | None = None
    # issue 25 (phone/contact_centre.py): a call that came through a hunt group, call queue or
    # auto attendant names it (the number dialled); an offer is the feature ringing this line
    # for a caller it holds, shown as that caller, never recorded
    via: str | None = None
    offer: str | None = None
    presented: str | None = None         # an offer's caller number (the far end is the feature)

    @property
    def active(self) -> bool:
        return self.state != "ended"
