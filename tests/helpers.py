"""What the test modules share besides fixtures (those are in conftest.py): the demo org, each
party's tone, and the few steps every call test takes. Imported as `from tests.helpers import ...`
(like `tests.peers`), never from conftest: pytest owns conftest's import."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import yaml

from mppsim.app.org import parse_org
from mppsim.app.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
DEMO_ORG = ROOT / "examples" / "demo-org.yaml"
TONES = {"alice": 1000, "bob": 1500, "carol": 2000, "dave": 700,
         "+14155550100": 900, "+48221234567": 1200}


def demo_org(**organisation):
    """The demo org, with organisation-level fields overridden (e.g. ring_timeout=3)."""
    data = yaml.safe_load(DEMO_ORG.read_text())
    data = copy.deepcopy(data)
    data["organisation"].update(organisation)
    return parse_org(data, DEMO_ORG)


def hang_up_everything(sim: Simulator) -> None:
    for ev in list(sim.calls.values()):
        if ev["state"] != "ended":
            try:
                sim.orch.request(ev["agent"], "hangup", call=ev["call"])
            except Exception:
                pass  # already gone
    sim.wait_until(lambda: all(ev["state"] == "ended" for ev in sim.calls.values()), 5,
                   "every call to end")
    # pjlib frees a closed socket's ioqueue slot 500 ms later (64 slots per agent): let the
    # next test start with them free, as a person would not redial within the same second
    time.sleep(0.5)


def connect(sim: Simulator, caller: str, callee: str, number: str) -> None:
    """caller dials number, callee answers; returns once both sides are connected."""
    sim.dial(caller, number)
    sim.wait_for(callee, "ringing", 3)
    sim.answer(callee)
    sim.wait_for(caller, "connected", 3)
    sim.wait_for(callee, "connected", 3)


def talk_for(sim: Simulator, caller: str, callee: str, number: str, seconds: float) -> float:
    """caller calls callee, they talk `seconds`, the caller hangs up; returns the talk time as
    measured here (connect to hang-up), once the callee's side has ended too."""
    connect(sim, caller, callee, number)
    start = time.monotonic()
    time.sleep(seconds)
    sim.hangup(caller)
    talk = time.monotonic() - start
    sim.wait_for(callee, "ended", 3)
    return talk


def finished(sim: Simulator, who: str, n: int, timeout: float = 6.0) -> list[dict]:
    """`who`'s finished recordings, once there are at least n (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = [r for r in sim.recordings(who) if r["state"] != "recording"]
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)
