"""mppsim-recorder on its own, fed by hand-written SIP (not produced by mppsim): RFC 7866 shapes
are recorded, malformed ones get a 4xx with a reason, and the recorder stays up."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mppsim.app.ports import PortPlan
from mppsim.phone.analysis import analyse
from mppsim.recorder.store import Store
from mppsim.recorder.wavfile import read
from tests.peers.recorder_proc import start_recorder

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "siprec"


def ulaw(samples: np.ndarray) -> bytes:
    """G.711 mu-law encoding (what PCMU carries)."""
    x = np.clip(samples.astype(np.int32), -32635, 32635)
    sign = np.where(x < 0, 0x80, 0)
    x = np.abs(x) + 0x84
    exponent = np.floor(np.log2(x)).astype(np.int32) - 7
    mantissa = (x >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def tone(freq, seconds):
    t = np.arange(int(8000 * seconds)) / 8000
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    port = PortPlan().single()
    log = open(store / "recorder.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.recorder.cli", "--listen", f"127.0.0.1:{port}",
                             "--store", str(store)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port, store, proc
    proc.terminate()
    proc.wait(10)


class SipTcp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def response(self, timeout=5.0) -> tuple[int, str, str]:
        """Next final response: (code, reason, whole message)."""
        self.sock.settimeout(timeout)
        while True:
            while b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                length = int(re.search(rb"(?im)^(?:content-length|l):\s*(\d+)", head).group(1))
                if len(rest) < length:
                    break
                body, self.buf = rest[:length], rest[length:]
                msg = (head + b"\r\n\r\n" + body).decode(errors="replace")
                code, reason = re.match(r"SIP/2.0 (\d+) ([^\r\n]*)", msg).groups()
                if int(code) >= 200:
                    return int(code), reason, msg
            self.buf += self.sock.recv(65536)


def with_length(msg: str) -> str:
    head, body = msg.split("\n\n", 1)
    body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    head = re.sub(r"(?im)^(content-length|l):.*$", f"Content-Length: {len(body.encode())}", head)
    return head + "\n\n" + body


def invite(port: int, sip: SipTcp, rtp_ports: list[int], fixture: str, call_id: str, mangle=None) -> str:
    text = (FIXTURES / fixture).read_text().replace("\r\n", "\n")
    text = re.sub(r"127\.0\.0\.1:5070", f"127.0.0.1:{port}", text)
    text = re.sub(r"127\.0\.0\.1:5080", f"127.0.0.1:{sip.local_port}", text)
    text = re.sub(r"(?im)^(call-id|i):.*$", f"Call-ID: {call_id}", text)
    # a fresh transaction each time (the fixtures share one branch)
    text = re.sub(r"branch=[^;\s]+", "branch=z9hG4bK" + re.sub(r"\W", "", call_id), text)
    for old, new in zip(re.findall(r"m=audio (\d+)", text), rtp_ports):
        text = text.replace(f"m=audio {old} ", f"m=audio {new} ", 1)
    return with_length(mangle(text) if mangle else text)


def invite_cseq(ok_msg: str) -> int:
    return int(re.search(r"(?im)^cseq:\s*(\d+)", ok_msg).group(1))


def in_dialog(method: str, port: int, sip: SipTcp, ok_msg: str, call_id: str, cseq: int) -> str:
    to = re.search(r"(?im)^(?:to|t):\s*(.*)$", ok_msg).group(1).strip()
    frm = re.search(r"(?im)^(?:from|f):\s*(.*)$", ok_msg).group(1).strip()
    return (f"{method} sip:srs@127.0.0.1:{port};transport=tcp SIP/2.0\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{sip.local_port};branch=z9hG4bK{method}{cseq}\n"
            f"From: {frm}\nTo: {to}\nCall-ID: {call_id}\n"
            f"CSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n")


def test_rfc7866_invite_written_by_hand_is_recorded(recorder):
    """RFC 7866 example shape: quoted boundary, +sip.src, Require: siprec, labels 96/97."""
    port, store_dir, _proc = recorder
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for u in udp:
        u.bind(("127.0.0.1", 0))
    sip = SipTcp(port)
    call_id = "hand-written-1@127.0.0.1"
    sip.send(invite(port, sip, [u.getsockname()[1] for u in udp], "rfc7866-invite.sip", call_id))
    code, reason, ok = sip.response()
    assert code == 200, reason
    srs_ports = [int(p) for p in re.findall(r"m=audio (\d+)", ok)]
    assert len(srs_ports) == 2 and "a=recvonly" in ok
    sip.send(in_dialog("ACK", port, sip, ok, call_id, invite_cseq(ok)))
    left, right = ulaw(tone(700, 1.2)), ulaw(tone(1100, 1.2))
    for i in range(60):          # 1.2 s of 20 ms RTP packets on each stream
        for k, (u, payload) in enumerate(zip(udp, (left, right))):
            header = bytes([0x80, 0]) + (i & 0xFFFF).to_bytes(2, "big") + (i * 160).to_bytes(4, "big") \
                + (0x1000 + k).to_bytes(4, "big")
            u.sendto(header + payload[i * 160:(i + 1) * 160], ("127.0.0.1", srs_ports[k]))
        time.sleep(0.02)
    time.sleep(0.3)
    sip.send(in_dialog("BYE", port, sip, ok, call_id, 102))
    assert sip.response()[0] == 200
    time.sleep(0.5)
    (rec,) = [r for r in Store(store_dir).list() if r["recording_call_id"] == call_id]
    assert rec["dialect"] == "rfc7866" and rec["state"] == "complete"
    assert [p["aor"] for p in rec["participants"]] == ["sip:1001@127.0.0.1", "sip:1002@127.0.0.1"]
    rate, audio = read(rec["audio_path"])
    assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(700, rel=0.02)   # label 96: Alice sends
    assert analyse(audio[:, 1], rate).freq_hz == pytest.approx(1100, rel=0.02)
    assert analyse(audio[:, 0], rate).active_seconds > 0.9


@pytest.mark.parametrize("mangle,code,reason", [
    (lambda t: t[:t.index("--foobar\nContent-Type: application/rs-metadata+xml")] + "--foobar--\n",
     400, "No recording metadata part"),
    (lambda t: t.replace("<participant participant_id", "<participant broken participant_id", 1)
     .replace("<recording xmlns=", "<recordingx xmlns=").replace("</recording>", "</recordingx>"),
     400, "Bad metadata"),
    (lambda t: re.sub(r"(?im)^require: siprec\n", "", t).replace(";+sip.src", ""),
     403, "Not a recording session"),
])
def test_malformed_sessions_get_a_4xx_with_a_reason_and_the_recorder_stays_up(recorder, mangle, code, reason):
    port, _store, proc = recorder
    sip = SipTcp(port)
    tag = re.sub(r"\W", "", reason)[:12]
    sip.send(invite(port, sip, [40000, 40002], "rfc7866-invite.sip", f"bad-{code}-{tag}", mangle))
    got, got_reason, _ = sip.response()
    assert (got, reason in got_reason) == (code, True), (got, got_reason)
    assert proc.poll() is None
    # and it still records a good one
    sip2 = SipTcp(port)
    sip2.send(invite(port, sip2, [40010, 40012], "legacy-ns-no-labels.sip", f"good-after-{code}-{tag}"))
    ok_code, ok_reason, ok = sip2.response()
    assert ok_code == 200, ok_reason
    sip2.send(in_dialog("ACK", port, sip2, ok, f"good-after-{code}-{tag}", invite_cseq(ok)))
    sip2.send(in_dialog("BYE", port, sip2, ok, f"good-after-{code}-{tag}", 102))
    assert sip2.response()[0] == 200


def test_r_prv_2_mppsim_recorder_applies_retention_at_start_with_now(tmp_path):
    """R-PRV-2: Dubber Go keeps a recording 30 days; `--now` moves the recorder's clock."""
    store = Store(tmp_path)
    for tier in ("Go", "Team"):
        w = store.begin(f"s-{tier}", f"c-{tier}", f"r-{tier}", "webex", f"sip:{tier}@127.0.0.1",
                        [{"name": tier, "aor": f"sip:{tier}@127.0.0.1", "channel": "left"}], "Dubber", tier)
        w.write(np.zeros(800, np.int16), np.zeros(800, np.int16))
        w.finish()
    assert len(store.list()) == 2
    later = "2100-01-01T00:00:00+00:00"
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.recorder.cli", "--listen",
                             f"127.0.0.1:{PortPlan().single()}", "--store", str(tmp_path), "--now", later],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert "retention expired" in line, line
    finally:
        proc.terminate()
        proc.wait(10)
    assert [r["tier"] for r in Store(tmp_path).list()] == ["Team"]   # paid: unlimited retention


