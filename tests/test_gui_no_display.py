"""`mppsim gui` where it cannot open a window says why and what to do (issue 24, item 4), instead
of Qt's abort (exit 134) blaming libxcb-cursor0."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mppsim import cli


def gui(env_changes: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-m", "mppsim.cli", "gui"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_no_display_says_what_to_use_instead(tmp_path):
    proc = gui({}, tmp_path)
    assert proc.returncode == 2
    assert "mppsim gui: no display (DISPLAY and WAYLAND_DISPLAY are not set)" in proc.stderr
    assert "`mppsim run FILE`" in proc.stderr and "`mppsim api`" in proc.stderr
    assert "xvfb-run -a mppsim gui" in proc.stderr


def test_a_display_nobody_answers_is_named(tmp_path):
    proc = gui({"DISPLAY": ":97"}, tmp_path)
    assert proc.returncode == 2 and "no X server answers at DISPLAY=:97" in proc.stderr


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")
def test_a_live_x_server_with_the_xcb_libraries_is_fine(monkeypatch):
    xvfb = subprocess.Popen(["Xvfb", ":96", "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
        monkeypatch.setenv("DISPLAY", ":96")
        deadline = time.monotonic() + 10
        while not cli.x_display_reachable(":96") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cli.gui_problem() is None      # scripts/setup installed Qt's xcb libraries
    finally:
        xvfb.terminate()
        xvfb.wait(10)
