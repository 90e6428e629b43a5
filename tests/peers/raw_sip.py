"""A SIP client that sends exactly the bytes it is given (over UDP or TCP) and reads what comes
back: for feeding a recorder malformed and hostile input (tests/test_recorder_hostile.py), and a
small well-formed SIPREC session (INVITE, RTP tones on every stream, BYE) to check that it still
records afterwards.
"""
from __future__ import annotations

import re
import socket
import struct
import time
import uuid
import warnings
from dataclasses import dataclass

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@dataclass
class Response:
    code: int
    reason: str
    text: str

    def header(self, name: str) -> str | None:
        m = re.search(rf"(?im)^{name}:\s*(.*?)\s*$", self.text)
        return m.group(1) if m else None


def parse_responses(data: bytes) -> tuple[list[Response], bytes]:
    """Complete responses at the start of a TCP byte stream (framed by Content-Length), the rest."""
    out = []
    while b"\r\n\r\n" in data:
        head, rest = data.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        if len(rest) < length:
            break
        msg, data = head + b"\r\n\r\n" + rest[:length], rest[length:]
        start = re.match(rb"SIP/2\.0 (\d{3}) ?([^\r\n]*)", msg)
        if start:
            out.append(Response(int(start.group(1)), start.group(2).decode(errors="replace"),
                                msg.decode(errors="replace")))
    return out, data


class SipClient:
    """One local socket (UDP) or connection (TCP) to `host:port`."""

    def __init__(self, host: str, port: int, transport: str = "udp"):
        self.host, self.port, self.transport = host, port, transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host, 0))
        else:
            self.sock = socket.create_connection((host, port), 5)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def responses(self, call_id: str | None = None, timeout: float = 3.0, until_final: bool = True) -> list[Response]:
        """Responses (for `call_id`, if given) until a final one, or all within `timeout`."""
        got: list[Response] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(70000)
            except (socket.timeout, TimeoutError):
                return got
            except ConnectionError:
                return got
            if not chunk and self.transport != "udp":
                return got                                   # closed by the recorder
            if self.transport == "udp":
                new, _ = parse_responses(chunk)
            else:
                new, self.buf = parse_responses(self.buf + chunk)
            for r in new:
                if call_id is None or r.header("(?:call-id|i)") == call_id:
                    got.append(r)
                    if until_final and r.code >= 200:
                        return got

    def request(self, data: bytes, call_id: str, timeout: float = 3.0) -> Response | None:
        """Send and return the final response for `call_id` (None: no final answer in time)."""
        self.send(data)
        finals = [r for r in self.responses(call_id, timeout) if r.code >= 200]
        return finals[0] if finals else None

    def close(self) -> None:
        self.sock.close()


# --- well-formed SIPREC messages ----------------------------------------------------------------

def sdp(rtp_ports: list[int], codecs: str = "0 8 101", labels: list[str] | None = None, host="127.0.0.1") -> str:
    lines = ["v=0", "o=SRC 1 1 IN IP4 " + host, "s=-", f"c=IN IP4 {host}", "t=0 0"]
    for k, p in enumerate(rtp_ports):
        lines += [f"m=audio {p} RTP/AVP {codecs}", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                  "a=rtpmap:101 telephone-event/8000", f"a=label:{(labels or [])[k] if labels else k + 1}",
                  "a=sendonly"]
    return "\r\n".join(lines) + "\r\n"


def metadata(streams: int = 2, session_id: str = "c2Vzc2lvbg==", participant_ids=("cGFydDE=", "cGFydDI="),
             stream_ids=None, names=("Alice Smith", "Bob Jones")) -> str:
    stream_ids = stream_ids or [f"c3RyZWFt{k}" for k in range(streams)]
    parts = [f"<participant participant_id=\"{pid}\"><nameID aor=\"sip:{1001 + i}@example.com\">"
             f"<name>{names[i % len(names)]}</name></nameID></participant>"
             for i, pid in enumerate(participant_ids)]
    strs = [f"<stream stream_id=\"{sid}\" session_id=\"{session_id}\"><label>{k + 1}</label></stream>"
            for k, sid in enumerate(stream_ids)]
    assoc = [f"<participantstreamassoc participant_id=\"{pid}\"><send>{stream_ids[i % len(stream_ids)]}</send>"
             f"</participantstreamassoc>" for i, pid in enumerate(participant_ids)]
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
            "<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"><datamode>complete</datamode>"
            f"<session session_id=\"{session_id}\"><sipSessionID>hostile</sipSessionID></session>"
            + "".join(parts + strs + assoc) + "</recording>\r\n")


