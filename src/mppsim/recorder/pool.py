"""`mppsim-recorder --workers N`: N recorder processes behind one SIP port.

One process runs one event loop and, with the GIL, about one core; in a burst of new sessions
from an SRC that opens many connections (SIPp at 400 INVITEs a second, one TCP connection per
call) its SIP thread is what the last session waits for: two workers answered at p99 24-128 ms
against 148-360 with one (docs/decisions.md). Not in mppsim's own load runs, where the agents
are the limit and the app keeps one process. With N workers:

- the first worker (this process, "w0") binds UDP, TCP and TLS as it always did and prints the
  READY line once every other worker is listening too;
- workers w1..wN-1 are child processes (``python -m mppsim.recorder.cli`` with the hidden
  ``--worker-name``): they bind the same TCP port (and TLS port) with SO_REUSEPORT, so the kernel
  spreads new connections over all N. UDP stays with w0: the kernel spreads UDP by a hash over
  the sockets bound at that moment, and a worker that came or went would move the dialogs of the
  others to a process that does not know them;
- each worker has its own sessions, RTP ports, limits (--max-sessions is per worker), status file
  (``--stats`` lists them all) and SQLite connection to the one store;
- a worker that dies is started again (its unfinished recordings repaired `truncated` by the new
  one, as after any crash); w0 ending (SIGTERM, or killed) ends them all.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

from mppsim import child_env

MAX_WORKERS = 16


def child_argv(args, host: str, port: int, tls_port: int | None, name: str) -> list[str]:
    """The command line of worker ``name``: the first worker's settings, on its ports."""
    argv = [sys.executable, "-m", "mppsim.recorder.cli", "--listen", f"{host}:{port}",
            "--store", str(args.store), "--worker-name", name, "--exit-with-parent",
            "--rtp-timeout", str(args.rtp_timeout), "--max-sessions", str(args.max_sessions),
            "--min-se", str(args.min_se), "--status-every", str(args.status_every)]
    if args.min_free is not None:
        argv += ["--min-free", str(args.min_free)]
    if args.rtp_ports:
        argv += ["--rtp-ports", args.rtp_ports]
    if tls_port:
        argv += ["--tls", "--tls-port", str(tls_port)]
    return argv


class WorkerPool:
    """The further workers of one recorder, as children of the first."""

    def __init__(self, args, host: str, port: int, tls_port: int | None, count: int):
        self.argvs = {f"w{i}": child_argv(args, host, port, tls_port, f"w{i}") for i in range(1, count)}
        self.procs: dict[str, subprocess.Popen] = {}
        self.ready: dict[str, threading.Event] = {}
        self.stopping = False
        self._lock = threading.Lock()        # a restart and stop() never cross

    def start(self, timeout: float = 30.0) -> list[int]:
        """Start every further worker; return their pids once all listen."""
        for name in self.argvs:
            self._spawn(name)
        deadline = time.monotonic() + timeout
        for name, event in self.ready.items():
            if not event.wait(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"recorder worker {name} did not start within {timeout:.0f} s")
        return [p.pid for p in self.procs.values()]

    def _spawn(self, name: str) -> None:
        env = child_env()
        self.ready[name] = threading.Event()
        proc = subprocess.Popen(self.argvs[name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        self.procs[name] = proc
        threading.Thread(target=self._pump, args=(name, proc), daemon=True,
                         name=f"worker-{name}").start()

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        """Pass the worker's output on (one log for the recorder); notice READY and death."""
        started = time.monotonic()
        for line in proc.stdout:
            if line.startswith("READY "):
                self.ready[name].set()
                continue
            sys.stdout.write(line)
            sys.stdout.flush()
        code = proc.wait()
        if self.stopping:
            return
        print(f"mppsim-recorder: worker {name} (pid {proc.pid}) exited with {code}; starting it again",
              flush=True)
        if time.monotonic() - started < 5.0:
            time.sleep(1.0)              # never a tight restart loop
        with self._lock:
            if not self.stopping:
                self._spawn(name)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every worker (each ends its sessions as the first does) and wait for them."""
        with self._lock:
            self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

def ready_info(info: dict, pids: list[int]) -> dict:
    """The READY line of a pool: the first worker's, plus every worker's pid."""
    return dict(info, workers=[info["pid"], *pids])

