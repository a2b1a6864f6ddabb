"""Presenter mode: larger fonts, a clean dark/light theme that follows the
system, hidable controls, and a slow-motion auto-advance of step events.

``SlowMotion`` is a QTimer around an ``advance()`` callback (the session's
step-event) at a chosen pace; it stops by itself when ``advance`` returns None,
a non-finite event, or when ``should_stop(event)`` says so (breakpoints).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

FONT_SCALE = 1.5


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    text: str
    highlight: str
    active: str  # the active layer's highlight colour


LIGHT = Theme("light", "#fafafa", "#ffffff", "#111111", "#3070c0", "#ffb000")
DARK = Theme("dark", "#1e1f22", "#26282c", "#e8e8e8", "#5b9bd5", "#ffc640")


def system_prefers_dark() -> bool:
    """True when the desktop asks for a dark colour scheme (Qt 6.5+ style hints)."""
    app = QGuiApplication.instance()
    if app is None:
        return False
    hints = app.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is None:
        return False
    return scheme() == Qt.ColorScheme.Dark


def system_theme() -> Theme:
    return DARK if system_prefers_dark() else LIGHT


def palette_for(theme: Theme) -> QPalette:
    palette = QPalette()
    roles = {QPalette.ColorRole.Window: theme.window, QPalette.ColorRole.Base: theme.base,
             QPalette.ColorRole.AlternateBase: theme.window, QPalette.ColorRole.Button: theme.window,
             QPalette.ColorRole.WindowText: theme.text, QPalette.ColorRole.Text: theme.text,
             QPalette.ColorRole.ButtonText: theme.text, QPalette.ColorRole.Highlight: theme.highlight,
             QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: theme.base,
             QPalette.ColorRole.ToolTipText: theme.text}
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    return palette


def events_per_second_to_interval(pace: float) -> int:
    """Timer interval (ms) for ``pace`` events per second (clamped to 0.1 .. 60)."""
    pace = min(60.0, max(0.1, float(pace)))
    return int(round(1000.0 / pace))


class SlowMotion(QObject):
    """Auto-advance the step-through at ``pace`` events per second."""

    advanced = Signal(object)   # the event
    stopped = Signal(str)       # why

    def __init__(self, advance: Callable[[], object], pace: float = 2.0,
                 should_stop: Callable[[object], str | None] | None = None, parent=None):
        super().__init__(parent)
        self.advance = advance
        self.should_stop = should_stop
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.set_pace(pace)

    def set_pace(self, pace: float) -> None:
        self.pace = float(pace)
        self.timer.setInterval(events_per_second_to_interval(pace))

    def start(self) -> None:
        self.timer.start()

    def stop(self, reason: str = "paused") -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.stopped.emit(reason)

    @property
    def running(self) -> bool:
        return self.timer.isActive()

    def _tick(self) -> None:
        event = self.advance()
        if event is None:
            self.stop("nothing to advance")
            return
        self.advanced.emit(event)
        if getattr(event, "kind", None) == "nonfinite":
            self.stop(event.detail.get("message", "non-finite value"))
            return
        reason = self.should_stop(event) if self.should_stop else None
        if reason:
            self.stop(str(reason))


class PresenterMode(QObject):
    """Switch a window into presenter mode and back.

    ``hidable`` widgets (toolbars, docks with controls) are hidden while on when
    ``hide_controls`` is set; fonts grow by ``FONT_SCALE``; the palette follows the
    system's dark/light preference (re-applied when it changes).
    """

    toggled = Signal(bool)

    def __init__(self, window: QWidget, hidable: list[QWidget] | None = None, parent=None):
        super().__init__(parent or window)
        self.window = window
        self.hidable = list(hidable or [])
        self.hide_controls = False
        self.on = False
        self._saved_font = None
        self._saved_palette = None
        self._hidden: list[QWidget] = []
        self.theme: Theme | None = None
        app = QGuiApplication.instance()
        hints = app.styleHints() if app is not None else None
        if hints is not None and hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda *_: self.on and self.apply_theme())

    def set_enabled(self, on: bool) -> None:
        if on == self.on:
            return
        self.on = on
        app = QApplication.instance()
        if on:
            self._saved_font = app.font()
            self._saved_palette = app.palette()
            font = app.font()
            size = font.pointSizeF() if font.pointSizeF() > 0 else 10.0
            font.setPointSizeF(size * FONT_SCALE)
            app.setFont(font)
            self.apply_theme()
            if self.hide_controls:
                self._hidden = [w for w in self.hidable if w.isVisible()]
                for w in self._hidden:
                    w.hide()
        else:
            app.setFont(self._saved_font)
            app.setPalette(self._saved_palette)
            for w in self._hidden:
                w.show()
            self._hidden = []
            self.theme = None
        self.toggled.emit(on)

    def apply_theme(self, theme: Theme | None = None) -> Theme:
        self.theme = theme or system_theme()
        QApplication.instance().setPalette(palette_for(self.theme))
        return self.theme

    def toggle(self) -> None:
        self.set_enabled(not self.on)
