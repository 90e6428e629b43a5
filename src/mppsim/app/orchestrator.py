"""Starts, supervises and stops the agent processes, and carries requests and events.

No Qt and no pjsua2 here: the agents are child processes (`python -m mppsim.phone.agent`) that connect
back to a control socket this class listens on (docs/protocol.md). Events arrive on reader
threads and go to the subscribers; a subscriber must be quick (the Qt bridge queues them).
"""
from __future__ import annotations

import ipaddress
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

from mppsim.phone import protocol
from mppsim.phone.protocol import Channel, ChannelClosed

from .org import Org
from .ports import PortPlan
from .spawner import Zygote
from mppsim import IMPORT_ROOT, child_env

START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 10.0
# Supervision (docs/decisions.md): a dead agent is started again after RESTART_DELAY, at most
# MAX_RESTARTS times in RESTART_WINDOW seconds (an agent that keeps dying stays down, as an
# Erlang supervisor or Ray's max_restarts would leave it).
RESTART_DELAY = 0.3
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
HOST_LOST = -1000                # the returncode of an agent whose cluster host is gone (app/cluster.py)
AGENT_LOST = "agent down"        # the `reason` of a dead agent's calls (its own leg)
FAR_END_LOST = "far end lost"    # the `reason` at the other parties (docs/protocol.md)


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
    live_calls: dict[str, dict] = field(default_factory=dict)   # call key -> its last `call` event
    restarts: list[float] = field(default_factory=list)         # when the supervisor restarted it
    restarted_by: str | None = None    # "supervisor" | "user", for the next agent_up

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


def directory_of(specs: list[AgentSpec], host: str = "127.0.0.1") -> dict[str, str]:
    """Dialled string -> SIP URI of the line that owns it (E.164 also without '+')."""
    out = {}
    for spec in specs:
        for line in spec.lines:
            if not line.get("sip_port"):
                continue   # not bound yet: its agent has not said hello
            uri = f"sip:{line['extension']}@{line.get('host', host)}:{line['sip_port']}"
            out[line["extension"]] = uri
            if line["extension"].startswith("+"):
                out[line["extension"][1:]] = uri
        if spec.lines and spec.lines[0].get("sip_port"):
            for alias in spec.aliases:    # a feature's E.164 number beside its extension
                first = spec.lines[0]
                out[alias] = out[alias.lstrip("+")] = (
                    f"sip:{first['extension']}@{first.get('host', host)}:{first['sip_port']}")
    return out


KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 2, 1, 3     # s, s, probes: ~5 s


