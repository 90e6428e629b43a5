"""The MPP desk phone face: an 8800-series-like colour phone (or a 6800/7800-like monochrome one)
drawn with QPainter over the Simulator. It reads `sim` in refresh() and calls its methods; the art
is in ui/mpp_art.py. Transparent child QPushButtons sit over the painted keys so tests (pytest-qt)
and assistive tech find every control by objectName / accessible name (ui/a11y.py: names like
"alice MPP softkey Answer", the objectName as AccessibleId):

    mpp_<user>                      the phone
    mpp_<user>_softkey_<0..3>       softkeys by position (text = the label shown above it)
    mpp_<user>_linekey_<0..4>       line keys (primary line first, then virtual lines)
    mpp_<user>_key_<0-9|star|hash>  keypad
    mpp_<user>_hold, _transfer, _conference, _messages, _speaker, _mute, _headset,
    mpp_<user>_nav_up, _nav_down, _nav_left, _nav_right, _nav_select
    mpp_<user>_screen_<part>        what the screen shows, for tools: transparent labels over the
                                    painted text whose accessible description is that text (header,
                                    clock, state, timer, title, subtitle, rec, muted, note)

The lamps (mute, speaker, headset, message waiting) are checkable buttons: lit = checked.

Keyboard (when the phone has focus): 0-9 * # dial (idle) or send DTMF (connected: *44 etc. are
feature codes), Backspace deletes, Enter calls, Esc ends the call / clears, F1-F4 press the
softkeys, F6 / F7 / F8 Hold, Transfer, Conference, M / S / H / V mute, speaker, headset,
messages, arrows move between lines (up / down) and softkey pages (left / right).
"""
from __future__ import annotations

import time

from PySide6.QtCore import QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGroupBox, QPushButton, QSizePolicy

from mppsim.app import device_view
from mppsim.app.simulator import Simulator, SimulatorError
from mppsim.rules.policy import SOFTKEY_ORDER

from . import a11y
from . import mpp_art as art
from .mpp_art import BASE_H, BASE_W, CALL_AREA, HEADER_H, LINE_SLOTS, SCREEN, Screen, LineRow

MESSAGE_SECONDS = 3.0
ERROR_SECONDS = 4.0
MORE = "More"
KEY_NAMES = {"*": "star", "#": "hash"}
MONO_PREFIXES = ("68", "78")
SOFTKEY_KEYS = (Qt.Key_F1, Qt.Key_F2, Qt.Key_F3, Qt.Key_F4)
# the hard keys from the keyboard (every control has a keyboard path; the phone's own keys are
# not focusable, like the painted keys they sit on)
HARD_KEY_KEYS = {Qt.Key_F6: "hold", Qt.Key_F7: "transfer", Qt.Key_F8: "conference", Qt.Key_M: "mute",
                 Qt.Key_S: "speaker", Qt.Key_H: "headset", Qt.Key_V: "messages"}
LAMPS = ("mute", "speaker", "headset", "messages")
# where ui/mpp_art.py paints each part of the screen (base coordinates): the readouts sit there
_A = CALL_AREA
SCREEN_PARTS = {
    "header": QRectF(SCREEN.left(), SCREEN.top(), SCREEN.width() - 120, HEADER_H),
    "clock": QRectF(SCREEN.right() - 120, SCREEN.top(), 120, HEADER_H),
    "state": QRectF(_A.left(), _A.top(), _A.width() * 0.62, 18),
    "timer": QRectF(_A.left() + _A.width() * 0.62, _A.top(), _A.width() * 0.38, 18),
    "title": QRectF(_A.left(), _A.top() + 30, _A.width(), 26),
    "subtitle": QRectF(_A.left(), _A.top() + 56, _A.width(), 20),
    "rec": QRectF(_A.left(), _A.top() + 84, 84, 22),
    "muted": QRectF(_A.right() - 60, _A.top() + 84, 60, 22),
    "note": QRectF(_A.left(), _A.bottom() - 34, _A.width(), 30),
}

BUTTON_STYLE = ("QPushButton { background: transparent; border: none; color: transparent; }"
                "QPushButton:pressed { background: rgba(255, 255, 255, 60); border-radius: 6px; }"
                "QPushButton:focus { outline: none; }")


