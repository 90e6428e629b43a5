"""mppsim's pytest plugin (entry point `pytest11`, active wherever mppsim is installed).

    @pytest.mark.mppsim_org("examples/demo-org.yaml")
    def test_alice_calls_bob(mppsim):
        mppsim.dial("alice", "1002")
        mppsim.wait_for("bob", "ringing")

Fixtures:
  mppsim      a started Simulator for the org of the test's `@pytest.mark.mppsim_org(path)` marker,
              else of the `--mppsim-org PATH` option (or the `mppsim_org` ini value); stopped after
              the test. Its run folder (agent logs with every SIP message, captured audio, the
              recorder's store) is deleted when the test passes and kept when it fails, and the
              failure report names it (section "mppsim").
  mppsim_api  the HTTP APIs on that simulator: `.url` ("http://127.0.0.1:PORT"), `.token`,
              `.headers` ({"Authorization": "Bearer ..."}), `.webex` (url + "/v1") and
              `.control` (url + "/mppsim/v1").

A marker's path is relative to the test file's folder when it exists there, else to pytest's
rootdir; the option's path is relative to the current directory.
Nothing here is imported before a test asks for a fixture: the plugin costs nothing elsewhere.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SECTION = "mppsim"


def pytest_addoption(parser):
    group = parser.getgroup("mppsim")
    group.addoption("--mppsim-org", metavar="PATH", default=None,
                    help="org file for the mppsim fixture (a test's mppsim_org marker wins)")
    group.addoption("--mppsim-keep-runs", action="store_true", default=False,
                    help="keep the mppsim run folder of passing tests too")
    parser.addini("mppsim_org", "org file for the mppsim fixture when neither marker nor option gives one")


def pytest_configure(config):
    config.addinivalue_line("markers", "mppsim_org(path): org file the mppsim fixture starts "
                                       "(relative to the test file, else to the rootdir)")


def org_for(request) -> Path:
    marker = request.node.get_closest_marker("mppsim_org")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], (str, Path)):
            raise pytest.UsageError("mppsim_org marker: give one org file path, e.g. "
                                    "@pytest.mark.mppsim_org('examples/demo-org.yaml')")
        raw = Path(marker.args[0])
        candidates = [raw] if raw.is_absolute() else [Path(request.node.path).parent / raw,
                                                       Path(request.config.rootpath) / raw]
        where = "mppsim_org marker"
    else:
        value = request.config.getoption("--mppsim-org") or request.config.getini("mppsim_org")
        if not value:
            raise pytest.UsageError("mppsim fixture: no org file; give --mppsim-org PATH, "
                                    "@pytest.mark.mppsim_org(path) or the mppsim_org ini option")
        candidates = [Path(value)] if Path(value).is_absolute() else [Path.cwd() / value,
                                                                       Path(request.config.rootpath) / value]
        where = "--mppsim-org"
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise pytest.UsageError(f"{where}: {raw if marker is not None else value} does not exist "
                            f"(looked at {', '.join(str(c) for c in candidates)})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"_mppsim_rep_{rep.when}", rep)
    run_dir = getattr(item, "_mppsim_run_dir", None)
    if run_dir is not None and rep.failed:
        rep.sections.append((SECTION, f"mppsim run folder kept: {run_dir}\n"
                                      f"(agent logs with every SIP message: {run_dir}/logs; recordings: "
                                      f"{run_dir}/recorder)"))
        rep.user_properties.append(("mppsim_run_dir", str(run_dir)))


@pytest.fixture
def mppsim(request):
    """A started Simulator (mppsim.app.simulator.Simulator) for the test's org; stopped afterwards."""
    from mppsim.app.simulator import Simulator
    org = org_for(request)
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name[:40])
    run_dir = Path(tempfile.mkdtemp(prefix=f"mppsim-run-{name}-"))
    request.node._mppsim_run_dir = run_dir
    sim = Simulator(org, run_dir=run_dir)
    try:
        sim.start()
    except Exception:
        sim.stop()
        raise
    try:
        yield sim
    finally:
        sim.stop()
        failed = any(getattr(getattr(request.node, f"_mppsim_rep_{w}", None), "failed", False)
                     for w in ("setup", "call"))
        if not failed and not request.config.getoption("--mppsim-keep-runs"):
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class MppsimApi:
    url: str                      # "http://127.0.0.1:PORT"
    token: str
    server: object = field(repr=False, default=None)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def webex(self) -> str:
        return f"{self.url}/v1"

    @property
    def control(self) -> str:
        return f"{self.url}/mppsim/v1"


@pytest.fixture
def mppsim_api(mppsim):
    """The HTTP APIs (Webex /v1 and /mppsim/v1) on the `mppsim` simulator: url, token, headers."""
    from mppsim.app.http_server import ApiServer
    server = ApiServer(mppsim).start()
    try:
        yield MppsimApi(server.url, server.token, server)
    finally:
        server.stop()
