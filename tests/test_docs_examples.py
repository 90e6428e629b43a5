"""Every example in README.md and docs/*.md that promises an output is run and its output checked
(issue 12, build 6). The convention is in tests/docs_examples.py and docs/decisions.md."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mppsim.app.http_server import ApiServer
from mppsim.app.simulator import Simulator

from docs_examples import (SHELL_LANGS, Example, HARNESS, fenced_blocks, find_examples, next_block,
                           output_matches, promised_prints, shell_commands)

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [ex for path in DOC_FILES for ex in find_examples(path)]
DEFAULT_ORG = "examples/demo-org.yaml"
LISTEN_XFAIL = "listen waits: issue 10 (branch issue-phones)"


def org_of(path: Path) -> str:
    return next((ex.options["org"] for ex in find_examples(path) if "org" in ex.options), DEFAULT_ORG)


def uses_server(ex: Example) -> bool:
    return "pytest" not in ex.options and ("robot" in ex.options or ex.lang in SHELL_LANGS)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A Simulator + ApiServer per documentation file, started on first use. The blocks of a file
    build on each other (a PUT in one block is seen by the next), so each block gets a server
    on which exactly the blocks before it have run: those a subset left out (`-k`, one test) are
    run first, and a block that comes after a later one (a shuffled order) gets a fresh server."""
    servers: dict[Path, dict] = {}

    def start(path: Path) -> dict:
        sim = Simulator(ROOT / org_of(path), run_dir=tmp_path_factory.mktemp(f"docs-{path.stem}"))
        sim.start()
        return {"sim": sim, "server": ApiServer(sim).start(), "last": 0}

    def stop(state: dict) -> None:
        state["server"].stop()
        state["sim"].stop()

    def server_for(ex: Example) -> tuple[Simulator, ApiServer]:
        state = servers.get(ex.path)
        if state is None or state["last"] >= ex.line:
            if state is not None:
                stop(state)
            state = servers[ex.path] = start(ex.path)
        for earlier in EXAMPLES:
            if earlier.path == ex.path and state["last"] < earlier.line < ex.line and uses_server(earlier):
                state["last"] = earlier.line
                if "robot" in earlier.options:
                    run_robot(earlier, tmp_path_factory.mktemp("docs-earlier"), state["sim"], state["server"])
                else:
                    run_shell(earlier, state["sim"], state["server"])
        state["last"] = ex.line
        return state["sim"], state["server"]
    yield server_for
    for state in servers.values():
        stop(state)


def test_examples_exist():
    """The convention is in use: README's Python example, the pytest plugin's example, curl examples."""
    kinds = {(ex.path.name, ex.lang, "pytest" in ex.options) for ex in EXAMPLES}
    assert ("README.md", "python", False) in kinds
    assert ("README.md", "python", True) in kinds
    assert any(ex.lang in SHELL_LANGS for ex in EXAMPLES)


def run_python(ex: Example, tmp_path: Path):
    script = tmp_path / f"{ex.path.stem}_{ex.line}.py"
    script.write_text(ex.code)
    printed_file = tmp_path / "printed.json"
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    r = subprocess.run([sys.executable, str(harness), str(script), str(printed_file)], cwd=ROOT,
                       capture_output=True, text=True, timeout=180,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, f"{ex.id}: the example raised:\n{r.stderr[-3000:]}"
    printed = {line: text for line, text in json.loads(printed_file.read_text())}
    promised = promised_prints(ex.code)
    assert promised, f"{ex.id}: a python example marked doctest promises output in `print(...)  # output` comments"
    for line, want in promised.items():
        assert line in printed, f"{ex.id}: line {line} printed nothing (promised {want})"
        got = printed[line]
        if not output_matches(want, got):
            if "listen(" in ex.code.splitlines()[line - 1] and "'freq_hz': None" in got:
                pytest.xfail(f"{LISTEN_XFAIL}: {ex.id} line {line} printed {got}")
            pytest.fail(f"{ex.id} line {line}:\n  promised: {want}\n  printed:  {got}")


def run_pytest_example(ex: Example, tmp_path: Path):
    test_file = tmp_path / f"test_{ex.path.stem.lower()}_example.py"
    test_file.write_text(ex.code)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}",
                        str(test_file)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{ex.id}: the example test did not pass:\n{r.stdout[-3000:]}"
    assert re.search(r"\b[1-9]\d* passed\b", r.stdout), r.stdout[-2000:]


