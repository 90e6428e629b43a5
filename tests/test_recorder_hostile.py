"""mppsim-recorder under malformed and hostile input, as an attacker on the network would send it
(issue 9, Build 6): malformed SIP, SDP and metadata over UDP and TCP (hypothesis), REFER and
INVITE-with-Replaces, unknown methods, bursts of INVITEs, idle TCP connections, 16-m-line
offers, RTP garbage. Every request that can be answered (it has Via, Call-ID and CSeq) gets a
final answer, the process never dies, a valid session is recorded afterwards, and nothing is
written outside the store.

One recorder for the module, in a sandbox folder (its working directory is an empty folder in
it), on a free port. Bounded: well under a minute when the recorder behaves.
"""
from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mppsim.phone.analysis import analyse
from mppsim.recorder.wavfile import read
from tests.peers.raw_sip import (SipClient, metadata, multipart, request, sdp, siprec_body,
                                 start_session)
from tests.peers.recorder_proc import start_recorder

MARK = f"pwned-{uuid.uuid4().hex[:10]}"            # in every path-like id: must never name a file
HOSTILE = settings(max_examples=45, deadline=None, database=None, derandomize=False,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ANSWER_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def recorder(sandbox):
    cwd = sandbox / "cwd"
    cwd.mkdir()
    rec = start_recorder(sandbox / "store", "--rtp-timeout", "3", cwd=cwd)
    yield rec
    rec.stop()


@pytest.fixture(autouse=True)
def recorder_stays_up(recorder):
    yield
    assert recorder.alive(), "the recorder died:\n" + "\n".join(recorder.log().splitlines()[-40:])


def client(recorder, transport: str) -> SipClient:
    return SipClient(recorder.host, recorder.port, transport)


def finish(c: SipClient, call_id: str, answer) -> None:
    """An INVITE that was accepted is ACKed and ended, so sessions do not pile up."""
    if answer is not None and answer.code == 200 and "tag=" in (answer.header("(?:to|t)") or ""):
        tag = answer.header("(?:to|t)").split("tag=", 1)[1].split(";")[0]
        c.send(request("ACK", c, call_id, to_tag=tag))
        c.request(request("BYE", c, call_id, cseq=2, to_tag=tag), call_id, ANSWER_TIMEOUT)


# --- the hostile messages -------------------------------------------------------------------------

BILLION_LAUGHS = ('<?xml version="1.0"?>\r\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']>\r\n<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>'
                  '<session session_id="cw=="><sipSessionID>&lol9;</sipSessionID></session></recording>')
XXE = ('<?xml version="1.0"?>\r\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\r\n'
       '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>'
       '<session session_id="cw=="><sipSessionID>&xxe;</sipSessionID></session>'
       '<participant participant_id="cA=="><nameID aor="sip:a@b"><name>&xxe;</name></nameID></participant></recording>')
PATH_IDS = [f"../../../../../../tmp/{MARK}", f"/tmp/{MARK}", f"..\\..\\{MARK}", f"%2e%2e%2f{MARK}",
            f"recordings/../../{MARK}", f"{MARK}\x00.wav", f"~/{MARK}", f"./{MARK}/../{MARK}"]


def metadata_latin1() -> bytes:
    return ('<?xml version="1.0" encoding="ISO-8859-1"?>\r\n' + metadata(names=("Zoë Brontë", "José Núñez"))
            .split("\r\n", 1)[1]).encode("latin-1")


