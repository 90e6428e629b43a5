"""Vector art of the MPP desk phone face (QPainter only, no bitmaps): sharp at any scale.

Everything is drawn in a fixed base coordinate system (BASE_W x BASE_H); the widget scales the
painter, so 100 %, 200 % or any window size renders crisp. `Screen` is what the logic in
ui/mpp_phone.py decides to show; `paint_phone` only draws it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QLinearGradient, QPainter, QPainterPath, QPen

BASE_W, BASE_H = 580.0, 492.0

# ----- geometry (base coordinates) --------------------------------------------------------------
SCREEN = QRectF(150, 20, 340, 244)
HEADER_H = 24.0
SOFTBAR_H = 26.0
LINE_COL_W = 104.0
LINE_SLOTS = 5
LINE_PITCH = 38.0
LINE_TOP = SCREEN.top() + HEADER_H + 4


def line_key_rect(i: int, right: bool = False) -> QRectF:
    x = 500 if right else 92
    return QRectF(x, LINE_TOP + i * LINE_PITCH + 3, 48, LINE_PITCH - 8)


def line_label_rect(i: int) -> QRectF:
    return QRectF(SCREEN.left() + 2, LINE_TOP + i * LINE_PITCH, LINE_COL_W - 4, LINE_PITCH - 2)


def softkey_rect(i: int) -> QRectF:
    w = (SCREEN.width() - 3 * 8) / 4
    return QRectF(SCREEN.left() + i * (w + 8), SCREEN.bottom() + 10, w, 22)


def softlabel_rect(i: int) -> QRectF:
    w = SCREEN.width() / 4
    return QRectF(SCREEN.left() + i * w, SCREEN.bottom() - SOFTBAR_H, w, SOFTBAR_H)


CALL_AREA = QRectF(SCREEN.left() + LINE_COL_W + 4, SCREEN.top() + HEADER_H + 4,
                   SCREEN.width() - LINE_COL_W - 10, SCREEN.height() - HEADER_H - SOFTBAR_H - 8)

KEYPAD = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"], ["*", "0", "#"]]
KEY_LETTERS = {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS", "8": "TUV",
               "9": "WXYZ", "0": "+", "1": ""}


def keypad_rect(row: int, col: int) -> QRectF:
    return QRectF(322 + col * 58, 312 + row * 44, 50, 36)


NAV_CENTER = QPointF(238, 362)
NAV_R = 46.0
NAV_SELECT_R = 17.0


def nav_rect(part: str) -> QRectF:
    """Hit areas of the navigation cluster: up, down, left, right, select."""
    c, r, s = NAV_CENTER, NAV_R, NAV_SELECT_R
    return {
        "select": QRectF(c.x() - s, c.y() - s, 2 * s, 2 * s),
        "up": QRectF(c.x() - s, c.y() - r, 2 * s, r - s),
        "down": QRectF(c.x() - s, c.y() + s, 2 * s, r - s),
        "left": QRectF(c.x() - r, c.y() - s, r - s, 2 * s),
        "right": QRectF(c.x() + s, c.y() - s, r - s, 2 * s),
    }[part]


# left column: feature keys; bottom row: audio keys
FEATURE_KEYS = {"transfer": QRectF(92, 312, 84, 28), "conference": QRectF(92, 348, 84, 28),
                "hold": QRectF(92, 384, 84, 28), "messages": QRectF(198, 414, 80, 22)}
MWI_LAMP = QRectF(26, 28, 38, 9)      # the message-waiting light on top of the handset
AUDIO_KEYS = {"headset": QRectF(92, 440, 60, 30), "speaker": QRectF(160, 440, 60, 30),
              "mute": QRectF(228, 440, 60, 30)}
VOLUME = QRectF(506, 312, 36, 158)


@dataclass
class Skin:
    name: str
    body_top: QColor
    body_bottom: QColor
    bezel: QColor
    screen_bg: QColor
    screen_fg: QColor
    screen_dim: QColor
    header_bg: QColor
    header_fg: QColor
    softbar_bg: QColor
    key_face: QColor
    key_edge: QColor
    key_text: QColor
    accent: QColor          # selected line highlight
    rec: QColor             # recording glyph
    paused: QColor          # paused glyph
    error_bg: QColor
    message_bg: QColor
    message_fg: QColor
    handset: QColor
    color_screen: bool = True


SKINS = {
    "color": Skin("color", QColor("#3a3d42"), QColor("#1c1e21"), QColor("#0b0c0d"),
                  QColor("#f4f6f8"), QColor("#17212b"), QColor("#5b6773"),
                  QColor("#0f5e8c"), QColor("#ffffff"), QColor("#dde3e8"),
                  QColor("#2b2e33"), QColor("#0e0f11"), QColor("#e9edf0"),
                  QColor("#cfe6f6"), QColor("#d32f2f"), QColor("#f5a300"),
                  QColor("#c62828"), QColor("#263238"), QColor("#ffffff"), QColor("#18191b"), True),
    "mono": Skin("mono", QColor("#a7abaf"), QColor("#86898d"), QColor("#4d5054"),
                 QColor("#c9d2bf"), QColor("#141a10"), QColor("#4a5540"),
                 QColor("#141a10"), QColor("#c9d2bf"), QColor("#b6bfac"),
                 QColor("#dcdfe2"), QColor("#5c5f63"), QColor("#23262a"),
                 QColor("#141a10"), QColor("#141a10"), QColor("#141a10"),
                 QColor("#141a10"), QColor("#141a10"), QColor("#c9d2bf"), QColor("#707376"), False),
}


@dataclass
class LineRow:
    label: str            # extension
    name: str
    state: str            # idle | dialing | ringing | connected | held | ended | down
    indicator: str        # recording | paused | none
    selected: bool


@dataclass
class Screen:
    """What the screen shows; every string here is text drawn on the screen."""
    header_left: str = ""
    header_right: str = ""
    lines: list[LineRow] = field(default_factory=list)
    state: str = ""            # top line of the call area: Connected, Ringing, ...
    timer: str = ""
    title: str = ""            # party name, or the idle / dial prompt
    subtitle: str = ""         # party number or the digits being dialled
    indicator: str = "none"
    banner: str = ""           # the short recording message
    error: str = ""
    softkeys: list[str] = field(default_factory=lambda: ["", "", "", ""])
    muted: bool = False

    def texts(self) -> list[str]:
        out = [self.header_left, self.header_right]
        for row in self.lines:
            out += [row.label, row.name] + (["REC" if row.indicator == "recording" else "PAUSED"]
                                            if row.indicator != "none" else [])
        out += [self.state, self.timer, self.title, self.subtitle]
        out += {"recording": ["REC"], "paused": ["PAUSED"]}.get(self.indicator, [])
        out += [self.banner, self.error] + (["Muted"] if self.muted else []) + list(self.softkeys)
        return [t for t in out if t]


# ----- painting ---------------------------------------------------------------------------------
def _font(px: float, bold: bool = False) -> QFont:
    f = QFont("DejaVu Sans")
    f.setPixelSize(max(1, round(px)))
    f.setBold(bold)
    f.setHintingPreference(QFont.PreferNoHinting)
    return f


def _key(p: QPainter, skin: Skin, r: QRectF, radius: float = 6.0, face: QColor | None = None) -> None:
    face = face or skin.key_face
    g = QLinearGradient(r.topLeft(), r.bottomLeft())
    g.setColorAt(0, face.lighter(125))
    g.setColorAt(1, face)
    p.setPen(QPen(skin.key_edge, 1.2))
    p.setBrush(QBrush(g))
    p.drawRoundedRect(r, radius, radius)


def _text(p: QPainter, r: QRectF, text: str, color: QColor, px: float, bold: bool = False,
          align=Qt.AlignCenter) -> None:
    p.setFont(_font(px, bold))
    p.setPen(color)
    metrics_text = p.fontMetrics().elidedText(text, Qt.ElideRight, int(r.width()))
    p.drawText(r, align, metrics_text)


def rec_glyph(p: QPainter, skin: Skin, center: QPointF, size: float, kind: str) -> None:
    """The recording-in-progress glyph (a dot) or the paused glyph (two bars)."""
    if kind == "recording":
        p.setPen(QPen(skin.rec.darker(130), 0.8))
        p.setBrush(skin.rec)
        p.drawEllipse(center, size / 2, size / 2)
    elif kind == "paused":
        w, h = size * 0.3, size
        p.setPen(Qt.NoPen)
        p.setBrush(skin.paused)
        p.drawRoundedRect(QRectF(center.x() - size * 0.42, center.y() - h / 2, w, h), 1, 1)
        p.drawRoundedRect(QRectF(center.x() + size * 0.12, center.y() - h / 2, w, h), 1, 1)


STATE_COLOURS = {"connected": "#2e9d4a", "ringing": "#f5a300", "dialing": "#2e9d4a",
                 "held": "#d32f2f", "down": "#7a7a7a"}


def _led(p: QPainter, skin: Skin, r: QRectF, state: str) -> None:
    colour = STATE_COLOURS.get(state)
    lit = QColor(colour) if colour else QColor("#3b3f44" if skin.color_screen else "#9a9da1")
    p.setPen(Qt.NoPen)
    p.setBrush(lit)
    p.drawRoundedRect(QRectF(r.left() + 6, r.center().y() - 3, 10, 6), 2, 2)


def _handset(p: QPainter, skin: Skin) -> None:
    path = QPainterPath()
    path.addRoundedRect(QRectF(14, 22, 62, 448), 28, 28)
    grip = QPainterPath()
    grip.addRoundedRect(QRectF(30, 120, 30, 252), 14, 14)
    g = QLinearGradient(14, 0, 76, 0)
    g.setColorAt(0, skin.handset.lighter(150))
    g.setColorAt(0.5, skin.handset)
    g.setColorAt(1, skin.handset.darker(130))
    p.setPen(QPen(skin.bezel, 1.2))
    p.setBrush(QBrush(g))
    p.drawPath(path)
    p.setBrush(skin.handset.darker(115))
    p.drawPath(grip)
    # ear and mouth piece slots
    p.setPen(QPen(skin.handset.lighter(190), 1.6))
    for y in (48, 56, 64, 428, 436, 444):
        p.drawLine(QPointF(36, y), QPointF(54, y))


def _icon(p: QPainter, name: str, r: QRectF, colour: QColor) -> None:
    """Small line icons for the hardware keys."""
    p.save()
    p.setPen(QPen(colour, 1.6, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
    p.setBrush(Qt.NoBrush)
    c = r.center()
    if name == "headset":
        p.drawArc(QRectF(c.x() - 8, c.y() - 8, 16, 16), 0, 180 * 16)
        p.drawRoundedRect(QRectF(c.x() - 9, c.y() - 1, 4, 7), 1, 1)
        p.drawRoundedRect(QRectF(c.x() + 5, c.y() - 1, 4, 7), 1, 1)
    elif name == "speaker":
        path = QPainterPath(QPointF(c.x() - 9, c.y() - 3))
        for pt in ((c.x() - 5, c.y() - 3), (c.x(), c.y() - 8), (c.x(), c.y() + 8), (c.x() - 5, c.y() + 3),
                   (c.x() - 9, c.y() + 3)):
            path.lineTo(QPointF(*pt))
        path.closeSubpath()
        p.drawPath(path)
        p.drawArc(QRectF(c.x() - 4, c.y() - 6, 12, 12), -50 * 16, 100 * 16)
        p.drawArc(QRectF(c.x() - 6, c.y() - 10, 20, 20), -50 * 16, 100 * 16)
    elif name == "mute":
        p.drawRoundedRect(QRectF(c.x() - 3, c.y() - 9, 6, 11), 3, 3)
        p.drawArc(QRectF(c.x() - 6, c.y() - 6, 12, 11), 180 * 16, 180 * 16)
        p.drawLine(QPointF(c.x(), c.y() + 5), QPointF(c.x(), c.y() + 9))
        p.drawLine(QPointF(c.x() - 8, c.y() - 9), QPointF(c.x() + 8, c.y() + 8))
    p.restore()


def paint_phone(p: QPainter, skin: Skin, screen: Screen, model: str, lit: dict[str, bool]) -> None:
    p.setRenderHint(QPainter.Antialiasing, True)
    p.setRenderHint(QPainter.TextAntialiasing, True)
    # body
    body = QRectF(2, 2, BASE_W - 4, BASE_H - 4)
    g = QLinearGradient(body.topLeft(), body.bottomLeft())
    g.setColorAt(0, skin.body_top)
    g.setColorAt(1, skin.body_bottom)
    p.setPen(QPen(skin.bezel, 2))
    p.setBrush(QBrush(g))
    p.drawRoundedRect(body, 22, 22)
    _handset(p, skin)
    # brand and model
    _text(p, QRectF(496, 4, 74, 14), "cisco", skin.key_text.darker(110) if skin.color_screen
          else skin.key_text, 10, True)
    _text(p, QRectF(92, 474, 196, 13), f"IP Phone {model}", skin.key_text if not skin.color_screen
          else QColor("#9aa3ab"), 9)

    # line keys (physical) on both sides of the screen
    rows = screen.lines
    for i in range(LINE_SLOTS):
        for right in (False, True):
            r = line_key_rect(i, right)
            _key(p, skin, r, 5)
            state = rows[i].state if (not right and i < len(rows)) else "idle"
            _led(p, skin, r, state)

    # screen with bezel
    bezel = SCREEN.adjusted(-6, -6, 6, 6)
    p.setPen(Qt.NoPen)
    p.setBrush(skin.bezel)
    p.drawRoundedRect(bezel, 8, 8)
    p.setBrush(skin.screen_bg)
    p.drawRect(SCREEN)
    _paint_screen(p, skin, screen)

    # softkeys (physical), under the screen
    for i in range(4):
        r = softkey_rect(i)
        _key(p, skin, r, 8)
        p.setPen(QPen(skin.key_text, 1.4))
        p.drawLine(QPointF(r.center().x() - 10, r.center().y()), QPointF(r.center().x() + 10, r.center().y()))

    # feature keys
    for name, r in FEATURE_KEYS.items():
        face = QColor("#b71c1c") if name == "hold" and skin.color_screen else None
        _key(p, skin, r, 6, face)
        colour = QColor("#ffffff") if (name == "hold" and skin.color_screen) else skin.key_text
        _text(p, r, {"transfer": "Transfer", "conference": "Conference", "hold": "Hold",
                     "messages": "Messages"}[name], colour, 10 if name == "messages" else 11)
    # message-waiting lamp (red while the mailbox has new messages)
    if lit.get("mwi"):
        p.setPen(Qt.NoPen)
        p.setBrush(QColor("#ff3b30"))
        p.drawRoundedRect(MWI_LAMP, 4, 4)
    # audio keys
    for name, r in AUDIO_KEYS.items():
        on = lit.get(name, False)
        _key(p, skin, r, 6, QColor("#2e7d32") if (on and skin.color_screen) else
             (QColor("#6d7175") if on else None))
        _icon(p, name, r, QColor("#ffffff") if on else skin.key_text)
    # volume rocker
    _key(p, skin, VOLUME, 16)
    _text(p, QRectF(VOLUME.left(), VOLUME.top() + 6, VOLUME.width(), 24), "+", skin.key_text, 18, True)
    _text(p, QRectF(VOLUME.left(), VOLUME.bottom() - 30, VOLUME.width(), 24), "−", skin.key_text, 18, True)

    # navigation cluster
    c = NAV_CENTER
    ring = QLinearGradient(c.x(), c.y() - NAV_R, c.x(), c.y() + NAV_R)
    ring.setColorAt(0, skin.key_face.lighter(130))
    ring.setColorAt(1, skin.key_face)
    p.setPen(QPen(skin.key_edge, 1.4))
    p.setBrush(QBrush(ring))
    p.drawEllipse(c, NAV_R, NAV_R)
    p.setBrush(skin.key_face.lighter(115) if skin.color_screen else skin.key_face.darker(105))
    p.drawEllipse(c, NAV_SELECT_R, NAV_SELECT_R)
    p.setPen(Qt.NoPen)
    p.setBrush(skin.key_text)
    d = (NAV_R + NAV_SELECT_R) / 2
    for dx, dy in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        tip = QPointF(c.x() + dx * (d + 5), c.y() + dy * (d + 5))
        base = QPointF(c.x() + dx * (d - 3), c.y() + dy * (d - 3))
        side = QPointF(dy * 5, dx * 5)
        tri = QPainterPath(tip)
        tri.lineTo(base + side)
        tri.lineTo(base - side)
        tri.closeSubpath()
        p.drawPath(tri)

    # keypad
    for row, keys in enumerate(KEYPAD):
        for col, k in enumerate(keys):
            r = keypad_rect(row, col)
            _key(p, skin, r, 8)
            letters = KEY_LETTERS.get(k, "")
            _text(p, QRectF(r.left(), r.top() + 2, r.width(), 20 if letters else r.height() - 4), k,
                  skin.key_text, 16, True)
            if letters:
                _text(p, QRectF(r.left(), r.top() + 20, r.width(), 13), letters, skin.key_text.darker(120)
                      if skin.color_screen else skin.key_text, 8)


def _paint_screen(p: QPainter, skin: Skin, s: Screen) -> None:
    p.save()
    p.setClipRect(SCREEN)
    fg, dim = skin.screen_fg, skin.screen_dim
    # header
    head = QRectF(SCREEN.left(), SCREEN.top(), SCREEN.width(), HEADER_H)
    p.fillRect(head, skin.header_bg)
    _text(p, head.adjusted(8, 0, -120, 0), s.header_left, skin.header_fg, 12, True,
          Qt.AlignLeft | Qt.AlignVCenter)
    _text(p, head.adjusted(0, 0, -8, 0), s.header_right, skin.header_fg, 11, False,
          Qt.AlignRight | Qt.AlignVCenter)

    # line labels beside the line keys
    p.setPen(QPen(dim, 0.6))
    p.drawLine(QPointF(SCREEN.left() + LINE_COL_W, head.bottom() + 2),
               QPointF(SCREEN.left() + LINE_COL_W, SCREEN.bottom() - SOFTBAR_H - 2))
    for i, row in enumerate(s.lines[:LINE_SLOTS]):
        r = line_label_rect(i)
        if row.selected:
            p.setPen(Qt.NoPen)
            p.setBrush(skin.accent)
            p.drawRoundedRect(r.adjusted(0, 1, 0, -1), 4, 4)
        text_fg = skin.screen_bg if (row.selected and not skin.color_screen) else fg
        colour = STATE_COLOURS.get(row.state)
        if colour and skin.color_screen:
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(colour))
            p.drawEllipse(QPointF(r.left() + 8, r.top() + 11), 4, 4)
        elif colour:
            p.setPen(QPen(text_fg, 1.2))
            p.setBrush(text_fg if row.state in ("connected", "dialing") else Qt.NoBrush)
            p.drawEllipse(QPointF(r.left() + 8, r.top() + 11), 3.5, 3.5)
        _text(p, QRectF(r.left() + 15, r.top() + 2, r.width() - 34, 18), row.label, text_fg, 12, True,
              Qt.AlignLeft | Qt.AlignVCenter)
        _text(p, QRectF(r.left() + 4, r.top() + 19, r.width() - 8, 14), row.name, text_fg, 9.5, False,
              Qt.AlignLeft | Qt.AlignVCenter)
        if row.indicator != "none":
            glyph_skin = skin
            if row.selected and not skin.color_screen:
                glyph_skin = Skin(**{**skin.__dict__, "rec": skin.screen_bg, "paused": skin.screen_bg})
            rec_glyph(p, glyph_skin, QPointF(r.right() - 10, r.top() + 11), 10, row.indicator)

    # call area
    a = CALL_AREA
    if s.state or s.timer:
        _text(p, QRectF(a.left(), a.top(), a.width() * 0.62, 18), s.state, dim if s.state != "Ringing"
              else (QColor("#b26a00") if skin.color_screen else fg), 12, True, Qt.AlignLeft | Qt.AlignVCenter)
        _text(p, QRectF(a.left(), a.top(), a.width(), 18), s.timer, fg, 12, False,
              Qt.AlignRight | Qt.AlignVCenter)
    _text(p, QRectF(a.left(), a.top() + 30, a.width(), 26), s.title, fg, 19, True,
          Qt.AlignLeft | Qt.AlignVCenter)
    _text(p, QRectF(a.left(), a.top() + 56, a.width(), 20), s.subtitle, dim, 13, False,
          Qt.AlignLeft | Qt.AlignVCenter)
    if s.indicator in ("recording", "paused"):
        pill = QRectF(a.left(), a.top() + 84, 84 if s.indicator == "paused" else 62, 22)
        edge = skin.rec if s.indicator == "recording" else skin.paused
        p.setPen(QPen(edge, 1.4))
        p.setBrush(QColor(edge.red(), edge.green(), edge.blue(), 30) if skin.color_screen else Qt.NoBrush)
        p.drawRoundedRect(pill, 11, 11)
        rec_glyph(p, skin, QPointF(pill.left() + 13, pill.center().y()), 11, s.indicator)
        _text(p, QRectF(pill.left() + 22, pill.top(), pill.width() - 24, pill.height()),
              "REC" if s.indicator == "recording" else "PAUSED",
              edge.darker(115) if skin.color_screen else fg, 11, True, Qt.AlignLeft | Qt.AlignVCenter)
    if s.muted:
        _text(p, QRectF(a.right() - 60, a.top() + 84, 60, 22), "Muted", dim, 11, True,
              Qt.AlignRight | Qt.AlignVCenter)
    note, bg = (s.error, skin.error_bg) if s.error else (s.banner, skin.message_bg)
    if note:
        box = QRectF(a.left(), a.bottom() - 34, a.width(), 30)
        p.setPen(Qt.NoPen)
        p.setBrush(bg)
        p.drawRoundedRect(box, 6, 6)
        colour = QColor("#ffffff") if skin.color_screen else skin.message_fg
        p.setFont(_font(11, True))
        metrics = p.fontMetrics()
        if metrics.horizontalAdvance(note) > box.width() - 12:   # two lines, then elided
            p.setFont(_font(9.5, True))
            p.setPen(colour)
            p.drawText(box.adjusted(6, 1, -6, -1), Qt.AlignCenter | Qt.TextWordWrap, note)
        else:
            _text(p, box.adjusted(6, 0, -6, 0), note, colour, 11, True)

    # softkey labels along the bottom of the screen
    bar = QRectF(SCREEN.left(), SCREEN.bottom() - SOFTBAR_H, SCREEN.width(), SOFTBAR_H)
    p.fillRect(bar, skin.softbar_bg)
    p.setPen(QPen(dim, 0.6))
    for i in range(1, 4):
        x = SCREEN.left() + i * SCREEN.width() / 4
        p.drawLine(QPointF(x, bar.top() + 5), QPointF(x, bar.bottom() - 5))
    for i, label in enumerate(s.softkeys[:4]):
        colour = fg
        if skin.color_screen and label in ("Record", "PauseRec", "ResumeRec", "StopRec"):
            colour = QColor("#b71c1c")
        _text(p, softlabel_rect(i).adjusted(2, 0, -2, 0), label, colour, 11.5, True)
    p.restore()
