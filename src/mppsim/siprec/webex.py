"""SRC side: the recording metadata and SDP of the `webex` dialect as Webex Calling sends them.

Shaped after SIPREC INVITEs captured from BroadWorks application servers (published in recording
vendors' SIPp scenarios; issue 11): root ``recording_metadata`` in the draft namespace, every id
``urn:uuid:``, a ``group`` naming the recorded user as ``initiator``, participants with ``aor``
and ``send`` only, streams with ``label`` and ``mode``, and one ``extensiondata`` holding
``broadWorksRecordingMetadata`` version 3.0. Nothing of mppsim's own goes in here: its status
travels in the ``X-Mppsim-Status`` header (siprec/status.py), which an SRS ignores.

Compact XML on one line after the declaration, as BroadWorks writes it. Pure stdlib; the reader
(siprec/metadata.parse) reads it back.
"""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

from mppsim.rules import broadworks as BW
from mppsim.rules.effective import ALWAYS, ALWAYS_PAUSE, ON_DEMAND, ON_DEMAND_USER_START
from mppsim.siprec.xmltext import to_text

NS_SIPREC = "urn:ietf:params:xml:ns:siprec"
NS_BROADWORKS = "http://schema.broadsoft.com/broadworksCallRecording"

# recordingType per recording mode. Captures only show "on" (Always); the values for the other
# modes are not public, so mppsim chooses (docs/protocol.md): "on" for both Always modes (the
# recording starts with the call either way), "on-demand" for On Demand, "on-demand-user-start"
# for On Demand with User Initiated Start.
RECORDING_TYPES = {ALWAYS: "on", ALWAYS_PAUSE: "on", ON_DEMAND: "on-demand",
                   ON_DEMAND_USER_START: "on-demand-user-start"}


def urn() -> str:
    return uuid.uuid4().urn


def now_bw() -> str:
    """Times as BroadWorks writes them: seconds, UTC."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WebexParty:
    id: str          # urn:uuid
    aor: str
    stream: str      # the stream id this party sends (label 1 = the recorded user, 2 = the others)


@dataclass
class WebexRecording:
    """Everything a webex-dialect metadata document says; ids fixed for the session's life."""
    initiator: str                      # the recorded user's AoR
    parties: list[WebexParty]           # the recorded user first
    streams: list[tuple[str, str]]      # (stream id, label)
    broadworks: dict                    # extTrackingID ... recordingType (see BW_ORDER)
    start_time: str = field(default_factory=now_bw)
    recording_id: str = field(default_factory=urn)
    group_id: str = field(default_factory=urn)
    session_id: str = field(default_factory=urn)
    extension_id: str = field(default_factory=urn)

    def set_others(self, aors: list[str]) -> None:
        """The parties other than the recorded user changed (transfer, conference): each of them
        sends into stream 2. A party already present keeps its id."""
        known = {p.aor: p for p in self.parties[1:]}
        other_stream = self.streams[1][0]
        self.parties[1:] = [known.get(aor) or WebexParty(urn(), aor, other_stream) for aor in aors]


BW_HEAD = ("extTrackingID", "serviceProviderID", "groupID", "userID", "callID")


def new_recording(*, user_aor: str, other_aors: list[str], call_id: str, platform: tuple[str, str, str],
                  outgoing: bool, calling: str, called: str, mode: str,
                  dialed: str | None = None) -> WebexRecording:
    """A recording of the call ``call_id`` (the recorded call's SIP Call-ID) for the user whose
    platform info (R-USR-7: service provider, group, userID) is ``platform``."""
    s1, s2 = urn(), urn()
    sp, grp, user = platform
    bw = {"extTrackingID": BW.ext_tracking_id(call_id), "serviceProviderID": sp, "groupID": grp,
          "userID": user, "callID": BW.call_half(call_id + ("/orig" if outgoing else "/term")),
          "callType": "origCall" if outgoing else "termCall",
          "callingPartyNumber": calling, "calledPartyNumber": called,
          "recordingType": RECORDING_TYPES.get(mode, "on")}
    if dialed:
        bw["dialedDigits"] = dialed
    rec = WebexRecording(initiator=user_aor, parties=[WebexParty(urn(), user_aor, s1)],
                         streams=[(s1, "1"), (s2, "2")], broadworks=bw)
    rec.set_others(other_aors)
    return rec


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def build(rec: WebexRecording) -> str:
    """The XML document (always ``complete``: BroadWorks sends the whole document each time)."""
    root = ET.Element("recording_metadata", {"xmlns": NS_SIPREC})
    _sub(root, "dataMode", "complete")
    recording = _sub(root, "recording", id=rec.recording_id)
    _sub(recording, "requestor", "SRC")
    _sub(recording, "type", "selective")
    group = _sub(root, "group", id=rec.group_id, recording=rec.recording_id)
    _sub(group, "initiator", rec.initiator)
    session = _sub(root, "session", id=rec.session_id, group=rec.group_id)
    _sub(session, "start-time", rec.start_time)
    for p in rec.parties:
        part = _sub(root, "participant", id=p.id, session=rec.session_id)
        _sub(part, "aor", p.aor)
        _sub(_sub(part, "send"), "id", p.stream)
    for sid, label in rec.streams:
        stream = _sub(root, "stream", id=sid, session=rec.session_id)
        _sub(stream, "label", label)
        _sub(stream, "mode", "separate")
    ext = _sub(root, "extensiondata", id=rec.extension_id, parent=rec.session_id)
    bw = rec.broadworks
    block = _sub(ext, "broadWorksRecordingMetadata", xmlns=NS_BROADWORKS, version="3.0")
    for key in BW_HEAD:
        _sub(block, key, bw[key])
    call = _sub(_sub(block, "callType"), bw["callType"])
    for key in ("callingPartyNumber", "calledPartyNumber", "dialedDigits"):
        if bw.get(key):
            _sub(call, key, bw[key])
    _sub(block, "recordingType", bw["recordingType"])
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + to_text(root) + "\n"


# ----- party URIs ------------------------------------------------------------------------------

def party_uri(number: str, host: str, user_phone: bool) -> str:
    """``sip:7711@host;user=phone`` (an extension) or ``sip:+E164@host`` (E.164), as the
    callingPartyNumber / calledPartyNumber elements of BroadWorks captures."""
    return f"sip:{number}@{host}" + (";user=phone" if user_phone else "")
