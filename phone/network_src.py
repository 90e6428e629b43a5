"""The network SRC: the SIP side of an agent's recording sessions, beside pjsua2 (issue 11).

Why: real SIPREC messages are larger than the 4000 bytes the PyPI pjsua2 can send or receive
(PJSIP_MAX_PKT_LEN). So the agent's pjsua2 keeps only a small call toward this component
(SDP only, over loopback TCP), and this component holds the real dialog toward the SRS:

    agent pjsua2  --INVITE (SDP, X-Mppsim-Recording: <rid>)-->  NetworkSrc  --INVITE (webex|rfc7866,
                  <--200 (the SRS's SDP, filtered)-----------               full size)--> SRS
    agent pjmedia ==================== RTP, straight to the SRS's ports ====================> SRS

Every offer of the agent (start, pause, resume) becomes the dialect's INVITE / re-INVITE with the
latest metadata the agent handed over (``set_document``); the SRS's answer comes back. Metadata
updates without a media change (announcement, transfer, conference) are sent by this component
alone (``update``: UPDATE or re-INVITE). A BYE or a lost connection on one side ends the other.

One per agent process, on its own asyncio thread (docs/decisions.md: cheaper than a process per
org, nothing for the app to start, and it dies with its agent like a real call's SRC). It never
calls pjsua, so the thread needs no pjsua registration. TCP only, both sides.
"""
from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from recording import siprec_wire as W
from recording.sipmsg import sdp_part, sdp_streams_state, split_multipart

RID_HEADER = "X-Mppsim-Recording"
TIMER_B = 32.0        # RFC 3261 transaction timeout
CONNECT_TIMEOUT = 5.0
MAX_MESSAGE = 1 << 20
PJSIP_MAX_PKT_LEN = 4000   # the PyPI pjsua2's limit (../shared/DESIGN.md)


@dataclass
class Spec:
    """What the agent says about one recording session before its pjsua2 call starts."""
    dialect: str                      # webex | rfc7866
    target: str                       # the SRS's SIP URI (transport=tcp)
    from_header: str                  # From value without tag
    contact_user: str = ""            # user part of our Contact ("" for BroadWorks' bare host)
    extra: dict[str, str] = field(default_factory=dict)   # fixed dialect headers
    metadata: str = ""                # latest metadata document
    status: str | None = None         # latest X-Mppsim-Status value (new events only)
    max_size: int | None = None       # the SRS's message limit, if it has one (see _transact)


@dataclass
class Relay:
    rid: str
    spec: Spec
    local_writer: asyncio.StreamWriter
    local_invite: W.Message               # the agent's initial INVITE (dialog identifiers)
    local_tag: str = field(default_factory=lambda: secrets.token_hex(6))
    local_cseq: int = 1
    agent_sdp: str = ""
    last_offer: str = ""                  # last SDP offered to the SRS
    leg: W.Leg | None = None
    remote_reader: asyncio.StreamReader | None = None
    remote_writer: asyncio.StreamWriter | None = None
    origin: W.Origin = field(default_factory=lambda: W.Origin("BroadWorks"))
    answer_origin: W.Origin = field(default_factory=lambda: W.Origin("mppsim-src"))
    pending: dict = field(default_factory=dict)       # (cseq, method) -> Future[Message]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    established: bool = False
    ended: bool = False
    oversize_said: bool = False
    sent: list[str] = field(default_factory=list)      # every request sent to the SRS (tests, docs)


