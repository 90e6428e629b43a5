"""SIPREC recording metadata (RFC 7865) in the two dialects mppsim speaks.

* ``rfc7866``: the standard document, root ``<recording xmlns="urn:ietf:params:xml:ns:recording:1">``
  (RFC 7865 §6-§8 element names: datamode, group, session, participant/nameID, stream/label and
  the three association elements).
* ``webex``: what Webex Calling (BroadWorks) really sends (R-REC-4): the pre-RFC draft shape
  ``<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">`` with ``dataMode``, participants
  carrying ``aor`` and ``<send><id>``, streams with ``label`` and ``mode``, and an
  ``extensiondata`` block holding ``broadWorksRecordingMetadata`` (version 3.0).

Both carry mppsim's own data (recording state and the announcement/pause events of R-REC-2) in the
``urn:mppsim:recording:1`` namespace, so any SRS can ignore it and ours can read it.

``parse`` is deliberately tolerant (issue 4, part 3): either root, the ``:1``-less namespace,
``datamode``/``dataMode``, ``id``/``participant_id``-style attributes, ``<aor>`` or ``nameID aor=``,
missing labels; unknown elements are skipped. What it cannot use raises ``MetadataError``.
"""
from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mppsim.siprec.xmltext import to_text

CONTENT_TYPE = "application/rs-metadata+xml"  # RFC 7865 / RFC 9806; RFC 7866's examples say rs-metadata
NS_RECORDING = "urn:ietf:params:xml:ns:recording:1"
NS_RECORDING_OLD = "urn:ietf:params:xml:ns:recording"  # sent by SRCs built from late drafts
NS_SIPREC = "urn:ietf:params:xml:ns:siprec"  # the draft namespace BroadWorks still uses
NS_MPPSIM = "urn:mppsim:recording:1"
NS_BROADWORKS = "http://schema.broadsoft.com/broadworksCallRecording"
KNOWN_NAMESPACES = (NS_RECORDING, NS_RECORDING_OLD, NS_SIPREC)
DIALECTS = ("rfc7866", "webex")
DATAMODES = ("complete", "partial")
MAX_BYTES = 1 << 20  # an SRS reads this from the network: refuse absurd documents early

# broadworks dict keys that are plain child elements of broadWorksRecordingMetadata, in the order
# BroadWorks writes them; callType sits between callID and recordingType.
_BW_HEAD = ("extTrackingID", "serviceProviderID", "groupID", "userID", "callID")
_BW_TAIL = ("recordingType",)
# dict key -> element name inside <origCall>/<termCall> (names as in BroadWorks captures)
_BW_NUMBERS = {"callingNumber": "callingPartyNumber", "calledNumber": "calledPartyNumber",
               "dialedDigits": "dialedDigits"}
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class MetadataError(ValueError):
    """The body is not recording metadata we can use; ``str(exc)`` is a short reason (for a 4xx)."""


@dataclass
class Participant:
    id: str
    name: str
    aor: str  # sip:1001@127.0.0.1, tel:+14155550100, sip:+14155550100@...: kept as given
    send: list[str] = field(default_factory=list)  # stream ids this participant sends
    recv: list[str] = field(default_factory=list)  # stream ids this participant receives


@dataclass
class Stream:
    id: str
    label: str  # = the a=label of its m-line; "" when the SRC sent none
    session_id: str
    mode: str = "separate"  # separate | mixed (webex dialect); rfc7866 has no such element


@dataclass
class Metadata:
    dialect: str  # rfc7866 | webex
    datamode: str  # complete | partial
    group_id: str
    session_id: str
    sip_session_id: str  # the recorded call's Call-ID
    participants: list[Participant] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    start_time: str | None = None  # ISO 8601 UTC
    stop_time: str | None = None
    state: str = "active"  # active | paused | stopped
    events: list[dict] = field(default_factory=list)  # custom data, e.g. announcements (R-REC-2)
    broadworks: dict | None = None  # extTrackingID, serviceProviderID, ..., callType, recordingType
    # parse side only (the SRS): participants whose participantsessionassoc has a
    # disassociate-time (they left), and what was skipped as not understood (issue 9, class 4)
    left: list[str] = field(default_factory=list, compare=False)
    warnings: list[str] = field(default_factory=list, compare=False)


# ----- ids and times -----------------------------------------------------------------------------