def keep_alive(sock: socket.socket) -> None:
    """A control connection from another host fails within ~5 s when that host stops answering
    (power lost, cable pulled: no FIN, no RST), instead of staying open until Ray's health
    check declares the node dead (~30 s). Idle, TCP probes it every second after 2 s of
    silence; with a command unacknowledged, TCP_USER_TIMEOUT gives up after the same 5 s. The
    agent's host kernel answers the probes, so a live host's connection never fails this way."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
                        ("TCP_USER_TIMEOUT", 1000 * (KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT))):
        if hasattr(socket, name):            # Linux; elsewhere the system's defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


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
                 supervise: bool = True, control_tls: bool = False,
                 launcher: Any = None, control_host: str = "127.0.0.1",
                 compliance_for: Callable[[str], dict] | None = None,
                 rtp_thread: bool = False):
        self.org = org
        # agents on other hosts (app/cluster.py RayLauncher): spawn(name, config) -> a Popen-like
        self.launcher = launcher
        if launcher is not None:
            launcher.on_host_down = lambda host, why: self.publish(
                {"event": "host_down", "host": host, "why": why, "ts": time.time(),
                 "agents": launcher.agents_of(host)})
        self.control_host = control_host     # the listener's address: routable for a cluster
        # who may command the agents (phone/protocol.py): this run's secret, in their configs
        self.secret = protocol.new_secret()
        # TLS as well when the channel leaves the machine (a cluster), or when asked
        self.control_tls = (control_tls or launcher is not None
                            or os.environ.get("MPPSIM_CONTROL_TLS", "") == "1")
        self._tls_context = None
        self.tls_fingerprint: str | None = None
        self.refused: list[dict] = []      # control connections refused (also a `control_refused` event)
        # restart an agent that dies (kill -9, a crash); False leaves it down until restart()
        self.supervise = supervise
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
        self.rtp_thread = rtp_thread     # agents read RTP on pjmedia's own thread (load runs)
        # issue 21: agents bind and advertise the org's network address; the control channel
        # below stays on 127.0.0.1 (unauthenticated)
        self.address = org.network.address
        self.ports = PortPlan(host=self.address, span=org.network.rtp_ports)
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
        self._listener.bind((self.control_host, 0))
        self._listener.listen(64)
        if self.control_tls:
            self._start_tls()
        self.control_port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="mppsim-accept", daemon=True)
        self._accept_thread.start()
        for spec in self.specs:
            self.agents[spec.name] = AgentHandle(spec, self.run_dir / "agents" / f"{spec.name}.json")
        if self.launcher is not None:
            try:
                self.launcher.start(list(self.agents))    # places them; refuses what the hosts cannot hold
            except Exception:
                self.stop()
                raise
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
        host = vm.spec.lines[0].get("host", self.address) if vm else self.address
        return f"sip:{{mailbox}}@{host}:{port}" if port else None

    def _publish_directory(self) -> None:
        """Every agent learns the ports the others bound (from their hellos): the directory
        and the voicemail address. Requests go out to all agents before any answer is awaited."""
        self.directory.clear()
        self.directory.update(directory_of(self.specs, self.address))
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
            "agent": spec.name, "kind": spec.kind,
            "lines": [{k: v for k, v in line.items() if k != "host"} for line in spec.lines],
            "voicemail": self._voicemail_uri() if spec.kind in ("user", "feature") else None,
            "mailboxes": ({ext: line for ext, line in mailboxes(self.org).items()}
                          if spec.kind == "voicemail" else {}),
            "control": f"{self.control_host}:{self.control_port}", "run_dir": str(self.run_dir),
            "control_secret": self.secret, "control_tls_sha256": self.tls_fingerprint,
            "address": self.address, "tls_ca": self.org.network.tls_ca, "srtp": self.org.network.srtp,
            "directory": self.directory, "ring_timeout": self.org.ring_timeout,
            "auto_answer": spec.auto_answer, "log_level": self.log_level,
            "kinds": kinds_of(self.org),
            "names": names_of(self.org),
            "recording": self.recording_for(spec.name) if spec.kind in ("user", "voicemail") else {},
            "recorder": self.recorder_for(spec.name) if spec.kind in ("user", "voicemail") else None,
            "nice": agent_nice(len(self.specs)),
            "rtp_thread": self.rtp_thread,
        }
        if spec.kind == "feature":
            feature = self.org.feature(spec.name)
            config["feature"] = {**feature.config(), "compliance": self.compliance_for(feature.location)}
        handle.config_path.parent.mkdir(parents=True, exist_ok=True)
        # the run's secret is in it: readable by this user only, from its first byte
        fd = os.open(handle.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(config, indent=2))
        handle.stderr_path = self.run_dir / "logs" / f"{spec.name}.stderr.log"
        handle.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        env = child_env()
        handle.ready.clear()
        handle.status = "starting"
        handle.started_at = time.monotonic()
        handle.proc = None
        if self.launcher is not None:
            handle.proc = self.launcher.spawn(spec.name, config)   # OSError: no host for it
            handle.pid = handle.proc.pid
            threading.Thread(target=self._watch_process, args=(handle, handle.proc),
                             name=f"mppsim-watch-{spec.name}", daemon=True).start()
            return
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

    def _start_tls(self) -> None:
        """A certificate made for this run; agents pin it by fingerprint (their config)."""
        import ssl
        from mppsim.recorder.transport import self_signed_context
        folder = self.run_dir / "control-tls"
        self._tls_context = self_signed_context(folder, "127.0.0.1")
        pem = next(folder.glob("*-cert.pem")).read_text()
        self.tls_fingerprint = protocol.cert_fingerprint(ssl.PEM_cert_to_DER_cert(pem))

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not ipaddress.ip_address(peer[0]).is_loopback:
                keep_alive(sock)
            threading.Thread(target=self._serve_connection, args=(sock, peer), daemon=True).start()

    def _serve_connection(self, sock: socket.socket, peer: tuple) -> None:
        """One control connection: TLS if on, the handshake (phone/protocol.py), then _reader."""
        where = f"{peer[0]}:{peer[1]}"
        if self._tls_context is not None:
            sock.settimeout(protocol.HANDSHAKE_TIMEOUT)
            try:
                sock = self._tls_context.wrap_socket(sock, server_side=True)
            except OSError as exc:
                self._refuse(None, where, None, f"TLS handshake failed: {exc}")
                sock.close()
                return
            sock.settimeout(None)
        chan = Channel(sock)
        nonce = protocol.new_nonce()
        try:
            chan.send({"challenge": nonce, "auth": protocol.AUTH_SCHEME})
            hello = chan.read_message()
        except (ChannelClosed, OSError, ValueError) as exc:
            self._refuse(chan, where, None, f"no hello: {exc}")
            return
        name = hello.get("agent")
        if hello.get("event") != "hello" or name not in self.agents:
            self._refuse(chan, where, name, "the first line is not the hello of an agent of this run")
            return
        theirs = hello.get("nonce")
        if not isinstance(theirs, str) or not protocol.proof_ok(self.secret, hello.get("proof"), "agent",
                                                                name, nonce, theirs):
            self._refuse(chan, where, name, "its hello does not prove this run's secret")
            return
        try:
            chan.send({"welcome": protocol.proof(self.secret, "app", name, theirs, nonce)})
        except ChannelClosed:
            return
        chan.pending.insert(0, hello)
        self._reader(chan)

    def _refuse(self, chan: Channel | None, where: str, agent: str | None, why: str) -> None:
        """A control connection that is not one of this run's agents: closed, logged, published."""
        if chan is not None:
            chan.close()
        ev = {"event": "control_refused", "peer": where, "agent": agent, "why": why, "ts": time.time()}
        self.refused.append(ev)
        print(f"mppsim: refused a control connection from {where}"
              + (f" claiming to be {agent}" if agent else "") + f": {why}", file=sys.stderr)
        self.publish(ev)

    def _reader(self, chan: Channel) -> None:
        handle: AgentHandle | None = None
        for msg in chan.messages():
            if handle is None:
                if msg.get("event") != "hello" or msg.get("agent") not in self.agents:
                    chan.close()
                    return
                handle = self.agents[msg["agent"]]
                for key in ("auth", "nonce", "proof"):
                    msg.pop(key, None)
                self._learn_ports(handle, msg)
                handle.chan = chan
                handle.status = "up"
                handle.ready_at = time.monotonic()
                handle.ready.set()
                up = {**msg, "event": "agent_up"}
                if handle.restarted_by:
                    up.update(restarted_by=handle.restarted_by, restarts=len(handle.restarts))
                    handle.restarted_by = None
                self.publish(up)
                continue
            if "reply" in msg:
                with self._reply_cv:
                    handle.pending[msg["reply"]] = msg
                    self._reply_cv.notify_all()
            else:
                if msg.get("event") == "call" and "call" in msg:
                    if msg.get("state") == "ended":
                        handle.live_calls.pop(msg["call"], None)
                    else:
                        handle.live_calls[msg["call"]] = msg
                self.publish(msg)
        chan.close()
        if handle is not None and handle.chan is chan and not self.stopping:
            lost = getattr(handle.proc, "channel_lost", None)   # a remote agent (app/cluster.py)
            if lost is not None:
                lost()

    @staticmethod
    def _learn_ports(handle: AgentHandle, hello: dict) -> None:
        """The SIP port each line bound, from the agent's hello (an older agent that says
        nothing keeps the planned port)."""
        bound = {line.get("id"): line for line in hello.get("lines", [])}
        for line in handle.spec.lines:
            port = bound.get(line["id"], {}).get("sip_port")
            if port:
                line["sip_port"] = int(port)
            uri = bound.get(line["id"], {}).get("uri", "")
            host = uri.rsplit("@", 1)[-1].rsplit(":", 1)[0] if "@" in uri else ""
            if host:
                line["host"] = host      # where its agent runs (a cluster host's address)

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
            restart = self._may_restart(handle)
            host = getattr(proc, "host", None)        # an agent of a cluster host
            detail = self._stderr_tail(handle)
            if host is not None and code == HOST_LOST:
                detail = f"its host {host} is lost"
            self.publish({"event": "agent_down", "agent": handle.name, "returncode": code,
                          "ts": time.time(), "detail": detail, "restarting": restart,
                          **({"host": host} if host is not None else {})})
            self._calls_lost(handle)
            self._announce_unavailable()
            if restart:
                self._restart_supervised(handle)
        else:
            handle.live_calls.clear()

    def _may_restart(self, handle: AgentHandle) -> bool:
        if not self.supervise or self.stopping:
            return False
        now = time.monotonic()
        handle.restarts[:] = [t for t in handle.restarts if now - t < RESTART_WINDOW]
        return len(handle.restarts) < MAX_RESTARTS

    def _calls_lost(self, handle: AgentHandle) -> None:
        """A dead agent's calls: its own legs end (`agent down`, published for it: it cannot say
        so itself) and the agents on their far ends hang up (`far end lost`) at once instead of
        staying connected to a phone that is gone. The survivors learn it here, on the control
        channel, and not from an RTP timeout: the app saw the death first (docs/decisions.md)."""
        lost, handle.live_calls = handle.live_calls, {}
        now = time.time()
        for ev in lost.values():
            self.publish({**ev, "state": "ended", "reason": AGENT_LOST, "ended_by": "crash",
                          "ended_at": now, "ts": now, "held_by": None})
        for line in handle.spec.lines:
            self.publish({"event": "line", "agent": handle.name, "line": line["id"], "state": "idle",
                          "ts": now})
        ids = {ev.get("sip_call_id") for ev in lost.values()} - {None, ""}
        if not ids:
            return
        sent = []
        for h in list(self.agents.values()):
            if h is handle or h.status != "up":
                continue
            theirs = sorted(ids & {ev.get("sip_call_id") for ev in h.live_calls.values()})
            if not theirs:
                continue
            try:
                sent.append((h, self._send(h, "far_end_lost", {"sip_call_ids": theirs,
                                                               "agent": handle.name})))
            except AgentError:
                pass
        for h, req_id in sent:
            try:
                self._await_reply(h, req_id, "far_end_lost", 2.0)
            except AgentError:
                pass   # an older agent (unknown command) or one going down itself

    def _restart_supervised(self, handle: AgentHandle) -> None:
        handle.restarts.append(time.monotonic())

        def run():
            time.sleep(RESTART_DELAY)
            if self.stopping or handle.status != "down":
                return    # stopping, or restarted by hand meanwhile
            handle.restarted_by = "supervisor"
            try:
                self._spawn(handle)
            except OSError as exc:
                handle.status = "down"
                self.publish({"event": "log", "agent": handle.name, "level": "error",
                              "text": f"restart failed: {exc}", "ts": time.time()})
                return
            if handle.ready.wait(START_TIMEOUT) and not self.stopping:
                self._publish_directory()
                self._announce_unavailable()
        threading.Thread(target=run, name=f"mppsim-restart-{handle.name}", daemon=True).start()

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
        if handle.status != "starting":   # else the supervisor is restarting it: wait for that
            handle.restarted_by = "user"
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
        if self.launcher is not None:
            self.launcher.close()

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