@st.composite
def hostile_invite(draw, transport: str):
    """(kind, builder(client, call_id) -> bytes, expected codes or None for any final answer)."""
    kinds = ["truncated", "cl_small", "cl_bad", "multipart", "non_utf8", "bomb", "xxe", "deep",
             "path_ids", "mlines", "method", "refer", "missing_header", "no_colon", "cseq_mismatch",
             "many_headers", "flipped", "huge"]
    if transport == "udp":
        kinds.append("cl_large")       # over TCP a too-large Content-Length just waits for more
    kind = draw(st.sampled_from(kinds))
    ports = [31000, 31002]
    ctype, body = siprec_body(ports)

    def invite(c, cid, **kw):
        return request("INVITE", c, cid, **{"body": body, "content_type": ctype, **kw})

    if kind == "truncated":
        cut = draw(st.integers(0, len(body) - 1))
        # cut after the last part's document only the closing delimiter is short, which is
        # tolerated (every part is whole): any final answer; cut before it, a 4xx
        whole = len(body[:body.rfind(b"\r\n--hostile-boundary--")].rstrip(b"\r\n"))
        return kind, lambda c, cid: invite(c, cid, body=body[:cut]), (None if cut >= whole else range(400, 500))
    if kind == "cl_small":
        k = draw(st.integers(1, len(body)))
        # a body cut short may still parse (a missing closing delimiter is tolerated): any answer
        return kind, lambda c, cid: invite(c, cid, content_length=len(body) - k), None
    if kind == "cl_large":
        k = draw(st.integers(1, 5000))
        return kind, lambda c, cid: invite(c, cid, content_length=len(body) + k), range(400, 500)
    if kind == "cl_bad":
        value = draw(st.sampled_from(["abc", "-5", "1e9", "99999999999999999999", "", "0x10", " 12 34"]))
        return kind, lambda c, cid: invite(c, cid).replace(f"Content-Length: {len(body)}".encode(),
                                                             f"Content-Length: {value}".encode()), range(400, 600)
    if kind == "multipart":
        variant = draw(st.sampled_from(["no_boundary", "wrong_boundary", "no_close", "no_blank_line",
                                        "empty_parts", "nested", "preamble_only", "boundary_in_part"]))
        meta_part = ("Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session",
                     metadata())
        sdp_part = ("Content-Type: application/sdp", sdp(ports))
        variants = {
            "no_boundary": ("multipart/mixed", body),
            "wrong_boundary": ("multipart/mixed;boundary=other", body),
            "no_close": (ctype, body.rsplit(b"--hostile-boundary--", 1)[0]),
            "no_blank_line": (ctype, body.replace(b"application/sdp\r\n\r\n", b"application/sdp\r\n", 1)),
            "empty_parts": multipart([("", ""), ("", "")]),
            "nested": multipart([("Content-Type: " + ctype, body), sdp_part]),
            "preamble_only": (ctype, b"just a preamble, no delimiter at all\r\n"),
            "boundary_in_part": multipart([sdp_part, (meta_part[0], meta_part[1] + "\r\n--hostile-boundary\r\n")]),
        }
        t, b = variants[variant]
        # a missing closing delimiter is tolerated (docs/protocol.md); a stray delimiter, a nested
        # multipart or a part whose blank line is missing may still be understood: those may be
        # recorded ("tolerate what can be understood"); the rest leaves nothing to record
        tolerable = variant in ("no_close", "boundary_in_part", "nested", "no_blank_line")
        return f"{kind}:{variant}", lambda c, cid: invite(c, cid, body=b, content_type=t), \
            None if tolerable else range(400, 500)
    if kind == "non_utf8":
        variant = draw(st.sampled_from(["utf16", "utf16_nobom", "latin1", "invalid", "part_header", "surrogate"]))
        meta = {"utf16": metadata().encode("utf-16"),
                "utf16_nobom": metadata().encode("utf-16-le"),
                "latin1": metadata_latin1(),
                "invalid": metadata().encode().replace(b"Alice", b"Al\xff\xfe\xc3ce"),
                "part_header": None,
                "surrogate": metadata().encode().replace(b"Alice", b"Al\xed\xa0\x80ce")}[variant]
        if variant == "part_header":
            t, b = ctype, body.replace(b"Content-Disposition: recording-session",
                                       b"Content-Disposition: recording-session;x=\xe9\xff\xfe")
        else:
            t, b = siprec_body(ports, meta)
        # decodable XML may be recorded (200); anything else is a 4xx with a reason
        return f"{kind}:{variant}", lambda c, cid: invite(c, cid, body=b, content_type=t), None
    if kind in ("bomb", "xxe"):
        t, b = siprec_body(ports, BILLION_LAUGHS if kind == "bomb" else XXE)
        return kind, lambda c, cid: invite(c, cid, body=b, content_type=t), range(400, 500)
    if kind == "deep":
        depth = draw(st.sampled_from([200, 2000, 20000]))
        meta = metadata().replace("</recording>", "<x>" * depth + "</x>" * depth + "</recording>")
        t, b = siprec_body(ports, meta)
        if len(b) > 60000 and transport == "udp":
            t, b = siprec_body(ports, metadata().replace("</recording>", "<x>" * 2000 + "</x>" * 2000 + "</recording>"))
        return f"{kind}:{depth}", lambda c, cid: invite(c, cid, body=b, content_type=t), None
    if kind == "path_ids":
        ids = draw(st.lists(st.sampled_from(PATH_IDS), min_size=4, max_size=4))
        meta = metadata(session_id=ids[0], participant_ids=(ids[1], ids[2]), stream_ids=[ids[3], ids[3] + "b"])
        t, b = siprec_body(ports, meta)
        extra = f"Session-ID: {ids[0][:60]}\r\nX-BroadWorks-Correlation-Info: {ids[1]}"
        return kind, lambda c, cid: invite(c, cid, body=b, content_type=t, extra=extra), None
    if kind == "mlines":
        n = draw(st.sampled_from([16, 32, 64]))
        t, b = siprec_body([32000 + 2 * k for k in range(n)], metadata(n))
        return f"{kind}:{n}", lambda c, cid: invite(c, cid, body=b, content_type=t), None
    if kind == "method":
        method = draw(st.sampled_from(["FOO", "PUBLISH", "SUBSCRIBE", "MESSAGE", "INFO", "NOTIFY",
                                       "PRACK", "HACK", "INVITEX", "GET"]))
        return f"{kind}:{method}", lambda c, cid: request(method, c, cid, body=b"hello", content_type="text/plain"), \
            range(400, 500)
    if kind == "refer":
        return kind, lambda c, cid: request("REFER", c, cid, extra=f"Refer-To: <sip:victim@{c.host}:9>"), range(400, 500)
    if kind == "missing_header":
        header = draw(st.sampled_from(["From", "To", "Max-Forwards", "Contact"]))
        def build(c, cid):
            lines = invite(c, cid).split(b"\r\n")
            return b"\r\n".join(line for line in lines if not line.startswith(header.encode() + b":"))
        # without From or To the 400 still goes back to the Via (Via, Call-ID and CSeq suffice)
        return f"{kind}:{header}", build, (range(400, 500) if header in ("From", "To") else None)
    if kind == "no_colon":
        return kind, lambda c, cid: invite(c, cid).replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nthis line has no colon", 1), \
            range(400, 500)
    if kind == "cseq_mismatch":
        return kind, lambda c, cid: invite(c, cid).replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE", 1), range(400, 500)
    if kind == "many_headers":
        n = draw(st.sampled_from([100, 1000]))
        extra = "\r\n".join(f"X-Junk-{i}: {'v' * 20}" for i in range(n))
        return f"{kind}:{n}", lambda c, cid: invite(c, cid, extra=extra), None
    if kind == "flipped":
        seed = draw(st.integers(0, 2**32 - 1))
        rnd = random.Random(seed)
        b = bytearray(body)
        for _ in range(rnd.randint(1, 40)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        return kind, lambda c, cid: invite(c, cid, body=bytes(b)), None
    # huge: over 64 kB on TCP (513 or 400), just under the UDP datagram limit on UDP
    size = 100_000 if transport == "tcp" else 60_000
    meta = metadata().replace("</recording>", "<!--" + "x" * size + "--></recording>")
    t, b = siprec_body(ports, meta)
    return kind, lambda c, cid: invite(c, cid, body=b, content_type=t), (range(400, 600) if transport == "tcp" else None)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_every_malformed_request_gets_a_final_answer(recorder, transport):
    """Build 6: malformed SIP, SDP and metadata (truncated, wrong Content-Length, broken
    multipart, non-UTF-8, entity expansion, external entities, deep nesting, path-like ids,
    16+ m-lines, unknown methods, REFER, missing headers, bytes flipped, oversized): each gets a
    final answer within 3 s (a 4xx with a reason where it cannot be recorded), and the recorder
    keeps running."""
    seen: dict[str, int] = {}

    @HOSTILE
    @given(case=hostile_invite(transport))
    def check(case):
        kind, build, expected = case
        c = client(recorder, transport)
        call_id = f"hostile-{uuid.uuid4().hex}"
        try:
            answer = c.request(build(c, call_id), call_id, ANSWER_TIMEOUT)
            assert answer is not None, f"{kind}: no final answer over {transport}"
            assert answer.code >= 200 and (answer.code < 300 or answer.reason.strip()), (kind, answer.code, answer.reason)
            rate_limited = answer.code == 503 and answer.header("Retry-After") is not None
            if expected is not None and not rate_limited:     # the per-source limit may answer first
                assert answer.code in expected, (kind, answer.code, answer.reason)
            seen[kind.split(":")[0]] = seen.get(kind.split(":")[0], 0) + 1
            finish(c, call_id, answer)
        finally:
            c.close()
        assert recorder.alive(), f"{kind} killed the recorder"

    check()
    assert len(seen) >= 10, seen          # the draw really covered the kinds


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=3000), transport=st.sampled_from(["udp", "tcp"]))
def test_random_bytes_never_kill_the_recorder(recorder, data, transport):
    """Bytes that are not SIP at all (nothing to answer) are dropped; the recorder stays up and
    still answers OPTIONS on the same transport."""
    c = client(recorder, transport)
    try:
        c.send(data + (b"\r\n\r\n" if transport == "tcp" else b""))
    finally:
        c.close()
    probe = client(recorder, transport)
    try:
        call_id = f"probe-{uuid.uuid4().hex}"
        answer = probe.request(request("OPTIONS", probe, call_id, siprec=False), call_id, ANSWER_TIMEOUT)
        assert answer is not None and answer.code == 200, answer
    finally:
        probe.close()


