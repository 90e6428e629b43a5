"""`mppsim load`: many recorded calls between simulated users and PSTN parties, like SIPp.

Calls are offered at `rate` new calls per second, at most `calls` at once, for `duration`
seconds; each is held `hold` seconds after answer, then the caller hangs up. Every user and
every PSTN party carries at most one load call at a time, so the calls are spread over as
many agent processes as needed (an agent may hold 4 pjsua calls, 2 of them a user's own:
docs/decisions.md), and each agent starts and ends at most one call per hold time: far from
pjlib's 64-slot I/O queue (docs/decisions.md, "Churn").

No Qt and no pjsua2 here: a Simulator drives the agents; the figures come from its events
(`call`, `siprec`, `agent_down`) and from /proc (CPU of the app and all its child processes).
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mppsim.recorder.session import NO_AUDIO
from .orchestrator import AGENT_LOST, FAR_END_LOST

from .org import Org, parse_org

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
FIRST_USER_EXTENSION = 2000
FIRST_PSTN_NUMBER = 15550100000     # +1 555 010 0000: a fictional range


class LoadError(ValueError):
    """A load setting that cannot work; the text names the option and what is allowed."""


@dataclass
class LoadConfig:
    calls: int                      # at most this many calls at once
    rate: float                     # new calls per second
    duration: float                 # seconds during which new calls are offered
    hold: float | None = None       # seconds each call lasts after answer (None: calls / rate)
    recorder: str | None = None     # external SRS target; None = the embedded recorder
    dialect: str | None = None      # webex | rfc7866 (None: the recorder's default, webex)

    def __post_init__(self):
        if self.calls < 1:
            raise LoadError(f"--calls: {self.calls} given; allowed: 1 or more")
        if not 0 < self.rate <= 100:
            raise LoadError(f"--rate: {self.rate:g} given; allowed: more than 0, at most 100 calls/s")
        if self.duration <= 0:
            raise LoadError(f"--duration: {self.duration:g} given; allowed: more than 0 s")
        if self.hold is None:
            self.hold = max(1.0, self.calls / self.rate)   # enough for `calls` to be up at once
        if self.hold <= 0:
            raise LoadError(f"--hold: {self.hold:g} given; allowed: more than 0 s")
        if self.dialect not in (None, "webex", "rfc7866"):
            raise LoadError(f"--dialect: {self.dialect!r}; allowed: webex, rfc7866")
        if self.recorder is not None and not self.recorder.startswith(("sip:", "sips:")):
            raise LoadError(f"--recorder: {self.recorder!r} is not a SIP URI; "
                            "allowed: sip:HOST:PORT;transport=tcp")


def load_org_data(users: int, pstn: int, record: str = "Always") -> dict:
    """An org of `users` users, all recorded `record` (Dubber, as the demo org), and `pstn`
    PSTN parties."""
    return {
        "organisation": {"name": f"mppsim load ({users} users)", "ring_timeout": 20, "voicemail": False,
                         "recording": {"provider": "Dubber", "tier": "Go", "termsAccepted": ["Dubber"],
                                       "failureBehavior": "PROCEED_WITH_CALL_NO_ANNOUNCEMENT",
                                       "region": "US"}},
        "locations": [{"id": "hq", "name": "Load HQ", "country": "US", "timezone": "America/New_York",
                       "language": "en_us"}],
        "users": [{"id": f"u{i:03d}", "name": f"Load User {i}", "extension": str(FIRST_USER_EXTENSION + i),
                   "location": "hq", "licence": "Professional", "devices": [{"type": "mpp", "model": "8865"}],
                   "callRecording": {"enabled": True, "record": record}}
                  for i in range(users)],
        "pstn": [{"number": f"+{FIRST_PSTN_NUMBER + i}", "name": f"Load Caller {i}"} for i in range(pstn)],
    }


def load_org(users: int, pstn: int, record: str = "Always") -> Org:
    return parse_org(load_org_data(users, pstn, record), Path.cwd() / "load-org.yaml")


def org_with_pstn(org: Org, pstn: int) -> Org:
    """`org` with generated PSTN parties added until it has `pstn` of them."""
    missing = pstn - len(org.pstn)
    if missing <= 0:
        return org
    from dataclasses import replace
    from .org import PstnParty
    taken = {p.number for p in org.pstn}
    extra, n = [], 0
    while len(extra) < missing:
        number = f"+{FIRST_PSTN_NUMBER + n}"
        n += 1
        if number not in taken:
            extra.append(PstnParty(number=number, name=f"Load Caller {n}"))
    return replace(org, pstn=(*org.pstn, *extra))


# ----- CPU of the app and its children ----------------------------------------------------------
def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every live process below it (agents, recorder
    workers). Children that ended take their CPU with them: sample while they run."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def _inodes(table: str) -> set[str]:
    out: set[str] = set()
    for name in (table, table + "6"):
        try:
            out |= {line.split()[9] for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]}
        except OSError:
            pass
    return out


def socket_counts(pids: list[int]) -> dict[str, int]:
    """UDP and TCP sockets held by these processes (from /proc)."""
    udp, tcp = _inodes("udp"), _inodes("tcp")
    n_udp = n_tcp = 0
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes = [link[8:-1] for link in links if link.startswith("socket:[")]
        n_udp += sum(1 for i in inodes if i in udp)
        n_tcp += sum(1 for i in inodes if i in tcp)
    return {"udp_sockets": n_udp, "tcp_sockets": n_tcp}


def org_resources(sim) -> dict[str, int]:
    """What all agents hold, summed: their own count (`status` resources: Call objects, SIPREC
    sessions, threads, RSS...) and their UDP/TCP sockets. For leak checks before/after load."""
    total: dict[str, int] = {}
    for name, handle in sim.orch.agents.items():
        if handle.status != "up":
            continue
        res = sim.orch.request(name, "status").get("resources", {})
        for key, value in res.items():
            total[key] = total.get(key, 0) + int(value)
    total.update(socket_counts([h.pid for h in sim.orch.agents.values() if h.pid]))
    return total


class CpuMeter:
    def __init__(self, root: int | None = None):
        self.root = root or os.getpid()
        self.last = (time.monotonic(), tree_cpu_seconds(self.root))
        self.samples: list[float] = []

    def sample(self) -> float:
        """Cores used since the last sample (1.0 = one core busy)."""
        now = time.monotonic()
        if now - self.last[0] < 0.5:
            # /proc counts in 10 ms ticks per process: over 0.1 s, 100 agents' rounding alone
            # read as 10 cores (the report's first row said 2.5 on a 2-core machine)
            return self.samples[-1] if self.samples else 0.0
        cpu = tree_cpu_seconds(self.root)
        cores = max(0.0, (cpu - self.last[1]) / max(1e-6, now - self.last[0]))
        self.last = (now, cpu)
        self.samples.append(cores)
        return cores


# ----- the run ----------------------------------------------------------------------------------
@dataclass
class LoadCall:
    caller: str
    callee: str
    key: str | None = None
    offered_at: float = 0.0
    connected_at: float | None = None
    hangup_at: float | None = None
    ended: bool = False
    reason: str | None = None


@dataclass
class LoadStats:
    offered: int = 0
    answered: int = 0
    failed: int = 0
    completed: int = 0
    live: int = 0
    max_live: int = 0
    rec_started: int = 0
    rec_failed: int = 0
    agents_down: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    rec_failures: dict[str, int] = field(default_factory=dict)   # "target: reason" -> count
    siprec_ms: list[float] = field(default_factory=list)
    cpu: float = 0.0
    elapsed: float = 0.0

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.failures[reason] = self.failures.get(reason, 0) + 1


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


class LoadRunner:
    """Drives one load run on a started Simulator. `run()` returns the report (a dict)."""

    def __init__(self, sim, cfg: LoadConfig, users: list[str], pstn: list[str],
                 show: Callable[["LoadRunner"], None] | None = None, show_every: float = 1.0):
        if len(users) < cfg.calls or len(pstn) < cfg.calls:
            raise LoadError(f"--calls: {cfg.calls} calls at once need {cfg.calls} users and {cfg.calls} "
                            f"PSTN parties; there are {len(users)} and {len(pstn)}")
        self.sim, self.cfg = sim, cfg
        self.free_users, self.free_pstn = list(users), list(pstn)
        self.show, self.show_every = show, show_every
        self.stats = LoadStats()
        self.calls: dict[str, LoadCall] = {}      # caller-side call key -> call
        self.lock = threading.Lock()
        self.started = 0.0
        self.interrupted = False
        self.cpu = CpuMeter()
        self.timeline: list[dict] = []
        self.hosts: HostRows | None = None     # a run across hosts: the table's row per host
        self.host_cpu: list[tuple[float, float]] = []   # (this machine, the agent hosts) per tick

    # events arrive on the orchestrator's reader threads
    def on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        with self.lock:
            if kind == "call":
                call = self.calls.get(ev.get("call", ""))
                if call is None or call.ended:
                    return
                if ev["state"] == "connected" and call.connected_at is None:
                    call.connected_at = time.monotonic()
                    call.hangup_at = call.connected_at + self.cfg.hold
                    self.stats.answered += 1
                elif ev["state"] == "ended":
                    self._ended(call, ev.get("reason"))
            elif kind == "siprec":
                if ev.get("state") == "active":
                    self.stats.rec_started += 1
                    if ev.get("setup_ms") is not None:
                        self.stats.siprec_ms.append(float(ev["setup_ms"]))
                elif ev.get("state") == "failed":
                    self.stats.rec_failed += 1
                    why = f"{ev.get('target') or 'recorder'}: {ev.get('reason') or 'no reason given'}"
                    self.stats.rec_failures[why] = self.stats.rec_failures.get(why, 0) + 1
            elif kind == "agent_down":
                self.stats.agents_down.append(ev.get("agent", "?"))

    def _ended(self, call: LoadCall, reason: str | None) -> None:
        call.ended = True
        call.reason = reason
        self.stats.live -= 1
        if call.connected_at is None or reason in (AGENT_LOST, FAR_END_LOST):
            # a call whose agent died (caller's or callee's) failed, answered or not
            self.stats.fail(reason or "failed")
        else:
            self.stats.completed += 1
        user, pstn = (call.caller, call.callee) if not call.caller.startswith("+") else (call.callee, call.caller)
        self.free_users.append(user)
        self.free_pstn.append(pstn)

    def _offer(self) -> None:
        with self.lock:
            if not self.free_users or not self.free_pstn:
                return
            user, pstn = self.free_users.pop(0), self.free_pstn.pop(0)
            outbound = self.stats.offered % 2 == 0     # half user -> PSTN, half PSTN -> user
            self.stats.offered += 1
            self.stats.live += 1
            self.stats.max_live = max(self.stats.max_live, self.stats.live)
        caller, callee = (user, pstn) if outbound else (pstn, user)
        number = self.sim.party(callee).number
        call = LoadCall(caller, callee, offered_at=time.monotonic())
        try:
            key = self.sim.dial(caller, number)
        except Exception as exc:     # refused at once: counted, the pair goes back
            with self.lock:
                call.connected_at = None
                self._ended(call, f"dial refused: {exc}")
            return
        with self.lock:
            call.key = key
            self.calls[key] = call
            # events for this key may have come before we knew it: check the simulator's view
            ev = self.sim.calls.get(key)
        if ev is not None:
            self.on_event(ev)

    def _hang_up_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        with self.lock:
            due = [c for c in self.calls.values() if not c.ended and c.key and
                   (everything or (c.hangup_at is not None and c.hangup_at <= now)
                    or (c.connected_at is None and now - c.offered_at > 30))]
            for c in due:
                c.hangup_at = float("inf")   # once
        for c in due:
            try:
                self.sim.orch.request(self.sim.party(c.caller).agent, "hangup", call=c.key, timeout=5)
            except Exception:
                pass   # ended meanwhile

    def run(self) -> dict:
        self.sim.subscribe(self.on_event)
        self.started = time.monotonic()
        next_offer = self.started
        next_show = self.started
        offer_until = self.started + self.cfg.duration
        try:
            while True:
                now = time.monotonic()
                while now >= next_offer and now < offer_until:
                    with self.lock:
                        room = self.stats.live < self.cfg.calls
                    if room:
                        self._offer()
                    next_offer += 1.0 / self.cfg.rate
                    now = time.monotonic()
                self._hang_up_due()
                if now >= next_show:
                    self._tick()
                    next_show = max(next_show + self.show_every, time.monotonic())
                with self.lock:
                    live = self.stats.live
                if now >= offer_until and live == 0:
                    break
                if now >= offer_until + self.cfg.hold + 30:
                    self._hang_up_due(everything=True)   # a call that never ended by itself
                    break
                time.sleep(min(0.05, max(0.0, next_offer - time.monotonic())) if now < offer_until else 0.05)
        except KeyboardInterrupt:
            self.interrupted = True
        self._finish()
        return self.report()

    def _tick(self) -> None:
        here = self.cpu.sample()
        # agents on other hosts are not this process' children: their hosts' rows count them
        hosts = self.hosts.cores_now() if self.hosts is not None else None
        self.stats.cpu = here + (hosts or 0.0)
        if hosts is not None and self.cpu.samples:
            self.host_cpu.append((here, hosts))
        self.stats.elapsed = time.monotonic() - self.started
        with self.lock:
            self.timeline.append({"t": round(self.stats.elapsed, 1), "live": self.stats.live,
                                  "offered": self.stats.offered, "answered": self.stats.answered,
                                  "failed": self.stats.failed, "cpu_cores": round(self.stats.cpu, 3)})
        if self.show is not None:
            self.show(self)

    def _finish(self) -> None:
        """End what is still up (Ctrl-C, or the end of the run) and let the recorder finish."""
        try:
            self._hang_up_due(everything=True)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with self.lock:
                    if self.stats.live <= 0:
                        break
                time.sleep(0.1)
            time.sleep(1.0)    # BYEs of the SIPREC sessions, the recorder's last index updates
        except KeyboardInterrupt:
            self.interrupted = True   # a second Ctrl-C: report what we have
        self._tick()
        self.sim.unsubscribe(self.on_event)

    @property
    def progress(self) -> float:
        total = self.cfg.duration + self.cfg.hold
        return min(1.0, (time.monotonic() - self.started) / total) if self.started else 0.0

    def report(self) -> dict[str, Any]:
        s = self.stats
        recordings = None
        try:
            rows = self.sim.recordings()
        except Exception:
            rows = []
        if self.sim.recorders is not None:
            states: dict[str, int] = {}
            for r in rows:
                states[r["state"]] = states.get(r["state"], 0) + 1
            # issue 21: packets per stream, and the recordings the recorder marked no audio
            received = [st.get("received", 0) for r in rows for st in (r.get("stream_stats") or [])]
            silent = [r for r in rows if (r.get("suspect_reason") or "").startswith(NO_AUDIO)]
            recordings = {"in_store": len(rows), "by_state": states,
                          "rtp_packets": {"streams": len(received), "total": sum(received),
                                          "min_per_stream": min(received) if received else None},
                          "no_audio": len(silent),
                          "no_audio_reasons": sorted({r["suspect_reason"] for r in silent})[:5]}
        cpu = self.cpu.samples
        if self.host_cpu:      # a run across hosts: every sample is this machine + the hosts
            cpu = [a + b for a, b in self.host_cpu]
        return {
            "config": {"calls": self.cfg.calls, "rate": self.cfg.rate, "duration": self.cfg.duration,
                       "hold": self.cfg.hold, "recorder": self.cfg.recorder or "embedded",
                       "dialect": self.cfg.dialect or "webex"},
            "interrupted": self.interrupted,
            "elapsed_s": round(s.elapsed, 2),
            "agents": len(self.sim.orch.agents),
            "calls": {"offered": s.offered, "answered": s.answered, "failed": s.failed,
                      "completed": s.completed, "max_at_once": s.max_live, "failures": s.failures},
            "recordings": {"started": s.rec_started, "failed": s.rec_failed, "failures": s.rec_failures,
                           "store": recordings},
            "siprec_answer_ms": {"p50": percentile(s.siprec_ms, 50), "p99": percentile(s.siprec_ms, 99),
                                 "max": max(s.siprec_ms) if s.siprec_ms else None},
            "cpu_cores": {"mean": round(statistics.fmean(cpu), 3) if cpu else None,
                          "max": round(max(cpu), 3) if cpu else None,
                          **({"this_machine_mean": round(statistics.fmean(a for a, _b in self.host_cpu), 3),
                              "agent_hosts_mean": round(statistics.fmean(b for _a, b in self.host_cpu), 3)}
                             if self.host_cpu else {})},
            "agents_down": s.agents_down,
            "timeline": self.timeline,
        }


# ----- terminal view ----------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def table(r: LoadRunner, width: int = 40) -> str:
    """The live view, SIPp style."""
    s, c = r.stats, r.cfg
    done = int(r.progress * width)
    lines = [
        f"mppsim load: up to {c.calls} calls at once, {c.rate:g} new/s for {c.duration:g} s, "
        f"hold {c.hold:g} s, recorder {c.recorder or 'embedded'}",
        f"[{'#' * done}{'.' * (width - done)}] {r.progress * 100:5.1f} %   elapsed {s.elapsed:6.1f} s"
        + ("   (Ctrl-C: ending calls)" if r.interrupted else ""),
        "",
        f"  {'':<26}{'total':>8}",
        f"  {'calls offered':<26}{s.offered:>8}",
        f"  {'calls answered':<26}{s.answered:>8}   {s.live} live",
        f"  {'calls failed':<26}{s.failed:>8}",
        f"  {'recordings started':<26}{s.rec_started:>8}",
        f"  {'recordings failed':<26}{s.rec_failed:>8}",
        f"  {'SIPREC answer p50/p99 ms':<26}{_ms(percentile(s.siprec_ms, 50)):>8} / {_ms(percentile(s.siprec_ms, 99))}",
        f"  {'CPU, mppsim processes':<26}{s.cpu:>8.2f} cores",
    ]
    if s.agents_down:
        lines.append(f"  agents down: {', '.join(s.agents_down)}")
    hosts = getattr(r, "hosts", None)
    if hosts is not None:
        lines += ["", *hosts.rows]
    return "\n".join(lines)


class HostRows:
    """The live table's row per agent host (a run across hosts): its agents, those down now,
    whether it is lost, the CPU of its agents since the last sample."""

    def __init__(self, launcher):
        self.launcher = launcher
        self.down: dict[str, set[str]] = {}
        self.lost: dict[str, str] = {}
        self.last: dict[str, tuple[float, float]] = {}
        self.cores: dict[str, float] = {}          # each host's agents, at the last sample
        self.rows: list[str] = []

    def cores_now(self) -> float | None:
        """The agent hosts' CPU at their last sample (cores, all hosts), None before any."""
        return sum(self.cores.values()) if self.cores else None

    def on_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "agent_down" and ev.get("host"):
            self.down.setdefault(ev["host"], set()).add(ev["agent"])
        elif kind == "agent_up":
            for agents in self.down.values():
                agents.discard(ev.get("agent"))
        elif kind == "host_down":
            self.lost[ev["host"]] = ev.get("why", "")

    def sample(self) -> None:
        usage, now, rows = self.launcher.usage(), time.monotonic(), []
        for h in self.launcher.hosts:
            cpu = usage.get(h.name, {}).get("agents")
            before = self.last.get(h.name)
            cores = (cpu - before[1]) / (now - before[0]) if cpu is not None and before else None
            if cpu is not None:
                self.last[h.name] = (now, cpu)
            if cores is not None:
                self.cores[h.name] = max(0.0, cores)
            elif h.name in self.lost:
                self.cores.pop(h.name, None)
            down = len(self.down.get(h.name, ()))
            rows.append(f"  host {h.name:<10}{h.address:>16}{len(self.launcher.agents_of(h.name)):>6} agents"
                        + (f"{down:>4} down" if down else "        ")
                        + (f"   LOST ({self.lost[h.name]})" if h.name in self.lost
                           else f"{cores:>8.2f} cores" if cores is not None else ""))
        self.rows = rows


