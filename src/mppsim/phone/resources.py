"""What an agent process holds, for leak checks under churn (tests, bench, `mppsim load`):
its own counts (pjsua2 Call objects, SIPREC sessions, captures closing), pjmedia's bridge
(ports, links: a link keeps the sound clock on) and the process (fds, threads, RSS)."""
from __future__ import annotations

import os
from pathlib import Path

import pjsua2 as pj


def conference(ep: pj.Endpoint) -> dict:
    try:
        ports = [m.getPortInfo() for m in ep.mediaEnumPorts2()]
    except (pj.Error, AttributeError):
        return {}
    return {"conf_ports": len(ports), "conf_links": sum(len(p.listeners) for p in ports)}


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


def _rss_kib() -> int:
    try:
        for text in Path("/proc/self/status").read_text().splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1])
    except OSError:
        pass
    return 0


def process_resources(agent) -> dict:
    siprec = agent.siprec
    return {"call_objects": len(agent.call_objects),
            "siprec_calls": len(siprec.calls) if siprec else 0,
            "siprec_sessions": len(siprec.sessions) if siprec else 0,
            "siprec_standbys": len(siprec.standbys) + len(siprec.dropped) if siprec else 0,
            "reaper_queue": len(agent.reaper.queue), "freed_calls": agent.reaper.freed,
            "captures_closing": len(agent.closing), **conference(agent.ep),
            "fds": _count("/proc/self/fd"), "threads": _count("/proc/self/task"), "rss_kib": _rss_kib()}
