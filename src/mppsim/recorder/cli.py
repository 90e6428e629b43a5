"""`mppsim-recorder`: mppsim's SIPREC recorder, usable on its own to record any SRC.

    mppsim-recorder --listen 127.0.0.1:5070 --store ./recordings [--tls] [--rtp-timeout 30]
    mppsim-recorder --listen 127.0.0.1:0 --store DIR      # a free port, reported on the READY line
    mppsim-recorder --stats --store DIR                    # counters of the recorders on DIR
    mppsim-recorder --engine pjsua --workers 2 ...         # the old pjsua2 worker pool (benchmarks)

One asyncio process (recorder/srs.py) serves every session: SIP over UDP and TCP on the listen
port (and TLS on another free port with --tls, self-signed certificate made at start), RTP on
free ports. When it is listening it prints one line

    READY {"engine": "asyncio", "pid": ..., "sip": "HOST:PORT", "udp": ..., "tcp": ..., "tls": ..., "target": ...}

so whoever started it learns the port (never guess it). At start (and every 24 h) recordings
cut off by a crash are repaired and retention per provider tier is applied (R-PRV-2, R-PRV-3);
--now overrides the clock for tests. SIGTERM ends the live sessions (stored, ended_by
`shutdown`) and exits.

`--engine pjsua` runs the previous recorder (recorder/srs_pjsua.py): worker *i* on PORT + 50*i,
4 sessions each, SIP messages of at most 4000 bytes. It stays for side-by-side benchmarks only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from mppsim.recorder.store import Store
from mppsim import IMPORT_ROOT

PORT_STRIDE = 50     # pjsua engine: a worker's SIP port, then its RTP range (+10 .. +49)
RETENTION_EVERY = 24 * 3600


def housekeeping(store: Store, now: datetime) -> None:
    for rid in store.repair_interrupted():
        print(f"mppsim-recorder: repaired interrupted recording {rid} (marked truncated)", flush=True)
    for rid in store.apply_retention(now):
        print(f"mppsim-recorder: deleted {rid}: retention expired", flush=True)


def ready(info: dict) -> None:
    print(f"mppsim-recorder: listening on {info['sip']} (udp+tcp"
          f"{', tls ' + info['tls'] if info.get('tls') else ''}), store {info['store']}", flush=True)
    if info.get("tls") and info.get("store"):
        # what an SRC checks this recorder's certificate against (an org's network.tls_ca)
        info["tls_cert"] = str(Path(info["store"]) / "tls" / "recorder-cert.pem")
        info["tls_target"] = f"sip:srs@{info['tls']};transport=tls"
        print(f"mppsim-recorder: TLS certificate (self-signed, for {info['tls'].rsplit(':', 1)[0]}): "
              f"{info['tls_cert']}; SRCs trust it as their CA file, e.g. the org's network.tls_ca", flush=True)
    print("READY " + json.dumps(info), flush=True)


def stats(store_dir: Path) -> int:
    """Print the status of every recorder process writing to this store (one JSON per line)."""
    folder = store_dir / "status"
    found = 0
    for path in sorted(folder.glob("recorder-*.json")) if folder.is_dir() else []:
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        alive = _alive(st.get("pid", 0))
        st["running"] = alive
        print(json.dumps(st))
        found += 1
    if not found:
        print(f"mppsim-recorder: no recorder status in {folder}", file=sys.stderr)
        return 1
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError, OSError):
        return False


def watch_parent(on_gone) -> None:
    """An app that crashed cannot stop us: notice it (we get re-parented) and stop."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                on_gone()
                return
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def run_asyncio(args, host: str, port: int, now: datetime) -> int:
    from mppsim.recorder.srs import Recorder
    store = Store(Path(args.store))
    housekeeping(store, now)
    rec = Recorder(host, port, Path(args.store), name="w0", rtp_timeout=args.rtp_timeout,
                   max_sessions=args.max_sessions, tls=args.tls, status_every=args.status_every,
                   min_se=args.min_se)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if args.exit_with_parent:
            watch_parent(lambda: loop.call_soon_threadsafe(stop.set))
        ready(await rec.start())

        async def retention():
            while True:
                await asyncio.sleep(RETENTION_EVERY)
                await loop.run_in_executor(None, store.apply_retention, datetime.now(timezone.utc))
        task = asyncio.ensure_future(retention())
        await stop.wait()
        task.cancel()
        await rec.stop()
    try:       # libuv's loop: about half the per-packet cost of asyncio's own (docs/decisions.md)
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    profile = os.environ.get("MPPSIM_RECORDER_PROFILE")     # a cProfile dump, for tuning
    if profile:
        import cProfile
        cProfile.runctx("run(main())", globals(), {"run": run, "main": main}, profile)
    else:
        run(main())
    print("mppsim-recorder: stopped", flush=True)
    return 0