# --- in-dialog attacks ----------------------------------------------------------------------------

def listener() -> tuple[socket.socket, socket.socket, int]:
    """A UDP and a TCP socket on one port: where a REFER points the recorder."""
    for _ in range(20):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            t.listen(5)
            return u, t, port
        except OSError:
            u.close()
            t.close()
    raise RuntimeError("no free port")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_refer_in_a_recording_dialog_is_refused_and_the_recorder_calls_nobody(recorder, transport):
    """Class 9: an SRS never originates calls: REFER inside a recording dialog gets 403/405 and
    nothing reaches the Refer-To target; the session goes on and ends normally."""
    udp, tcp, port = listener()
    c = client(recorder, transport)
    try:
        s = start_session(c)
        answer = c.request(s.in_dialog("REFER", extra=f"Refer-To: <sip:victim@127.0.0.1:{port};transport=udp>\r\n"
                                                      f"Referred-By: <sip:src@127.0.0.1>"), s.call_id)
        assert answer is not None and answer.code in (403, 405), answer and (answer.code, answer.reason)
        udp.settimeout(1.0)
        tcp.settimeout(0.1)
        with pytest.raises((socket.timeout, TimeoutError)):
            udp.recvfrom(65535)
        with pytest.raises((socket.timeout, TimeoutError)):
            tcp.accept()
        bye = s.bye()
        assert bye is not None and bye.code == 200
    finally:
        c.close()
        udp.close()
        tcp.close()


