"""Churn: RATE recorded calls started and ended per second across the org for SECONDS
(issue 10: 20/s for 60 s), then what the agents hold before and after. Prints; asserts nothing
(tests/test_scale.py runs a short version with assertions).

    .venv/bin/python bench/churn.py [--rate 20] [--seconds 60] [--pairs 30] [--hold 0.5]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mppsim.app.load import LoadConfig, LoadRunner, load_org, org_resources  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--pairs", type=int, default=40, help="users = PSTN parties = calls at once, at most")
    ap.add_argument("--hold", type=float, default=0.5)
    args = ap.parse_args()
    org = load_org(args.pairs, args.pairs)
    sim = Simulator(org, front_door_port=None)
    t0 = time.monotonic()
    sim.start()
    print(f"{len(sim.orch.agents)} agents ready in {time.monotonic() - t0:.1f} s "
          f"(load average {os.getloadavg()[0]:.1f}); recorder: recorder/srs.py of this branch")
    try:
        users, pstn = [u.id for u in org.users], [p.number for p in org.pstn]
        for who in users + pstn:
            sim.set_auto_answer(who, 0.0)
        LoadRunner(sim, LoadConfig(args.pairs, args.pairs, 2.0, 0.3), users, pstn).run()   # warm-up: every pair
        time.sleep(4)
        before = org_resources(sim)
        report = LoadRunner(sim, LoadConfig(args.pairs, args.rate, args.seconds, args.hold), users, pstn).run()
        time.sleep(4)
        after = org_resources(sim)
        c = report["calls"]
        print(f"churn {args.rate:g}/s for {args.seconds:g} s, hold {args.hold:g} s: offered {c['offered']}, "
              f"answered {c['answered']}, failed {c['failed']} {c['failures'] or ''}; "
              f"recordings {report['recordings']['started']} started, {report['recordings']['failed']} failed, "
              f"store {report['recordings']['store']}; agents down: {report['agents_down'] or 'none'}")
        print(f"SIPREC answer ms {report['siprec_answer_ms']}; CPU cores {report['cpu_cores']}")
        print(f"\n{'resource (all agents)':<22}{'before':>12}{'after':>12}")
        for key in before:
            print(f"{key:<22}{before[key]:>12}{after.get(key, 0):>12}")
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
