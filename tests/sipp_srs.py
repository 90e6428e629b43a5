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

from mppsim.sip import framing
from mppsim.sip import message as sip_message

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

    def received(self) -> list[sip_message.Message]:
        """Every SIP message SIPp received, in order."""
        text = self.trace.read_text(errors="replace") if self.trace.exists() else ""
        out = []
        for m in re.finditer(r"message received \[(\d+)\] bytes :\n\n(.*?)(?=\n-{20,} |\Z)", text, re.S):
            raw = m.group(2).replace("\r\n", "\n").replace("\n", "\r\n")
            out.append(sip_message.read(raw))
        return out


# ----- a raw agent leg toward src/mppsim/phone/network_src.NetworkSrc (no pjsua2) ---------------------

AGENT_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
             "m=audio {p1} RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:120 telephone-event/8000\r\na=label:1\r\n"
             "m=audio {p2} RTP/AVP 0 120\r\nc=IN IP4 127.0.0.1\r\na=sendonly\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:120 telephone-event/8000\r\na=label:2\r\n")


class AgentLeg:
    """What the agent's pjsua2 sends the network SRC, written by hand (no pjsua2 needed)."""

    def __init__(self, src, rid: str):
        self.sock = socket.create_connection(("127.0.0.1", src.port), 3)
        self.sock.settimeout(10)
        self.buf = b""
        self.rid = rid
        self.call_id = f"agentleg-{rid}"
        self.to_tag = ""

    def _read(self) -> sip_message.Message:
        while True:
            raw, self.buf = framing.next_message(self.buf)
            if raw is not None:
                return sip_message.read(raw)
            self.buf += self.sock.recv(65536)

    def request(self, method: str, cseq: int, body: str = "") -> sip_message.Message:
        to = "<sip:src@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        text = (f"{method} sip:src@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{cseq}{method}\r\n"
                f"From: <sip:src-1001@127.0.0.1>;tag=agent\r\nTo: {to}\r\nCall-ID: {self.call_id}\r\n"
                f"CSeq: {cseq} {method}\r\nContact: <sip:src-1001@127.0.0.1:9;transport=tcp>\r\n"
                f"X-Mppsim-Recording: {self.rid}\r\n"
                + ("Content-Type: application/sdp\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendall(text.encode())
        if method == "ACK":
            return None
        while True:
            resp = self._read()
            if resp.is_response and resp.code >= 200:
                self.to_tag = self.to_tag or resp.tag("to")
                return resp


