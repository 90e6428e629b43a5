"""What a simulated device shows, in plain Python (no Qt): the one device view model (issue 20).

Which call a line shows, its state text, the remote party's name and number, the MPP's softkeys
(consult, conference, call waiting, transfer and recording branches included), the Webex App's
call window (labels, buttons, More-menu items) and the recording indicators are worked out here
and nowhere else. The Qt faces (ui/mpp_phone.py, ui/webex_app.py) draw this model and the control
API (GET /mppsim/v1/devices/{id}) serves it, so the GUI and the API cannot disagree: they did when
each face derived its own screen (the API's softkeys had no consult, conference or call-waiting
branch).

Face-local input stays with the face and is passed in: the MPP's number being typed and whether it
asks for a transfer / conference target (`Entry`); the clock, the call timer's ticking, softkey
paging, the selected line and the Webex App's open panels are drawn by the faces alone.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mppsim.rules.policy import SOFTKEY_ORDER

STATE_TEXT = {"idle": "Idle", "dialing": "Calling...", "ringing": "Ringing", "connected": "Connected",
              "held": "On hold", "ended": "Call ended", "down": "Line down"}

# Call-handling softkeys an MPP shows besides the recording ones, and what pressing them does
CALL_SOFTKEYS = {"Answer": "answer", "Decline": "decline", "End call": "hangup", "Hold": "hold",
                 "Resume": "resume"}

WEBEX_LIVE = ("dialing", "connected", "held")     # the Webex App's call window (ringing: the toast)
ENDED_NOTE_SECONDS = 10.0                         # the Webex App's "Call with X ended" note


@dataclass(frozen=True)
class Entry:
    """What the MPP's user is typing, which the line's state does not know: `pending` is
    "transfer" / "conference" while the phone asks for the target, `composing` after New call."""
    pending: str = ""
    dial_string: str = ""
    composing: bool = False


NO_ENTRY = Entry()


@dataclass
class LineView:
    """One line as every face of it shows it now (see line_view)."""
    line: str
    line_name: str
    state: str                       # idle dialing ringing connected held ended down
    call: dict | None                # the call shown: the one the user is in
    waiting: dict | None = None      # a call ringing as call waiting beside it
    held_other: dict | None = None   # another call of the line held while this one is up
    consult_held: dict | None = None  # while consulting: the call on hold being transferred
    members: list[dict] = field(default_factory=list)   # the conference's calls
    name: str = ""                   # the remote party as the phone shows it
    number: str = ""
    via: str = ""                    # the hunt group, call queue or auto attendant it came through
    waiting_remote: tuple[str, str] = ("", "")
    held_other_name: str = ""
    consult_held_name: str = ""
    member_names: list[str] = field(default_factory=list)
    muted: bool = False
    recording: dict | None = None    # the shown call's recording view (Simulator.recording_view)
    rec_softkeys: list[str] = field(default_factory=list)   # recording softkeys for the shown call
    menu_items: list[str] = field(default_factory=list)     # the Webex App's recording items
    mpp_indicator: str = "none"
    webex_indicator: str = "none"
    indicator: str = "none"          # the line's first device's (the API's top-level indicator)

    @property
    def live(self) -> bool:
        return self.state not in ("idle", "ended", "down")

    @property
    def consulting(self) -> bool:
        return is_consulting(self.call)

    @property
    def conference(self) -> bool:
        return in_conference(self.call)


def is_consulting(call: dict | None) -> bool:
    """The call is the consult call of a transfer or conference under way (phone/transfer.py)."""
    return bool(call and call.get("consult_for") and call.get("state") != "ended")


def in_conference(call: dict | None) -> bool:
    """The call is a member of a conference hosted by this user's edge (phone/conference.py)."""
    return bool(call and call.get("conference") and call.get("state") != "ended")


def remote_of(sim, call: dict | None) -> tuple[str, str]:
    """(name, number) of the other party of a call, as the phone shows them: the name the
    network gave, else the simulated party's name for that number, else the number."""
    if not call:
        return "", ""
    remote = call.get("remote") or {}
    number = remote.get("user", "") or ""
    known = sim.party_by_number(number) if number else None
    return remote.get("name") or (known.name if known else number), number


def line_state(sim, who: str) -> str:
    """The line's call state (see Simulator.call_state), or 'down' while its agent is not running."""
    p = sim.party(who)
    if sim.agent_status.get(p.agent, "up") != "up":
        return "down"
    return sim.call_state(who)


