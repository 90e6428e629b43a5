"""The Webex App face: a dark, rounded Webex-like call window for one user (R-UX-1, R-UX-4, R-UX-5).

    app = WebexApp(sim, "alice")      # the main window calls app.refresh() on every event of
    app.show()                        # alice's agent; a 1 s timer keeps the call timer going

Lines: the user's primary line plus the virtual lines assigned to the user's webex-app. Views:
idle (search/dial field, dial pad, Call), an incoming-call toast (Answer / Decline) and the call
window (avatar, name, number, timer and state, Mute, Hold/Resume, Transfer, More, End). The More
menu holds exactly `sim.menu_items(line)` as recording items (none when the list is empty, R-UX-4)
and a "Keypad" item whose digits go to `sim.dtmf` (so *44, *48, *49, *45 act as feature codes,
R-UX-5). The recording indicator (red dot + "Recording") and the paused indicator (amber pause
glyph + "Recording paused") come from `sim.indicator(line, "webex-app")` (R-UX-1); the recording
message is shown as a banner for a few seconds when it changes.

Every control has an objectName starting with `webex_<user>` (see WebexApp), the same
AccessibleId, and an accessible name starting with "<user> Webex App"; every label's accessible
description is the text it shows (ui/a11y.py).
All art is drawn with QPainter and style sheets; there are no bitmaps.
"""
from __future__ import annotations

import time
import zlib

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QPainter, QPainterPath, QPen, QShortcut
from PySide6.QtWidgets import (QComboBox, QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QPushButton, QStackedWidget, QToolButton, QVBoxLayout,
                               QWidget)

from mppsim.app import device_view
from mppsim.app.simulator import Simulator, SimulatorError

from . import a11y

DEVICE = "webex-app"
KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]
SUBKEYS = {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS", "8": "TUV",
           "9": "WXYZ", "0": "+"}
BANNER_MS = 4000
AVATAR_COLOURS = ["#0a7b83", "#6d4fc2", "#c2477e", "#d17a22", "#3a7bd5", "#2f9e61", "#8a6a2f", "#a23b3b"]

BG = "#121214"
PANEL = "#1e1e21"
RAISED = "#2b2b30"
TEXT = "#f2f2f2"
MUTED = "#a0a0a8"
GREEN = "#1d8f4e"
RED = "#d6323b"
AMBER = "#f0a430"
BLUE = "#0a84d6"

STYLE = f"""
QFrame#webex_root {{ background: {BG}; border-radius: 14px; border: 1px solid #2c2c31; }}
QWidget {{ color: {TEXT}; font-family: 'DejaVu Sans'; font-size: 12px; }}
QLabel {{ background: transparent; }}
QLabel[role="muted"] {{ color: {MUTED}; }}
QLabel[role="title"] {{ font-size: 18px; font-weight: bold; }}
QLabel[role="timer"] {{ color: {MUTED}; font-size: 13px; }}
QLabel[role="status"] {{ color: #ff8a8a; font-size: 11px; }}
QLabel[role="banner"] {{ background: #2d2d33; border: 1px solid #3c3c44; border-radius: 12px;
                         padding: 5px 12px; font-weight: bold; }}
QFrame[role="toast"] {{ background: {PANEL}; border-radius: 14px; border: 1px solid #34343b; }}
QLineEdit {{ background: {RAISED}; border: 1px solid #3a3a41; border-radius: 17px; padding: 7px 14px;
             font-size: 14px; selection-background-color: {BLUE}; }}
QLineEdit:focus {{ border: 1px solid {BLUE}; }}
QComboBox {{ background: {RAISED}; border: 1px solid #3a3a41; border-radius: 10px; padding: 3px 10px; }}
QComboBox::drop-down {{ border: none; width: 18px; }}
QComboBox QAbstractItemView {{ background: {PANEL}; color: {TEXT}; selection-background-color: {BLUE}; }}
QPushButton[role="key"] {{ background: {RAISED}; border: none; border-radius: 24px; font-size: 19px;
                           min-width: 48px; max-width: 48px; min-height: 48px; max-height: 48px; }}
QPushButton[role="key"]:hover {{ background: #3a3a41; }}
QPushButton[role="key"]:pressed {{ background: #4a4a52; }}
QPushButton[role="call"] {{ background: {GREEN}; border: none; border-radius: 17px; padding: 6px 26px;
                            min-height: 22px;
                            font-size: 14px; font-weight: bold; }}
QPushButton[role="call"]:hover {{ background: #22a65b; }}
QPushButton[role="call"]:disabled {{ background: #24352b; color: #6f7f74; }}
QPushButton[role="decline"] {{ background: {RED}; border: none; border-radius: 17px; padding: 6px 18px;
                               min-height: 22px; font-size: 14px; font-weight: bold; }}
QPushButton[role="decline"]:hover {{ background: #e84a52; }}
QPushButton[role="small"] {{ background: {RAISED}; border: none; border-radius: 15px; padding: 5px 14px;
                             min-height: 20px; }}
QMenu {{ background: {PANEL}; color: {TEXT}; border: 1px solid #3a3a41; border-radius: 8px; padding: 6px 0; }}
QMenu::item {{ padding: 7px 26px 7px 18px; }}
QMenu::item:selected {{ background: {BLUE}; }}
QMenu::separator {{ height: 1px; background: #3a3a41; margin: 4px 10px; }}
"""


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def action_name(label: str) -> str:
    """'Start recording' -> 'start_recording' (the suffix of the menu action's objectName)."""
    return safe_name(label.lower())