def test_invite_with_replaces_cannot_hijack_a_live_recording(recorder):
    """Class 10: a plain INVITE (no SIPREC) with Replaces naming a recording dialog is refused;
    the recording goes on and ends by its own BYE."""
    c = client(recorder, "tcp")
    attacker = client(recorder, "udp")
    try:
        s = start_session(c)
        call_id = f"hijack-{uuid.uuid4().hex}"
        replaces = f"Replaces: {s.call_id};to-tag={s.to_tag};from-tag=src1"
        answer = attacker.request(request("INVITE", attacker, call_id, body=sdp([33000]).encode(),
                                          content_type="application/sdp", siprec=False, extra=replaces), call_id)
        assert answer is not None and 400 <= answer.code < 500, answer and (answer.code, answer.reason)
        s.send_tones([700, 1100], 0.6)
        bye = s.bye()
        assert bye is not None and bye.code == 200
        (row,) = recorder.wait_rows(lambda r: r["recording_call_id"] == s.call_id and r["state"] != "recording")
        assert row["ended_by"] == "bye", row["ended_by"]
    finally:
        c.close()
        attacker.close()


# --- exhaustion ---------------------------------------------------------------------------------

def test_burst_of_unacknowledged_invites_and_idle_tcp_connections_do_not_stop_recording(recorder):
    """Class 11: 60 INVITEs in a burst, never ACKed, and 120 idle TCP connections held open do
    not stop recording: each INVITE gets a final answer, and a valid session over TCP and one over
    UDP are then recorded with their audio."""
    idle = []
    try:
        for _ in range(120):
            idle.append(socket.create_connection((recorder.host, recorder.port), 5))
        burst = client(recorder, "udp")
        ids = [f"burst-{i}-{uuid.uuid4().hex[:8]}" for i in range(60)]
        ctype, body = siprec_body([34000, 34002])
        for cid in ids:
            burst.send(request("INVITE", burst, cid, body=body, content_type=ctype))
        finals: dict[str, int] = {}
        deadline = time.monotonic() + 10
        while len(finals) < len(ids) and time.monotonic() < deadline:
            for r in burst.responses(None, 0.5, until_final=False):
                if r.code >= 200:
                    finals[r.header("(?:call-id|i)")] = r.code
        assert set(finals) == set(ids), f"{len(ids) - len(finals)} INVITEs of the burst got no final answer"
        burst.close()
        for transport in ("tcp", "udp"):
            c = client(recorder, transport)
            s = start_session(c)
            s.send_tones([700, 1100], 1.0)
            assert s.bye().code == 200
            c.close()
            (row,) = recorder.wait_rows(lambda r: r["recording_call_id"] == s.call_id and r["state"] != "recording")
            rate, audio = read(row["audio_path"])
            assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(700, rel=0.02)
            assert analyse(audio[:, 1], rate).freq_hz == pytest.approx(1100, rel=0.02)
    finally:
        for s in idle:
            s.close()


