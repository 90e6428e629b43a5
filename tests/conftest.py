"""Shared fixtures: a real simulator (agent processes, SIP and RTP on loopback) per test module.
Fixtures and hooks only; what tests import is in tests/helpers.py."""
from __future__ import annotations

import os
import re

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from mppsim.app.simulator import Simulator  # noqa: E402
from tests.helpers import ROOT, TONES, demo_org, hang_up_everything  # noqa: E402


@pytest.fixture(scope="module")
def sim_org() -> dict:
    """What `sim` changes in the demo org: no voicemail (unanswered calls end), a 3 s ring
    timeout. A module that needs other values overrides this fixture (test_transfer.py)."""
    return {"ring_timeout": 3, "voicemail": False}


@pytest.fixture(scope="module")
def sim(tmp_path_factory, sim_org):
    """The demo org (changed by `sim_org`) running, one per test module, each party sending its
    own tone (TONES)."""
    s = Simulator(demo_org(**sim_org), run_dir=tmp_path_factory.mktemp("sim"))
    s.start()
    for who, freq in TONES.items():
        s.play(who, tone=freq)
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
