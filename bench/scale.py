"""N simultaneous calls with both parties recorded, beside the same N without recording.

For each N: 2N users, call i from user 2i to user 2i+1, every user sending its own tone.
Printed per N and mode (asserts nothing; issue 10's goals are printed beside the figures):

  - agents ready: launch -> every agent said hello (and the recorder workers, when recording)
  - idle agent: CPU (% of one core), RSS and PSS (its share of pages shared with the zygote and
    the other agents) before any call, mean over the agents
  - CPU of all mppsim processes (this process, agents, recorder workers) while the N calls talk
  - recordings found / expected, and how many have the right tones on the right channels
    (the owner's own tone on its channel, the other party's on the other)
  - dropout frames: silent 20 ms frames between the first and last loud frame of a channel
    that carries a tone (recordings), and of what each party heard (captures, both modes)
  - worst shortfall: talk time (call log) minus the recording's length (the issue's figure)
  - audio missed: what of the talk time is not in the recording as audio - from the call's
    connect to the first loud frame stored (recorder start + leading silence), plus from the
    last loud frame stored to the call's end; the file's length hides a late start behind a
    late end (the BYE comes after the hang-up), this does not. Printed p50 / worst.
  - SIPREC set-up: the agents' `since_answer_ms` (call answered -> recorder answered), p50 / p90

    .venv/bin/python bench/scale.py [--calls 10 25 50] [--talk 20] [--idle 5] [--rate R] [--repeat K]
                                    [--modes plain recorded] [--agents-rtp thread|poller]
                                    [--recorder-workers N]

SCALE_DEBUG=1 also prints, per recording, how late its audio starts and ends, and where any
dropout frames are (seconds into the file) with the recorder's late / lost counters per stream.

The recorder measured is whatever recorder/srs.py is on this branch.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mppsim.app.load import CpuMeter, load_org  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402
from mppsim.phone.analysis import SILENCE_DBFS, dominant_frequency  # noqa: E402
from mppsim.recorder.wavfile import read  # noqa: E402

RATE = 8000
RTP_THREAD = True     # as `mppsim load`: agents read RTP on pjmedia's own thread (--agents-rtp)
RECORDER_WORKERS = 1  # mppsim-recorder --workers (--recorder-workers)
FRAME = RATE // 50
TICKS = os.sysconf("SC_CLK_TCK")


def tone_of(i: int) -> float:
    """User i's tone: 2.5 % apart, so a 1 % tolerance tells every pair apart (300-3540 Hz;
    above 3200 Hz the agents use a 16 kHz tone generator: at 8 kHz pjmedia's folds those).
    From user 100 on (100 calls: 200 users) the tones start again: a call's two parties, the
    only ones a recording is checked against, still differ."""
    return round(300 * 1.025 ** (i % 100), 1)


def frame_levels(x: np.ndarray) -> np.ndarray:
    blocks = x[: x.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(blocks), axis=1)) if blocks.size else np.zeros(0)
    with np.errstate(divide="ignore"):
        return 20 * np.log10(np.maximum(rms, 1e-9) / 32768.0)


def dropout_frames(x: np.ndarray) -> list[float]:
    """Where silent 20 ms frames lie between the first and the last loud frame (s into ``x``).
    Counted with the frames starting at 0, 5, 10 and 15 ms and the phase with the most kept: a
    20 ms gap that straddles two frames leaves both loud, and would be missed at a single phase."""
    worst: list[float] = []
    for phase in range(0, FRAME, FRAME // 4):
        loud = frame_levels(x[phase:]) > SILENCE_DBFS
        idx = np.nonzero(loud)[0]
        if idx.size:
            holes = np.nonzero(~loud[idx[0]: idx[-1] + 1])[0] + idx[0]
            if holes.size > len(worst):
                worst = [round(float(phase + h * FRAME) / RATE, 3) for h in holes]
    return worst


def dropouts(x: np.ndarray) -> int:
    return len(dropout_frames(x))


def tone_matches(x: np.ndarray, want: float) -> bool:
    loud = frame_levels(x) > SILENCE_DBFS
    if not loud.any():
        return False
    samples = x[: loud.size * FRAME].reshape(-1, FRAME)[loud].ravel()[: RATE * 4]
    got = dominant_frequency(samples, RATE)
    return got is not None and abs(got - want) <= want * 0.01


def loud_span(x: np.ndarray) -> tuple[float, float] | None:
    """Seconds from the file's start to the first and to the end of the last loud frame."""
    idx = np.nonzero(frame_levels(x) > SILENCE_DBFS)[0]
    if idx.size == 0:
        return None
    return idx[0] * FRAME / RATE, (idx[-1] + 1) * FRAME / RATE


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_kib_mib(path: str, field: str) -> float:
    """A `Field:  N kB` line of a /proc file, in MiB; nan when the process is gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def proc_pss_mib(pid: int) -> float:
    """The process's proportional share (smaps_rollup's Pss): pages shared with the zygote and the
    other agents count 1/n each. RSS counts them whole in every agent, so the sum of RSS over
    200 agents says ~3x more memory than they use."""
    return proc_kib_mib(f"/proc/{pid}/smaps_rollup", "Pss")


def proc_rss_mib(pid: int) -> float:
    return proc_kib_mib(f"/proc/{pid}/status", "VmRSS")


def tree(pid: int) -> list[int]:
    """pid and every descendant (from /proc/*/stat parent links)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def process_kind(pid: int, root: int) -> str:
    if pid == root:
        return "app"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    return "recorder" if "mppsim.recorder" in cmd else "agents" if "mppsim.phone" in cmd else "other"


def thread_seconds(root: int) -> dict[tuple[str, str], float]:
    """CPU seconds per (process kind, thread name) of every mppsim process: where the time goes
    (the agents name their Python threads: pjsua-poll, network-src, parent-watch; C threads are
    pjmedia's `clock` and `media`)."""
    out: dict[tuple[str, str], float] = {}
    for pid in tree(root):
        kind = process_kind(pid, root)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for t in tasks:
            try:
                name = "main" if t.name == str(pid) else (t / "comm").read_text().strip()
                ns = int((t / "schedstat").read_text().split()[0])
            except (OSError, ValueError):
                continue
            out[(kind, name)] = out.get((kind, name), 0.0) + ns / 1e9
    return out


def run(n: int, record: bool, talk: float, idle: float, rate: float = 0.0) -> dict:
    users = 2 * n
    org = load_org(users, 0, record="Always" if record else "Never")
    sim = Simulator(org, front_door_port=None, recorder=record, rtp_thread=RTP_THREAD,
                    recorder_workers=RECORDER_WORKERS)
    setups: list[float] = []
    sim.subscribe(lambda ev: setups.append(ev["since_answer_ms"])
                  if ev.get("event") == "siprec" and "since_answer_ms" in ev else None)
    t0 = time.monotonic()
    sim.start()
    ready = time.monotonic() - t0
    out: dict = {"n": n, "record": record, "ready_s": ready}
    try:
        ids = [u.id for u in org.users]
        pids = [sim.orch.agents[i].pid for i in ids]
        time.sleep(1.0)
        before = {p: proc_cpu(p) for p in pids}
        time.sleep(idle)
        out["idle_cpu_pct"] = float(np.mean([(proc_cpu(p) - before[p]) / idle * 100 for p in pids]))
        out["idle_rss_mib"] = float(np.mean([proc_rss_mib(p) for p in pids]))
        out["idle_pss_mib"] = float(np.mean([proc_pss_mib(p) for p in pids]))
        for i, uid in enumerate(ids):
            sim.play(uid, tone=tone_of(i))
            sim.set_auto_answer(uid, 0.0)
        t_dial = time.monotonic()
        for i in range(n):
            if rate:     # paced: call i is placed at i / rate s
                time.sleep(max(0.0, t_dial + i / rate - time.monotonic()))
            sim.dial(ids[2 * i], org.users[2 * i + 1].extension)
        sim.wait_until(lambda: sum(1 for c in sim.calls.values() if c["state"] == "connected") >= 2 * n,
                       60, f"{n} calls connected")
        meter = CpuMeter()
        threads0, t0 = thread_seconds(os.getpid()), time.monotonic()
        time.sleep(talk)
        out["cpu_cores"] = meter.sample()
        threads1, span = thread_seconds(os.getpid()), time.monotonic() - t0
        # threads that ended during the talk drop out: a difference only for those still there
        out["threads"] = {k: (v - threads0[k]) / span for k, v in threads1.items() if k in threads0}
        for i in range(n):
            sim.hangup(ids[2 * i])
        sim.wait_until(lambda: all(c["state"] == "ended" for c in sim.calls.values()), 30, "calls ended")
        time.sleep(1.5)
        log = sim.call_log()
        # what each party heard (captures): dropouts, both modes
        heard_drop = 0
        for c in log:
            for leg in c["legs"].values():
                if leg.get("capture_file"):
                    heard_drop += dropouts(read(leg["capture_file"])[1].reshape(-1))
        out["heard_dropouts"] = heard_drop
        if record:
            talk_of, span_of = {}, {}
            for c in log:
                for party in (c["from"], c["to"]):
                    talk_of[party["number"]] = c["talk_time"] or 0.0
            # the call's connect (both legs up) and end (first leg down), wall clock
            finals = {**sim.calls, **sim.summaries}
            by_cid: dict = {}
            for ev in finals.values():
                by_cid.setdefault(ev.get("sip_call_id"), []).append(ev)
            for legs in by_cid.values():
                if all(l.get("connected_at") for l in legs) and all(l.get("ended_at") for l in legs):
                    span = (max(l["connected_at"] for l in legs), min(l["ended_at"] for l in legs))
                    for l in legs:
                        span_of[l["agent"]] = span
            missed: list[float] = []
            deadline = time.monotonic() + 30
            recs = []
            while time.monotonic() < deadline:
                recs = [r for r in sim.recordings() if r["state"] != "recording"]
                if len(recs) >= 2 * n:
                    break
                time.sleep(0.5)
            right, drop, worst = 0, 0, 0.0
            index = {u.extension: i for i, u in enumerate(org.users)}
            for r in recs:
                owner = r["owner"].split("@")[0].split(":")[1]
                i = index[owner]
                other = i + 1 if i % 2 == 0 else i - 1
                _rate, audio = read(r["audio_path"])
                # the channel the metadata names for the owner (left = 0, right = 1)
                own_ch = next((0 if p["channel"] == "left" else 1 for p in r["participants"] or []
                               if f"sip:{owner}@" in p.get("aor", "")), 0)
                own, far = audio[:, own_ch], audio[:, 1 - own_ch]
                right += tone_matches(own, tone_of(i)) and tone_matches(far, tone_of(other))
                drop += dropouts(own) + dropouts(far)
                if os.environ.get("SCALE_DEBUG"):
                    for name, x in (("own", own), ("far", far)):
                        holes = dropout_frames(x)
                        if holes:
                            print(f"    dropout {owner} {name}: {len(holes)} frames at {holes[:10]} s of "
                                  f"{x.size / RATE:.2f} s; late/lost per stream "
                                  f"{[(st.get('late'), st.get('lost')) for st in r.get('stream_stats') or []]}")
                worst = max(worst, talk_of.get(owner, 0.0) - audio.shape[0] / RATE)
                spans = [loud_span(audio[:, ch]) for ch in (0, 1)]
                span = span_of.get(ids[i])
                if span is not None and all(spans):
                    begin = iso_seconds(r["started_at"])
                    first = begin + max(a for a, _b in spans)     # both parties' audio present
                    last = begin + min(b for _a, b in spans)
                    missed.append(max(0.0, first - span[0]) + max(0.0, span[1] - last))
                    if os.environ.get("SCALE_DEBUG"):
                        print(f"    {owner}: start {1000 * (first - span[0]):.0f} ms, end {1000 * (span[1] - last):.0f} ms, "
                              f"lead {1000 * max(a for a, _b in spans):.0f} ms")
            out.update(recordings=len(recs), expected=2 * n, right_tones=right, rec_dropouts=drop,
                       shortfall_ms=worst * 1000,
                       missed_p50_ms=float(np.median(missed)) * 1000 if missed else float("nan"),
                       missed_max_ms=max(missed) * 1000 if missed else float("nan"),
                       setup_p50_ms=float(np.percentile(setups, 50)) if setups else float("nan"),
                       setup_p90_ms=float(np.percentile(setups, 90)) if setups else float("nan"))
    finally:
        sim.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, nargs="+", default=[10, 25, 50])
    ap.add_argument("--talk", type=float, default=20.0, help="seconds the calls talk while CPU is measured")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle sampling before the calls")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="calls placed per second (0 = all at once, the default: the hardest case)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each N (plain and recorded each time): all at once, which call waits "
                         "longest is luck of scheduling, so the worst figures spread from run to run")
    ap.add_argument("--modes", nargs="+", choices=("plain", "recorded"), default=["plain", "recorded"],
                    help="which runs of each N: plain (no recording, the baseline) and/or recorded")
    ap.add_argument("--recorder-workers", type=int, default=1,
                    help="processes of the embedded recorder (mppsim-recorder --workers; 1)")
    ap.add_argument("--agents-rtp", choices=("thread", "poller"), default="thread",
                    help="thread: pjmedia's own RTP thread, as `mppsim load` (the default); poller: RTP "
                         "read by the agent's one pjsua poller, as the app's orgs (cheaper idle)")
    args = ap.parse_args()
    global RTP_THREAD, RECORDER_WORKERS
    RTP_THREAD = args.agents_rtp == "thread"
    RECORDER_WORKERS = args.recorder_workers
    print(f"bench/scale.py on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"talk {args.talk:g} s; calls placed {f'{args.rate:g} per second' if args.rate else 'all at once'}; "
          f"agents read RTP on {'pjmedia' + chr(39) + 's thread' if RTP_THREAD else 'their pjsua poller'}")
    rows = []
    modes = [m == "recorded" for m in ("plain", "recorded") if m in args.modes]
    runs = [(n, rep, record) for n in args.calls for rep in range(args.repeat) for record in modes]
    for n, rep, record in runs:
        r = run(n, record, args.talk, args.idle, args.rate)
        r["rep"] = rep
        rows.append(r)
        print(f"  N={n:<3} {'recorded' if record else 'plain   '} agents ready {r['ready_s']:5.1f} s, "
              f"idle agent {r['idle_cpu_pct']:.2f} % of a core and {r['idle_rss_mib']:.1f} MiB RSS ({r['idle_pss_mib']:.1f} MiB PSS), "
              f"CPU {r['cpu_cores']:.2f} cores, heard dropouts {r['heard_dropouts']}"
              + (f", recordings {r['recordings']}/{r['expected']}, right tones {r['right_tones']}, "
                 f"dropouts {r['rec_dropouts']}, worst shortfall {r['shortfall_ms']:.0f} ms, "
                 f"audio missed p50 {r['missed_p50_ms']:.0f} / worst {r['missed_max_ms']:.0f} ms, "
                 f"SIPREC set-up after answer p50 {r['setup_p50_ms']:.0f} / p90 {r['setup_p90_ms']:.0f} ms"
                 if record else ""),
              flush=True)
        ranked = sorted(r["threads"].items(), key=lambda kv: -kv[1])
        print("      where the time goes (cores, by process and thread): "
              + ", ".join(f"{kind} {name} {cores:.3f}" for (kind, name), cores in ranked if cores >= 0.005),
              flush=True)
    print(f"\n{'calls':>5} {'agents':>6} {'ready s':>10} {'idle %':>7} {'idle MiB':>8} | {'CPU plain':>9} "
          f"{'CPU rec':>8} {'ratio':>6} | {'recordings':>10} {'right':>6} {'drop':>5} {'heard drop':>12} "
          f"{'shortfall ms':>12} {'missed ms':>11} {'set-up ms':>10}")
    for n, rep in ((n, rep) for n in args.calls for rep in range(args.repeat)):
        plain = next((r for r in rows if r["n"] == n and r["rep"] == rep and not r["record"]), None)
        rec = next((r for r in rows if r["n"] == n and r["rep"] == rep and r["record"]), None)
        if plain is None or rec is None:
            continue     # one mode only: its line above is the figure
        ratio = rec["cpu_cores"] / plain["cpu_cores"] if plain["cpu_cores"] else float("nan")
        print(f"{n:>5} {2 * n:>6} {plain['ready_s']:>4.1f}/{rec['ready_s']:<5.1f} {plain['idle_cpu_pct']:>7.2f} {plain['idle_rss_mib']:>8.1f} | "
              f"{plain['cpu_cores']:>9.2f} {rec['cpu_cores']:>8.2f} {ratio:>6.1f} | "
              f"{rec['recordings']:>4}/{rec['expected']:<5} {rec['right_tones']:>6} {rec['rec_dropouts']:>5} "
              f"{str(plain['heard_dropouts']) + '/' + str(rec['heard_dropouts']):>12} {rec['shortfall_ms']:>12.0f} "
              f"{rec['missed_p50_ms']:>5.0f}/{rec['missed_max_ms']:<5.0f} {rec['setup_p50_ms']:>4.0f}/{rec['setup_p90_ms']:<5.0f}")
    print("(ready s: plain / recorded, the latter with the recorder; heard drop: plain / recorded; "
          "missed: audio of the talk not recorded, p50/worst; set-up: answer -> recorder answered, p50/p90)")
    if args.repeat > 1:
        for n in args.calls:
            worst = sorted(r["shortfall_ms"] for r in rows if r["n"] == n and r["record"])
            print(f"N={n}: worst shortfall over {args.repeat} runs: min {worst[0]:.0f}, "
                  f"median {float(np.median(worst)):.0f}, max {worst[-1]:.0f} ms")
    print("\ngoals (issue 10): 50 recorded calls <= 1.2 cores, 0 dropout frames, shortfall <= 60 ms; "
          "idle agent <= 0.1 % and <= 35 MiB (an app's org: --agents-rtp poller); 100 agents ready <= 8 s")
    print("goals (issue 22): 100 recorded calls <= 1.5 cores, 0 dropout frames, every recording within 100 ms")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other work on this machine counts in 'ready')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
