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
alone (``update``: UPDATE or re-INVITE). A BYE or a lost connection on one side ends the other;
the Reason of an SRS's BYE (its store full, its shutdown: issue 26) is passed on to the agent's
BYE and kept for the agent to say why its recording failed (``end_reason``).

One per agent process, on one thread with a ``selectors`` loop (docs/decisions.md: no process
for the app to start, the SRC dies with its agent like a real call's SRC; plain selectors rather
than asyncio, which alone adds ~4 MiB to every agent). It never calls pjsua, so the thread needs no
pjsua registration. TCP only, both sides; one transaction at a time per session.
"""
from __future__ import annotations

import collections
import enum
import errno
import heapq
import itertools
import os
import re
import secrets
import select
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from mppsim.phone.os_thread import set_name as set_thread_name
from mppsim.sip import framing
from mppsim.sip import uri as sip_uri
from mppsim.sip import message as sip_message
from mppsim.sip.message import Message
from mppsim.sip.sdp import streams_state
from mppsim.siprec import status as status_header
from mppsim.siprec import wire as W
from mppsim.siprec.sipmsg import sdp_part, split_multipart

RID_HEADER = "X-Mppsim-Recording"
TIMER_B = 32.0        # RFC 3261 transaction timeout
T1, T2 = 0.5, 4.0     # RFC 3261 retransmission intervals (UDP only)
CONNECT_TIMEOUT = 5.0
BYE_TIMEOUT = 2.0
ORPHAN_TIMEOUT = 10.0  # an early offer's INVITE from the agent: it comes within ms, or never
PJSIP_MAX_PKT_LEN = 4000   # the PyPI pjsua2's limit (../shared/DESIGN.md)


class _Link:
    """A non-blocking socket on the network SRC's selector: messages go to ``on_message(link,
    msg)``, and ``on_close(link)`` is called once when it closes."""

    def __init__(self, src: "NetworkSrc", sock: socket.socket, on_message, on_close):
        self.src, self.sock = src, sock
        self.on_message, self.on_close = on_message, on_close
        self.closed = False
        sock.setblocking(False)
        src.sel.register(sock, selectors.EVENT_READ, self._ready)

    def _ready(self, mask: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.src.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        self.on_close(self)


class UdpConn(_Link):
    """The SRS leg over UDP (an SRS URI with transport=udp): a socket connected to the SRS, one
    SIP message per datagram. Retransmissions are the sender's (``NetworkSrc._send_request``);
    an SRS that answers from another address than the one it was sent to is not heard."""

    def _ready(self, _mask: int) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:            # ICMP port unreachable: the transaction's timer decides
                return
            try:
                msg = sip_message.read(data)
                self.on_message(self, msg)
            except Exception as exc:   # one bad datagram must not stop the relay
                self.src.log(f"network SRC: UDP datagram from the SRS: {exc!r}")

    def send(self, data: str | bytes) -> None:
        if self.closed:
            return
        try:
            self.sock.send(data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data)
        except OSError:
            pass                       # lost like any datagram: retransmission or timer B


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
    max_size: int | None = None       # the SRS's message limit, if it has one (see _send_request)
    standby: bool = False             # made ready while the call rings: nothing to the SRS until go()


class Conn(_Link):
    """One TCP connection: non-blocking, SIP messages framed by Content-Length."""

    def __init__(self, src: "NetworkSrc", sock: socket.socket, on_message, on_close):
        self.rbuf = b""
        self.wbuf = b""
        super().__init__(src, sock, on_message, on_close)

    def _ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush()
        if mask & selectors.EVENT_READ and not self.closed:
            try:
                data = self.sock.recv(65536)
                # TLS: a record may hold more than one recv gave; the selector will not say so
                while isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                    data += self.sock.recv(self.sock.pending())
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError:
                data = b""
            if not data:
                self.close()
                return
            self.rbuf += data
            self._parse()

    def _parse(self) -> None:
        while not self.closed:
            try:
                raw, self.rbuf = framing.next_message(self.rbuf)
            except framing.MessageTooLarge:
                self.close()
                return
            if raw is None:
                return
            msg = sip_message.read(raw)
            try:
                self.on_message(self, msg)
            except Exception as exc:   # one bad message must not stop the relay
                self.src.log(f"network SRC: {msg.start_line}: {exc!r}")

    def send(self, data: str | bytes) -> None:
        if self.closed:
            return
        self.wbuf += data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        self._flush()

    def _flush(self) -> None:
        try:
            while self.wbuf:
                n = self.sock.send(self.wbuf)
                self.wbuf = self.wbuf[n:]
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            self.close()
            return
        if not self.closed:
            self.src.sel.modify(self.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if self.wbuf else 0),
                                self._ready)


class RelayState(enum.Enum):
    """Where a relay is in its life. `Relay.move` is the only place it changes, along TRANSITIONS.

    The SRS's leg and the agent's INVITE progress side by side, but only these combinations
    occur: the agent's INVITE, once both it and the SRS's outcome are here, is answered at once
    (`NetworkSrc._answer_when_ready`), so "the SRS answered, the agent not yet" lasts only while
    the agent's INVITE has not arrived (an early offer)."""
    NEW = "new"              # made for an opened session; neither leg begun
    PARKED = "parked"        # the agent's INVITE is here (100 Trying), standby: nothing to the SRS until go()
    INVITING = "inviting"    # the SRS's INVITE is on its way (connecting or sent); the agent's may not be here
    ACCEPTED = "accepted"    # the SRS answered 200; the agent's INVITE is not answered yet (not here yet)
    LIVE = "live"            # both sides answered: re-offers and metadata updates are relayed
    REFUSED = "refused"      # the SRS leg failed before it was up (refusal, no answer, unreachable, a BYE
                             # before its answer); the agent's INVITE, here or still to come, gets `result`
    HUNG_UP = "hung-up"      # the SRS hung up while ACCEPTED: the agent's INVITE gets 200, then a BYE
    ENDED = "ended"          # over; the agent's INVITE was answered, is gone, or will not be answered


