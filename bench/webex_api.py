"""Cost of the Webex Calling API subset (issue 12): each figure beside its in-process baseline
from the same run. Prints figures; asserts nothing.

    .venv/bin/python bench/webex_api.py [--org examples/demo-org.yaml] [--n 100]

- PUT:  PUT /v1/people/{id}/features/callRecording (store change + push to the agents)
        vs  sim.settings.put_person (the same change and push, in-process)
- GET:  GET /v1/people/{id}/features/callRecording  vs  sim.settings.get_person
- SDK:  wxc-sdk read + configure (read-modify-write)  vs  the two raw HTTP requests
- list: wxc-sdk people.list(max=1): every page followed (4 requests for the demo org)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from wxc_sdk import WebexSimpleApi  # noqa: E402
from wxc_sdk.rest import RestSession  # noqa: E402

from mppsim.app.http_server import ApiServer  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402

MODES = ("Always", "Always with Pause/Resume")


def timed(fn, n: int) -> tuple[float, float]:
    xs = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        xs.append((time.perf_counter() - t0) * 1000)
    xs.sort()
    return statistics.median(xs), xs[min(n - 1, int(n * 0.95))]


def row(name: str, got: tuple[float, float], base: tuple[float, float], base_name: str) -> None:
    print(f"{name:<34} median {got[0]:7.2f} ms  p95 {got[1]:7.2f} ms   | {base_name:<30} "
          f"median {base[0]:7.2f} ms  p95 {base[1]:7.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--org", default=str(ROOT / "examples" / "demo-org.yaml"))
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as run, Simulator(args.org, run_dir=run) as sim, \
            ApiServer(sim, token="bench") as server:
        http = requests.Session()
        http.headers["Authorization"] = "Bearer bench"
        line = sim.org.users[0].id
        pid = http.get(f"{server.url}/v1/people", params={"email": sim.org.users[0].email}).json()["items"][0]["id"]
        url = f"{server.url}/v1/people/{pid}/features/callRecording"
        original = sim.call_recording(line)
        print(f"{args.n} requests each, org {args.org}, line {line}; baselines in the same process and run")
        row("HTTP PUT (store + agent push)", timed(lambda i: http.put(url, json={"record": MODES[i % 2]}), args.n),
            timed(lambda i: sim.settings.put_person(line, {"record": MODES[i % 2]}), args.n), "put_person in-process")
        row("HTTP GET", timed(lambda i: http.get(url).json(), args.n),
            timed(lambda i: sim.settings.get_person(line), args.n), "get_person in-process")
        RestSession.BASE = f"{server.url}/v1"
        api = WebexSimpleApi(tokens="bench")
        cr = api.person_settings.call_recording

        def rmw(i):
            s = cr.read(pid)
            s.record = MODES[i % 2]
            cr.configure(pid, s)

        def raw_rmw(i):
            body = http.get(url).json()
            body["record"] = MODES[i % 2]
            http.put(url, json=body)

        row("wxc-sdk read-modify-write", timed(rmw, args.n), timed(raw_rmw, args.n), "the same two raw requests")
        pages = len(sim.org.users)
        row(f"wxc-sdk people.list, {pages} pages", timed(lambda i: list(api.people.list(max=1)), args.n),
            timed(lambda i: http.get(f"{server.url}/v1/people").json(), args.n), "one raw GET /people")
        sim.settings.put_person(line, original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