def initials(name: str) -> str:
    parts = [p for p in name.replace("+", " ").split() if p]
    if not parts:
        return "?"
    if parts[0][0].isdigit():
        return "#"
    return (parts[0][0] + (parts[-1][0] if len(parts) > 1 else "")).upper()


# ----- vector art ---------------------------------------------------------------------------
class Avatar(QWidget):
    """A round avatar: initials on a colour chosen from the name."""

    def __init__(self, size: int = 84, parent=None, accessible: str = ""):
        super().__init__(parent)
        self.setFixedSize(size, size)
        self.name = ""
        self.ring = False
        self.setAccessibleName(accessible)    # fixed: whose avatar it is; the description: of whom

    def set_name(self, name: str, ring: bool = False) -> None:
        if (name, ring) != (self.name, self.ring):
            self.name, self.ring = name, ring
            self.setAccessibleDescription(name)
            self.update()

    def paintEvent(self, _):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = QRectF(self.rect()).adjusted(3, 3, -3, -3)
        if self.ring:
            p.setPen(QPen(QColor(GREEN), 2.5))
            p.setBrush(Qt.NoBrush)
            p.drawEllipse(QRectF(self.rect()).adjusted(1.5, 1.5, -1.5, -1.5))
            r = r.adjusted(3, 3, -3, -3)
        colour = AVATAR_COLOURS[zlib.crc32(self.name.encode()) % len(AVATAR_COLOURS)]
        p.setPen(Qt.NoPen)
        p.setBrush(QColor(colour))
        p.drawEllipse(r)
        f = QFont("DejaVu Sans")
        f.setPixelSize(int(r.height() * 0.36))
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("white"))
        p.drawText(r, Qt.AlignCenter, initials(self.name))


class Glyph(QWidget):
    """The recording glyph: a red dot (recording) or an amber pause sign (paused)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFixedSize(14, 14)
        self.state = "none"

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.setAccessibleDescription(state)
            self.update()

    def paintEvent(self, _):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(Qt.NoPen)
        if self.state == "recording":
            p.setBrush(QColor("#ff3b3b"))
            p.drawEllipse(QRectF(2, 2, 10, 10))
        elif self.state == "paused":
            p.setBrush(QColor(AMBER))
            p.drawRoundedRect(QRectF(2.5, 1.5, 3.5, 11), 1, 1)
            p.drawRoundedRect(QRectF(8, 1.5, 3.5, 11), 1, 1)


def draw_icon(p: QPainter, kind: str, c: QPointF, s: float, colour: QColor) -> None:
    """Line icons in a box of size s centred on c."""
    pen = QPen(colour, max(1.6, s * 0.09), Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.NoBrush)
    x, y, h = c.x(), c.y(), s / 2
    if kind == "mic" or kind == "mic_off":
        p.drawRoundedRect(QRectF(x - h * 0.32, y - h * 0.85, h * 0.64, h * 1.1), h * 0.32, h * 0.32)
        path = QPainterPath()
        path.moveTo(x - h * 0.6, y - h * 0.05)
        path.cubicTo(x - h * 0.6, y + h * 0.75, x + h * 0.6, y + h * 0.75, x + h * 0.6, y - h * 0.05)
        p.drawPath(path)
        p.drawLine(QPointF(x, y + h * 0.55), QPointF(x, y + h * 0.85))
        if kind == "mic_off":
            p.drawLine(QPointF(x - h * 0.8, y - h * 0.8), QPointF(x + h * 0.8, y + h * 0.8))
    elif kind == "hold":
        p.drawLine(QPointF(x - h * 0.3, y - h * 0.6), QPointF(x - h * 0.3, y + h * 0.6))
        p.drawLine(QPointF(x + h * 0.3, y - h * 0.6), QPointF(x + h * 0.3, y + h * 0.6))
    elif kind == "resume":
        path = QPainterPath()
        path.moveTo(x - h * 0.4, y - h * 0.6)
        path.lineTo(x + h * 0.6, y)
        path.lineTo(x - h * 0.4, y + h * 0.6)
        path.closeSubpath()
        p.drawPath(path)
    elif kind == "transfer":
        p.drawLine(QPointF(x - h * 0.7, y - h * 0.3), QPointF(x + h * 0.6, y - h * 0.3))
        p.drawLine(QPointF(x + h * 0.3, y - h * 0.6), QPointF(x + h * 0.6, y - h * 0.3))
        p.drawLine(QPointF(x + h * 0.6, y - h * 0.3), QPointF(x + h * 0.3, y))
        p.drawLine(QPointF(x + h * 0.7, y + h * 0.35), QPointF(x - h * 0.6, y + h * 0.35))
        p.drawLine(QPointF(x - h * 0.3, y + h * 0.05), QPointF(x - h * 0.6, y + h * 0.35))
        p.drawLine(QPointF(x - h * 0.6, y + h * 0.35), QPointF(x - h * 0.3, y + h * 0.65))
    elif kind == "more":
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        for dx in (-0.55, 0, 0.55):
            p.drawEllipse(QPointF(x + h * dx, y), h * 0.14, h * 0.14)
    elif kind in ("end", "answer"):
        # a handset: a thick arc with two ear pieces
        pen.setWidthF(max(2.4, s * 0.16))
        p.setPen(pen)
        p.save()
        p.translate(x, y)
        if kind == "end":
            p.rotate(0)
        else:
            p.rotate(-30)
        rect = QRectF(-h * 0.8, -h * 0.35, h * 1.6, h * 1.2)
        p.drawArc(rect, 30 * 16, 120 * 16)
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        p.drawRoundedRect(QRectF(-h * 0.85, -h * 0.1, h * 0.5, h * 0.32), h * 0.1, h * 0.1)
        p.drawRoundedRect(QRectF(h * 0.35, -h * 0.1, h * 0.5, h * 0.32), h * 0.1, h * 0.1)
        p.restore()
    elif kind == "keypad":
        p.setPen(Qt.NoPen)
        p.setBrush(colour)
        for i in range(3):
            for j in range(3):
                p.drawEllipse(QPointF(x + (i - 1) * h * 0.55, y + (j - 1) * h * 0.55), h * 0.13, h * 0.13)


class Pill(QFrame):
    """The rounded background of the recording indicator (tinted red or amber)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tint = "#3a1f22"

    def set_paused(self, paused: bool) -> None:
        tint = "#3a3019" if paused else "#3a1f22"
        if tint != self.tint:
            self.tint = tint
            self.update()

    def paintEvent(self, _):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(Qt.NoPen)
        p.setBrush(QColor(self.tint))
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.drawRoundedRect(r, r.height() / 2, r.height() / 2)