def live_view(stream=None) -> Callable[[LoadRunner], None]:
    """Redraws the table in place on a terminal; prints a line every 5 s otherwise."""
    stream = stream or sys.stdout
    tty = stream.isatty()
    last = [0.0]

    def show(r: LoadRunner) -> None:
        if tty:
            stream.write("\x1b[H\x1b[2J" + table(r) + "\n")
        elif time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            s = r.stats
            stream.write(f"{s.elapsed:6.1f} s {r.progress * 100:5.1f} %: offered {s.offered}, answered "
                         f"{s.answered}, failed {s.failed}, live {s.live}, recordings {s.rec_started} "
                         f"started / {s.rec_failed} failed, CPU {s.cpu:.2f} cores\n")
        stream.flush()
    return show


def summary(report: dict) -> str:
    c, rec, ms, cpu = report["calls"], report["recordings"], report["siprec_answer_ms"], report["cpu_cores"]
    lines = [
        "",
        f"mppsim load {'interrupted' if report['interrupted'] else 'done'} after {report['elapsed_s']:.1f} s "
        f"({report['agents']} agents)",
        f"  calls: {c['offered']} offered, {c['answered']} answered, {c['failed']} failed, "
        f"at most {c['max_at_once']} at once",
        f"  recordings: {rec['started']} started, {rec['failed']} failed"
        + (f"; in the store: {rec['store']['by_state']}" if rec.get("store") else ""),
        f"  SIPREC answer: p50 {_ms(ms['p50'])} ms, p99 {_ms(ms['p99'])} ms, max {_ms(ms['max'])} ms",
        f"  CPU of all mppsim processes: mean {cpu['mean']} cores, max {cpu['max']} cores"
        + (f" (this machine {cpu['this_machine_mean']}, the agent hosts {cpu['agent_hosts_mean']})"
           if "agent_hosts_mean" in cpu else ""),
    ]
    store = rec.get("store") or {}
    if store.get("rtp_packets"):
        lines.append(f"  RTP packets recorded: {store['rtp_packets']['total']} on {store['rtp_packets']['streams']} "
                     f"streams (fewest on one stream: {store['rtp_packets']['min_per_stream']})")
    if store.get("no_audio"):
        lines.append(f"  NO AUDIO in {store['no_audio']} recordings: " + "; ".join(store["no_audio_reasons"]))
    if c["failures"]:
        lines.append("  failures: " + "; ".join(f"{k}: {v}" for k, v in c["failures"].items()))
    if rec.get("failures"):
        lines.append("  recording failures: " + "; ".join(f"{k} ({v}x)" for k, v in rec["failures"].items()))
    if report["agents_down"]:
        lines.append(f"  agents down: {', '.join(report['agents_down'])}")
    for name, h in (report.get("hosts") or {}).items():
        lines.append(f"  host {name} ({h['address']}): {h['agents']} agents, {h['agents_cpu_s']} s of CPU"
                     + (f"; LOST ({h['lost_why']})" if h["lost"] else "")
                     + (f"; {len(h['agents_down'])} agents went down" if h["agents_down"] else ""))
    return "\n".join(lines)


