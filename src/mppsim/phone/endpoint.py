"""The pjsua2 endpoint of one agent process: library set-up, transports, lines (accounts).

Facts this relies on are in ../shared/DESIGN.md: one endpoint per process, at most 4 calls,
8 accounts and 8 transports; 8 kHz + PCMU keeps the conference bridge cheap; the null audio
device needs sndAutoCloseTime = -1 so the media clock keeps running.
"""
from __future__ import annotations

import atexit
import ctypes
import os
from dataclasses import dataclass
from typing import Callable

import pjsua2 as pj

from . import os_thread

CLOCK_RATE = 8000
LOOPBACK = "127.0.0.1"
# The address this process binds and writes into SIP and SDP (issue 21: `network.address` or
# `--address`; one agent = one process, so a module setting, made before any transport exists)
ADDRESS = LOOPBACK


def set_address(address: str | None) -> None:
    global ADDRESS
    ADDRESS = address or LOOPBACK
MAX_LINES = 4  # 2 transports (UDP + TCP) per line, 8 transports per process
RTP_PORT_RANGE = 40  # RTP+RTCP pairs: room for a call, its consult call and their recordings
KEEP_CODECS = ("PCMU/8000", "PCMA/8000", "telephone-event/8000")


@dataclass
class LineConfig:
    id: str           # line id: the user id for the primary line, the virtual line id otherwise
    extension: str    # SIP user part: extension, or E.164 number for a PSTN party
    display: str
    sip_port: int
    rtp_port: int

    @property
    def uri(self) -> str:
        return f"sip:{self.extension}@{ADDRESS}:{self.sip_port}"


