"""What assistive technology and GUI test tools read from outside the process (issue 23).

On Linux they see the app through AT-SPI (pyatspi, dogtail, Accerciser, Robot Framework's desktop
libraries, screen readers), which shows Qt's accessibility interface: a role, a name, a
description, states and actions per object, and an AccessibleId. The convention every face keeps:

- the **name** is fixed, unique in the window and says whose device it is and what the object is:
  "alice MPP softkey Answer", "bob Webex App caller", "Pat Customer PSTN display";
- the **description** of a readout is the text it shows now ("Bob Jones", "Connected", "REC"),
  kept in step with what is painted: a tool reads the description, as a screen reader does;
- the **AccessibleId** is the widget's objectName (docs/gui-testing.md), so a tool can find a
  control by the same key a pytest-qt test uses;
- lamps and toggles are checkable, so their lit / pressed state is the AT-SPI `checked` state.

Qt shows no popup window (QMenu) among the application's children, and an InstantPopup tool
button's ShowMenu action does nothing (its Press opens the menu in a nested event loop, which
blocks the AT-SPI call): `ToolMenu` opens a face's menu as a small top-level tool window on a
plain click instead, so it is in the tree and its items answer the Press action.
"""
from __future__ import annotations

import re

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QLineEdit, QMenu, QTabBar, QWidget

_TAGS = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """A label's text without its rich-text tags, as it reads on screen."""
    return _TAGS.sub("", text).replace("&nbsp;", " ").replace("&amp;", "&").strip()


def name(widget: QWidget, accessible: str, description: str | None = None) -> QWidget:
    """Give `widget` its accessible name (and description), and its objectName as AccessibleId."""
    widget.setAccessibleName(accessible)
    if description is not None:
        widget.setAccessibleDescription(description)
    identify(widget)
    return widget


def identify(widget: QWidget) -> None:
    """The objectName as AccessibleId (AT-SPI `accessible_id`), when the widget has one."""
    if widget.objectName() and widget.accessibleIdentifier() != widget.objectName():
        widget.setAccessibleIdentifier(widget.objectName())


def identify_all(root: QWidget) -> None:
    """`identify` for `root` and every widget under it (names set later keep theirs); a tab
    bar's scroll arrows (Qt names every one "Scroll Left") get their tab widget's name, a line
    edit's clear button the field's."""
    identify(root)
    for w in root.findChildren(QWidget):
        identify(w)
    for field in root.findChildren(QLineEdit):      # setClearButtonEnabled's button has no name
        for button in field.findChildren(QAbstractButton):
            if not button.accessibleName():
                button.setAccessibleName(f"{field.accessibleName() or field.objectName()}: clear")
    for bar in root.findChildren(QTabBar):
        owner = bar.parentWidget()
        whose = (owner.objectName() if owner is not None else "") or bar.objectName() or "tabs"
        for arrow in bar.findChildren(QAbstractButton):
            if arrow.objectName() in ("ScrollLeftButton", "ScrollRightButton"):
                side = "left" if arrow.objectName() == "ScrollLeftButton" else "right"
                arrow.setAccessibleName(f"{whose.replace('_', ' ')} scroll {side}")


class Readout(QLabel):
    """A label whose accessible description is always the text it shows (its name stays fixed)."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setAccessibleDescription(plain(text))

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        if self.accessibleDescription() != plain(text):
            self.setAccessibleDescription(plain(text))


class ScreenText(QLabel):
    """Text painted by its parent, read by tools: a transparent, mouse-transparent label placed
    over the painted text (so its geometry is where the text is) that draws nothing itself."""

    def __init__(self, parent: QWidget, object_name: str, accessible: str):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self.setFocusPolicy(Qt.NoFocus)
        name(self, accessible, "")

    def show_text(self, text: str) -> None:
        """Keep the readout in step with what the parent paints ("" when nothing is shown)."""
        if self.text() != text:
            super().setText(text)
            self.setAccessibleDescription(text)

    def paintEvent(self, _event) -> None:  # noqa: N802
        pass     # the parent paints the text (ui/mpp_art.py): drawing it twice would show


def set_checked(button: QAbstractButton, on: bool) -> None:
    """A lamp or toggle's lit state, readable as `checked` (no clicked signal is sent)."""
    if not button.isCheckable():
        button.setCheckable(True)
    if button.isChecked() != on:
        button.blockSignals(True)
        button.setChecked(on)
        button.blockSignals(False)


class ToolMenu(QObject):
    """Open `menu` on a click of `button` as a top-level tool window (see the module docstring).

    The menu closes when one of its items is chosen, on Esc, and on a mouse press outside it."""

    def __init__(self, button: QAbstractButton, menu: QMenu):
        super().__init__(button)
        self.button, self.menu = button, menu
        menu.setWindowFlags(Qt.Tool | Qt.FramelessWindowHint | Qt.WindowStaysOnTopHint)
        menu.triggered.connect(lambda _action: menu.hide())
        button.clicked.connect(self.toggle)
        menu.installEventFilter(self)

    def toggle(self) -> None:
        if self.menu.isVisible():
            self.menu.hide()
        else:
            self.open()

    def open(self) -> None:
        """Show the menu under the button (above it when the screen has no room below)."""
        self.menu.adjustSize()
        below = self.button.mapToGlobal(QPoint(0, self.button.height()))
        screen = self.button.screen().availableGeometry() if self.button.screen() else None
        pos = below
        if screen is not None and below.y() + self.menu.height() > screen.bottom():
            pos = self.button.mapToGlobal(QPoint(0, -self.menu.height()))
        self.menu.move(pos)
        self.menu.show()
        self.menu.raise_()
        self.menu.activateWindow()
        self.menu.setFocus()
        QApplication.instance().installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        kind = event.type()
        if obj is self.menu and kind == QEvent.Hide:
            QApplication.instance().removeEventFilter(self)
        elif kind == QEvent.MouseButtonPress and self.menu.isVisible() and isinstance(obj, QWidget):
            inside = obj is self.menu or self.menu.isAncestorOf(obj)
            if not inside and obj is not self.button:
                self.menu.hide()
        return False