def test_sixteen_m_line_offer_is_answered_and_the_recorder_stays_up(recorder):
    """The pjsua recorder died on 16-m-line offers (socket slots): it is answered (200 with as many
    m-lines, or 488), and a normal session is recorded right after."""
    for transport in ("udp", "tcp"):
        c = client(recorder, transport)
        call_id = f"m16-{uuid.uuid4().hex}"
        ctype, body = siprec_body([35000 + 2 * k for k in range(16)], metadata(16))
        answer = c.request(request("INVITE", c, call_id, body=body, content_type=ctype), call_id)
        assert answer is not None and answer.code in (200, 488), answer and (answer.code, answer.reason)
        if answer.code == 200:
            assert answer.text.count("m=audio") == 16
        finish(c, call_id, answer)
        c.close()


def test_rtp_garbage_does_not_spoil_a_recording(recorder):
    """RTP garbage (short packets, wrong version, absurd CSRC count / extension length / padding,
    random bytes) on the session's RTP ports between the real packets: the recording still holds
    the tones, on the right channels."""
    garbage = [b"", b"\x80", b"\x00" * 12 + b"x" * 160, b"\x8f\x00" + b"\x00" * 10,
               b"\x90\x00\x00\x01" + b"\x00" * 8 + b"\xff\xff\xff\xff", b"\xa0\x00\x00\x02" + b"\x00" * 8 + b"\x00" * 3 + b"\xff",
               os.urandom(172), os.urandom(1400), b"\x80\x00" + b"\xff" * 10 + b"\x00" * 160]
    c = client(recorder, "udp")
    try:
        s = start_session(c)
        s.send_tones([700, 1100], 1.2, garbage=garbage)
        assert s.bye().code == 200
        (row,) = recorder.wait_rows(lambda r: r["recording_call_id"] == s.call_id and r["state"] != "recording")
        rate, audio = read(row["audio_path"])
        left, right = analyse(audio[:, 0], rate), analyse(audio[:, 1], rate)
        assert left.freq_hz == pytest.approx(700, rel=0.02) and left.active_seconds >= 1.0, left
        assert right.freq_hz == pytest.approx(1100, rel=0.02) and right.active_seconds >= 1.0, right
    finally:
        c.close()


