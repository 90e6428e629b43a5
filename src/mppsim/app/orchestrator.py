"""Starts, supervises and stops the agent processes, and carries requests and events.

No Qt and no pjsua2 here: the agents are child processes (`python -m mppsim.phone.agent`) that connect
back to a control socket this class listens on (docs/protocol.md). Events arrive on reader
threads and go to the subscribers; a subscriber must be quick (the Qt bridge queues them).
"""
from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mppsim.phone.protocol import Channel, ChannelClosed

from .org import Org
from .ports import PortPlan
from .spawner import Zygote
from mppsim import IMPORT_ROOT

START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0


class AgentError(RuntimeError):
    """An agent refused a request, or is not there to answer it."""


@dataclass
class AgentSpec:
    name: str                      # user id, or the E.164 number of a PSTN party
    kind: str                      # "user" | "pstn"
    lines: list[dict[str, Any]]    # LineConfig fields
    auto_answer: float | None = None
    aliases: list[str] = field(default_factory=list)   # other numbers reaching its first line


@dataclass
class AgentHandle:
    spec: AgentSpec
    config_path: Path
    proc: subprocess.Popen | None = None
    chan: Channel | None = None
    status: str = "stopped"        # starting | up | down | stopped
    pid: int | None = None
    started_at: float = 0.0
    ready_at: float = 0.0
    pending: dict[int, dict] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    stderr_path: Path | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def agent_specs(org: Org, ports: PortPlan) -> list[AgentSpec]:
    """SIP port 0: each agent binds its own and reports it in its hello (the app learns it).
    RTP: a range per line below Linux's ephemeral ports, where pjsua steps over a taken one."""
    specs = []
    for user in org.users:
        lines = []
        for line_id, ext, display in org.lines_of(user.id):
            lines.append({"id": line_id, "extension": ext, "display": display,
                          "sip_port": 0, "rtp_port": ports.rtp_range()})
        specs.append(AgentSpec(user.id, "user", lines))
    for party in org.pstn:
        specs.append(AgentSpec(party.number, "pstn", [{
            "id": party.number, "extension": party.number, "display": party.name,
            "sip_port": 0, "rtp_port": ports.rtp_range()}]))
    for feature in org.features:      # hunt groups, call queues, auto attendants (issue 25)
        specs.append(AgentSpec(feature.id, "feature", [{
            "id": feature.id, "extension": feature.dial, "display": feature.name,
            "sip_port": 0, "rtp_port": ports.rtp_range()}],
            aliases=[feature.number] if feature.number and feature.number != feature.dial else []))
    if not org.voicemail:
        return specs
    specs.append(AgentSpec(VOICEMAIL, "voicemail", [{
        "id": VOICEMAIL, "extension": voicemail_number(org), "display": "Voicemail",
        "sip_port": 0, "rtp_port": ports.rtp_range()}]))
    return specs


VOICEMAIL = "voicemail"


def voicemail_number(org: Org) -> str:
    """The voicemail service's number: 8000, or the next free one."""
    taken = {u.extension for u in org.users} | {v.extension for v in org.virtual_lines}
    taken |= {f.extension for f in org.features if f.extension}
    return next(str(n) for n in range(8000, 9000) if str(n) not in taken)


def kinds_of(org: Org) -> dict[str, str]:
    """Number -> user | virtual_line | pstn: how an agent tells internal from PSTN callers."""
    kinds = {u.extension: "user" for u in org.users}
    kinds.update({v.extension: "virtual_line" for v in org.virtual_lines})
    for p in org.pstn:
        kinds[p.number] = kinds[p.number.lstrip("+")] = "pstn"
    for f in org.features:
        for number in filter(None, (f.extension, f.number)):
            kinds[number] = "feature"
    return kinds


def mailboxes(org: Org) -> dict[str, str]:
    """Extension -> line id: whose voicemail a deposit to that extension is."""
    boxes = {u.extension: u.id for u in org.users}
    boxes.update({v.extension: v.id for v in org.virtual_lines})
    return boxes


def names_of(org: Org) -> dict[str, str]:
    """Number -> display name, for the recording metadata of calls to a party."""
    names = {u.extension: u.name for u in org.users}
    names.update({v.extension: v.name for v in org.virtual_lines})
    names.update({p.number: p.name for p in org.pstn})
    for f in org.features:
        names.update({number: f.name for number in filter(None, (f.extension, f.number))})
    return names


