"""The control channel's requests (docs/protocol.md): one handler per command, in a table.

`COMMANDS[name](host, **args)` answers request `{"cmd": name, "args": args}` with the reply's
`result` (a dict), or a Deferred for one that waits (`listen`); a refusal raises CommandError,
whose text goes back to the app as is. The handlers check the arguments and shape the reply;
what they do to calls is the agent's (phone/host.py CommandHost) or a feature's (transfer,
conference). They were the Agent's `cmd_*` methods: the replies, and the error texts down to
the handler name that Python writes into a bad-arguments TypeError, are unchanged.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

import pjsua2 as pj

from mppsim.rules.effective import EffectiveSettings

from .conference import ConferenceError, with_tones
from .edge import EdgeError
from .host import CommandError
from .listening import listen_poll
from .media import Source
from .replies import Deferred
from .transfer import TransferError

if TYPE_CHECKING:
    from .host import CommandHost

MAX_LISTEN = 600.0    # seconds of audio `listen` analyses at most

COMMANDS: dict[str, Callable[..., Any]] = {}


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register `cmd_<name>` as the handler of command `<name>`."""
    # A call with bad arguments is answered "<cmd>: bad arguments: <TypeError>", and Python
    # names the function in that text by its qualified name: keep the one the app has seen.
    fn.__qualname__ = f"Agent.{fn.__name__}"
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


# ----- the process -------------------------------------------------------------------------
@command
def cmd_ping(host: CommandHost) -> dict:
    return {"pong": True, "pid": os.getpid()}


@command
def cmd_status(host: CommandHost) -> dict:
    return {"lines": dict(host.line_state), "source": host.source.description, "muted": host.muted,
            "calls": [{**host.describe(r), "recording": host.edge.view(r.key) if host.edge else None}
                      for r in host.calls.values()],
            "auto_answer": host.auto_answer, "resources": host.resources()}


@command
def cmd_shutdown(host: CommandHost) -> dict:
    host.shutdown_calls()
    return {"stopping": True}


# ----- calls -------------------------------------------------------------------------------
@command
def cmd_dial(host: CommandHost, to: str, line: str | None = None) -> dict:
    return {"call": host.dial(to, line).key}