def skin_for_model(model: str | None) -> str:
    """'mono' for 68xx / 78xx models, 'color' for the 88xx (and anything else)."""
    return "mono" if model and str(model).startswith(MONO_PREFIXES) else "color"


def safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


class MppPhone(QGroupBox):
    """A QGroupBox for its accessible role (grouping: a device made of controls; a plain QWidget
    is a generic filler to AT-SPI); it paints everything itself, so no group-box frame shows."""

    message = Signal(str)   # errors, for a main window's event pane

    def __init__(self, sim: Simulator, user_id: str, skin: str | None = None, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.user_id = user_id
        self.user = sim.org.user(user_id)
        device = self.user.device("mpp")
        self.model = (device.model if device else None) or "8865"
        self.skin_name = skin or skin_for_model(self.model)
        if self.skin_name not in art.SKINS:
            raise ValueError(f"skin: {skin!r} not allowed; allowed: {', '.join(art.SKINS)}")
        self.skin = art.SKINS[self.skin_name]
        # lines: the primary line, then the virtual lines on this user's MPP
        self.lines: list[tuple[str, str, str]] = [(user_id, self.user.extension, self.user.name)]
        self.lines += [(v.id, v.extension, v.name) for v in sim.org.virtual_lines
                       if v.user == user_id and v.device == "mpp"]
        self.lines = self.lines[:LINE_SLOTS]
        self.selected = user_id
        self.dial_string = ""
        self.composing = False         # New call pressed: the screen asks for a number
        self.pending = ""              # "transfer" while the phone asks for the transfer target
        self.mwi = 0                       # new voicemail messages (lamp on while > 0)
        self.last_dialled = ""
        self.page = 0
        self.muted = False
        self.audio = ""                # "speaker" | "headset" | "" (handset)
        self._labels: list[str] = []   # all softkeys of the state, before paging
        self._prev_states: dict[str, str] = {}
        self._note: tuple[str, float] = ("", 0.0)
        self._seen_rec: dict[str, tuple] = {}
        self._error: tuple[str, float] = ("", 0.0)
        self._screen = Screen()
        self._scale = None

        name = safe(user_id)
        self.key = name
        self.setObjectName(f"mpp_{name}")
        self.setFlat(True)
        self.who = f"{user_id} MPP"      # every accessible name starts with it: unique per window
        a11y.name(self, f"{user_id} MPP: {self.user.name}'s Cisco IP Phone {self.model}")
        self.setFocusPolicy(Qt.StrongFocus)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
        self.setAttribute(Qt.WA_OpaquePaintEvent, False)

        self._buttons: list[tuple[QPushButton, QRectF]] = []
        self.softkey_buttons = [self._button(f"softkey_{i}", f"softkey {i + 1}", art.softkey_rect(i),
                                             lambda _=False, i=i: self.press_softkey(i)) for i in range(4)]
        self.linekey_buttons = [self._button(f"linekey_{i}", f"line key {i + 1}", art.line_key_rect(i),
                                             lambda _=False, i=i: self.select_line(i)) for i in range(LINE_SLOTS)]
        for i, (line, ext, lname) in enumerate(self.lines):
            self.linekey_buttons[i].setText(ext)
            self.linekey_buttons[i].setAccessibleName(f"{self.who} line key {i + 1}: {ext} {lname}")
        for b in self.linekey_buttons[len(self.lines):]:
            b.setEnabled(False)
        self.keypad_buttons: dict[str, QPushButton] = {}
        for row, keys in enumerate(art.KEYPAD):
            for col, k in enumerate(keys):
                b = self._button(f"key_{KEY_NAMES.get(k, k)}", f"key {k}", art.keypad_rect(row, col),
                                 lambda _=False, k=k: self.key_digit(k))
                b.setText(k)
                self.keypad_buttons[k] = b
        self.hard_buttons: dict[str, QPushButton] = {}
        for name_, rect in {**art.FEATURE_KEYS, **art.AUDIO_KEYS}.items():
            b = self._button(name_, name_, rect, lambda _=False, n=name_: self.press_hard_key(n))
            b.setText(name_.capitalize())
            b.setCheckable(name_ in LAMPS)     # lit = checked (set by refresh, not by the click)
            self.hard_buttons[name_] = b
        for part in ("up", "down", "left", "right", "select"):
            b = self._button(f"nav_{part}", f"navigation {part}", art.nav_rect(part),
                             lambda _=False, p=part: self.press_nav(p))
            self.hard_buttons[f"nav_{part}"] = b
        # the screen's text for tools, where it is painted (the art stays the only drawing)
        self._texts: list[tuple[a11y.ScreenText, QRectF]] = []
        self.screen_parts: dict[str, a11y.ScreenText] = {}
        for part, rect in SCREEN_PARTS.items():
            t = a11y.ScreenText(self, f"mpp_{self.key}_screen_{part}", f"{self.who} screen {part}")
            self.screen_parts[part] = t
            self._texts.append((t, rect))

        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.refresh)
        self.ticker.start()
        self.refresh()

    # ----- widget plumbing -----------------------------------------------------------------
    def _button(self, suffix: str, accessible: str, rect: QRectF, handler) -> QPushButton:
        b = QPushButton("", self)
        b.setObjectName(f"mpp_{self.key}_{suffix}")
        a11y.name(b, f"{self.who} {accessible}")
        b.setFocusPolicy(Qt.NoFocus)
        b.setFlat(True)
        b.setCursor(Qt.PointingHandCursor)
        b.setStyleSheet(BUTTON_STYLE)
        b.clicked.connect(handler)
        self._buttons.append((b, rect))
        return b

    def sizeHint(self) -> QSize:
        s = self._scale or 1.0
        return QSize(round(BASE_W * s), round(BASE_H * s))

    def minimumSizeHint(self) -> QSize:
        return QSize(round(BASE_W * 0.5), round(BASE_H * 0.5))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, w: int) -> int:
        return round(w * BASE_H / BASE_W)

    def setScale(self, factor: float) -> None:
        """Fix the phone at `factor` x its base size (1.0 = 100 %, 2.0 = 200 %)."""
        self._scale = factor
        self.setFixedSize(self.sizeHint())
        self.updateGeometry()

    def _transform(self) -> tuple[float, float, float]:
        s = min(self.width() / BASE_W, self.height() / BASE_H)
        return s, (self.width() - BASE_W * s) / 2, (self.height() - BASE_H * s) / 2

    def resizeEvent(self, event) -> None:
        s, ox, oy = self._transform()
        for b, r in [*self._buttons, *self._texts]:
            b.setGeometry(QRect(round(ox + r.left() * s), round(oy + r.top() * s),
                                round(r.width() * s), round(r.height() * s)))
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:
        s, ox, oy = self._transform()
        p = QPainter(self)
        p.translate(ox, oy)
        p.scale(s, s)
        art.paint_phone(p, self.skin, self._screen, self.model, self._lamps())
        p.end()

    def _lamps(self) -> dict[str, bool]:
        return {"speaker": self.audio == "speaker", "headset": self.audio == "headset", "mute": self.muted,
                "mwi": self.mwi > 0}

    # ----- what tests and the main window read ---------------------------------------------
    def screen_text(self) -> str:
        """Every string drawn on the screen, one per line."""
        return "\n".join(self._screen.texts())

    def softkey_labels(self) -> list[str]:
        """The softkey labels visible now (up to 4, left to right; 'More' when there are pages)."""
        return [label for label in self._screen.softkeys if label]

    def recording_icon(self) -> str:
        """'recording', 'paused' or 'none': the icon on the Calls screen for the selected line."""
        return self._screen.indicator

    def message_lamp(self) -> bool:
        """True while the message-waiting lamp is lit (new voicemail messages)."""
        return self.mwi > 0

    def line_icon(self, index: int) -> str:
        """The recording glyph on line key `index` ('recording' / 'paused' / 'none')."""
        rows = self._screen.lines
        return rows[index].indicator if index < len(rows) else "none"

    # ----- state -> screen -----------------------------------------------------------------
    def _state(self, line: str) -> str:
        return device_view.line_state(self.sim, line)

    def _entry(self) -> device_view.Entry:
        return device_view.Entry(self.pending, self.dial_string, self.composing)

    def refresh(self) -> None:
        """Draw the device view model (app/device_view.py) of the selected line; the clock,
        the timer's ticking, paging and the number being typed are this face's own."""
        now = time.time()
        views = {line: device_view.line_view(self.sim, line) for line, _, _ in self.lines}
        states = {line: v.state for line, v in views.items()}
        # an incoming call selects its line when the selected line is not busy
        for line, state in states.items():
            if (state == "ringing" and self._prev_states.get(line) != "ringing" and line != self.selected
                    and states.get(self.selected) in ("idle", "ended", "down", None)):
                self.selected = line
                self.page = 0
        self._prev_states = states
        line = self.selected
        v = views[line]
        state, call = v.state, v.call
        self.muted = v.muted
        self.mwi = self.sim.messages_waiting(self.user_id)   # the lamp: the primary line's mailbox
        view = v.recording

        # the short message on each recording state change
        if view and call:
            mark = (view.get("state"), view.get("message"), view.get("indicator"))
            if self._seen_rec.get(call["call"]) != mark:
                self._seen_rec[call["call"]] = mark
                if view.get("message"):
                    self._note = (view["message"], now + MESSAGE_SECONDS)

        scr = Screen()
        scr.header_left = f"{self.user.extension}  {self.user.name}"
        scr.header_right = time.strftime("%H:%M  %a %b %d", time.localtime(now)).replace(" 0", " ")
        scr.lines = [LineRow(ext, lname, states[lid], views[lid].mpp_indicator, lid == line)
                     for lid, ext, lname in self.lines]
        scr.indicator = v.mpp_indicator
        scr.muted = self.muted and state in ("connected", "held")
        if self._note[1] > now and state not in ("idle", "down"):
            scr.banner = self._note[0]
        if self._error[1] > now:
            scr.error = self._error[0]

        entry = self._entry()
        shown = device_view.mpp_screen(v, entry)
        scr.state, scr.title, scr.subtitle = shown.state, shown.title, shown.subtitle
        if shown.clock:
            scr.title = time.strftime("%H:%M", time.localtime(now))
            scr.subtitle = time.strftime("%A, %B %d", time.localtime(now)).replace(" 0", " ")
        if shown.timer_since:
            scr.timer = device_view.elapsed(now - shown.timer_since)

        labels = device_view.mpp_softkeys(v, entry)
        if labels != self._labels:
            self._labels = labels
            self.page = 0
        scr.softkeys = self._page_of(labels)
        for i, (b, label) in enumerate(zip(self.softkey_buttons, scr.softkeys)):
            b.setText(label)
            b.setEnabled(bool(label))
            b.setAccessibleName(f"{self.who} softkey {label}" if label else f"{self.who} softkey {i + 1} blank")
        self._screen = scr
        self._show_for_tools(scr)
        self.update()

    def _show_for_tools(self, scr: Screen) -> None:
        """What is painted, for assistive tech and GUI test tools (ui/a11y.py)."""
        rec = {"recording": "REC", "paused": "PAUSED"}.get(scr.indicator, "")
        shown = {"header": scr.header_left, "clock": scr.header_right, "state": scr.state,
                 "timer": scr.timer, "title": scr.title, "subtitle": scr.subtitle, "rec": rec,
                 "muted": "Muted" if scr.muted else "", "note": scr.error or scr.banner}
        for part, text in shown.items():
            self.screen_parts[part].show_text(text)
        for i, row in enumerate(scr.lines):
            icon = {"recording": ", REC", "paused": ", PAUSED"}.get(row.indicator, "")
            self.linekey_buttons[i].setAccessibleDescription(
                f"{row.label} {row.name}: {device_view.STATE_TEXT.get(row.state, row.state)}{icon}"
                + (", selected" if row.selected else ""))
        lit = self._lamps()
        for lamp in LAMPS:
            a11y.set_checked(self.hard_buttons[lamp], lit["mwi" if lamp == "messages" else lamp])
        self.hard_buttons["messages"].setAccessibleDescription(
            f"{self.mwi} new voicemail messages" if self.mwi else "no new voicemail messages")
        text = "\n".join(scr.texts())
        if self.accessibleDescription() != text:
            self.setAccessibleDescription(text)

    def _page_of(self, labels: list[str]) -> list[str]:
        if len(labels) <= 4:
            return labels + [""] * (4 - len(labels))
        pages = [labels[i:i + 3] for i in range(0, len(labels), 3)]
        self.page %= len(pages)
        shown = pages[self.page]
        return shown + [""] * (3 - len(shown)) + [MORE]

    # ----- actions -------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self._error = (text, time.time() + ERROR_SECONDS)
        self.message.emit(f"{self.selected} (MPP): {text}")

    def act(self, fn, *args) -> None:
        try:
            fn(*args)
            self._error = ("", 0.0)
        except SimulatorError as exc:
            self.show_error(str(exc))
        self.refresh()

    def select_line(self, index: int) -> None:
        if index < len(self.lines):
            self.selected = self.lines[index][0]
            self.page = 0
            self.refresh()

    def press_softkey(self, index: int) -> None:
        labels = self._screen.softkeys
        if index < len(labels) and labels[index]:
            self.press_label(labels[index])

    def press_label(self, label: str) -> None:
        """Act as the softkey labelled `label` does (whether or not it is on the current page)."""
        line = self.selected
        if label == MORE:
            self.page += 1
            self.refresh()
        elif label in SOFTKEY_ORDER:
            self.act(self.sim.press, line, label)
        elif label == "Answer":
            self.act(self.sim.answer, line)
        elif label == "Decline":
            self.act(self.sim.decline, line)
        elif label == "End call":
            call = self.sim.current_call(line)
            if device_view.in_conference(call):     # the host leaving ends the three-way call
                for c in self.sim.live_calls(line):
                    self.act(self.sim.hangup, line, c["call"])
            else:
                self.act(self.sim.hangup, line)
        elif label == "Hold":
            self.act(self.sim.hold, line)
        elif label == "Resume":
            self.act(self.sim.resume, line)
        elif label == "Transfer":
            self.transfer()
        elif label == "Conference":
            self.conference()
        elif label in ("Call", "Dial"):
            self.dial()
        elif label == "Redial":
            if not self.last_dialled:
                self.show_error("No number to redial")
                self.refresh()
            else:
                self.dial_string = self.last_dialled
                self.dial()
        elif label == "New call":
            self.pending = ""
            self.dial_string = ""
            self.composing = True
            self.refresh()
        elif label == "Delete":
            self.dial_string = self.dial_string[:-1]
            self.refresh()
        elif label == "Cancel":
            was_transfer = self.pending in ("transfer", "conference")
            self.dial_string = ""
            self.pending = ""
            self.composing = False
            call = self.sim.current_call(line)
            if device_view.is_consulting(call):
                self.act(self.sim.cancel_transfer, line)     # consult ends, the held call resumes
            elif was_transfer and self._state(line) in ("held", "connected"):
                # nothing dialled yet: back to the call (its hold may still be on the way)
                self.act(self.sim.resume, line)
            else:
                self.refresh()
        elif label == "Restart":
            self.act(self.sim.restart_agent, self.sim.party(line).agent)

    def dial(self) -> None:
        number = self.dial_string.strip()
        if self.pending == "transfer":
            self.transfer()
            return
        if self.pending == "conference":
            self.conference()
            return
        if not number:
            self.show_error("Enter a number first")
            self.refresh()
            return
        self.last_dialled = number
        self.dial_string = ""
        self.composing = False
        self.act(self.sim.dial, self.selected, number)

    def transfer(self) -> None:
        """The MPP's consult transfer: Transfer holds the call and asks for a number; dialling
        it opens the consult call; Transfer again completes (attended once answered, blind while
        it rings). phone/transfer.py does the network side."""
        line = self.selected
        state = self._state(line)
        if device_view.is_consulting(self.sim.current_call(line)):
            self.act(self.sim.complete_transfer, line)
            return
        if state not in ("connected", "held"):
            self.pending = ""
            self.show_error("No call to transfer")
            self.refresh()
            return
        self._hold_then_number("transfer", line, state, "Enter the number to transfer to",
                               self.sim.start_transfer)

    def conference(self) -> None:
        """Conference holds the call and asks for a number; dialling calls the third party;
        Conference again merges the three (phone/conference.py)."""
        line = self.selected
        call = self.sim.current_call(line)
        if device_view.is_consulting(call):
            self.act(self.sim.merge_conference, line)
            return
        state = self._state(line)
        if state not in ("connected", "held") or device_view.in_conference(call):
            self.pending = ""
            self.show_error("No call to add a party to")
            self.refresh()
            return
        self._hold_then_number("conference", line, state, "Enter the number to add",
                               self.sim.start_conference)

    def _hold_then_number(self, kind: str, line: str, state: str, ask: str, start) -> None:
        """Transfer and Conference alike: the first press holds the call and asks for a number,
        the next one (with digits) calls it through `start`."""
        if self.pending != kind:
            self.pending = kind
            self.dial_string = ""
            if state == "connected":
                self.act(self.sim.hold, line)
            else:
                self.refresh()
            return
        if not self.dial_string:
            self.show_error(ask)
            self.refresh()
            return
        number, self.dial_string, self.pending = self.dial_string, "", ""
        self.act(start, line, number)

    def key_digit(self, digit: str) -> None:
        state = self._state(self.selected)
        if state == "connected" and not self.pending:
            self.act(self.sim.dtmf, self.selected, digit)   # in a call: DTMF (*44 etc. are feature codes)
        else:
            self.dial_string += digit
            self.refresh()

    def end_or_clear(self) -> None:
        state = self._state(self.selected)
        if self.pending or self.composing or (self.dial_string and state in ("idle", "ended", "held")):
            self.press_label("Cancel")
        elif state == "ringing":
            call = self.sim.current_call(self.selected)
            self.act(self.sim.decline if call and call.get("direction") == "in" else self.sim.hangup,
                     self.selected)
        elif state in ("dialing", "connected", "held"):
            self.act(self.sim.hangup, self.selected)

    def press_hard_key(self, name: str) -> None:
        state = self._state(self.selected)
        if name == "hold":
            self.press_label("Resume" if state == "held" else "Hold")
        elif name == "transfer":
            self.transfer()
        elif name == "conference":
            self.conference()
        elif name == "messages":
            self.act(self.sim.call_voicemail, self.selected)    # *86: the mailbox's spoken menu
        elif name == "mute":
            # the agent mutes the microphone: the far end and the recording's user channel get silence
            self.act(self.sim.mute, self.selected, not self.sim.muted(self.selected))
        elif name in ("speaker", "headset"):
            if state == "ringing":
                self.audio = name
                self.press_label("Answer")
            elif state in ("idle", "ended") and self.dial_string:
                self.audio = name
                self.dial()
            elif self.audio == name and state in ("dialing", "connected", "held"):
                self.audio = ""
                self.act(self.sim.hangup, self.selected)
            else:
                self.audio = "" if self.audio == name else name
                self.refresh()

    def press_nav(self, part: str) -> None:
        if part in ("up", "down"):
            ids = [l[0] for l in self.lines]
            i = ids.index(self.selected) + (1 if part == "down" else -1)
            self.select_line(i % len(ids))
        elif part in ("left", "right"):
            self.page += 1 if part == "right" else -1
            self.refresh()
        elif part == "select":
            first = next((l for l in self._screen.softkeys if l), "")
            if first:
                self.press_label(first)

    def keyPressEvent(self, event) -> None:
        text = event.text()
        key = event.key()
        if text and text in "0123456789*#":
            self.key_digit(text)
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            if self.dial_string or self.pending or self.composing:
                self.dial()
            elif self._state(self.selected) == "ringing":
                self.press_label("Answer")
        elif key == Qt.Key_Escape:
            self.end_or_clear()
        elif key == Qt.Key_Backspace:
            self.press_label("Delete")
        elif key in SOFTKEY_KEYS:
            self.press_softkey(SOFTKEY_KEYS.index(key))
        elif key in HARD_KEY_KEYS and not event.modifiers() & (Qt.ControlModifier | Qt.AltModifier):
            self.press_hard_key(HARD_KEY_KEYS[key])
        elif key in (Qt.Key_Up, Qt.Key_Down, Qt.Key_Left, Qt.Key_Right):
            self.press_nav({Qt.Key_Up: "up", Qt.Key_Down: "down", Qt.Key_Left: "left",
                            Qt.Key_Right: "right"}[key])
        else:
            super().keyPressEvent(event)