def line_view(sim, who: str) -> LineView:
    """The line `who` as its faces show it now, from the Simulator's line and call state."""
    state = line_state(sim, who)
    call = sim.current_call(who) if state != "down" else None
    v = LineView(line=who, line_name=sim.party(who).name, state=state, call=call)
    if state == "down":
        return v
    live = sim.live_calls(who)
    # two calls on the line (call waiting, or one held while the other is up): the one the user
    # is in is shown and the other gets a row; a consult or a conference shows its own calls
    if len(live) >= 2 and not is_consulting(call) and not in_conference(call):
        v.waiting = sim.waiting_call(who)
        if v.waiting is None:
            connected = [c for c in live if c["state"] == "connected"]
            held = [c for c in live if c["state"] == "held"]
            v.held_other = held[0] if connected and held else None
        aside = {c["call"] for c in (v.waiting, v.held_other) if c is not None}
        if aside and (call is None or call["call"] in aside):
            v.call = call = next((c for c in reversed(live) if c["call"] not in aside), call)
    if is_consulting(call):
        v.consult_held = sim.calls.get(call["consult_for"]) or {}
        v.consult_held_name = remote_of(sim, v.consult_held)[0]
    if in_conference(call):
        v.members = [c for c in live if c.get("conference")]
        v.member_names = [remote_of(sim, c)[0] for c in v.members]
    v.name, v.number = remote_of(sim, call)
    v.via = ((call or {}).get("via") or {}).get("name") or ""
    v.waiting_remote = remote_of(sim, v.waiting)
    v.held_other_name = remote_of(sim, v.held_other)[0]
    v.muted = sim.muted(who)
    key = call["call"] if call else None
    if call is not None:
        v.recording = sim.recording_view(who, key)
    if v.live:
        offered = sim.softkeys(who, call=key)
        v.rec_softkeys = [k for k in SOFTKEY_ORDER if k in offered]
        v.mpp_indicator = sim.indicator(who, "mpp", call=key)
        v.indicator = sim.indicator(who, call=key)
    if state in WEBEX_LIVE:
        v.menu_items = sim.menu_items(who, call=key)
        v.webex_indicator = sim.indicator(who, "webex-app", call=key)
    return v


def elapsed(seconds: float) -> str:
    """A call timer: 04:07, or 1:02:03 from an hour on."""
    secs = max(0, int(seconds))
    return (f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}" if secs >= 3600
            else f"{secs // 60:02d}:{secs % 60:02d}")


# ----- the MPP ---------------------------------------------------------------------------------
def mpp_softkeys(v: LineView, entry: Entry = NO_ENTRY) -> list[str]:
    """Every softkey of the MPP for the line (before paging), in the order the phone shows them."""
    state, call = v.state, v.call
    if state == "down":
        return ["Restart"]
    if entry.pending == "transfer":
        return ["Transfer", "Delete", "Cancel"]
    if entry.pending == "conference":
        return ["Conference", "Delete", "Cancel"]
    if v.consulting:   # Consulting: Transfer (or Conference) again completes, Cancel returns
        first = "Conference" if call.get("consult_kind") == "conference" else "Transfer"
        return [first, "Cancel", "End call"]
    if v.conference:   # Conference: the recording keys of the conference, End call
        return v.rec_softkeys + ["End call"]
    if v.waiting is not None:   # Call waiting: answering holds the call we are in
        return ["Answer", "Decline"] + (["End call", "Hold"] if state == "connected" else ["Resume", "End call"])
    if state == "ringing" and call and call.get("direction") == "in":
        return ["Answer", "Decline"]
    if state in ("dialing", "ringing"):
        return ["End call"]
    if state == "connected":
        return v.rec_softkeys + ["End call", "Hold", "Transfer", "Conference"]
    if state == "held":
        local = call is not None and call.get("held_by") in ("local", "both")
        return (["Resume"] if local else []) + ["End call", "New call", "Transfer"]
    if entry.dial_string or entry.composing:
        return ["Call", "Delete", "Cancel"]
    return ["Redial", "New call"]


@dataclass
class MppScreen:
    """The MPP's call area: state line, title and subtitle. `clock` means the title and
    subtitle are the time and date (idle), which the face draws."""
    state: str
    title: str = ""
    subtitle: str = ""
    clock: bool = False
    timer_since: float | None = None    # connected_at of the shown call while a timer runs