@command
def cmd_answer(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    rec = host.find_call(call, line, prefer=("ringing",))
    host.hold_others(rec)
    host.answer_code(rec, 200)
    return {"call": rec.key}


@command
def cmd_decline(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    rec = host.find_call(call, line, prefer=("ringing",))
    if not host.to_voicemail(rec):
        host.answer_code(rec, 603, "Decline")
    return {"call": rec.key}


@command
def cmd_hangup(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    rec = None
    if call is None:
        # End pressed again while the first hang-up is on its way (a conference host ending its
        # member calls one after the other) ends the next call, not the same one a second time:
        # a call stays live until its BYE is answered, and under load that is later than the press
        live = [r for r in host.calls.values() if r.active and not r.local_hangup
                and (line is None or r.line == line)]
        rec = next((r for state in ("connected", "held", "ringing", "dialing")
                    for r in reversed(live) if r.state == state), None)
    if rec is None:
        rec = host.find_call(call, line)
    host.hangup_record(rec)
    return {"call": rec.key}


@command
def cmd_hold(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    rec = host.find_call(call, line, prefer=("connected",))
    host.hold_record(rec)
    return {"call": rec.key}


@command
def cmd_resume(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    if call is None:    # a call whose hold is still on the way counts as held
        rec = next((r for r in reversed(list(host.calls.values())) if r.active and r.want_hold
                    and r.state == "connected" and (line is None or r.line == line)), None)
        if rec is not None:
            call = rec.key
    rec = host.find_call(call, line, prefer=("held",))
    host.resume(rec)
    return {"call": rec.key}


@command
def cmd_dtmf(host: CommandHost, digits: str, call: str | None = None, line: str | None = None) -> dict:
    allowed = set("0123456789*#ABCD")
    bad = sorted(set(str(digits).upper()) - allowed)
    if bad:
        raise CommandError(f"digits: {''.join(bad)!r} not allowed; allowed: 0-9 * # A-D")
    rec = host.find_call(call, line, prefer=("connected",))
    digits = str(digits).upper()
    if host.edge is not None and host.edge.dtmf_sent(rec.key, digits):
        return {"call": rec.key, "feature_code": True}   # R-UX-5: taken by the network
    rec.call.dialDtmf(digits)
    return {"call": rec.key}


@command
def cmd_mute(host: CommandHost, on: bool = True, call: str | None = None, line: str | None = None) -> dict:
    """Mute / unmute the user's microphone for their calls (MPP Mute key, Webex App Mute).
    Not a recording pause: the recording goes on, its user channel silent (issue 13)."""
    if not isinstance(on, bool):
        raise CommandError(f"on: {on!r} not allowed; allowed: true, false")
    if on and not any(r.active and r.state in ("connected", "held") for r in host.calls.values()):
        raise CommandError("mute: no call to mute")
    host.set_muted(on)
    return {"muted": host.muted}


# ----- transfer and conference (phone/transfer.py, phone/conference.py) ---------------------
@command
def cmd_transfer(host: CommandHost, to: str | None = None, call: str | None = None,
                 consult: str | None = None, line: str | None = None) -> dict:
    """Blind transfer (to=...) or attended transfer onto an existing consult call."""
    if consult is not None:
        target = host.find_call(consult)
        rec = host.find_call(call, line, prefer=("held", "connected")) if call else next(
            (r for r in reversed(list(host.calls.values()))
             if r.active and r is not target and r.line == target.line), None)
        if rec is None:
            raise CommandError("transfer: no other call to connect with the consult call")
        host.attended_transfer(rec, target)
        return {"call": rec.key, "consult": target.key}
    if to is None:
        raise CommandError("transfer: give to (blind) or consult (attended)")
    rec = host.find_call(call, line, prefer=("connected", "held"))
    host.blind_transfer(rec, to)
    return {"call": rec.key}


@command
def cmd_transfer_start(host: CommandHost, to: str, call: str | None = None, line: str | None = None) -> dict:
    """MPP Transfer on a call + a number: hold it and open a consult call (phone/transfer.py)."""
    try:
        return host.transfers.start(to, call, line)
    except TransferError as exc:
        raise CommandError(str(exc)) from exc


@command
def cmd_transfer_complete(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    """Transfer pressed again: attended after answer, blind after consult while ringing."""
    try:
        return host.transfers.complete(call, line)
    except TransferError as exc:
        raise CommandError(str(exc)) from exc


@command
def cmd_transfer_cancel(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    try:
        return host.transfers.cancel(call, line)
    except TransferError as exc:
        raise CommandError(str(exc)) from exc


@command
def cmd_conference_start(host: CommandHost, to: str, call: str | None = None, line: str | None = None) -> dict:
    """MPP Conference + number: hold the call and call the third party (a consult call)."""
    try:
        return host.conferences.start(to, call, line)
    except ConferenceError as exc:
        raise CommandError(str(exc)) from exc


@command
def cmd_conference_merge(host: CommandHost, call: str | None = None, line: str | None = None) -> dict:
    """Conference pressed again: the held call and the consult call become one conference."""
    try:
        return host.conferences.merge(call, line)
    except (TransferError, ConferenceError) as exc:
        raise CommandError(str(exc).replace("transfer", "conference")) from exc


# ----- recording ---------------------------------------------------------------------------
@command
def cmd_press(host: CommandHost, key: str, call: str | None = None, line: str | None = None) -> dict:
    """A recording softkey on the MPP: Record, PauseRec, ResumeRec, StopRec."""
    rec = host.find_call(call, line, prefer=("connected", "held"))
    try:
        done = host.edge.press(rec.key, key) if host.edge else False
    except EdgeError as exc:
        raise CommandError(str(exc)) from exc
    return {"call": rec.key, "done": done}


@command
def cmd_menu(host: CommandHost, item: str, call: str | None = None, line: str | None = None) -> dict:
    """A recording item under More in the Webex App call window."""
    rec = host.find_call(call, line, prefer=("connected", "held"))
    try:
        done = host.edge.menu(rec.key, item) if host.edge else False
    except EdgeError as exc:
        raise CommandError(str(exc)) from exc
    return {"call": rec.key, "done": done}


@command
def cmd_set_recording(host: CommandHost, line: str, settings: dict) -> dict:
    """Effective recording settings of a line, for calls that start from now on."""
    if host.edge is None:
        raise CommandError(f"{host.name} is a PSTN party: it has no recording settings")
    if host.kind != "voicemail":      # the voicemail agent keeps every line's settings
        host.find_line(line)
    host.edge.set_settings(line, EffectiveSettings.from_dict(settings))
    return {"line": line}


@command
def cmd_set_feature_compliance(host: CommandHost, compliance: dict) -> dict:
    """A feature's agent: the compliance announcement in force at its location now (R-CMP-5),
    for calls that arrive from now on (Control Hub, the API or a scenario changed it)."""
    if host.centre is None:
        raise CommandError(f"{host.name} is not a hunt group, call queue or auto attendant")
    host.centre.set_compliance(compliance)
    return {"compliance": host.centre.compliance_on}


@command
def cmd_recorder_down(host: CommandHost, target: str) -> dict:
    """The app saw the recorder at `target` die: fail the sessions that used it."""
    if host.siprec is not None:
        host.siprec.target_down(target)
    return {}


@command
def cmd_set_recorder(host: CommandHost, target: str | None) -> dict:
    host.recorder_target = target
    return {"recorder": target}


# ----- audio -------------------------------------------------------------------------------
@command
def cmd_play(host: CommandHost, tone: float | None = None, file: str | None = None,
             silence: bool = False) -> dict:
    new = Source()
    if tone is not None:
        if not 50 <= float(tone) <= 3800:
            raise CommandError(f"tone: {tone} Hz is out of range; allowed: 50-3800 Hz")
        new.set_tone(float(tone))
    elif file is not None:
        try:
            new.set_file(str(file))
        except (ValueError, pj.Error) as exc:
            raise CommandError(f"file: cannot play {file}: {exc}") from exc
    elif not silence:
        raise CommandError("play: give tone (Hz), file (WAV path) or silence: true")
    host.use_source(new)
    return {"source": new.description, "started": time.time()}


@command
def cmd_listen(host: CommandHost, call: str | None = None, seconds: float = 1.0, line: str | None = None,
               freqs: list | None = None):
    """What the user hears in a live call over the last `seconds`, or heard in an ended one.
    With `freqs`: also whether each frequency is present (`present`: {"1000.0": true, ...}).

    The answer waits until the capture file holds the moment of asking (pjmedia writes it
    in ~0.25 s blocks) and, on a call younger than `seconds`, until `seconds` were heard.
    A call still ringing without early media has heard nothing: None at once.
    """
    if call is not None and call in host.calls and not host.calls[call].active:
        return {"call": call, "heard": host.calls[call].heard}
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise CommandError(f"seconds: {seconds!r} is not a number; allowed: 0.02-{MAX_LISTEN:g}") from None
    if not 0.02 <= seconds <= MAX_LISTEN:
        raise CommandError(f"seconds: {seconds:g} is out of range; allowed: 0.02-{MAX_LISTEN:g}")
    rec = host.find_call(call, line)
    if rec.capture is None and rec.state not in ("connected", "held"):
        return {"call": rec.key, "heard": None}
    follow = None if call is not None else (lambda: host.find_call(None, line))
    poll = listen_poll(rec, seconds, rec.capture.position() if rec.capture else None, follow, CommandError)
    if freqs:
        poll = with_tones(poll, lambda: rec.capture, seconds, [float(f) for f in freqs])
    return Deferred(poll)


@command
def cmd_onset(host: CommandHost, after: float, call: str | None = None, line: str | None = None,
              threshold_dbfs: float = -40.0) -> dict:
    """Wall-clock time of the first received 20 ms frame louder than the threshold after
    `after` (Unix time): for measuring audio delay (bench/recording.py, R-REC-3)."""
    rec = host.find_call(call, line)
    if rec.capture is None:
        return {"onset": None}
    from .analysis import first_loud_frame
    cap = rec.capture
    now_pos, now = cap.position(), time.time()
    first = max(0, now_pos - int((now - after) * 8000))
    found = first_loud_frame(cap.samples(first), 8000, threshold_dbfs)
    return {"onset": None if found is None else now - (now_pos - first) / 8000 + found}


@command
def cmd_sound_bridge(host: CommandHost, port: int) -> dict:
    """Use the GUI's sound card for this device: microphone frames arrive on our UDP port,
    what the user hears goes to the GUI's `port` (phone/sound_bridge.py)."""
    return {"port": host.use_sound_bridge(int(port))}


@command
def cmd_sound_bridge_off(host: CommandHost) -> dict:
    host.drop_sound_bridge()
    return {}


# ----- settings from the app ---------------------------------------------------------------
@command
def cmd_set_auto_answer(host: CommandHost, after: float | None = None) -> dict:
    host.auto_answer = None if after is None else float(after)
    return {"auto_answer": host.auto_answer}


@command
def cmd_set_unavailable(host: CommandHost, numbers: list[str]) -> dict:
    host.unavailable = set(numbers)
    return {"unavailable": sorted(host.unavailable)}


@command
def cmd_far_end_lost(host: CommandHost, sip_call_ids: list[str], agent: str | None = None) -> dict:
    """The app saw the agent on the far end of these calls die: end them now, with the reason
    `far end lost`, rather than stay connected to a phone that is gone (docs/protocol.md)."""
    ids = set(sip_call_ids)
    ended = []
    for rec in list(host.calls.values()):
        if rec.active and rec.sip_call_id in ids:
            host.far_end_lost(rec)
            ended.append(rec.key)
    return {"ended": ended}


@command
def cmd_set_directory(host: CommandHost, directory: dict[str, str], voicemail: str | None = None) -> dict:
    """The numbers' SIP URIs (the app learns each agent's ports from its hello), and for
    users the voicemail address (`sip:{mailbox}@host:port`) when given."""
    host.directory = dict(directory)
    if voicemail is not None:
        host.voicemail = voicemail
    return {"entries": len(host.directory)}
