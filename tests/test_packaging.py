"""What installs, and the layers inside it (issue 20).

- The wheel holds one top-level name, `mppsim`, with every subpackage and the data a run needs.
- A user's project with its own `app` package runs pytest with mppsim installed beside it: the
  pytest11 entry point names `mppsim.app.pytest_plugin`, never a bare `app`.
- The import contracts of pyproject.toml hold (lint-imports), and no module imports itself back
  through others (no cycles anywhere in the package).

The full install (with dependencies) and a demo run from the wheel, in a folder outside the
checkout, is in .ci/run: it needs PySide6 and pjsua2 in a new venv, which is too slow for here.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("mppsim-*.whl")
    return whl


def test_wheel_installs_one_top_level_name_with_every_subpackage_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"mppsim"}, f"the wheel would put these into site-packages: {sorted(tops)}"
    # every package of the tree is in the wheel (recorder/rtp was missing before: the recorder died)
    packages = {str(p.parent.relative_to(SRC)) for p in SRC.rglob("__init__.py")}
    missing = {p for p in packages if f"{p}/__init__.py" not in names}
    assert not missing, f"packages left out of the wheel: {sorted(missing)}"
    examples = {Path(n).name for n in names if n.startswith("mppsim/examples/")}
    assert {"demo-org.yaml", "demo-call.yaml", "demo-tour.yaml"} <= examples
    wavs = [n for n in names if n.startswith("mppsim/assets/") and n.endswith(".wav")]
    assert len(wavs) == len(list((SRC / "mppsim" / "assets").rglob("*.wav")))
    assert "mppsim/app/openapi.yaml" in names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "mppsim = mppsim.app.pytest_plugin" in entry and "mppsim = mppsim.cli:main" in entry


def test_a_project_with_its_own_app_package_runs_pytest_with_mppsim_installed(wheel, tmp_path):
    """Before issue 20 the pytest11 entry point was `app.pytest_plugin`: a Flask or FastAPI project
    with an `app` package could not run pytest at all once mppsim was in its venv."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # pytest, and mppsim without its runtime dependencies (loading its plugin needs none of them)
    for args in (["pytest"], ["--no-deps", str(wheel)]):
        r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", *args],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    project = tmp_path / "shop"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text("NAME = 'the shop'\n")
    (project / "tests").mkdir()
    (project / "tests" / "test_shop.py").write_text(
        "from app import NAME\n\n\ndef test_own_app_package_wins():\n    assert NAME == 'the shop'\n\n\n"
        "def test_mppsim_plugin_is_loaded(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('mppsim')\n")
    r = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project,
                       capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = {p.name for p in site.iterdir()} - {"__pycache__"}
    assert "app" not in ours and "ui" not in ours and "phone" not in ours and "recording" not in ours


def test_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: layers, Qt only in ui, pjsua2 only in phone,
    the pure cores without I/O."""
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=SRC,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def import_cycles(package: str = "mppsim") -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's strongly
    connected components over grimp's graph, lazy imports inside functions included)."""
    import grimp
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: sorted(x for x in graph.find_modules_directly_imported_by(m) if x.startswith(package + "."))
             for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return groups


def test_no_import_cycles():
    assert import_cycles() == []
