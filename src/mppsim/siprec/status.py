"""mppsim's own recording status, outside the metadata: the ``X-Mppsim-Status`` header.

A real Webex Calling SRC puts nothing of mppsim's in its metadata, so the `webex` dialect carries
what mppsim's recorder needs (the recorded call's Call-ID, the recording state, the events of
R-REC-2: announcements, pause/resume, On Demand kept/provisional) in one extension header that any
other SRS ignores (RFC 3261 §8.2.2: unknown headers are ignored). The `rfc7866` dialect keeps them
in the metadata's ``mppsim:status`` element and sends the header too.

Value: compact JSON on one line, ``{"sipSessionID": ..., "state": ..., "events": [...]}``;
``events`` are the events *not sent before* in this recording session (the recorder appends
them); ``sipSessionID`` (the recorded call's Call-ID) is in the initial INVITE only; ``names``
(display names by AoR) when the participants are new or changed.
"""
from __future__ import annotations

import json

HEADER = "X-Mppsim-Status"


def encode(sip_session_id: str | None, state: str, new_events: list[dict],
           names: dict[str, str] | None = None) -> str:
    """``sip_session_id`` None = not repeated (the SRS has it from the INVITE); ``names`` = the
    participants' display names by AoR (Webex Calling's metadata has none), when they change."""
    status: dict[str, object] = {"sipSessionID": sip_session_id} if sip_session_id is not None else {}
    status.update(state=state, events=new_events)
    if names:
        status["names"] = names
    value = json.dumps(status, separators=(",", ":"), ensure_ascii=True)
    if "\r" in value or "\n" in value:   # json.dumps escapes them; a header must stay one line
        raise ValueError("status header would span lines")
    return value


def combine(unsent: str | None, newer: str | None) -> str | None:
    """One header value for a status not sent yet (``unsent``) followed by a ``newer`` one:
    the events of both in order, the newer state, the first ``sipSessionID``, the names merged.
    Two updates handed over before the first message goes out must not lose the first's events
    (plain On Demand's ``kept`` was lost that way and the recording discarded)."""
    if not unsent:
        return newer
    if not newer:
        return unsent
    try:
        a, b = json.loads(unsent), json.loads(newer)
    except ValueError:
        return newer
    if not isinstance(a, dict) or not isinstance(b, dict):
        return newer
    out = dict(a)
    out.update({k: v for k, v in b.items() if k not in ("sipSessionID", "events", "names")})
    out["events"] = list(a.get("events") or []) + list(b.get("events") or [])
    if "sipSessionID" in b and "sipSessionID" not in a:
        out["sipSessionID"] = b["sipSessionID"]
    names = {**(a.get("names") or {}), **(b.get("names") or {})}
    if names:
        out["names"] = names
    return json.dumps(out, separators=(",", ":"), ensure_ascii=True)


def decode(headers: dict[str, list[str]]) -> dict | None:
    """The status from parsed headers (sip.message's Message.by_name()), None if absent or bad."""
    values = headers.get(HEADER.lower()) or []
    if not values:
        return None
    try:
        status = json.loads(values[-1])
    except ValueError:
        return None
    if not isinstance(status, dict) or not isinstance(status.get("events", []), list):
        return None
    return status


def merge(md, headers: dict[str, list[str]], previous=None):
    """The recorder's view: ``md`` (a parsed mppsim.siprec.metadata.Metadata) completed with the
    header's status. A document without mppsim's own element (the webex dialect) gets the Call-ID
    it had before, the header's state and the events before plus the header's new ones, so a
    complete document reads like one that carried the events itself. No header: ``md`` as is."""
    status = decode(headers)
    if status is None:
        return md
    before = list(previous.events) if previous is not None else []
    md.sip_session_id = (md.sip_session_id or status.get("sipSessionID")
                         or (previous.sip_session_id if previous is not None else "") or "")
    if isinstance(status.get("state"), str):
        md.state = status["state"]
    events = [e for e in status.get("events", []) if isinstance(e, dict)]
    md.events = (md.events if md.datamode == "partial" else before) + events
    raw_names = status.get("names")
    names = raw_names if isinstance(raw_names, dict) else {}
    known = {p.aor: p.name for p in (previous.participants if previous is not None else []) if p.name}
    for p in md.participants:
        if not p.name:
            p.name = str(names.get(p.aor) or known.get(p.aor) or "")
    return md
