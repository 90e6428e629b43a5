"""The asyncio recorder (src/mppsim/recorder/srs.py) end to end over real UDP/TCP/TLS sockets, fed by a
hand-written SRC (not mppsim's agents): the issue 9 quirk classes, refusals with reasons, limits,
quality counters, `suspect`, `--stats`. SIPp scenarios of the same shapes: tests/test_sipp_*.py."""
from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from mppsim.phone.analysis import analyse
from mppsim.recorder.rtp import codecs
from mppsim.recorder.store import Store
from mppsim.recorder.wavfile import read

ROOT = Path(__file__).resolve().parents[1]


def start(store: Path, *extra: str):
    proc = subprocess.Popen([sys.executable, "-m", "mppsim.recorder.cli", "--listen", "127.0.0.1:0",
                             "--store", str(store), *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        if line.startswith("READY "):
            return proc, json.loads(line[6:])
        seen.append(line)
    raise AssertionError("recorder did not start: " + "".join(seen[-30:]))


def stop(proc) -> str:
    proc.terminate()
    out = proc.stdout.read()
    proc.wait(10)
    return out


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    store = tmp_path_factory.mktemp("astore")
    proc, info = start(store, "--max-sessions", "40")
    info["store_dir"] = store
    info["proc"] = proc
    yield info
    info["log"] = stop(proc)


def meta(participants, streams=(("S1", "1"), ("S2", "2")), pad=0, session="SESS", datamode="complete"):
    parts = "".join(
        f"<participant participant_id='{pid}'><nameID aor='{aor}'>{f'<name>{name}</name>' if name else ''}"
        f"</nameID></participant>" for pid, aor, name, _send in participants)
    st = "".join(f"<stream stream_id='{sid}' session_id='{session}'><label>{label}</label></stream>"
                 for sid, label in streams)
    psa = "".join(f"<participantstreamassoc participant_id='{pid}'><send>{send}</send></participantstreamassoc>"
                  for pid, _aor, _name, send in participants if send)
    ext = f"<extensiondata xmlns='urn:x'>{'x' * pad}</extensiondata>" if pad else ""
    return (f"<?xml version='1.0' encoding='UTF-8'?><recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
            f"<datamode>{datamode}</datamode><session session_id='{session}'><sipSessionID>rec-call</sipSessionID>"
            f"</session>{parts}{st}{psa}{ext}</recording>")


PARTIES = [("P1", "sip:7701@10.0.0.1", "", "S1"), ("P2", "sip:7722@10.0.0.1", "", "S2")]


def sdp(ports, codecs_=(8,), rtpmap="", paused=False, labels=("1", "2")):
    out = "v=0\r\no=BroadWorks 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    for port, label in zip(ports, labels):
        out += f"m=audio {port} RTP/AVP {' '.join(map(str, codecs_))}\r\n{rtpmap}a=label:{label}\r\n"
        out += "a=inactive\r\n" if paused else "a=sendonly\r\n"
    return out


def multipart(sdp_text, xml, boundary="b0undary"):
    return (f"--{boundary}\r\nContent-Type: application/sdp\r\n\r\n{sdp_text}\r\n--{boundary}\r\n"
            f"Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n"
            f"{xml}\r\n--{boundary}--\r\n").encode("utf-8", "surrogateescape")


class Src:
    """A minimal SRC: one dialog, over UDP or TCP (or TLS)."""

    def __init__(self, info, transport="udp", call_id=None):
        host, port = info["sip"].rsplit(":", 1)
        self.dest = (host, int(port))
        self.transport = transport
        self.call_id = call_id or f"{uuid.uuid4()}@src"
        self.tag = uuid.uuid4().hex[:8]
        self.cseq = 1
        self.to = "<sip:srs@127.0.0.1>"
        self.buf = b""
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        elif transport == "tcp":
            self.sock = socket.create_connection(self.dest, 5)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            thost, tport = info["tls"].rsplit(":", 1)
            self.sock = ctx.wrap_socket(socket.create_connection((thost, int(tport)), 5))
        self.local = self.sock.getsockname()
        self.rtp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        for r in self.rtp:
            r.bind(("127.0.0.1", 0))
        self.srs_ports: list[int] = []
        self.seq = [0, 0]

    def request(self, method, body=b"", ctype="multipart/mixed;boundary=b0undary", extra="", cseq=None,
                contact=";+sip.src"):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        proto = self.transport.upper()
        head = (f"{method} sip:srs@{self.dest[0]}:{self.dest[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/{proto} {self.local[0]}:{self.local[1]};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"From: \"Alice Smith\" <sip:7701@10.0.0.1>;tag={self.tag}\r\nTo: {self.to}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
                f"Contact: <sip:src@{self.local[0]}:{self.local[1]}>{contact}\r\n{extra}")
        if body:
            head += f"Content-Type: {ctype}\r\n"
        data = (head + f"Content-Length: {len(body)}\r\n\r\n").encode("utf-8", "surrogateescape") + body
        self.send_raw(data)

    def send_raw(self, data: bytes):
        if self.transport == "udp":
            self.sock.sendto(data, self.dest)
        else:
            self.sock.sendall(data)

    def final(self, timeout=5.0):
        """The next final response (provisional ones skipped): (code, reason, text)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if self.transport == "udp":
                    data = self.sock.recv(70000)
                else:
                    data = self._framed()            # a message already buffered comes first
                    while data is None:
                        self.buf += self.sock.recv(70000)
                        data = self._framed()
            except socket.timeout:
                break
            text = data.decode("utf-8", "replace")
            if text.startswith("SIP/2.0 "):
                code = int(text[8:11])
                if code >= 200:
                    return code, text.split("\r\n")[0][12:], text
            elif text.startswith("BYE "):
                self.got_bye = text
        raise AssertionError("no final response")

    def _framed(self):
        m = re.search(rb"\r\n\r\n", self.buf)
        if not m:
            return None
        n = int(re.search(rb"(?i)content-length:\s*(\d+)", self.buf[:m.end()]).group(1))
        if len(self.buf) < m.end() + n:
            return None
        data, self.buf = self.buf[:m.end() + n], self.buf[m.end() + n:]
        return data

    def invite(self, body, **kw):
        self.request("INVITE", body, **kw)
        code, reason, text = self.final()
        if code == 200:
            self.to = re.search(r"(?im)^to:\s*(.*)$", text).group(1).strip()
            self.srs_ports = [int(p) for p in re.findall(r"m=audio (\d+)", text)]
            self.ack(text)
        return code, reason, text

    def ack(self, ok):
        cseq = int(re.search(r"(?im)^cseq:\s*(\d+)", ok).group(1))
        self.request("ACK", cseq=cseq)

    def send_audio(self, payloads, pt=8, seconds=1.0):
        """20 ms packets of `payloads[i]` (bytes per packet) on stream i, in real time."""
        for _ in range(int(seconds / 0.02)):
            for i, payload in enumerate(payloads):
                if i < len(self.srs_ports) and self.srs_ports[i]:
                    s = self.seq[i]
                    pkt = bytes([0x80, pt]) + (s & 0xFFFF).to_bytes(2, "big") + \
                        (s * 160 & 0xFFFFFFFF).to_bytes(4, "big") + (100 + i).to_bytes(4, "big") + payload
                    self.rtp[i].sendto(pkt, ("127.0.0.1", self.srs_ports[i]))
                    self.seq[i] += 1
            time.sleep(0.02)

    def bye(self):
        self.request("BYE")
        return self.final()[0]


def tone_payload(freq, codec="PCMA", n=160):
    t = np.arange(n) / 8000
    x = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    # 160 samples of a tone whose period divides 20 ms: packets repeat seamlessly
    return (codecs.PcmaCodec() if codec == "PCMA" else codecs.PcmuCodec()).encode(x.tobytes())


def row(info, call_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in Store(info["store_dir"]).list() if r["recording_call_id"] == call_id]
        if rows and rows[0]["state"] != "recording":
            return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"no finished recording for {call_id}")


def test_issue_9_classes_1_2_pcma_only_5kb_invite_over_udp_is_recorded_in_stereo(rec):
    """R-REC-1 / classes 1 and 2: PCMA only, a 5 kB INVITE over UDP, both channels recorded."""
    src = Src(rec, "udp")
    body = multipart(sdp([r.getsockname()[1] for r in src.rtp]),
                     meta(PARTIES, pad=4000))
    assert len(body) > 4000
    code, reason, ok = src.invite(body)
    assert code == 200, reason
    assert "PCMA/8000" in ok and "a=recvonly" in ok and ok.count("m=audio") == 2
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=1.2)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert r["ended_by"] == "bye" and r["state"] == "complete" and r["suspect"] == 0
    rate, audio = read(r["audio_path"])
    assert rate == 8000
    assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(500, rel=0.03)
    assert analyse(audio[:, 1], rate).freq_hz == pytest.approx(1000, rel=0.03)
    assert analyse(audio[:, 0], rate).active_seconds > 0.9
    stats = r["stream_stats"]
    assert [s["channel"] for s in stats] == ["left", "right"]
    assert all(s["received"] >= 55 and s["lost"] == 0 and s["wrong_pt"] == 0 and s["codecs"] == ["PCMA"]
               for s in stats)
    assert r["sip_call_id"] == "rec-call"


def test_issue_9_classes_3_7_metadata_only_update_moves_participants_into_the_timeline(rec):
    """Class 3: a metadata-only UPDATE gets 200; class 7: the index follows the transfer from
    7722 to 7733, keeps 7722 in the timeline, and takes names from the From display name."""
    src = Src(rec, "tcp")
    code, reason, _ = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))
    assert code == 200, reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.4)
    moved = meta([PARTIES[0], ("P3", "sip:7733@10.0.0.1", "Carol", "S2")])
    src.request("UPDATE", moved.encode(), ctype="application/rs-metadata+xml")
    code, reason, text = src.final()
    assert code == 200 and "application/sdp" not in text, reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.4)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert [(p["aor"], p["channel"]) for p in r["participants"]] == [
        ("sip:7701@10.0.0.1", "left"), ("sip:7733@10.0.0.1", "right")]
    assert r["participants"][0]["name"] == "Alice Smith"         # from the From header
    tl = {p["aor"]: p for p in r["participants_timeline"]}
    assert tl["sip:7722@10.0.0.1"]["to"] is not None and tl["sip:7733@10.0.0.1"]["from"] > 0.2
    assert tl["sip:7733@10.0.0.1"]["name"] == "Carol"
    assert len(r["metadata_files"]) == 2


def test_issue_9_class_4_empty_placeholder_stream_id_is_recorded(rec):
    src = Src(rec, "udp")
    xml = meta(PARTIES, streams=(("", "1"), ("S2", "2")))
    code, reason, _ = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), xml))
    assert code == 200, reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
    assert src.bye() == 200
    assert row(rec, src.call_id)["state"] == "complete"


@pytest.mark.skipif(not codecs.HAVE_G722, reason="G722 package missing")
def test_issue_9_class_5_g722_only_reinvite_is_accepted_and_recorded(rec):
    from aiortp.codecs.g722 import G722Codec
    src = Src(rec, "tcp")
    ports = [r.getsockname()[1] for r in src.rtp]
    code, reason, _ = src.invite(multipart(sdp(ports, (0,)), meta(PARTIES)))
    assert code == 200, reason
    src.send_audio([tone_payload(500, "PCMU"), tone_payload(1000, "PCMU")], pt=0, seconds=0.4)
    src.request("INVITE", multipart(sdp(ports, (9,)), meta(PARTIES)))
    code, reason, ok = src.final()
    assert code == 200 and "G722/8000" in ok, reason
    src.ack(ok)
    t = np.arange(320) / 16000
    enc = G722Codec()
    g = enc.encode((8000 * np.sin(2 * np.pi * 750 * t)).astype(np.int16).tobytes())
    src.send_audio([g, g], pt=9, seconds=0.6)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert [s["codecs"] for s in r["stream_stats"]] == [["PCMU", "G722"], ["PCMU", "G722"]]
    rate, audio = read(r["audio_path"])
    assert analyse(audio[-int(0.4 * rate):, 0], rate).freq_hz == pytest.approx(750, rel=0.05)


def test_issue_9_class_5_undecodable_reinvite_gets_488_and_the_session_stays(rec):
    src = Src(rec, "udp")
    ports = [r.getsockname()[1] for r in src.rtp]
    assert src.invite(multipart(sdp(ports), meta(PARTIES)))[0] == 200
    src.request("INVITE", multipart(sdp(ports, (98,), rtpmap="a=rtpmap:98 AMR-WB/16000\r\n"), meta(PARTIES)))
    code, reason, _ = src.final()
    assert code == 488 and "session kept" in reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
    assert src.bye() == 200


def test_issue_9_classes_9_10_refer_replaces_and_unknown_methods_are_refused(rec):
    src = Src(rec, "tcp")
    ports = [r.getsockname()[1] for r in src.rtp]
    assert src.invite(multipart(sdp(ports), meta(PARTIES)))[0] == 200
    src.request("REFER", extra="Refer-To: <sip:victim@10.0.0.9>\r\n")
    code, reason, _ = src.final()
    assert code == 403 and "never originates" in reason
    for method in ("INFO", "MESSAGE", "FOOBAR"):
        src.request(method)
        code, _reason, text = src.final()
        assert code == 405 and "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE" in text
    # a plain INVITE with Replaces naming the live recording dialog
    hijack = Src(rec, "udp")
    my_tag = re.search(r"tag=([^;\s>]+)", src.to).group(1)
    hijack.request("INVITE", sdp([4000]).encode(), ctype="application/sdp", contact="",
                   extra=f"Replaces: {src.call_id};to-tag={my_tag};from-tag={src.tag}\r\n")
    code, reason, _ = hijack.final()
    assert code == 403 and "Replaces" in reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
    assert src.bye() == 200                          # the recording was not torn down
    assert row(rec, src.call_id)["ended_by"] == "bye"


@pytest.mark.parametrize("mangle,code,reason", [
    (lambda b: b.replace(b"Content-Type: application/rs-metadata+xml", b"Content-Typ\xe9: x"), 400,
     "headers are not UTF-8"),
    (lambda b: b.replace(b"v=0", b"v=0\r\ns=caf\xe9", 1), 400, "Bad SDP: not UTF-8"),
    (lambda b: b.replace(b"7701@", b"77\xff\xfe01@"), 400, "Bad metadata"),
    (lambda b: b.replace(b"b0undary", b"other"), 400, "No recording metadata part"),
])
def test_issue_9_classes_12_13_non_utf8_and_broken_bodies_get_a_final_4xx(rec, mangle, code, reason):
    src = Src(rec, "tcp")
    body = mangle(multipart(sdp([4000, 4002]), meta(PARTIES)))
    got, got_reason, _ = src.invite(body)
    assert got == code and reason in got_reason, got_reason
    assert rec["proc"].poll() is None


def test_issue_9_utf16_metadata_with_a_declaration_is_recorded(rec):
    src = Src(rec, "udp")
    xml = meta(PARTIES).replace("UTF-8", "UTF-16").encode("utf-16")
    body = multipart(sdp([r.getsockname()[1] for r in src.rtp]), "@@").replace(b"@@", xml)
    code, reason, _ = src.invite(body)
    assert code == 200, reason
    assert src.bye() == 200


def test_wrong_payload_type_only_marks_the_recording_suspect(rec):
    """Build 4: RTP arrived but never in the answered payload type -> suspect, and says why."""
    src = Src(rec, "udp")
    assert src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))[0] == 200
    src.send_audio([tone_payload(500, "PCMU"), tone_payload(1000, "PCMU")], pt=0, seconds=0.5)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert r["suspect"] == 1 and "none in a negotiated payload type" in r["suspect_reason"]
    assert all(s["wrong_pt"] >= 20 for s in r["stream_stats"])


def test_issue_21_a_recording_without_rtp_is_marked_no_audio_not_silently_complete(rec):
    """An SRC whose RTP never arrives (sent to the wrong address, blocked): the row says why."""
    src = Src(rec, "udp")
    assert src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))[0] == 200
    time.sleep(1.3)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert r["suspect"] == 1 and r["suspect_reason"].startswith("no audio: no RTP packet"), r["suspect_reason"]
    assert [s["received"] for s in r["stream_stats"]] == [0, 0]


def test_issue_21_a_recording_with_one_stream_missing_names_the_channel(rec):
    src = Src(rec, "udp")
    assert src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))[0] == 200
    src.send_audio([tone_payload(500)], seconds=1.2)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    assert r["suspect"] == 1 and r["suspect_reason"].startswith("no audio on right (0 packets)"), r["suspect_reason"]


def test_rfc4028_short_session_interval_gets_422_with_min_se_and_options_answers(rec):
    src = Src(rec, "udp")
    code, reason, text = src.invite(multipart(sdp([4000, 4002]), meta(PARTIES)),
                                    extra="Session-Expires: 30\r\nSupported: timer\r\n")
    assert code == 422 and "Min-SE: 90" in text
    src.request("OPTIONS")
    code, _r, text = src.final()
    assert code == 200 and "Supported: siprec, timer" in text


def test_issue_9_class_11_unacked_invites_and_idle_connections_do_not_stop_recording(rec):
    """Class 11: INVITEs whose 200 is never ACKed and 60 idle TCP connections; a valid session
    is still recorded, and the capacity is far beyond 4."""
    ghosts = []
    for _ in range(6):
        g = Src(rec, "udp")
        g.request("INVITE", multipart(sdp([4000, 4002]), meta(PARTIES)))
        assert g.final()[0] == 200                     # answered, never ACKed
        ghosts.append(g)
    host, port = rec["sip"].rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), 5) for _ in range(60)]
    src = Src(rec, "tcp")
    code, reason, _ = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))
    assert code == 200, reason
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
    assert src.bye() == 200
    assert row(rec, src.call_id)["state"] == "complete"
    for s in idle:
        s.close()


def test_capacity_limit_refuses_new_sessions_with_486_and_never_drops_admitted_ones(tmp_path):
    proc, info = start(tmp_path, "--max-sessions", "2")
    info["store_dir"] = tmp_path
    try:
        live = []
        for _ in range(2):
            s = Src(info, "udp")
            assert s.invite(multipart(sdp([r.getsockname()[1] for r in s.rtp]), meta(PARTIES)))[0] == 200
            live.append(s)
        extra = Src(info, "udp")
        code, reason, _ = extra.invite(multipart(sdp([4000, 4002]), meta(PARTIES)))
        assert code == 486 and "Recorder busy: 2 sessions" in reason
        for s in live:
            assert s.bye() == 200
        time.sleep(1.2)                                # the status file is rewritten every second
        out = subprocess.run([sys.executable, "-m", "mppsim.recorder.cli", "--stats", "--store", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        status = json.loads(out.splitlines()[0])
        assert status["refused"] == {"486 Recorder busy": 1} and status["sessions_total"] == 2
        assert status["running"] and status["rss_kb"] > 0
    finally:
        log = stop(proc)
    assert "refused 486 Recorder busy: 2 sessions" in log and "element: capacity" in log


def test_issue_9_class_6_no_bye_ends_as_timeout_with_a_bye_from_the_recorder_and_tls(tmp_path):
    """Class 6: a session without RTP and SIP for --rtp-timeout seconds is stored as
    ended_by 'timeout', never left 'recording'. Over TLS (--tls, self-signed at start)."""
    proc, info = start(tmp_path, "--rtp-timeout", "1", "--tls")
    info["store_dir"] = tmp_path
    try:
        assert info["tls"]
        src = Src(info, "tls")
        code, reason, ok = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))
        assert code == 200, reason
        assert ";transport=tls" in ok
        src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
        src.sock.settimeout(4)
        data = src.sock.recv(65536).decode()
        assert data.startswith("BYE ") and "timed out" in data
        r = row(info, src.call_id)
        assert r["ended_by"] == "timeout" and r["state"] == "complete"
        assert r["talk_seconds"] > 0.2
    finally:
        stop(proc)


@pytest.mark.skipif(not codecs.HAVE_G722, reason="G722 package missing")
@pytest.mark.parametrize("pt,rate", [(0, 8000), (9, 16000)])
def test_webex_offer_opus_pcmu_pcma_g722_file_rate_follows_the_codec_that_arrives(rec, pt, rate):
    """The real Webex Calling offer (o=BroadWorks, 111 101 0 8 9): the WAV is wideband only when
    wideband audio arrives (G.722 kept at 16 kHz), narrowband PCMU stays 8 kHz."""
    from aiortp.codecs.g722 import G722Codec
    src = Src(rec, "udp")
    rtpmap = "a=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n"
    code, reason, ok = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp], (111, 101, 0, 8, 9),
                                                rtpmap=rtpmap), meta(PARTIES)))
    assert code == 200, reason
    assert re.search(r"m=audio \d+ RTP/AVP (111 )?101 0 8 9\r\n", ok), ok
    if pt == 9:
        t = np.arange(320) / 16000
        payload = G722Codec().encode((8000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16).tobytes())
    else:
        payload = tone_payload(500, "PCMU")
    src.send_audio([payload, payload], pt=pt, seconds=0.6)
    assert src.bye() == 200
    r = row(rec, src.call_id)
    got_rate, audio = read(r["audio_path"])
    assert got_rate == rate == r["rate"]
    if pt == 9:     # 6 kHz only exists in wideband
        assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(6000, rel=0.02)


def test_issue_9_class_2_a_60kb_invite_is_recorded_and_beyond_64kb_gets_513(rec):
    """Messages up to 64 kB are taken (UDP and TCP); a larger one gets 513 and its TCP
    connection is closed (the stream cannot be framed after it), the recorder stays up."""
    for transport in ("udp", "tcp"):
        src = Src(rec, transport)
        body = multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES, pad=58000))
        code, reason, _ = src.invite(body)
        assert code == 200 and len(body) > 58000, (transport, reason)
        assert src.bye() == 200
    big = Src(rec, "tcp")
    big.request("INVITE", multipart(sdp([4000, 4002]), meta(PARTIES, pad=70000)))
    code, reason, _ = big.final()
    assert code == 513 and "Message Too Large" in reason
    big.sock.settimeout(3)
    assert big.sock.recv(100) == b""                     # closed
    assert rec["proc"].poll() is None


def test_r_usr_2_pause_by_metadata_alone_leaves_the_paused_audio_out(rec):
    """Build 1: a pause may come by metadata alone (mppsim's status state `paused` in a partial
    UPDATE, no SDP): the audio between pause and resume is not stored, the segment is indexed."""
    src = Src(rec, "udp")
    assert src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)))[0] == 200

    def state(value):
        return ("<?xml version='1.0'?><recording xmlns='urn:ietf:params:xml:ns:recording:1'>"
                "<datamode>partial</datamode><session session_id='SESS'>"
                "<mppsim:status xmlns:mppsim='urn:mppsim:recording:1'>"
                f"<mppsim:state>{value}</mppsim:state></mppsim:status></session></recording>").encode()
    t0 = time.monotonic()
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.6)
    t_pause = time.monotonic()
    src.request("UPDATE", state("paused"), ctype="application/rs-metadata+xml")
    assert src.final()[0] == 200
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.6)
    t_resume = time.monotonic()
    src.request("UPDATE", state("active"), ctype="application/rs-metadata+xml")
    assert src.final()[0] == 200
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.6)
    t_end = time.monotonic()
    assert src.bye() == 200
    r = row(rec, src.call_id)
    (seg,) = r["paused_segments"]                  # timed on this side, so load does not matter
    assert seg["duration"] == pytest.approx(t_resume - t_pause, abs=0.15)
    assert seg["start"] == pytest.approx(t_pause - t0, abs=0.15)
    assert r["talk_seconds"] == pytest.approx((t_end - t0) - (t_resume - t_pause), abs=0.25)


def test_rfc4028_a_session_not_refreshed_ends_by_session_timer_with_a_bye(tmp_path):
    """Build 1: a session ends by session-timer expiry: the recorder answers Session-Expires with
    refresher=uac and, without a refresh, sends BYE and stores `ended_by: session-timer`, even
    though RTP still flows (--rtp-timeout 0 = never; --min-se lowered for the test)."""
    proc, info = start(tmp_path, "--rtp-timeout", "0", "--min-se", "1")
    info["store_dir"] = tmp_path
    try:
        src = Src(info, "udp")
        code, reason, ok = src.invite(multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES)),
                                      extra="Session-Expires: 2\r\nSupported: timer\r\n")
        assert code == 200, reason
        assert "Session-Expires: 2;refresher=uac" in ok and "Require: timer" in ok
        src.send_audio([tone_payload(500), tone_payload(1000)], seconds=3.0)
        src.sock.settimeout(2)
        seen = src.sock.recv(65536).decode()
        while not seen.startswith("BYE "):
            seen = src.sock.recv(65536).decode()
        r = row(info, src.call_id)
        assert r["ended_by"] == "session-timer" and 1.5 < r["talk_seconds"] < 3.0
    finally:
        stop(proc)


def test_the_same_invite_on_a_new_transaction_gets_482_and_the_session_is_not_lost(rec):
    """A replayed INVITE (new branch, same Call-ID and From tag) must not replace the live
    session (which would leave its recording open forever): 482, and the first one ends normally."""
    src = Src(rec, "udp")
    body = multipart(sdp([r.getsockname()[1] for r in src.rtp]), meta(PARTIES))
    assert src.invite(body)[0] == 200
    to = src.to
    src.to = "<sip:srs@127.0.0.1>"
    src.request("INVITE", body, cseq=1)
    code, reason, _ = src.final()
    assert code == 482 and "Loop Detected" in reason
    src.to = to
    src.send_audio([tone_payload(500), tone_payload(1000)], seconds=0.3)
    assert src.bye() == 200
    assert row(rec, src.call_id)["ended_by"] == "bye"
