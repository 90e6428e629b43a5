"""A simple face for one line: display, keypad, call / answer / end. (The MPP and Webex App
faces of a later issue replace it.) It renders the Simulator's state and calls its methods."""
from __future__ import annotations

import time

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLineEdit, QMenu,
                               QPushButton, QToolButton, QVBoxLayout, QWidget)

from mppsim.rules.policy import SOFTKEY_ORDER

from mppsim.app import device_view
from mppsim.app.simulator import Party, Simulator, SimulatorError

from . import a11y

KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]
KIND_LABEL = {"user": "User", "virtual_line": "Virtual line", "pstn": "PSTN"}


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


class DeviceFace(QFrame):
    """Everything here is addressable by objectName for GUI tests: face_<id>, display_<id>,
    entry_<id>, key_<id>_<digit>, call_<id>, answer_<id>, decline_<id>, end_<id>, hold_<id>,
    resume_<id>, transfer_<id>, restart_<id>, status_<id> (ids with non-alphanumerics as _).
    Accessible names start with "<name> PSTN" (a PSTN party) and the display's and status's
    accessible descriptions are the text they show (ui/a11y.py)."""

    message = Signal(str)  # errors and notes for the main window's event pane

    def __init__(self, sim: Simulator, party: Party, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.party = party
        self.key = safe_name(party.id)
        self.setObjectName(f"face_{self.key}")
        who = self.who = f"{party.name} PSTN" if party.kind == "pstn" else f"{party.id} face"
        self.setAccessibleName(f"{who}: {party.name} ({party.number})")
        self.setFrameShape(QFrame.StyledPanel)
        self.setMinimumWidth(230)
        self.setFocusPolicy(Qt.StrongFocus)     # digits, Enter and Esc when it has the focus

        title = a11y.Readout(f"<b>{party.name}</b>")
        title.setAccessibleName(f"{who} name")
        subtitle = a11y.Readout(self.describe_party())
        subtitle.setAccessibleName(f"{who} kind")
        subtitle.setStyleSheet("color: #555;")
        self.display = a11y.Readout()
        self.display.setObjectName(f"display_{self.key}")
        self.display.setAccessibleName(f"{who} display")
        self.display.setFixedHeight(74)     # up to four lines: the face does not grow in a call
        self.display.setWordWrap(True)
        self.display.setAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        self.display.setStyleSheet("background: #14202b; color: #e8f1f8; padding: 6px; border-radius: 4px;"
                                   "font-family: monospace;")
        self.entry = QLineEdit()
        self.entry.setObjectName(f"entry_{self.key}")
        self.entry.setAccessibleName(f"{who} number to dial")
        self.entry.setPlaceholderText("number or extension")
        self.entry.installEventFilter(self)     # Enter in the field calls (and stops there)
        self.status = a11y.Readout("")
        self.status.setObjectName(f"status_{self.key}")
        self.status.setAccessibleName(f"{who} status")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #a33;")

        self.keypad = QWidget()
        keypad = QGridLayout(self.keypad)
        keypad.setContentsMargins(0, 0, 0, 0)
        keypad.setSpacing(3)
        for i, digit in enumerate(KEYS):
            b = QPushButton(digit)
            b.setObjectName(f"key_{self.key}_{safe_name(digit)}")
            b.setAccessibleName(f"{who} key {digit}")
            b.setFixedHeight(26)
            b.clicked.connect(lambda _=False, d=digit: self.on_key(d))
            keypad.addWidget(b, i // 3, i % 3)

        self.buttons: dict[str, QPushButton] = {}
        rows = [[("call", "Call", self.on_call), ("answer", "Answer", self.on_answer),
                 ("decline", "Decline", self.on_decline)],
                [("hold", "Hold", self.on_hold), ("resume", "Resume", self.on_resume),
                 ("end", "End", self.on_end)],
                [("transfer", "Transfer", self.on_transfer), ("restart", "Restart agent", self.on_restart)]]
        button_rows = []
        for row in rows:
            h = QHBoxLayout()
            for name, label, handler in row:
                b = QPushButton(label)
                b.setObjectName(f"{name}_{self.key}")
                b.setAccessibleName(f"{who} {label}")
                b.clicked.connect(handler)
                self.buttons[name] = b
                h.addWidget(b)
            button_rows.append(h)
        green = "QPushButton { background: #2e7d32; color: white; } QPushButton:disabled { background: #cfdccf; color: #f4f4f4; }"
        red = "QPushButton { background: #c62828; color: white; } QPushButton:disabled { background: #e6cccc; color: #f4f4f4; }"
        self.buttons["call"].setStyleSheet(green)
        self.buttons["answer"].setStyleSheet(green)
        self.buttons["end"].setStyleSheet(red)

        # Recording controls: MPP softkeys and the Webex App's More menu, shown as the policy allows
        self.softkey_buttons: dict[str, QPushButton] = {}
        # the recording controls come and go in a row of fixed height: the face keeps its size
        softkey_row = QWidget()
        softkey_row.setFixedHeight(30)
        softkeys = QHBoxLayout(softkey_row)
        softkeys.setContentsMargins(0, 0, 0, 0)
        for label in SOFTKEY_ORDER:
            b = QPushButton(label)
            b.setObjectName(f"softkey_{self.key}_{label}")
            b.setAccessibleName(f"{who} {label} softkey")
            b.setStyleSheet("background: #37474f; color: white;")
            b.clicked.connect(lambda _=False, k=label: self.act(self.sim.press, self.party.id, k))
            b.setVisible(False)
            self.softkey_buttons[label] = b
            softkeys.addWidget(b)
        self.more = QToolButton()
        self.more.setText("More ▾")
        self.more.setObjectName(f"more_{self.key}")
        self.more.setAccessibleName(f"{who} More")
        self.more_menu = QMenu(self.more)
        self.more_menu.setObjectName(f"more_menu_{self.key}")
        self.more_menu.setAccessibleName(f"{who} More menu")
        # a click opens the menu where AT-SPI sees it (not an InstantPopup: see ui/a11y.py)
        self.more_opener = a11y.ToolMenu(self.more, self.more_menu)
        self.more.setVisible(False)
        softkeys.addWidget(self.more)
        softkeys.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addWidget(self.display)
        layout.addWidget(softkey_row)
        layout.addWidget(self.entry)
        layout.addWidget(self.keypad)
        for h in button_rows:
            layout.addLayout(h)
        layout.addWidget(self.status)

        a11y.identify_all(self)
        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.refresh)
        self.ticker.start()
        self.refresh()

    def set_compact(self, compact: bool) -> None:
        """The overview's compact face: no keypad (digits typed into the number field or sent
        as DTMF from the keyboard), at a fixed size."""
        self.keypad.setVisible(not compact)
        if compact:
            # the first compact size is kept: the overview must come back exactly as it was
            self._compact_size = getattr(self, "_compact_size", None) or self.sizeHint()
            self.setFixedSize(self._compact_size)
        else:
            self.setMinimumSize(230, 0)
            self.setMaximumSize(16777215, 16777215)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if (obj is self.entry and event.type() == QEvent.KeyPress
                and event.key() in (Qt.Key_Return, Qt.Key_Enter)):
            self.on_call()
            return True     # a QLineEdit passes Enter on to its parent: it would call twice
        return super().eventFilter(obj, event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        """Keyboard on the focused face: digits, Enter = call (answer when ringing), Esc = end."""
        text, key = event.text(), event.key()
        state = self.sim.call_state(self.party.id)
        if text and text in "0123456789*#":
            self.on_key(text)
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            self.on_answer() if state == "ringing" else self.on_call()
        elif key == Qt.Key_Escape:
            if state == "ringing":
                self.on_decline()
            elif state in ("dialing", "connected", "held"):
                self.on_end()
            else:
                self.entry.clear()
        else:
            super().keyPressEvent(event)

    def describe_party(self) -> str:
        p = self.party
        where = {"user": ", ".join(p.devices), "virtual_line": f"on {p.agent}'s {', '.join(p.devices)}",
                 "pstn": "simulated PSTN party"}[p.kind]
        return f"{KIND_LABEL[p.kind]} {p.number} · {where}"

    # ----- rendering --------------------------------------------------------------------------
    def refresh(self) -> None:
        up = self.sim.agent_status.get(self.party.agent, "up") == "up"
        call = self.sim.current_call(self.party.id)
        state = self.sim.call_state(self.party.id) if up else "down"
        self.display.setText(self.display_text(state, call))
        b = self.buttons
        b["call"].setEnabled(up and state in ("idle", "ended", "connected", "held"))
        b["answer"].setEnabled(up and state == "ringing")
        b["decline"].setEnabled(up and state == "ringing")
        b["end"].setEnabled(up and state in ("dialing", "ringing", "connected", "held"))
        b["hold"].setEnabled(up and state == "connected")
        b["resume"].setEnabled(up and state == "held" and bool(call) and call.get("held_by") in ("local", "both"))
        b["transfer"].setEnabled(up and state in ("connected", "held"))
        b["restart"].setVisible(not up)
        keys = self.sim.softkeys(self.party.id) if up and state != "ended" else []
        for label, button in self.softkey_buttons.items():
            button.setVisible(label in keys)
        items = self.sim.menu_items(self.party.id) if up and state != "ended" else []
        if items != [a.text() for a in self.more_menu.actions()]:
            self.more_menu.clear()
            for item in items:
                action = self.more_menu.addAction(item)
                action.setObjectName(f"menu_{self.key}_{item.replace(' ', '_')}")
                action.triggered.connect(lambda _=False, i=item: self.pick(i))
        self.more.setVisible(bool(items))

    def display_text(self, state: str, call: dict | None) -> str:
        if state == "down":
            return "⚠ agent down — calls to this line fail"
        if state == "idle" or call is None:
            return f"{self.party.number}\nIdle"
        who, number = device_view.remote_of(self.sim, call)
        party = f"{who} ({number})" if who != number else number
        if state == "dialing":
            return f"Calling {party}…" + ("\nRinging" if call.get("ringback") else "")
        if state == "ringing":
            return f"Incoming call\n{party}"
        if state in ("connected", "held"):
            since = call.get("connected_at") or time.time()
            secs = int(time.time() - since)
            extra = ""
            if state == "held":
                extra = " · On hold" if call.get("held_by") in ("local", "both") else " · Held by other party"
            rec = {"recording": "  ● REC", "paused": "  ❚❚ REC paused"}.get(self.sim.indicator(self.party.id), "")
            view = self.sim.recording_view(self.party.id)
            note = f"\n{view['message']}" if view and view.get("message") else ""
            return f"{party}\n{secs // 60:02d}:{secs % 60:02d}{extra}{rec}{note}"
        return f"Call ended ({call.get('reason') or 'hangup'})\n{party}"

    # ----- actions ----------------------------------------------------------------------------
    def pick(self, item: str) -> None:
        """A recording item under More."""
        self.more_menu.hide()      # before the menu is rebuilt under the chosen action
        self.act(self.sim.menu, self.party.id, item)

    def act(self, fn, *args) -> None:
        try:
            fn(*args)
            self.status.setText("")
        except SimulatorError as exc:
            self.status.setText(str(exc))
            self.message.emit(f"{self.party.id}: {exc}")
        self.refresh()

    def on_key(self, digit: str) -> None:
        if self.sim.call_state(self.party.id) == "connected":
            self.act(self.sim.dtmf, self.party.id, digit)   # in a call the keypad sends DTMF
        else:
            self.entry.setText(self.entry.text() + digit)

    def on_call(self) -> None:
        number = self.entry.text().strip()
        if not number:
            self.status.setText("enter a number or extension first")
            return
        self.act(self.sim.dial, self.party.id, number)
        self.entry.clear()

    def on_answer(self) -> None:
        self.act(self.sim.answer, self.party.id)

    def on_decline(self) -> None:
        self.act(self.sim.decline, self.party.id)

    def on_end(self) -> None:
        self.act(self.sim.hangup, self.party.id)

    def on_hold(self) -> None:
        self.act(self.sim.hold, self.party.id)

    def on_resume(self) -> None:
        self.act(self.sim.resume, self.party.id)

    def on_transfer(self) -> None:
        number = self.entry.text().strip()
        if not number:
            self.status.setText("enter the number to transfer to, then press Transfer")
            return
        self.act(self.sim.transfer, self.party.id, number)
        self.entry.clear()

    def on_restart(self) -> None:
        self.act(self.sim.restart_agent, self.party.agent)
