"""Agents on other hosts, started and supervised by Ray (issue 22; docs/scaling.md).

Each host of a Ray cluster runs one `AgentHost` actor, pinned there by a custom resource named
after the host (`ray start ... --resources '{"mppsim-h1": 1}'`). The actor starts agent
processes on its host (`python -m mppsim.phone.agent`, exactly as the orchestrator does
locally: pjsua stays one per process) and reports when one exits. The app stays the driver:
`RayLauncher.spawn` replaces `subprocess.Popen` in the orchestrator and returns a `RemoteProc`
with Popen's shape, so supervision, restarts and the control channel are the same code for a
local agent and a remote one. The agents connect back to the app's control address and prove
the run's secret (phone/protocol.py); SIP and RTP go between hosts on the addresses each host
declared.

Ray is an optional extra (`pip install mppsim[cluster]`): imported only here, only when used.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .orchestrator import HOST_LOST  # RemoteProc.returncode of an agent whose host is gone
RESOURCE_PREFIX = "mppsim-"


class HostsFileError(ValueError):
    """A hosts file that cannot be used, with the line and what to change."""


@dataclass
class HostSpec:
    name: str
    address: str                 # what its agents bind and write into SIP and SDP
    capacity: int                # agents it may run (each: ~35 MiB, one process)


def parse_hosts(text: str, source: str = "hosts file") -> list[HostSpec]:
    """`name address capacity` per line (# comments, blank lines allowed), e.g.

        h1  10.0.0.11  100
        h2  10.0.0.12  100
    """
    import ipaddress
    hosts: list[HostSpec] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        where = f"{source}, line {no}"
        if len(parts) != 3:
            raise HostsFileError(f"{where}: {raw.strip()!r}: expected 'name address capacity', "
                                 f"e.g. 'h1 10.0.0.11 100'")
        name, address, cap = parts
        if not name.replace("-", "").replace("_", "").isalnum():
            raise HostsFileError(f"{where}: host name {name!r}: letters, digits, '-' and '_' only")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise HostsFileError(f"{where}: address {address!r} is not an IP address") from None
        if ip.is_loopback or ip.is_unspecified:
            raise HostsFileError(f"{where}: address {address}: agents on other hosts need an address "
                                 f"the others can reach, not {address}")
        try:
            capacity = int(cap)
        except ValueError:
            raise HostsFileError(f"{where}: capacity {cap!r} is not a whole number of agents") from None
        if capacity < 1:
            raise HostsFileError(f"{where}: capacity {capacity}: at least 1 agent")
        if any(h.name == name for h in hosts):
            raise HostsFileError(f"{where}: host {name!r} is named twice")
        if any(h.address == address for h in hosts):
            raise HostsFileError(f"{where}: address {address} is given twice")
        hosts.append(HostSpec(name, address, capacity))
    if not hosts:
        raise HostsFileError(f"{source}: no hosts (one 'name address capacity' per line)")
    return hosts


def place(agents: list[str], hosts: list[HostSpec]) -> dict[str, str]:
    """Agent -> host, by declared capacity: round robin over the hosts that have room, so
    consecutive agents (a call's two parties in `mppsim load` and the benches) land on
    different hosts when there are several. Refused before anything starts when they do not fit."""
    total = sum(h.capacity for h in hosts)
    if len(agents) > total:
        raise HostsFileError(f"{len(agents)} agents asked for, the hosts hold {total} "
                             f"({', '.join(f'{h.name}: {h.capacity}' for h in hosts)})")
    left = {h.name: h.capacity for h in hosts}
    out: dict[str, str] = {}
    i = 0
    for agent in agents:
        while left[hosts[i % len(hosts)].name] == 0:
            i += 1
        host = hosts[i % len(hosts)].name
        out[agent] = host
        left[host] -= 1
        i += 1
    return out


class AgentHost:
    """The Ray actor on one host (a threaded actor: `wait` blocks one thread per agent)."""

    def __init__(self, name: str, address: str, workdir: str):
        self.name, self.address = name, address
        self.workdir = Path(workdir)
        self.procs: dict[str, Any] = {}     # agent -> its Popen, or ForkedProc (zygote)
        self.lock = threading.Lock()
        self.zygote = None                  # app/spawner.py: imports paid once per host

    def info(self) -> dict:
        import socket
        return {"host": self.name, "address": self.address, "hostname": socket.gethostname(),
                "pid": os.getpid(), "cpus": os.cpu_count()}

    def spawn(self, agent: str, config: dict) -> int:
        run = self.workdir / "run"
        (run / "agents").mkdir(parents=True, exist_ok=True)
        (run / "logs").mkdir(parents=True, exist_ok=True)
        config = {**config, "run_dir": str(run), "address": self.address}
        path = run / "agents" / f"{agent}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(config))
        import mppsim
        root = str(Path(mppsim.__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        log = run / "logs" / f"{agent}.stderr.log"
        proc = None
        with self.lock:
            if self.zygote is None or not self.zygote.alive:
                from .spawner import Zygote
                try:
                    self.zygote = Zygote(Path(root), env)
                except OSError:
                    self.zygote = None
            zygote = self.zygote
        if zygote is not None:
            try:
                proc = zygote.spawn(path, log)
            except OSError:
                proc = None
        if proc is None:
            with open(log, "ab") as err:
                proc = subprocess.Popen([sys.executable, "-m", "mppsim.phone.agent", "--config", str(path)],
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env, cwd=root)
        with self.lock:
            self.procs[agent] = proc
        return proc.pid

    def wait(self, agent: str, pid: int) -> int:
        with self.lock:
            proc = self.procs.get(agent)
        if proc is None or proc.pid != pid:
            return 0
        return proc.wait()

    def signal(self, agent: str, pid: int, sig: int) -> None:
        with self.lock:
            proc = self.procs.get(agent)
        if proc is not None and proc.pid == pid and proc.poll() is None:
            proc.send_signal(sig)

    def cpu_seconds(self) -> dict:
        """CPU of this host's agents (and of the actor itself: the engine's share)."""
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu(pid: int) -> float:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                return (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / ticks
            except (OSError, IndexError, ValueError):
                return 0.0
        with self.lock:
            pids = [p.pid for p in self.procs.values() if p.poll() is None]
            zygote = self.zygote.proc.pid if self.zygote is not None else None
        return {"agents": sum(cpu(p) for p in pids) + (cpu(zygote) if zygote else 0.0),
                "actor": cpu(os.getpid()), "live": len(pids)}

    def stop_all(self, timeout: float = 5.0) -> int:
        with self.lock:
            procs = list(self.procs.values())
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        if not os.environ.get("MPPSIM_KEEP_HOST_FILES"):
            # configs (with the run's secret), logs and captures on this host: the app has had
            # what it reports (call summaries come over the control channel)
            import shutil
            shutil.rmtree(self.workdir, ignore_errors=True)
            for folder in (self.workdir.parent, self.workdir.parent.parent):   # the run's, the default's
                try:
                    folder.rmdir()      # only when empty: another run's hosts may still use it
                except OSError:
                    break
        return len(procs)


class RemoteProc:
    """An agent process on another host, with the part of Popen the orchestrator uses."""

    def __init__(self, launcher: "RayLauncher", host: str, agent: str, pid: int):
        self.launcher, self.host, self.agent, self.pid = launcher, host, agent, pid
        self.returncode: int | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._await_exit, name=f"mppsim-remote-{agent}", daemon=True).start()

    def _await_exit(self) -> None:
        self._exited(self.launcher.wait(self.host, self.agent, self.pid))

    def _exited(self, code: int) -> None:
        with self._lock:
            if self.returncode is None:
                self.returncode = code
                self._done.set()

    def channel_lost(self) -> None:
        """Its control channel closed unasked. When its host says nothing of an exit within
        a moment, the host is taken for lost: a host that dies takes Ray's health checks ~30 s
        to be declared dead, and its agents' connections closed at once."""
        def check():
            if self._done.wait(2.0):
                return
            if not self.launcher.alive(self.host):
                self._exited(HOST_LOST)
        threading.Thread(target=check, daemon=True).start()

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"agent {self.agent} on {self.host}", timeout)
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self.launcher.signal(self.host, self.agent, self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


@dataclass
class RayLauncher:
    """Starts agents on the hosts of a Ray cluster (the orchestrator's `launcher`)."""
    address: str                                  # the Ray cluster: "10.0.0.1:6379"
    hosts: list[HostSpec]
    workdir: str = "/tmp/mppsim-cluster"          # on each host: configs, logs, captures
    on_host_down: Callable[[str, str], None] = lambda _host, _why: None
    placement: dict[str, str] = field(default_factory=dict)
    actors: dict[str, Any] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)    # host -> why
    started: set[str] = field(default_factory=set)
    closing: bool = False
    node_ip: str | None = None         # this (the driver's) host's address in the Ray cluster

    def start(self, agents: list[str]) -> None:
        import ray
        # refused here, before anything runs; a placement given (benches) covers some agents
        given = {a: h for a, h in self.placement.items() if a in agents}
        rest = [a for a in agents if a not in given]
        room = [HostSpec(h.name, h.address, h.capacity - list(given.values()).count(h.name))
                for h in self.hosts]
        if any(h.capacity < 0 for h in room):
            raise HostsFileError("the placement given puts more agents on a host than its capacity")
        self.placement = {**given, **place(rest, [h for h in room if h.capacity > 0] or room)}
        if not ray.is_initialized():
            extra = {"_node_ip_address": self.node_ip} if self.node_ip else {}
            ray.init(address=self.address, log_to_driver=False, logging_level="ERROR", **extra)
        actor_cls = ray.remote(AgentHost)
        run = f"{self.workdir}/{os.getpid()}-{int(time.time())}"
        known = {r for node in ray.nodes() if node.get("Alive") for r in node.get("Resources", {})}
        for h in self.hosts:
            if RESOURCE_PREFIX + h.name not in known:
                raise HostsFileError(f"host {h.name}: no live Ray node declares the resource "
                                     f"{RESOURCE_PREFIX + h.name} (ray start ... --resources "
                                     f"'{{\"{RESOURCE_PREFIX + h.name}\": 1}}')")
            self.actors[h.name] = actor_cls.options(
                resources={RESOURCE_PREFIX + h.name: 0.01}, num_cpus=0, max_concurrency=1024,
                max_restarts=0).remote(h.name, h.address, f"{run}/{h.name}")
        for name, actor in self.actors.items():
            try:
                ray.get(actor.info.remote(), timeout=60)
            except Exception as exc:   # noqa: BLE001 - Ray's actor and timeout errors
                raise HostsFileError(f"host {name}: its agent host did not start "
                                     f"({type(exc).__name__}); is its Ray node up?") from None

    def agents_of(self, host: str) -> list[str]:
        return [a for a, h in self.placement.items() if h == host]

    def spawn(self, agent: str, config: dict) -> RemoteProc:
        import ray
        host = self.placement[agent]
        if agent in self.started and host not in self.down:
            self.alive(host)                  # a restart: is its host still there?
        self.started.add(agent)
        if host in self.down:                 # its host is gone: another one with room
            used = {h: list(self.placement.values()).count(h) for h in self.actors}
            spare = [h for h in self.hosts if h.name not in self.down and used.get(h.name, 0) < h.capacity]
            if not spare:
                raise OSError(f"host {host} is lost and no other host has room for {agent}")
            host = self.placement[agent] = spare[0].name
        try:
            pid = ray.get(self.actors[host].spawn.remote(agent, config), timeout=30)
        except Exception as exc:   # noqa: BLE001 - Ray's actor errors: the host is gone
            self._lost(host, f"{type(exc).__name__}")
            raise OSError(f"host {host} could not start {agent}: {type(exc).__name__}") from None
        return RemoteProc(self, host, agent, pid)

    def wait(self, host: str, agent: str, pid: int) -> int:
        import ray
        try:
            return int(ray.get(self.actors[host].wait.remote(agent, pid)))
        except Exception as exc:   # noqa: BLE001
            self._lost(host, type(exc).__name__)
            return HOST_LOST

    def alive(self, host: str, timeout: float = 2.0) -> bool:
        """The host's actor answers (else the host is marked lost)."""
        import ray
        if host in self.down:
            return False
        try:
            ray.get(self.actors[host].info.remote(), timeout=timeout)
            return True
        except Exception as exc:   # noqa: BLE001
            self._lost(host, f"no answer in {timeout:g} s ({type(exc).__name__})")
            return False

    def signal(self, host: str, agent: str, pid: int, sig: int) -> None:
        import ray
        try:
            ray.get(self.actors[host].signal.remote(agent, pid, int(sig)), timeout=10)
        except Exception:   # noqa: BLE001 - its host is gone: so is the agent
            pass

    def _lost(self, host: str, why: str) -> None:
        if host not in self.down and not self.closing:
            self.down[host] = why
            self.on_host_down(host, why)

    def usage(self) -> dict[str, dict]:
        import ray
        out = {}
        for name, actor in self.actors.items():
            if name in self.down:
                continue
            try:
                out[name] = ray.get(actor.cpu_seconds.remote(), timeout=10)
            except Exception:   # noqa: BLE001
                self._lost(name, "no answer")
        return out

    def close(self) -> None:
        import ray
        self.closing = True
        for name, actor in self.actors.items():
            if name not in self.down:
                try:
                    ray.get(actor.stop_all.remote(), timeout=10)
                except Exception:   # noqa: BLE001
                    pass
            try:
                ray.kill(actor)
            except Exception:   # noqa: BLE001
                pass
        self.actors.clear()
        if ray.is_initialized():
            ray.shutdown()