def test_hostile_reinvites_and_updates_neither_kill_nor_end_the_session(recorder):
    """The pjsua recorder died on bursts of re-INVITEs: 30 re-INVITEs and UPDATEs in a row inside
    one session (2 <-> 16 m-lines, broken metadata, no SDP, bad SDP, entity expansion, CSeq
    going back) each get a final answer; the session is kept and its audio recorded."""
    c = client(recorder, "tcp")
    try:
        s = start_session(c)
        bodies = [siprec_body([36000, 36002]), siprec_body([36000 + 2 * k for k in range(16)], metadata(16)),
                  siprec_body([36000, 36002], "<recording>broken"), siprec_body([36000, 36002], BILLION_LAUGHS),
                  ("application/sdp", b"v=0\r\nm=audio nonsense\r\n"), ("application/sdp", sdp([36000, 36002]).encode()),
                  ("application/rs-metadata+xml", metadata().encode()), ("text/plain", b"\xff\xfe junk")]
        for i in range(30):
            ctype, body = bodies[i % len(bodies)]
            method = "UPDATE" if i % 3 == 2 else "INVITE"
            msg = s.in_dialog(method, body=body, content_type=ctype)
            if i == 17:                                    # a CSeq from the past
                msg = msg.replace(f"CSeq: {s.cseq} ".encode(), b"CSeq: 1 ", 1)
            answer = c.request(msg, s.call_id)
            assert answer is not None and answer.code >= 200, (i, method, ctype)
            if method == "INVITE":
                c.send(request("ACK", c, s.call_id, cseq=s.cseq, to_tag=s.to_tag))
        ctype, body = siprec_body([36000, 36002])
        final = c.request(s.in_dialog("INVITE", body=body, content_type=ctype), s.call_id)
        assert final is not None and final.code == 200, final and (final.code, final.reason)
        c.send(request("ACK", c, s.call_id, cseq=s.cseq, to_tag=s.to_tag))
        s.rtp_ports = [int(p) for p in re.findall(r"m=audio (\d+)", final.text)][:2]
        s.send_tones([700, 1100], 1.0)
        assert s.bye().code == 200
        (row,) = recorder.wait_rows(lambda r: r["recording_call_id"] == s.call_id and r["state"] != "recording")
        rate, audio = read(row["audio_path"])
        assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(700, rel=0.02)
        assert analyse(audio[:, 1], rate).freq_hz == pytest.approx(1100, rel=0.02)
    finally:
        c.close()