def create_endpoint(log_file: str | None, log_level: int = 4, own_poller: bool = False,
                    rtp_thread: bool = False) -> pj.Endpoint:
    """own_poller=True (agents): pjsua starts no worker threads and SIP and RTP share one
    ioqueue; the caller runs `poll_events` on a thread of its own. pjsua's worker polls every
    10 ms and the media endpoint's own ioqueue needs a second polling thread: together ~0.3 %
    of a core per idle process. Our poller blocks until I/O or pjsip's next timer (at most
    POLL_MS; POLL_MS_SIP_ONLY with rtp_thread).

    rtp_thread=True (load runs, issue 22): RTP goes to the media endpoint's own ioqueue, read by
    pjmedia's C thread (`media`). In a call that is cheaper than our Python poller waking for
    every packet (~0.1 cores less at 100 recorded calls on 2 cores), but that thread polls every
    10 ms: +0.09 % of a core per idle agent (docs/decisions.md)."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0 if own_poller else 1   # pjsua's worker blocks on I/O; callbacks run there
    if own_poller:
        cfg.medConfig.hasIoqueue = rtp_thread   # else RTP in the SIP ioqueue: one poller for both
        cfg.medConfig.threadCnt = 1 if rtp_thread else 0
        cfg.medConfig.maxMediaPorts = 64   # calls + SIPREC streams + captures + players
    cfg.uaConfig.maxCalls = 4
    cfg.uaConfig.userAgent = "mppsim-agent"
    cfg.medConfig.clockRate = CLOCK_RATE
    cfg.medConfig.sndClockRate = CLOCK_RATE
    cfg.medConfig.channelCount = 1
    # The bridge's resampler (only ports not at 8 kHz use it: tones above 3200 Hz from a 16 kHz
    # generator, a user's WAV file at another rate). pjsua's default quality picks the large
    # filter, which cuts 3800 Hz by 25 dB; 3-4 pick the small one: 3800 Hz 6 dB down, 3455 Hz 3 dB
    cfg.medConfig.quality = 4
    cfg.medConfig.noVad = True       # keep sending silence: analysis needs a steady stream
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.sndAutoCloseTime = -1
    if own_poller:
        # The (null) sound device is the bridge's clock: 50 wake-ups a second. An agent opens
        # it with its first link and closes it as soon as its last one goes (0: at pjsua's next
        # timer poll); every live call keeps a link (call -> capture, silence -> capture), so an
        # idle agent does not tick and a call never runs without a clock.
        cfg.medConfig.sndAutoCloseTime = 0
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.level = log_level if log_file else 0
    cfg.logConfig.msgLogging = bool(log_file)
    if log_file:
        cfg.logConfig.filename = log_file
    ep.libInit(cfg)
    if log_file:
        line_buffer_log(log_file)
        atexit.register(flush_logs)
    ep.audDevManager().setNullDev()
    for info in ep.codecEnum2():
        ep.codecSetPriority(info.codecId, 200 if info.codecId in KEEP_CODECS else 0)
    ep.codecSetPriority("PCMU/8000", 255)
    ep.libStart()
    return ep


_libc = ctypes.CDLL(None)
_libc.fileno.argtypes = [ctypes.c_void_p]
_libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
_IOLBF = 1
_FILE_CHAIN = 104     # glibc x86-64/aarch64 struct _IO_FILE: offset of _chain (the open-streams list)


def flush_logs() -> None:
    """Flush every C stdio stream of the process (pjsua's log file among them): before os._exit,
    which skips the C library's own flush at exit."""
    _libc.fflush(None)


def line_buffer_log(path: str) -> bool:
    """Make pjsua's log file line-buffered, so every SIP message reaches it as it is logged.
    pjlib writes it with C stdio (fopen/fwrite, a 4096-byte buffer) and has no flush call: a log
    read during a run, or left by os._exit, stopped at a 4096-byte boundary. The stream is found
    in glibc's list of open streams by its descriptor. A periodic fflush(NULL) was tried first: it
    also flushed the agents' capture WAVs mid-block and made `listen` answer ~0.2 s later.
    Returns False where this cannot be done (not glibc): the log is then whole only at exit."""
    try:
        target = os.path.realpath(path)
        fp = ctypes.c_void_p.in_dll(_libc, "_IO_list_all").value
        for _ in range(4096):
            if not fp:
                break
            fd = _libc.fileno(fp)
            if fd >= 0 and os.path.realpath(f"/proc/self/fd/{fd}") == target:
                return _libc.setvbuf(fp, None, _IOLBF, 0) == 0
            fp = ctypes.c_void_p.from_address(fp + _FILE_CHAIN).value
    except (ValueError, OSError, AttributeError):
        pass
    return False


# pjsip wakes at its next timer anyway: the bound only matters for a timer set from another
# thread, and the agent's main loop wakes this thread after every pass that may have set one
# (wake_poller). With rtp_thread (load runs) this thread does SIP only: 100 ms cost ~0.13 of a
# core at 200 agents in calls (10 Python wake-ups a second each), so it waits up to 1 s. Where it
# also reads RTP (an app's org) it keeps 100 ms while a call is up: with 1 s a 20 ms gap in what a
# party heard came 2 times in ~27 runs of tests/test_calls.py::test_a_high_tone_has_no_gap, never
# with 100 ms. With no call there is no RTP to read: 1 s, an idle agent's ~10 wake-ups a second
# down to ~1 (a dial from the main thread wakes it at once, and the next wait is 100 ms).
POLL_MS = 100
POLL_MS_SIP_ONLY = 1000


def poll_bound_ms(rtp_thread: bool, in_call: bool = True) -> int:
    """How long the agent's poller may wait: POLL_MS only where it reads a call's RTP itself."""
    return POLL_MS if in_call and not rtp_thread else POLL_MS_SIP_ONLY


def poll_events(ep: pj.Endpoint, running, between=None,
                poll_ms: int | Callable[[], int] = POLL_MS) -> None:
    """The agent's pjsua thread: SIP (and RTP, without rtp_thread) I/O and pjsip timers;
    callbacks run here. `between()` runs after each poll, on this thread (phone/reaper.py).
    `poll_ms`: the wait's bound, or a function giving it before each wait."""
    ep.libRegisterThread("pjsua-poll")
    os_thread.set_name("pjsua-poll")
    bound = poll_ms if callable(poll_ms) else (lambda: poll_ms)
    while running():
        ep.libHandleEvents(bound())
        if between is not None:
            between()


def _transport(ep: pj.Endpoint, kind: int, port: int) -> int:
    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = ADDRESS
    tcfg.publicAddress = ADDRESS
    return ep.transportCreate(kind, tcfg)


def create_transports(ep: pj.Endpoint, port: int) -> tuple[int, int]:
    """A UDP and a TCP transport on the same port of ADDRESS (127.0.0.1 unless set)."""
    return _transport(ep, pj.PJSIP_TRANSPORT_UDP, port), _transport(ep, pj.PJSIP_TRANSPORT_TCP, port)


def bind_transports(ep: pj.Endpoint, preferred: int = 0, tries: int = 20) -> int:
    """A UDP and a TCP transport on one port the kernel gives us (or `preferred`, e.g. the
    port of an agent being restarted, when it is still free): no port is planned by one
    process and bound by another, so nothing can take it in between. Returns the port."""
    if preferred:
        try:
            udp = _transport(ep, pj.PJSIP_TRANSPORT_UDP, preferred)
        except pj.Error:
            pass
        else:
            try:
                _transport(ep, pj.PJSIP_TRANSPORT_TCP, preferred)
                return preferred
            except pj.Error:
                ep.transportClose(udp)
    for _ in range(tries):
        udp = _transport(ep, pj.PJSIP_TRANSPORT_UDP, 0)
        port = ep.transportGetInfo(udp).localName.rsplit(":", 1)[1]
        try:
            _transport(ep, pj.PJSIP_TRANSPORT_TCP, int(port))
            return int(port)
        except pj.Error:            # its TCP twin is taken (an outgoing connection): again
            ep.transportClose(udp)
    raise RuntimeError(f"no loopback port free for both UDP and TCP after {tries} tries")


def loopback_account(id_uri: str, contact: str, rtp_port: int, rtp_range: int,
                     host: str | None = None) -> pj.AccountConfig:
    """An account with no registration, a forced Contact (params after the '>' included:
    contactParams is ignored once Contact is forced), no NAT rewriting, no ICE, and its own
    RTP port range on `host`."""
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    acfg.regConfig.registerOnAdd = False
    acfg.sipConfig.contactForced = contact
    acfg.natConfig.iceEnabled = False
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sipOutboundUse = 0
    media = acfg.mediaConfig.transportConfig
    host = host or ADDRESS
    media.port = rtp_port
    media.portRange = rtp_range
    media.boundAddress = host or ADDRESS
    media.publicAddress = host or ADDRESS
    return acfg


def account_config(line: LineConfig) -> pj.AccountConfig:
    """A line: requests leave on UDP, or TCP when pjsip needs it (large bodies); the Contact
    names the line's own port. Half the RTP range for its calls, half for their recordings."""
    display = line.display.replace('"', "'")
    return loopback_account(f'"{display}" <{line.uri}>', f"<{line.uri}>", line.rtp_port, RTP_PORT_RANGE // 2)