# ----- across hosts (issue 22) -------------------------------------------------------------------
def cluster_launcher(cluster: str | None, hosts_file: str | None, control_address: str | None,
                     cfg: "LoadConfig", agents: int):
    """The RayLauncher of `--cluster/--hosts`, or a LoadError saying what is missing, checked
    before anything starts (a run asked for more than the hosts hold is refused here)."""
    from .cluster import HostsFileError, RayLauncher, parse_hosts, place
    missing = [flag for flag, value in (("--cluster", cluster), ("--hosts", hosts_file),
                                        ("--control-address", control_address),
                                        ("--recorder", cfg.recorder)) if not value]
    if missing:
        raise LoadError(f"a run across hosts needs {', '.join(missing)} too (docs/scaling.md): the "
                        "hosts' Ray address, their file, this machine's address they reach, and an "
                        "SRS they reach")
    try:
        text = Path(hosts_file).read_text()
    except OSError as exc:
        raise LoadError(f"--hosts: cannot read {hosts_file}: {exc.strerror}") from None
    try:
        hosts = parse_hosts(text, hosts_file)
        place([f"a{i}" for i in range(agents)], hosts)
    except HostsFileError as exc:
        raise LoadError(str(exc)) from None
    try:
        import ray  # noqa: F401
    except ImportError:
        raise LoadError("--cluster needs Ray: pip install 'mppsim[cluster]'") from None
    return RayLauncher(cluster, hosts, node_ip=control_address)