# --- afterwards -----------------------------------------------------------------------------------

def test_after_all_that_a_valid_session_is_recorded_and_nothing_was_written_outside_the_store(recorder, sandbox):
    """Build 6: the recorder is still up, records a valid session, wrote nothing outside its store
    (its working folder is empty), and no path-like id became a file anywhere."""
    c = client(recorder, "tcp")
    s = start_session(c)
    s.send_tones([900, 1300], 1.0)
    assert s.bye().code == 200
    c.close()
    (row,) = recorder.wait_rows(lambda r: r["recording_call_id"] == s.call_id and r["state"] != "recording")
    rate, audio = read(row["audio_path"])
    assert analyse(audio[:, 0], rate).freq_hz == pytest.approx(900, rel=0.02)
    assert recorder.alive()
    assert list((sandbox / "cwd").iterdir()) == []
    assert sorted(p.name for p in sandbox.iterdir()) == ["cwd", "store", "store-recorder.log"]
    store = recorder.store.resolve()
    for path in store.rglob("*"):
        assert path.resolve().is_relative_to(store), path        # no symlink out of the store
        assert MARK not in path.name, path
    for root in (Path("/tmp"), Path.cwd(), Path.home()):
        assert not list(root.glob(f"*{MARK}*")), root


def recorder_stats(recorder) -> dict:
    """This recorder's line of `mppsim-recorder --stats` (its status file is rewritten every second)."""
    time.sleep(1.5)
    out = subprocess.run([sys.executable, "-m", "mppsim.recorder.cli", "--stats", "--store", str(recorder.store)],
                         capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[1])
    (mine,) = [s for s in map(json.loads, out.stdout.split("\n")[:-1]) if s["pid"] == recorder.ready["pid"]]
    return mine


def test_refusals_are_logged_with_a_reason_and_counted_and_no_traceback(recorder):
    """Build 3 / issue 9 item 13: each refusal of this module's hostile input is in the recorder's
    log with its reason, counted by `mppsim-recorder --stats`, and nothing raised a traceback.
    One of each class is sent here (what the hypothesis draws above cover differs run to run) and
    the counts must grow by what was sent."""
    before = recorder_stats(recorder)["refused"]
    c = client(recorder, "tcp")
    try:
        for msg, code in ((request("FOO", c, f"refuse-{uuid.uuid4().hex}", body=b"hi", content_type="text/plain"), 405),
                          (request("REFER", c, f"refuse-{uuid.uuid4().hex}", extra=f"Refer-To: <sip:v@{c.host}:9>"), 403),
                          (request("INVITE", c, f"refuse-{uuid.uuid4().hex}",
                                   **dict(zip(("content_type", "body"), siprec_body([36000, 36002], "<recording>broken")))), 400)):
            call_id = re.search(rb"Call-ID: (\S+)", msg).group(1).decode()
            for attempt in range(5):                       # the per-source limit may answer first
                answer = c.request(msg.replace(b"CSeq: 1 ", b"CSeq: %d " % (attempt + 1), 1), call_id, ANSWER_TIMEOUT)
                if answer is None or answer.code != 503:
                    break
                time.sleep(float(answer.header("Retry-After") or 2))
            assert answer is not None and answer.code == code, answer and (answer.code, answer.reason)
    finally:
        c.close()
    log = recorder.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 500:][:3000]
    assert re.search(r"(?m)^.*refused 403 REFER not accepted.*\|.*REFER", log), "no REFER refusal logged"
    assert re.search(r"(?m)^.*refused 405 Method Not Allowed.*\| FOO", log), "no 405 refusal logged"
    assert re.search(r"(?m)^.*refused 400 .*\| INVITE", log), "no 400 refusal of an INVITE logged"
    after = recorder_stats(recorder)["refused"]
    grown = {key.split()[0] for key in after if after[key] > before.get(key, 0)}
    assert {"400", "403", "405"} <= grown, (before, after)