class RoundButton(QToolButton):
    """A Webex call-control button: a round icon with its label underneath."""

    def __init__(self, label: str, icon: str, colour: str = RAISED, parent=None):
        super().__init__(parent)
        self.setText(label)
        self.icon_kind = icon
        self.colour = colour
        self.active = False
        self.setFixedSize(QSize(66, 74))
        self.setCursor(Qt.PointingHandCursor)
        self.setFocusPolicy(Qt.TabFocus)

    def set_active(self, on: bool) -> None:
        self.active = on
        self.update()

    def paintEvent(self, _):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        enabled = self.isEnabled()
        base = QColor(self.colour)
        if self.active:
            base = QColor("#e8e8ea")
        if self.isDown() or (self.underMouse() and enabled):
            base = base.lighter(125)
        if not enabled:
            base.setAlphaF(0.35)
        d = 48
        circle = QRectF((self.width() - d) / 2, 2, d, d)
        p.setPen(Qt.NoPen)
        p.setBrush(base)
        p.drawEllipse(circle)
        fg = QColor("#111114") if self.active else QColor("white")
        if not enabled:
            fg.setAlphaF(0.4)
        draw_icon(p, self.icon_kind, circle.center(), 22, fg)
        f = QFont("DejaVu Sans")
        f.setPixelSize(11)
        p.setFont(f)
        text = QColor(MUTED if enabled else "#55555c")
        p.setPen(text)
        p.drawText(QRectF(0, d + 6, self.width(), 16), Qt.AlignHCenter | Qt.AlignTop, self.text())