@pytest.mark.parametrize("args,says", [
    (["--engine", "pjsua"], "argument --engine: allowed: asyncio (the pjsua worker pool was removed in issue 20)"),
    (["--engine", "pjsua", "--workers", "2"], "argument --engine: allowed: asyncio"),
    (["--workers", "0"], "--workers: allowed 1-16"),
])
def test_the_removed_pjsua_engine_is_refused_by_name(tmp_path, args, says):
    """Issue 20: an old command line asking for the pjsua worker pool gets a usage error naming the
    option and what is allowed (exit 2), not a traceback; `--engine asyncio --workers 1`, written
    when there were two engines, still starts the recorder."""
    r = subprocess.run([sys.executable, "-m", "mppsim.recorder.cli", "--store", str(tmp_path), *args],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    rec = start_recorder(tmp_path / "store", "--engine", "asyncio", "--workers", "1")
    try:
        assert rec.ready["engine"] == "asyncio" and rec.alive()
    finally:
        assert rec.stop() == 0, rec.log()


@pytest.mark.parametrize("accounts,reason", [
    ({}, "No Imagicle account for user alice.smith@acme.example (R-PRV-6)"),
    ({"alice.smith@acme.example": {"serviceProvider": "Acme-SP", "externalGroup": "Other-Group",
                                   "externalIdentifier": "alice.smith@acme.example"}},
     "Platform info mismatch for alice.smith@acme.example: externalGroup"),
])
def test_r_usr_7_manual_provider_refuses_unprovisioned_or_mismatched_users(recorder, accounts, reason):
    """R-PRV-6 / R-USR-7 at the recorder: a BroadWorks-shaped session for a user the manually
    provisioned provider does not know, or knows with other platform info, gets a 403."""
    import json
    port, store_dir, proc = recorder
    (store_dir / "provider.json").write_text(json.dumps(
        {"provider": "Imagicle", "tier": "", "manual": True, "accounts": accounts}))
    try:
        sip = SipTcp(port)
        sip.send(invite(port, sip, [40020, 40022], "broadworks-invite.sip", f"bw-{len(accounts)}"))
        code, got, _ = sip.response()
        assert code == 403 and got.startswith(reason), got
        assert proc.poll() is None
    finally:
        (store_dir / "provider.json").unlink()


def test_r_rec_4_broadworks_session_with_a_matching_account_is_recorded(recorder):
    """R-REC-4 shape (;src, no Require, X-BroadWorks-Correlation-Info) is accepted."""
    port, store_dir, _proc = recorder
    sip = SipTcp(port)
    sip.send(invite(port, sip, [40030, 40032], "broadworks-invite.sip", "bw-ok"))
    code, got, ok = sip.response()
    assert code == 200, got
    sip.send(in_dialog("ACK", port, sip, ok, "bw-ok", invite_cseq(ok)))
    sip.send(in_dialog("BYE", port, sip, ok, "bw-ok", invite_cseq(ok) + 1))
    assert sip.response()[0] == 200
    time.sleep(0.3)
    (rec,) = [r for r in Store(store_dir).list() if r["recording_call_id"] == "bw-ok"]
    assert rec["dialect"] == "webex" and rec["correlation"] == "2be5c3c1-3b1d-4b5c-8c34-6e3f2a2c9d11"
