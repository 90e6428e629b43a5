"""Cost of the HTTP APIs (issue 12): each figure beside its in-process baseline from the same run.
Prints figures; asserts nothing.

    .venv/bin/python bench/http_api.py [--org examples/demo-org.yaml] [--n 200]

- status:  GET /mppsim/v1/status (no agent round trip)       vs  nothing (pure HTTP overhead)
- device:  GET /mppsim/v1/devices/alice                     vs  device_state(sim, "alice") in-process
- listen:  POST /mppsim/v1/devices/bob/listen (agent trip)  vs  sim.listen("bob") in-process
- event:   an agent event's arrival over SSE                 vs  the Simulator's own subscriber
- server CPU while idle with one SSE client connected
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from mppsim.app.device_view import device_state  # noqa: E402
from mppsim.app.http_server import ApiServer  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    """(median, p95) in ms."""
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t0) * 1000)
    xs.sort()
    return statistics.median(xs), xs[int(len(xs) * 0.95) - 1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--org", default=str(ROOT / "examples" / "demo-org.yaml"))
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    with Simulator(args.org, front_door_port=None) as sim:
        server = ApiServer(sim).start()
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {server.token}"
        base = f"{server.url}/mppsim/v1"
        sim.play("alice", tone=1000)
        sim.dial("alice", "1002")
        sim.wait_for("bob", "ringing")
        sim.answer("bob")
        sim.wait_for("alice", "connected")
        time.sleep(1.0)
        rows = [
            ("GET status (HTTP only)", timed(lambda: http.get(f"{base}/status"), args.n), None),
            ("GET device state", timed(lambda: http.get(f"{base}/devices/alice"), args.n),
             timed(lambda: device_state(sim, "alice"), args.n)),
            ("POST listen 0.2 s (agent trip)", timed(lambda: http.post(f"{base}/devices/bob/listen",
                                                                        json={"seconds": 0.2}), args.n // 4),
             timed(lambda: sim.listen("bob", seconds=0.2), args.n // 4)),
        ]
        print(f"{'':34} {'HTTP median/p95 ms':>20} {'in-process median/p95 ms':>26}")
        for name, h, base_t in rows:
            b = f"{base_t[0]:8.2f} / {base_t[1]:6.2f}" if base_t else f"{'-':>17}"
            print(f"{name:34} {h[0]:9.2f} / {h[1]:7.2f} {b:>26}")

        # event delivery: SSE client vs an in-process subscriber, for the same events
        arrivals: dict[str, list[float]] = {"sse": [], "local": []}
        sim.subscribe(lambda ev: ev.get("event") == "call" and arrivals["local"].append(time.perf_counter()))
        stop = threading.Event()

        def reader():
            with http.get(f"{base}/events", params={"kinds": "call"}, stream=True, timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith(b"event: call"):
                        arrivals["sse"].append(time.perf_counter())
                    if stop.is_set():
                        return
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        time.sleep(0.5)
        pid = os.getpid()
        cpu0, w0 = time.process_time(), time.monotonic()
        time.sleep(3.0)
        idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - w0) * 100
        for _ in range(5):
            sim.hangup("alice")
            sim.wait_for("bob", "ended")
            sim.dial("alice", "1002")
            sim.wait_for("bob", "ringing")
            sim.answer("bob")
            sim.wait_for("alice", "connected")
        time.sleep(0.5)
        stop.set()
        sim.hangup("alice")
        n = min(len(arrivals["sse"]), len(arrivals["local"]))
        lags = sorted((s - l) * 1000 for s, l in zip(arrivals["sse"][:n], arrivals["local"][:n]))
        if lags:
            print(f"SSE event lag behind in-process subscriber: median {statistics.median(lags):.2f} ms, "
                  f"max {lags[-1]:.2f} ms over {n} call events")
        print(f"this process (simulator + HTTP server + 1 idle SSE client) CPU while idle: {idle_cpu:.1f} % "
              f"of one core (pid {pid})")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
