"""Presenter mode (F12): a layout of its own for a projector, larger fonts, a clean
dark/light theme that follows the system, hidable controls, and a slow-motion
auto-advance of step events.

Switched on, the window takes the presenter layout (gui.model.layouts.PRESENTER:
the graph, the selected layer's maps and formulas, the curves; the other docks
out of the way) and every font grows by ``FONT_SCALE``: the application's, each
widget's own (map titles, statistics, formulas) and the plots' axes (heatmaps'
colour bars, the curves), with the axes' widths scaled to match. Switched off,
the exact layout before it comes back (geometry and dock state), and every font.

``SlowMotion`` is a QTimer around an ``advance()`` callback (the session's
step-event) at a chosen pace; it stops by itself when ``advance`` returns None,
a non-finite event, or when ``should_stop(event)`` says so (breakpoints).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import shiboken6
from PySide6.QtCore import QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

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


def _app() -> QApplication:
    """The running QApplication (presenter mode needs the widgets' application)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication), "presenter mode needs a QApplication"
    return app


def system_prefers_dark() -> bool:
    """True when the desktop asks for a dark colour scheme (Qt 6.5+ style hints)."""
    app = QGuiApplication.instance()
    if not isinstance(app, QGuiApplication):
        return False
    hints = app.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is None:
        return False
    return scheme() == Qt.ColorScheme.Dark


def system_theme() -> Theme:
    return DARK if system_prefers_dark() else LIGHT


#: Disabled controls (the GPU button without a GPU) in each theme: visibly greyed out.
DISABLED_TEXT = {"light": "#9a9a9a", "dark": "#6c6f75"}


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
    muted = QColor(DISABLED_TEXT[theme.name])
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, muted)
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
            detail = getattr(event, "detail", {})
            self.stop(detail.get("message", "non-finite value"))
            return
        reason = self.should_stop(event) if self.should_stop else None
        if reason:
            self.stop(str(reason))


class FontScaler:
    """Scales every font under a window by a factor and puts each one back: widgets'
    own fonts, pyqtgraph axes' tick fonts, label styles and fixed widths."""

    def __init__(self) -> None:
        self._widgets: list[tuple[QWidget, QFont]] = []
        self._axes: list[tuple[object, QFont | None, float | None, dict]] = []

    def scale(self, root: QWidget, factor: float) -> None:
        for widget in [root, *root.findChildren(QWidget)]:
            if widget.testAttribute(Qt.WidgetAttribute.WA_SetFont):
                font = QFont(widget.font())
                self._widgets.append((widget, QFont(font)))
                font.setPointSizeF(_points(font) * factor)
                widget.setFont(font)
        try:
            import pyqtgraph as pg
        except ImportError:
            return
        for view in [w for w in root.findChildren(QWidget) if isinstance(w, pg.GraphicsView)]:
            for item in view.scene().items():
                if isinstance(item, pg.AxisItem):
                    self._scale_axis(item, factor)

    def _scale_axis(self, axis, factor: float) -> None:
        tick_font = axis.style.get("tickFont")
        fixed = axis.fixedWidth if axis.orientation in ("left", "right") else axis.fixedHeight
        self._axes.append((axis, QFont(tick_font) if tick_font is not None else None, fixed,
                           dict(axis.labelStyle)))
        font = QFont(tick_font) if tick_font is not None else QFont()
        font.setPointSizeF(_points(font) * factor)
        axis.setStyle(tickFont=font)
        style = dict(axis.labelStyle)
        size = str(style.get("font-size", ""))
        if size.endswith("pt"):
            style["font-size"] = f"{float(size[:-2]) * factor:g}pt"
            axis.labelStyle = style
            axis._updateLabel()
        if fixed is not None:
            (axis.setWidth if axis.orientation in ("left", "right") else axis.setHeight)(fixed * factor)

    def restore(self) -> None:
        for widget, font in reversed(self._widgets):
            if shiboken6.isValid(widget):
                widget.setFont(font)
        for axis, tick_font, fixed, style in reversed(self._axes):
            if not shiboken6.isValid(axis):
                continue
            axis.setStyle(tickFont=tick_font)
            axis.labelStyle = style
            axis._updateLabel()
            if fixed is not None:
                (axis.setWidth if axis.orientation in ("left", "right") else axis.setHeight)(fixed)
        self._widgets, self._axes = [], []


