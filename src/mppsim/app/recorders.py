"""The embedded recorder (`mppsim-recorder`) as a child of the app.

One recorder process (`python -m mppsim.recorder.cli`, the asyncio engine) records every session
of the app; it binds a free port itself (`--listen 127.0.0.1:0`) and reports it on its READY
line, which is how the app learns its address. The app hands every agent that address, watches
the process, and reports it when it dies so the agents fail their sessions (the call goes on,
per failureBehavior); then it starts it again. The class keeps the name and shape of the
worker pool it replaced (`workers[0]` is the one recorder, named "w0").
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mppsim.rules import providers as P

from .ports import PortPlan
from mppsim import IMPORT_ROOT, child_env

SESSIONS_PER_WORKER = 1000    # the asyncio recorder's --max-sessions


@dataclass
class WorkerProc:
    name: str
    port: int = 0                  # learnt from the READY line
    proc: subprocess.Popen | None = None
    ready: threading.Event | None = None
    status: str = "stopped"        # starting | up | down | stopped
    spawned_at: float = 0.0
    host: str = "127.0.0.1"        # issue 21: the run's address

    @property
    def target(self) -> str:
        return f"sip:srs@{self.host}:{self.port};transport=tcp"


def workers_needed(users: int) -> int:
    """One recorder process serves every user (hundreds of sessions)."""
    return max(1, math.ceil(users / SESSIONS_PER_WORKER))


class RecorderWorkers:
    def __init__(self, store_dir: Path, count: int, ports: PortPlan, log_dir: Path,
                 on_down: Callable[[WorkerProc, int], None] | None = None,
                 on_moved: Callable[[WorkerProc], None] | None = None, host: str = "127.0.0.1",
                 rtp_ports: tuple[int, int] | None = None, processes: int = 1):
        self.store_dir = Path(store_dir)
        self.processes = processes      # mppsim-recorder --workers: processes behind its port
        self.log_dir = Path(log_dir)
        self.workers = [WorkerProc(f"w{i}", host=host) for i in range(count)]   # ports: each binds its own
        self.rtp_ports = rtp_ports
        self.on_down = on_down or (lambda _w, _code: None)
        # a restarted recorder that could not get its old port back: the agents need the new one
        self.on_moved = on_moved or (lambda _w: None)
        self.stopping = False

    def target_for(self, index: int) -> str:
        return self.workers[index % len(self.workers)].target

    def start(self, timeout: float = 45.0) -> None:   # ~1 s normally; generous under load
        self.store_dir.mkdir(parents=True, exist_ok=True)
        for w in self.workers:
            self._spawn(w)
        deadline = time.monotonic() + timeout
        for w in self.workers:
            while not w.ready.wait(0.2):       # re-read: a respawn gives the worker a new event
                if time.monotonic() > deadline:
                    raise RuntimeError(f"recorder worker {w.name} did not start; see {self.log_dir}")

    def _spawn(self, w: WorkerProc, port: int | None = None) -> None:
        env = child_env()
        w.ready = threading.Event()
        w.status = "starting"
        w.spawned_at = time.monotonic()
        w.proc = subprocess.Popen(
            # the same port again after a restart (agents keep their target), else a free one
            [sys.executable, "-m", "mppsim.recorder.cli", "--listen",
             f"{w.host}:{w.port if port is None else port}",
             "--store", str(self.store_dir), "--exit-with-parent", "--workers", str(self.processes)]
            + (["--rtp-ports", f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"] if self.rtp_ports else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=str(IMPORT_ROOT), env=env,
            process_group=0)   # a terminal's Ctrl-C goes to the app, which stops us in order
        threading.Thread(target=self._pump, args=(w, w.proc), daemon=True,
                         name=f"mppsim-recorder-{w.name}").start()

    def _pump(self, w: WorkerProc, proc: subprocess.Popen) -> None:
        """Copy the worker's output to its log; notice readiness and death."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"recorder-{w.name}.log", "a") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if line.startswith("READY "):
                    try:
                        port = int(json.loads(line[6:])["sip"].rsplit(":", 1)[1])
                    except (ValueError, KeyError, IndexError):
                        continue
                    moved, w.port = bool(w.port) and port != w.port, port
                    w.status = "up"
                    w.ready.set()
                    if moved:
                        self.on_moved(w)
        code = proc.wait()
        if w.proc is proc:
            w.status = "stopped" if self.stopping else "down"
            if w.status == "down":
                self.on_down(w, code)
                # Back up at once, as mppsim-recorder does: the new worker repairs what the
                # dead one left (truncated), and the next calls are recorded again.
                if not self.stopping:
                    if not w.ready.is_set():
                        # died before listening (its port taken meanwhile?): a free port,
                        # after a pause, never a tight restart loop
                        time.sleep(1.0)
                        self._spawn(w, port=0)
                    else:
                        self._spawn(w)

    def kill(self, name: str) -> None:
        """kill -9 a worker (tests: the recorder crashing mid-call)."""
        w = self.worker(name)
        w.proc.kill()
        w.proc.wait()

    def restart(self, name: str, timeout: float = 20.0) -> None:
        """Wait for a worker to be up again (it restarts by itself after a crash)."""
        w = self.worker(name)
        if w.proc is None or w.proc.poll() is not None:
            self._spawn(w)
        if not w.ready.wait(timeout):
            raise RuntimeError(f"recorder worker {name} did not restart")

    def worker(self, name: str) -> WorkerProc:
        for w in self.workers:
            if w.name == name:
                return w
        raise KeyError(f"no recorder worker {name!r}; workers: {', '.join(x.name for x in self.workers)}")

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping = True
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.terminate()
        deadline = time.monotonic() + timeout
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            w.status = "stopped"


def write_provider_info(store_dir: Path, org_settings: dict) -> None:
    """What the recorder knows of the provider side (R-PRV-6, R-USR-7): which provider and
    tier, whether its accounts are provisioned by hand, and those accounts by External
    Identifier. Written atomically; the workers read it for every new session."""
    provider = org_settings.get("provider")
    try:
        manual = P.profile(provider).provisioning == P.MANUAL
    except KeyError:
        manual = False
    users = (org_settings.get("accounts", {}).get(provider) or {}).get("users", {})
    accounts = {a.get("externalIdentifier", line): a for line, a in users.items() if a}
    info = {"provider": provider, "tier": org_settings.get("tier", ""), "manual": manual,
            "accounts": accounts}
    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = store_dir / "provider.json.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(store_dir / "provider.json")