# ----- the face ---------------------------------------------------------------------------------
class WebexApp(QGroupBox):
    """The Webex App of one user (a QGroupBox for its accessible role, grouping: to AT-SPI a plain
    QWidget is a generic filler; it draws no group-box frame). objectNames:

    webex_<user>                      the widget
    webex_<user>_line                 line picker (QComboBox; primary line + webex-app virtual lines)
    webex_<user>_dial_field           search/dial field        webex_<user>_call   Call
    webex_<user>_key_<d>              dial-pad keys (d in 0-9, star, hash)
    webex_<user>_answer / _decline    the incoming-call toast
    webex_<user>_end _hold _resume _mute _transfer _more      call controls (_more has the menu)
    webex_<user>_menu_start_recording / _pause_recording / _resume_recording / _stop_recording
    webex_<user>_menu_keypad          More-menu actions (recording ones exactly sim.menu_items)
    webex_<user>_dtmf_<d>             the in-call keypad (digits go to sim.dtmf)
    webex_<user>_transfer_field / _transfer_go                transfer target, "Transfer now" (blind)
    webex_<user>_transfer_consult                             "Consult first" (hold + consult call)
    webex_<user>_transfer_complete / _transfer_cancel         while consulting
    webex_<user>_conference_add, then _conference_merge       three-way conference (Add to call, Merge)
    webex_<user>_voicemail / _voicemail_badge                 voicemail tab (calls *86) and its new-message badge
    webex_<user>_waiting_label / _waiting_answer / _waiting_decline   call waiting
    webex_<user>_indicator            QLabel: "Recording" / "Recording paused" / ""
    webex_<user>_banner               the recording message, shown for a few seconds
    webex_<user>_caller _number _timer _state _status         labels
    """

    message = Signal(str)   # errors, for the main window's event pane

    def __init__(self, sim: Simulator, user_id: str, parent=None):
        super().__init__(parent)
        self.sim = sim
        self.user_id = user_id
        self.key = safe_name(user_id)
        self.user = sim.party(user_id)
        self.lines = [user_id] + [v.id for v in sim.org.virtual_lines
                                  if v.user == user_id and v.device == DEVICE]
        self.line = user_id
        self.muted = False
        self._menu_items: list[str] = []
        self._banner_seen: tuple | None = None
        self._last_state = "idle"
        self.n = lambda suffix: f"webex_{self.key}_{suffix}"
        self.who = f"{user_id} Webex App"      # every accessible name starts with it

        self.setObjectName(f"webex_{self.key}")
        self.setAccessibleName(f"{self.who}: {self.user.name}")
        self.setFocusPolicy(Qt.StrongFocus)
        self.setFlat(True)
        self.setStyleSheet(STYLE + "WebexApp { border: none; margin: 0px; padding: 0px; }")
        self.setMinimumSize(300, 540)

        root = QFrame()
        root.setObjectName("webex_root")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(root)
        lay = QVBoxLayout(root)
        lay.setContentsMargins(16, 12, 16, 14)
        lay.setSpacing(8)

        # header: Webex mark, own avatar and line picker
        header = QHBoxLayout()
        brand = QLabel(f"<span style='color:{BLUE}; font-size:15px; font-weight:bold'>Webex</span>")
        brand.setAccessibleName(f"{self.who} brand")
        me = Avatar(30, accessible=f"{self.who} own avatar")
        me.set_name(self.user.name)
        self.line_box = QComboBox()
        self.line_box.setObjectName(self.n("line"))
        self.line_box.setAccessibleName(f"{self.who} line")
        for who in self.lines:
            p = sim.party(who)
            self.line_box.addItem(f"{p.name} · {p.number}", who)
        self.line_box.setVisible(len(self.lines) > 1)
        self.line_box.currentIndexChanged.connect(self._pick_line)
        me_label = self._label("me", f"{self.user.name} · {self.user.number}", role="muted")
        me_label.setVisible(len(self.lines) == 1)
        header.addWidget(brand)
        header.addStretch(1)
        header.addWidget(self.line_box)
        header.addWidget(me_label)
        header.addWidget(me)
        lay.addLayout(header)

        self.banner = self._label("banner", "", role="banner")
        self.banner.setAlignment(Qt.AlignCenter)
        self.banner.setVisible(False)
        self.banner_timer = QTimer(self)
        self.banner_timer.setSingleShot(True)
        self.banner_timer.timeout.connect(lambda: self.banner.setVisible(False))
        lay.addWidget(self.banner)

        self.stack = QStackedWidget()
        lay.addWidget(self.stack, 1)
        self.idle_page = self._build_idle()
        self.toast_page = self._build_toast()
        self.call_page = self._build_call()
        for page in (self.idle_page, self.toast_page, self.call_page):
            self.stack.addWidget(page)

        self.status = self._label("status", "", role="status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

        a11y.identify_all(self)
        esc = QShortcut(QKeySequence(Qt.Key_Escape), self, self.on_escape)
        esc.setContext(Qt.WidgetWithChildrenShortcut)

        self.ticker = QTimer(self)
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.refresh)
        self.ticker.start()
        self.refresh()

    def paintEvent(self, _event) -> None:  # noqa: N802
        pass        # the frame inside (webex_root) is the window's look; a group box draws none

    # ----- building ---------------------------------------------------------------------------
    def _label(self, suffix: str, text: str, role: str | None = None) -> QLabel:
        label = a11y.Readout(text)
        label.setObjectName(self.n(suffix))
        label.setAccessibleName(f"{self.who} {suffix.replace('_', ' ')}")
        if role:
            label.setProperty("role", role)
        return label

    def _button(self, suffix: str, label: str, role: str, handler, accessible: str | None = None) -> QPushButton:
        b = QPushButton(label)
        b.setObjectName(self.n(suffix))
        b.setAccessibleName(f"{self.who} {accessible or label}")
        b.setProperty("role", role)
        b.setCursor(Qt.PointingHandCursor)
        b.clicked.connect(handler)
        return b

    def _build_idle(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 6, 0, 0)
        v.setSpacing(10)
        self.dial_field = QLineEdit()
        self.dial_field.setObjectName(self.n("dial_field"))
        self.dial_field.setAccessibleName(f"{self.who} search or dial")
        self.dial_field.setPlaceholderText("Search or dial")
        self.dial_field.returnPressed.connect(self.on_call)
        v.addWidget(self.dial_field)
        self.idle_note = self._label("idle_note", "", role="muted")
        self.idle_note.setAlignment(Qt.AlignCenter)
        v.addWidget(self.idle_note)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(10)
        for i, digit in enumerate(KEYS):
            sub = SUBKEYS.get(digit, "")
            b = self._button(f"key_{ {'*': 'star', '#': 'hash'}.get(digit, digit)}", digit, "key",
                             lambda _=False, d=digit: self.type_digit(d))
            b.setAccessibleName(f"{self.who} dial {digit}")
            b.setToolTip(sub)
            b.setFocusPolicy(Qt.NoFocus)
            grid.addWidget(b, i // 3, i % 3, Qt.AlignCenter)
        wrap = QHBoxLayout()
        wrap.addStretch(1)
        wrap.addLayout(grid)
        wrap.addStretch(1)
        v.addLayout(wrap)
        self.call_button = self._button("call", "Call", "call", self.on_call)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.call_button)
        row.addStretch(1)
        v.addLayout(row)
        v.addStretch(1)
        # the voicemail tab: its badge counts new messages; opening it calls the mailbox (*86)
        vm = QHBoxLayout()
        self.voicemail_button = self._button("voicemail", "Voicemail", "small", self.on_voicemail)
        self.voicemail_badge = self._label("voicemail_badge", "")
        self.voicemail_badge.setStyleSheet("background: #ff3b30; color: white; border-radius: 9px;"
                                           " padding: 1px 7px; font-weight: bold;")
        self.voicemail_badge.setVisible(False)
        vm.addStretch(1)
        vm.addWidget(self.voicemail_button)
        vm.addWidget(self.voicemail_badge)
        vm.addStretch(1)
        v.addLayout(vm)
        return page

    def on_voicemail(self) -> None:
        self.act(self.sim.call_voicemail, self.line)

    def voicemail_count(self) -> int:
        """The badge's number (0 = no badge)."""
        return int(self.voicemail_badge.text() or 0) if self.voicemail_badge.isVisible() else 0

    def _build_toast(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 30, 0, 0)
        toast = QFrame()
        toast.setProperty("role", "toast")
        t = QVBoxLayout(toast)
        t.setContentsMargins(18, 18, 18, 18)
        t.setSpacing(6)
        self.toast_avatar = Avatar(72, accessible=f"{self.who} caller avatar")
        self.toast_title = self._label("toast_title", "Incoming call", role="muted")
        self.toast_name = self._label("toast_name", "", role="title")
        self.toast_number = self._label("toast_number", "", role="muted")
        for w in (self.toast_title, self.toast_name, self.toast_number):
            w.setAlignment(Qt.AlignCenter)
        t.addWidget(self.toast_avatar, 0, Qt.AlignHCenter)
        t.addWidget(self.toast_title)
        t.addWidget(self.toast_name)
        t.addWidget(self.toast_number)
        row = QHBoxLayout()
        row.setSpacing(12)
        self.answer_button = self._button("answer", "Answer", "call", self.on_answer)
        self.decline_button = self._button("decline", "Decline", "decline", self.on_decline)
        row.addWidget(self.decline_button)
        row.addWidget(self.answer_button)
        t.addSpacing(8)
        t.addLayout(row)
        v.addWidget(toast)
        v.addStretch(1)
        return page

    def _build_call(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 10, 0, 0)
        v.setSpacing(4)
        self.avatar = Avatar(96, accessible=f"{self.who} remote avatar")
        v.addWidget(self.avatar, 0, Qt.AlignHCenter)
        v.addSpacing(6)
        self.caller = self._label("caller", "", role="title")
        self.number = self._label("number", "", role="muted")
        self.timer_label = self._label("timer", "", role="timer")
        self.state_label = self._label("state", "", role="muted")
        for w in (self.caller, self.number, self.timer_label, self.state_label):
            w.setAlignment(Qt.AlignCenter)
            v.addWidget(w)

        # recording indicator: a pill with a painted glyph and the text
        self.pill = Pill()
        pill = QHBoxLayout(self.pill)
        pill.setContentsMargins(10, 3, 12, 3)
        pill.setSpacing(6)
        self.glyph = Glyph()
        self.glyph.setAccessibleName(f"{self.who} recording glyph")
        self.indicator = self._label("indicator", "")
        self.indicator.setAccessibleName(f"{self.who} recording indicator")
        pill.addWidget(self.glyph)
        pill.addWidget(self.indicator)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.pill)
        row.addStretch(1)
        v.addSpacing(4)
        v.addLayout(row)
        self.pill.setVisible(False)

        # in-call keypad (More > Keypad): digits go to sim.dtmf
        self.keypad = QWidget()
        self.keypad.setObjectName(self.n("keypad"))
        self.keypad.setAccessibleName(f"{self.who} in-call keypad")
        grid = QGridLayout(self.keypad)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        for i, digit in enumerate(KEYS):
            b = self._button(f"dtmf_{ {'*': 'star', '#': 'hash'}.get(digit, digit)}", digit, "key",
                             lambda _=False, d=digit: self.send_dtmf(d))
            b.setAccessibleName(f"{self.who} keypad {digit}")
            b.setFocusPolicy(Qt.NoFocus)
            grid.addWidget(b, i // 3, i % 3, Qt.AlignCenter)
        self.keypad.setVisible(False)
        v.addWidget(self.keypad, 0, Qt.AlignHCenter)

        # blind transfer target
        self.transfer_row = QWidget()
        tr = QHBoxLayout(self.transfer_row)
        tr.setContentsMargins(0, 0, 0, 0)
        self.transfer_field = QLineEdit()
        self.transfer_field.setObjectName(self.n("transfer_field"))
        self.transfer_field.setAccessibleName(f"{self.who} transfer to")
        self.transfer_field.setPlaceholderText("Transfer to number")
        self.transfer_field.returnPressed.connect(self.on_transfer_go)
        # the Webex App's two ways: "Transfer now" (blind) and "Consult first" (phone/transfer.py)
        go = self._button("transfer_go", "Transfer now", "small", self.on_transfer_go)
        consult = self._button("transfer_consult", "Consult first", "small", self.on_consult)
        add = self._button("conference_add", "Add to call", "small", self.on_conference_add)
        tr.addWidget(self.transfer_field, 1)
        tr.addWidget(go)
        tr.addWidget(consult)
        tr.addWidget(add)
        self.transfer_row.setVisible(False)
        v.addWidget(self.transfer_row)
        # while consulting: complete the transfer or go back to the held call
        self.consult_row = QWidget()
        cr = QHBoxLayout(self.consult_row)
        cr.setContentsMargins(0, 0, 0, 0)
        self.complete_button = self._button("transfer_complete", "Complete transfer", "small",
                                            self.on_complete)
        cr.addWidget(self.complete_button)
        cr.addWidget(self._button("transfer_cancel", "Cancel transfer", "small",
                                  lambda: self.act(self.sim.cancel_transfer, self.line)))
        self.consult_row.setVisible(False)
        v.addWidget(self.consult_row)
        # call waiting: a second call rings while this one is up (answering holds this one)
        self.waiting_row = QWidget()
        wv = QVBoxLayout(self.waiting_row)
        wv.setContentsMargins(0, 0, 0, 0)
        self.waiting_label = self._label("waiting_label", "", role="muted")
        self.waiting_label.setAlignment(Qt.AlignCenter)
        wv.addWidget(self.waiting_label)
        wr = QHBoxLayout()
        wr.addWidget(self._button("waiting_answer", "Answer", "small",
                                  lambda: self.act(self.sim.answer, self.line), "Answer waiting call"))
        wr.addWidget(self._button("waiting_decline", "Decline", "small",
                                  lambda: self.act(self.sim.decline, self.line), "Decline waiting call"))
        wv.addLayout(wr)
        self.waiting_row.setVisible(False)
        v.addWidget(self.waiting_row)
        v.addStretch(1)

        # controls
        controls = QHBoxLayout()
        controls.setSpacing(0)
        self.mute_button = self._round("mute", "Mute", "mic", self.on_mute)
        self.hold_button = self._round("hold", "Hold", "hold", self.on_hold)
        self.resume_button = self._round("resume", "Resume", "resume", self.on_resume)
        self.transfer_button = self._round("transfer", "Transfer", "transfer", self.on_transfer)
        self.more_button = self._round("more", "More", "more", None)
        self.more_menu = QMenu(self.more_button)
        self.more_menu.setObjectName(self.n("more_menu"))
        self.more_menu.setAccessibleName(f"{self.who} More menu")
        self.more_menu.setStyleSheet(STYLE)
        # a click opens the menu where AT-SPI sees it (not an InstantPopup: see ui/a11y.py)
        self.more_opener = a11y.ToolMenu(self.more_button, self.more_menu)
        self.keypad_action = QAction("Keypad", self)   # not the menu's: clear() deletes its own
        self.keypad_action.setObjectName(self.n("menu_keypad"))
        self.keypad_action.triggered.connect(self.toggle_keypad)
        self._rebuild_menu([])
        for b in (self.mute_button, self.hold_button, self.resume_button, self.transfer_button,
                  self.more_button):
            controls.addWidget(b)
        v.addLayout(controls)
        self.end_button = self._round("end", "End", "end", self.on_end, colour=RED)
        self.end_button.setFixedSize(QSize(80, 74))
        v.addWidget(self.end_button, 0, Qt.AlignHCenter)
        return page

    def _round(self, suffix: str, label: str, icon: str, handler, colour: str = RAISED) -> RoundButton:
        b = RoundButton(label, icon, colour)
        b.setObjectName(self.n(suffix))
        b.setAccessibleName(f"{self.who} {label}")
        if handler is not None:
            b.clicked.connect(handler)
        return b

    # ----- reading the Simulator -----------------------------------------------------------
    def _pick_line(self, index: int) -> None:
        if index >= 0:
            self.line = self.line_box.itemData(index)
            self.refresh()

    def _active_line(self) -> str:
        """The line to show: the picked line, unless another line rings or has a live call."""
        states = {who: self.sim.call_state(who) for who in self.lines}
        if states[self.line] in ("connected", "held", "dialing", "ringing"):
            return self.line
        for wanted in (("ringing",), ("connected", "held", "dialing")):
            for who in self.lines:
                if states[who] in wanted:
                    return who
        return self.line

    def menu_labels(self) -> list[str]:
        """The recording items currently under More (R-UX-4)."""
        return list(self._menu_items)

    def indicator_state(self) -> str:
        """'recording', 'paused' or 'none', as the indicator shows it (R-UX-1)."""
        return {"Recording": "recording", "Recording paused": "paused"}.get(self.indicator.text(), "none")

    def refresh(self) -> None:
        """Draw the device view model's Webex App window (app/device_view.py) of the line shown;
        the call timer's ticking, the banner's few seconds and the open panels are this face's."""
        sim = self.sim
        shown = self._active_line()
        if shown != self.line:
            self.line = shown
            self.line_box.blockSignals(True)
            self.line_box.setCurrentIndex(self.lines.index(shown))
            self.line_box.blockSignals(False)
        v = device_view.line_view(sim, self.line)
        w = device_view.webex_window(v, self.user_id)
        state, call, up = v.state, v.call, v.state != "down"
        self.waiting_row.setVisible(bool(w.waiting))
        if w.waiting:
            self.waiting_label.setText(w.waiting)
        waiting_msgs = sim.messages_waiting(self.user_id) if up else 0
        self.voicemail_badge.setText(str(waiting_msgs) if waiting_msgs else "")
        self.voicemail_badge.setVisible(waiting_msgs > 0)
        self._show_mute(v.muted)

        if w.page == "toast":
            self.stack.setCurrentWidget(self.toast_page)
            self.toast_avatar.set_name(w.avatar, ring=True)
            self.toast_name.setText(w.caller)
            self.toast_number.setText(w.number)
            self.toast_title.setText(w.toast_title)
        elif w.page == "call":
            self.stack.setCurrentWidget(self.call_page)
            self._render_call(w)
        else:
            self.stack.setCurrentWidget(self.idle_page)
            self.idle_note.setText(w.idle_note)
            self.call_button.setEnabled(w.button("call").enabled)
            self.keypad.setVisible(False)
            self.transfer_row.setVisible(False)

        # recording: indicator, menu items, message banner (R-UX-1, R-UX-4)
        ind = w.indicator
        text = {"recording": "Recording", "paused": "Recording paused"}.get(ind, "")
        self.indicator.setText(text)
        self.indicator.setStyleSheet(f"color: {AMBER if ind == 'paused' else '#ff6b6b'}; font-weight: bold;")
        self.glyph.set_state(ind)
        self.pill.set_paused(ind == "paused")
        self.pill.setVisible(ind != "none")
        if w.menu_items != self._menu_items:
            self._rebuild_menu(w.menu_items)
        view = v.recording if call and up else None
        msg = (view or {}).get("message") or ""
        seen = (call["call"] if call else None, msg, (view or {}).get("state"))
        if msg and seen != self._banner_seen and state != "ended":
            self.show_banner(msg)
        self._banner_seen = seen
        self._last_state = state

    def _render_call(self, w: device_view.WebexWindow) -> None:
        self.avatar.set_name(w.avatar)
        self.caller.setText(w.caller)
        self.number.setText(w.number)
        self.timer_label.setText(w.timer or device_view.elapsed(time.time() - (w.timer_since or time.time())))
        self.state_label.setText(w.state)
        complete = (w.button("conference_merge") or w.button("transfer_complete")
                    or device_view.Button("transfer_complete", "Complete transfer"))
        self.consult_row.setVisible(w.button("transfer_cancel") is not None)
        self.complete_button.setText(complete.label)
        self.complete_button.setObjectName(self.n(complete.name))
        a11y.name(self.complete_button, f"{self.who} {complete.label}")
        self.complete_button.setEnabled(complete.enabled)
        for name, button in (("mute", self.mute_button), ("hold", self.hold_button),
                             ("resume", self.resume_button), ("transfer", self.transfer_button),
                             ("more", self.more_button)):
            b = w.button(name)
            button.setVisible(b is not None)
            if b is not None:
                button.setEnabled(b.enabled)
        if not self.more_button.isEnabled():
            self.keypad.setVisible(False)      # the keypad is a More item: not while the call is dialing

    def _rebuild_menu(self, items: list[str]) -> None:
        """Exactly `items` as recording actions, then Keypad (R-UX-4: none when items is empty)."""
        self.more_menu.clear()
        for item in items:
            action = QAction(item, self.more_menu)
            action.setObjectName(self.n(f"menu_{action_name(item)}"))
            action.triggered.connect(lambda _=False, i=item: self.pick(i))
            self.more_menu.addAction(action)
        if items:
            self.more_menu.addSeparator()
        self.keypad_action.setText("Hide keypad" if self.keypad.isVisible() else "Keypad")
        self.more_menu.addAction(self.keypad_action)
        self._menu_items = list(items)

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(True)
        self.banner_timer.start(BANNER_MS)

    # ----- actions ----------------------------------------------------------------------------
    def act(self, fn, *args) -> bool:
        try:
            fn(*args)
            self.status.setText("")
            ok = True
        except SimulatorError as exc:
            self.status.setText(str(exc))
            self.message.emit(f"{self.line} (Webex App): {exc}")
            ok = False
        self.refresh()
        return ok

    def pick(self, item: str) -> None:
        """A recording item under More (R-UX-4)."""
        self.more_menu.hide()      # before the menu is rebuilt under the chosen action
        self.act(self.sim.menu, self.line, item)

    def type_digit(self, digit: str) -> None:
        self.dial_field.setText(self.dial_field.text() + digit)

    def send_dtmf(self, digits: str) -> None:
        """The in-call keypad: digits go to the network, so *44 etc. are feature codes (R-UX-5)."""
        self.act(self.sim.dtmf, self.line, digits)

    def toggle_keypad(self) -> None:
        self.more_menu.hide()
        self.keypad.setVisible(not self.keypad.isVisible())
        if self.keypad.isVisible():
            self.transfer_row.setVisible(False)
        self.keypad_action.setText("Hide keypad" if self.keypad.isVisible() else "Keypad")

    def on_call(self) -> None:
        number = self.dial_field.text().strip()
        if not number:
            self.status.setText("Type a number or extension first")
            return
        if self.act(self.sim.dial, self.line, number):
            self.dial_field.clear()

    def on_answer(self) -> None:
        self.act(self.sim.answer, self.line)

    def on_decline(self) -> None:
        self.act(self.sim.decline, self.line)

    def on_end(self) -> None:
        self.act(self.sim.hangup, self.line)

    def on_hold(self) -> None:
        self.act(self.sim.hold, self.line)

    def on_resume(self) -> None:
        self.act(self.sim.resume, self.line)

    def on_mute(self) -> None:
        """Mute / unmute the microphone at the agent (the far end and the recording's user
        channel get silence; the recording is not paused)."""
        self.act(self.sim.mute, self.line, not self.sim.muted(self.line))

    def _show_mute(self, muted: bool) -> None:
        a11y.set_checked(self.mute_button, muted)     # pressed in = muted, as it is drawn (a click toggles it)
        if muted != self.muted or self.mute_button.text() != ("Unmute" if muted else "Mute"):
            self.muted = muted
            self.mute_button.setText("Unmute" if muted else "Mute")
            self.mute_button.setAccessibleName(f"{self.who} {'Unmute' if muted else 'Mute'}")
            self.mute_button.icon_kind = "mic_off" if muted else "mic"
            self.mute_button.set_active(muted)

    def on_transfer(self) -> None:
        self.transfer_row.setVisible(not self.transfer_row.isVisible())
        if self.transfer_row.isVisible():
            self.keypad.setVisible(False)
            self.transfer_field.setFocus()

    def on_transfer_go(self) -> None:
        number = self.transfer_field.text().strip()
        if not number:
            self.status.setText("Type the number to transfer to")
            return
        if self.act(self.sim.transfer, self.line, number):
            self.transfer_field.clear()
            self.transfer_row.setVisible(False)

    def on_complete(self) -> None:
        call = self.sim.current_call(self.line) or {}
        if call.get("consult_kind") == "conference":
            self.act(self.sim.merge_conference, self.line)
        else:
            self.act(self.sim.complete_transfer, self.line)

    def on_conference_add(self) -> None:
        """Add to call: the call goes on hold and the new party is called; Merge joins all three."""
        number = self.transfer_field.text().strip()
        if not number:
            self.status.setText("Type the number to add")
            return
        if self.act(self.sim.start_conference, self.line, number):
            self.transfer_field.clear()
            self.transfer_row.setVisible(False)

    def on_consult(self) -> None:
        """Consult first: the call goes on hold and a consult call opens on the same line."""
        number = self.transfer_field.text().strip()
        if not number:
            self.status.setText("Type the number to consult")
            return
        if self.act(self.sim.start_transfer, self.line, number):
            self.transfer_field.clear()
            self.transfer_row.setVisible(False)

    def on_escape(self) -> None:
        state = self.sim.call_state(self.line)
        if state == "ringing":
            self.on_decline()
        elif state in ("dialing", "connected", "held"):
            self.on_end()

    def keyPressEvent(self, event) -> None:
        text = event.text()
        state = self.sim.call_state(self.line)
        if text and text in "0123456789*#":
            if state in ("connected", "held"):
                self.send_dtmf(text)
            else:
                self.type_digit(text)
                self.dial_field.setFocus()
            return
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            if state == "ringing":
                self.on_answer()
            elif state not in ("dialing", "connected", "held"):
                self.on_call()
            return
        if event.key() == Qt.Key_Escape:
            self.on_escape()
            return
        super().keyPressEvent(event)


# ----- screenshots ------------------------------------------------------------------------------
def save_screenshots(sim: Simulator, out_dir, user: str = "alice", caller: str = "bob") -> list:
    """Stage a call to `user` (Always with Pause/Resume in the demo org) and save
    webex-idle/-incoming/-recording/-paused/-more-menu PNGs. `sim` must be started."""
    from pathlib import Path

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    face = WebexApp(sim, user)
    face.resize(340, 600)
    face.show()

    def pump(seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            face.refresh()
            if until is not None and until():
                break
            time.sleep(0.02)

    saved = []

    def grab(name: str, widget=None) -> None:
        app.processEvents()
        saved.append(out / name)
        (widget or face).grab().save(str(saved[-1]))

    face.dial_field.setText(sim.party(caller).number)
    pump(0.2)
    grab("webex-idle.png")
    face.dial_field.clear()
    sim.dial(caller, sim.party(user).number)
    pump(3, lambda: sim.call_state(user) == "ringing")
    pump(0.2)
    grab("webex-incoming.png")
    face.on_answer()
    pump(5, lambda: face.indicator_state() == "recording")
    pump(1.2)
    grab("webex-recording.png")
    face.more_menu.popup(face.more_button.mapToGlobal(face.more_button.rect().bottomLeft()))
    pump(0.3)
    # the open menu drawn over the call window, above the More button (one PNG shows both)
    shot = face.grab()
    menu = face.more_menu.grab()
    corner = face.more_button.mapTo(face, face.more_button.rect().topRight())
    painter = QPainter(shot)
    painter.drawPixmap(min(corner.x() - menu.width() // 2, shot.width() - menu.width() - 8),
                       corner.y() - menu.height() - 4, menu)
    painter.end()
    saved.append(out / "webex-more-menu.png")
    shot.save(str(saved[-1]))
    face.more_menu.hide()
    face.pick("Pause recording")
    pump(5, lambda: face.indicator_state() == "paused")
    pump(0.3)
    grab("webex-paused.png")
    face.on_end()
    pump(3, lambda: sim.call_state(user) == "ended")
    face.close()
    return saved


if __name__ == "__main__":   # python -m mppsim.ui.webex_app DIR [ORG]: the Webex App screenshots
    import os
    import sys
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance() or QApplication([])
    org = sys.argv[2] if len(sys.argv) > 2 else "examples/demo-org.yaml"
    with tempfile.TemporaryDirectory() as run, Simulator(org, run_dir=run) as s:
        for path in save_screenshots(s, sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"):
            print(path)
