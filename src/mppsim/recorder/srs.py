"""mppsim's SIPREC Session Recording Server (RFC 7866): one asyncio process, hundreds of sessions.

    python -m mppsim.recorder.cli --listen 127.0.0.1:0 --store DIR     (the CLI; this is the engine)

It answers recording sessions from any SRC (mppsim's agents in either dialect, a SIPp scenario,
a tester's own SBC) over UDP, TCP and - with ``--tls`` - TLS, and writes each to the store
(recorder/store.py): a stereo WAV (left = the first recorded m-line, the recorded user's send
stream; right = the other party's), the metadata documents as received and an SQLite index row.
What it cannot record it refuses with a final answer and a reason, logs the offending header or
element, counts it, and stays up (issue 9). It never originates a call: the only request it
sends is a BYE for a session it ends itself (RTP timeout, session-timer expiry, missing ACK, a
store that cannot keep it, shutdown).

Storage (issue 26): what it accepted, it keeps, or it says no. Every second it checks the store
(free space against --min-free, writable, there); while the store cannot take a new recording,
INVITEs and OPTIONS get 503 with Retry-After and the reason (docs/protocol.md), so an SRC applies
its failure behaviour at once or fails over. A session whose writes fail anyway is ended with a
BYE carrying a Reason header, its row closed `truncated` (recorder/session.py).

Threads: the event loop does SIP, RTP and timing; the store (SQLite, fsync) runs on a few
single-thread lanes so it never stalls the loop, one lane per session so its writes stay ordered.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import resource
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from mppsim.siprec import metadata as md_mod
from mppsim.siprec.metadata import Metadata, MetadataError
from mppsim.recorder.rtp import codecs
from mppsim.recorder.rtp.beat import make_beat
from mppsim.recorder.rtp.ports import rtp_sockets
from mppsim.recorder.rtp.receiver import StreamReceiver
from mppsim.recorder.session import Session, wideband
from mppsim.sip import message as sipm
from mppsim.sip.dialog import Dialog, Transactions
from mppsim.recorder.answer import Offer, SdpError, build_answer, parse_offer
from mppsim.recorder.transport import (Peer, StreamServer, self_signed_context, start_udp,
                                       tls_context_from)
from mppsim.sip.limits import BURST_PER_SOURCE, RATE_PER_SOURCE, Bucket
from mppsim.sip.message import ParseError, Request
from mppsim.siprec.sipmsg import is_siprec_src
from mppsim.siprec.request import (ACCEPT, STATUS_HEADER, Refusal, bodies, header_names,
                             merge_status)
from mppsim.recorder.store import (STORAGE_ERROR, STORAGE_FULL, STORAGE_MISSING, STORAGE_READ_ONLY,
                                   Store)

log = logging.getLogger("mppsim.recorder")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"
SUPPORTED = "siprec, timer"
TICK = 0.2                  # s between audio moves to the store and timer checks
MIN_SE = 90                 # RFC 4028 Min-SE
LANES = 4

# limits (docs/protocol.md "Recorder limits")
MAX_SESSIONS = 1000
MAX_SESSIONS_PER_SOURCE = 500
MAX_HALF_OPEN_PER_SOURCE = 100

# storage (docs/protocol.md "When the store cannot keep a recording")
HEADROOM_SECONDS = 60       # --min-free auto: a minute of WAV per session in flight and a new one,
FLOOR_BYTES = 1 << 20       # plus room for the index and the metadata documents
STORAGE_RETRY_AFTER = 30    # s, the Retry-After of a refusal for lack of storage
REASONS = {STORAGE_FULL: 'SIP;cause=503;text="Recorder storage full"',
           STORAGE_READ_ONLY: 'SIP;cause=503;text="Recorder storage read-only"',
           STORAGE_MISSING: 'SIP;cause=503;text="Recorder storage missing"',
           STORAGE_ERROR: 'SIP;cause=503;text="Recorder storage error"',
           "shutdown": 'SIP;cause=503;text="Recorder shutting down"'}


def wav_bytes_per_second(rate: int) -> int:
    return rate * 2 * 2                 # stereo, 16-bit


_CATEGORY_END = re.compile("[:(\'\"]")


class Stats:
    def __init__(self):
        self.requests = 0
        self.responses_ignored = 0
        self.unanswerable = 0
        self.sessions_total = 0
        self.refused_storage = 0          # INVITEs refused because the store could not keep them
        self.truncated_storage = 0        # sessions ended because their writes failed
        self.refused: dict[str, int] = {}
        self.ended: dict[str, int] = {}
        self.rtp_packets = 0              # of finished sessions (live ones: rtp_packets_active)
        self.rtp_lost = 0

    def refuse(self, code: int, reason: str) -> None:
        # a category, not the details: what follows ':', '(' or a quote may quote the input
        key = f"{code} {_CATEGORY_END.split(reason, maxsplit=1)[0].strip()[:40]}"
        if key not in self.refused and len(self.refused) >= 100:
            key = f"{code} other"
        self.refused[key] = self.refused.get(key, 0) + 1


class Recorder:
    def __init__(self, host: str, port: int, store_dir: Path, name: str = "w0",
                 rtp_timeout: float = 30.0, max_sessions: int = MAX_SESSIONS, tls: bool = False,
                 status_every: float = 0.0, min_se: int = MIN_SE, min_free: int | None = None,
                 shared: bool = False, udp: bool = True, tls_port: int = 0):
        self.host, self.port, self.name = host, port, name
        # one of several worker processes on one port (recorder/pool.py): TCP and TLS listen with
        # SO_REUSEPORT; only the first worker (udp) takes UDP, whose flows the kernel would
        # re-spread over the workers whenever one came or went
        self.shared, self.with_udp, self.tls_port_wanted = shared, udp, tls_port
        self.store_dir = Path(store_dir)
        self.store = Store(self.store_dir)
        self.rtp_timeout, self.max_sessions, self.tls = rtp_timeout, max_sessions, tls
        self.status_every = status_every
        self.min_se = min_se
        self.min_free = min_free            # bytes; None: from the sessions in flight (needed_free)
        self.storage: dict = {"state": "ok", "reason": ""}
        self._storage_check: asyncio.Future | None = None
        self.storage_lane = ThreadPoolExecutor(1, thread_name_prefix="storage")
        self.tls_port: int | None = None
        self.beat = None                     # set in start (needs the running loop)
        self.sessions: dict[tuple[str, str], Session] = {}       # (Call-ID, SRC tag)
        self.pending_invites: dict[str, tuple[Request, Session | None]] = {}   # branch -> ...
        self.transactions = Transactions()
        self.buckets: dict[str, Bucket] = {}
        self.stats = Stats()
        self.lanes = [ThreadPoolExecutor(1, thread_name_prefix=f"store{i}") for i in range(LANES)]
        self.stopping = False
        self._next_lane = 0
        self._tasks: set[asyncio.Task] = set()
        self._started = time.time()

    # ----- life cycle ---------------------------------------------------------------------
    async def start(self) -> dict:
        for rid in self.store.repair_interrupted():
            self.out(f"repaired interrupted recording {rid} (truncated)")
        self.storage = self.store.health(self.needed_free())
        if self.storage["state"] != "ok":
            self.out(f"store cannot take recordings: {self.storage['state']}, {self.storage['reason']}")
        self.tcp = StreamServer(self.on_stream, self.on_oversize)
        self.tcp.on_close = self.on_connection_closed
        await self.bind_sip()
        self.tls_server = None
        if self.tls:
            tls_dir = self.store_dir / "tls"
            context = (tls_context_from(tls_dir) if self.tls_port_wanted
                       else self_signed_context(tls_dir, self.host))
            self.tls_server = StreamServer(self.on_stream, self.on_oversize, ssl_context=context)
            self.tls_server.on_close = self.on_connection_closed
            self.tls_port = await self.tls_server.start(self.host, self.tls_port_wanted, self.shared)
        self.loop_task = asyncio.ensure_future(self.ticker())
        self.beat = make_beat(asyncio.get_running_loop())   # RTP read on a 10 ms beat (rtp/beat.py)
        where = f"{self.host}:{self.port}"
        return {"engine": "asyncio", "pid": os.getpid(), "sip": where, "udp": where, "tcp": where,
                "tls": f"{self.host}:{self.tls_port}" if self.tls_port else None,
                "store": str(self.store_dir.resolve()),
                "target": f"sip:srs@{where};transport=tcp"}

    async def bind_sip(self) -> None:
        """UDP and TCP on one port number. For port 0 the OS picks the UDP port, and the same
        number may be taken for TCP (by anyone's connection): then try another."""
        self.udp = None
        if not self.with_udp:                  # a further worker: TCP and TLS only
            await self.tcp.start(self.host, self.port, self.shared)
            return
        if self.port:
            self.udp, self.port = await start_udp(self.host, self.port, self.on_datagram)
            await self.tcp.start(self.host, self.port, self.shared)
            return
        for _ in range(50):
            udp, port = await start_udp(self.host, 0, self.on_datagram)
            try:
                await self.tcp.start(self.host, port, self.shared)
            except OSError:
                udp.close()
                continue
            self.udp, self.port = udp, port
            return
        raise OSError(f"no port free for both UDP and TCP on {self.host}")

    async def stop(self) -> None:
        self.stopping = True
        if self.shared:
            # leave the port's group first: new connections go to the workers still up (or to a
            # recorder started again on this port) while this one ends its sessions
            for server in (self.tcp, self.tls_server):
                if server is not None and server.server is not None:
                    server.server.close()
        for s in list(self.sessions.values()):
            if s.state != "ended":
                s.bye(REASONS["shutdown"])
                await self.finish(s, "shutdown")
        if self._tasks:            # sessions finishing (a BYE's grace period): let them end
            await asyncio.wait(list(self._tasks), timeout=5)
        if self.udp is not None:
            self.udp.close()
        await self.tcp.close()
        if self.tls_server:
            await self.tls_server.close()
        self.loop_task.cancel()
        if self.beat is not None:
            self.beat.close()
        for lane in self.lanes:
            lane.shutdown(wait=True)
        self.storage_lane.shutdown(wait=True)
        for rid in self.store.retry_pending():
            self.out(f"closed {rid} in the index (truncated)")
        self.write_status()

    def out(self, text: str) -> None:
        try:
            print(f"srs {self.name}: {text}", flush=True)
        except OSError:
            pass              # a log on the full disk: the session must still be ended

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.out("error: " + "".join(traceback.format_exception(exc)).strip().replace("\n", " | "))

    # ----- receiving ----------------------------------------------------------------------
    def on_connection_closed(self, conn) -> None:
        """An SRC closed the connection of sessions it never ACKed (e.g. its call was cancelled
        while our 200 was on the way): nobody can ACK or BYE them any more, end them now. The
        confirmed ones are watched: if their RTP has stopped too, the SRC is gone (src-lost,
        recorder/session.py)."""
        for s in list(self.sessions.values()):
            if s.peer.connection is conn and s.state == "live" and not s.dialog.confirmed:
                self.out(f"connection closed before the ACK of {s.invite.call_id}: ending it")
                self.spawn(self.finish(s, "no-ack"))
            elif s.peer.connection is conn and s.state == "live":
                s.connection_lost = time.monotonic()

    def on_datagram(self, data: bytes, peer: Peer) -> None:
        self.on_message(data, peer, stream=False)

    def on_stream(self, data: bytes, peer: Peer) -> None:
        self.on_message(data, peer, stream=True)

    def on_oversize(self, head: bytes, peer: Peer) -> None:
        try:
            sipm.parse(head + b"\r\n\r\n")
            req = None
        except ParseError as exc:
            req = exc.request
        except Exception:   # noqa: BLE001
            req = None
        self.stats.requests += 1
        if isinstance(req, Request) or (req := self._try_request(head)) is not None:
            self.refuse(req, peer, Refusal(513, f"Message Too Large: more than {sipm.MAX_MESSAGE} bytes",
                                           "Content-Length"))
        else:
            self.stats.unanswerable += 1
            self.out(f"dropped from {peer}: message larger than {sipm.MAX_MESSAGE} bytes, not answerable")

    def _try_request(self, head: bytes) -> Request | None:
        try:
            msg = sipm.parse(head + b"\r\n\r\n")
            return msg if isinstance(msg, Request) else None
        except ParseError as exc:
            return exc.request
        except Exception:   # noqa: BLE001
            return None

    def on_message(self, data: bytes, peer: Peer, stream: bool) -> None:
        try:
            msg = sipm.parse(data, stream=stream)
        except ParseError as exc:
            self.stats.requests += 1
            if exc.request is not None and exc.request.method != "ACK":
                self.refuse(exc.request, peer, Refusal(exc.code, f"Bad request: {exc.reason}", exc.element))
            else:
                self.stats.unanswerable += 1
                self.stats.refuse(exc.code, "Unanswerable")
                self.out(f"dropped from {peer}: {exc.reason} (no Via/From/To/Call-ID/CSeq to answer)"
                         f" | element: {exc.element or '-'}")
            return
        except Exception as exc:   # noqa: BLE001 - a parser bug must not kill the server
            self.stats.unanswerable += 1
            self.out(f"dropped from {peer}: unparsable ({type(exc).__name__}: {exc})")
            return
        if not isinstance(msg, Request):
            self.stats.responses_ignored += 1   # answers to our BYEs: nothing to do
            return
        self.stats.requests += 1
        try:
            self.on_request(msg, peer)
        except Refusal as r:
            self.refuse(msg, peer, r)
        except Exception as exc:   # noqa: BLE001 - every request gets a final answer
            self.out(f"error handling {msg.method} {msg.call_id}: {type(exc).__name__}: {exc} | "
                     + traceback.format_exc().strip().splitlines()[-2].strip())
            if msg.method != "ACK":
                self.refuse(msg, peer, Refusal(500, f"Recorder error: {type(exc).__name__}"))

    def answer(self, req: Request, peer: Peer, status: int, reason: str = "", **kw) -> bytes:
        data = sipm.response(req, status, reason, **kw)
        peer.send(data)
        if status >= 200 or req.method == "INVITE":
            self.transactions.answered(req, data)
        return data

    def refuse(self, req: Request, peer: Peer, r: Refusal) -> None:
        self.stats.refuse(r.code, r.reason)
        self.out(f"refused {r.code} {r.reason} | {req.method} from {peer} call-id={req.call_id[:80]}"
                 f" | element: {r.element or '-'}")
        if req.method == "ACK":
            return
        headers = list(r.headers)
        if r.code == 405:
            headers.append(("Allow", ALLOW))
        tag = ""
        if req.method == "INVITE" and not req.to_tag:
            tag = "refused" + str(abs(hash(req.call_id)) % 100000)
        self.answer(req, peer, r.code, r.reason, to_tag=tag, headers=headers)

    def on_request(self, req: Request, peer: Peer) -> None:
        retrans, last = self.transactions.seen(req)
        if retrans and req.method != "ACK":
            if last is not None:
                peer.send(last)          # a retransmission: the same answer again (§17.2.1)
            return
        ip = peer.addr[0]
        bucket = self.buckets.setdefault(ip, Bucket())
        if req.method != "ACK" and not bucket.take(RATE_PER_SOURCE, BURST_PER_SOURCE):
            raise Refusal(503, f"Too many requests from {ip}", "rate",
                          headers=[("Retry-After", "2")])
        if req.method != "ACK":
            self.transactions.begin(req)
        handler = {"INVITE": self.on_invite, "ACK": self.on_ack, "BYE": self.on_bye,
                   "CANCEL": self.on_cancel, "OPTIONS": self.on_options,
                   "UPDATE": self.on_update}.get(req.method)
        if handler is None:
            if req.method == "REFER":
                raise Refusal(403, "REFER not accepted: a recorder never originates calls", "REFER")
            raise Refusal(405, f"Method Not Allowed: {req.method[:20]}", req.method[:20])
        handler(req, peer)

    def find(self, req: Request) -> Session | None:
        s = self.sessions.get((req.call_id, req.from_tag))
        if s is not None and req.to_tag and req.to_tag != s.dialog.local_tag:
            return None
        return s

    # ----- methods --------------------------------------------------------------------------
    def on_options(self, req: Request, peer: Peer) -> None:
        """An SRC's keep-alive: the answer an INVITE would get now (RFC 3261 §11.2), so a
        store that cannot keep a recording shows before a call needs it."""
        headers = [("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED)]
        refusal = self.storage_refusal()
        if refusal is not None:
            self.answer(req, peer, refusal.code, refusal.reason, to_tag="options",
                        headers=headers + list(refusal.headers))
            return
        self.answer(req, peer, 200, to_tag="options", headers=headers)

    # ----- storage ------------------------------------------------------------------------
    def needed_free(self) -> int:
        """Free bytes the store must have to take one more session: --min-free, or a minute of
        WAV for every session in flight and for a new one (wideband, the larger) plus a floor."""
        if self.min_free is not None:
            return self.min_free
        live = sum(wav_bytes_per_second(s.rate) for s in self.sessions.values() if s.state != "ended")
        return FLOOR_BYTES + (live + wav_bytes_per_second(16000)) * HEADROOM_SECONDS

    def storage_state(self) -> tuple[str, str]:
        """(state, reason) of the store for a new session now: the last check (once a second),
        overridden by a write failed since, or by sessions started since it (auto --min-free)."""
        st = self.storage
        state, why = st.get("state", "ok"), st.get("reason", "")
        blocked = self.store.blocked          # set by a failed write: newer than the last check
        if blocked is not None:
            cause = blocked.removeprefix("storage-")
            if cause != state:
                state, why = cause, "a write failed"
        elif state == "ok":
            needed = self.needed_free()
            free = st.get("free_bytes")
            if free is not None and free < needed:
                state, why = "low", f"{free // 1024} kB free, {needed // 1024} kB needed"
        return state, why

    def storage_refusal(self) -> Refusal | None:
        """503 + Retry-After when the store cannot take a new recording now, else None."""
        state, why = self.storage_state()
        if state == "ok":
            return None
        return Refusal(503, f"Recorder storage {state}: {why}"[:150], "storage",
                       headers=[("Retry-After", str(STORAGE_RETRY_AFTER)),
                                ("Warning", f'399 mppsim-recorder "storage {state}"')])

    def check_storage(self) -> None:
        """Once a second, off the loop (statvfs, a reserve file, closes left to retry)."""
        if self._storage_check is not None and not self._storage_check.done():
            return
        loop = asyncio.get_running_loop()
        needed = self.needed_free()
        fut = loop.run_in_executor(self.storage_lane, self.store.health, needed)
        self._storage_check = fut

        def done(f: asyncio.Future) -> None:
            if f.cancelled() or f.exception() is not None:
                return
            new, old = f.result(), self.storage
            if new["state"] != old.get("state"):
                self.out(f"store {new['state']}"
                         + (f": {new['reason']}, new sessions refused (503)" if new["state"] != "ok"
                            else f": recording again ({(new['free_bytes'] or 0) // 1024} kB free)"))
            self.storage = new
        fut.add_done_callback(done)

    def on_ack(self, req: Request, peer: Peer) -> None:
        s = self.find(req)
        if s is not None and req.to_tag:
            s.acked()

    def on_bye(self, req: Request, peer: Peer) -> None:
        s = self.find(req)
        if s is None or not req.to_tag:
            raise Refusal(481, "Call/Transaction Does Not Exist", "Call-ID")
        self.answer(req, peer, 200)
        s.cancel()
        self.spawn(self.finish(s, "bye"))

    def on_cancel(self, req: Request, peer: Peer) -> None:
        pending = self.pending_invites.get(req.branch)
        if pending is None:
            raise Refusal(481, "Call/Transaction Does Not Exist", "Via branch")
        invite, s = pending
        self.answer(req, peer, 200)
        if s is not None and s.state == "pending":
            s.cancel()
            self.answer(invite, peer, 487, to_tag=s.dialog.local_tag)

    def on_invite(self, req: Request, peer: Peer) -> None:
        if req.to_tag:
            s = self.find(req)
            if s is None:
                raise Refusal(481, "Call/Transaction Does Not Exist", "To tag")
            self.on_reoffer(req, peer, s)
            return
        s = self.admit(req, peer)
        self.answer(req, peer, 100)
        self.pending_invites[req.branch] = (req, s)
        self.spawn(self.establish(req, peer, s))

    def on_update(self, req: Request, peer: Peer) -> None:
        s = self.find(req)
        if s is None or not req.to_tag:
            raise Refusal(481, "Call/Transaction Does Not Exist", "To tag")
        self.on_reoffer(req, peer, s)

    # ----- admission ----------------------------------------------------------------------
    def admit(self, req: Request, peer: Peer) -> Session:
        if (req.call_id, req.from_tag) in self.sessions:
            # the same dialog-forming request again on a new transaction (RFC 3261 §8.2.2.2)
            raise Refusal(482, "Loop Detected: a session with this Call-ID and From tag exists",
                          "Call-ID")
        refusal = self.storage_refusal()
        if refusal is not None:              # before 200, not after: the SRC can act on it
            self.stats.refused_storage += 1
            raise refusal
        live = [s for s in self.sessions.values() if s.state != "ended"]
        if len(live) >= self.max_sessions:
            raise Refusal(486, f"Recorder busy: {self.max_sessions} sessions", "capacity")
        ip = peer.addr[0]
        mine = [s for s in live if s.source == ip]
        if len(mine) >= MAX_SESSIONS_PER_SOURCE:
            raise Refusal(486, f"Recorder busy: {MAX_SESSIONS_PER_SOURCE} sessions from {ip}", "capacity")
        if sum(1 for s in mine if not s.dialog.confirmed) >= MAX_HALF_OPEN_PER_SOURCE:
            raise Refusal(486, f"Recorder busy: {MAX_HALF_OPEN_PER_SOURCE} sessions from {ip} "
                               "wait for their ACK", "capacity")
        if req.get("replaces") is not None or "replaces" in req.tokens("require"):
            raise Refusal(403, "Replaces not accepted: a recording session cannot be taken over",
                          "Replaces")
        unknown = [t for t in req.tokens("require") if t not in ("siprec", "timer")]
        if unknown:
            raise Refusal(420, f"Bad Extension: {', '.join(unknown)[:60]}", "Require",
                          headers=[("Unsupported", ", ".join(unknown))])
        if not is_siprec_src({n: req.get_all(n) for n in ("contact", "require", "supported")}):
            raise Refusal(403, "Not a recording session (no +sip.src, ;src or Require: siprec)", "Contact")
        meta_bytes, sdp_text = bodies(req, need_metadata=True)
        try:
            md = md_mod.parse(meta_bytes)
        except MetadataError as exc:
            raise Refusal(400, f"Bad metadata: {exc}", "rs-metadata") from None
        except Exception as exc:   # noqa: BLE001 - whatever the XML does, it is a 400
            raise Refusal(400, f"Bad metadata: {type(exc).__name__}", "rs-metadata") from None
        md = merge_status(md, req)
        offer = self.offer(sdp_text)
        if not offer.audio:
            raise Refusal(488, "No audio streams to record", "m=audio")
        recorded = offer.recorded()
        if not any(m.recordable for _, m in recorded):
            raise Refusal(488, "No codec the recorder can decode (it takes "
                          + ", ".join(sorted(codecs.supported())) + ")", "m=audio")
        self.check_provisioning(md)
        expires = self.session_interval(req)
        dialog = Dialog.from_invite(req, f"{self.host}:{self.port}", peer.transport)
        rate = 16000 if any(wideband(m) for _, m in recorded) else 8000
        s = Session(dialog=dialog, peer=peer, metadata=md, offer=offer,
                    t0=time.monotonic(), wall0=time.time(), rate=rate, names=header_names(req), invite=req,
                    host=self, lane=self.lanes[self._next_lane % LANES], first_metadata=meta_bytes,
                    last_sip=time.monotonic(), expires=expires, refreshed=time.monotonic())
        self._next_lane += 1
        self.sessions[(req.call_id, req.from_tag)] = s
        if peer.connection is not None:
            peer.connection.sessions += 1
        return s

    @staticmethod
    def offer(sdp_text: str | None) -> Offer:
        if sdp_text is None:
            raise Refusal(488, "No SDP in the recording session offer", "application/sdp")
        try:
            return parse_offer(sdp_text)
        except SdpError as exc:
            raise Refusal(exc.code, exc.reason, exc.element) from None

    def session_interval(self, req: Request) -> int:
        """RFC 4028: the interval the SRC asked for (we let the SRC refresh), 0 = no timer."""
        value = req.get("session-expires")
        if value is None:
            return 0
        try:
            secs = int(value.split(";")[0].strip())
        except ValueError:
            raise Refusal(400, "Bad request: bad Session-Expires", "Session-Expires") from None
        if secs < self.min_se:
            raise Refusal(422, "Session Interval Too Small", "Session-Expires",
                          headers=[("Min-SE", str(self.min_se))])
        return secs

    # Provider-side accounts, written by the app (R-PRV-6, R-USR-7)
    def provider_info(self) -> dict:
        """The app rewrites the file (atomically) when settings change: read it again only then,
        not twice per INVITE."""
        path = self.store_dir / "provider.json"
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if key != self._provider_key:
                self._provider = json.loads(path.read_text())
                self._provider_key = key
            return self._provider
        except (OSError, ValueError):
            self._provider_key = None
            return {}

    _provider: dict = {}
    _provider_key: tuple | None = None

    def check_provisioning(self, md: Metadata) -> None:
        info = self.provider_info()
        if not info.get("manual") or md.broadworks is None:
            return
        bw = md.broadworks
        user = bw.get("userID", "")
        account = info.get("accounts", {}).get(user)
        if account is None:
            raise Refusal(403, f"No {info.get('provider')} account for user {user} (R-PRV-6)",
                          "broadWorksRecordingMetadata/userID")
        for field_name, key in (("serviceProvider", "serviceProviderID"), ("externalGroup", "groupID"),
                                ("externalIdentifier", "userID")):
            if account.get(field_name) != bw.get(key):
                raise Refusal(403, f"Platform info mismatch for {user}: {field_name} "
                                   f"{account.get(field_name)!r} != {bw.get(key)!r} (R-USR-7)",
                              f"broadWorksRecordingMetadata/{key}")

    # ----- establishing -------------------------------------------------------------------
    async def establish(self, req: Request, peer: Peer, s: Session) -> None:
        """Open the RTP sockets and answer 200. The store row and the WAV are made when the first
        audio packet says which rate the file needs (begin), so nothing slow delays the answer."""
        loop = asyncio.get_running_loop()
        try:
            ports: dict[int, int] = {}
            socks = rtp_sockets(self.host, len(s.offer.recorded()))
            for (index, m), sock in zip(s.offer.recorded(), socks):
                if self.beat is not None:
                    rx = StreamReceiver(0, s.t0)
                    self.beat.add(sock, rx)
                else:
                    _t, rx = await loop.create_datagram_endpoint(
                        lambda: StreamReceiver(0, s.t0), sock=sock)
                s.add_stream(rx, m)
                if m.recordable:
                    ports[index] = rx.port
            s.start_timeline()
        except Exception as exc:   # noqa: BLE001 - answered 500, nothing half-made stays
            self.out(f"session {req.call_id} failed at set-up: {type(exc).__name__}: {exc}")
            if not s.cancelled:
                self.refuse(req, peer, Refusal(500, f"Recorder error: {type(exc).__name__}"))
            await self.finish(s, "failed", delete=True)
            return
        finally:
            self.pending_invites.pop(req.branch, None)
        if s.cancelled:
            await self.finish(s, "cancel", delete=True)
            return
        s.go_live()
        self.stats.sessions_total += 1
        body = build_answer(s.offer, self.host, ports, s.sdp_version).encode()
        data = self.answer(req, peer, 200, to_tag=s.dialog.local_tag, headers=self.ok_headers(s, req),
                           body=body, content_type="application/sdp")
        s.dialog.sent_ok(data, peer.reliable)
        if not s.offers_wideband:
            s.begin("")                   # narrowband offered first: 8 kHz, the row exists at once
        owner = s.timeline[0]["aor"] if s.timeline else "?"
        self.out(f"recording {s.invite.call_id} ({s.metadata.dialect}) for {owner} from {peer}")
        if peer.connection is not None and peer.connection.closed:
            # the SRC closed its connection while the sockets were being opened (its call was
            # cancelled): on_connection_closed saw the session before it was live. Nobody can ACK
            # or BYE it now; without this it stayed `recording` until the recorder stopped.
            self.out(f"connection closed before the ACK of {s.invite.call_id}: ending it")
            await self.finish(s, "no-ack")

    def ok_headers(self, s: Session, req: Request) -> list[tuple[str, str]]:
        proto = "" if s.peer.transport == "udp" else f";transport={s.peer.transport}"
        port = self.tls_port if s.peer.transport == "tls" else self.port
        headers = [("Contact", f"<sip:srs@{self.host}:{port}{proto}>"), ("Allow", ALLOW),
                   ("Supported", SUPPORTED)]
        if s.expires:
            headers.append(("Session-Expires", f"{s.expires};refresher=uac"))
            if "timer" in req.tokens("supported") or "timer" in req.tokens("require"):
                headers.append(("Require", "timer"))
        if req.get_all("record-route"):
            headers += [("Record-Route", v) for v in req.get_all("record-route")]
        return headers

    # ----- in-dialog offers and metadata -------------------------------------------------
    def on_reoffer(self, req: Request, peer: Peer, s: Session) -> None:
        if not s.dialog.in_order(req):
            raise Refusal(500, "CSeq out of order", "CSeq", headers=[("Retry-After", "1")])
        if s.state == "pending":
            raise Refusal(491, "Request Pending", "INVITE")
        s.refreshed_now()
        meta, sdp_text = bodies(req, need_metadata=False)
        self.out(f"{req.method} in {s.invite.call_id}: {'SDP' if sdp_text is not None else 'no SDP'}, "
                 f"{'metadata' if meta is not None else 'no metadata'}"
                 f"{', status ' + (req.get(STATUS_HEADER) or '')[:120] if req.get(STATUS_HEADER) else ''}")
        new_offer = self.offer(sdp_text) if sdp_text is not None else None
        if new_offer is not None:
            recorded = new_offer.recorded()
            if not any(m.recordable or m.state == "inactive" for _, m in recorded):
                # e.g. a codec the recorder cannot decode: refuse the change, keep the session
                raise Refusal(488, "No codec the recorder can decode in the new offer; session kept", "m=audio")
        if meta is not None or req.get(STATUS_HEADER) is not None:
            ignored = s.update_metadata(meta, req)
            if ignored is not None:
                self.stats.refuse(0, "Bad metadata update ignored")
                self.out(f"bad metadata update ignored for {s.invite.call_id}: {ignored} | element: rs-metadata")
        if req.get("session-expires"):
            s.expires = self.session_interval(req)
        body, ctype = b"", ""
        if new_offer is not None:
            ports = s.apply_offer(new_offer)
            body, ctype = build_answer(new_offer, self.host, ports, s.sdp_version).encode(), "application/sdp"
        elif req.method == "INVITE":
            # an offerless re-INVITE: our current session description is the offer
            ports = s.ports()
            body, ctype = build_answer(s.offer, self.host, ports, s.sdp_version).encode(), "application/sdp"
        # a lost 2xx to a re-INVITE is recovered by the SRC's retransmission (same answer again)
        self.answer(req, peer, 200, headers=self.ok_headers(s, req), body=body, content_type=ctype)

    # ----- store -------------------------------------------------------------------------
    def _write_batch(self, items: list) -> None:
        for s, left, right in items:
            s.store_call("write", left, right)

    # ----- ending ---------------------------------------------------------------------------
    async def finish(self, s: Session, why: str, delete: bool = False) -> None:
        if s.state == "ended":
            return
        self.stats.ended[why] = self.stats.ended.get(why, 0) + 1
        if s.store_failed:
            self.stats.truncated_storage += 1
        self.sessions.pop((s.dialog.call_id, s.dialog.remote_tag), None)
        if s.peer.connection is not None:
            s.peer.connection.sessions -= 1
        closed = await s.end(why, delete)
        if closed is None:
            return
        self.stats.rtp_packets += closed.received
        self.stats.rtp_lost += closed.lost
        self.out(f"finished {s.invite.call_id} ({why}{', discarded' if closed.discarded else ''}): "
                 f"{closed.received} packets, {closed.lost} lost"
                 f"{', SUSPECT: ' + closed.suspect if closed.suspect else ''}")

    # ----- timers ---------------------------------------------------------------------------
    async def ticker(self) -> None:
        next_status = time.monotonic() + 1.0
        next_line = time.monotonic() + self.status_every if self.status_every else None
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            try:
                self.tick(now)
                if now >= next_status:
                    next_status = now + 1.0
                    self.transactions.expire()
                    self.check_storage()
                    self.write_status()
                    # forget rate buckets of sources quiet for a minute (many 127.x sources...)
                    for ip in [ip for ip, b in self.buckets.items() if now - b.at > 60]:
                        del self.buckets[ip]
                if next_line is not None and now >= next_line:
                    next_line = now + self.status_every
                    self.out("status: " + self.status_line())
            except Exception as exc:   # noqa: BLE001
                self.out(f"tick failed: {type(exc).__name__}: {exc}")

    def tick(self, now: float) -> None:
        batch: dict = {}
        try:
            self._tick(now, batch)
        finally:
            for lane, items in batch.items():
                lane.submit(self._write_batch, items)

    def _tick(self, now: float, batch: dict) -> None:
        for s in list(self.sessions.values()):
            if s.state != "live":
                continue
            why = s.tick(now, batch, self.rtp_timeout)
            if why is not None:
                s.bye(REASONS.get(why))
                self.spawn(self.finish(s, why))

    def status(self) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        live = [s for s in self.sessions.values() if s.state == "live"]
        rx = [r for s in live for r in s.receivers]
        return {"pid": os.getpid(), "engine": "asyncio", "name": self.name,
                "sip": f"{self.host}:{self.port}", "sessions_active": len(live),
                "sessions_total": self.stats.sessions_total, "requests": self.stats.requests,
                "unanswerable": self.stats.unanswerable, "refused": dict(self.stats.refused),
                "ended": dict(self.stats.ended),
                "storage": dict(self.storage, **dict(zip(("state", "reason"), self.storage_state()))),
                "min_free": self.needed_free(),
                "refused_storage": self.stats.refused_storage,
                "truncated_storage": self.stats.truncated_storage,
                "rtp_packets_active": sum(r.stats.received for r in rx),
                "rtp_packets": self.stats.rtp_packets + sum(r.stats.received for r in rx),
                "rtp_lost": self.stats.rtp_lost,
                "tcp_connections": len(self.tcp.connections),
                "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "rss_kb": _rss_kb(),
                "started": datetime.fromtimestamp(self._started, timezone.utc).isoformat(),
                "updated": datetime.now(timezone.utc).isoformat()}

    def status_line(self) -> str:
        st = self.status()
        refused = sum(st["refused"].values())
        return (f"{st['sessions_active']} active, {st['sessions_total']} recorded, {st['requests']} "
                f"requests, {refused} refused, cpu {st['cpu_seconds']} s, rss {st['rss_kb']} kB, "
                f"store {st['storage'].get('state')}")

    def write_status(self) -> None:
        folder = self.store_dir / "status"
        path = folder / f"recorder-{os.getpid()}.json"
        text = json.dumps(self.status(), indent=1)
        text += " " * (-len(text) % 4096)      # whole blocks: room to grow in place (below)
        try:
            folder.mkdir(exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        except OSError:
            # a full disk has no block for a new file, and that is when --stats matters most:
            # overwrite the old file's own blocks (spaces pad the JSON to its old size)
            try:
                with open(path, "r+b") as f:
                    size = os.fstat(f.fileno()).st_size
                    data = text.encode()
                    if len(data) <= size:
                        f.write(data + b" " * (size - len(data)))
            except OSError:
                pass


def _rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