def _states(*names: str) -> frozenset[RelayState]:
    return frozenset(RelayState[n] for n in names)


TRANSITIONS: dict[RelayState, frozenset[RelayState]] = {
    RelayState.NEW: _states("PARKED", "INVITING"),
    RelayState.PARKED: _states("INVITING", "ENDED"),               # go(); CANCEL, the agent gone, stop
    RelayState.INVITING: _states("ACCEPTED", "REFUSED", "ENDED"),  # the SRS's outcome; CANCEL, orphan...
    RelayState.ACCEPTED: _states("LIVE", "HUNG_UP", "ENDED"),      # the agent answered; SRS BYE; 488...
    RelayState.LIVE: _states("ENDED"),
    RelayState.REFUSED: _states("ENDED"),                          # the agent got the refusal
    RelayState.HUNG_UP: _states("ENDED"),                          # the agent got 200 and a BYE
    RelayState.ENDED: _states(),
}
OVER = _states("REFUSED", "HUNG_UP", "ENDED")          # the SRS leg is gone (forgotten)
UP = _states("ACCEPTED", "LIVE")                        # the SRS leg is established and still on
OWES_ANSWER = _states("ACCEPTED", "REFUSED", "HUNG_UP")   # the SRS's outcome waits for the agent's INVITE


class IllegalTransition(RuntimeError):
    pass


@dataclass
class Relay:
    rid: str
    spec: Spec
    local: Conn | None                    # the agent's pjsua2 connection (None until its INVITE)
    local_invite: Message | None        # the agent's initial INVITE (dialog identifiers)
    local_tag: str = field(default_factory=lambda: secrets.token_hex(6))
    local_cseq: int = 1
    agent_sdp: str = ""
    last_offer: str = ""                  # last SDP offered to the SRS
    leg: W.Leg | None = None
    remote: Conn | None = None
    origin: W.Origin = field(default_factory=lambda: W.Origin("BroadWorks"))
    answer_origin: W.Origin = field(default_factory=lambda: W.Origin("mppsim-src"))
    pending: dict = field(default_factory=dict)       # (cseq, method) -> (callback, timer)
    provisional: set = field(default_factory=set)     # (cseq, method) answered 1xx: no more retransmits (UDP)
    # queued transactions, one at a time: the head, once run, is the one under way until job_done
    jobs: collections.deque = field(default_factory=collections.deque)
    state: RelayState = RelayState.NEW
    sent: list[str] = field(default_factory=list)      # every request sent to the SRS (tests)
    timing: dict = field(default_factory=dict)         # set-up: connect_ms, srs_ms (the SRS's answer)
    result: tuple | None = None           # the SRS's outcome for the agent: (code, reason, SRS SDP)
    orphan: "Timer | None" = None         # early relays: give up if the agent's INVITE never comes
    began: float = 0.0                    # when the relay began (early relays: the agent's offer came)

    def move(self, to: RelayState) -> None:
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"relay {self.rid}: {self.state.value} -> {to.value}")
        self.state = to

    @property
    def over(self) -> bool:
        return self.state in OVER

    @property
    def up(self) -> bool:
        return self.state in UP

    @property
    def owes_answer(self) -> bool:
        return self.state in OWES_ANSWER

    def queue(self, run: Callable[[], bool | None]) -> None:
        """Queue a transaction: one at a time per session; ``run`` returns False if it sent nothing."""
        self.jobs.append(run)
        if len(self.jobs) == 1:
            self._run_jobs()

    def job_done(self) -> None:
        """The transaction under way was answered (or timed out): the next one goes."""
        if self.jobs:
            self.jobs.popleft()
        self._run_jobs()

    def _run_jobs(self) -> None:
        while self.jobs:
            head = self.jobs[0]
            if head() is not False:
                return               # under way; job_done runs the next (maybe already has)
            if self.jobs and self.jobs[0] is head:
                self.jobs.popleft()


