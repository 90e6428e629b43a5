"""What authenticating the control channel costs (issue 22). Prints figures; asserts nothing.

    .venv/bin/python bench/control_channel.py [--commands 2000]

For plain TCP and for TLS: the handshake's cost once per agent (the HMAC proofs; TLS adds its
own handshake), and per command the round trip of a `ping` and the CPU it takes in the app and in
the agent. The proofs are made once per connection, so plain-with-secret costs nothing per
command; TLS encrypts every line.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from mppsim.app.simulator import Simulator  # noqa: E402
from mppsim.phone import protocol  # noqa: E402
from tests.helpers import demo_org  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(tls: bool, commands: int) -> dict:
    sim = Simulator(demo_org(), recorder=False)
    sim.orch.control_tls = tls
    t0 = time.monotonic()
    sim.start()
    started = time.monotonic() - t0
    try:
        pid = sim.agent_pids()["alice"]
        for _ in range(50):                       # warm up
            sim.orch.request("alice", "ping")
        rtts = []
        app0, agent0 = time.process_time(), cpu_seconds(pid)
        for _ in range(commands):
            t = time.perf_counter()
            sim.orch.request("alice", "ping")
            rtts.append(time.perf_counter() - t)
        app_cpu = time.process_time() - app0
        agent_cpu = cpu_seconds(pid) - agent0
    finally:
        sim.stop()
    return {"start": started, "p50": statistics.median(rtts) * 1e6,
            "p99": sorted(rtts)[int(len(rtts) * 0.99)] * 1e6,
            "app": app_cpu / commands * 1e6, "agent": agent_cpu / commands * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--commands", type=int, default=2000)
    args = ap.parse_args()
    secret, n = protocol.new_secret(), 20000
    t = time.perf_counter()
    for i in range(n):
        protocol.proof(secret, "agent", "alice", "a" * 32, str(i))
    proof_us = (time.perf_counter() - t) / n * 1e6
    print(f"one HMAC-SHA256 proof: {proof_us:.1f} us (two per side per connection, none per command)")
    rows = {"plain TCP + secret": measure(False, args.commands), "TLS + secret": measure(True, args.commands)}
    print(f"\n{'channel':<20}{'demo org up':>12}{'ping p50':>11}{'ping p99':>11}{'app CPU':>10}{'agent CPU':>11}"
          "   (per command)")
    for name, r in rows.items():
        print(f"{name:<20}{r['start']:>10.2f} s{r['p50']:>8.0f} us{r['p99']:>8.0f} us{r['app']:>7.0f} us"
              f"{r['agent']:>8.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
