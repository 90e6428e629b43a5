"""Real softphones (Debian's baresip) call simulated users through the front door and are called
by them, over UDP and TCP (issue 21): every request of a dialog, both ways, stays on the transport
the dialog began on (checked from baresip's own SIP trace), and the audio goes both ways."""
from __future__ import annotations

import glob
import re
import shutil
import socket
import subprocess
import time
import wave

import numpy as np
import pytest

from mppsim.phone.analysis import analyse
from tests.helpers import TONES
from tests.test_frontdoor_e2e import BARESIP_CONFIG

pytestmark = pytest.mark.skipif(shutil.which("baresip") is None, reason="Debian's baresip is not installed")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host` (baresip listens on both)."""
    for _ in range(20):
        with socket.socket() as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no free port")


def baresip(tmp_path, *commands: str, seconds: int, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()):
    """baresip with its SIP trace on (-s), listening on `host` (run under `prefix`: another host)."""
    snd = tmp_path / "snd"
    snd.mkdir()
    port = free_port() if not prefix else 5062     # a namespace of the test's own: nothing else there
    (tmp_path / "config").write_text(BARESIP_CONFIG.format(snd=snd).replace("127.0.0.1:0", f"{host}:{port}"))
    (tmp_path / "accounts").write_text(f"<sip:baresip@{host}>;regint=0;answermode=auto\n")
    args = [*prefix, "baresip", "-s", "-f", str(tmp_path), "-t", str(seconds)]
    for c in commands:
        args += ["-e", c]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if not prefix:
        # baresip takes 0.3-1.5 s to listen; an INVITE sent before that waits for pjsip's UDP
        # retransmission (0.5, 1, 2 s...) and the call connected too late for the test (1 in ~10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    return proc, port, snd


def dialog_transports(trace: str) -> dict[str, set[str]]:
    """Request method -> transports it was sent or received on, from baresip's SIP trace
    ('udp|tcp 127.0.0.1:p -> 127.0.0.1:q' lines above each message), for every request."""
    seen: dict[str, set[str]] = {}
    lines = trace.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"\b(udp|tcp|tls)\b.*(->|<-)", line, re.I)
        if not m:
            continue
        nxt = next((l for l in lines[i + 1:i + 4] if l.strip()), "")
        req = re.match(r"([A-Z]+) sips?:\S+ SIP/2.0", nxt.strip())
        if req:
            seen.setdefault(req.group(1), set()).add(m.group(1).lower())
    return seen


def heard_by_baresip(snd) -> float | None:
    decoded = glob.glob(str(snd / "*-dec.wav"))
    if not decoded:
        return None
    with wave.open(decoded[0]) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)[:: w.getnchannels()]
        return analyse(samples, w.getframerate()).freq_hz


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_calls_in_and_every_request_stays_on_its_transport(sim, tmp_path, transport):
    sim.set_auto_answer("carol", 0.2)
    proc, _port, snd = baresip(tmp_path, f"/dial sip:1003@127.0.0.1:{sim.front_door.port};transport={transport}",
                               seconds=20)
    try:
        # a loaded machine (CI on two workers) once took 5.4 s from baresip's start to its INVITE
        sim.wait_for("carol", "connected", 15)
        time.sleep(1.5)
        heard = sim.listen("carol", 1.0)
        assert heard["freq_hz"] == pytest.approx(600, rel=0.02), heard   # carol hears baresip
        sim.hangup("carol")
        sim.wait_for("carol", "ended", 3)
        time.sleep(0.5)
    finally:
        sim.set_auto_answer("carol", None)
        proc.terminate()
        trace = proc.communicate(timeout=10)[0]
    seen = dialog_transports(trace)
    assert "INVITE" in seen and "BYE" in seen and "ACK" in seen, (seen, trace[-3000:])
    assert all(tps == {transport} for tps in seen.values()), seen
    assert heard_by_baresip(snd) == pytest.approx(TONES["carol"], rel=0.02)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_an_agent_calls_baresip_and_its_bye_comes_back_on_the_dialog_s_transport(sim, tmp_path, transport):
    proc, port, snd = baresip(tmp_path, seconds=7)
    try:
        time.sleep(1.0)
        sim.dial("dave", f"sip:baresip@127.0.0.1:{port};transport={transport}")
        sim.wait_for("dave", "connected", 10)
        time.sleep(1.5)
        heard = sim.listen("dave", 1.0)
        assert heard["freq_hz"] == pytest.approx(600, rel=0.02), heard   # dave hears baresip
        sim.wait_for("dave", "ended", 10)       # baresip quits (-t): its BYE ends the call
        entry = sim.call_log()[-1]
        assert entry["legs"]["dave"]["ended_by"] == "remote", entry
    finally:
        proc.terminate()
        trace = proc.communicate(timeout=10)[0]
    seen = dialog_transports(trace)
    assert "INVITE" in seen and "BYE" in seen, (seen, trace[-3000:])
    assert all(tps == {transport} for tps in seen.values()), seen
    assert heard_by_baresip(snd) == pytest.approx(TONES["dave"], rel=0.02)


def test_an_ipv6_only_offer_is_refused_with_488_before_ringing_and_the_log_names_the_callee(sim):
    """Linphone's default offer (c=IN IP6): agents have IPv4 media, so bob's agent says 488 at
    once (no 180, bob never rings), and the call log says bob's side ended it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        body = ("v=0\r\no=linphone 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
                "m=audio 7078 RTP/AVP 0 8\r\n")

        def invite(uri: str, branch: str) -> bytes:
            return (f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:linphone@127.0.0.1>;tag=l6\r\nTo: <sip:1002@127.0.0.1>\r\n"
                    f"Call-ID: ipv6-offer-{branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:linphone@127.0.0.1:{port}>\r\n"
                    f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()

        s.sendto(invite(f"sip:1002@127.0.0.1:{sim.front_door.port}", "a1"), ("127.0.0.1", sim.front_door.port))
        redirect = s.recv(4000).decode()
        contact = re.search(r"(?im)^Contact:\s*<([^>]+)>", redirect).group(1)
        host, bob_port = re.search(r"@([\d.]+):(\d+)", contact).groups()
        s.sendto(invite(contact, "b2"), (host, int(bob_port)))
        codes = []
        while not codes or codes[-1] < 200:
            codes.append(int(s.recv(4000).decode().split()[1]))
    assert codes[-1] == 488 and 180 not in codes and 183 not in codes, codes
    assert sim.call_state("bob") != "ringing"
    def refused():
        return [c for c in sim.call_log() if c["sip_call_id"] == "ipv6-offer-b2" and c["state"] == "ended"]
    sim.wait_until(refused, 5, "the refused call in the call log")
    leg = refused()[-1]["legs"]["bob"]
    assert (leg["ended_by"], leg["reason"]) == ("local", "not-acceptable"), leg
