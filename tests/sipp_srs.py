"""SIPp (Debian sip-tester, /usr/bin/sipp) as an SRS that is not mppsim's: it answers SIPREC
sessions with tests/data/sipp/srs-uas.xml and logs every message it receives (-trace_msg).

SIPp cannot bind port 0, so the port is picked free and SIPp restarted on another one if it
lost the race (it exits when it cannot bind)."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from recording import siprec_wire as W

SCENARIO = Path(__file__).parent / "data" / "sipp" / "srs-uas.xml"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SippSrs:
    def __init__(self, workdir: Path, calls: int = 1):
        self.workdir = workdir
        self.calls = calls
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.trace = workdir / "sipp-messages.log"

    def start(self) -> "SippSrs":
        for _attempt in range(5):
            self.port, media = _free_port(), _free_port()
            self.proc = subprocess.Popen(
                [SIPP, "-sf", str(SCENARIO), "-t", "t1", "-i", "127.0.0.1", "-p", str(self.port),
                 "-mi", "127.0.0.1", "-mp", str(media), "-m", str(self.calls), "-nostdin",
                 "-trace_msg", "-message_file", str(self.trace), "-max_socket", "16"],
                cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("SIPp did not start")

    @property
    def uri(self) -> str:
        return f"sip:srs@127.0.0.1:{self.port};transport=tcp"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wait_done(self, timeout: float = 10) -> int | None:
        """SIPp's exit code once its calls are over (0 = every call passed), None if not done."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def received(self) -> list[W.Message]:
        """Every SIP message SIPp received, in order."""
        text = self.trace.read_text(errors="replace") if self.trace.exists() else ""
        out = []
        for m in re.finditer(r"message received \[(\d+)\] bytes :\n\n(.*?)(?=\n-{20,} |\Z)", text, re.S):
            raw = m.group(2).replace("\r\n", "\n").replace("\n", "\r\n")
            out.append(W.parse(raw))
        return out