class NetworkSrc:
    def __init__(self, host: str = "127.0.0.1", log: Callable[[str], None] | None = None,
                 keep_sent: bool = False):
        self.host = host
        self.port: int | None = None
        self.log = log or (lambda _text: None)
        self.keep_sent = keep_sent
        self._specs: dict[str, Spec] = {}
        self._lock = threading.Lock()
        self._by_local: dict[str, Relay] = {}     # agent leg Call-ID -> relay
        self._by_remote: dict[str, Relay] = {}    # SRS leg Call-ID -> relay
        self._by_rid: dict[str, Relay] = {}
        self.overhead_ms: list[float] = []        # answer latency this component adds
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None

    # ----- any thread -------------------------------------------------------------------------
    def start(self) -> int:
        """Start the thread, bind a free loopback port; returns it."""
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self._server = self.loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, 0, limit=MAX_MESSAGE))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=run, name="network-src", daemon=True)
        self._thread.start()
        ready.wait(5)
        if self.port is None:
            raise RuntimeError("network SRC did not start")
        return self.port

    @property
    def uri(self) -> str:
        return f"sip:src@{self.host}:{self.port};transport=tcp"

    def open(self, rid: str, spec: Spec) -> None:
        with self._lock:
            self._specs[rid] = spec

    def set_document(self, rid: str, metadata: str, status: str | None) -> None:
        """The metadata (and status header) for the next message of this session."""
        with self._lock:
            spec = self._specs.get(rid)
            if spec is not None:
                spec.metadata, spec.status = metadata, status

    def update(self, rid: str, method: str = "UPDATE") -> None:
        """Send the current document to the SRS now, without a media change."""
        if method not in ("UPDATE", "INVITE"):
            raise ValueError(f"method: {method!r} not allowed; allowed: UPDATE, INVITE")
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._update(rid, method), self.loop)

    def sent(self, rid: str) -> list[str]:
        relay = self._by_rid.get(rid)
        return list(relay.sent) if relay else []

    def stop(self) -> None:
        if self.loop is None:
            return
        loop = self.loop

        async def close():
            for relay in list(self._by_rid.values()):
                await self._end_remote(relay)
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close(), loop).result(3)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(3)

    # ----- loop thread: framing -----------------------------------------------------------------
    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> W.Message | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        head = head.lstrip(b"\r\n")   # keep-alive CRLFs before a message
        if not head.strip():
            return W.Message("", {}, "", "")
        msg = W.parse(head)
        try:
            length = int(msg.header("content-length") or 0)
        except ValueError:
            length = 0
        if length > MAX_MESSAGE:
            return None
        body = await reader.readexactly(length) if length else b""
        return W.parse(head + body)

    @staticmethod
    def _write(writer: asyncio.StreamWriter, text: str) -> None:
        if not writer.is_closing():
            writer.write(text.encode("utf-8"))

    # ----- the agent's side -------------------------------------------------------------------
    async def _serve(self, reader, writer) -> None:
        try:
            while True:
                msg = await self._read(reader)
                if msg is None:
                    break
                if not msg.start:
                    continue
                if msg.is_response:
                    continue   # answers to our BYE toward the agent: nothing to do
                try:
                    await self._on_agent_request(msg, writer)
                except Exception as exc:   # one bad message must not stop the relay
                    self.log(f"network SRC: {msg.start}: {exc!r}")
        finally:
            for relay in [r for r in self._by_local.values() if r.local_writer is writer]:
                await self._end_remote(relay)
            try:
                writer.close()
            except RuntimeError:   # the loop is shutting down
                pass

    async def _on_agent_request(self, msg: W.Message, writer) -> None:
        method = msg.method
        relay = self._by_local.get(msg.call_id)
        if method == "ACK":
            return
        if method == "INVITE" and relay is None:
            asyncio.ensure_future(self._start(msg, writer))
            return
        if relay is None:
            self._write(writer, W.response(msg.headers, 481, "Call/Transaction Does Not Exist"))
            return
        if method == "INVITE":
            asyncio.ensure_future(self._reinvite(relay, msg))
        elif method == "BYE":
            self._write(writer, W.response(msg.headers, 200, "OK"))
            await self._end_remote(relay)
        elif method == "CANCEL":
            self._write(writer, W.response(msg.headers, 200, "OK"))
            if not relay.established:
                await self._cancel(relay)
        else:
            self._write(writer, W.response(msg.headers, 200, "OK"))

    def _answer_agent(self, relay: Relay, req: W.Message, code: int, reason: str, sdp: str | None = None) -> None:
        self._write(relay.local_writer, W.response(
            req.headers, code, reason, to_tag=relay.local_tag,
            contact=f"<{self.uri}>" if code < 300 else None, sdp=sdp))

    async def _start(self, msg: W.Message, writer) -> None:
        rid = msg.header(RID_HEADER)
        with self._lock:
            spec = self._specs.get(rid)
        if spec is None:
            self._write(writer, W.response(msg.headers, 404, "Unknown recording session", to_tag="x"))
            return
        relay = Relay(rid, spec, writer, msg, agent_sdp=msg.body)
        self._by_local[msg.call_id] = relay
        self._by_rid[rid] = relay
        self._write(writer, W.response(msg.headers, 100, "Trying"))
        t_in = time.monotonic()
        host, port = W.host_port(spec.target)
        try:
            relay.remote_reader, relay.remote_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_MESSAGE), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self._answer_agent(relay, msg, 503, f"Recorder unreachable ({exc.__class__.__name__})")
            self._forget(relay)
            return
        local_port = relay.remote_writer.get_extra_info("sockname")[1]
        contact_host = f"{spec.contact_user}@" if spec.contact_user else ""
        param = ";src" if spec.dialect == "webex" else ";+sip.src"
        relay.leg = W.Leg(spec.dialect, spec.target, spec.target, spec.from_header,
                          f"<sip:{contact_host}{self.host}:{self.port};transport=tcp>{param}",
                          self.host, local_port, extra=dict(spec.extra))
        self._by_remote[relay.leg.call_id] = relay
        asyncio.ensure_future(self._read_remote(relay))
        async with relay.lock:
            offer = self._offer(relay, msg.body)
            t_out = time.monotonic()
            resp, branch = await self._transact(relay, "INVITE", sdp=offer)
            t_back = time.monotonic()
            if resp is None:
                self._answer_agent(relay, msg, 408, "Recorder did not answer")
                await self._end_remote(relay, bye=False)
                return
            if resp.code >= 300:
                self._ack(relay, resp, branch)
                self._answer_agent(relay, msg, resp.code, resp.reason or "Refused")
                await self._end_remote(relay, bye=False)
                return
            self._confirm(relay, resp)
            self._ack(relay, resp)
            relay.established = True
            try:
                answer = W.agent_answer(msg.body, self._sdp_of(resp), relay.answer_origin)
            except ValueError as exc:
                self._answer_agent(relay, msg, 488, f"Not Acceptable Here: {exc}")
                await self._end_remote(relay)
                return
            self._answer_agent(relay, msg, 200, "OK", sdp=answer)
            self.overhead_ms.append(round(((t_out - t_in) + (time.monotonic() - t_back)) * 1000, 3))

    async def _reinvite(self, relay: Relay, msg: W.Message) -> None:
        """The agent re-offers (pause/resume): the SRS gets the dialect's re-INVITE."""
        self._write(relay.local_writer, W.response(msg.headers, 100, "Trying"))
        async with relay.lock:
            if relay.ended or relay.leg is None:
                self._answer_agent(relay, msg, 481, "Call/Transaction Does Not Exist")
                return
            relay.agent_sdp = msg.body
            resp, _branch = await self._transact(relay, "INVITE", sdp=self._offer(relay, msg.body))
            if resp is None or resp.code >= 300:
                if resp is not None:
                    self._ack(relay, resp, _branch)
                self._answer_agent(relay, msg, resp.code if resp else 408,
                                   (resp.reason if resp else "Recorder did not answer") or "Refused")
                return
            self._ack(relay, resp)
            try:
                answer = W.agent_answer(msg.body, self._sdp_of(resp), relay.answer_origin)
            except ValueError as exc:
                self._answer_agent(relay, msg, 488, f"Not Acceptable Here: {exc}")
                return
            self._answer_agent(relay, msg, 200, "OK", sdp=answer)

    async def _update(self, rid: str, method: str) -> None:
        relay = self._by_rid.get(rid)
        if relay is None or not relay.established or relay.ended:
            return   # not answered yet: the document goes with the INVITE or its re-INVITE
        async with relay.lock:
            if relay.ended:
                return
            resp, branch = await self._transact(relay, method, sdp=relay.last_offer)
            if resp is None:
                self.log(f"network SRC: {method} metadata update: no answer from the recorder")
            elif resp.code >= 300:
                if method == "INVITE":
                    self._ack(relay, resp, branch)
                self.log(f"network SRC: {method} metadata update refused: {resp.code} {resp.reason}")
            elif method == "INVITE":
                self._ack(relay, resp)

    # ----- the SRS's side ---------------------------------------------------------------------
    def _offer(self, relay: Relay, agent_sdp: str) -> str:
        paused = bool(agent_sdp) and all(s == "inactive" for s in sdp_streams_state(agent_sdp))
        if relay.spec.dialect == "webex":
            offer = W.webex_offer(agent_sdp, relay.origin, paused)
        else:
            offer = W.rfc7866_offer(agent_sdp, paused)
        relay.last_offer = offer
        return offer

    @staticmethod
    def _sdp_of(resp: W.Message) -> str:
        ctype = resp.header("content-type").lower()
        if ctype.startswith("multipart/"):
            part = sdp_part(split_multipart(resp.header("content-type"), resp.body))
            return part.body if part else ""
        return resp.body

    def _confirm(self, relay: Relay, resp: W.Message) -> None:
        leg = relay.leg
        leg.remote_tag = resp.tag("to") or leg.remote_tag
        contact = resp.header("contact")
        if contact:
            leg.request_uri = W.uri_of(contact)
        sid = resp.header("session-id").split(";", 1)[0].strip()
        if len(sid) == 32:
            leg.remote_session_id = sid
        routes = resp.headers.get("record-route", [])
        leg.route = list(reversed(routes))

    async def _transact(self, relay: Relay, method: str, sdp: str | None) -> tuple[W.Message | None, str]:
        """Send a request with the session's latest document; wait for its final answer."""
        with self._lock:
            metadata, status = relay.spec.metadata, relay.spec.status
            relay.spec.status = None   # it carries the events not sent before: once only
        extra = {"X-Mppsim-Status": status} if status else None
        branch = W.new_branch(relay.leg.dialect)
        cseq = relay.leg.cseq
        text = W.request(relay.leg, method, sdp=sdp, metadata=metadata or None, extra=extra, branch=branch)
        limit = relay.spec.max_size
        if limit and len(text.encode("utf-8")) > limit and relay.spec.dialect == "webex" and sdp:
            # mppsim's pjsua2 recorder drops messages over 4000 bytes; BroadWorks-size ones are
            # ~4.1 kB. For that recorder only, offer just the agent's own codecs (issue 11;
            # goes away with the asyncio recorder, issue 9).
            relay.leg.cseq = cseq
            sdp = W.webex_offer(relay.agent_sdp, W.Origin("BroadWorks", relay.origin.session,
                                                          relay.origin.version - 1),
                                paused="c=IN IP4 0.0.0.0" in sdp, compact=True)
            relay.last_offer = sdp
            text = W.request(relay.leg, method, sdp=sdp, metadata=metadata or None, extra=extra,
                             branch=branch)
        future = asyncio.get_running_loop().create_future()
        key = (relay.leg.cseq, method)
        relay.pending[key] = future
        if self.keep_sent:
            relay.sent.append(text)
        size = len(text.encode("utf-8"))
        if size > PJSIP_MAX_PKT_LEN and not relay.oversize_said:
            relay.oversize_said = True   # worth knowing when the SRS is built on the PyPI pjsua2
            self.log(f"network SRC: {method} of {size} bytes to {relay.spec.target} "
                     f"(a pjsua2-based SRS drops messages over {PJSIP_MAX_PKT_LEN} bytes)")
        self._write(relay.remote_writer, text)
        try:
            return await asyncio.wait_for(future, TIMER_B), branch
        except asyncio.TimeoutError:
            return None, branch
        finally:
            relay.pending.pop(key, None)

    def _ack(self, relay: Relay, resp: W.Message, branch: str | None = None) -> None:
        """ACK a final answer to an INVITE: non-2xx in the same transaction (same branch)."""
        leg = relay.leg
        saved = leg.remote_tag
        leg.remote_tag = resp.tag("to") or leg.remote_tag
        text = W.request(leg, "ACK", cseq=resp.cseq[0], branch=branch)
        if self.keep_sent:
            relay.sent.append(text)
        self._write(relay.remote_writer, text)
        if resp.code >= 300:
            leg.remote_tag = saved

    async def _read_remote(self, relay: Relay) -> None:
        reader, writer = relay.remote_reader, relay.remote_writer
        while True:
            msg = await self._read(reader)
            if msg is None:
                break
            if not msg.start:
                continue
            if msg.is_response:
                if msg.code >= 200:
                    future = relay.pending.get(msg.cseq)
                    if future is not None and not future.done():
                        future.set_result(msg)
                continue
            self._on_srs_request(relay, msg, writer)
            if relay.ended:
                break
        if not relay.ended:   # the SRS's connection dropped: the session is over for the agent
            self.log("network SRC: the recorder closed the connection")
            await self._end_local(relay)
        for future in relay.pending.values():
            if not future.done():
                future.set_result(None)

    def _on_srs_request(self, relay: Relay, msg: W.Message, writer) -> None:
        method = msg.method
        if method == "ACK":
            return
        if method == "BYE":
            self._write(writer, W.response(msg.headers, 200, "OK"))
            asyncio.ensure_future(self._end_local(relay))
        elif method in ("OPTIONS", "INFO", "NOTIFY", "UPDATE"):
            self._write(writer, W.response(msg.headers, 200, "OK"))
        else:   # an SRS-initiated offer: mppsim keeps its media as it is
            self._write(writer, W.response(msg.headers, 488, "Not Acceptable Here"))

    # ----- ending ------------------------------------------------------------------------------
    async def _cancel(self, relay: Relay) -> None:
        inv = relay.local_invite
        self._write(relay.local_writer, W.response(inv.headers, 487, "Request Terminated", to_tag=relay.local_tag))
        await self._end_remote(relay)

    async def _end_remote(self, relay: Relay, bye: bool = True) -> None:
        """The agent's side is over: BYE the SRS (if the session was answered) and forget it."""
        if relay.ended:
            return
        relay.ended = True
        if bye and relay.established and relay.remote_writer is not None and not relay.remote_writer.is_closing():
            text = W.request(relay.leg, "BYE")
            if self.keep_sent:
                relay.sent.append(text)
            future = asyncio.get_running_loop().create_future()
            relay.pending[(relay.leg.cseq, "BYE")] = future
            self._write(relay.remote_writer, text)
            try:
                await asyncio.wait_for(future, 2.0)
            except asyncio.TimeoutError:
                pass
        if relay.remote_writer is not None:
            relay.remote_writer.close()
        self._forget(relay)

    async def _end_local(self, relay: Relay) -> None:
        """The SRS's side is over: BYE the agent's pjsua call."""
        if relay.ended:
            return
        relay.ended = True
        inv = relay.local_invite
        relay.local_cseq += 1
        target = W.uri_of(inv.header("contact")) or W.uri_of(inv.header("from"))
        text = (f"BYE {target} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP {self.host}:{self.port};branch=z9hG4bK{secrets.token_hex(8)}\r\n"
                f"From: {inv.header('to')};tag={relay.local_tag}\r\n"
                f"To: {inv.header('from')}\r\n"
                f"Call-ID: {inv.call_id}\r\n"
                f"CSeq: {relay.local_cseq} BYE\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        self._write(relay.local_writer, text)
        if relay.remote_writer is not None:
            relay.remote_writer.close()
        self._forget(relay)

    def _forget(self, relay: Relay) -> None:
        relay.ended = True
        self._by_local.pop(relay.local_invite.call_id, None)
        if relay.leg is not None:
            self._by_remote.pop(relay.leg.call_id, None)
        if not self.keep_sent:
            self._by_rid.pop(relay.rid, None)
        with self._lock:
            self._specs.pop(relay.rid, None)
