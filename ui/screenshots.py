"""`mppsim screenshots DIR`: stage a few calls and save a PNG of every window, headless."""
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
    from PySide6.QtWidgets import QApplication

    from app.simulator import Simulator

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with Simulator(org_path, front_door_port=0) as sim:
        window = MainWindow(sim)
        window.show()
        pump(app, 0.3)
        saved.append(out / "main-window-idle.png")
        window.grab().save(str(saved[-1]))
        # a connected internal call, a PSTN call ringing, a call on hold
        sim.play("alice", tone=1000)
        window.faces["alice"].entry.setText("1002")
        window.faces["alice"].on_call()
        sim.wait_for("bob", "ringing", 3)
        window.faces["bob"].on_answer()
        number = sim.org.pstn[0].number if sim.org.pstn else None
        if number:
            sim.dial(number, sim.org.users[2].extension if len(sim.org.users) > 2 else "1003")
        if len(sim.org.users) > 3:
            sim.dial(sim.org.users[3].id, sim.org.pstn[1].number if len(sim.org.pstn) > 1 else "1001")
            pump(app, 0.5)
            other = sim.party_by_number(sim.org.pstn[1].number) if len(sim.org.pstn) > 1 else None
            if other:
                sim.answer(other.id)
                sim.wait_for(sim.org.users[3].id, "connected", 3)
                sim.hold(sim.org.users[3].id)
        pump(app, 2.2)
        saved.append(out / "main-window-calls.png")
        window.grab().save(str(saved[-1]))
        window.close()
    return saved
