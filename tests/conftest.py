"""Shared fixtures: a real simulator (agent processes, SIP and RTP on loopback) per test module."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.org import parse_org  # noqa: E402
from app.simulator import Simulator  # noqa: E402

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


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The demo org running, each party sending its own tone (TONES)."""
    s = Simulator(demo_org(ring_timeout=3), run_dir=tmp_path_factory.mktemp("run"))
    s.start()
    for who, freq in TONES.items():
        s.play(who, tone=freq)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _clean_calls(request):
    """Tests using `sim` leave no call behind for the next test."""
    yield
    if "sim" in request.fixturenames:
        hang_up_everything(request.getfixturevalue("sim"))