def multipart(parts: list[tuple[str, str | bytes]], boundary: str = "hostile-boundary") -> tuple[str, bytes]:
    """(Content-Type header value, body) of a multipart/mixed of (part headers, part body)."""
    body = b""
    for headers, content in parts:
        content = content.encode() if isinstance(content, str) else content
        body += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed;boundary={boundary}", body


def siprec_body(rtp_ports: list[int], meta: str | bytes | None = None, codecs: str = "0 8 101") -> tuple[str, bytes]:
    return multipart([("Content-Type: application/sdp", sdp(rtp_ports, codecs)),
                      ("Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session",
                       metadata(len(rtp_ports)) if meta is None else meta)])


def request(method: str, client: SipClient, call_id: str, *, body: bytes = b"", content_type: str | None = None,
            cseq: int = 1, from_tag: str = "src1", to_tag: str | None = None, extra: str = "",
            siprec: bool = True, content_length: int | None = None, uri: str | None = None,
            cseq_method: str | None = None) -> bytes:
    """A request with a routable Via (the client's own socket), so the recorder can answer it."""
    uri = uri or f"sip:srs@{client.host}:{client.port}"
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    contact = f"<sip:src@{client.host}:{client.local_port};transport={client.transport}>" + (";+sip.src" if siprec else "")
    head = [f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{client.via_transport} {client.host}:{client.local_port};branch={branch};rport",
            f"From: <sip:src@{client.host}>;tag={from_tag}",
            f"To: <sip:srs@{client.host}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}", f"CSeq: {cseq} {cseq_method or method}", "Max-Forwards: 70",
            f"Contact: {contact}"]
    if siprec and method == "INVITE":
        head.append("Require: siprec")
    if extra:
        head += extra.rstrip("\r\n").split("\r\n")
    if content_type:
        head.append(f"Content-Type: {content_type}")
    head.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


# --- RTP --------------------------------------------------------------------------------------------

def rtp_packet(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def pcmu_tone(freq: float, seconds: float) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return audioop.lin2ulaw((8000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes(), 2)


@dataclass
class Session:
    """An answered SIPREC session of `client` (its ACK sent)."""
    client: SipClient
    call_id: str
    to_tag: str
    rtp_ports: list[int]          # the recorder's, from its answer
    cseq: int = 1

    def in_dialog(self, method: str, **kw) -> bytes:
        self.cseq += 1
        return request(method, self.client, self.call_id, cseq=self.cseq, to_tag=self.to_tag, **kw)

    def send_tones(self, freqs: list[float], seconds: float, garbage: list[bytes] | None = None) -> None:
        """PCMU tones, one per stream, in real time; `garbage` datagrams interleaved."""
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out.bind((self.client.host, 0))
        audio = [pcmu_tone(f, seconds) for f in freqs]
        start = time.monotonic()
        for i in range(int(seconds / 0.02)):
            for k, port in enumerate(self.rtp_ports):
                out.sendto(rtp_packet(i, i * 160, 0x5000 + k, audio[k][i * 160:(i + 1) * 160]), (self.client.host, port))
                if garbage:
                    out.sendto(garbage[(i + k) % len(garbage)], (self.client.host, port))
            time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
        out.close()

    def bye(self) -> Response | None:
        return self.client.request(self.in_dialog("BYE"), self.call_id)


def start_session(client: SipClient, call_id: str | None = None, streams: int = 2, timeout: float = 5.0) -> Session:
    call_id = call_id or f"ok-{uuid.uuid4().hex}"
    ctype, body = siprec_body([30000 + 2 * k for k in range(streams)])
    final = client.request(request("INVITE", client, call_id, body=body, content_type=ctype), call_id, timeout)
    assert final is not None and final.code == 200, (final and (final.code, final.reason))
    to_tag = re.search(r"(?im)^(?:to|t):.*;\s*tag=([^;\s]+)", final.text).group(1)
    ports = [int(p) for p in re.findall(r"m=audio (\d+)", final.text)]
    client.send(request("ACK", client, call_id, to_tag=to_tag))
    return Session(client, call_id, to_tag, ports)
