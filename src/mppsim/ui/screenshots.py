"""`mppsim --screenshots DIR`: stage calls in each recording state and save a PNG of every
window and face the docs show, headless (QT_QPA_PLATFORM=offscreen).

Every file goes into DIR and nowhere else: the committed docs/screenshots change only when DIR is
docs/screenshots (issue 24). The names are the ones README.md and docs/ show (`DOC_IMAGES`; a
test checks that every image the docs show is made), plus each face in its call and the Webex
App's and Control Hub's own sets (webex_app.save_screenshots, control_hub.save_screenshots).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

# the images README.md and docs/*.md show (tests/test_screenshots.py keeps this list true)
DOC_IMAGES = (
    "caption-banner.png", "control-hub-user.png", "main-window-calls.png", "main-window-portal.png",
    "mpp-6871-recording.png", "mpp-8865-paused.png", "overview-1920x1080.png", "player-mid-run.png",
    "webex-more-menu.png",
)


def pump(app, seconds: float, until=None, faces=()) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        for face in faces:
            face.refresh()
        if until is not None and until():
            break
        time.sleep(0.02)


def save_screenshots(org_path: str, out_dir: str) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from mppsim.app.simulator import Simulator

    from . import control_hub, webex_app
    from .main_window import MainWindow
    from .mpp_phone import MppPhone

    app = QApplication.instance() or QApplication([])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def grab(widget, name: str) -> None:
        app.processEvents()
        saved.append(out / name)
        widget.grab().save(str(saved[-1]))

    shots_tmp = Path(tempfile.mkdtemp(prefix="mppsim-shots-"))
    try:
        with Simulator(org_path, run_dir=shots_tmp / "run", front_door_port=0) as sim:
            # its own settings file: screenshots never change the user's remembered layout
            settings = QSettings(str(shots_tmp / "s.ini"), QSettings.IniFormat)
            window = MainWindow(sim, settings=settings)
            window.resize(1920, 1080)
            window.show()
            pump(app, 0.5)
            grab(window, "main-window-idle.png")
            grab(window, "overview-1920x1080.png")
            users = [u.id for u in sim.org.users]
            first = users[0]
            # MPP faces on their own at scale 1 (the window draws them scaled to fit)
            mpps = {u.id: MppPhone(sim, u.id) for u in sim.org.users if u.has_mpp}
            for phone in mpps.values():
                phone.setScale(1.0)
                phone.show()
            faces = list(mpps.values())
            webex_of = {u.id: webex_app.WebexApp(sim, u.id) for u in sim.org.users[:1] if u.has_webex_app}
            for face in webex_of.values():
                face.resize(340, 600)
                face.show()
            faces += list(webex_of.values())
            mono = next((u for u in sim.org.users if u.has_mpp and u.device("mpp").model
                         and u.device("mpp").model.startswith("68")), None)
            pump(app, 0.3, faces=faces)
            if first in mpps:
                grab(mpps[first], f"mpp-{sim.org.user(first).device('mpp').model}-idle.png")
            # one call per pair of users, so each face shows its recording mode in a live call
            for caller, callee in zip(users[1::2], users[0::2]):
                sim.play(caller, tone=1500)
                sim.play(callee, tone=1000)
                sim.dial(caller, sim.party(callee).number)
                sim.wait_for(callee, "ringing", 3)
                sim.answer(callee)
                sim.wait_for(caller, "connected", 3)
            pump(app, 1.5, faces=faces)
            model = sim.org.user(first).device("mpp").model if first in mpps else None
            if model and sim.recording_state(first) == "started":
                grab(mpps[first], f"mpp-{model}-recording.png")
                mpps[first].setScale(2.0)
                grab(mpps[first], f"mpp-{model}-recording@2x.png")
                mpps[first].setScale(1.0)
            if "PauseRec" in sim.softkeys(first):
                sim.press(first, "PauseRec")     # one face shows the paused state
                pump(app, 3, lambda: sim.recording_state(first) == "paused", faces=faces)
            pump(app, 1.0, faces=faces)
            if model:
                grab(mpps[first], f"mpp-{model}-paused.png")
            if mono is not None:
                grab(mpps[mono.id], f"mpp-{mono.device('mpp').model}-recording.png")
            # the first user's faces muted, then holding (their recording stays as it is)
            for action, undo, state in (("mute", "unmute", "muted"), ("hold", "resume", "holding")):
                getattr(sim, action)(first)
                pump(app, 1.0, faces=faces)
                if model:
                    grab(mpps[first], f"mpp-{model}-{state}.png")
                if first in webex_of:
                    grab(webex_of[first], f"webex-{state}.png")
                getattr(sim, undo)(first)
                pump(app, 1.0, faces=faces)
            grab(window, "main-window-calls.png")
            for uid, group in window.users.items():
                for face in group.faces:
                    kind = "mpp" if face.objectName().startswith("mpp_") else "webex"
                    grab(face, f"{kind}-{uid}-call.png")
            window.show_caption(f"{sim.party(users[1]).name} calls {sim.party(first).name}: "
                                "watch the recording icon")
            grab(window, "caption-banner.png")
            window.show_caption("")
            for caller in users[1::2]:
                sim.hangup(caller)
            sim.wait_calls_ended()
            pump(app, 1.5, faces=faces)
            for phone in faces:
                phone.close()
            window.tabs.setCurrentWidget(window.control_hub)
            window.control_hub.tabs.setCurrentWidget(window.control_hub.users_page)
            window.control_hub.users_page.select(first)
            pump(app, 0.3)
            grab(window, "main-window-control-hub.png")
            window.tabs.setCurrentWidget(window.portal)
            window.portal.set_viewer(first)
            window.portal.refresh()
            rows = sim.recordings(first)
            pump(app, 0.3)
            grab(window.portal, "portal-list.png")
            if rows:
                window.portal.select(rows[-1]["id"])
            pump(app, 0.3)
            grab(window, "main-window-portal.png")
            grab(window.portal, "portal-recording.png")
            # the player beside the devices, stepped up to the first hold of the demo call
            window.tabs.setCurrentIndex(0)
            demo = Path(__file__).resolve().parents[1] / "examples" / "demo-call.yaml"
            if window.player.load(demo):
                steps = window.player.scenario.steps
                hold = next((s.index for s in steps if s.name == "hold"), min(len(steps), 5))
                for i in range(hold):
                    window.player.step_once()
                    pump(app, 10, lambda: window.player.step_states()[i] in ("passed", "failed"))
                pump(app, 0.5)
                grab(window, "player-mid-run.png")
                window.player.shutdown()
                sim.wait_calls_ended()
            window.close()
            pump(app, 0.3)
            # the Webex App's own set: idle, incoming, recording, the More menu, paused
            webex_user = next((u.id for u in sim.org.users if u.has_webex_app), None)
            if webex_user is not None:
                other = next(u for u in users if u != webex_user)
                saved += webex_app.save_screenshots(sim, out, user=webex_user, caller=other)
        # Control Hub's own set: the organisation, a refused user change, the provider side
        saved += [Path(p) for p in control_hub.save_screenshots(org_path, str(out))]
    finally:
        shutil.rmtree(shots_tmp, ignore_errors=True)
    return saved
