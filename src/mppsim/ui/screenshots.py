"""`mppsim --screenshots DIR`: stage calls in each recording state and save a PNG of every
window and face, headless (QT_QPA_PLATFORM=offscreen)."""
from __future__ import annotations

import os
import time
from pathlib import Path


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save_screenshots(org_path: str, out_dir: str) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from mppsim.app.simulator import Simulator

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def grab(widget, name: str) -> None:
        saved.append(out / name)
        widget.grab().save(str(saved[-1]))

    with Simulator(org_path, front_door_port=0) as sim:
        # its own settings file: screenshots never change the user's remembered layout
        settings = QSettings(str(Path(tempfile.mkdtemp(prefix="mppsim-shots-")) / "s.ini"), QSettings.IniFormat)
        window = MainWindow(sim, settings=settings)
        window.resize(1920, 1080)
        window.show()
        pump(app, 0.5)
        grab(window, "main-window-idle.png")
        users = [u.id for u in sim.org.users]
        # one call per pair of users, so each face shows its recording mode in a live call
        for caller, callee in zip(users[1::2], users[0::2]):
            sim.play(caller, tone=1500)
            sim.play(callee, tone=1000)
            sim.dial(caller, sim.party(callee).number)
            sim.wait_for(callee, "ringing", 3)
            sim.answer(callee)
            sim.wait_for(caller, "connected", 3)
        pump(app, 1.0)
        first = users[0]
        if sim.softkeys(first) and "PauseRec" in sim.softkeys(first):
            sim.press(first, "PauseRec")     # one face shows the paused state
        pump(app, 1.5)
        grab(window, "main-window-calls.png")
        for uid, group in window.users.items():
            for face in group.faces:
                kind = "mpp" if face.objectName().startswith("mpp_") else "webex"
                grab(face, f"{kind}-{uid}-call.png")
        for caller in users[1::2]:
            sim.hangup(caller)
        pump(app, 1.5)
        window.tabs.setCurrentWidget(window.control_hub)
        window.control_hub.tabs.setCurrentWidget(window.control_hub.users_page)
        window.control_hub.users_page.select(first)
        pump(app, 0.3)
        grab(window, "main-window-control-hub.png")
        window.tabs.setCurrentWidget(window.portal)
        window.portal.set_viewer(first)
        window.portal.refresh()
        rows = sim.recordings(first)
        if rows:
            window.portal.select(rows[-1]["id"])
        pump(app, 0.3)
        grab(window, "main-window-portal.png")
        window.close()
    return saved
