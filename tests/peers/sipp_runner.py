"""Runs SIPp (Debian `sip-tester`, /usr/bin/sipp) scenarios of tests/peers/sipp/ as a third-party
SIPREC client, and reads back what it sent and received.

    run = run_sipp("webex_broadworks.xml", "127.0.0.1:40123", tmp_path,
                   streams=[Stream(700, 1.2), Stream(1100, 1.2)], hold_ms=1500)
    run.returncode, run.received_codes(), run.sent("INVITE")

Each run gets its own folder: the scenario and its `streams.pcap` are copied there (SIPp writes
its logs beside the scenario), its own SIP and media ports (nothing shared with another run on
the machine) and SIPp's message log, error log and statistics.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .rtp_pcap import Stream, write_pcap

SIPP = shutil.which("sipp")
SCENARIOS = Path(__file__).resolve().parent / "sipp"
PCAP_NAME = "streams.pcap"                 # the name every scenario plays


def free_port(kind=socket.SOCK_DGRAM) -> int:
    """A port free for UDP and TCP right now (SIPp's SIP socket, or its media base)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM)
        try:
            other.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            other.close()
    raise RuntimeError("no free loopback port")


@dataclass
class SippRun:
    returncode: int
    workdir: Path
    output: str

    @property
    def messages(self) -> list[tuple[str, str]]:
        """[(direction "sent"|"received", message text)] in the order SIPp logged them."""
        path = self.workdir / "messages.log"
        if not path.exists():
            return []
        text = path.read_text(errors="replace")
        out = []
        for block in re.split(r"(?m)^-{20,} [^\n]*\n", text)[1:]:
            m = re.match(r"(?:UDP|TCP|TLS)? ?message (sent|received)[^\n]*\n\n", block)
            if m:
                out.append((m.group(1), block[m.end():].rstrip("\n") + "\n"))
        return out

    def sent(self, method: str) -> list[str]:
        return [m for d, m in self.messages if d == "sent" and m.startswith(method + " ")]

    def received(self) -> list[str]:
        return [m for d, m in self.messages if d == "received"]

    def received_codes(self, method: str | None = None) -> list[int]:
        """Status codes of responses received (optionally to one CSeq method), in order."""
        codes = []
        for m in self.received():
            start = re.match(r"SIP/2\.0 (\d{3})", m)
            cseq = re.search(r"(?im)^cseq:\s*\d+\s+(\w+)", m)
            if start and (method is None or (cseq and cseq.group(1).upper() == method)):
                codes.append(int(start.group(1)))
        return codes

    def final(self, method: str) -> list[tuple[int, str]]:
        """(code, reason) of every final response received to `method`."""
        out = []
        for m in self.received():
            start = re.match(r"SIP/2\.0 (\d{3}) ([^\r\n]*)", m)
            cseq = re.search(r"(?im)^cseq:\s*\d+\s+(\w+)", m)
            if start and cseq and cseq.group(1).upper() == method and int(start.group(1)) >= 200:
                out.append((int(start.group(1)), start.group(2)))
        return out

    def errors(self) -> str:
        path = self.workdir / "errors.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def explain(self) -> str:
        """What to print when a run went wrong."""
        tail = "\n".join(self.output.splitlines()[-25:])
        return f"sipp exited {self.returncode} in {self.workdir}\n{tail}\nerrors:\n{self.errors()[-3000:]}"


def command(scenario: str, target: str, workdir: Path, *, transport: str = "t1", keys: dict | None = None,
            calls: int = 1, rate: float | None = None, limit: int | None = None, hold_ms: int = 1500,
            timeout: float = 30, call_id: str | None = None, service: str = "srs",
            extra: list[str] | None = None, streams: list[Stream | None] | None = None,
            pcaps: dict[str, list[Stream | None]] | None = None, trace_messages: bool = True) -> list[str]:
    """The SIPp command line for `scenario` (copied into `workdir` with its pcaps: `streams` is
    streams.pcap, `pcaps` any others the scenario plays, by name)."""
    if SIPP is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester; scripts/setup installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCENARIOS / scenario, workdir / scenario)
    if streams is not None:
        write_pcap(workdir / PCAP_NAME, streams)
    for name, more in (pcaps or {}).items():
        write_pcap(workdir / name, more)
    media = free_port()
    cmd = [SIPP, target, "-sf", scenario, "-t", transport, "-i", "127.0.0.1", "-p", str(free_port()),
           "-mi", "127.0.0.1", "-mp", str(media), "-s", service, "-m", str(calls), "-d", str(hold_ms),
           "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error",
           "-trace_err", "-error_file", "errors.log", "-trace_stat", "-stf", "stats.csv", "-fd", "1",
           "-max_socket", "2048"]
    if trace_messages:
        cmd += ["-trace_msg", "-message_file", "messages.log"]
    if rate is not None:
        cmd += ["-r", str(rate)]
    if limit is not None:
        cmd += ["-l", str(limit)]
    if call_id:
        cmd += ["-cid_str", call_id]
    for k, v in (keys or {}).items():
        cmd += ["-key", k, str(v)]
    return cmd + list(extra or [])


def run_sipp(scenario: str, target: str, workdir: Path, *, timeout: float = 30, **kw) -> SippRun:
    """SIPp's ports are chosen here and bound by SIPp (it cannot take port 0): another process
    may bind one in between (its media port + 2 for video was, on two test workers). A run that
    SIPp ended before any call for that reason is run again with new ports."""
    for _attempt in range(3):
        cmd = command(scenario, target, workdir, timeout=timeout, **kw)
        proc = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=timeout + 15)
        run = SippRun(proc.returncode, workdir, proc.stdout)
        if not (proc.returncode != 0 and "Address already in use" in run.errors()
                and "Unable to bind" in run.errors()):
            return run
        (workdir / "errors.log").unlink(missing_ok=True)
    return run
