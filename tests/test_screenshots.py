"""`mppsim --screenshots DIR` (issue 24, item 7): every image README.md and docs/ show is made,
into DIR only; the committed docs/screenshots are not touched unless DIR is docs/screenshots."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mppsim.ui.screenshots import DOC_IMAGES

ROOT = Path(__file__).resolve().parents[1]


def images_the_docs_show() -> set[str]:
    names = set()
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        names |= set(re.findall(r"screenshots/([\w@.-]+\.png)", doc.read_text()))
    return names


def test_screenshots_make_every_image_the_docs_show_into_dir_and_nothing_else(tmp_path):
    shown = images_the_docs_show()
    assert shown and shown <= set(DOC_IMAGES)
    committed = {p.name: p.stat().st_mtime_ns for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "mppsim.cli", "--screenshots", "shots"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    made = {p.name for p in (tmp_path / "shots").glob("*.png")}
    assert shown <= made, f"missing: {sorted(shown - made)}"
    assert all((tmp_path / "shots" / name).stat().st_size > 5000 for name in shown)   # drawn, not blank
    # the faces in their states, the windows, player, portal, Webex App and Control Hub sets
    assert {"mpp-8865-idle.png", "mpp-8865-recording.png", "mpp-8865-muted.png", "mpp-8865-holding.png",
            "webex-recording.png", "webex-paused.png", "webex-muted.png", "webex-holding.png", "portal-list.png",
            "main-window-control-hub.png", "control-hub-provider.png"} <= made
    assert {f"saved shots/{name}" for name in made} <= set(proc.stdout.splitlines())
    after = {p.name: p.stat().st_mtime_ns for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert after == committed                     # docs/ untouched
