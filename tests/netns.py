"""Another host on this machine: a network namespace joined to ours by a veth pair, with
addresses of the test's own (10.77.N.1 here, 10.77.N.2 there; N free on this host). Needs root
(CI runs as root); where a namespace cannot be made the test fails and says why, never skips.

    with Lab() as lab:
        lab.here, lab.there          # "10.77.N.1", "10.77.N.2"
        lab.run("ip", "addr")        # a command inside the namespace
        lab.block_udp()              # drop every UDP packet entering the namespace (RTP), not TCP
"""
from __future__ import annotations

import os
import random
import subprocess

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


class Lab:
    def __init__(self):
        tag = f"{os.getpid() % 10000}{random.randrange(100):02d}"
        self.ns = f"mppsim-net-{tag}"
        self.veth_here, self.veth_there = f"mpn{tag}a", f"mpn{tag}b"      # at most 15 characters
        used = _ip("-4", "addr", check=False).stdout
        free = [n for n in range(100, 250) if f"10.77.{n}." not in used]
        self.subnet = random.choice(free)
        self.here, self.there = f"10.77.{self.subnet}.1", f"10.77.{self.subnet}.2"

    def __enter__(self) -> "Lab":
        steps = [("netns", "add", self.ns),
                 ("link", "add", self.veth_here, "type", "veth", "peer", "name", self.veth_there),
                 ("link", "set", self.veth_there, "netns", self.ns),
                 ("addr", "add", f"{self.here}/24", "dev", self.veth_here),
                 ("link", "set", self.veth_here, "up"),
                 ("-n", self.ns, "addr", "add", f"{self.there}/24", "dev", self.veth_there),
                 ("-n", self.ns, "link", "set", self.veth_there, "up"),
                 ("-n", self.ns, "link", "set", "lo", "up")]
        for step in steps:
            done = _ip(*step, check=False)
            if done.returncode != 0:
                self.__exit__(None, None, None)
                pytest.fail(f"cannot build the test's network namespace (`ip {' '.join(step)}`: "
                            f"{done.stderr.strip()}); these tests need root and `ip netns` (CI runs as root)")
        return self

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], capture_output=True, text=True,
                              check=check, timeout=20)

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.ns)

    def block_udp(self) -> None:
        """Drop UDP entering the namespace (the recorder's RTP), keep TCP (its SIP)."""
        self.run("tc", "qdisc", "add", "dev", self.veth_there, "ingress")
        self.run("tc", "filter", "add", "dev", self.veth_there, "parent", "ffff:", "protocol", "ip",
                 "u32", "match", "ip", "protocol", "17", "0xff", "action", "drop")

    def unblock_udp(self) -> None:
        self.run("tc", "qdisc", "del", "dev", self.veth_there, "ingress", check=False)

    def __exit__(self, *_exc) -> None:
        _ip("link", "del", self.veth_here, check=False)      # takes its peer with it
        _ip("netns", "del", self.ns, check=False)