class Timer:
    __slots__ = ("when", "fn", "cancelled")

    def __init__(self, when: float, fn):
        self.when, self.fn, self.cancelled = when, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class NetworkSrc:
    def __init__(self, host: str = "127.0.0.1", log: Callable[[str], None] | None = None,
                 keep_sent: bool = False, tls_ca: str = ""):
        self.host = host
        self.tls_ca = tls_ca          # CA file an SRS's TLS certificate is checked against ("" = system's)
        self.port: int | None = None
        self.log = log or (lambda _text: None)
        self.keep_sent = keep_sent
        self._specs: dict[str, Spec] = {}
        self._lock = threading.Lock()
        self._by_local: dict[str, Relay] = {}     # agent leg Call-ID -> relay
        self._by_rid: dict[str, Relay] = {}
        self._early: dict[str, Relay] = {}        # rid -> relay whose agent INVITE is not here yet
        self._offers: dict[str, str] = {}         # rid -> early offer posted, not yet taken (lock)
        self._end_reasons: dict[str, str] = {}    # rid -> Reason of the SRS's BYE (lock)
        self.overhead_ms: list[float] = []        # answer latency this component adds
        self._oversize_said: set[str] = set()     # SRS targets told about (loop thread)
        self.sel = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._posted: collections.deque = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._running = False
        self._listener: socket.socket | None = None

    # ----- any thread -------------------------------------------------------------------------
    def start(self) -> int:
        """Bind a free loopback port and start the thread; returns the port."""
        self._listener = socket.socket()
        self._listener.bind((self.host, 0))
        self._listener.listen(16)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.sel.register(self._listener, selectors.EVENT_READ, self._accept)
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="network-src", daemon=True)
        self._thread.start()
        return self.port

    @property
    def uri(self) -> str:
        return f"sip:src@{self.host}:{self.port};transport=tcp"

    def open(self, rid: str, spec: Spec) -> None:
        with self._lock:
            self._specs[rid] = spec

    def early_offer(self, rid: str, agent_sdp: str) -> None:
        """The agent's offer for an opened session, from pjsua2 while it builds the INVITE
        (onCallSdpCreated): the SRS's INVITE leaves now, not after the agent's INVITE has made
        its way here over a new TCP connection (the largest step of a set-up under load).

        The offer is also left where the agent's INVITE can find it: on a reused connection the
        INVITE is often read in the same pass of the loop as this post, and I/O runs before
        posted work; `_start` then takes the offer itself. Nothing else changes order."""
        with self._lock:
            self._offers[rid] = agent_sdp
        self._post(lambda: self._take_offer(rid))

    def go(self, rid: str) -> None:
        """A standby session's call was answered: its SRS leg begins now (the spec given to
        `open` since, without `standby`, is the one used)."""
        self._post(lambda: self._go(rid))

    def discard(self, rid: str) -> None:
        """A standby session that will not be used (its call ended unanswered). Its agent INVITE,
        if here, is cancelled by the agent; this forgets what never got that far."""
        def run() -> None:
            if rid not in self._by_rid:
                with self._lock:
                    self._specs.pop(rid, None)
                    self._offers.pop(rid, None)
        self._post(run)

    def set_document(self, rid: str, metadata: str, status: str | None) -> None:
        """The metadata (and status header) for the next message of this session."""
        with self._lock:
            spec = self._specs.get(rid)
            if spec is not None:
                # a status not sent yet keeps its events: they are not repeated later
                spec.metadata, spec.status = metadata, status_header.combine(spec.status, status)

    def update(self, rid: str, method: str = "UPDATE") -> None:
        """Send the current document to the SRS now, without a media change."""
        if method not in ("UPDATE", "INVITE"):
            raise ValueError(f"method: {method!r} not allowed; allowed: UPDATE, INVITE")
        self._post(lambda: self._update(rid, method))

    def timing(self, rid: str) -> dict:
        """How the session's set-up went: connect_ms (agent's offer in -> connected to the SRS),
        srs_ms (INVITE to the SRS -> its final answer), offer_ahead_ms (early offers: how long
        before the agent's own INVITE arrived the SRS leg began), standby_ms (standby sessions:
        how long the agent's INVITE waited for go)."""
        relay = self._by_rid.get(rid)
        return dict(relay.timing) if relay else {}

    def end_reason(self, rid: str) -> str:
        """Why the SRS ended the session: the text of its BYE's Reason header (RFC 3326), e.g.
        'Recorder storage full (503)'; '' when it gave none. Asked once: then forgotten."""
        with self._lock:
            value = self._end_reasons.pop(rid, "")
        if not value:
            return ""
        text = re.search(r'text="((?:[^"\\]|\\.)*)"', value)
        cause = re.search(r"cause=(\d+)", value)
        words = text.group(1) if text else value.strip()[:120]
        return f"{words} ({cause.group(1)})" if cause else words

    def sent(self, rid: str) -> list[str]:
        relay = self._by_rid.get(rid)
        return list(relay.sent) if relay else []

    def stop(self) -> None:
        if not self._running or self._thread is None:
            return
        done = threading.Event()

        def close():
            for relay in list(self._by_rid.values()):
                self._end_remote(relay)
            self.later(0.3 if self._by_rid else 0, lambda: (setattr(self, "_running", False), done.set()))

        self._post(close)
        done.wait(3)
        self._running = False
        self._wake()
        self._thread.join(3)

    def _post(self, fn) -> None:
        self._posted.append(fn)
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # ----- loop thread ------------------------------------------------------------------------
    def later(self, delay: float, fn) -> Timer:
        timer = Timer(time.monotonic() + delay, fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def _run(self) -> None:
        set_thread_name("network-src")
        try:
            while self._running:
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
                for key, mask in self.sel.select(timeout):
                    key.data(mask)
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _when, _n, timer = heapq.heappop(self._timers)
                    if not timer.cancelled:
                        self._guard(timer.fn)
                while self._posted:
                    self._guard(self._posted.popleft())
        finally:
            for key in list(self.sel.get_map().values()):
                try:
                    key.fileobj.close()
                except OSError:
                    pass
            self.sel.close()
            self._wake_w.close()

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception as exc:   # keep the loop alive for the other sessions
            self.log(f"network SRC: {exc!r}")

    def _drain_wake(self, _mask) -> None:
        try:
            self._wake_r.recv(4096)
        except OSError:
            pass

    def _accept(self, _mask) -> None:
        try:
            sock, _addr = self._listener.accept()
        except OSError:
            return
        Conn(self, sock, self._on_agent_message, self._on_agent_close)

    def _connect(self, host: str, port: int, done) -> None:
        """Non-blocking connect; ``done(sock or None, error text)``."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            done(None, str(exc))
            return
        family, kind, proto, _name, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err == errno.EINPROGRESS and select.select([], [sock], [], 0)[1]:
            # loopback (the usual SRS here): the handshake is over before connect_ex returns;
            # going on now saves a pass of this loop, which waits for a core under load
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            done(sock, "")
            return
        if err != errno.EINPROGRESS:
            sock.close()
            done(None, os.strerror(err))
            return

        def finish(error: str | None) -> None:
            timer.cancel()
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            if error:
                sock.close()
                done(None, error)
            else:
                done(sock, "")

        def writable(_mask) -> None:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            finish(os.strerror(code) if code else None)

        timer = self.later(CONNECT_TIMEOUT, lambda: finish("connect timeout"))
        self.sel.register(sock, selectors.EVENT_WRITE, writable)

    # ----- the agent's side -------------------------------------------------------------------
    def _on_agent_close(self, conn: Conn) -> None:
        for relay in [r for r in self._by_local.values() if r.local is conn]:
            self._end_remote(relay)

    def _on_agent_message(self, conn: Conn, msg: Message) -> None:
        if msg.is_response:
            return   # answers to our BYE toward the agent: nothing to do
        method = msg.method
        relay = self._by_local.get(msg.call_id)
        if method == "ACK":
            return
        if method == "INVITE" and relay is None:
            self._start(msg, conn)
            return
        if relay is None:
            conn.send(W.response(msg, 481, "Call/Transaction Does Not Exist"))
            return
        if method == "INVITE":
            self._reinvite(relay, msg)
        elif method == "BYE":
            conn.send(W.response(msg, 200, "OK"))
            self._end_remote(relay)
        elif method == "CANCEL":
            conn.send(W.response(msg, 200, "OK"))
            if relay.state in (RelayState.PARKED, RelayState.INVITING):   # not answered yet
                inv = relay.local_invite
                conn.send(W.response(inv, 487, "Request Terminated", to_tag=relay.local_tag))
                self._end_remote(relay)
            elif relay.state is RelayState.LIVE:
                # the CANCEL crossed our 200: the agent's call is over. RFC 3261 has the agent ACK
                # and BYE, but pjsua may not once its call is gone, and the SRS would keep the
                # session until its RTP timeout: end both sides now (a later BYE gets 481)
                self._bye_agent(relay)
                self._end_remote(relay)
        else:
            conn.send(W.response(msg, 200, "OK"))

    def _answer_agent(self, relay: Relay, req: Message, code: int, reason: str, sdp: str | None = None) -> None:
        relay.local.send(W.response(req, code, reason, to_tag=relay.local_tag,
                                    contact=f"<{self.uri}>" if code < 300 else None, sdp=sdp))

    def _take_offer(self, rid: str) -> None:
        """Begin the SRS leg of an early offer not begun yet (whichever comes first: its post, or
        the agent's INVITE that followed it)."""
        with self._lock:
            spec = self._specs.get(rid)
            if spec is not None and spec.standby:
                return                 # kept until go()
            agent_sdp = self._offers.pop(rid, None)
        if agent_sdp is not None:
            self._begin_early(rid, agent_sdp)

    def _start(self, msg: Message, conn: Conn) -> None:
        rid = msg.header(RID_HEADER)
        self._take_offer(rid)       # posted before this INVITE was sent, maybe not run yet
        relay = self._early.pop(rid, None)
        if relay is not None:     # the SRS leg is already on its way (early_offer)
            relay.orphan.cancel()
            relay.timing["offer_ahead_ms"] = round((time.monotonic() - relay.began) * 1000, 1)
            self._attach(relay, msg, conn)
            self._answer_when_ready(relay)
            return
        relay = self._new_relay(rid, msg.text)
        if relay is None:
            conn.send(W.response(msg, 404, "Unknown recording session", to_tag="x"))
            return
        self._attach(relay, msg, conn)
        if relay.spec.standby:
            relay.move(RelayState.PARKED)   # 100 Trying sent; waits for go()
            return
        self._invite_srs(relay)

    def _go(self, rid: str) -> None:
        with self._lock:
            spec = self._specs.get(rid)
            if spec is None:
                return                 # ended meanwhile
            spec.standby = False
        relay = self._by_rid.get(rid)
        if relay is None:
            self._take_offer(rid)      # the agent's INVITE is not here yet: begin from its offer
            return
        if relay.state is not RelayState.PARKED:
            return                     # ended meanwhile, or its SRS leg began already
        with self._lock:
            self._offers.pop(rid, None)
        relay.spec = spec
        relay.timing["standby_ms"] = round((time.monotonic() - relay.began) * 1000, 1)   # parked this long
        self._invite_srs(relay)

    def _new_relay(self, rid: str, agent_sdp: str) -> Relay | None:
        """A relay for an opened session (None: no such session)."""
        with self._lock:
            spec = self._specs.get(rid)
        if spec is None:
            return None
        relay = Relay(rid, spec, None, None, agent_sdp=agent_sdp, began=time.monotonic())
        self._by_rid[rid] = relay
        return relay

    def _attach(self, relay: Relay, msg: Message, conn: Conn) -> None:
        """The agent's INVITE for this session arrived: the agent's side of the relay."""
        relay.local, relay.local_invite, relay.agent_sdp = conn, msg, msg.text
        self._by_local[msg.call_id] = relay
        conn.send(W.response(msg, 100, "Trying"))

    def _begin_early(self, rid: str, agent_sdp: str) -> None:
        if rid in self._by_rid:
            return        # the agent's INVITE came first: _start has it
        relay = self._new_relay(rid, agent_sdp)
        if relay is None:
            return
        self._early[rid] = relay
        relay.orphan = self.later(ORPHAN_TIMEOUT, lambda: self._orphaned(relay))
        self._invite_srs(relay)

    def _orphaned(self, relay: Relay) -> None:
        """The agent's INVITE never followed its offer (its makeCall failed): end the SRS leg."""
        if self._early.pop(relay.rid, None) is relay:
            self.log("network SRC: the agent's INVITE never came; ending the recording session")
            self._end_remote(relay)

    def _invite_srs(self, relay: Relay) -> None:
        """Connect to the SRS and send the dialect's INVITE for the agent's offer; the agent is
        answered (``_answer_when_ready``) once both the SRS's answer and its INVITE are here."""
        relay.move(RelayState.INVITING)
        spec = relay.spec
        t_in = time.monotonic()

        def connected(sock, error: str) -> None:
            if relay.over:
                if sock is not None:
                    sock.close()
                return
            if sock is not None and transport == "tls":
                sock, error = self._tls(sock, host)
            if sock is None and transport == "udp":
                sock, error = self._udp(host, port)
            if sock is None:
                relay.result = (503, f"Recorder unreachable ({error})", None)
                relay.move(RelayState.REFUSED)
                self._forget(relay)
                self._answer_when_ready(relay)
                return
            conn_class = UdpConn if transport == "udp" else Conn
            relay.remote = conn_class(self, sock, lambda c, m: self._on_srs_message(relay, m),
                                      lambda c: self._on_srs_close(relay))
            contact_host = f"{spec.contact_user}@" if spec.contact_user else ""
            param = ";src" if spec.dialect == "webex" else ";+sip.src"
            relay.leg = W.Leg(spec.dialect, spec.target, spec.target, spec.from_header,
                              f"<sip:{contact_host}{self.host}:"
                              f"{sock.getsockname()[1] if transport == 'udp' else self.port};transport={transport}>{param}",
                              self.host, sock.getsockname()[1], extra=dict(spec.extra),
                              transport=transport.upper())
            t_out = time.monotonic()
            relay.timing["connect_ms"] = round((t_out - t_in) * 1000, 1)

            def answered(resp: Message | None, branch: str) -> None:
                t_back = time.monotonic()
                relay.timing["srs_ms"] = round((t_back - t_out) * 1000, 1)
                if resp is None:
                    relay.result = (408, "Recorder did not answer", None)
                    self._end_remote(relay, bye=False, to=RelayState.REFUSED)
                elif resp.code >= 300:
                    self._ack(relay, resp, branch)
                    relay.result = (resp.code, resp.reason or "Refused", None)
                    self._end_remote(relay, bye=False, to=RelayState.REFUSED)
                else:
                    self._confirm(relay, resp)
                    self._ack(relay, resp)
                    if relay.state is RelayState.INVITING:   # not ended meanwhile (its socket is shut then)
                        relay.move(RelayState.ACCEPTED)
                        relay.result = (200, "OK", self._sdp_of(resp))
                self._answer_when_ready(relay)
                self.overhead_ms.append(round(((t_out - t_in) + (time.monotonic() - t_back)) * 1000, 3))

            relay.queue(lambda: self._send_request(relay, "INVITE", self._offer(relay, relay.agent_sdp),
                                                   answered))

        transport = sip_uri.transport(spec.target, "tcp")
        host, port = sip_uri.host_port(spec.target, 5061 if transport == "tls" else 5060)
        if transport == "udp":
            connected(None, "")      # no connection to make: the socket is made in connected
        else:
            self._connect(host, port, connected)

    def _udp(self, host: str, port: int) -> tuple[socket.socket | None, str]:
        """A UDP socket on our address, connected to the SRS (its answers come back on it)."""
        try:
            family, kind, proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, kind, proto)
            sock.bind((self.host, 0))
            sock.connect(addr)
            return sock, ""
        except OSError as exc:
            return None, str(exc)

    def _tls(self, sock: socket.socket, host: str) -> tuple[ssl.SSLSocket | None, str]:
        """TLS over a connected socket, the SRS's certificate checked against `tls_ca` (or the
        system's CAs) and its name or address. The handshake blocks this thread (one round trip
        and a signature: ~2 ms on a LAN, measured in docs/network.md); sockets stay non-blocking after."""
        try:
            ctx = ssl.create_default_context(cafile=self.tls_ca or None)
            sock.setblocking(True)
            sock.settimeout(CONNECT_TIMEOUT)
            tls = ctx.wrap_socket(sock, server_hostname=host)
            tls.setblocking(False)
            return tls, ""
        except (OSError, ssl.SSLError, ValueError) as exc:
            sock.close()
            return None, f"TLS: {getattr(exc, 'reason', None) or exc}"

    def _answer_when_ready(self, relay: Relay) -> None:
        """Answer the agent's INVITE with the SRS's outcome, once both are known."""
        msg = relay.local_invite
        if msg is None or relay.result is None or not relay.owes_answer:
            return
        code, reason, srs_sdp = relay.result
        if code >= 300:
            self._answer_agent(relay, msg, code, reason)
            relay.move(RelayState.ENDED)
            return
        try:
            answer = W.agent_answer(msg.text, srs_sdp, relay.answer_origin)
        except ValueError as exc:
            self._answer_agent(relay, msg, 488, f"Not Acceptable Here: {exc}")
            if relay.state is RelayState.ACCEPTED:
                self._end_remote(relay)
            else:
                relay.move(RelayState.ENDED)
            return
        self._answer_agent(relay, msg, 200, "OK", sdp=answer)
        if relay.state is RelayState.HUNG_UP:    # the SRS hung up before the agent's INVITE was here
            self._bye_agent(relay)
            relay.move(RelayState.ENDED)
        else:
            relay.move(RelayState.LIVE)

    def _reinvite(self, relay: Relay, msg: Message) -> None:
        """The agent re-offers (pause/resume): the SRS gets the dialect's re-INVITE."""
        relay.local.send(W.response(msg, 100, "Trying"))

        def run() -> bool:
            if relay.over or relay.leg is None:
                self._answer_agent(relay, msg, 481, "Call/Transaction Does Not Exist")
                return False
            relay.agent_sdp = msg.text

            def answered(resp: Message | None, branch: str) -> None:
                if resp is None or resp.code >= 300:
                    if resp is not None:
                        self._ack(relay, resp, branch)
                    self._answer_agent(relay, msg, resp.code if resp else 408,
                                       (resp.reason if resp else "Recorder did not answer") or "Refused")
                    return
                self._ack(relay, resp)
                try:
                    answer = W.agent_answer(msg.text, self._sdp_of(resp), relay.answer_origin)
                except ValueError as exc:
                    self._answer_agent(relay, msg, 488, f"Not Acceptable Here: {exc}")
                    return
                self._answer_agent(relay, msg, 200, "OK", sdp=answer)

            self._send_request(relay, "INVITE", self._offer(relay, msg.text), answered)
            return True

        relay.queue(run)

    def _update(self, rid: str, method: str) -> None:
        relay = self._by_rid.get(rid)
        if relay is None or not relay.up:
            return   # not answered yet: the document goes with the INVITE or its re-INVITE

        def run() -> bool:
            if relay.over:
                return False

            def answered(resp: Message | None, branch: str) -> None:
                if resp is None:
                    self.log(f"network SRC: {method} metadata update: no answer from the recorder")
                elif resp.code >= 300:
                    if method == "INVITE":
                        self._ack(relay, resp, branch)
                    self.log(f"network SRC: {method} metadata update refused: {resp.code} {resp.reason}")
                elif method == "INVITE":
                    self._ack(relay, resp)

            self._send_request(relay, method, relay.last_offer, answered)
            return True

        relay.queue(run)

    # ----- the SRS's side ---------------------------------------------------------------------
    def _offer(self, relay: Relay, agent_sdp: str) -> str:
        paused = bool(agent_sdp) and all(s == "inactive" for s in streams_state(agent_sdp))
        if relay.spec.dialect == "webex":
            offer = W.webex_offer(agent_sdp, relay.origin, paused)
        else:
            offer = W.rfc7866_offer(agent_sdp, paused)
        relay.last_offer = offer
        return offer

    @staticmethod
    def _sdp_of(resp: Message) -> str:
        ctype = resp.header("content-type").lower()
        if ctype.startswith("multipart/"):
            part = sdp_part(split_multipart(resp.header("content-type"), resp.text))
            return part.body if part else ""
        return resp.text

    def _confirm(self, relay: Relay, resp: Message) -> None:
        leg = relay.leg
        leg.remote_tag = resp.tag("to") or leg.remote_tag
        contact = resp.header("contact")
        if contact:
            leg.request_uri = sip_uri.uri_of(contact)
        sid = resp.header("session-id").split(";", 1)[0].strip()
        if len(sid) == 32:
            leg.remote_session_id = sid
        leg.route = list(reversed(resp.values("record-route")))

    def _send_request(self, relay: Relay, method: str, sdp: str | None, done) -> None:
        """Send a request with the session's latest document; ``done(final response or None,
        branch)`` once it is answered (or timer B fired), then the next queued job runs."""
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
        if self.keep_sent:
            relay.sent.append(text)
        size = len(text.encode("utf-8"))
        key = (relay.leg.cseq, method)

        def finish(resp: Message | None) -> None:
            entry = relay.pending.pop(key, None)
            if entry is None:
                return
            entry[1].cancel()
            # Said only when the size is the likely cause: an SRS on the PyPI pjsua2 drops a
            # message over its limit unanswered; mppsim's recorder (64 kB) or an SBC answers it.
            if (size > PJSIP_MAX_PKT_LEN and (resp is None or resp.code == 513)
                    and relay.spec.target not in self._oversize_said):
                self._oversize_said.add(relay.spec.target)
                self.log(f"network SRC: {method} of {size} bytes to {relay.spec.target} "
                         + ("got no answer" if resp is None else "was refused 513")
                         + f" (a pjsua2-based SRS drops messages over {PJSIP_MAX_PKT_LEN} bytes)")
            try:
                done(resp, branch)
            finally:
                relay.job_done()

        relay.pending[key] = (finish, self.later(TIMER_B, lambda: finish(None)))
        relay.remote.send(text)
        if isinstance(relay.remote, UdpConn):
            self._retransmit(relay, key, text, T1, invite=method == "INVITE")

    def _retransmit(self, relay: "Relay", key, text: str, interval: float, invite: bool) -> None:
        """RFC 3261 timers A and E: again after T1, 2 T1, ... (non-INVITE capped at T2) until a
        response (a provisional one stops an INVITE's) or timer B/F ends the transaction."""
        def again() -> None:
            if key in relay.pending and key not in relay.provisional and not relay.remote.closed:
                relay.remote.send(text)
                self._retransmit(relay, key, text, interval * 2 if invite else min(interval * 2, T2), invite)
        self.later(interval, again)

    def _ack(self, relay: Relay, resp: Message, branch: str | None = None) -> None:
        """ACK a final answer to an INVITE: non-2xx in the same transaction (same branch)."""
        if resp.method != "INVITE":
            return
        leg = relay.leg
        saved = leg.remote_tag
        leg.remote_tag = resp.tag("to") or leg.remote_tag
        text = W.request(leg, "ACK", cseq=resp.cseq[0], branch=branch)
        if self.keep_sent:
            relay.sent.append(text)
        relay.remote.send(text)
        if resp.code >= 300:
            leg.remote_tag = saved

    def _on_srs_message(self, relay: Relay, msg: Message) -> None:
        if msg.is_response:
            if msg.code >= 200:
                entry = relay.pending.get(msg.cseq)
                if entry is not None:
                    entry[0](msg)
                elif isinstance(relay.remote, UdpConn) and msg.cseq[1] == "INVITE" and msg.code < 300:
                    self._ack(relay, msg)      # a retransmitted 200: our ACK was lost
            else:
                relay.provisional.add(msg.cseq)
            return
        method = msg.method
        if method == "ACK":
            return
        if method == "BYE":
            relay.remote.send(W.response(msg, 200, "OK"))
            reason = msg.header("reason")
            if reason:
                with self._lock:
                    self._end_reasons[relay.rid] = reason
            self._end_local(relay, reason)
        elif method in ("OPTIONS", "INFO", "NOTIFY", "UPDATE"):
            relay.remote.send(W.response(msg, 200, "OK"))
        else:   # an SRS-initiated offer: mppsim keeps its media as it is
            relay.remote.send(W.response(msg, 488, "Not Acceptable Here"))

    def _on_srs_close(self, relay: Relay) -> None:
        if relay.up:   # the session is over for the agent too
            self.log("network SRC: the recorder closed the connection")
            self._end_local(relay)
        for finish, _timer in list(relay.pending.values()):
            finish(None)   # an unanswered INVITE: the agent gets 408 and the session is forgotten

    # ----- ending ------------------------------------------------------------------------------
    def _end_remote(self, relay: Relay, bye: bool = True, to: RelayState = RelayState.ENDED) -> None:
        """The agent's side is over (or, ``to`` REFUSED, the SRS's leg failed): BYE the SRS (if the
        session was answered) and forget it."""
        if relay.over:
            return
        was_up = relay.up
        relay.move(to)
        remote = relay.remote
        if bye and was_up and remote is not None and not remote.closed:
            text = W.request(relay.leg, "BYE")
            if self.keep_sent:
                relay.sent.append(text)
            key = (relay.leg.cseq, "BYE")

            def closed(_resp=None) -> None:
                entry = relay.pending.pop(key, None)
                if entry is not None:
                    entry[1].cancel()
                remote.close()

            relay.pending[key] = (closed, self.later(BYE_TIMEOUT, closed))
            remote.send(text)
        elif remote is not None:
            remote.close()
        self._forget(relay)

    def _end_local(self, relay: Relay, reason: str = "") -> None:
        """The SRS's side is over: BYE the agent's pjsua call (with the SRS's Reason)."""
        if relay.over:
            return
        if relay.state is RelayState.LIVE:
            relay.move(RelayState.ENDED)
            self._bye_agent(relay, reason)
        elif relay.state is RelayState.ACCEPTED:
            relay.move(RelayState.HUNG_UP)      # _answer_when_ready says goodbye after answering
        else:
            relay.move(RelayState.REFUSED)      # a BYE before its answer: the agent gets the outcome
        if relay.remote is not None:
            relay.remote.close()
        self._forget(relay)

    def _bye_agent(self, relay: Relay, reason: str = "") -> None:
        inv = relay.local_invite
        relay.local_cseq += 1
        target = sip_uri.uri_of(inv.header("contact")) or sip_uri.uri_of(inv.header("from"))
        relay.local.send(sip_message.request("BYE", target, [
            ("Via", f"SIP/2.0/TCP {self.host}:{self.port};branch=z9hG4bK{secrets.token_hex(8)}"),
            ("From", f"{inv.header('to')};tag={relay.local_tag}"),
            ("To", inv.header("from")),
            ("Call-ID", inv.call_id),
            ("CSeq", f"{relay.local_cseq} BYE"),
            ("Max-Forwards", "70")] + ([("Reason", reason)] if reason else [])))

    def _forget(self, relay: Relay) -> None:
        if relay.local_invite is not None:
            self._by_local.pop(relay.local_invite.call_id, None)
        if not self.keep_sent:
            self._by_rid.pop(relay.rid, None)
        with self._lock:
            self._specs.pop(relay.rid, None)
            self._offers.pop(relay.rid, None)
