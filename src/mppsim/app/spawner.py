"""The app's side of phone/zygote.py: agent processes forked from a pre-imported process.

`Zygote.spawn` returns a `ForkedProc` that the orchestrator uses like a `subprocess.Popen`
(pid, wait, poll, kill, returncode): the zygote reports each agent's exit. When the zygote
cannot start, the orchestrator falls back to one `subprocess.Popen` per agent.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


class ForkedProc:
    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._done = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"agent {self.pid}", timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    def __init__(self, cwd: Path, env: dict[str, str], start_timeout: float = 20.0):
        self.proc = subprocess.Popen([sys.executable, "-m", "mppsim.phone.zygote"], cwd=str(cwd), env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                     process_group=0)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cv = threading.Condition()
        self._replies: dict[int, dict] = {}
        self._procs: dict[int, ForkedProc] = {}
        self._early_exits: dict[int, int] = {}
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="mppsim-zygote", daemon=True)
        self._reader.start()
        self.start_timeout = start_timeout

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cv:
                if "spawned" in msg:
                    if msg.get("pid"):
                        proc = ForkedProc(msg["pid"])
                        self._procs[proc.pid] = proc
                        msg["proc"] = proc
                    self._replies[msg["spawned"]] = msg
                    self._cv.notify_all()
                elif "exited" in msg:
                    proc = self._procs.pop(msg["exited"], None)
                    if proc is not None:
                        proc._exited(msg["returncode"])
        with self._cv:        # the zygote is gone: nobody will report exits any more
            self.alive = False
            for proc in self._procs.values():
                proc._exited(-1)
            self._procs.clear()
            self._cv.notify_all()

    def spawn(self, config: Path, log: Path) -> ForkedProc:
        req_id = next(self._ids)
        with self._lock:
            self.proc.stdin.write(json.dumps({"spawn": req_id, "config": str(config), "log": str(log)})
                                  .encode() + b"\n")
            self.proc.stdin.flush()
        with self._cv:
            if not self._cv.wait_for(lambda: req_id in self._replies or not self.alive, self.start_timeout):
                raise OSError("the agent zygote did not answer")
            if req_id not in self._replies:
                raise OSError("the agent zygote is gone")
            reply = self._replies.pop(req_id)
        if "proc" not in reply:
            raise OSError(f"the agent zygote could not fork: {reply.get('error')}")
        return reply["proc"]

    def close(self, timeout: float = 5.0) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