def host_figures(launcher, hosts_down: list[dict], agents_down: list[str]) -> dict:
    """Per host: its agents, which went down, CPU of its agents so far, and whether it was lost."""
    usage = launcher.usage()
    out = {}
    for h in launcher.hosts:
        agents = launcher.agents_of(h.name)
        lost = next((ev for ev in hosts_down if ev["host"] == h.name), None)
        out[h.name] = {"address": h.address, "capacity": h.capacity, "agents": len(agents),
                       "agents_down": [a for a in agents_down if a in agents],
                       "lost": bool(lost), "lost_why": lost["why"] if lost else None,
                       "agents_cpu_s": round(usage.get(h.name, {}).get("agents", 0.0), 2),
                       "engine_actor_cpu_s": round(usage.get(h.name, {}).get("actor", 0.0), 2)}
    return out


# ----- the command --------------------------------------------------------------------------------
def run_load(cfg: LoadConfig, org_file: str | None = None, users: int | None = None,
             report_path: str | None = None, run_dir: str | None = None, show=None,
             out=print, keep: bool = True, address: str | None = None, cluster: str | None = None,
             hosts_file: str | None = None, control_address: str | None = None) -> dict:
    """`mppsim load`: start the org (generated or from a file), run, write the report. With
    `cluster` the agents run on the hosts of `hosts_file` (app/cluster.py). `keep=False`: the temp
    run folder of a clean run (every call and recording succeeded, not interrupted) is deleted; a
    `run_dir` given is never deleted."""
    import json
    from .org import load_org as load_org_file
    from .simulator import Simulator
    if org_file:
        org = org_with_pstn(load_org_file(org_file), cfg.calls)
    else:
        n = max(int(users or 0), cfg.calls)
        org = load_org(n, cfg.calls)
    user_ids = [u.id for u in org.users]
    if len(user_ids) < cfg.calls:
        raise LoadError(f"--calls: {cfg.calls} calls at once need {cfg.calls} users; "
                        f"{org_file} has {len(user_ids)} (use --users N, or a bigger org)")
    pstn = [p.number for p in org.pstn]
    launcher = None
    if cluster or hosts_file:
        launcher = cluster_launcher(cluster, hosts_file, control_address, cfg,
                                    len(user_ids) + len(pstn) + (1 if org.voicemail else 0))
    sim = Simulator(org, run_dir=run_dir, front_door_port=None, recorder=cfg.recorder is None,
                    launcher=launcher, control_host=control_address or "127.0.0.1",
                    recorder_target=cfg.recorder if launcher is not None else None, address=address,
                    rtp_thread=True)     # a load run's agents are in calls: RTP on pjmedia's thread
    hosts_down: list[dict] = []
    sim.subscribe(lambda ev: hosts_down.append(ev) if ev.get("event") == "host_down" else None)
    out(f"mppsim load: starting {len(user_ids) + len(pstn)} agents "
        f"({len(user_ids)} users, {len(pstn)} PSTN parties)" + ("" if cfg.recorder else " and the recorder"))
    t0 = time.monotonic()
    try:
        sim.start()
    except Exception as exc:
        from .cluster import HostsFileError
        if isinstance(exc, HostsFileError):    # a host that is not there: said, not a traceback
            raise LoadError(str(exc)) from None
        raise
    ready_s = time.monotonic() - t0
    report: dict = {}
    try:
        out(f"mppsim load: agents ready after {ready_s:.1f} s; run folder {sim.run_dir}")
        for i, uid in enumerate(user_ids):
            target = cfg.recorder or (sim.recorders.target_for(i) if sim.recorders else None)
            if target and (cfg.recorder or cfg.dialect):
                if cfg.dialect:
                    target += f";dialect={cfg.dialect}"
                sim.orch.request(uid, "set_recorder", target=target)
        for who in [*user_ids, *pstn]:
            sim.set_auto_answer(who, 0.0)
        runner = LoadRunner(sim, cfg, user_ids, pstn, show=show)
        sampling = threading.Event()
        if launcher is not None:
            runner.hosts = HostRows(launcher)
            sim.subscribe(runner.hosts.on_event)

            def sample():
                while True:      # at once, then every second: the run's CPU needs two samples
                    try:
                        runner.hosts.sample()
                    except Exception:   # noqa: BLE001 - a row not refreshed is not worth the run
                        pass
                    if sampling.wait(1.0):
                        break
            threading.Thread(target=sample, name="mppsim-host-rows", daemon=True).start()
        try:
            report = runner.run()
        finally:
            sampling.set()
        report["run_dir"] = str(sim.run_dir)
        report["agents_ready_s"] = round(ready_s, 2)
        if launcher is not None:
            report["hosts"] = host_figures(launcher, hosts_down, report.get("agents_down", []))
    finally:
        try:
            sim.stop()
        except KeyboardInterrupt:
            pass
        if report:
            clean = (not report["interrupted"] and not report["agents_down"]
                     and not report["calls"]["failed"] and not report["recordings"]["failed"])
            report["run_dir_removed"] = bool(not keep and clean and sim.remove_run_dir())
        if report_path and report:
            path = Path(report_path).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2))
    return report
