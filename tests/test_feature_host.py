"""The agent's features behind a narrow host (issue 20): src/mppsim/phone/host.py, commands.py.

Structure checks over the source (no import cycle in phone/, no feature importing the agent,
every documented control command in the table) and pure-logic checks of what the features now
ask their owners for (the SIPREC client's session moves, TransferDesk.pair). The features'
behaviour over real SIP is in test_transfer.py, test_conference.py, test_call_waiting.py and
test_voicemail*.py.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mppsim.phone.agent import Agent
from mppsim.phone.calls import CallRecord
from mppsim.phone.commands import COMMANDS
from mppsim.phone.siprec import Session, SiprecClient
from mppsim.phone.transfer import TransferDesk, TransferError
from mppsim.siprec.metadata import Metadata, Participant, Stream

ROOT = Path(__file__).resolve().parents[1]
PHONE = ROOT / "src" / "mppsim" / "phone"
FEATURES = ("transfer", "conference", "call_waiting", "voicemail", "voicemail_menu", "commands", "host")


def phone_imports() -> dict[str, set[str]]:
    """Module -> the phone modules it imports, TYPE_CHECKING and function-level imports included."""
    graph = {}
    for path in PHONE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    deps |= {node.module} if node.module else {a.name for a in node.names}
                elif (node.module or "").startswith("mppsim.phone."):
                    deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("mppsim.phone.")}
        graph[path.stem] = {d for d in deps if (PHONE / f"{d}.py").exists()}
    return graph


def test_no_import_cycle_in_phone():
    graph = phone_imports()
    state: dict[str, str] = {}

    def visit(mod, trail):
        state[mod] = "open"
        for dep in sorted(graph[mod]):
            assert state.get(dep) != "open", "import cycle: " + " -> ".join(trail + [mod, dep])
            if dep not in state:
                visit(dep, trail + [mod])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [])
    assert "transfer" in graph["conference"] and "commands" in graph["agent"]   # the walk saw them


def test_features_and_commands_never_import_the_agent():
    graph = phone_imports()
    assert {m for m in FEATURES if "agent" in graph[m]} == set()


def test_every_documented_command_has_a_handler_and_the_agent_has_none():
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("| cmd | args | result | what it does |", 1)[1].split("\n\n", 1)[0]
    documented = {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert len(documented) >= 25
    assert documented <= set(COMMANDS)
    assert [name for name in dir(Agent) if name.startswith("cmd_")] == []


def session(key: str, number: int, state: str = "active") -> Session:
    md = Metadata("rfc7866", "complete", "g", f"s{number}", "call-1",
                  participants=[Participant("p1", "Alice", "sip:1001@127.0.0.1", ["s1"], ["s2"]),
                                Participant("p2", "Bob", "sip:1002@127.0.0.1", ["s2"], ["s1"])],
                  streams=[Stream("s1", "1", "s"), Stream("s2", "2", "s")])
    return Session(key, number, "sip:srs@h", "rfc7866", md, rid=f"alice:{key}:{number}", state=state,
                   handed_over=True)


class Src:
    """The network SRC's two calls update_participants makes."""

    def __init__(self):
        self.sent = []

    def set_document(self, rid, xml, status):
        self.sent.append(("document", rid))

    def update(self, rid, method):
        self.sent.append(("update", rid, method))


def client_with(*sessions: Session) -> SiprecClient:
    client = object.__new__(SiprecClient)
    client.src, client.sessions = Src(), {(s.key, s.number): s for s in sessions}
    return client


def test_a_moved_recording_keeps_its_sessions_under_the_new_call():
    first, second, other = session("alice:1", 1), session("alice:1", 2), session("alice:7", 1)
    client = client_with(first, second, other)
    client.move("alice:1", "alice:4")
    assert client.sessions == {("alice:4", 1): first, ("alice:4", 2): second, ("alice:7", 1): other}
    assert first.key == second.key == "alice:4"


def test_starting_is_about_the_call_asked_only():
    client = client_with(session("alice:1", 1, "starting"), session("alice:2", 1))
    assert client.starting("alice:1") and not client.starting("alice:2") and not client.starting("alice:3")


def test_a_feature_event_goes_before_the_participant_list_and_sees_who_was_there():
    live, ended = session("alice:1", 1), session("alice:1", 2, "ended")
    client = client_with(live, ended)
    seen = []

    def event(dialect, previous):
        seen.append((dialect, previous))
        return {"participant_change": "transfer", "left": previous[0], "joined": "sip:1003@127.0.0.1"}
    client.update_participants("alice:1", [{"user": "1003", "name": "Carol"}], "UPDATE", event)
    assert seen == [("rfc7866", ["sip:1002@127.0.0.1"])]          # the ended session is left alone
    events = live.metadata.events
    assert [sorted(e) for e in events] == [["joined", "left", "participant_change", "time"], ["participants", "time"]]
    assert events[0]["left"] == "sip:1002@127.0.0.1" and events[1]["participants"] == ["1003"]
    assert [p.aor for p in live.metadata.participants] == ["sip:1001@127.0.0.1", "sip:1003@127.0.0.1"]
    assert client.src.sent == [("document", live.rid), ("update", live.rid, "UPDATE")]
    assert ended.metadata.events == []


class Host:
    """The calls a TransferDesk looks at; nothing else of a FeatureHost is used by pair()."""

    def __init__(self, *recs: CallRecord):
        self.calls = {r.key: r for r in recs}


def call(key: str, line: str = "l1", state: str = "connected") -> CallRecord:
    return CallRecord(key=key, call=None, line=line, direction="out", created=0.0, state=state)


def test_pair_finds_the_transfer_under_way_by_either_call_or_by_line():
    held, consult, other = call("a:1", state="held"), call("a:2", state="ringing"), call("a:3", line="l2")
    held.consult.call, consult.consult.held = consult.key, held.key
    desk = TransferDesk(Host(held, consult, other))
    assert desk.pair(None, None) == desk.pair("a:1", None) == desk.pair("a:2", "l1") == (held, consult)
    for args in (("a:3", None), (None, "l2")):
        with pytest.raises(TransferError, match="^transfer: no transfer under way"):
            desk.pair(*args)
    held.state = "ended"        # the held call is gone: nothing to complete
    with pytest.raises(TransferError):
        desk.pair(None, None)