def mpp_screen(v: LineView, entry: Entry = NO_ENTRY) -> MppScreen:
    state, call = v.state, v.call
    typing = bool(entry.dial_string or entry.pending or entry.composing)
    if state == "down":
        return MppScreen("Line down", "No service", "agent not running")
    if state in ("idle", "ended") and typing:
        return MppScreen("Transfer to" if entry.pending == "transfer" else "New call",
                         entry.dial_string or "Enter number")
    if state == "idle" or call is None:
        return MppScreen("Idle", clock=True)
    name, number = v.name, v.number
    scr = MppScreen("")
    if v.conference:
        scr.state = scr.title = "Conference"
        scr.subtitle = ", ".join(v.member_names)
    elif v.consulting:
        scr.state = "Consult: ringing" if call["state"] in ("dialing", "ringing") else "Consulting"
    elif state == "held":
        scr.state = "On hold" if call.get("held_by") in ("local", "both") else "Held by other party"
    else:
        scr.state = STATE_TEXT.get(state, state.capitalize())
    if state == "ended" and call.get("reason") not in (None, "", "hangup"):
        scr.state = f"Call ended ({call['reason']})"
    if not v.conference:
        scr.title = name
        scr.subtitle = number if number != name else ""
        if v.via:     # as an MPP shows a hunt group / queue call: "<number> via <feature>"
            scr.subtitle = f"{scr.subtitle} via {v.via}".strip()
    if entry.pending or (entry.dial_string and state in ("connected", "held")):
        what = {"transfer": "Transfer to", "conference": "Add"}.get(entry.pending, "Dial")
        scr.subtitle = f"{what}: {entry.dial_string}"
    elif v.consulting:
        scr.subtitle = f"{v.consult_held_name or number} on hold"
    elif v.waiting is not None:
        wname, wnumber = v.waiting_remote
        scr.state = "Call waiting"
        scr.subtitle = f"Waiting: {wname}" + (f" ({wnumber})" if wnumber != wname else "")
    elif v.held_other is not None:
        scr.subtitle = f"{v.held_other_name} on hold"
    if state in ("connected", "held") and call.get("connected_at"):
        scr.timer_since = call["connected_at"]
    return scr


# ----- the Webex App ---------------------------------------------------------------------------
@dataclass
class Button:
    name: str          # the objectName suffix: webex_<user>_<name>
    label: str
    enabled: bool = True


@dataclass
class WebexWindow:
    """The Webex App's window for the line: which page, its labels and its buttons."""
    page: str                              # idle | toast | call
    caller: str = ""                       # call page: the remote party (or "Conference")
    number: str = ""
    avatar: str = ""
    state: str = ""                        # the label under the timer
    timer: str = ""                        # "Calling…" / "Ringing…" while dialing; else "" and
    timer_since: float | None = None       # the face ticks a timer from timer_since
    toast_title: str = ""
    waiting: str = ""                      # "<name> (<number>) is calling" while a call waits
    idle_note: str = ""
    buttons: list[Button] = field(default_factory=list)   # the controls shown, in reading order
    menu_items: list[str] = field(default_factory=list)   # recording items under More (R-UX-4)
    indicator: str = "none"                # R-UX-1

    def button(self, name: str) -> Button | None:
        return next((b for b in self.buttons if b.name == name), None)


