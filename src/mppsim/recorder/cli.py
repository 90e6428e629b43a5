"""`mppsim-recorder`: mppsim's SIPREC recorder, usable on its own to record any SRC.

    mppsim-recorder --listen 127.0.0.1:5070 --store ./recordings [--tls] [--rtp-timeout 30]
    mppsim-recorder --listen 127.0.0.1:0 --store DIR      # a free port, reported on the READY line
    mppsim-recorder --stats --store DIR                    # counters of the recorders on DIR
    mppsim-recorder --min-free 50M ...                     # refuse new sessions under 50 MB free

One asyncio process (recorder/srs.py) serves every session: SIP over UDP and TCP on the listen
port (and TLS on another free port with --tls, self-signed certificate made at start), RTP on
free ports. When it is listening it prints one line

    READY {"engine": "asyncio", "pid": ..., "sip": "HOST:PORT", "udp": ..., "tcp": ..., "tls": ..., "target": ...}

so whoever started it learns the port (never guess it). At start (and every 24 h) recordings
cut off by a crash are repaired and retention per provider tier is applied (R-PRV-2, R-PRV-3);
--now overrides the clock for tests. SIGTERM ends the live sessions (a BYE with a Reason header,
stored, ended_by `shutdown`) and exits 0.

Storage: while the store has less than --min-free bytes free (default: a minute of WAV for each
session in flight and for one more, plus 1 MiB), is read-only or gone, new sessions and OPTIONS
get 503 with Retry-After; a session whose writes fail is ended with a BYE and stored `truncated`
(docs/protocol.md, docs/store.md). --stats shows the store's state and both counters.

--workers N runs N processes behind the one port (recorder/pool.py): TCP and TLS sessions are
spread over them by the kernel (SO_REUSEPORT), UDP stays with the first; the READY line then
lists every worker's pid. One process takes about a core; more help a burst of new sessions.

The old pjsua2 worker pool (`--engine pjsua`, 4 sessions per worker process, SIP messages of at
most 4000 bytes) was removed in issue 20; its limits are in docs/scaling.md. `--engine asyncio`
is still accepted, so command lines written for both engines keep working.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from mppsim.recorder.store import Store

RETENTION_EVERY = 24 * 3600


def size(text: str) -> int:
    """Bytes from '500000', '512k', '50M' or '2G' (powers of 1024)."""
    text = text.strip()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 500000, 512k, 50M or 2G") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a size is 0 or more")
    return value


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
    from mppsim.recorder.pool import WorkerPool, ready_info
    from mppsim.recorder.srs import Recorder
    further = args.worker_name is not None          # a worker the first one started (pool.py)
    store = Store(Path(args.store))
    if not further:
        housekeeping(store, now)
    rec = Recorder(host, port, Path(args.store), name=args.worker_name or "w0",
                   rtp_timeout=args.rtp_timeout, max_sessions=args.max_sessions, tls=args.tls,
                   status_every=args.status_every, min_se=args.min_se, min_free=args.min_free,
                   shared=further or args.workers > 1, udp=not further, tls_port=args.tls_port or 0)
    pool: WorkerPool | None = None

    async def main() -> None:
        nonlocal pool
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if args.exit_with_parent:
            watch_parent(lambda: loop.call_soon_threadsafe(stop.set))
        info = await rec.start()
        if further:
            print("READY " + json.dumps(info), flush=True)      # read by the first worker
        elif args.workers > 1:
            pool = WorkerPool(args, host, rec.port, rec.tls_port, args.workers)
            try:
                pids = await loop.run_in_executor(None, pool.start)
            except RuntimeError as exc:
                print(f"mppsim-recorder: {exc}", flush=True)
                await loop.run_in_executor(None, pool.stop)
                await rec.stop()
                raise SystemExit(1) from None
            ready(ready_info(info, pids))
        else:
            ready(info)
        # What start-up made (modules, the loop, the store) lives as long as the process: out of
        # the collector's sight, a full collection in a burst of INVITEs scans only the sessions
        # (measured at 100 calls placed at once: 43 ms -> 9-13 ms; docs/decisions.md)
        gc.collect()
        gc.freeze()

        async def retention():
            if further:
                return                               # the first worker keeps the store
            while True:
                await asyncio.sleep(RETENTION_EVERY)
                await loop.run_in_executor(None, store.apply_retention, datetime.now(timezone.utc))
        task = asyncio.ensure_future(retention())
        await stop.wait()
        task.cancel()
        if pool is not None:        # the others end their sessions while this one ends its own
            ending = loop.run_in_executor(None, pool.stop)
            await rec.stop()
            await ending
        else:
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


def engine(text: str) -> str:
    """`--engine`: only asyncio is left; an old command line asking for pjsua is told why."""
    if text == "pjsua":
        raise argparse.ArgumentTypeError("allowed: asyncio (the pjsua worker pool was removed in issue 20)")
    if text != "asyncio":
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: asyncio")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mppsim-recorder", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:5070",
                    help="HOST:PORT for SIP over UDP and TCP; port 0 = a free one (see READY)")
    ap.add_argument("--store", required=True, help="folder for index.sqlite and the recordings")
    ap.add_argument("--engine", default="asyncio", type=engine,
                    help="asyncio, the only engine (the old pjsua worker pool was removed in issue 20)")
    ap.add_argument("--workers", type=int, default=1,
                    help="recorder processes behind the one SIP port (1-16): TCP and TLS sessions "
                         "are spread over them, UDP stays with the first (recorder/pool.py). "
                         "One process takes about one core; more help a burst of sessions")
    ap.add_argument("--worker-name", help=argparse.SUPPRESS)     # a further worker (pool.py)
    ap.add_argument("--tls-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tls", action="store_true",
                    help="also SIP over TLS on a free port, with a self-signed certificate made now")
    ap.add_argument("--rtp-timeout", type=float, default=30.0,
                    help="end a session after this many seconds without RTP and without SIP "
                         "(stored with ended_by 'timeout'); 0 = never")
    ap.add_argument("--max-sessions", type=int, default=1000, help="sessions at once (1-10000)")
    ap.add_argument("--min-se", type=int, default=90,
                    help="RFC 4028 Min-SE: shortest session interval accepted (s, 1-86400)")
    ap.add_argument("--min-free", type=size, default=None,
                    help="refuse new sessions (503) while the store has fewer free bytes (512k, 50M, "
                         "2G); default: a minute of WAV per session in flight and one more, + 1 MiB")
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
    from mppsim.recorder.pool import MAX_WORKERS
    if not 1 <= args.workers <= MAX_WORKERS:
        ap.error(f"--workers: allowed 1-{MAX_WORKERS}")
    if not 1 <= args.max_sessions <= 10000:
        ap.error("--max-sessions: allowed 1-10000")
    if not 1 <= args.min_se <= 86400:
        ap.error("--min-se: allowed 1-86400 seconds")
    if args.rtp_timeout < 0:
        ap.error("--rtp-timeout: allowed 0 (never) or more seconds")
    return run_asyncio(args, host, port, now)


if __name__ == "__main__":
    sys.exit(main())
