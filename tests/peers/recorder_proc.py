"""Starts `mppsim-recorder` on a free port and learns its ports from its READY line
(/work/coord/recorder-interface.md, docs/store.md): what the SIPp tests, the hostile-input tests and
bench/recorder_load.py point their clients at.

    rec = start_recorder(tmp_path / "store", "--rtp-timeout", "2")
    rec.sip            # "127.0.0.1:40123" (UDP and TCP)
    rec.rows()         # the store's index, as mppsim.recorder.store.Store.list() gives it
    rec.stop()
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Recorder:
    proc: subprocess.Popen
    store: Path
    log_path: Path
    ready: dict = field(default_factory=dict)

    @property
    def sip(self) -> str:
        return self.ready["sip"]

    @property
    def host(self) -> str:
        return self.sip.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.sip.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rows(self) -> list[dict]:
        from mppsim.recorder.store import Store
        return Store(self.store).list()

    def wait_rows(self, predicate, timeout: float = 10.0, what: str = "recordings") -> list[dict]:
        """Rows matching `predicate` once at least one does (and all of them are settled)."""
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            rows = [r for r in self.rows() if predicate(r)]
            if rows:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"no {what} in the index after {timeout} s; recorder log tail:\n"
                             + "\n".join(self.log().splitlines()[-30:]))

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_recorder(store: Path, *args: str, timeout: float = 20.0, cwd: Path | None = None,
                   listen: str = "127.0.0.1:0", prefix: tuple[str, ...] = ()) -> Recorder:
    """`python -m mppsim.recorder.cli --listen 127.0.0.1:0 --store STORE ARGS...`, ready to take calls.

    MPPSIM_RECORDER_CMD replaces `python -m mppsim.recorder.cli` (another build of the recorder);
    `prefix` runs it under another command (`ip netns exec NS`: an SRS on another host)."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    log_path = store.parent / f"{store.name}-recorder.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = open(log_path, "w")
    program = os.environ.get("MPPSIM_RECORDER_CMD", f"{sys.executable} -m mppsim.recorder.cli").split()
    proc = subprocess.Popen([*prefix, *program, "--listen", listen,
                             "--store", str(store), *args], cwd=cwd or ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    rec = Recorder(proc, store, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in rec.log().splitlines():
            if line.startswith("READY "):
                rec.ready = json.loads(line[len("READY "):])
                return rec
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    rec.stop()
    raise RuntimeError(f"mppsim-recorder did not report READY within {timeout} s "
                       f"(exit {proc.returncode}); log:\n{rec.log()[-3000:]}")
