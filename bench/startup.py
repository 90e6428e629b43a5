"""Start-up time of the demo org and each agent's idle CPU and memory. Prints figures; asserts nothing.

    .venv/bin/python bench/startup.py [--org examples/demo-org.yaml] [--idle 5] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mppsim.app.simulator import Simulator  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--org", default=str(ROOT / "examples" / "demo-org.yaml"))
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU sampling")
    ap.add_argument("--runs", type=int, default=3, help="start-ups to time")
    args = ap.parse_args()

    times = []
    for run in range(args.runs):
        sim = Simulator(args.org, front_door_port=0)
        t0 = time.monotonic()
        sim.start()
        total = time.monotonic() - t0
        times.append(total)
        if run < args.runs - 1:
            sim.stop()
    per_agent = {n: h.ready_at - h.started_at for n, h in sim.orch.agents.items()}
    print(f"org: {args.org}: {len(sim.orch.agents)} agents")
    print("launch -> all agents ready: " + ", ".join(f"{t:.2f} s" for t in times)
          + f" (best {min(times):.2f} s)")
    pids = sim.agent_pids()
    time.sleep(1.0)  # let start-up work settle
    before = {n: cpu_seconds(p) for n, p in pids.items()}
    time.sleep(args.idle)
    print(f"\n{'agent':<16}{'ready after':>12}{'idle CPU':>11}{'RSS':>10}")
    cpu_total = rss_total = 0.0
    for name, pid in pids.items():
        cpu = (cpu_seconds(pid) - before[name]) / args.idle * 100
        rss = rss_mib(pid)
        cpu_total += cpu
        rss_total += rss
        print(f"{name:<16}{per_agent[name]:>10.2f} s{cpu:>9.2f} %{rss:>7.1f} MiB")
    print(f"{'all agents':<16}{'':>12}{cpu_total:>9.2f} %{rss_total:>7.1f} MiB")
    print(f"(idle CPU in % of one core over {args.idle:g} s; {os.cpu_count()} cores here)")
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