def run_shell(ex: Example, sim: Simulator, server: ApiServer):
    commands = shell_commands(ex.code)
    assert commands, f"{ex.id}: a shell example marked doctest has `$ ` command lines"
    marks = [f"@@mppsim-doctest-{i}@@" for i in range(len(commands))]
    script = "exec 2>&1\n" + "".join(f"echo '{m}'\n{cmd}\n" for m, (cmd, _) in zip(marks, commands))
    env = {**os.environ, "MPPSIM_API": server.url, "MPPSIM_TOKEN": server.token,
           "MPPSIM_RUN_DIR": str(sim.run_dir), "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    outputs = re.split("|".join(re.escape(m) + r"\n" for m in marks), r.stdout)[1:]
    assert len(outputs) == len(commands), f"{ex.id}: the block stopped early:\n{r.stdout[-2000:]}"
    for (cmd, want), got in zip(commands, outputs):
        assert output_matches(want, got), f"{ex.id}: $ {cmd}\n--- promised:\n{want}\n--- printed:\n{got}"


def run_robot(ex: Example, tmp_path: Path, sim: Simulator, server: ApiServer):
    suite = tmp_path / f"{ex.path.stem}_{ex.line}.robot"
    suite.write_text(ex.code)
    env = {**os.environ, "MPPSIM_API": server.url, "MPPSIM_TOKEN": server.token}
    r = subprocess.run([sys.executable, "-m", "robot", "--output", "NONE", "--log", "NONE", "--report", "NONE",
                        "--console", "verbose", str(suite)], cwd=ROOT, capture_output=True, text=True,
                       timeout=180, env=env)
    assert r.returncode == 0, f"{ex.id}: the Robot Framework suite failed:\n{r.stdout[-3000:]}{r.stderr[-1000:]}"
    assert re.search(r"\b[1-9]\d* tests?, [1-9]\d* passed, 0 failed", r.stdout), r.stdout[-2000:]


def run_scenario(ex: Example, tmp_path: Path):
    """Saved beside `examples/` as the doc says, `mppsim run` passes (from that folder)."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "my-test.yaml").write_text(ex.code)
    r = subprocess.run([sys.executable, "-m", "mppsim.cli", "run", "my-test.yaml"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"{ex.id}: mppsim run my-test.yaml:\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
    assert re.search(r"all \d+ steps passed", r.stdout), r.stdout[-2000:]


def run_scenario_steps(ex: Example):
    from mppsim.app.scenario import parse_scenario
    import yaml
    steps = yaml.safe_load(ex.code)
    assert isinstance(steps, list) and steps, f"{ex.id}: a list of steps"
    parse_scenario({"org": str(ROOT / DEFAULT_ORG), "steps": steps}, ROOT / "examples" / "doc.yaml")


def run_org_file(ex: Example, tmp_path: Path):
    """The org file loads; with output=next it is refused with the next block's message."""
    from mppsim.app.org import OrgError, load_org
    name = ex.options.get("file", "org.yaml")
    (tmp_path / name).write_text(ex.code)
    cwd = os.getcwd()
    os.chdir(tmp_path)              # the message names the file as given
    try:
        if ex.options.get("output") != "next":
            load_org(name)
            return
        with pytest.raises(OrgError) as err:
            load_org(name)
    finally:
        os.chdir(cwd)
    want = next_block(ex.path, ex.line + len(ex.code.splitlines()))   # after this block's closing fence
    assert output_matches(want, str(err.value)), f"{ex.id}:\n--- promised:\n{want}\n--- printed:\n{err.value}"


def test_every_block_runs_or_says_why():
    """Issue 24: each fenced block of README.md and docs/ is run by this test (doctest), is a
    SIPREC message test_protocol_examples.py checks, is the output of the block before it, or
    says why it is not run here (`<!-- not-run: REASON -->`)."""
    unmarked, no_reason = [], []
    for path in DOC_FILES:
        for line, _lang, kind, rest in fenced_blocks(path):
            if kind is None:
                unmarked.append(f"{path.relative_to(ROOT)}:{line}")
            elif kind == "not-run" and len(rest) < 10:
                no_reason.append(f"{path.relative_to(ROOT)}:{line}")
    assert unmarked == [], "blocks neither run nor saying why not: add <!-- doctest --> or <!-- not-run: REASON -->"
    assert no_reason == [], "<!-- not-run: REASON --> needs its reason"


@pytest.mark.parametrize("ex", EXAMPLES, ids=[ex.id for ex in EXAMPLES])
def test_doc_example(ex: Example, tmp_path, live):
    if "scenario" in ex.options:
        run_scenario(ex, tmp_path)
    elif "scenario-steps" in ex.options:
        run_scenario_steps(ex)
    elif "org-file" in ex.options:
        run_org_file(ex, tmp_path)
    elif "pytest" in ex.options:
        run_pytest_example(ex, tmp_path)
    elif "robot" in ex.options:
        run_robot(ex, tmp_path, *live(ex))
    elif ex.lang in ("python", "py"):
        run_python(ex, tmp_path)
    elif ex.lang in SHELL_LANGS:
        run_shell(ex, *live(ex))
    else:
        pytest.fail(f"{ex.id}: no runner for ```{ex.lang} blocks; use python, console or a pytest block")


# ----- the checker itself (pure logic) ----------------------------------------------------------
@pytest.mark.parametrize("want, got, ok", [
    ("{'freq_hz': 1000.0, 'rms_dbfs': -12.3, ...}",
     "{'seconds': 1.0, 'active_seconds': 1.0, 'rms_dbfs': -12.3, 'freq_hz': 1000.0}", True),
    ("{'freq_hz': 1000.0, 'rms_dbfs': -12.3, ...}", "{'seconds': 0.0, 'rms_dbfs': None, 'freq_hz': None}", False),
    ("{'freq_hz': 1000.0}", "{'freq_hz': 1000.0, 'x': 1}", False),                  # no ... : exact keys
    ('{\n  "id": "alice",\n  ...\n}', '{"id": "alice", "kind": "user"}', True),
    ('{"devices": [{"id": "alice", ...}, ...]}', '{"devices": [{"id": "alice", "n": 1}, {"id": "bob"}]}', True),
    ('{"devices": [{"id": "bob", ...}, ...]}', '{"devices": [{"id": "alice"}, {"id": "bob"}]}', False),
    ('{"trackingId": "MPPSIM_...", "message": ...}', '{"trackingId": "MPPSIM_1-2", "message": "x"}', True),
    ("listening on http://...:.../v1", "listening on http://127.0.0.1:4242/v1", True),
    ("HTTP/1.1 401 Unauthorized\n...", "HTTP/1.1 401 Unauthorized\nContent-Type: x\n", True),
    ("200", "404", False),
    ("...", "anything at all", True),
    ("true", "false", False),
])
def test_output_matching(want, got, ok):
    assert output_matches(want, got) is ok


def test_finding_examples(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n<!-- doctest org=examples/o.yaml -->\n```console\n$ echo hi\nhi\n```\n"
                   "```python\nprint(1)  # 2\n```\n<!-- doctest -->\n\n```python\nprint(1)  # 1\n```\n")
    found = find_examples(doc)
    assert [(e.lang, e.line, e.options) for e in found] == [("console", 4, {"org": "examples/o.yaml"}),
                                                             ("python", 13, {})]
    assert shell_commands(found[0].code) == [("echo hi", "hi")]
    assert promised_prints(found[1].code) == {1: "1"}
