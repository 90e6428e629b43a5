"""Tests for mppsim.phone.frontdoor (the stateless SIP redirect server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mppsim.phone.frontdoor import FrontDoor, lookup_user, parse_request
from mppsim.sip import framing
from mppsim.sip import message as sip_message

ROOT = Path(__file__).resolve().parents[1]

DIRECTORY = {
    "1002": "sip:1002@127.0.0.1:40123",
    "+14155550100": "sip:alice@127.0.0.1:40200;transport=udp",
    "14155550101": "<sip:bob@127.0.0.1:40201>",
}


def sip_request(method="INVITE", ruri="sip:1002@127.0.0.1", *, via_port=5099, transport="UDP",
                rport=True, branch="z9hG4bK-test1", to_tag=None, call_id="abc123@test",
                cseq=1, body=b"", compact=False, via_host="127.0.0.1") -> bytes:
    via = f"SIP/2.0/{transport} {via_host}:{via_port};branch={branch}" + (";rport" if rport else "")
    to = "<sip:1002@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    names = ("v", "f", "t", "i", "l") if compact else ("Via", "From", "To", "Call-ID", "Content-Length")
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"{names[0]}: {via}",
        f"{names[0]}: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-second",
        "Max-Forwards: 70",
        f'{names[1]}: "Tester" <sip:tester@127.0.0.1>;tag=from1',
        f"{names[2]}: {to}",
        f"{names[3]}: {call_id}",
        f"CSeq: {cseq} {method if method != 'ACK' else 'ACK'}",
        "Contact: <sip:tester@127.0.0.1:5099>",
        f"{names[4]}: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_response(data: bytes):
    resp = sip_message.parse(data)
    assert isinstance(resp, sip_message.Response)
    return resp.status, resp.reason, resp.headers, resp.body


def hdr(headers, name):
    return [v for n, v in headers if n == name.lower()]


@pytest.fixture
def fd():
    door = FrontDoor("127.0.0.1", 0, DIRECTORY)
    door.start()
    yield door
    door.stop()


@pytest.fixture
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2.0)
    yield s
    s.close()


def udp_ask(sock, door, data: bytes):
    sock.sendto(data, ("127.0.0.1", door.port))
    resp, _ = sock.recvfrom(65536)
    return parse_response(resp)


def recv_responses(sock: socket.socket, n: int, timeout: float = 2.0) -> list[bytes]:
    sock.settimeout(timeout)
    buf = b""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        raw, buf = framing.next_message(buf)
        if raw is not None:
            out.append(raw)
            continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


# -- unit-level parsing ------------------------------------------------------


def test_keep_transport_sets_the_request_s_transport_unless_udp_or_given():
    from mppsim.phone.frontdoor import keep_transport
    assert keep_transport("sip:1002@h:5", "tcp") == "sip:1002@h:5;transport=tcp"
    assert keep_transport('"B" <sip:1002@h:5;user=phone>', "TLS") == '"B" <sip:1002@h:5;user=phone;transport=tls>'
    assert keep_transport("sip:1002@h:5", "udp") == "sip:1002@h:5"
    assert keep_transport("sip:1002@h:5;transport=udp", "tcp") == "sip:1002@h:5;transport=udp"


def test_lookup_e164_with_and_without_plus():
    assert lookup_user(DIRECTORY, "+14155550100") == DIRECTORY["+14155550100"]
    assert lookup_user(DIRECTORY, "14155550100") == DIRECTORY["+14155550100"]
    assert lookup_user(DIRECTORY, "+14155550101") == DIRECTORY["14155550101"]
    assert lookup_user(DIRECTORY, "9999") is None
    assert lookup_user(DIRECTORY, "") is None


def test_parse_request_takes_requests_only():
    """The SIP toolkit parses (tests/test_sip_message.py); a redirect server refuses a response."""
    req = parse_request(sip_request(compact=True))
    assert req.method == "INVITE" and req.call_id == "abc123@test" and len(req.values("via")) == 2
    with pytest.raises(ValueError, match="a response"):
        parse_request(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n")


# -- over the wire -------------------------------------------------------------


def test_invite_udp_redirects_with_copied_headers(fd, udp):
    code, reason, headers, body = udp_ask(udp, fd, sip_request())
    assert (code, reason) == (302, "Moved Temporarily")
    assert hdr(headers, "contact") == ["<sip:1002@127.0.0.1:40123>"]
    vias = hdr(headers, "via")
    port = udp.getsockname()[1]
    assert len(vias) == 2
    assert vias[0] == (f"SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-test1;"
                       f"received=127.0.0.1;rport={port}")
    assert vias[1] == "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-second"
    assert hdr(headers, "from") == ['"Tester" <sip:tester@127.0.0.1>;tag=from1']
    (to,) = hdr(headers, "to")
    assert to.startswith("<sip:1002@127.0.0.1>;tag=") and len(to) > len("<sip:1002@127.0.0.1>;tag=")
    assert hdr(headers, "call-id") == ["abc123@test"]
    assert hdr(headers, "cseq") == ["1 INVITE"]
    assert hdr(headers, "content-length") == ["0"]
    assert hdr(headers, "server") == ["mppsim-frontdoor"]
    assert body == b""
    assert fd.redirects == 1
    assert fd.recent[-1] == ("INVITE", "1002", 302)


def test_udp_retransmission_gets_same_tag_and_existing_tag_kept(fd, udp):
    _, _, h1, _ = udp_ask(udp, fd, sip_request())
    _, _, h2, _ = udp_ask(udp, fd, sip_request())
    assert hdr(h1, "to") == hdr(h2, "to")
    _, _, h3, _ = udp_ask(udp, fd, sip_request(method="OPTIONS", to_tag="existing"))
    assert hdr(h3, "to") == ["<sip:1002@127.0.0.1>;tag=existing"]


def test_via_without_rport_is_not_stamped_when_host_matches(fd, udp):
    _, _, headers, _ = udp_ask(udp, fd, sip_request(rport=False))
    assert hdr(headers, "via")[0] == "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-test1"
    _, _, headers, _ = udp_ask(udp, fd, sip_request(rport=False, via_host="192.0.2.7"))
    assert hdr(headers, "via")[0] == "SIP/2.0/UDP 192.0.2.7:5099;branch=z9hG4bK-test1;received=127.0.0.1"


def test_invite_tcp_redirects(fd):
    with socket.create_connection(("127.0.0.1", fd.port), timeout=2) as s:
        s.sendall(sip_request(transport="TCP"))
        (resp,) = recv_responses(s, 1)
    code, _, headers, _ = parse_response(resp)
    assert code == 302
    # issue 21: the redirect keeps the request's transport (a TCP caller re-sent over UDP before)
    assert hdr(headers, "contact") == ["<sip:1002@127.0.0.1:40123;transport=tcp>"]
    assert hdr(headers, "via")[0].startswith("SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-test1;received=")


def test_tcp_two_messages_in_one_send_and_split_message(fd):
    with socket.create_connection(("127.0.0.1", fd.port), timeout=2) as s:
        body = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"
        both = (sip_request(transport="TCP", call_id="one", body=body)
                + b"\r\n\r\n"  # keep-alive ping between messages
                + sip_request("OPTIONS", transport="TCP", call_id="two"))
        s.sendall(both)
        r1, r2 = recv_responses(s, 2)
        assert parse_response(r1)[0] == 302 and hdr(parse_response(r1)[2], "call-id") == ["one"]
        assert parse_response(r2)[0] == 200 and hdr(parse_response(r2)[2], "call-id") == ["two"]

        msg = sip_request(transport="TCP", call_id="three", body=body)
        cut = len(msg) - len(body) - 10  # split inside the headers...
        s.sendall(msg[:cut])
        time.sleep(0.1)
        s.sendall(msg[cut:-5])  # ...and inside the body
        time.sleep(0.1)
        s.sendall(msg[-5:])
        (r3,) = recv_responses(s, 1)
        assert parse_response(r3)[0] == 302
        assert hdr(parse_response(r3)[2], "call-id") == ["three"]


def test_unknown_extension_404(fd, udp):
    code, reason, headers, _ = udp_ask(udp, fd, sip_request(ruri="sip:7777@127.0.0.1"))
    assert (code, reason) == (404, "No such extension")
    assert not hdr(headers, "contact")
    assert fd.redirects == 0
    assert fd.recent[-1] == ("INVITE", "7777", 404)


@pytest.mark.parametrize("ruri,expected", [
    ("sip:+14155550100@127.0.0.1;user=phone", "<sip:alice@127.0.0.1:40200;transport=udp>"),
    ("sip:14155550100@127.0.0.1", "<sip:alice@127.0.0.1:40200;transport=udp>"),
    ("tel:+14155550100", "<sip:alice@127.0.0.1:40200;transport=udp>"),
    ("sip:+14155550101@127.0.0.1", "<sip:bob@127.0.0.1:40201>"),
    ("sips:14155550101@127.0.0.1", "<sip:bob@127.0.0.1:40201>"),
])
def test_e164_with_and_without_plus(fd, udp, ruri, expected):
    code, _, headers, _ = udp_ask(udp, fd, sip_request(ruri=ruri))
    assert code == 302
    assert hdr(headers, "contact") == [expected]


def test_options_cancel_bye_register(fd, udp):
    code, _, headers, _ = udp_ask(udp, fd, sip_request("OPTIONS", ruri="sip:127.0.0.1"))
    assert code == 200
    assert hdr(headers, "allow") == ["INVITE, ACK, OPTIONS, CANCEL, BYE"]
    assert udp_ask(udp, fd, sip_request("CANCEL"))[0] == 200
    assert udp_ask(udp, fd, sip_request("BYE", to_tag="x"))[0] == 481
    code, reason, headers, _ = udp_ask(udp, fd, sip_request("REGISTER", ruri="sip:127.0.0.1"))
    assert (code, reason) == (405, "Method Not Allowed")
    assert hdr(headers, "allow") == ["INVITE, ACK, OPTIONS, CANCEL, BYE"]
    assert udp_ask(udp, fd, sip_request("SUBSCRIBE"))[0] == 405


def test_cancel_gets_same_to_tag_as_invite(fd, udp):
    to_invite = hdr(udp_ask(udp, fd, sip_request())[2], "to")
    to_cancel = hdr(udp_ask(udp, fd, sip_request("CANCEL"))[2], "to")
    assert to_invite == to_cancel


def test_ack_gets_no_response(fd, udp):
    udp.sendto(sip_request("ACK", to_tag="t1"), ("127.0.0.1", fd.port))
    udp.settimeout(0.3)
    with pytest.raises(socket.timeout):
        udp.recvfrom(65536)
    udp.settimeout(2.0)
    assert udp_ask(udp, fd, sip_request("OPTIONS"))[0] == 200
    assert ("ACK", "1002", 0) in list(fd.recent)


GARBAGE = [
    b"",
    b"\r\n\r\n",
    b"\x00\xff\xfe garbage \x80",
    b"hello world",
    b"INVITE sip:1002@h SIP/2.0\r\n\r\n",  # missing mandatory headers
    b"INVITE sip:1002@h SIP/3.0\r\nVia: x\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",  # a response
    b"INVITE sip:1002@h SIP/2.0\r\nno colon here\r\n\r\n",
    sip_request().replace(b"Content-Length: 0", b"Content-Length: banana"),
    sip_request().replace(b"Content-Length: 0", b"Content-Length: 500"),
    sip_request().replace(b"CSeq: 1 INVITE", b"CSeq: x"),
    os.urandom(1500),
]


def test_garbage_does_not_kill_server(fd, udp):
    for g in GARBAGE:
        udp.sendto(g, ("127.0.0.1", fd.port))
    # a valid request is still answered (and is the first thing that is)
    code, _, headers, _ = udp_ask(udp, fd, sip_request(call_id="after-garbage"))
    assert code == 302 and hdr(headers, "call-id") == ["after-garbage"]

    # a malformed TCP stream closes that connection only
    with socket.create_connection(("127.0.0.1", fd.port), timeout=2) as bad, \
            socket.create_connection(("127.0.0.1", fd.port), timeout=2) as good:
        bad.sendall(b"\x00\xffNOT SIP AT ALL\r\n\r\n")
        assert bad.recv(100) == b""  # closed by the server
        good.sendall(sip_request(transport="TCP"))
        (resp,) = recv_responses(good, 1)
        assert parse_response(resp)[0] == 302
    assert fd.running


def test_update_changes_routing(fd, udp):
    assert udp_ask(udp, fd, sip_request(ruri="sip:2001@127.0.0.1"))[0] == 404
    fd.update({"2001": "sip:2001@127.0.0.1:41000"})
    code, _, headers, _ = udp_ask(udp, fd, sip_request(ruri="sip:2001@127.0.0.1"))
    assert code == 302 and hdr(headers, "contact") == ["<sip:2001@127.0.0.1:41000>"]
    assert udp_ask(udp, fd, sip_request())[0] == 404  # 1002 is gone


def test_recent_is_bounded(fd, udp):
    for i in range(60):
        udp_ask(udp, fd, sip_request("OPTIONS", call_id=f"c{i}"))
    assert len(fd.recent) == 50


def test_stop_is_fast_and_frees_port():
    door = FrontDoor("127.0.0.1", 0, DIRECTORY).start()
    port = door.port
    conn = socket.create_connection(("127.0.0.1", port), timeout=2)  # an open TCP connection
    t0 = time.monotonic()
    door.stop()
    assert time.monotonic() - t0 < 1.0
    assert not door.running
    conn.close()
    with FrontDoor("127.0.0.1", port, DIRECTORY) as again:
        assert again.port == port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            assert udp_ask(s, again, sip_request())[0] == 302
    door.stop()  # idempotent


def test_udp_and_tcp_share_port():
    with FrontDoor("127.0.0.1", 0, {}) as door:
        assert door.port > 0
        with pytest.raises(OSError):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", door.port))
            finally:
                s.close()
        socket.create_connection(("127.0.0.1", door.port), timeout=2).close()


def test_main_process_end_to_end(tmp_path):
    dfile = tmp_path / "dir.json"
    dfile.write_text(json.dumps({"1002": "sip:1002@127.0.0.1:40123"}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mppsim.phone.frontdoor", "--listen", "127.0.0.1:0", "--directory", str(dfile)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("frontdoor listening on udp+tcp 127.0.0.1:"), (line, proc.stderr.read())
        port = int(line.rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(sip_request(), ("127.0.0.1", port))
            code, _, headers, _ = parse_response(s.recvfrom(65536)[0])
        assert code == 302 and hdr(headers, "contact") == ["<sip:1002@127.0.0.1:40123>"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
