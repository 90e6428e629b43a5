"""The pjsua2 endpoint of one agent process: library set-up, transports, lines (accounts).

Facts this relies on are in ../shared/DESIGN.md: one endpoint per process, at most 4 calls,
8 accounts and 8 transports; 8 kHz + PCMU keeps the conference bridge cheap; the null audio
device needs sndAutoCloseTime = -1 so the media clock keeps running.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass

import pjsua2 as pj

CLOCK_RATE = 8000
LOOPBACK = "127.0.0.1"
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
        return f"sip:{self.extension}@{LOOPBACK}:{self.sip_port}"


def create_endpoint(log_file: str | None, log_level: int = 4) -> pj.Endpoint:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 1       # pjsua's worker blocks on I/O; callbacks run there
    cfg.uaConfig.maxCalls = 4
    cfg.uaConfig.userAgent = "mppsim-agent"
    cfg.medConfig.clockRate = CLOCK_RATE
    cfg.medConfig.sndClockRate = CLOCK_RATE
    cfg.medConfig.channelCount = 1
    cfg.medConfig.noVad = True       # keep sending silence: analysis needs a steady stream
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.sndAutoCloseTime = -1
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.level = log_level if log_file else 0
    cfg.logConfig.msgLogging = bool(log_file)
    if log_file:
        cfg.logConfig.filename = log_file
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    for info in ep.codecEnum2():
        ep.codecSetPriority(info.codecId, 200 if info.codecId in KEEP_CODECS else 0)
    ep.codecSetPriority("PCMU/8000", 255)
    ep.libStart()
    return ep


def create_transports(ep: pj.Endpoint, port: int) -> tuple[int, int]:
    """A UDP and a TCP transport on the same port of 127.0.0.1."""
    ids = []
    for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = LOOPBACK
        tcfg.publicAddress = LOOPBACK
        ids.append(ep.transportCreate(kind, tcfg))
    return ids[0], ids[1]


def loopback_account(id_uri: str, contact: str, rtp_port: int, rtp_range: int,
                     host: str = LOOPBACK) -> pj.AccountConfig:
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
    media.port = rtp_port
    media.portRange = rtp_range
    media.boundAddress = host
    media.publicAddress = host
    return acfg


def account_config(line: LineConfig) -> pj.AccountConfig:
    """A line: requests leave on UDP, or TCP when pjsip needs it (large bodies); the Contact
    names the line's own port. Half the RTP range for its calls, half for their recordings."""
    display = line.display.replace('"', "'")
    return loopback_account(f'"{display}" <{line.uri}>', f"<{line.uri}>", line.rtp_port, RTP_PORT_RANGE // 2)
