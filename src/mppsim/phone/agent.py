"""The user agent process: one per simulated user or PSTN party (../shared/DESIGN.md).

Run as `python -m mppsim.phone.agent --config agent.json`. It owns one pjsua2 endpoint with one
account per line, connects to the app's control channel, says hello, then serves requests and
reports events (docs/protocol.md) until told to shut down or until the channel closes.

Threads: the main thread runs everything (control requests, pjsua calls, timers); pjsua's
callbacks only post snapshots to it through a queue and a wake-up pipe (phone/calls.py).
"""
from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import os
import select
import socket
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import pjsua2 as pj

from mppsim.rules.effective import EffectiveSettings

from .callback_queue import CallbackQueue
from .calls import AgentCall, CallRecord, LineAccount, snapshot
from .commands import COMMANDS
from .edge import RecordingEdge
from .announcer import Announcer
from .host import CommandError
from .siprec import SiprecClient
from .transfer import TransferDesk
from .call_waiting import CallWaiting
from .conference import Conferences
from .voicemail_menu import RETRIEVAL_CODE
from .voicemail import VoicemailService
from .contact_centre import ContactCentre
from . import endpoint, os_thread, siprec as siprec_mod
from .endpoint import (RTP_PORT_RANGE, LineConfig, MAX_LINES, account_config, bind_transports,
                       create_endpoint, flush_logs, loopback_account, poll_events)
from .media import Capture, MediaClock, Source
from .reaper import Reaper
from .replies import Deferred
from .resources import process_resources
from .warmup import rehearse
from .protocol import AUTH_SCHEME, AuthError, Channel, ChannelClosed, new_nonce, proof, proof_ok
from mppsim.sip import message as sip_message
from mppsim.sip import sdp
from mppsim.sip.uri import (host_port, name_addr, name_and_user, params as uri_params,
                            transport as uri_transport, user as uri_user)

MAX_USER_CALLS = 2  # active + consult; the other 2 of pjsua's 4 are kept for their recordings
# Carried in a blind transfer's Refer-To, so the transferee's new INVITE tells the target's
# network edge that the compliance announcement already played on this call (R-CMP-3).
COMPLIANCE_HEADER = "X-Mppsim-Compliance"
# The main loop's longest sleep with nothing to do: each pass of a Python thread costs ~0.1 ms
# of CPU on a loaded VM, and at 200 agents a wake-up every 0.5 s was 0.06 of a core
IDLE_WAIT = 5.0

END_REASONS = {486: "busy", 600: "busy", 480: "no-answer", 408: "no-answer", 603: "declined",
               404: "not-found", 484: "not-found", 487: "cancelled", 503: "unavailable",
               488: "not-acceptable"}


def request_user(msg: str) -> str:
    """User part of a request's Request-URI: 'INVITE sip:1002@h:p SIP/2.0' -> '1002'."""
    req = sip_message.read(msg)
    return uri_user(req.uri) if isinstance(req, sip_message.Request) else ""


def request_params(msg: str) -> dict[str, str]:
    """mppsim's routing parameters of a request's Request-URI (phone/contact_centre.py):
    'INVITE sip:1001@h:p;mppsim-offer=t1;mppsim-via=5000 SIP/2.0' -> {'offer': 't1', 'via': '5000'}."""
    req = sip_message.read(msg)
    if not isinstance(req, sip_message.Request):
        return {}
    return {k[len("mppsim-"):]: v for k, v in uri_params(req.uri).items() if k.startswith("mppsim-")}


def has_header(msg: str, name: str, value: str) -> bool:
    """True when a SIP message has `name: value` (name in any case or its compact form)."""
    return sip_message.read(msg).has(name, value)


def unusable_media(msg: str) -> str:
    """Why an INVITE's offer cannot be answered by an agent, or "": agents bind IPv4 only, and
    pjsua, offered `c=IN IP6` only (Linphone's default), rang and then failed the answer with
    PJ_EAFNOTSUP: the caller got 488 after ringing and the call log blamed the caller."""
    req = sip_message.read(msg) if msg else None
    body = getattr(req, "body", "") if req is not None else ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if "m=audio" not in (body or ""):
        return ""                            # no offer (offerless INVITE) or not SDP alone
    try:
        offer = sdp.parse(body[body.index("v=0"):] if "v=0" in body else body)
    except Exception:   # noqa: BLE001 - a malformed offer is pjsua's to refuse, as before
        return ""
    usable = [m for m in offer.audio if m.port and ":" not in (m.connection or "")]
    if offer.audio and not usable and any(":" in (m.connection or "") for m in offer.audio):
        return "IPv6 media only (c=IN IP6): this agent has IPv4 media addresses"
    return ""


def srtp_sdes(acfg: pj.AccountConfig, mandatory: bool) -> None:
    """SIPREC streams as SRTP keyed by SDES (a=crypto), one suite only: each crypto line is ~80
    bytes per m-line and the agent's INVITE must stay under pjsip's 4000 bytes. The hop to the
    network SRC is plain TCP on this host; the key's protection on the wire is the SRS leg's TLS."""
    med = acfg.mediaConfig
    med.srtpUse = pj.PJMEDIA_SRTP_MANDATORY if mandatory else pj.PJMEDIA_SRTP_OPTIONAL
    med.srtpSecureSignaling = 0
    suite = pj.SrtpCrypto()
    suite.name = "AES_CM_128_HMAC_SHA1_80"
    cryptos = pj.SrtpCryptoVector()
    cryptos.append(suite)
    med.srtpOpt.cryptos = cryptos
    keyings = pj.IntVector()
    keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
    med.srtpOpt.keyings = keyings


def via_transport(msg: str) -> str:
    """The transport a request came over, from its top Via ('SIP/2.0/TCP h:p' -> 'tcp')."""
    via = sip_message.read(msg).get("via") or "" if msg else ""
    proto = via.split(None, 1)[0] if via.strip() else ""
    return proto.rsplit("/", 1)[-1].lower() if proto.upper().startswith("SIP/2.0/") else "udp"