def webex_window(v: LineView, owner: str, now: float | None = None) -> WebexWindow:
    """The Webex App of user `owner` showing line `v` (`now` for the "Call with X ended" note)."""
    now = time.time() if now is None else now
    state, call = v.state, v.call
    name, number = v.name or "Unknown", v.number
    w = WebexWindow(page="idle", menu_items=list(v.menu_items), indicator=v.webex_indicator)
    if state == "ringing" and call:
        w.page = "toast"
        w.caller, w.avatar = name, name
        w.number = number if number != name else ""
        w.toast_title = ("Incoming call" + (f" via {v.via}" if v.via else "")
                         + ("" if v.line == owner else f" on {v.line_name}"))
        w.buttons = [Button("decline", "Decline"), Button("answer", "Answer")]
        return w
    if state not in WEBEX_LIVE or not call:
        if state == "down":
            w.idle_note = "Disconnected — the app cannot reach Webex Calling"
        elif state == "ended" and call:
            since = now - (call.get("ended_at") or now)
            w.idle_note = f"Call with {name} ended" if since < ENDED_NOTE_SECONDS else ""
        w.buttons = [Button("call", "Call", state != "down"), Button("voicemail", "Voicemail")]
        return w
    w.page = "call"
    w.caller = w.avatar = name
    w.number = number if number != name else ""
    if v.via:
        w.number = f"{w.number} via {v.via}".strip()
    if state == "dialing":
        w.timer = "Ringing…" if call.get("ringback") else "Calling…"
    else:
        w.timer_since = call.get("connected_at") or now
        held_by = call.get("held_by")
        w.state = ({"local": "On hold", "both": "On hold", "remote": "Held by the other party"}.get(held_by, "Connected")
                   if state == "held" else ("Muted" if v.muted else "Connected"))
    if call.get("conference"):
        w.caller = w.avatar = "Conference"
        w.number = ", ".join(n or "Unknown" for n in v.member_names)
    consulting = bool(call.get("consult_for"))
    if consulting:
        held_name = (v.consult_held_name or "Unknown") if v.consult_held else ""
        state = call.get("state", state)      # the consult call's own state
        w.state = f"Consulting · {held_name} on hold" if state != "dialing" else f"{held_name} on hold"
    held_local = state == "held" and call.get("held_by") in ("local", "both")
    in_call = state in ("connected", "held")
    w.buttons = [Button("mute", "Unmute" if v.muted else "Mute", in_call),
                 Button("resume", "Resume") if held_local else Button("hold", "Hold", state == "connected"),
                 Button("transfer", "Transfer", in_call), Button("more", "More", in_call)]
    if consulting:
        merging = call.get("consult_kind") == "conference"
        # a transfer may complete while the consult call rings (blind after consult); a merge needs an answer
        w.buttons += [Button("conference_merge", "Merge", call.get("state") == "connected") if merging
                      else Button("transfer_complete", "Complete transfer"),
                      Button("transfer_cancel", "Cancel transfer")]
    if v.waiting is not None:
        wname, wnumber = v.waiting_remote
        wname = wname or "Unknown"
        w.waiting = f"{wname} ({wnumber}) is calling" if wnumber != wname else f"{wname} is calling"
        w.buttons += [Button("waiting_answer", "Answer"), Button("waiting_decline", "Decline")]
    w.buttons.append(Button("end", "End"))
    return w


# ----- the control API's device state ----------------------------------------------------------
def call_summary(call: dict | None) -> dict | None:
    if not call:
        return None
    keys = ("call", "state", "direction", "remote", "held_by", "created", "connected_at", "ended_at",
            "reason", "sip_call_id", "via")
    return {k: call.get(k) for k in keys if k in call}


def device_state(sim, who: str, now: float | None = None) -> dict[str, Any]:
    """The line `who` and every device it rings on, as their screens show it now."""
    p = sim.party(who)
    v = line_view(sim, who)
    scr = mpp_screen(v)
    view = v.recording if v.live else None
    message = (view or {}).get("message") if view else None
    title, subtitle = ("", "") if scr.clock else (scr.title, scr.subtitle)
    lines = [f"{p.number}  {p.name}", scr.state] + [t for t in (title, subtitle) if t]
    if message:
        lines.append(message)
    screen = {"state": scr.state, "title": title, "subtitle": subtitle, "message": message,
              "text": "\n".join(lines)}
    devices = []
    for dev in p.devices or ("pstn",):      # a PSTN party has one simple face
        kind, _, model = dev.partition(" ")
        d: dict[str, Any] = {"type": kind, "model": model or None,
                             "indicator": {"mpp": v.mpp_indicator, "webex-app": v.webex_indicator}.get(kind, "none")}
        if kind == "mpp":
            d["softkeys"] = mpp_softkeys(v)
            d["muted"] = v.muted and v.state in ("connected", "held")
        if kind == "webex-app":
            d["menu_items"] = list(v.menu_items)
            w = webex_window(v, p.agent if p.kind == "virtual_line" else p.id, now)
            d["window"] = {"page": w.page, "caller": w.caller, "number": w.number, "state": w.state,
                           "timer": w.timer, "toast_title": w.toast_title, "waiting": w.waiting,
                           "idle_note": w.idle_note,
                           "buttons": [{"name": b.name, "label": b.label, "enabled": b.enabled}
                                       for b in w.buttons]}
        d["screen"] = screen
        devices.append(d)
    return {
        "id": p.id, "kind": p.kind, "name": p.name, "number": p.number, "agent": p.agent,
        "agent_status": sim.agent_status.get(p.agent, "unknown"),
        "line_state": sim.line_state(who), "call_state": v.state,
        "call": call_summary(v.call),
        "waiting": call_summary(v.waiting),
        "muted": v.muted,
        "recording": ({"state": view.get("state"), "indicator": view.get("indicator"),
                       "message": view.get("message")} if view else None),
        "softkeys": list(v.rec_softkeys), "menu_items": list(v.menu_items),
        "indicator": v.indicator,
        "devices": devices,
    }
