"""Issue 14 (3): the main window fits a 1920x1080 screen — every device of the demo org visible
at once, no layout jump when a call starts, zoom, one device enlarged on double-click, keyboard
on the focused device, and the size and layout remembered (QSettings, in a temporary file)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtWidgets import QWidget

from mppsim.ui.main_window import MainWindow

pytest.importorskip("pytestqt")


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("MPPSIM_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def make_window(qtbot, sim, tmp_path, size=(1920, 1080)) -> MainWindow:
    w = MainWindow(sim, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(50)
    return w


def every_face(w: MainWindow) -> list[QWidget]:
    faces = [f for group in w.users.values() for f in group.faces] + list(w.faces.values())
    assert len(faces) == 5 + 2      # 3 MPPs + 2 Webex Apps (alice, bob, carol, dave), 2 PSTN parties
    return faces


def on_window(w: MainWindow, widget: QWidget) -> QRect:
    return QRect(widget.mapTo(w, QPoint(0, 0)), widget.size())


def test_the_overview_shows_every_demo_device_inside_1920x1080(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path)
    assert w.size().width() == 1920 and w.size().height() == 1080
    viewport = w.scroll.viewport()
    visible = QRect(viewport.mapTo(w, QPoint(0, 0)), viewport.size())
    qtbot.waitUntil(lambda: all(visible.contains(on_window(w, f)) for f in every_face(w)), timeout=2000)
    for face in every_face(w):
        r = on_window(w, face)
        assert face.isVisible() and w.rect().contains(r), (face.objectName(), r)
        assert visible.contains(r), (face.objectName(), r, visible)      # no scrolling needed
    assert w.scroll.verticalScrollBar().maximum() == 0
    assert w.scroll.horizontalScrollBar().maximum() == 0
    assert 0.5 <= w.scale <= 1.0          # the phones are scaled, not shrunk to nothing
    w.grab().save(str(shots(tmp_path) / "overview-1920x1080.png"))


def test_no_layout_jump_when_a_call_starts(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path)
    watched = every_face(w) + w.cards
    before = {x.objectName(): on_window(w, x) for x in watched}
    sim.dial("bob", "1001")                       # alice: Webex toast and MPP ringing
    sim.dial("+14155550100", "1003")              # carol's Webex App, a PSTN face
    qtbot.waitUntil(lambda: w.users["carol"].faces[0].stack.currentWidget() is w.users["carol"].faces[0].toast_page,
                    timeout=3000)
    assert {x.objectName(): on_window(w, x) for x in watched} == before
    sim.answer("alice")
    sim.answer("carol")
    qtbot.waitUntil(lambda: w.users["alice"].phone.recording_icon() == "recording", timeout=3000)
    qtbot.waitUntil(lambda: w.faces["+14155550100"].softkey_buttons is not None
                    and "Carol" in w.faces["+14155550100"].display.text(), timeout=3000)
    qtbot.wait(100)
    assert {x.objectName(): on_window(w, x) for x in watched} == before


def test_zoom_and_one_device_enlarged_on_double_click(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path)
    fit = w.scale
    bob = w.users["bob"]
    small = bob.phone.width()
    w.findChild(type(w.record_action), "action_zoom_in").trigger()
    assert w.zoom == pytest.approx(fit * 1.15) and bob.phone.width() > small
    w.set_zoom(None)
    assert w.scale == fit and bob.phone.width() == small
    qtbot.mouseDClick(bob, Qt.LeftButton, pos=QPoint(4, 4))
    assert w.enlarged is bob and bob.phone.width() > small * 1.3
    assert not any(c.isVisible() for c in w.cards if c is not bob)
    qtbot.mouseDClick(bob, Qt.LeftButton, pos=QPoint(4, 4))
    assert w.enlarged is None and all(c.isVisible() for c in w.cards)
    assert bob.phone.width() == small


def test_keyboard_digits_enter_calls_esc_hangs_up_on_the_focused_device(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path)
    dave = w.users["dave"].phone
    dave.setFocus()
    qtbot.keyClicks(dave, "1002")
    qtbot.keyClick(dave, Qt.Key_Return)
    sim.wait_for("bob", "ringing", 3)
    bob = w.users["bob"].phone
    qtbot.waitUntil(lambda: "Answer" in bob.softkey_labels(), timeout=3000)
    bob.setFocus()
    qtbot.keyClick(bob, Qt.Key_Return)            # Enter answers a ringing phone
    sim.wait_for("dave", "connected", 3)
    qtbot.keyClick(dave, Qt.Key_Escape)
    sim.wait_for("bob", "ended", 3)
    # a PSTN face: digits go to its number field, Enter calls, Esc hangs up
    pstn = w.faces["+14155550100"]
    pstn.setFocus()
    qtbot.keyClicks(pstn, "1004")
    assert pstn.entry.text() == "1004"
    qtbot.keyClick(pstn, Qt.Key_Return)
    sim.wait_for("dave", "ringing", 3)
    qtbot.waitUntil(lambda: sim.call_state("+14155550100") == "dialing", timeout=3000)
    qtbot.keyClick(pstn, Qt.Key_Escape)
    sim.wait_for("dave", "ended", 3)


def test_the_window_remembers_its_size_and_layout(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path, size=(1500, 900))
    w.set_zoom(0.9)
    w.split.setSizes([1000, 480])
    sizes = w.split.sizes()
    w.close()
    ini = (tmp_path / "settings.ini").read_text()
    assert "geometry" in ini and "zoom=0.9" in ini
    again = MainWindow(sim, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat))
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert (again.width(), again.height()) == (1500, 900)
    assert again.zoom == pytest.approx(0.9) and again.scale == pytest.approx(0.9)
    assert again.split.sizes() == sizes
    # the default location is redirected for the whole test run (conftest): never the user's own
    default = QSettings(QSettings.IniFormat, QSettings.UserScope, "mppsim", "mppsim")
    assert str(Path(default.fileName()).resolve()).startswith(str(Path(tmp_path).parents[1].resolve()))


def test_the_pstn_card_enlarged_shows_the_full_faces(qtbot, sim, tmp_path):
    w = make_window(qtbot, sim, tmp_path)
    card = w.findChild(QWidget, "pstn_card")
    face = w.faces["+14155550100"]
    assert not face.keypad.isVisible()
    small = face.height()
    w.toggle_enlarged(card)
    assert face.keypad.isVisible() and face.height() > small
    w.toggle_enlarged(card)
    assert not face.keypad.isVisible() and face.height() == small