class Agent:
    def __init__(self, config: dict[str, Any]):
        self.name: str = config["agent"]
        self.kind: str = config.get("kind", "user")
        self.run_dir = Path(config.get("run_dir", "."))
        self.ring_timeout: float = float(config.get("ring_timeout", 20))
        self.directory: dict[str, str] = dict(config.get("directory", {}))
        self.auto_answer: float | None = config.get("auto_answer")
        self.unavailable: set[str] = set()  # numbers whose agent the app reports down
        # issue 21: the address every socket of this agent binds and its SIP, SDP and metadata say
        self.address: str = config.get("address") or endpoint.LOOPBACK
        endpoint.set_address(self.address)
        siprec_mod.HOST = self.address
        self.tls_ca: str = config.get("tls_ca") or ""     # an SRS's TLS certificate is checked against it
        self.srtp: str = config.get("srtp") or "off"      # SIPREC media: off | optional | mandatory
        self.rtp_thread: bool = bool(config.get("rtp_thread"))   # pjmedia's own RTP thread (load runs)
        self.lines = [LineConfig(**line) for line in config["lines"]]
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise ValueError(f"lines: {len(self.lines)} given; an agent has 1 to {MAX_LINES}")
        self.control_addr: str = config["control"]
        # the run's secret and, with TLS, its certificate (phone/protocol.py): commands are taken
        # only from the app that proves it
        self.control_secret: str | None = config.get("control_secret")
        self.control_tls: str | None = config.get("control_tls_sha256")
        self.log_file = str(self.run_dir / "logs" / f"{self.name}.pjsip.log")

        self.callbacks = CallbackQueue()
        self.main_thread = threading.get_ident()
        # Held by the main loop while it works (it may create calls); the poller thread takes
        # it to free ended Call objects (phone/reaper.py)
        self.lock = threading.Lock()
        self.reaper = Reaper(self.lock)
        self.media_clock: MediaClock | None = None   # the bridge's timeline (phone/media.py)
        self.closing: list = []   # captures whose WAV writer is being closed (end_record)
        self.retired_ports: list = []
        self.post = self.callbacks.post   # what pjsua2 callbacks call, from their threads
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count(1)
        self.calls: dict[str, CallRecord] = {}   # live and recently ended, by key
        # Every pjsua2 Call object ever made, freed only at shutdown: ~Call() of an ended
        # call hangs up whatever call pjsua has since given the same id (docs/decisions.md).
        self.call_objects: list[AgentCall] = []
        self.accounts: dict[int, LineAccount] = {}
        self.line_state: dict[str, str] = {}
        self.stopping = False
        self.chan: Channel | None = None
        self.ep: pj.Endpoint | None = None
        self.source = Source()
        self.sound = None   # phone/sound_bridge.SoundBridge while this device uses the real sound card
        # Users' agents and the voicemail agent play the network edge (R-USR-3 records deposits)
        self.edge = (RecordingEdge(self, config.get("kinds", {}))
                     if self.kind in ("user", "voicemail") else None)
        self.voicemail: str | None = config.get("voicemail")    # "sip:{mailbox}@127.0.0.1:PORT"
        self.mailboxes: dict[str, str] = dict(config.get("mailboxes", {}))  # extension -> line id
        self.mailbox = VoicemailService(self) if self.kind == "voicemail" else None
        # a hunt group, call queue or auto attendant: the network plays it (issue 25)
        self.centre = (ContactCentre(self, {**config["feature"], "kinds": config.get("kinds", {})})
                       if self.kind == "feature" else None)
        self.pickups: dict[str, float] = {}   # offer token -> when this line took the offer
        self.recorder_target: str | None = config.get("recorder")   # the embedded SRS worker
        self.names: dict[str, str] = dict(config.get("names", {}))
        self.siprec: SiprecClient | None = None
        self.transfers = TransferDesk(self)
        self.conferences = Conferences(self, self.transfers)
        for line_id, eff in (config.get("recording") or {}).items():
            if self.edge is not None:
                self.edge.set_settings(line_id, EffectiveSettings.from_dict(eff))

    # ----- plumbing -------------------------------------------------------------------------
    def emit(self, event: str, **fields) -> None:
        if self.chan is None or self.chan.closed:
            return
        msg = {"event": event, "agent": self.name, "ts": time.time(), **fields}
        if self._held is not None and threading.get_ident() == self._held_by:
            self._held.append(msg)
            return
        try:
            self.chan.send(msg)
        except ChannelClosed:
            self.stopping = True

    _held: list | None = None
    _held_by: int | None = None

    @contextlib.contextmanager
    def emits_held(self):
        """This thread's events wait until the block is done, then go in order in one write.
        Every event wakes the app, which runs above a load-sized org's agents (nice 19) and so
        takes the core from the agent at once; held from a call's answer until its recorder's
        INVITE is on its way, that step went from p50 10 to 4 ms with 50 calls starting at once.
        Events of other threads are not held."""
        if self._held is not None:
            yield
            return
        self._held, self._held_by = [], threading.get_ident()
        try:
            yield
        finally:
            held, self._held, self._held_by = self._held, None, None
            if held and self.chan is not None and not self.chan.closed:
                try:
                    self.chan.send_many(held)
                except ChannelClosed:
                    self.stopping = True

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), fn))
        if threading.get_ident() != self.main_thread:
            self.post(("noop", None, None))    # the main loop may sleep up to IDLE_WAIT

    # ----- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.ep = create_endpoint(self.log_file, own_poller=True, rtp_thread=self.rtp_thread)
        for line in self.lines:
            # The agent binds its own SIP port (the one it had before a restart if still free)
            # and reports it in its hello: the app never plans a port another process binds.
            line.sip_port = bind_transports(self.ep, line.sip_port)
            acc = LineAccount(self.post, line.id)
            acc.create(account_config(line))
            self.accounts[acc.getId()] = acc
            self.line_state[line.id] = "idle"
        # Only now, with sockets to wait on: pjlib's select ioqueue with none sleeps the whole
        # poll (POLL_MS) and sees no socket registered meanwhile, nor our wake-up datagram
        threading.Thread(target=poll_events, args=(self.ep, lambda: True, self.reaper.run_due,
                                                   self.poll_bound),
                         name="pjsua-poll", daemon=True).start()
        if self.edge is not None:
            self.siprec = SiprecClient(self, self.ep, self.recording_accounts())
            self.announcer = Announcer(self, self.run_dir / "tones")
            self.waiting = CallWaiting(self, self.run_dir / "tones")
        host, port = self.control_addr.rsplit(":", 1)
        self.chan = Channel.connect(host, int(port), tls_fingerprint=self.control_tls)
        hello = dict(pid=os.getpid(), kind=self.kind,
                     lines=[{"id": l.id, "extension": l.extension, "uri": l.uri, "sip_port": l.sip_port,
                             "rtp_port": l.rtp_port} for l in self.lines])
        if self.control_secret:
            self.authenticate(hello)
        else:
            self.emit("hello", **hello)
        if self.siprec is not None:
            try:    # phone/warmup.py: the first recording's pure code, while nothing waits for it
                rehearse(self.edge.settings.values())
            except Exception:   # a rehearsal is never worth an agent
                self.emit("log", level="warning", text="warm-up failed:\n" + traceback.format_exc())

    def authenticate(self, hello: dict) -> None:
        """The handshake of phone/protocol.py: challenge, hello with our proof, the app's
        welcome with its proof. Anything else and the agent refuses the channel, says why on
        stderr (its log) and exits: it never acts on a line from a party without the secret."""
        assert self.chan is not None and self.control_secret
        try:
            challenge = self.chan.read_message()
            theirs = challenge.get("challenge")
            if not isinstance(theirs, str) or not theirs:
                raise AuthError(f"expected a challenge, got {sorted(challenge)}")
            ours = new_nonce()
            self.chan.send({"event": "hello", "agent": self.name, "ts": time.time(), **hello,
                            "auth": AUTH_SCHEME, "nonce": ours,
                            "proof": proof(self.control_secret, "agent", self.name, theirs, ours)})
            welcome = self.chan.read_message()
            if not proof_ok(self.control_secret, welcome.get("welcome"), "app", self.name, ours, theirs):
                raise AuthError("the app's welcome does not prove this run's secret"
                                + ("" if "welcome" in welcome else f" (got {sorted(welcome)} instead)"))
        except (AuthError, ChannelClosed) as exc:
            print(f"mppsim-agent {self.name}: refused the control channel {self.control_addr}: {exc}",
                  file=sys.stderr, flush=True)
            self.chan.close()
            os._exit(4)       # pjsua runs: no interpreter teardown (see destroy)

    def wake_poller(self) -> None:
        """Make the pjsua thread look again at its sockets and timers. pjlib's select ioqueue
        builds its socket set before waiting and is not told of a socket registered meanwhile
        (makeCall's new TCP connection), nor is pjsip's wait shortened by a timer another
        thread sets: without this, either waits for whatever wakes the poller next (up to
        POLL_MS). A CRLF to our own UDP SIP port is a keep-alive pjsip drops (RFC 5626 §3.5.1)."""
        if self._wake_sock is None:
            self._wake_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._wake_sock.sendto(b"\r\n\r\n", (endpoint.ADDRESS, self.lines[0].sip_port))
        except OSError:
            pass

    _wake_sock: socket.socket | None = None

    def recording_accounts(self) -> dict[str, pj.Account]:
        """The SIPREC client's identities: RFC 7866 marks the SRC with `+sip.src`, BroadWorks
        with `;src` (R-REC-4). Contact on the first line's port, over TCP."""
        accounts = {}
        port = self.lines[0].sip_port
        for dialect, param in (("rfc7866", ";+sip.src"), ("webex", ";src")):
            user = f"src-{self.lines[0].extension}"
            host = endpoint.ADDRESS
            acfg = loopback_account(f"sip:{user}@{host}", f"<sip:{user}@{host}:{port};transport=tcp>{param}",
                                    self.lines[0].rtp_port + RTP_PORT_RANGE // 2, RTP_PORT_RANGE // 2)
            if self.srtp != "off":
                srtp_sdes(acfg, mandatory=self.srtp == "mandatory")
            acc = pj.Account()
            acc.create(acfg)
            accounts[dialect] = acc
        return accounts

    def run(self) -> None:
        assert self.chan is not None
        while True:
            if self.stopping and not any(r.active for r in self.calls.values()) and not self.closing:
                break
            # Everything that needs this loop wakes it (callbacks, requests, signals: the pipe;
            # timers: the timeout), so an idle pass is only the media clock's read (< 60 s apart)
            timeout = IDLE_WAIT
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            if self.stop_deadline:
                timeout = max(0.0, min(timeout, self.stop_deadline - time.monotonic()))
            readers = [self.callbacks] + ([self.chan.sock] if not self.chan.closed else [])
            if self.chan.pending:
                timeout = 0.0     # lines read with the handshake's last one
            try:
                ready, _, _ = select.select(readers, [], [], timeout)
            except InterruptedError:
                ready = []
            with self.lock:
                worked = self.work(ready)
            if worked and self.ep is not None:
                # pjsua calls made here may have set pjsip timers (a retransmission, a
                # transaction's end) that the poller, asleep for up to POLL_MS, does not know of
                self.wake_poller()
            if self.stopping and self.stop_deadline and time.monotonic() > self.stop_deadline:
                break

    stop_deadline: float | None = None

    def work(self, ready: list) -> bool:
        """One pass of the main loop after select: callbacks, requests, timers. True when any
        of them ran (and so may have called pjsua)."""
        worked = self.callbacks.drain(self, lambda text: self.emit("log", level="error", text=text)) > 0
        if (self.chan.sock in ready or self.chan.pending) and not self.chan.closed:
            worked = True
            try:
                for msg in self.chan.read_available():
                    self.handle_request(msg)
            except ChannelClosed:
                self.chan.closed = True
                self.shutdown_calls()
        worked = self.run_timers() or worked
        if self.media_clock is not None:
            self.media_clock.now()    # read within every loop of the silent file
        return worked

    def shutdown_calls(self) -> None:
        self.stopping = True
        self.stop_deadline = time.monotonic() + 3.0
        for rec in list(self.calls.values()):
            if rec.active:
                self.hangup_record(rec)

    def destroy(self) -> None:
        """End the process once every call is over.

        pjsua2 objects must not outlive libDestroy (their destructors then abort the process),
        and a Call destroyed while pjsua runs hangs up whatever call now has its id. So the
        agent does not tear pjsua down: calls are hung up first (run() waits for them), the
        control channel and the log are flushed, and the OS reclaims the rest (os._exit).
        """
        if self.chan is not None:
            self.chan.close()
        sys.stdout.flush()
        sys.stderr.flush()
        flush_logs()
        os._exit(0)

    def run_timers(self) -> bool:
        now = time.monotonic()
        ran = False
        while self.timers and self.timers[0][0] <= now:
            ran = True
            _, _, fn = heapq.heappop(self.timers)
            try:
                fn()
            except Exception:  # a timer must never kill the agent
                self.emit("log", level="error", text=traceback.format_exc())
        return ran

    # ----- callbacks, in the main thread -----------------------------------------------------
    def on_noop(self, _call, _data) -> None:
        """Posted by the SIGTERM handler only to wake the main loop."""

    def record_for(self, call: AgentCall, snap: dict | None = None) -> CallRecord:
        if call.record is None:
            snap = snap or snapshot(call) or {}
            acc = self.accounts.get(snap.get("acc_id", -1)) or call.account
            direction = "out" if snap.get("role", pj.PJSIP_ROLE_UAC) == pj.PJSIP_ROLE_UAC else "in"
            key = f"{self.name}:{next(self.seq)}"
            self.keep(call)
            call.record = CallRecord(key=key, call=call, line=acc.line_id, direction=direction,
                                     created=time.time(), related=call.related,
                                     state="dialing" if direction == "out" else "ringing")
            self.calls[key] = call.record
            new = True
        else:
            new = False
        rec = call.record
        if snap:
            rec.remote_uri = snap["remote_uri"] or rec.remote_uri
            rec.sip_call_id = snap["sip_call_id"] or rec.sip_call_id
        if new and self.edge is not None:
            # R-CMP-3: a call that continues another one (transfer) keeps its compliance flag
            carried = call.compliance_played or bool(rec.related and self.edge.compliance_played(rec.related))
            mailbox = getattr(call, "mailbox", None)
            if mailbox is not None:     # a deposit: the mailbox owner's settings apply
                rec.mailbox = mailbox
                self.edge.call_created(rec.key, self.mailboxes.get(mailbox, ""), "in",
                                       name_and_user(rec.remote_uri)[1], voicemail=True)
            elif self.is_voicemail_uri(rec.remote_uri):
                pass     # the user listening to their mailbox: a feature call, not recorded
            elif call.offer is not None:
                pass     # a feature ringing this line for a caller: the caller's call is recorded
            elif not self.transfers.follows(rec):   # a transfer's new leg takes the old one's recording
                self.edge.call_created(rec.key, rec.line, rec.direction, name_and_user(rec.remote_uri)[1],
                                       compliance_played=carried)
        return rec

    def is_voicemail_uri(self, uri: str) -> bool:
        """A call to the voicemail service (its host:port), e.g. *86 or the voicemail number."""
        if not self.voicemail or "@" not in uri:
            return False
        return host_port(name_addr(uri)[1]) == host_port(self.voicemail)

    def clock(self) -> MediaClock:
        if self.media_clock is None:
            self.media_clock = MediaClock(self.run_dir / "tones")
        return self.media_clock

    def keep(self, call: AgentCall) -> None:
        if not any(c is call for c in self.call_objects):
            self.call_objects.append(call)

    def on_incoming(self, call: AgentCall, data: dict) -> None:
        call.compliance_played = has_header(data.get("msg", ""), COMPLIANCE_HEADER, "played")
        params = request_params(data.get("msg", ""))
        call.compliance_played = call.compliance_played or params.get("cmp") == "1"
        call.offer = params.get("offer") or None
        if self.kind == "voicemail":
            call.mailbox = request_user(data.get("msg", ""))
        rec = self.record_for(call)
        rec.transport = via_transport(data.get("msg", ""))
        rec.via = params.get("via") or None
        if self.centre is not None:
            self.centre.incoming(rec, call.compliance_played)
            return
        if call.offer is not None:
            rec.offer, rec.presented = call.offer, params.get("caller") or None
            busy = any(r.active and r is not rec and r.line == rec.line for r in self.calls.values())
            self.answer_code(rec, 486 if busy or self.stopping else 180)
            self.report_call(rec)
            if self.auto_answer is not None and not busy:
                self.later(self.auto_answer, lambda: rec.state == "ringing" and self.answer_code(rec, 200))
            return
        pickup = params.get("pickup")
        if pickup and self.pickups.pop(pickup, 0) > time.monotonic() - 10:
            # the caller of an offer this line took: answered at once (the user already did);
            # the offer itself is not "busy": the feature is hanging it up
            self.answer_code(rec, 180)
            if self.edge is not None:
                self.edge.call_offered(rec.key)
            self.prepare_recording(rec)
            self.answer_code(rec, 200)
            self.report_call(rec)
            return
        if self.kind == "voicemail":
            if self.mailbox.is_retrieval(call.mailbox):
                self.mailbox.retrieve(rec)       # the owner listens to their messages
            else:
                self.mailbox.take_message(rec)
            return
        unusable = unusable_media(data.get("msg", ""))
        if unusable:
            # refused before ringing, and the call log says this agent refused (issue 21). Not
            # reported until it has ended: a `call` event now would say "ringing" (the state a
            # call in begins with) and the faces would ring for a call that never did
            self.answer_code(rec, 488, "Not Acceptable Here", warning=unusable)
            self.emit("log", level="warning", text=f"{rec.key}: offer refused with 488: {unusable}")
            return
        busy = any(r.active and r is not rec and r.line == rec.line for r in self.calls.values())
        waiting = busy and self.waiting is not None and self.waiting.accepts(rec)   # call waiting
        too_many = sum(r.active for r in self.calls.values()) > MAX_USER_CALLS
        if (busy and not waiting) or too_many or self.stopping:
            self.answer_code(rec, 486)          # reported once ended, as the 488 above
            return
        if waiting:
            self.waiting.ringing(rec)
        self.answer_code(rec, 180)
        self.report_call(rec)
        if self.edge is not None:
            self.edge.call_offered(rec.key)
        self.prepare_recording(rec)
        self.later(self.ring_timeout, lambda: self.ring_timeout_hit(rec))
        if self.auto_answer is not None:
            self.later(self.auto_answer, lambda: rec.state == "ringing" and self.answer_code(rec, 200))

    def ring_timeout_hit(self, rec: CallRecord) -> None:
        if rec.state == "ringing":
            rec.timed_out = True
            if not self.to_voicemail(rec):
                self.answer_code(rec, 480, "No Answer")

    def to_voicemail(self, rec: CallRecord) -> bool:
        """Unanswered or declined: the network sends the caller to the line's voicemail (302).
        Not a feature's offer: a member declining it only makes the feature try the next one."""
        if not self.voicemail or rec.offer is not None:
            return False
        extension = next(l.extension for l in self.lines if l.id == rec.line)
        rec.to_voicemail = True
        self.redirect(rec, self.voicemail.format(mailbox=extension))
        return True

    def on_state(self, call: AgentCall, snap: dict) -> None:
        rec = self.record_for(call, snap)
        st = snap["pj_state"]
        rec.status_code = snap["status_code"]
        if st == pj.PJSIP_INV_STATE_EARLY and rec.direction == "out":
            rec.ringback = True
        elif st == pj.PJSIP_INV_STATE_CONFIRMED:
            first = rec.connected_at is None
            if first:
                rec.connected_at = time.time()
            rec.state = "held" if rec.held_by else "connected"
            with self.emits_held():       # the recorder's INVITE first, then wake the app
                if first and rec.aud is not None:
                    self.link_media(rec)      # media came with early media: start sending now
                self.report_call(rec)
                if first and self.edge is not None:
                    self.edge.call_answered(rec.key)
                    self.transfers.answered(rec)
                if first and self.siprec is not None:
                    self.siprec.release_standby(rec.key)   # a ready leg the answer did not use
                if first and rec.offer is not None:
                    self.pickups[rec.offer] = time.monotonic()   # the caller comes next
                if self.centre is not None:
                    self.centre.offer_state(rec)
            return
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.end_record(rec, snap)
            return
        self.report_call(rec)

    def end_record(self, rec: CallRecord, snap: dict) -> None:
        if rec.state == "ended":
            return
        was_connected = rec.connected_at is not None
        rec.state = "ended"
        rec.ended_at = time.time()
        code = snap.get("status_code", 0)
        if rec.to_voicemail:
            rec.reason = "voicemail"
        elif rec.far_end_lost:
            rec.reason = "far end lost"
        elif rec.ended_by_network:
            rec.reason = "recording failed"      # failureBehavior END_CALL_WITH_ANNOUNCEMENT
        elif rec.timed_out:
            rec.reason = "no-answer"
        elif was_connected:
            rec.reason = "hangup"
        else:
            rec.reason = END_REASONS.get(code, "failed" if code >= 400 else "hangup")
        rec.ended_by = "local" if rec.local_hangup and not rec.far_end_lost else "remote"
        # The stream is gone and its conference slot may already serve another call:
        # drop references only, never stopTransmit on the old slot.
        rec.aud = None
        rec.source_linked = None
        keep = self.transfers.keeps_recording(rec)   # a transfer's new leg takes it over
        keep = self.conferences.ended(rec) or keep    # a conference's remaining call takes it over
        if self.centre is not None:
            self.centre.ended(rec)
        if self.edge is not None and not keep:
            self.edge.call_ended(rec.key)
        if self.siprec is not None and not keep:
            self.siprec.call_ended(rec.key)
        capture, rec.capture = rec.capture, None
        if capture is None:
            self.call_over(rec, None)
        else:
            # What was heard is reported once pjmedia has closed the capture file (a bridge
            # tick or two), so the summary covers the whole call.
            capture.close()
            self.closing.append(capture)
            self.when_closed(rec, capture, time.monotonic() + 1.0)

    def when_closed(self, rec: CallRecord, capture: Capture, deadline: float) -> None:
        if capture.closed() or time.monotonic() > deadline:
            self.closing.remove(capture)
            self.call_over(rec, capture)
        else:
            self.later(0.02, lambda: self.when_closed(rec, capture, deadline))

    def call_over(self, rec: CallRecord, capture: Capture | None) -> None:
        """The ended call's final report: what its user heard over the whole call."""
        if capture is not None:
            rec.heard = capture.heard().to_dict()
            rec.capture_file = str(capture.path)
            if self.mailbox is not None:
                self.mailbox.call_over(rec, capture)
        self.report_call(rec)
        self.emit("call_summary", **self.describe(rec))
        self.later(1.5, self.refresh_idle_lines)
        if self.muted and not any(r.active for r in self.calls.values()):
            self.set_muted(False)       # the last call is over: the phone un-mutes
        self.reap(rec)
        for delay in (0.3, 0.6, 1.0, 2.0, 5.0):   # SIPREC sessions end a little after their call
            self.later(delay, self.poke_idle_clock)

    def poke_idle_clock(self) -> None:
        """Let pjsua close the idle sound clock (sndAutoCloseTime, phone/endpoint.py). pjsua
        checks for idleness only on a disconnect or a call's media teardown, and then needs
        no live call at all: when the last SIPREC session ends after its call, no check
        follows. A disconnect of two unlinked ports is such a check (and fails harmlessly)."""
        if self.media_clock is None or any(r.active for r in self.calls.values()):
            return
        try:
            self.media_clock.player.stopTransmit(self.media_clock.player)
        except pj.Error:
            pass

    def reap(self, rec: CallRecord) -> None:
        """Hand the ended call's pjsua2 objects to the reaper (its own and its SIPREC sessions')."""
        call = rec.call

        def detach_call() -> None:
            self.call_objects[:] = [c for c in self.call_objects if c is not call]
            call.record = None
            rec.call = None
        self.reaper.add(call, detach_call)
        if self.siprec is None:
            return
        for skey, session in self.siprec.reapable(rec.key):
            if self.transfers.taking_over(rec.key):
                continue     # a transfer's new leg is taking this recording over (phone/transfer.py)
            self.reaper.add(session.call, lambda skey=skey, session=session: self.siprec.detach(session, skey))
        standby = self.siprec.dropped.pop(rec.key, None)
        if standby is not None:      # a SIPREC leg made ready, then not used
            self.reaper.add(standby.call, lambda session=standby: self.siprec.detach(session))
        ended = [r for r in self.calls.values() if not r.active]
        for old in ended[:-20]:  # keep the last 20 ended calls for queries
            self.calls.pop(old.key, None)

    def poll_bound(self) -> int:
        """The poller's next wait (endpoint.POLL_MS): short only while a call's RTP is read there.
        On the poller's thread: a copy of the calls (one C call, whole under the GIL) is walked."""
        in_call = any(r.active for r in list(self.calls.values()))
        return endpoint.poll_bound_ms(self.rtp_thread, in_call)

    def on_media(self, call: AgentCall, _data) -> None:
        if call.getId() < 0:
            return
        rec = self.record_for(call)
        if rec.state == "ended":
            return
        rec.media_changed_at = time.monotonic()
        self.link_media(rec)
        self.report_call(rec)

    def on_siprec_state(self, call, snap: dict) -> None:
        if self.siprec is not None:
            self.siprec.on_state(call, snap)

    def on_siprec_log(self, _call, text: str) -> None:
        if self.siprec is not None:   # from the network SRC's thread (phone/network_src.py)
            self.siprec.on_log(text)

    def on_siprec_media(self, call, _data) -> None:
        if self.siprec is not None:
            self.siprec.on_media(call, None)
            self.conferences.relink()    # a re-created SIPREC stream lost the conference mix

    def on_dtmf(self, call: AgentCall, digit: str) -> None:
        rec = self.record_for(call)
        now = time.monotonic()
        last_digit, last_at = rec.last_digit
        # A re-INVITE re-creates the stream; the RFC 4733 end packets of a digit still under
        # way then look like a new event to the new stream. Drop that echo.
        if (digit == last_digit and now - last_at < 0.5
                and now - rec.media_changed_at < 0.5):
            return
        rec.last_digit = (digit, now)
        rec.dtmf += digit
        self.emit("dtmf", call=rec.key, line=rec.line, digit=digit)
        if self.kind == "voicemail":
            self.mailbox.dtmf(rec, digit)      # the retrieval menu (phone/voicemail_menu.py)
        if self.centre is not None:
            self.centre.dtmf(rec, digit)       # an auto attendant's menu

    def on_redirected(self, call: AgentCall, data: dict) -> None:
        rec = self.record_for(call)
        rec.redirected_to = data["target"]
        self.emit("redirected", call=rec.key, target=data["target"])

    def on_transfer_request(self, call: AgentCall, data: dict) -> None:
        # The new call has no pjsua id yet: its record is made at its first state change.
        old = self.record_for(call)
        data["new_call"].related = old.key
        self.keep(data["new_call"])
        self.emit("transferred", call=old.key, target=data["target"])

    def on_transfer_status(self, call: AgentCall, data: dict) -> None:
        rec = self.record_for(call)
        code = data["code"]
        self.emit("transfer_status", call=rec.key, code=code, final=data["final"])
        ok = 200 <= code < 300
        if rec.transfer == "blind" and code < 300 and rec.active:
            # Any progress (pjsua reports the 202 as the first NOTIFY's 100 Trying) means the
            # REFER was accepted: a phone leaves a blind transfer at that point.
            self.hangup_record(rec)
        elif rec.transfer == "attended" and data["final"] and ok and rec.active:
            self.hangup_record(rec)
        elif data["final"] and not ok:
            rec.transfer = None
            self.emit("log", level="warning", text=f"transfer of {rec.key} failed: {code}")

    def on_replaced(self, call: AgentCall, data: dict) -> None:
        old = self.record_for(call)
        data["new_call"].related = old.key
        self.keep(data["new_call"])
        self.emit("replaced", call=old.key)

    # ----- media ------------------------------------------------------------------------------
    def link_media(self, rec: CallRecord) -> None:
        """(Re)connect a call's audio: every re-INVITE re-creates the streams and drops links."""
        try:
            ci = rec.call.getInfo()
        except pj.Error:
            return
        aud, slot = None, -1
        held_local = rec.want_hold
        held_remote = False
        for idx in range(len(ci.media)):
            mi = ci.media[idx]
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status in (pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, pj.PJSUA_CALL_MEDIA_NONE):
                held_local = held_local or mi.status == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD
            if mi.status in (pj.PJSUA_CALL_MEDIA_REMOTE_HOLD, pj.PJSUA_CALL_MEDIA_NONE):
                held_remote = True
            if mi.audioConfSlot >= 0 and aud is None:
                try:
                    aud, slot = rec.call.getAudioMedia(idx), mi.audioConfSlot
                except pj.Error:
                    pass   # the stream is being re-created: the next media callback links it
        rec.held_by = ("both" if held_local and held_remote else "local" if held_local
                       else "remote" if held_remote else None)
        if self.edge is not None and rec.state != "ended":
            self.edge.call_held(rec.key, held_local)
        if rec.state in ("connected", "held"):
            rec.state = "held" if rec.held_by else "connected"
        rec.aud, rec.aud_slot = aud, slot
        rec.source_linked = None
        if aud is None:
            return
        if rec.capture is None:
            path = self.run_dir / "captures" / self.name / f"{rec.key.replace(':', '-')}-heard.wav"
            rec.capture = Capture(path, self.clock())
        aud.startTransmit(rec.capture.port)
        if self.sound is not None and not held_local:
            aud.startTransmit(self.sound)      # what the user hears -> the computer's speaker
        if self.source.port is not None:
            # the device sends only once the call is answered (early media is the network's);
            # muted, it sends nothing: the far end and the recording's user channel get silence
            if held_local or self.muted or rec.state not in ("connected", "held"):
                self.source.port.stopTransmit(aud)
            else:
                self.source.port.startTransmit(aud)
                rec.source_linked = self.source.port
        if self.siprec is not None:
            self.siprec.relink(rec.key)
        if self.announcer is not None:
            self.announcer.media_ready(rec.key)
        if self.mailbox is not None:
            self.mailbox.media_ready(rec)
        if self.centre is not None:
            self.centre.media_ready(rec)
        self.conferences.media_changed(rec)

    def unlink_source(self, rec: CallRecord) -> None:
        """Stop sending the device's audio into a live call (hold)."""
        if rec.source_linked is not None and rec.aud is not None and rec.state != "ended":
            try:
                rec.source_linked.stopTransmit(rec.aud)
            except pj.Error:
                pass
        rec.source_linked = None

    def relink_all(self) -> None:
        for rec in self.calls.values():
            if rec.active:
                self.link_media(rec)

    # ----- reporting --------------------------------------------------------------------------
    def describe(self, rec: CallRecord) -> dict[str, Any]:
        name, user = name_and_user(rec.remote_uri)
        if rec.presented:     # an offer: the phone shows the caller, not the feature
            name, user = self.names.get(rec.presented, ""), rec.presented
        via = ({"number": rec.via, "name": self.names.get(rec.via, rec.via)} if rec.via
               else {"number": uri_user(rec.remote_uri), "name": name} if rec.offer else None)
        return {
            "via": via,                        # the hunt group, queue or attendant it came through
            "offer": rec.offer is not None,    # the feature ringing this line for a caller
            "call": rec.key, "line": rec.line, "direction": rec.direction, "state": rec.state,
            "remote": {"uri": rec.remote_uri, "user": user, "name": name},
            "sip_call_id": rec.sip_call_id, "held_by": rec.held_by, "ringback": rec.ringback,
            "created": rec.created, "connected_at": rec.connected_at, "ended_at": rec.ended_at,
            "reason": rec.reason, "status_code": rec.status_code, "related": rec.related,
            **({"reason_detail": rec.ended_by_network} if rec.ended_by_network else {}),
            "ended_by": rec.ended_by, "dtmf": rec.dtmf,
            "heard": rec.heard, "capture_file": rec.capture_file,
            "consult_for": rec.consult.held,   # a consult call: the held call's key
            "consult_kind": rec.consult.kind if rec.consult.held else None,
            "waiting": rec.waiting,            # rang as a waiting call (call waiting)
            "conference": rec.conference,      # member of the conference hosted by this agent
        }

    def report_call(self, rec: CallRecord, changed: bool = False) -> None:
        """A `call` event when the call's state, hold, ringback or party changed, or `changed`
        says something else the faces show did (a consult call, a conference)."""
        desc = self.describe(rec)
        now = (rec.state, rec.held_by, rec.ringback, rec.remote_uri)
        if changed or rec.last_reported != now:
            rec.last_reported = now
            self.emit("call", **desc)
        self.update_line(rec.line)

    def update_line(self, line_id: str) -> None:
        order = ["connected", "held", "ringing", "dialing"]
        states = [r.state for r in self.calls.values() if r.line == line_id and r.active]
        if states:
            state = min(states, key=order.index)
        else:
            state = "ended" if self.line_state.get(line_id) not in ("idle", "ended") else self.line_state[line_id]
        if self.line_state.get(line_id) != state:
            self.line_state[line_id] = state
            self.emit("line", line=line_id, state=state)

    def refresh_idle_lines(self) -> None:
        for line_id, state in self.line_state.items():
            if state == "ended" and not any(r.active and r.line == line_id for r in self.calls.values()):
                self.line_state[line_id] = "idle"
                self.emit("line", line=line_id, state="idle")

    # ----- requests ---------------------------------------------------------------------------
    def handle_request(self, msg: dict[str, Any]) -> None:
        req_id = msg.get("id")
        cmd = msg.get("cmd", "")
        handler = COMMANDS.get(f"{cmd}")     # phone/commands.py
        try:
            if handler is None:
                raise CommandError(f"cmd: unknown command {cmd!r}")
            result = handler(self, **msg.get("args", {}))
            if isinstance(result, Deferred):
                self.answer_later(req_id, cmd, result)
                return
            reply = {"reply": req_id, "ok": True, "result": result or {}}
        except CommandError as exc:
            reply = {"reply": req_id, "ok": False, "error": str(exc)}
        except TypeError as exc:
            reply = {"reply": req_id, "ok": False, "error": f"{cmd}: bad arguments: {exc}"}
        except pj.Error as exc:
            reply = {"reply": req_id, "ok": False, "error": f"{cmd}: {exc.info()}"}
        except Exception as exc:  # report, never die on a request
            reply = {"reply": req_id, "ok": False, "error": f"{cmd}: internal error {exc!r}"}
            self.emit("log", level="error", text=traceback.format_exc())
        self.send_reply(reply)

    def send_reply(self, reply: dict) -> None:
        if self.chan is not None and not self.chan.closed:
            try:
                self.chan.send(reply)
            except ChannelClosed:
                self.stopping = True

    def answer_later(self, req_id, cmd: str, deferred: Deferred) -> None:
        """Poll a deferred reply from the main loop (timers) until it has its answer."""
        try:
            result = deferred.poll()
        except CommandError as exc:
            self.send_reply({"reply": req_id, "ok": False, "error": str(exc)})
            return
        except Exception as exc:
            self.send_reply({"reply": req_id, "ok": False, "error": f"{cmd}: internal error {exc!r}"})
            self.emit("log", level="error", text=traceback.format_exc())
            return
        if result is None:
            self.later(deferred.every, lambda: self.answer_later(req_id, cmd, deferred))
        else:
            self.send_reply({"reply": req_id, "ok": True, "result": result})

    def find_line(self, line: str | None) -> LineAccount:
        if line is None:
            return next(iter(self.accounts.values()))
        for acc in self.accounts.values():
            if acc.line_id == line:
                return acc
        raise CommandError(f"line: {line!r} is not a line of {self.name}; lines: "
                           + ", ".join(a.line_id for a in self.accounts.values()))

    def find_call(self, call: str | None, line: str | None = None,
                  prefer: tuple[str, ...] = ("connected", "held", "ringing", "dialing")) -> CallRecord:
        if call is not None:
            rec = self.calls.get(call)
            if rec is None or not rec.active:
                raise CommandError(f"call: {call!r} is not a live call of {self.name}")
            return rec
        live = [r for r in self.calls.values() if r.active and (line is None or r.line == line)]
        for state in prefer:
            for rec in reversed(live):  # newest first
                if rec.state == state:
                    return rec
        raise CommandError(f"{self.name} has no call" + (f" on line {line}" if line else "")
                           + " in state " + " or ".join(prefer))

    def resolve(self, to: str) -> str:
        target = str(to).strip()
        if target.startswith(("sip:", "sips:")):
            return target
        cleaned = target.replace(" ", "").replace("-", "")
        if cleaned == RETRIEVAL_CODE and self.voicemail:     # *86: the user's own mailbox
            return self.voicemail.format(mailbox=RETRIEVAL_CODE)
        for key in (cleaned, "+" + cleaned):
            if key in self.directory:
                return self.directory[key]
        raise CommandError(f"to: {to!r} is not a known extension or number")

    def line_contact(self, rec: CallRecord) -> str:
        """The line's Contact for this dialog: its forced Contact plus the dialog's transport
        (issue 21: without it a peer that called over TCP sent its BYE over UDP)."""
        line = next((l for l in self.lines if l.id == rec.line), self.lines[0])
        tp = "" if rec.transport == "udp" else f";transport={rec.transport}"
        return f"<{line.uri}{tp}>"

    def answer_code(self, rec: CallRecord, code: int, reason: str = "", warning: str = "") -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        if reason:
            prm.reason = reason
        if warning:      # RFC 3261 20.43: 301 = incompatible network address formats
            hdr = pj.SipHeader()
            hdr.hName, hdr.hValue = "Warning", f'301 mppsim "{warning}"'
            prm.txOption.headers.append(hdr)
        if code < 300 and rec.transport != "udp":
            # pjsip adds the dialog's Contact to a response only when it has none (sip_dialog.c)
            contact = pj.SipHeader()
            contact.hName, contact.hValue = "Contact", self.line_contact(rec)
            prm.txOption.headers.append(contact)
        if code >= 300:
            rec.local_hangup = True
            rec.call.hangup(prm)
        else:
            try:
                rec.call.answer(prm)
            except pj.Error:
                rec.local_hangup = True      # pjsua refuses the call itself: we ended it
                raise

    def hangup_record(self, rec: CallRecord) -> None:
        rec.local_hangup = True
        prm = pj.CallOpParam()
        try:
            rec.call.hangup(prm)
        except pj.Error:
            pass

    def far_end_lost(self, rec: CallRecord) -> None:
        """End a call whose far end's agent died (the app says so: commands.cmd_far_end_lost).
        A connected call's BYE goes to a dead port and ends the call here at once; a call still
        ringing at the dead agent is cancelled and ends when pjsip gives up on the CANCEL."""
        rec.far_end_lost = True
        self.hangup_record(rec)

    def resources(self) -> dict:
        """What the process holds: for leak checks under churn (tests, bench, `mppsim load`)."""
        return process_resources(self)

    def hold_record(self, rec: CallRecord) -> None:
        rec.want_hold = True
        self.unlink_source(rec)
        self.reinvite_when_free(rec, lambda: rec.call.setHold(pj.CallOpParam(True)), hold=True)

    def reinvite_when_free(self, rec: CallRecord, send: Callable[[], None], hold: bool,
                           tries: int = 60) -> None:
        """Hold and resume are re-INVITEs, and pjsip refuses one while the call's previous
        re-INVITE is still open (a person pressing Transfer, then Cancel, at once): try again
        every 50 ms for 3 s, unless the user changed their mind meanwhile."""
        try:
            send()
        except pj.Error:
            if tries <= 0 or not rec.active:
                raise
            self.later(0.05, lambda: (rec.active and rec.want_hold == hold
                                      and self.reinvite_when_free(rec, send, hold, tries - 1)))

    def hold_others(self, rec: CallRecord) -> None:
        """Hold the user's other connected calls (dial, answer, resume). One that is ending
        already (its BYE not processed yet) is skipped, not an error."""
        for other in list(self.calls.values()):
            if other is not rec and other.state == "connected":
                try:
                    self.hold_record(other)
                except pj.Error:
                    pass

    def unhold(self, rec: CallRecord) -> None:
        rec.want_hold = False
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.reinvite_when_free(rec, lambda: rec.call.reinvite(prm), hold=False)

    def resume(self, rec: CallRecord) -> None:
        """The user takes a held call back: their other connected calls go on hold."""
        self.hold_others(rec)
        self.unhold(rec)

    def dial(self, to: str, line: str | None = None) -> CallRecord:
        acc = self.find_line(line)
        uri = self.resolve(to)
        if uri_user(uri) in self.unavailable:
            raise CommandError(f"to: {to} is unavailable: its agent is down")
        if sum(r.active for r in self.calls.values()) >= MAX_USER_CALLS:
            raise CommandError(f"{self.name} already has {MAX_USER_CALLS} calls")
        call = AgentCall(self.post, acc)
        rec = self.record_for(call, {"acc_id": acc.getId(), "role": pj.PJSIP_ROLE_UAC,
                                     "remote_uri": uri, "sip_call_id": ""})
        # Hold the other calls of this user first, as a phone does when you dial mid-call.
        self.hold_others(rec)
        prm = pj.CallOpParam(True)
        rec.transport = uri_transport(uri)
        if rec.transport == "udp":
            call.makeCall(uri, prm)
        else:
            # pjsua puts the account's forced Contact in the INVITE: for the length of makeCall it
            # says the dialog's transport (the dialog keeps its own copy)
            line = next(l for l in self.lines if l.id == acc.line_id)
            cfg = account_config(line)
            cfg.sipConfig.contactForced = self.line_contact(rec)
            acc.modify(cfg)
            try:
                call.makeCall(uri, prm)
            finally:
                acc.modify(account_config(line))
        self.report_call(rec)
        self.prepare_recording(rec)
        return rec

    def offer(self, uri: str) -> CallRecord:
        """A feature rings a member for a caller (phone/contact_centre.py): a plain INVITE whose
        Request-URI carries the offer token, the caller and the feature."""
        acc = self.find_line(None)
        call = AgentCall(self.post, acc)
        rec = self.record_for(call, {"acc_id": acc.getId(), "role": pj.PJSIP_ROLE_UAC,
                                     "remote_uri": uri, "sip_call_id": ""})
        call.makeCall(uri, pj.CallOpParam(True))
        self.report_call(rec)
        return rec

    def redirect(self, rec: CallRecord, uri: str) -> None:
        """Answer a call not yet answered with 302 to `uri` (a feature hands its caller on)."""
        prm = pj.CallOpParam(True)
        prm.statusCode = 302
        contact = pj.SipHeader()
        contact.hName, contact.hValue = "Contact", f"<{uri}>"
        prm.txOption.headers.append(contact)
        rec.local_hangup = True
        rec.redirected_to = uri
        rec.call.hangup(prm)

    def blind_transfer(self, rec: CallRecord, to: str) -> None:
        """REFER the other party to `to`; the call ends once the REFER is accepted."""
        rec.transfer = "blind"
        target = self.resolve(to)
        if self.edge is not None and self.edge.compliance_played(rec.key):
            target += f"?{COMPLIANCE_HEADER}=played"
        rec.call.xfer(target, pj.CallOpParam(True))

    def attended_transfer(self, rec: CallRecord, consult: CallRecord) -> None:
        """REFER with Replaces: `rec`'s other party takes `consult`'s place."""
        rec.transfer = "attended"
        rec.call.xferReplaces(consult.call, pj.CallOpParam(True))

    def use_source(self, source: Source) -> None:
        """What the user says from now on (cmd_play): dropping the old source's port removes it,
        and its links, from the bridge."""
        for rec in self.calls.values():
            rec.source_linked = None
        self.source = source
        self.relink_all()

    def use_sound_bridge(self, port: int) -> int:
        """Use the GUI's sound card (phone/sound_bridge.py); our UDP port for its microphone."""
        from .sound_bridge import SoundBridge
        self.drop_sound_bridge()
        self.sound = SoundBridge(port)
        source = Source()
        source.port = self.sound
        source.description = {"kind": "soundcard", "port": self.sound.port}
        self.use_source(source)
        return self.sound.port

    def drop_sound_bridge(self) -> None:
        if self.sound is not None:
            for rec in self.calls.values():
                rec.source_linked = None
            self.source = Source()
            for rec in self.calls.values():
                if rec.active and rec.aud is not None:
                    try:
                        rec.aud.stopTransmit(self.sound)
                    except pj.Error:
                        pass
            self.sound.close()
            # kept, not freed: a callback port must outlive pjsua's asynchronous removal
            self.retired_ports.append(self.sound)
            self.sound = None
            self.relink_all()

    def set_muted(self, on: bool) -> None:
        if self.muted == on:
            return
        self.muted = on
        for rec in self.calls.values():
            if rec.active:
                if on:
                    self.unlink_source(rec)
                self.link_media(rec)      # relinks the source and the SIPREC fork (or not)
        self.emit("mute", muted=on)

    def prepare_recording(self, rec: CallRecord) -> None:
        """A lone call whose answer will start a recording gets its SIPREC leg while it rings
        (SiprecClient.standby). Only a lone call: a waiting, consulting or conferenced call
        leaves pjsua's 4 calls per process to the calls themselves and takes the ordinary way."""
        if self.siprec is None or self.edge is None or self.stopping:
            return
        settings = self.edge.records_on_answer(rec.key)
        target = settings and (settings.recorder or self.recorder_target)
        if not target or any(r.active for r in self.calls.values() if r is not rec):
            return
        self.siprec.standby(rec, settings, target)

    def recorder(self, key: str, action, settings: EffectiveSettings) -> bool:
        """A recorder action of the policy: run it over SIPREC when a recorder is configured
        (the provider's own target, else the embedded recorder). False = no recorder."""
        target = settings.recorder or self.recorder_target
        rec = self.calls.get(key)
        if self.siprec is None or target is None or rec is None:
            return False
        if action.op == "start":
            self.siprec.start(rec, action.recording, settings, target, action.detail)
        else:
            self.siprec.update(key, action.recording, action.op, action.detail)
        return True

    def play(self, key: str, play) -> None:
        """An announcement or tone to parties of the call (audio: phone/announcements.py)."""
        if self.announcer is not None:
            self.announcer.play(key, play)

    announcer = None
    muted = False       # the user's microphone is muted (commands.cmd_mute)
    waiting = None      # phone/call_waiting.CallWaiting for users' agents

    def end_call(self, key: str, reason: str) -> None:
        """The network ends a call (failureBehavior END_CALL_WITH_ANNOUNCEMENT)."""
        rec = self.calls.get(key)
        if rec is not None and rec.active:
            rec.ended_by_network = reason
            self.hangup_record(rec)


def yield_to_the_network(config_nice: int) -> None:
    """Run below the recorder and the app when the app says so (a load-sized org: nice 19) or
    $MPPSIM_AGENT_NICE does (0-19, it wins).

    The agents are the load; the recorder and the app stand for the service and the tester. When
    many calls start at once every agent is busy at the same moment, and at equal priority the
    recorder got 1/N of the CPU: with 100 agents its SIPREC answers took 0.4 s (docs/decisions.md).
    A lower priority costs an agent nothing while the CPU is not saturated."""
    step = int(config_nice or 0)
    raw = os.environ.get("MPPSIM_AGENT_NICE")
    if raw is not None:
        try:
            step = int(raw)
        except ValueError:
            print(f"MPPSIM_AGENT_NICE: {raw!r} is not an integer; allowed: 0-19. Using {step}",
                  file=sys.stderr)
    if step > 0:
        try:
            os.nice(min(step, 19))
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mppsim-agent", description=__doc__)
    parser.add_argument("--config", required=True, help="agent JSON config written by the app")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    agent = Agent(config)

    def on_term(_sig, _frame):
        agent.stopping = True
        agent.post(("noop", None, None))

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    parent = os.getppid()

    def watch_parent():
        os_thread.set_name("parent-watch")
        # The agent also ends when its control channel closes; this covers a main loop that
        # cannot notice (the app died and we were re-parented): ask nicely, then go.
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                on_term(None, None)
                time.sleep(3.0)
                flush_logs()
                os._exit(3)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    yield_to_the_network(config.get("nice", 0))   # before pjsua starts its threads: they inherit it
    try:
        agent.start()
        profile_dir = os.environ.get("MPPSIM_AGENT_PROFILE")   # cProfile dumps, for tuning
        if profile_dir:
            import cProfile
            profiler = cProfile.Profile(time.thread_time)   # CPU of this thread, not wall time
            try:
                profiler.runcall(agent.run)
            finally:
                profiler.dump_stats(str(Path(profile_dir) / f"{agent.name}.prof"))
        else:
            agent.run()
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        flush_logs()
        os._exit(1)
    agent.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
