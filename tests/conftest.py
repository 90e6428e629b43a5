"""Shared fixtures: a real simulator (agent processes, SIP and RTP on loopback) per test module."""
from __future__ import annotations

import copy
import os
import re
import time
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from mppsim.app.org import parse_org  # noqa: E402
from mppsim.app.simulator import Simulator  # noqa: E402

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


def finished(sim: Simulator, who: str, n: int, timeout: float = 6.0) -> list[dict]:
    """`who`'s finished recordings, once there are at least n (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = [r for r in sim.recordings(who) if r["state"] != "recording"]
        if len(recs) >= n or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def toned_sim(tmp_path_factory, name: str = "run", ring_timeout: float = 3):
    """A started Simulator of the demo org (no voicemail: unanswered calls end), each party
    sending its own tone (TONES). Module fixtures that need another ring timeout use it too."""
    s = Simulator(demo_org(ring_timeout=ring_timeout, voicemail=False), run_dir=tmp_path_factory.mktemp(name))
    s.start()
    for who, freq in TONES.items():
        s.play(who, tone=freq)
    return s


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The demo org running (no voicemail: unanswered calls end), each party sending its own tone (TONES)."""
    s = toned_sim(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _own_qsettings(tmp_path_factory):
    """The window remembers its size and layout in QSettings: each test keeps them in a fresh
    temporary folder, never in the user's own settings (and no test sees another's)."""
    try:
        from PySide6.QtCore import QSettings
    except ImportError:
        yield
        return
    folder = str(tmp_path_factory.mktemp("qsettings"))
    for scope in (QSettings.UserScope, QSettings.SystemScope):
        QSettings.setPath(QSettings.IniFormat, scope, folder)
        QSettings.setPath(QSettings.NativeFormat, scope, folder)
    yield


@pytest.fixture(autouse=True)
def _clean_calls(request):
    """Tests using `sim` leave no call behind for the next test."""
    yield
    if "sim" in request.fixturenames:
        hang_up_everything(request.getfixturevalue("sim"))


# ----- spec coverage: "spec rules covered: N/N" at the end of the run -------------------------
SPEC = ROOT / "docs" / "recording-rules.md"
RULE = re.compile(r"\bR-([A-Z]{2,4})-(\d+)\b")
RULE_IN_NAME = re.compile(r"(?:^|_)r_([a-z]{2,4})_(\d+)(?=_|$|\[)")
_covered: set[str] = set()


def rules_of_item(item) -> set[str]:
    """Rule IDs a test cites: in its name (test_r_usr_2_...) or its docstring (R-USR-2)."""
    ids = {f"R-{a.upper()}-{n}" for a, n in RULE_IN_NAME.findall(item.originalname or item.name)}
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    ids |= {f"R-{a}-{n}" for a, n in RULE.findall(doc)}
    return ids


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _covered.update(getattr(report, "spec_rules", ()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().spec_rules = sorted(rules_of_item(item))


def pytest_terminal_summary(terminalreporter):
    if not SPEC.is_file() or not _covered:   # a run of tests that cite no rule says nothing
        return
    rules = sorted({f"R-{a}-{n}" for a, n in RULE.findall(SPEC.read_text())})
    missing = [r for r in rules if r not in _covered]
    terminalreporter.write_line(f"spec rules covered: {len(rules) - len(missing)}/{len(rules)}"
                                + (f" (not yet: {', '.join(missing)})" if missing else ""))