def run_pjsua(args, host: str, port: int, now: datetime) -> int:
    store = Store(Path(args.store))
    housekeeping(store, now)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
    if port == 0:
        from mppsim.app.ports import PortPlan
        port = PortPlan().single()          # the pjsua workers need a known port range
    procs, workers, ups = [], [], []

    def spawn(cmd) -> subprocess.Popen:
        """A worker whose output we pass on, noting when it listens (READY waits for all)."""
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        up = threading.Event()

        def pump():
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                if "listening on" in line:
                    up.set()
        threading.Thread(target=pump, daemon=True).start()
        ups.append(up)
        return proc

    for i in range(args.workers):
        listen = f"{host}:{port + i * PORT_STRIDE}"
        cmd = [sys.executable, "-m", "mppsim.recorder.srs_pjsua", "--listen", listen, "--store", args.store,
               "--name", f"w{i}"] + (["--exit-with-parent"] if args.exit_with_parent else [])
        procs.append(spawn(cmd))
        workers.append({"name": f"w{i}", "sip": listen})
        print(f"mppsim-recorder: worker w{i} on {listen} (sip:srs@{listen};transport=tcp)", flush=True)
    for up in ups[:args.workers]:
        up.wait(30)
    print("READY " + json.dumps({"engine": "pjsua", "pid": os.getpid(), "sip": workers[0]["sip"],
                                 "udp": workers[0]["sip"], "tcp": workers[0]["sip"], "tls": None,
                                 "store": str(Path(args.store).resolve()), "workers": workers,
                                 "target": f"sip:srs@{workers[0]['sip']};transport=tcp"}), flush=True)
    stopping = False

    def on_term(_sig=None, _frame=None):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if args.exit_with_parent:
        watch_parent(on_term)
    last = time.monotonic()
    while not stopping:
        time.sleep(0.5)
        for i, p in enumerate(procs):
            if p.poll() is not None and not stopping:
                print(f"mppsim-recorder: worker w{i} exited ({p.returncode}); restarting", flush=True)
                housekeeping(store, datetime.now(timezone.utc))
                procs[i] = spawn(p.args)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mppsim-recorder", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:5070",
                    help="HOST:PORT for SIP over UDP and TCP; port 0 = a free one (see READY)")
    ap.add_argument("--store", required=True, help="folder for index.sqlite and the recordings")
    ap.add_argument("--engine", default="asyncio", choices=("asyncio", "pjsua"),
                    help="asyncio (default): one process for all sessions; pjsua: the old worker pool")
    ap.add_argument("--workers", type=int, default=1,
                    help="pjsua engine only: worker processes, 4 sessions each")
    ap.add_argument("--tls", action="store_true",
                    help="also SIP over TLS on a free port, with a self-signed certificate made now")
    ap.add_argument("--rtp-timeout", type=float, default=30.0,
                    help="end a session after this many seconds without RTP and without SIP "
                         "(stored with ended_by 'timeout'); 0 = never")
    ap.add_argument("--max-sessions", type=int, default=1000, help="sessions at once (1-10000)")
    ap.add_argument("--min-se", type=int, default=90,
                    help="RFC 4028 Min-SE: shortest session interval accepted (s, 1-86400)")
    ap.add_argument("--status-every", type=float, default=0.0,
                    help="print a status line every N seconds (0 = never)")
    ap.add_argument("--stats", action="store_true",
                    help="print the counters of the recorders running on --store and exit")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="stop when the process that started us dies (the app uses this)")
    ap.add_argument("--now", help="ISO time to use as 'now' for retention (tests)")
    ap.add_argument("--rtp-ports", metavar="LOW-HIGH",
                    help="UDP ports for the recorded streams (a firewall opens these); default 20000-60000")
    args = ap.parse_args(argv)
    if args.rtp_ports:
        from mppsim.recorder.rtp import ports as rtp_ports
        try:
            low, high = (int(x) for x in args.rtp_ports.split("-", 1))
            if not 1024 <= low < high - 8 <= 65535:
                raise ValueError
        except ValueError:
            ap.error(f"--rtp-ports: {args.rtp_ports!r} is not LOW-HIGH within 1024-65535")
        rtp_ports.RTP_LOW, rtp_ports.RTP_HIGH = low, high
    if args.stats:
        return stats(Path(args.store))
    host, _, port_text = args.listen.rpartition(":")
    try:
        port = int(port_text)
        if not host or not 0 <= port <= 65535:
            raise ValueError(f"{args.listen!r} is not HOST:PORT with PORT 0-65535")
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(timezone.utc)
    except ValueError as exc:
        ap.error(f"--listen / --now: {exc}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    if not 1 <= args.workers <= 64:
        ap.error("--workers: allowed 1-64")
    if args.engine == "asyncio" and args.workers != 1:
        ap.error("--workers: the asyncio engine is one process for every session; "
                 "worker processes exist only with --engine pjsua")
    if args.engine == "pjsua" and args.tls:
        ap.error("--tls: only the asyncio engine has TLS")
    if not 1 <= args.max_sessions <= 10000:
        ap.error("--max-sessions: allowed 1-10000")
    if not 1 <= args.min_se <= 86400:
        ap.error("--min-se: allowed 1-86400 seconds")
    if args.rtp_timeout < 0:
        ap.error("--rtp-timeout: allowed 0 (never) or more seconds")
    if args.engine == "pjsua":
        return run_pjsua(args, host, port, now)
    return run_asyncio(args, host, port, now)


if __name__ == "__main__":
    sys.exit(main())
