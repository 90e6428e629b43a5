"""Recorder load (issue 9, Build 5): SIPp (Debian `sip-tester`) plays Webex Calling / BroadWorks
SIPREC sessions (tests/peers/sipp/webex_broadworks.xml) with PCMU RTP on both streams against
mppsim-recorder, and prints:

  - sessions recorded / offered (recorded = stored `complete` with the tone sent on each stream
    on its channel)
  - packets lost (RTP packets SIPp sent that the recorder did not count as received; plus what
    the recorder itself counted as lost by sequence gaps), and audio gaps (20 ms frames of the
    sent tone missing from the WAVs)
  - answer time p50 / p99 (INVITE -> 200, SIPp's response-time trace, 1 ms resolution)
  - recorder CPU as a fraction of one core (from /proc of the recorder's processes, while all
    sessions are up) and peak RSS (summed over its processes)

Goal (issue 9): 200/200, 0 lost, <= 0.5 core. The old pjsua worker pool it was compared with
(`--engine pjsua`, `--old-workers`, `--skip-old`) was removed in issue 20: docs/scaling.md.

    .venv/bin/python bench/recorder_load.py                       # 200 sessions at 10/s, held 60 s
    .venv/bin/python bench/recorder_load.py --sessions 20 --hold 10   # quick
    .venv/bin/python bench/recorder_load.py --transport u1

Prints figures; asserts nothing. Needs root for SIPp's pcap play (raw sockets).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mppsim.phone.analysis import active_blocks, dominant_frequency  # noqa: E402
from mppsim.recorder.wavfile import read  # noqa: E402
from tests.peers.recorder_proc import Recorder, start_recorder  # noqa: E402
from tests.peers.rtp_pcap import PTIME, Stream  # noqa: E402
from tests.peers.sipp_runner import SIPP, command  # noqa: E402

SCENARIO = "webex_broadworks.xml"
TONES = (700, 1100)                     # label 1 (left), label 2 (right)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc sampling -------------------------------------------------------------------------------

def proc_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        # every thread's children: the recorder's further workers are started from a thread
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])          # utime, stime
    return total / CLK_TCK


def rss_kb(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    """CPU seconds and RSS of a process tree, every `every` s: [(monotonic, cpu_s, rss_kb)]."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float, int]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            pids = proc_tree(self.pid)
            self.samples.append((time.monotonic(), cpu_seconds(pids), rss_kb(pids)))
            self.stopping.wait(self.every)

    def cpu_fraction(self, start: float, end: float) -> float | None:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return None
        (t0, c0, _), (t1, c1, _) = inside[0], inside[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def peak_rss_mb(self) -> float:
        return max((s[2] for s in self.samples), default=0) / 1024


# --- the recorder under load ------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.array(values, dtype=float), q))


def sipp_answer_times(workdir: Path) -> list[float]:
    out = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[2] == "answer":
                out.append(float(parts[1]))
    return out


def sipp_counts(workdir: Path) -> tuple[int, int, int]:
    """(calls created, successful, failed): SIPp's final screen (cumulative column), else its
    last statistics line (written every second, so it may miss the last calls)."""
    screen = (workdir / "sipp.out").read_text(errors="replace") if (workdir / "sipp.out").exists() else ""
    found = {}
    for name in ("Total Calls created", "Successful call", "Failed call"):
        values = re.findall(rf"(?m)^\s*{name}\s*\|[^|\n]*\|\s*(\d+)", screen)
        if values:
            found[name] = int(values[-1])
    if len(found) == 3:
        return found["Total Calls created"], found["Successful call"], found["Failed call"]
    lines = (workdir / "stats.csv").read_text().splitlines()
    header, last = lines[0].split(";"), lines[-1].split(";")
    value = dict(zip(header, last))
    return int(value["TotalCallCreated"]), int(value["SuccessfulCall(C)"]), int(value["FailedCall(C)"])


def check_recording(row: dict, tone_seconds: float) -> tuple[bool, int]:
    """(both channels carry their tone, 20 ms frames of tone missing over both channels)."""
    try:
        rate, audio = read(row["audio_path"])
    except (OSError, ValueError):
        return False, int(2 * tone_seconds / PTIME)
    ok, missing = True, 0
    for ch, freq in enumerate(TONES):
        samples = audio[:, ch]
        active = int(active_blocks(samples, rate).sum())
        missing += max(0, int(round(tone_seconds / PTIME)) - active)
        mid = samples[len(samples) // 4: len(samples) // 4 + rate]
        f = dominant_frequency(mid, rate) if len(mid) >= 64 else None
        ok = ok and f is not None and abs(f - freq) < 0.02 * freq
    return ok, missing


def load(sessions: int, rate: float, hold: float, transport: str, workdir: Path, workers: int = 1) -> dict:
    engine = "asyncio"
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / f"store-{engine}"
    rec: Recorder = start_recorder(store, "--rtp-timeout", "30", "--workers", str(workers), timeout=60)
    targets = [rec.sip]
    per_target = [sessions // len(targets) + (1 if i < sessions % len(targets) else 0) for i in range(len(targets))]
    tone_seconds = max(1.0, hold - 0.5)       # RTP ends before the BYE
    streams = [Stream(TONES[0], tone_seconds), Stream(TONES[1], tone_seconds, ssrc=0x2000)]
    sampler = Sampler(rec.proc.pid)
    sampler.start()
    procs = []
    t_start = time.monotonic()
    try:
        for i, (target, n) in enumerate(zip(targets, per_target)):
            if n == 0:
                continue
            wd = workdir / f"sipp-{engine}-{i}"
            cmd = command(SCENARIO, target, wd, transport=transport, calls=n, rate=rate / len(targets), limit=n,
                          hold_ms=int(hold * 1000), keys={"corr": f"load-{engine}"}, streams=streams,
                          timeout=hold + sessions / rate + 60, call_id=f"load-{engine}-{i}-%u-%p@%s",
                          trace_messages=False, extra=["-trace_rtt", "-rtt_freq", "1"])
            with open(wd / "sipp.out", "w") as out:
                procs.append((wd, subprocess.Popen(cmd, cwd=wd, stdout=out, stderr=subprocess.STDOUT)))
        for _wd, p in procs:
            p.wait()
        t_end = time.monotonic()
        ramp = max(per_target) / (rate / len(targets))
        # every session is up from the end of the ramp until the first BYE (hold after the first INVITE)
        window = (t_start + ramp + 1.0, t_start + hold - 0.5)
        if window[1] - window[0] < 2:
            window = (t_start + 1.0, t_end - 0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(r["state"] == "recording" for r in rec.rows()):
            time.sleep(0.5)
    finally:
        sampler.stopping.set()
        sampler.join()
        rec.stop(30)
    rows = [r for r in rec.rows() if r["recording_call_id"].startswith(f"load-{engine}")]
    answers, created, successful, failed = [], 0, 0, 0
    for wd, _p in procs:
        answers += sipp_answer_times(wd)
        c, s, f = sipp_counts(wd)
        created, successful, failed = created + c, successful + s, failed + f
    recorded, frames_missing = 0, 0
    for r in rows:
        ok, missing = check_recording(r, tone_seconds)
        recorded += ok and r["state"] == "complete"
        frames_missing += missing
    sent_per_stream = len(streams[0].packets())
    received = lost = late = 0
    have_stats = False
    for r in rows:
        stats = r.get("stream_stats")
        stats = json.loads(stats) if isinstance(stats, str) else stats
        if stats:
            have_stats = True
            received += sum(s.get("received", 0) for s in stats)
            lost += sum(s.get("lost", 0) for s in stats)
            late += sum(s.get("late", 0) for s in stats)
    return {
        "engine": engine,
        "offered": created, "sipp ok/failed": f"{successful}/{failed}",
        "recorded": recorded,
        "not received": (2 * sent_per_stream * created - received) if have_stats else None,
        "lost (seq gaps)": lost if have_stats else None,
        "late (recorder count)": late if have_stats else None,
        "audio gaps (20 ms frames)": frames_missing,
        "answer p50 ms": percentile(answers, 50), "answer p99 ms": percentile(answers, 99),
        "cpu (cores)": sampler.cpu_fraction(*window),
        "cpu whole run (cores)": sampler.cpu_fraction(t_start, t_end),
        "peak rss MB": sampler.peak_rss_mb(),
        "window s": round(window[1] - window[0], 1),
    }


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=200, help="concurrent sessions (200)")
    ap.add_argument("--rate", type=float, default=10, help="new sessions per second (10)")
    ap.add_argument("--hold", type=float, default=60, help="seconds each session lasts (60)")
    ap.add_argument("--transport", default="t1", choices=["t1", "tn", "u1", "un"],
                    help="SIPp transport: t1 one TCP connection (default), tn one per call, u1/un UDP")
    ap.add_argument("--workers", type=int, nargs="+", default=[1],
                    help="mppsim-recorder --workers; several values: one run each, side by side (1)")
    ap.add_argument("--keep", action="store_true", help="keep the stores and SIPp logs (printed path)")
    args = ap.parse_args(argv)
    if SIPP is None:
        ap.error("sipp is not installed: scripts/setup installs the Debian package sip-tester")
    if os.geteuid() != 0:
        print("warning: SIPp's pcap play needs raw sockets (root); RTP may not be sent", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="mppsim-recorder-load-"))
    results = []
    try:
        for workers in args.workers:
            results.append(dict(workers=workers, **load(args.sessions, args.rate, args.hold,
                                                         args.transport, workdir / f"run{len(results)}-w{workers}", workers)))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nrecorder load: {args.sessions} sessions at {args.rate:g}/s held {args.hold:g} s, SIPp {args.transport}, "
          f"PCMU both streams, {os.cpu_count()} cores (shared: figures depend on what else runs)")
    keys = list(results[0])
    width = max(len(k) for k in keys) + 2
    for k in keys:
        print(f"{k:<{width}}" + "".join(f"{fmt(r[k]):>26}" for r in results))
    if args.keep:
        print(f"kept: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
