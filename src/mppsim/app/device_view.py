"""What a simulated device shows, in plain Python (no Qt): for the control API and tests.

The Qt faces (ui/mpp_phone.py, ui/webex_app.py) draw the same state; this module derives the
parts an automated test asserts on — call state, the softkeys an MPP offers, the Webex App's
recording menu, the recording indicator and the call area's text — from the Simulator alone, so
they are available headless (`mppsim api`). Clock, dial string and paging are UI-only and absent.
"""
from __future__ import annotations

from typing import Any

from mppsim.rules.policy import SOFTKEY_ORDER

STATE_TEXT = {"idle": "Idle", "dialing": "Calling...", "ringing": "Ringing", "connected": "Connected",
              "held": "On hold", "ended": "Call ended", "down": "Line down"}

# Call-handling softkeys an MPP shows besides the recording ones, and what pressing them does
CALL_SOFTKEYS = {"Answer": "answer", "Decline": "decline", "End call": "hangup", "Hold": "hold",
                 "Resume": "resume"}


def line_state(sim, who: str) -> str:
    """The line's call state (see Simulator.call_state), or 'down' while its agent is not running."""
    p = sim.party(who)
    if sim.agent_status.get(p.agent, "up") != "up":
        return "down"
    return sim.call_state(who)


def mpp_softkeys(state: str, call: dict | None, recording_keys: list[str]) -> list[str]:
    """All softkeys of the MPP for a line in `state` (before paging), like ui/mpp_phone.py."""
    if state == "down":
        return ["Restart"]
    if state == "ringing" and call and call.get("direction") == "in":
        return ["Answer", "Decline"]
    if state in ("dialing", "ringing"):
        return ["End call"]
    if state == "connected":
        return [k for k in SOFTKEY_ORDER if k in recording_keys] + ["End call", "Hold", "Transfer", "Conference"]
    if state == "held":
        local = call is not None and call.get("held_by") in ("local", "both")
        return (["Resume"] if local else []) + ["End call", "New call", "Transfer"]
    return ["Redial", "New call"]


def remote_of(sim, call: dict | None) -> tuple[str, str]:
    """(name, number) of the other party of a call, as the phone shows them."""
    if not call:
        return "", ""
    remote = call.get("remote") or {}
    number = remote.get("user", "")
    known = sim.party_by_number(number) if number else None
    return remote.get("name") or (known.name if known else number), number


def call_summary(call: dict | None) -> dict | None:
    if not call:
        return None
    keys = ("call", "state", "direction", "remote", "held_by", "created", "connected_at", "ended_at",
            "reason", "sip_call_id")
    return {k: call.get(k) for k in keys if k in call}


def device_state(sim, who: str) -> dict[str, Any]:
    """The line `who` and every device it rings on, as their screens show it now."""
    p = sim.party(who)
    state = line_state(sim, who)
    call = sim.current_call(who) if state != "down" else None
    view = sim.recording_view(who) if call else None
    live = state not in ("idle", "ended", "down")
    name, number = remote_of(sim, call)
    if state == "held" and call and call.get("held_by") not in ("local", "both"):
        state_text = "Held by other party"
    elif state == "ended" and call and call.get("reason") not in (None, "", "hangup"):
        state_text = f"Call ended ({call['reason']})"
    else:
        state_text = STATE_TEXT.get(state, state.capitalize())
    message = (view or {}).get("message") if live else None
    rec_keys = sim.softkeys(who) if live else []
    devices = []
    for dev in p.devices or ("pstn",):      # a PSTN party has one simple face
        kind, _, model = dev.partition(" ")
        indicator = sim.indicator(who, kind) if live else "none"
        d: dict[str, Any] = {"type": kind, "model": model or None, "indicator": indicator}
        if kind == "mpp":
            d["softkeys"] = mpp_softkeys(state, call, rec_keys)
        if kind == "webex-app":
            d["menu_items"] = sim.menu_items(who) if live else []
        lines = [f"{p.number}  {p.name}", state_text]
        if call and state != "idle":
            lines += [t for t in (name, number if number != name else "") if t]
        if message:
            lines.append(message)
        d["screen"] = {"state": state_text, "title": name if call and state != "idle" else "",
                       "subtitle": number if call and state != "idle" and number != name else "",
                       "message": message, "text": "\n".join(lines)}
        devices.append(d)
    return {
        "id": p.id, "kind": p.kind, "name": p.name, "number": p.number, "agent": p.agent,
        "agent_status": sim.agent_status.get(p.agent, "unknown"),
        "line_state": sim.line_state(who), "call_state": state,
        "call": call_summary(call),
        "recording": ({"state": view.get("state"), "indicator": view.get("indicator"),
                       "message": view.get("message")} if view and live else None),
        "softkeys": rec_keys, "menu_items": sim.menu_items(who) if live else [],
        "indicator": sim.indicator(who) if live else "none",
        "devices": devices,
    }
