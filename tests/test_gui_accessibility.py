"""What a GUI test tool or a screen reader reads from the faces, through Qt's accessibility
interface in the process (issue 23). AT-SPI shows the same interfaces from outside
(tests/test_gui_atspi.py); reading them here is cheap and always runs.

The convention (src/mppsim/ui/a11y.py): a fixed, unique name that says whose device it is; the
description of a readout is the text it shows; the AccessibleId is the objectName; lamps and
toggles are checkable.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from mppsim.ui.main_window import MainWindow

# roles a person operates: each needs a name a tool can find it by
CONTROLS = {QAccessible.Role.PushButton, QAccessible.Role.CheckBox, QAccessible.Role.RadioButton,
            QAccessible.Role.ComboBox, QAccessible.Role.EditableText, QAccessible.Role.ButtonMenu,
            QAccessible.Role.ButtonDropDown, QAccessible.Role.SpinBox, QAccessible.Role.Slider,
            QAccessible.Role.PageTab}


def walk(iface, depth=0):
    """Every interface under `iface`, as AT-SPI walks them (children by index)."""
    yield iface
    if depth > 40:
        return
    for i in range(iface.childCount()):
        child = iface.child(i)
        if child is not None and child.isValid():
            yield from walk(child, depth + 1)


def node(root: QWidget, name: str):
    """The interface named `name` under `root` (as a tool finds it), else a failure saying so."""
    found = [i for i in walk(QAccessible.queryAccessibleInterface(root)) if i.text(QAccessible.Name) == name]
    assert found, f"nothing named {name!r} under {root.objectName()}"
    assert len(found) == 1, f"{len(found)} objects named {name!r}"
    return found[0]


def description(root: QWidget, name: str) -> str:
    return node(root, name).text(QAccessible.Description)


def press(iface) -> None:
    """What AT-SPI's doAction does: the interface's own action, not a Python method."""
    actions = iface.actionInterface()
    assert actions is not None, f"{iface.text(QAccessible.Name)!r} has no actions"
    wanted = actions.pressAction()
    assert wanted in actions.actionNames(), f"{iface.text(QAccessible.Name)!r}: {actions.actionNames()}"
    actions.doAction(wanted)
    QTest.qWait(150)       # a button's Press is an animated click: it lands 100 ms later


@pytest.fixture
def window(qtbot, sim, tmp_path):
    w = MainWindow(sim, settings=QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat))
    qtbot.addWidget(w)
    w.resize(1600, 1000)
    w.show()
    return w


def test_every_control_has_a_unique_name_and_its_object_name_as_id(window):
    named: dict[str, list] = {}
    unnamed = []
    ids = set()
    for iface in walk(QAccessible.queryAccessibleInterface(window)):
        text = iface.text(QAccessible.Name)
        # what a tool addresses: the controls and every object with an id (static texts such as
        # the Control Hub's "Provider:" on several pages, and list items, may repeat)
        # (on Linux Qt names a combo box after its current item, as AT-SPI expects: not checked)
        if text and (iface.role() in CONTROLS or iface.text(QAccessible.Identifier)) \
                and iface.role() != QAccessible.Role.ComboBox:
            named.setdefault(text, []).append(iface)
        elif iface.role() == QAccessible.Role.ComboBox:
            # on Linux Qt gives a combo box no name of its own (AT-SPI reads its label relation
            # and its current item): it needs a name for the other platforms and an id
            obj = iface.object()
            if not (obj.accessibleName() and obj.accessibleIdentifier()):
                unnamed.append(f"ComboBox {obj.objectName()!r}")
        elif iface.role() in CONTROLS:
            obj = iface.object()
            unnamed.append(f"{iface.role().name} {obj.objectName() if obj else ''!r} in {obj.parent().objectName() if obj and obj.parent() else ''!r} {type(obj).__name__}")
        if iface.text(QAccessible.Identifier):
            ids.add(iface.text(QAccessible.Identifier))
    shared = {n: [i.text(QAccessible.Identifier) or i.role().name for i in v] for n, v in named.items() if len(v) > 1}
    assert not shared, f"names shared by several objects: {shared}"
    assert not unnamed, f"controls without a name: {unnamed}"
    # the corner controls are in the tree (a menu bar lists its menus only)
    for name in ("real_audio_device", "sound_device", "recorder_status"):
        assert name in ids, f"{name} not in the accessibility tree"
    for name in ("mpp_alice_softkey_0", "mpp_bob_screen_state", "webex_alice_dial_field", "webex_alice_more",
                 "event_pane"):
        assert name in ids, name
    # the phone is a group of controls to a tool, not a generic filler
    assert QAccessible.queryAccessibleInterface(window.users["alice"].phone).role() == QAccessible.Role.Grouping
    webex = window.findChild(QWidget, "webex_alice")
    assert QAccessible.queryAccessibleInterface(webex).role() == QAccessible.Role.Grouping
    assert node(window, "alice Webex App dial 1") and node(window, "carol Webex App dial 1")


def test_a_recorded_call_reads_as_it_looks(qtbot, window, sim):
    alice = window.users["alice"]
    alice_app = next(f for f in alice.faces if f.objectName() == "webex_alice")
    for digit in "102":          # a wrong number shows on the screen while it is typed
        press(node(window, f"alice MPP key {digit}"))
    assert description(window, "alice MPP screen title") == "102"
    press(node(window, "alice MPP softkey Cancel"))
    for digit in "1002":
        press(node(window, f"alice MPP key {digit}"))
    press(node(window, "alice MPP softkey Call"))
    sim.wait_for("bob", "ringing", 3)
    window.on_event({"agent": "bob"})
    qtbot.waitUntil(lambda: description(window, "bob MPP screen state") == "Ringing", timeout=3000)
    press(node(window, "bob MPP softkey Answer"))
    sim.wait_for("alice", "connected", 3)
    sim.wait_for("bob", "connected", 3)      # bob's own event: it may come after alice's
    sim.wait_until(lambda: sim.indicator("alice", "mpp") == "recording", 5, "alice recorded")
    window.on_event({"agent": "alice"})
    window.on_event({"agent": "bob"})
    assert description(window, "bob MPP screen state") == "Connected"
    assert description(window, "bob MPP screen title") == "Alice Smith"
    assert description(window, "bob MPP screen subtitle") == "1001"
    assert description(window, "alice MPP screen rec") == "REC"
    assert "REC" in description(window, "alice MPP line key 1: 1001 Alice Smith")
    phone = QAccessible.queryAccessibleInterface(alice.phone)
    assert phone.text(QAccessible.Name).startswith("alice MPP: Alice Smith's Cisco IP Phone")
    assert "Connected" in phone.text(QAccessible.Description).splitlines()    # the whole screen at once
    assert description(window, "alice Webex App caller") == "Bob Jones"
    assert description(window, "alice Webex App recording indicator") == "Recording"
    assert alice.phone.screen_parts["state"].text() == "Connected"     # what is painted: the same model

    # the mute lamp and the Webex App's Mute toggle read as checked, and the button says Unmute;
    # the keyboard reaches the hard key as well as the pointer (M on the focused phone)
    qtbot.keyClick(alice.phone, Qt.Key_M)
    sim.wait_until(lambda: sim.muted("alice"), 3, "alice muted")
    window.on_event({"agent": "alice"})
    assert QAccessible.queryAccessibleInterface(alice.phone.hard_buttons["mute"]).state().checked
    assert node(window, "alice Webex App Unmute").state().checked
    press(node(window, "alice MPP mute"))
    sim.wait_until(lambda: not sim.muted("alice"), 3, "alice unmuted")
    window.on_event({"agent": "alice"})
    assert not node(window, "alice Webex App Mute").state().checked

    bob_phone = window.users["bob"].phone
    first = bob_phone.softkey_labels()
    qtbot.keyClick(bob_phone, Qt.Key_F4)            # F1-F4 are the softkeys: F4 is More here
    assert first[3] == "More" and bob_phone.softkey_labels() != first, first
    qtbot.keyClick(bob_phone, Qt.Key_F4)            # and back to the first page
    assert bob_phone.softkey_labels() == first
    # the More menu opens on Press and is among the application's windows, where a tool finds it
    press(node(window, "alice Webex App More"))
    assert alice_app.more_menu.isVisible()
    app_root = QAccessible.queryAccessibleInterface(QApplication.instance())
    tops = [app_root.child(i) for i in range(app_root.childCount())]
    menu = next((t for t in tops if t.text(QAccessible.Name) == "alice Webex App More menu"), None)
    assert menu is not None, f"the More menu is not in the tree: {[t.text(QAccessible.Name) for t in tops]}"
    items = {menu.child(i).text(QAccessible.Name): menu.child(i) for i in range(menu.childCount())}
    assert "Pause recording" in items, list(items)
    press(items["Pause recording"])
    sim.wait_until(lambda: sim.indicator("alice", "mpp") == "paused", 5, "alice paused")
    window.on_event({"agent": "alice"})
    assert not alice_app.more_menu.isVisible()       # choosing an item closes it
    assert description(window, "alice MPP screen rec") == "PAUSED"
    assert description(window, "alice Webex App recording indicator") == "Recording paused"

    press(node(window, "bob MPP softkey End call"))
    sim.wait_for("alice", "ended", 3)
    # bob's own leg may end a moment after alice's: wait for his screen, not a fixed moment
    qtbot.waitUntil(lambda: (window.on_event({"agent": "bob"}),
                             description(window, "bob MPP screen state") in ("Call ended", "Idle"))[1],
                    timeout=3000)


def test_pstn_display_reads_its_text(qtbot, window, sim):
    face = next(iter(window.faces.values()))
    who = f"{face.party.name} PSTN"
    assert face.party.number in description(window, f"{who} display")
    assert description(window, f"{who} display") == face.display.text()