def directory_of(specs: list[AgentSpec]) -> dict[str, str]:
    """Dialled string -> SIP URI of the line that owns it (E.164 also without '+')."""
    out = {}
    for spec in specs:
        for line in spec.lines:
            if not line.get("sip_port"):
                continue   # not bound yet: its agent has not said hello
            uri = f"sip:{line['extension']}@127.0.0.1:{line['sip_port']}"
            out[line["extension"]] = uri
            if line["extension"].startswith("+"):
                out[line["extension"][1:]] = uri
        if spec.lines and spec.lines[0].get("sip_port"):
            for alias in spec.aliases:    # a feature's E.164 number beside its extension
                out[alias] = out[alias.lstrip("+")] = (
                    f"sip:{spec.lines[0]['extension']}@127.0.0.1:{spec.lines[0]['sip_port']}")
    return out


LOAD_AGENTS = 16     # more agents than this can saturate a laptop's cores when their calls start


def agent_nice(agents: int) -> int:
    """The agents' priority (docs/decisions.md): a load-sized org runs them at nice 19, below
    the recorder and the app, which stand for the service and the tester; a demo org's few
    agents cannot saturate the machine and keep the default."""
    return 19 if agents > LOAD_AGENTS else 0


class Orchestrator:
    def __init__(self, org: Org, run_dir: Path | None = None, log_level: int = 4,
                 recording_for: Callable[[str], dict[str, dict]] | None = None,
                 recorder_for: Callable[[str], str | None] | None = None,
                 compliance_for: Callable[[str], dict] | None = None):
        self.org = org
        # agent name -> {line id: EffectiveSettings as dict}, asked at every (re)start
        self.recording_for = recording_for or (lambda _name: {})
        # agent name -> SIPREC target of the embedded recorder worker it uses (or None)
        self.recorder_for = recorder_for or (lambda _name: None)
        # location id -> the compliance announcement in force there (features, R-CMP-5)
        self.compliance_for = compliance_for or (lambda _location: {})
        # absolute: agents and the recorder run with another working folder (the package's parent)
        self.run_dir = Path(run_dir).resolve() if run_dir else Path(tempfile.mkdtemp(prefix="mppsim-run-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_level = log_level
        self.ports = PortPlan()
        self.specs = agent_specs(org, self.ports)
        self.directory: dict[str, str] = {}   # filled from the agents' hellos (start, restart)
        self.directory_listeners: list[Callable[[dict[str, str]], None]] = []   # e.g. the front door
        self.agents: dict[str, AgentHandle] = {}
        self.subscribers: list[Callable[[dict], None]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._reply_cv = threading.Condition(self._lock)
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self.control_port = 0
        self.stopping = False
        self.zygote: Zygote | None = None
        self.use_zygote = os.environ.get("MPPSIM_ZYGOTE", "1") != "0"

    # ----- events -----------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[dict], None]) -> None:
        self.subscribers.append(fn)

    def publish(self, event: dict) -> None:
        for fn in list(self.subscribers):
            try:
                fn(event)
            except Exception as exc:  # a broken subscriber must not stop the event flow
                print(f"mppsim: event subscriber failed: {exc!r}", file=sys.stderr)

    # ----- life cycle -------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.control_port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="mppsim-accept", daemon=True)
        self._accept_thread.start()
        for spec in self.specs:
            self.agents[spec.name] = AgentHandle(spec, self.run_dir / "agents" / f"{spec.name}.json")
        for handle in self.agents.values():
            self._spawn(handle)
        deadline = time.monotonic() + timeout
        for handle in self.agents.values():
            if not handle.ready.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise AgentError(f"agent {handle.name} did not start within {timeout:.0f} s: "
                                 f"{self._stderr_tail(handle)}")
        self._publish_directory()

    def _voicemail_uri(self) -> str | None:
        vm = self.agents.get(VOICEMAIL)
        port = vm.spec.lines[0].get("sip_port") if vm else None
        return f"sip:{{mailbox}}@127.0.0.1:{port}" if port else None

    def _publish_directory(self) -> None:
        """Every agent learns the ports the others bound (from their hellos): the directory
        and the voicemail address. Requests go out to all agents before any answer is awaited."""
        self.directory.clear()
        self.directory.update(directory_of(self.specs))
        sent = []
        for h in self.agents.values():
            if h.status != "up":
                continue
            args = {"directory": self.directory}
            if h.spec.kind in ("user", "feature"):
                args["voicemail"] = self._voicemail_uri()
            try:
                sent.append((h, self._send(h, "set_directory", args)))
            except AgentError:
                pass   # going down: it is told again when it comes back
        for h, req_id in sent:
            try:
                self._await_reply(h, req_id, "set_directory", REQUEST_TIMEOUT)
            except AgentError:
                pass
        for fn in list(self.directory_listeners):
            fn(dict(self.directory))

    def _spawn(self, handle: AgentHandle) -> None:
        spec = handle.spec
        config = {
            "agent": spec.name, "kind": spec.kind, "lines": spec.lines,
            "voicemail": self._voicemail_uri() if spec.kind in ("user", "feature") else None,
            "mailboxes": ({ext: line for ext, line in mailboxes(self.org).items()}
                          if spec.kind == "voicemail" else {}),
            "control": f"127.0.0.1:{self.control_port}", "run_dir": str(self.run_dir),
            "directory": self.directory, "ring_timeout": self.org.ring_timeout,
            "auto_answer": spec.auto_answer, "log_level": self.log_level,
            "kinds": kinds_of(self.org),
            "names": names_of(self.org),
            "recording": self.recording_for(spec.name) if spec.kind in ("user", "voicemail") else {},
            "recorder": self.recorder_for(spec.name) if spec.kind in ("user", "voicemail") else None,
            "nice": agent_nice(len(self.specs)),
        }
        if spec.kind == "feature":
            feature = self.org.feature(spec.name)
            config["feature"] = {**feature.config(), "compliance": self.compliance_for(feature.location)}
        handle.config_path.parent.mkdir(parents=True, exist_ok=True)
        handle.config_path.write_text(json.dumps(config, indent=2))
        handle.stderr_path = self.run_dir / "logs" / f"{spec.name}.stderr.log"
        handle.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
        handle.ready.clear()
        handle.status = "starting"
        handle.started_at = time.monotonic()
        handle.proc = None
        zygote = self._zygote(env)
        if zygote is not None:
            try:
                handle.proc = zygote.spawn(handle.config_path, handle.stderr_path)
            except OSError as exc:
                print(f"mppsim: starting {spec.name} without the zygote: {exc}", file=sys.stderr)
        if handle.proc is None:
            with open(handle.stderr_path, "ab") as err:
                handle.proc = subprocess.Popen(
                    [sys.executable, "-m", "mppsim.phone.agent", "--config", str(handle.config_path)],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, cwd=str(IMPORT_ROOT),
                    # own process group: a Ctrl-C in the terminal reaches the app only, which then
                    # ends calls and recordings in order (`mppsim load`); agents still exit with it
                    process_group=0)
        handle.pid = handle.proc.pid
        threading.Thread(target=self._watch_process, args=(handle, handle.proc),
                         name=f"mppsim-watch-{spec.name}", daemon=True).start()

    def _zygote(self, env: dict[str, str]):
        """The process agents are forked from (phone/zygote.py): Python start-up and imports
        paid once instead of per agent. None (one Popen per agent) if it cannot start."""
        if self.zygote is None and self.use_zygote:
            try:
                self.zygote = Zygote(IMPORT_ROOT, env)
            except OSError as exc:
                print(f"mppsim: no agent zygote ({exc}); starting agents one by one", file=sys.stderr)
                self.use_zygote = False
        if self.zygote is not None and not self.zygote.alive:
            self.zygote = None
            self.use_zygote = False
        return self.zygote

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._reader, args=(Channel(sock),), daemon=True).start()

    def _reader(self, chan: Channel) -> None:
        handle: AgentHandle | None = None
        for msg in chan.messages():
            if handle is None:
                if msg.get("event") != "hello" or msg.get("agent") not in self.agents:
                    chan.close()
                    return
                handle = self.agents[msg["agent"]]
                self._learn_ports(handle, msg)
                handle.chan = chan
                handle.status = "up"
                handle.ready_at = time.monotonic()
                handle.ready.set()
                self.publish({**msg, "event": "agent_up"})
                continue
            if "reply" in msg:
                with self._reply_cv:
                    handle.pending[msg["reply"]] = msg
                    self._reply_cv.notify_all()
            else:
                self.publish(msg)
        chan.close()

    @staticmethod
    def _learn_ports(handle: AgentHandle, hello: dict) -> None:
        """The SIP port each line bound, from the agent's hello (an older agent that says
        nothing keeps the planned port)."""
        bound = {line.get("id"): line for line in hello.get("lines", [])}
        for line in handle.spec.lines:
            port = bound.get(line["id"], {}).get("sip_port")
            if port:
                line["sip_port"] = int(port)

    def _watch_process(self, handle: AgentHandle, proc: subprocess.Popen) -> None:
        code = proc.wait()
        if handle.proc is not proc:
            return  # an older incarnation
        was = handle.status
        handle.status = "stopped" if self.stopping or was == "stopped" else "down"
        handle.chan = None
        with self._reply_cv:
            self._reply_cv.notify_all()
        if handle.status == "down":
            self.publish({"event": "agent_down", "agent": handle.name, "returncode": code,
                          "ts": time.time(), "detail": self._stderr_tail(handle)})
            self._announce_unavailable()

    def _announce_unavailable(self) -> None:
        """Tell every agent which numbers belong to agents that are down (or back up).

        The caller's agent then refuses a call to them at once instead of waiting ~32 s for
        SIP timer B on a dead UDP port.
        """
        down = sorted(line["extension"] for h in self.agents.values() if h.status == "down"
                      for line in h.spec.lines)
        for h in list(self.agents.values()):
            if h.status == "up":
                try:
                    self.request(h.name, "set_unavailable", numbers=down, timeout=2.0)
                except AgentError:
                    pass  # it is going down itself

    def _stderr_tail(self, handle: AgentHandle, lines: int = 5) -> str:
        try:
            text = handle.stderr_path.read_text(errors="replace") if handle.stderr_path else ""
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def restart(self, name: str, timeout: float = START_TIMEOUT) -> None:
        handle = self.handle(name)
        if handle.status == "up":
            raise AgentError(f"agent {name} is up; stop it first")
        self._spawn(handle)    # it asks for its old ports again and reports what it got
        if not handle.ready.wait(timeout):
            raise AgentError(f"agent {name} did not restart: {self._stderr_tail(handle)}")
        self._publish_directory()
        self._announce_unavailable()

    def kill(self, name: str) -> None:
        """Kill an agent the hard way (tests and the UI's 'simulate crash')."""
        handle = self.handle(name)
        if handle.proc is not None:
            handle.proc.kill()
            handle.proc.wait()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        for handle in self.agents.values():
            if handle.status == "up" and handle.chan is not None:
                try:
                    self._send(handle, "shutdown", {})
                except AgentError:
                    pass
        deadline = time.monotonic() + timeout
        for handle in self.agents.values():
            if handle.proc is None:
                continue
            try:
                handle.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                handle.proc.kill()
                handle.proc.wait()
            handle.status = "stopped"
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        if self._accept_thread is not None:
            self._accept_thread.join(2.0)
            self._accept_thread = None
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    # ----- requests ---------------------------------------------------------------------------
    def handle(self, name: str) -> AgentHandle:
        try:
            return self.agents[name]
        except KeyError:
            raise AgentError(f"no agent named {name!r}; agents: {', '.join(self.agents)}") from None

    def _send(self, handle: AgentHandle, cmd: str, args: dict) -> int:
        if handle.status != "up" or handle.chan is None:
            raise AgentError(f"agent {handle.name} is {handle.status}")
        req_id = next(self._ids)
        try:
            handle.chan.send({"id": req_id, "cmd": cmd, "args": args})
        except ChannelClosed as exc:
            raise AgentError(f"agent {handle.name} is unreachable: {exc}") from exc
        return req_id

    def request(self, name: str, cmd: str, timeout: float = REQUEST_TIMEOUT, **args) -> dict:
        handle = self.handle(name)
        req_id = self._send(handle, cmd, {k: v for k, v in args.items() if v is not None})
        return self._await_reply(handle, req_id, cmd, timeout)

    def _await_reply(self, handle: AgentHandle, req_id: int, cmd: str, timeout: float) -> dict:
        name = handle.name
        deadline = time.monotonic() + timeout
        with self._reply_cv:
            while req_id not in handle.pending:
                left = deadline - time.monotonic()
                if handle.status != "up":
                    raise AgentError(f"agent {name} went {handle.status} during {cmd}")
                if left <= 0:
                    raise AgentError(f"agent {name} did not answer {cmd} within {timeout:.0f} s")
                self._reply_cv.wait(min(left, 0.5))
            reply = handle.pending.pop(req_id)
        if not reply.get("ok"):
            raise AgentError(f"{name}: {reply.get('error')}")
        return reply.get("result", {})