def new_id(dialect: str = "rfc7866") -> str:
    """A fresh element id: base64 of a random UUID (RFC 7865), or ``urn:uuid:...`` for webex,
    which is what BroadWorks puts in its ids."""
    u = uuid.uuid4()
    if dialect == "webex":
        return u.urn
    return base64.b64encode(u.bytes).decode("ascii")


def now_iso() -> str:
    """Now, ISO 8601 UTC with milliseconds (``2025-01-31T12:00:00.123Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _derived_id(md: Metadata, kind: str) -> str:
    # The webex shape needs ids (recording, extensiondata) that Metadata does not model; deriving
    # them from the session id keeps build() deterministic, so updates re-use the same ids.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"mppsim:{kind}:{md.session_id}").urn


# ----- build -------------------------------------------------------------------------------------

def build(md: Metadata, pretty: bool = False) -> tuple[str, str]:
    """Serialise ``md`` in its dialect; returns (content type, XML text).

    Compact by default: pjsip refuses to send a message over 4000 bytes (PJSIP_MAX_PKT_LEN,
    fixed in the PyPI build), and the INVITE carries SDP + metadata."""
    if md.dialect not in DIALECTS:
        raise MetadataError(f"unknown dialect {md.dialect!r}")
    if md.datamode not in DATAMODES:
        raise MetadataError(f"bad datamode {md.datamode!r}")
    root = _build_rfc7866(md) if md.dialect == "rfc7866" else _build_webex(md)
    if pretty:
        ET.indent(root, space="  ")
    xml = to_text(root)
    return CONTENT_TYPE, '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None, /, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _build_rfc7866(md: Metadata) -> ET.Element:
    # Tags are written unqualified under a literal xmlns attribute: the output then has exactly
    # the prefixes we choose (default namespace, mppsim:, BroadWorks default) and no ns0:.
    root = ET.Element("recording", {"xmlns": NS_RECORDING})
    _sub(root, "datamode", md.datamode)
    if md.group_id:
        group = _sub(root, "group", group_id=md.group_id)
        if md.start_time:
            _sub(group, "associate-time", md.start_time)
    session = _sub(root, "session", session_id=md.session_id)
    if md.sip_session_id:
        _sub(session, "sipSessionID", md.sip_session_id)
    if md.group_id:
        _sub(session, "group-ref", md.group_id)
    if md.start_time:
        _sub(session, "start-time", md.start_time)
    if md.stop_time:
        _sub(session, "stop-time", md.stop_time)
    # RFC 7865 lets any element carry extension data from other namespaces; the session is the
    # natural owner of recording state and of the BroadWorks block.
    session.append(_mppsim_block(md, with_sip_session_id=False))
    if md.broadworks is not None:
        session.append(_broadworks_block(md.broadworks))
    for p in md.participants:
        part = _sub(root, "participant", participant_id=p.id)
        name_id = _sub(part, "nameID", aor=p.aor)
        if p.name:
            _sub(name_id, "name", p.name)
    for s in md.streams:
        stream = _sub(root, "stream", stream_id=s.id, session_id=s.session_id)
        if s.label:
            _sub(stream, "label", s.label)
        if s.mode != "separate":  # RFC 7865 has no mode; keep ours so a round trip is lossless
            _sub(stream, "mppsim:mode", s.mode, **{"xmlns:mppsim": NS_MPPSIM})
    assoc = _sub(root, "sessionrecordingassoc", session_id=md.session_id)
    _times(assoc, md)
    for p in md.participants:
        _times(_sub(root, "participantsessionassoc", participant_id=p.id, session_id=md.session_id), md)
    for p in md.participants:
        psa = _sub(root, "participantstreamassoc", participant_id=p.id)
        for sid in p.send:
            _sub(psa, "send", sid)
        for sid in p.recv:
            _sub(psa, "recv", sid)
    return root


def _times(assoc: ET.Element, md: Metadata) -> None:
    if md.start_time:
        _sub(assoc, "associate-time", md.start_time)
    if md.stop_time:
        _sub(assoc, "disassociate-time", md.stop_time)


def _build_webex(md: Metadata) -> ET.Element:
    root = ET.Element("recording_metadata", {"xmlns": NS_SIPREC})
    _sub(root, "dataMode", md.datamode)
    rec_id = _derived_id(md, "recording")
    recording = _sub(root, "recording", id=rec_id)
    _sub(recording, "requestor", "SRC")
    _sub(recording, "type", "selective")
    if md.group_id:
        _sub(root, "group", id=md.group_id, recording=rec_id)
    attrs = {"id": md.session_id, **({"group": md.group_id} if md.group_id else {})}
    session = _sub(root, "session", **attrs)
    if md.start_time:
        _sub(session, "start-time", md.start_time)
    if md.stop_time:
        _sub(session, "stop-time", md.stop_time)
    for p in md.participants:
        part = _sub(root, "participant", id=p.id, session=md.session_id)
        _sub(part, "aor", p.aor)
        if p.name:  # BroadWorks sends no name; the draft shape allows one
            _sub(part, "name", p.name)
        for tag, ids in (("send", p.send), ("recv", p.recv)):
            for sid in ids:  # one <send><id>X</id></send> per stream, as BroadWorks writes it
                _sub(_sub(part, tag), "id", sid)
    for s in md.streams:
        stream = _sub(root, "stream", id=s.id, session=s.session_id)
        if s.label:
            _sub(stream, "label", s.label)
        _sub(stream, "mode", s.mode)
    ext = _sub(root, "extensiondata", id=_derived_id(md, "extensiondata"), parent=md.session_id)
    if md.broadworks is not None:
        ext.append(_broadworks_block(md.broadworks))
    # The draft shape has no sipSessionID: the Call-ID rides in our own namespace instead.
    ext.append(_mppsim_block(md, with_sip_session_id=True))
    return root


def _mppsim_block(md: Metadata, with_sip_session_id: bool) -> ET.Element:
    block = ET.Element("mppsim:status", {"xmlns:mppsim": NS_MPPSIM})
    _sub(block, "mppsim:state", md.state)
    if with_sip_session_id and md.sip_session_id:
        _sub(block, "mppsim:sipSessionID", md.sip_session_id)
    events = _sub(block, "mppsim:events")
    for ev in md.events:
        if not isinstance(ev, dict):
            raise MetadataError(f"an event must be a dict, not {type(ev).__name__}")
        el = _sub(events, "mppsim:event")
        for key, value in ev.items():
            _encode_value(el, str(key), value)
    return block


def _encode_value(parent: ET.Element, key: str, value: Any) -> None:
    """One JSON-like value as ``<mppsim:KEY type=...>``; str is the untyped default so events read
    naturally (``<mppsim:announcement>start</mppsim:announcement>``)."""
    if not _NCNAME.match(key) or key.lower().startswith("xml"):
        raise MetadataError(f"event key {key!r} is not usable as an XML element name")
    tag = f"mppsim:{key}"
    if isinstance(value, str):
        _sub(parent, tag, value)
    elif isinstance(value, bool):  # before int: bool is an int
        _sub(parent, tag, "true" if value else "false", type="bool")
    elif isinstance(value, int):
        _sub(parent, tag, str(value), type="int")
    elif isinstance(value, float):
        _sub(parent, tag, repr(value), type="float")
    elif value is None:
        _sub(parent, tag, type="null")
    elif isinstance(value, (list, tuple)):
        el = _sub(parent, tag, type="list")
        for item in value:
            _encode_value(el, "item", item)
    elif isinstance(value, dict):
        el = _sub(parent, tag, type="map")
        for k, v in value.items():
            _encode_value(el, str(k), v)
    else:
        raise MetadataError(f"event value of type {type(value).__name__} is not supported")


def _broadworks_block(bw: dict) -> ET.Element:
    block = ET.Element("broadWorksRecordingMetadata", {"xmlns": NS_BROADWORKS, "version": "3.0"})
    for key in _BW_HEAD:
        if bw.get(key) is not None:
            _sub(block, key, str(bw[key]))
    call_type = bw.get("callType")
    numbers = {k: bw[k] for k in _BW_NUMBERS if bw.get(k) is not None}
    if call_type:
        if not _NCNAME.match(call_type):
            raise MetadataError(f"bad callType {call_type!r}")
        # Numbers are child elements (callingPartyNumber/calledPartyNumber), as BroadWorks sends.
        ct = _sub(_sub(block, "callType"), call_type)
        for key, value in numbers.items():
            _sub(ct, _BW_NUMBERS[key], str(value))
    elif numbers:
        raise MetadataError("callingNumber/calledNumber need a callType (origCall or termCall)")
    for key in _BW_TAIL:
        if bw.get(key) is not None:
            _sub(block, key, str(bw[key]))
    return block


# ----- parse -------------------------------------------------------------------------------------

def parse(body: str | bytes) -> Metadata:
    """Read recording metadata of either dialect (and the quirky variants real SRCs send)."""
    root = _parse_xml(body)
    ns, local = _split_tag(root.tag)
    if local not in ("recording", "recording_metadata"):
        raise MetadataError(f"root element is <{local}>, not <recording>")
    if ns not in KNOWN_NAMESPACES:
        raise MetadataError(f"unknown metadata namespace {ns!r}")
    datamode = (_text(_first(root, "datamode")) or "complete").lower()
    if datamode not in DATAMODES:
        raise MetadataError(f"bad datamode {datamode!r}")
    session = _first(root, "session")
    if session is None and datamode == "complete":
        raise MetadataError("no <session>")
    session_id = _attr(session, "session_id", "id")
    warnings: list[str] = []
    # Tolerate what can be understood (issue 9, class 4): a participant without id gets one, a
    # stream without id (Avaya's empty placeholder) is skipped; the audio is recorded anyway.
    participants = []
    for i, el in enumerate(_children(root, "participant")):
        if not _attr(el, "participant_id", "id"):
            warnings.append(f"participant {i + 1} without id")
        participants.append(_parse_participant(el, root, f"participant-{i + 1}"))
    if not participants and datamode == "complete":
        raise MetadataError("no participants")
    streams = []
    for i, el in enumerate(_children(root, "stream")):
        if not _attr(el, "stream_id", "id"):
            warnings.append(f"stream {i + 1} without id skipped")
            continue
        streams.append(_parse_stream(el, session_id))
    left = [_attr(a, "participant_id", "participant") for a in _children(root, "participantsessionassoc")
            if _first(a, "disassociate-time") is not None]
    status = _find_mppsim(root, "status")
    stop_time = _text(_first(session, "stop-time")) or _text(_first(session, "end-time")) or None
    return Metadata(
        dialect="webex" if local == "recording_metadata" else "rfc7866",
        datamode=datamode,
        group_id=_group_id(root, session),
        session_id=session_id,
        sip_session_id=_text(_first(session, "sipSessionID")) or _text(_mppsim_child(status, "sipSessionID")),
        participants=participants,
        streams=streams,
        start_time=_text(_first(session, "start-time")) or None,
        stop_time=stop_time,
        state=_text(_mppsim_child(status, "state")) or ("stopped" if stop_time else "active"),
        events=_parse_events(status),
        broadworks=_parse_broadworks(root),
        left=[pid for pid in left if pid],
        warnings=warnings,
    )


def _parse_xml(body: str | bytes) -> ET.Element:
    if isinstance(body, bytes):
        if len(body) > MAX_BYTES:
            raise MetadataError("metadata larger than 1 MiB")
        # expat refuses whitespace before the XML declaration, which some SRCs send
        body = body.removeprefix(b"\xef\xbb\xbf").lstrip()
        has_dtd = b"<!DOCTYPE" in body or b"<!ENTITY" in body
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):          # UTF-16 with BOM: look inside too
            decoded = body.decode("utf-16", "replace")
            has_dtd = has_dtd or "<!DOCTYPE" in decoded or "<!ENTITY" in decoded
    else:
        if len(body) > MAX_BYTES:
            raise MetadataError("metadata larger than 1 MiB")
        body = body.lstrip("\ufeff \t\r\n")
        has_dtd = "<!DOCTYPE" in body or "<!ENTITY" in body
    if not body:
        raise MetadataError("empty metadata")
    if has_dtd:  # no legitimate use here, and entity expansion is an attack surface
        raise MetadataError("DTDs are not accepted in metadata")
    if isinstance(body, str) and body.startswith("<?xml"):
        # ET refuses a str with an encoding declaration: the text is decoded already, drop it
        body = re.sub(r"""^(<\?xml[^>]*?)\s+encoding\s*=\s*["'][^"']*["']""", r"\1", body, count=1)
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise MetadataError(f"metadata is not XML ({exc})") from None
    except (ValueError, LookupError, RecursionError) as exc:   # unknown encoding, odd input
        raise MetadataError(f"metadata is not usable XML ({type(exc).__name__}: {exc})") from None


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _is_std(el: ET.Element, name: str) -> bool:
    # Standard elements: any of the SIPREC namespaces (mixed documents exist), or none at all;
    # the local name is compared case-insensitively to take datamode/dataMode alike.
    ns, local = _split_tag(el.tag)
    return (ns in KNOWN_NAMESPACES or ns == "") and local.lower() == name.lower()


def _children(el: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if el is None else [c for c in el if _is_std(c, name)]


def _first(el: ET.Element | None, name: str) -> ET.Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _attr(el: ET.Element | None, *names: str) -> str:
    if el is None:
        return ""
    for name in names:
        if name in el.attrib:
            return el.attrib[name].strip()
    return ""


def _group_id(root: ET.Element, session: ET.Element | None) -> str:
    group = _first(root, "group")
    if group is not None:
        return _attr(group, "group_id", "id")
    return _text(_first(session, "group-ref")) or _attr(session, "group")


def _ids(el: ET.Element) -> list[str]:
    """Stream ids of a <send>/<recv>: the text (RFC 7865, early drafts) or <id> children (BroadWorks)."""
    kids = _children(el, "id")
    if kids:
        return [_text(k) for k in kids if _text(k)]
    return [_text(el)] if _text(el) else []


def _parse_participant(el: ET.Element, root: ET.Element, fallback_id: str = "") -> Participant:
    pid = _attr(el, "participant_id", "id") or fallback_id
    if not pid:
        raise MetadataError("participant without id")
    name_id = _first(el, "nameID")
    if name_id is not None:
        aor, name = _attr(name_id, "aor"), _text(_first(name_id, "name"))
    else:
        aor, name = _text(_first(el, "aor")), _text(_first(el, "name"))
    send: list[str] = []
    recv: list[str] = []
    sources = [el] + [a for a in _children(root, "participantstreamassoc")
                      if _attr(a, "participant_id", "participant") == pid]
    for src in sources:
        for tag, into in (("send", send), ("recv", recv)):
            for child in _children(src, tag):
                into.extend(i for i in _ids(child) if i not in into)
    return Participant(id=pid, name=name, aor=aor, send=send, recv=recv)


def _parse_stream(el: ET.Element, session_id: str) -> Stream:
    sid = _attr(el, "stream_id", "id")
    if not sid:
        raise MetadataError("stream without id")
    has_session = any(a in el.attrib for a in ("session_id", "session"))
    mode = _text(_first(el, "mode")) or _text(_mppsim_child(el, "mode")) or "separate"
    return Stream(id=sid, label=_text(_first(el, "label")),
                  session_id=_attr(el, "session_id", "session") if has_session else session_id,
                  mode=mode)


def _find_mppsim(root: ET.Element, local: str) -> ET.Element | None:
    return next(iter(root.iter(f"{{{NS_MPPSIM}}}{local}")), None)


def _mppsim_child(el: ET.Element | None, local: str) -> ET.Element | None:
    return None if el is None else el.find(f"{{{NS_MPPSIM}}}{local}")


def _parse_events(status: ET.Element | None) -> list[dict]:
    events = _mppsim_child(status, "events")
    if events is None:
        return []
    return [_decode_map(ev) for ev in events if ev.tag == f"{{{NS_MPPSIM}}}event"]


def _decode_map(el: ET.Element) -> dict:
    return {_split_tag(c.tag)[1]: _decode_value(c) for c in el}


def _decode_value(el: ET.Element) -> Any:
    kind = el.get("type", "str")
    text = el.text or ""
    if kind == "list":
        return [_decode_value(c) for c in el]
    if kind == "map":
        return _decode_map(el)
    if kind == "null":
        return None
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise MetadataError(f"bad {kind} value {text!r} in mppsim events") from None
    if kind == "bool":
        return text.strip() == "true"
    return text  # str: whitespace kept, it is ours and round-trips exactly


def _parse_broadworks(root: ET.Element) -> dict | None:
    block = next((el for el in root.iter() if _split_tag(el.tag)[1] == "broadWorksRecordingMetadata"), None)
    if block is None:
        return None
    kids = {_split_tag(c.tag)[1]: c for c in block}
    bw: dict[str, str] = {}
    for key in _BW_HEAD + _BW_TAIL:
        if key in kids:
            bw[key] = _text(kids[key])
    call_type = kids.get("callType")
    detail = next(iter(call_type), None) if call_type is not None else None
    if detail is not None:
        bw["callType"] = _split_tag(detail.tag)[1]
        numbers = {_split_tag(c.tag)[1]: _text(c) for c in detail}
        for key, tag in _BW_NUMBERS.items():
            # children as BroadWorks sends them; attributes or our dict names also accepted
            value = numbers.get(tag) or detail.get(tag) or numbers.get(key) or detail.get(key)
            if value is not None:
                bw[key] = value
    return bw
