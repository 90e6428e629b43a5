"""Starts agent processes by fork from one process that has already imported them.

Python's start-up and the imports of an agent (pjsua2's wrapper, our modules) cost ~0.1 s of
CPU per process: 100 agents, 10 s of a core. This process pays it once, then forks an agent
per request (fork of a process with no threads and no pjsua library yet: the child creates its
own endpoint, as a fresh process would). Only the app talks to it, over stdin/stdout:

    app -> zygote   {"spawn": 1, "config": "<run>/agents/alice.json", "log": "<run>/logs/alice.stderr.log"}
    zygote -> app   {"spawned": 1, "pid": 4242}           or {"spawned": 1, "error": "..."}
    zygote -> app   {"exited": 4242, "returncode": 0}     (-N: killed by signal N)

It stays single-threaded (fork safety) and exits when its stdin closes (the app is gone); its
agents then notice the app is gone by themselves (control channel, parent watch).
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys


def _child(config: str, log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from . import agent
    code = 1
    try:
        code = agent.main(["--config", config])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        from .endpoint import flush_logs   # pjsua's log file (C stdio) too
        flush_logs()
        os._exit(code or 0)


def _send(msg: dict) -> None:
    os.write(1, (json.dumps(msg) + "\n").encode())


def serve() -> int:
    from . import agent  # noqa: F401  (the point: imported once, before any fork)
    # what a party heard is analysed at the end of every call: imported here (+0.2 MiB per
    # idle agent), it is not compiled and imported again by every agent at its first hang-up
    from . import analysis  # noqa: F401
    # numpy loads numpy.fft at its first use (analysis.dominant_frequency): ~3 ms of CPU in
    # every agent's first hang-up (cProfile, 50 calls ending at once), +0.7 MiB here
    import numpy.fft  # noqa: F401
    import pjsua2  # noqa: F401
    children: set[int] = set()
    buf = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.2)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            _send({"exited": pid, "returncode": code})
        if not ready:
            continue
        data = os.read(0, 65536)
        if not data:
            return 0          # the app is gone
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
                pid = os.fork()
            except (ValueError, OSError) as exc:
                _send({"spawned": None, "error": repr(exc)})
                continue
            if pid == 0:
                _child(req["config"], req["log"])
            children.add(pid)
            _send({"spawned": req.get("spawn"), "pid": pid})


if __name__ == "__main__":
    sys.exit(serve())
