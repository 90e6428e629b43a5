"""Recorded calls across agent hosts: a Ray cluster built on this machine from network namespaces.

    sudo .venv/bin/python bench/cluster.py --hosts 2 --calls 60 --seconds 10

Needs root (ip netns), Ray (`pip install mppsim[cluster]`) and the package installed in this
interpreter. It makes one network namespace per agent host and one for the recorder, a bridge
with addresses of its own (10.231.K.0/24), starts Ray's head beside the app (on the bridge's
address) and a Ray worker node in each agent host (each in its own PID namespace, so that
stopping one stops only it), `mppsim-recorder` in the recorder's namespace, then N calls
recorded Always: call i between users 2i and 2i+1, even calls inside one host, odd calls between
two hosts. Everything it made is removed at the end, also on failure or Ctrl-C.

Last line:
cluster: H agent hosts, N calls, engine ray; recordings R/T; right tones K/T; dropout frames D; worst shortfall S ms; CPU C cores
with the engine's own overhead (CPU, memory) printed beside mppsim's above it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scale import dropouts, iso_seconds, tone_matches, tone_of, tree  # noqa: E402

from mppsim.app.cluster import HostSpec, RayLauncher  # noqa: E402
from mppsim.app.load import load_org  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402
from mppsim.recorder.wavfile import read  # noqa: E402

RATE = 8000
TICKS = os.sysconf("SC_CLK_TCK")
PREFIX = "mppc"


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / TICKS
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def is_agent(pid: int) -> bool:
    try:
        return b"mppsim.phone." in Path(f"/proc/{pid}/cmdline").read_bytes()   # agents, their zygote
    except OSError:
        return False


class Testbed:
    """The namespaces, the bridge, Ray's nodes and the recorder; `close()` removes them all."""

    def __init__(self, hosts: int, workdir: Path):
        self.k = random.randint(10, 250)
        self.net = f"10.231.{self.k}"
        self.tag = f"{PREFIX}{self.k}"
        self.bridge = f"{self.tag}br"
        self.app_ip = f"{self.net}.1"
        self.hosts = [HostSpec(f"h{i + 1}", f"{self.net}.{11 + i}", 10_000) for i in range(hosts)]
        self.rec_ip = f"{self.net}.200"
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.ray_port = free_port()
        self.ray_nodes: dict[str, subprocess.Popen] = {}
        self.recorder: subprocess.Popen | None = None
        self.store = workdir / "recorder"
        # Ray's sockets live under its temp folder: AF_UNIX paths have 107 bytes, so a short one
        self.raydir = Path(tempfile.mkdtemp(prefix="mppc", dir="/tmp"))

    # ----- network --------------------------------------------------------------------------
    def up(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.app_ip}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for name, ip in [(h.name, h.address) for h in self.hosts] + [("rec", self.rec_ip)]:
            self.namespace(name, ip)

    def namespace(self, name: str, ip: str) -> None:
        ns, veth = f"{self.tag}-{name}", f"{self.tag}{name}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
        sh("ip", "link", "set", veth, "master", self.bridge)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "link", "set", f"{veth}p", "netns", ns)
        sh("ip", "-n", ns, "link", "set", f"{veth}p", "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    # ----- Ray ----------------------------------------------------------------------------------
    def ray_common(self, ip: str) -> list[str]:
        return ["--block", f"--node-ip-address={ip}", "--object-store-memory=100000000",
                "--disable-usage-stats", "--num-gpus=0"]

    def start_ray(self) -> float:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        t0 = time.monotonic()
        head = ["unshare", "--pid", "--fork", "--mount-proc", ray_bin(), "start", "--head",
                f"--port={self.ray_port}", "--include-dashboard=false", "--num-cpus=0",
                f"--temp-dir={self.raydir}/head",
                *self.ray_common(self.app_ip)]
        self.ray_nodes["head"] = subprocess.Popen(head, env=env, stdout=subprocess.DEVNULL,
                                                  stderr=open(self.workdir / "ray-head.log", "wb"),
                                                  start_new_session=True)
        self.wait_port(self.app_ip, self.ray_port, 60, self.ray_nodes["head"])
        for h in self.hosts:
            # A worker node writes its sockets and logs into the head's session folder (the same
            # path on one machine): each host sees its own folder there, in its mount namespace,
            # as it would on a machine of its own.
            own = self.raydir / h.name
            own.mkdir()
            start = [ray_bin(), "start", f"--address={self.app_ip}:{self.ray_port}", "--num-cpus=1",
                     f"--resources={json.dumps({'mppsim-' + h.name: 1})}", *self.ray_common(h.address)]
            script = (f"mount --bind {own} {self.raydir}/head && exec "
                      + " ".join(f"'{a}'" for a in start))
            cmd = ["ip", "netns", "exec", self.ns(h.name), "unshare", "--pid", "--fork", "--mount-proc",
                   "sh", "-c", script]
            self.ray_nodes[h.name] = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                                      stderr=open(self.workdir / f"ray-{h.name}.log", "wb"),
                                                      start_new_session=True)
        import ray
        ray.init(address=f"{self.app_ip}:{self.ray_port}", _node_ip_address=self.app_ip,
                 log_to_driver=False, logging_level="ERROR")
        deadline = time.monotonic() + 90
        while sum(1 for n in ray.nodes() if n.get("Alive")) < len(self.hosts) + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray nodes not up after 90 s; see {self.workdir}/ray-*.log")
            time.sleep(0.2)
        return time.monotonic() - t0

    @staticmethod
    def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")

    def engine_pids(self) -> list[int]:
        """Ray's processes (every node's tree less the agents in it)."""
        return [p for node in self.ray_nodes.values() for p in tree(node.pid) if not is_agent(p)]

    def agent_pids(self) -> list[int]:
        return [p for node in self.ray_nodes.values() for p in tree(node.pid) if is_agent(p)]

    # ----- the recorder -----------------------------------------------------------------------
    def start_recorder(self) -> str:
        self.store.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.recorder = subprocess.Popen(
            ["ip", "netns", "exec", self.ns("rec"), sys.executable, "-m", "mppsim.recorder.cli",
             "--listen", f"{self.rec_ip}:5070", "--store", str(self.store)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        log = open(self.workdir / "recorder.log", "w")
        for line in self.recorder.stdout:
            log.write(line)
            if line.startswith("READY "):
                break
        else:
            raise RuntimeError("the recorder did not start")

        def drain():          # a full pipe would stop the recorder
            for line in self.recorder.stdout:
                log.write(line)
            log.close()
        threading.Thread(target=drain, daemon=True).start()
        return f"sip:srs@{self.rec_ip}:5070;transport=tcp"

    def host_init(self, name: str) -> int:
        """PID 1 of a host's PID namespace: killing it ends everything on that host."""
        node = self.ray_nodes[name]
        return next(p for p in tree(node.pid) if p != node.pid)

    def leftovers(self) -> list[str]:
        left = [ns for ns in sh("ip", "netns", "list").stdout.split() if ns.startswith(self.tag + "-")]
        if sh("ip", "link", "show", self.bridge, check=False).returncode == 0:
            left.append(self.bridge)
        return left + [str(n.pid) for n in self.ray_nodes.values() if n.poll() is None]

    # ----- clean-up -----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            import ray
            if ray.is_initialized():
                ray.shutdown()
        except ImportError:
            pass
        if self.recorder is not None and self.recorder.poll() is None:
            self.recorder.terminate()
            try:
                self.recorder.wait(10)
            except subprocess.TimeoutExpired:
                self.recorder.kill()
        for node in self.ray_nodes.values():
            if node.poll() is None:
                # the unshare'd child is PID 1 of its namespace: killing it ends the node's tree
                for p in tree(node.pid)[1:2]:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                node.kill()
            node.wait()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.raydir, ignore_errors=True)


def run(hosts: int, calls: int, seconds: float, keep: bool = False) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mppsim-cluster-"))
    os.chmod(workdir, 0o755)
    bed = Testbed(hosts, workdir)
    out: dict = {"hosts": hosts, "calls": calls}
    try:
        bed.up()
        out["engine_start_s"] = bed.start_ray()
        target = bed.start_recorder()
        org = load_org(2 * calls, 0, record="Always")
        ids = [u.id for u in org.users]
        # call i: users 2i and 2i+1; even calls on one host, odd calls across two
        placement = {}
        for i in range(calls):
            a = bed.hosts[(i // 2) % hosts].name
            b = a if i % 2 == 0 or hosts == 1 else bed.hosts[(i // 2 + 1) % hosts].name
            placement[ids[2 * i]], placement[ids[2 * i + 1]] = a, b
        launcher = RayLauncher(f"{bed.app_ip}:{bed.ray_port}", bed.hosts, workdir=str(workdir / "hosts"),
                               placement=placement)
        sim = Simulator(org, run_dir=workdir / "app", front_door_port=None, launcher=launcher,
                        control_host=bed.app_ip, recorder_target=target, recorder_store=bed.store,
                        rtp_thread=True)     # as `mppsim load`
        t0 = time.monotonic()
        sim.start()
        out["agents_ready_s"] = time.monotonic() - t0
        try:
            for i, uid in enumerate(ids):
                sim.play(uid, tone=tone_of(i))
                sim.set_auto_answer(uid, 0.0)
            engine0, agents0 = cpu_of(bed.engine_pids()), cpu_of(bed.agent_pids())
            rec0, app0 = cpu_of([bed.recorder.pid]), time.process_time()
            w0 = time.monotonic()
            for i in range(calls):
                sim.dial(ids[2 * i], org.users[2 * i + 1].extension)
            sim.wait_until(lambda: sum(1 for c in sim.calls.values() if c["state"] == "connected") >= 2 * calls,
                           60, f"{calls} calls connected")
            time.sleep(seconds)
            for i in range(calls):
                sim.hangup(ids[2 * i])
            sim.wait_until(lambda: all(c["state"] == "ended" for c in sim.calls.values()), 30, "calls ended")
            wall = time.monotonic() - w0
            out["engine_cpu"] = (cpu_of(bed.engine_pids()) - engine0) / wall
            out["engine_rss_mib"] = rss_mib(bed.engine_pids())
            out["agents_cpu"] = (cpu_of(bed.agent_pids()) - agents0) / wall
            out["recorder_cpu"] = (cpu_of([bed.recorder.pid]) - rec0) / wall
            out["app_cpu"] = (time.process_time() - app0) / wall
            out["agents_rss_mib"] = rss_mib(bed.agent_pids())
            out["per_host"] = {h: sum(1 for a in placement.values() if a == h) for h in (x.name for x in bed.hosts)}
            log = sim.call_log()
            talk_of = {}
            for c in log:
                for party in (c["from"], c["to"]):
                    talk_of[party["number"]] = c["talk_time"] or 0.0
            deadline = time.monotonic() + 30
            recs: list = []
            while time.monotonic() < deadline:
                recs = [r for r in sim.recordings() if r["state"] != "recording"]
                if len(recs) >= 2 * calls:
                    break
                time.sleep(0.5)
            index = {u.extension: i for i, u in enumerate(org.users)}
            right = drop = 0
            worst = 0.0
            for r in recs:
                owner = r["owner"].split("@")[0].split(":")[1]
                i = index[owner]
                other = i + 1 if i % 2 == 0 else i - 1
                _rate, audio = read(r["audio_path"])
                own_ch = next((0 if p["channel"] == "left" else 1 for p in r["participants"] or []
                               if f"sip:{owner}@" in p.get("aor", "")), 0)
                own, far = audio[:, own_ch], audio[:, 1 - own_ch]
                right += tone_matches(own, tone_of(i)) and tone_matches(far, tone_of(other))
                drop += dropouts(own) + dropouts(far)
                worst = max(worst, talk_of.get(owner, 0.0) - audio.shape[0] / RATE)
                if os.environ.get("CLUSTER_DEBUG"):
                    call = next(c for c in log if owner in (c["from"]["number"], c["to"]["number"]))
                    print(f"    {owner}: talk {talk_of.get(owner, 0):.3f} s, recorded {audio.shape[0] / RATE:.3f} s, "
                          f"recording began {iso_seconds(r['started_at']) - call['start']:.3f} s after the "
                          f"call's start, call end - last leg connect {call['talk_time']}", file=sys.stderr)
            out.update(recordings=len(recs), expected=2 * calls, right_tones=right, dropouts=drop,
                       shortfall_ms=worst * 1000,
                       failed=sum(1 for c in log if not c["answered"]))
        finally:
            sim.stop()
    finally:
        if keep:
            print(f"kept: {workdir}", file=sys.stderr)
        bed.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=2)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0, help="talk time of every call")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs) for a look")
    args = ap.parse_args()
    if os.geteuid() != 0:
        ap.error("needs root: it makes network namespaces")
    r = run(args.hosts, args.calls, args.seconds, args.keep)
    mppsim_cpu = r["agents_cpu"] + r["recorder_cpu"] + r["app_cpu"]
    print(f"engine ray: {r['engine_start_s']:.1f} s to start {args.hosts} worker nodes + head; "
          f"CPU {r['engine_cpu']:.2f} cores, RSS {r['engine_rss_mib']:.0f} MiB (its processes, all nodes)")
    print(f"mppsim: agents {r['agents_cpu']:.2f} cores ({r['agents_rss_mib']:.0f} MiB), recorder "
          f"{r['recorder_cpu']:.2f}, app {r['app_cpu']:.2f}; agents ready {r['agents_ready_s']:.1f} s; "
          f"agents per host {r['per_host']}; calls not answered {r['failed']}")
    print(f"cluster: {args.hosts} agent hosts, {args.calls} calls, engine ray; recordings "
          f"{r['recordings']}/{r['expected']}; right tones {r['right_tones']}/{r['expected']}; "
          f"dropout frames {r['dropouts']}; worst shortfall {r['shortfall_ms']:.0f} ms; "
          f"CPU {mppsim_cpu + r['engine_cpu']:.2f} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
