"""Drives a recorded call in a running `mppsim gui` from outside its process, through AT-SPI,
as a QA tool does (dogtail, Accerciser, Robot Framework's desktop libraries).

Run by the SYSTEM python3 (Debian's python3-pyatspi; mppsim's virtualenv has no pyatspi) with
the DISPLAY and DBUS_SESSION_BUS_ADDRESS of the GUI; tests/test_gui_atspi.py starts both.
Imports nothing of mppsim: what it knows of the app is what docs/gui-testing.md documents
(AccessibleIds = objectNames, accessible names "<user> MPP ...", descriptions = text shown).
Prints one JSON object per observation; exits 1 with the reason when a step fails.
"""
from __future__ import annotations

import json
import sys
import time

import pyatspi

TIMEOUT = 15.0
PRESS_DELAY = 0.2


class Failed(Exception):
    pass


def say(**observation) -> None:
    print(json.dumps(observation), flush=True)


def wait(what: str, probe, timeout: float = TIMEOUT):
    """probe() until it returns something true; its last value in the failure otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except Exception as exc:   # an object went away while the GUI changed: try again
            last = f"{type(exc).__name__}: {exc}"
            value = None
        else:
            value = last
        if value:
            return value
        time.sleep(0.1)
    raise Failed(f"timed out waiting for {what} (last: {last!r})")


def the_app():
    """The mppsim application on the accessibility bus."""
    def find():
        desktop = pyatspi.Registry.getDesktop(0)
        return next((a for a in desktop if a is not None and a.name == "mppsim"), None)
    return wait("the mppsim application on the AT-SPI bus", find, 30)


def walk(node):
    yield node
    for child in node:
        if child is not None:
            yield from walk(child)


class Gui:
    def __init__(self, app):
        self.app = app
        self.by_id = {}
        for node in walk(app):
            aid = node.accessibleId
            if aid:
                self.by_id.setdefault(aid, node)
        say(step="tree", objects=len(self.by_id))

    def id(self, object_name: str):
        node = self.by_id.get(object_name)
        if node is None:
            raise Failed(f"no object with AccessibleId {object_name!r}")
        return node

    def named(self, name: str, under=None):
        """The object named `name` (searched under `under`, else the whole app, freshly)."""
        found = pyatspi.findDescendant(under or self.app, lambda n: n is not None and n.name == name)
        if found is None:
            raise Failed(f"nothing named {name!r}")
        return found

    @staticmethod
    def text(node) -> str:
        node.clearCache()          # read the live value, not the bus's cached one
        return node.description

    def press(self, node) -> None:
        name = node.name          # a chosen menu item is gone once pressed
        action = node.queryAction()
        names = [action.getName(i) for i in range(action.nActions)]
        for wanted in ("Press", "press", "click", "Toggle", "toggle"):
            if wanted in names:
                action.doAction(names.index(wanted))
                say(step="press", name=name)
                # Qt's Press is an animated click that lands 100 ms later, and a second Press of
                # the same key within those 100 ms is lost (1002 became 102): dogtail waits too
                time.sleep(PRESS_DELAY)
                return
        raise Failed(f"{name!r} has no press action: {names}")

    def softkey(self, user: str, label: str):
        """The MPP softkey showing `label` (the four softkeys are mpp_<user>_softkey_0..3)."""
        want = f"{user} MPP softkey {label}"

        def find():
            for i in range(4):
                node = self.id(f"mpp_{user}_softkey_{i}")
                node.clearCache()
                if node.name == want:
                    return node
            return None
        return wait(f"softkey {want!r}", find, 5)

    def expect(self, object_name: str, wanted: str, timeout: float = TIMEOUT) -> str:
        node = self.id(object_name)
        text = wait(f"{object_name} to read {wanted!r}", lambda: (self.text(node) == wanted) and wanted, timeout)
        say(step="read", id=object_name, text=text)
        return text

    def menu_item(self, menu_name: str, item: str):
        """An item of an open menu: a top-level window of the app, as AT-SPI lists it."""
        def find():
            for top in self.app:
                if top is not None and top.name == menu_name:
                    return next((c for c in top if c is not None and c.name == item), None)
            return None
        return wait(f"{item!r} in the open {menu_name!r}", find, 5)


def recording_failed(gui: "Gui") -> int:
    """alice calls bob in an org that ends the calls it cannot record, with no recorder to reach:
    the answer starts the recording, it fails, and alice's screen says why the call ended."""
    for digit in "1002":
        gui.press(gui.id(f"mpp_alice_key_{digit}"))
    gui.press(gui.softkey("alice", "Call"))
    gui.expect("mpp_bob_screen_state", "Ringing")
    gui.press(gui.softkey("bob", "Answer"))
    gui.expect("mpp_alice_screen_state", "Call ended (recording failed)", 20)
    say(step="done")
    return 0


def main(argv: list[str]) -> int:
    gui = Gui(the_app())
    if argv[1:] == ["recording-failed"]:
        return recording_failed(gui)
    phone_state = "mpp_bob_screen_state"
    # dial on alice's MPP: the digits show on her screen as they are typed
    for digit in "1002":
        gui.press(gui.id(f"mpp_alice_key_{digit}"))
    gui.expect("mpp_alice_screen_title", "1002", 5)
    gui.press(gui.softkey("alice", "Call"))
    gui.expect(phone_state, "Ringing")
    gui.press(gui.softkey("bob", "Answer"))
    gui.expect(phone_state, "Connected")
    gui.expect("mpp_bob_screen_title", "Alice Smith")          # the remote party's name
    gui.expect("mpp_alice_screen_rec", "REC")                  # Always with Pause/Resume
    gui.expect("webex_alice_indicator", "Recording")
    gui.expect("webex_alice_caller", "Bob Jones")
    # pause and resume from the Webex App's More menu
    for item, mpp, webex in (("Pause recording", "PAUSED", "Recording paused"),
                             ("Resume recording", "REC", "Recording")):
        gui.press(gui.id("webex_alice_more"))
        gui.press(gui.menu_item("alice Webex App More menu", item))
        gui.expect("mpp_alice_screen_rec", mpp)
        gui.expect("webex_alice_indicator", webex)
    gui.press(gui.id("webex_alice_end"))
    text = wait("bob's call to end", lambda: gui.text(gui.id(phone_state)) in ("Call ended", "Idle")
                and gui.text(gui.id(phone_state)))
    say(step="read", id=phone_state, text=text)
    say(step="done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Failed as exc:
        say(step="failed", why=str(exc))
        sys.exit(1)