def _points(font: QFont) -> float:
    return font.pointSizeF() if font.pointSizeF() > 0 else 10.0


class PresenterMode(QObject):
    """Switch a window into presenter mode and back (see the module doc).

    ``hidable`` widgets (toolbars, docks with controls) are hidden while on when
    ``hide_controls`` is set; fonts grow by ``FONT_SCALE``; the palette follows the
    system's dark/light preference (re-applied when it changes). A window with a
    layout manager (``window.layouts``, gui.views.layouts) takes the presenter layout.
    """

    toggled = Signal(bool)

    def __init__(self, window: QWidget, hidable: list[QWidget] | None = None, parent=None):
        super().__init__(parent or window)
        self.window = window
        self.hidable = list(hidable or [])
        self.hide_controls = False
        self.on = False
        self._saved_font: QFont = QFont()
        self._saved_palette: QPalette = QPalette()
        self._saved_layout: tuple | None = None  # (geometry, window state, dock state, layout, floating docks)
        self._fonts = FontScaler()
        self._hidden: list[QWidget] = []
        self.theme: Theme | None = None
        app = QGuiApplication.instance()
        hints = app.styleHints() if isinstance(app, QGuiApplication) else None
        if hints is not None and hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda *_: self.on and self.apply_theme())

    def set_enabled(self, on: bool) -> None:
        if on == self.on:
            return
        self.on = on
        app = _app()
        if on:
            self._save_layout()
            self._saved_font = app.font()
            self._saved_palette = app.palette()
            font = app.font()
            font.setPointSizeF(_points(font) * FONT_SCALE)
            app.setFont(font)
            self._fonts.scale(self.window, FONT_SCALE)
            self.apply_theme()
            if self.hide_controls:
                self._hidden = [w for w in self.hidable if w.isVisible()]
                for w in self._hidden:
                    w.hide()
            self._apply_layout()
        else:
            self._fonts.restore()
            app.setFont(self._saved_font)
            app.setPalette(self._saved_palette)
            for w in self._hidden:
                w.show()
            self._hidden = []
            self.theme = None
            self._restore_layout()
        self.toggled.emit(on)

    def _save_layout(self) -> None:
        window, manager = self.window, getattr(self.window, "layouts", None)
        if isinstance(window, QMainWindow):
            floating = {dock: QRect(dock.geometry()) for dock in window.findChildren(QDockWidget)
                        if dock.isFloating()}
            self._saved_layout = (QRect(window.geometry()), window.windowState(), window.saveState(),
                                  manager.current if manager is not None else None, floating)

    def _apply_layout(self) -> None:
        manager = getattr(self.window, "layouts", None)
        if manager is not None:
            from gui.views.layouts import available_geometry
            if isinstance(self.window, QMainWindow) and not self.window.isFullScreen():
                self.window.setGeometry(available_geometry(self.window))  # the projector's whole screen
            manager.apply("presenter")

    def _restore_layout(self) -> None:
        window, saved = self.window, self._saved_layout
        self._saved_layout = None
        if saved is None or not isinstance(window, QMainWindow):
            return
        geometry, window_state, state, name, floating = saved
        QApplication.processEvents()  # the fonts' new sizes first, then the exact old layout
        window.setWindowState(window_state)
        if not window_state & (Qt.WindowState.WindowMaximized | Qt.WindowState.WindowFullScreen):
            window.setGeometry(geometry)  # as it was (restoreGeometry would re-fit it to the screen)
        window.restoreState(state)
        QApplication.processEvents()  # the docks settle at the old fonts' sizes: the sizes once more
        window.restoreState(state)
        for dock, rect in floating.items():  # where they were (restoreState re-fits them to the screen)
            if shiboken6.isValid(dock) and dock.isFloating():
                dock.setGeometry(rect)
        manager = getattr(window, "layouts", None)
        if manager is not None and name is not None:
            manager.current = name
            if name in manager.actions:
                manager.actions[name].setChecked(True)

    def apply_theme(self, theme: Theme | None = None) -> Theme:
        self.theme = theme or system_theme()
        _app().setPalette(palette_for(self.theme))
        return self.theme

    def toggle(self) -> None:
        self.set_enabled(not self.on)
