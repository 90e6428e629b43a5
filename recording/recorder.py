"""`mppsim-recorder`: mppsim's SIPREC recorder, usable on its own to record any SRC.

    mppsim-recorder --listen 127.0.0.1:5070 --store ./recordings [--workers 2] [--now ISO]

Worker i listens on PORT + i (UDP and TCP; its RTP ports are PORT + i*50 + 10 ...: keep the 50
ports from each worker's SIP port free). Each worker records up to 4 sessions at once; point
SRCs at different workers to record more at once, or run more recorders on other ports with
the same store. At start (and every 24 h) recordings cut off by a crash are repaired and
retention per provider tier is applied (R-PRV-2, R-PRV-3); --now overrides the clock for tests.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .store import Store

REPO_ROOT = Path(__file__).resolve().parent.parent
PORT_STRIDE = 50     # a worker's SIP port, then its RTP range (+10 .. +49)
RETENTION_EVERY = 24 * 3600


def housekeeping(store: Store, now: datetime) -> None:
    for rid in store.repair_interrupted():
        print(f"mppsim-recorder: repaired interrupted recording {rid} (marked truncated)", flush=True)
    for rid in store.apply_retention(now):
        print(f"mppsim-recorder: deleted {rid}: retention expired", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mppsim-recorder", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:5070", help="HOST:PORT of the first worker")
    ap.add_argument("--store", required=True, help="folder for index.sqlite and the recordings")
    ap.add_argument("--workers", type=int, default=1, help="worker processes, 4 sessions each")
    ap.add_argument("--now", help="ISO time to use as 'now' for retention (tests)")
    args = ap.parse_args(argv)
    host, port_text = args.listen.rsplit(":", 1)
    try:
        port = int(port_text)
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(timezone.utc)
    except ValueError as exc:
        ap.error(f"--listen / --now: {exc}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if not 1 <= args.workers <= 64:
        ap.error("--workers: allowed 1-64")
    store = Store(Path(args.store))
    housekeeping(store, now)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    procs = []
    for i in range(args.workers):
        listen = f"{host}:{port + i * PORT_STRIDE}"
        procs.append(subprocess.Popen([sys.executable, "-m", "recording.srs", "--listen", listen,
                                       "--store", args.store, "--name", f"w{i}"], env=env))
        print(f"mppsim-recorder: worker w{i} on {listen} (sip:srs@{listen};transport=tcp)", flush=True)

    stopping = False

    def on_term(_sig, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    last = time.monotonic()
    while not stopping:
        time.sleep(0.5)
        for i, p in enumerate(procs):
            if p.poll() is not None and not stopping:
                print(f"mppsim-recorder: worker w{i} exited ({p.returncode}); restarting", flush=True)
                housekeeping(store, datetime.now(timezone.utc))
                procs[i] = subprocess.Popen(p.args, env=env)
        if time.monotonic() - last > RETENTION_EVERY:
            last = time.monotonic()
            store.apply_retention(datetime.now(timezone.utc))
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
