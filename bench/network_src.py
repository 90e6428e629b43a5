"""Cost of the network SRC (phone/network_src.py, issue 11) inside an agent process. Prints
figures beside a baseline from the same run; asserts nothing.

  - memory: an agent-like process (pjsua2 imported) before and after starting the network SRC,
    and with sessions open
  - CPU: idle with the network SRC running vs without; CPU per recording session set up + ended
  - answer latency the network SRC adds to a SIPREC set-up (its own time between the agent's
    INVITE and the 200 it relays back, the SRS's time excluded), and the agent leg's INVITE -> 200
    beside the SRS leg's

The SRS is SIPp (tests/data/sipp/srs-uas.xml). RTP is not touched by the network SRC at all (it
flows from pjmedia to the SRS), so its media cost is zero by construction.

    .venv/bin/python bench/network_src.py [--sessions 20] [--idle 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

CHILD = r"""
import json, os, resource, sys, threading, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
TICKS = os.sysconf("SC_CLK_TCK")
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
def cpu():
    t = os.times(); return t.user + t.system
import pjsua2  # an agent has it loaded anyway
out = {"rss_base": rss()}
mode, idle, uri, n = sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
if mode == "baseline":
    c0 = cpu(); time.sleep(idle); out["idle_cpu"] = (cpu() - c0) / idle
    print(json.dumps(out)); sys.exit()
from mppsim.phone.network_src import NetworkSrc, Spec
from mppsim.siprec.webex import build, new_recording
from sipp_srs import AGENT_SDP, AgentLeg
out["rss_imported"] = rss()
src = NetworkSrc(); src.start()
out["rss_started"] = rss(); out["threads"] = threading.active_count()
c0 = cpu(); time.sleep(idle); out["idle_cpu"] = (cpu() - c0) / idle
rec = new_recording(user_aor="sip:1001@127.0.0.1", other_aors=["sip:1002@127.0.0.1"], call_id="bench",
                    platform=("WBVDW123456", "WBVDW123456L12345", "u@x.example"), outgoing=True,
                    calling="sip:+15550001001@127.0.0.1", called="sip:1002@127.0.0.1;user=phone", mode="Always")
doc = build(rec)
totals, legs, peak = [], [], 0.0
c0 = cpu()
for i in range(n):
    src.open(f"b{i}", Spec("webex", uri, '"U"<sip:+15550001001@127.0.0.1;user=phone>', metadata=doc))
    leg = AgentLeg(src, f"b{i}")
    t = time.monotonic()
    assert leg.request("INVITE", 1, AGENT_SDP.format(p1=41000 + 4 * i, p2=41002 + 4 * i)).code == 200
    totals.append((time.monotonic() - t) * 1000)
    leg.request("ACK", 1)
    peak = max(peak, rss())
    leg.request("BYE", 2)
    leg.sock.close()
out["cpu_per_session_ms"] = (cpu() - c0) / n * 1000
out["rss_peak"] = peak
out["agent_leg_ms"] = totals
out["overhead_ms"] = src.overhead_ms
src.stop()
print(json.dumps(out))
"""


def child(mode: str, idle: float, uri: str = "", n: int = 0) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode, str(idle), uri, str(n)],
                         capture_output=True, text=True, timeout=120)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--idle", type=float, default=5.0)
    args = ap.parse_args()
    from sipp_srs import SippSrs
    base = child("baseline", args.idle)
    with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
        srs = SippSrs(Path(tmp), calls=args.sessions).start()
        try:
            run = child("src", args.idle, srs.uri, args.sessions)
        finally:
            srs.stop()
    print(f"RSS of a process with pjsua2 loaded: {base['rss_base']:.1f} MiB baseline; "
          f"+{run['rss_imported'] - run['rss_base']:.1f} MiB importing the network SRC and its modules "
          f"(xml, hashlib, the test helpers; an agent imports most of them anyway), +{run['rss_started'] - run['rss_imported']:.1f} "
          f"MiB starting it ({run['threads']} threads), +{run['rss_peak'] - run['rss_started']:.1f} MiB more "
          f"at peak over {args.sessions} sessions; bench/startup.py gives a whole agent's RSS")
    print(f"idle CPU: {base['idle_cpu'] * 100:.2f} % of a core baseline, "
          f"{run['idle_cpu'] * 100:.2f} % with the network SRC")
    print(f"CPU per recording session (INVITE/200/ACK/BYE on both legs, webex metadata): "
          f"{run['cpu_per_session_ms']:.2f} ms")
    ov = sorted(run["overhead_ms"])
    legs = sorted(run["agent_leg_ms"])
    print(f"answer latency added by the network SRC: median {statistics.median(ov):.2f} ms, "
          f"max {ov[-1]:.2f} ms; agent leg INVITE -> 200 (SRS included): median "
          f"{statistics.median(legs):.2f} ms over {len(legs)} sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
