"""What the agent's call features and control commands may use of the agent.

The features (phone/transfer.py, conference.py, call_waiting.py, voicemail.py) and the
control-channel commands (phone/commands.py) take one of these, never the Agent: as in baresip,
where `struct call` is opaque and a module sees only the core's functions, a feature here sees the
agent's calls and a handful of its actions, and keeps its own state in its own objects (the
per-call parts in typed fields of the CallRecord: phone/calls.py). So no feature module imports
the agent, and the agent is free to change how it does a thing as long as it still offers it.
Like phone/edge.py's EdgeHost, these are Protocols: the Agent satisfies them without naming them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from .calls import CallRecord, LineAccount
    from .edge import RecordingEdge
    from .endpoint import LineConfig
    from .media import Source
    from .siprec import SiprecClient


class CommandError(Exception):
    """A request the agent refuses; the text goes back to the app as is."""


class FeatureHost(Protocol):
    """What transfer, conference, call waiting and voicemail need of the agent."""

    name: str
    run_dir: Path
    lines: list["LineConfig"]
    names: dict[str, str]            # extension or number -> display name
    mailboxes: dict[str, str]        # extension -> line id (the voicemail agent)
    sound: Any                       # phone/sound_bridge.SoundBridge while on the real sound card

    @property
    def calls(self) -> Mapping[str, "CallRecord"]: ...     # live and recently ended, by key
    @property
    def edge(self) -> "RecordingEdge | None": ...           # the recording policy of the calls
    @property
    def siprec(self) -> "SiprecClient | None": ...          # their recording sessions

    def emit(self, event: str, **fields) -> None: ...
    def later(self, delay: float, fn: Callable[[], None]) -> None: ...
    def find_call(self, call: str | None, line: str | None = None,
                  prefer: tuple[str, ...] = ...) -> "CallRecord": ...
    def resolve(self, to: str) -> str: ...
    def report_call(self, rec: "CallRecord", changed: bool = False) -> None: ...
    def dial(self, to: str, line: str | None = None) -> "CallRecord": ...
    def answer_code(self, rec: "CallRecord", code: int, reason: str = "") -> None: ...
    def hangup_record(self, rec: "CallRecord") -> None: ...
    def resume(self, rec: "CallRecord") -> None: ...
    def unhold(self, rec: "CallRecord") -> None: ...
    def blind_transfer(self, rec: "CallRecord", to: str) -> None: ...
    def attended_transfer(self, rec: "CallRecord", consult: "CallRecord") -> None: ...


class CommandHost(FeatureHost, Protocol):
    """What the control commands need besides: the agent's settings, media and its features."""

    kind: str
    directory: dict[str, str]
    unavailable: set[str]
    auto_answer: float | None
    recorder_target: str | None
    voicemail: str | None
    line_state: dict[str, str]
    source: "Source"
    muted: bool
    # phone/transfer.TransferDesk and phone/conference.Conferences, named and not imported:
    # they import this module
    transfers: Any
    conferences: Any
    centre: Any     # phone/contact_centre.ContactCentre of a feature's agent, else None

    def find_line(self, line: str | None) -> "LineAccount": ...
    def describe(self, rec: "CallRecord") -> dict[str, Any]: ...
    def resources(self) -> dict: ...
    def hold_record(self, rec: "CallRecord") -> None: ...
    def far_end_lost(self, rec: "CallRecord") -> None: ...
    def hold_others(self, rec: "CallRecord") -> None: ...
    def to_voicemail(self, rec: "CallRecord") -> bool: ...
    def set_muted(self, on: bool) -> None: ...
    def use_source(self, source: "Source") -> None: ...
    def use_sound_bridge(self, port: int) -> int: ...
    def drop_sound_bridge(self) -> None: ...
    def shutdown_calls(self) -> None: ...
