"""View ▸ Layout: the named layouts applied to the main window, and the rules that keep
it on the screen (the specs and rules themselves are Qt-free: gui.model.layouts).

:class:`LayoutManager` (``install(window)``) adds View ▸ Layout (Step-through,
Debugging, Classroom, Reset layout), applies a :class:`~gui.model.layouts.LayoutSpec`
(which docks show, where, with what share), caps the window at the screen's
available geometry (docks that open cannot grow it past the screen), gives a dock
that opens too small room or floats it at a usable size, and saves / restores the
layout so that a layout saved on a larger screen is adapted, not restored blindly.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow

from gui.model import layouts as spec_rules
from gui.model.layouts import DEFAULT, LAYOUTS, USABLE_SIZE, LayoutSpec, layout_named

AREAS = {"left": Qt.DockWidgetArea.LeftDockWidgetArea, "right": Qt.DockWidgetArea.RightDockWidgetArea,
         "top": Qt.DockWidgetArea.TopDockWidgetArea, "bottom": Qt.DockWidgetArea.BottomDockWidgetArea}

#: The "screen" of the offscreen platform when no screen is simulated (px): no limit in practice.
OFFSCREEN_LIMIT = 16384

#: Settings keys.
LAYOUT_KEY, SCREEN_KEY, GEOMETRY_KEY, STATE_KEY = "layoutName", "layoutScreen", "geometry", "windowState"


def available_geometry(window: QMainWindow) -> QRect:
    """The screen's available geometry for ``window`` (a simulated one where set:
    offscreen renders and tests say which screen they stand for)."""
    simulated = getattr(window, "simulated_screen", None)
    if isinstance(simulated, QRect):
        return QRect(simulated)
    if QGuiApplication.platformName() == "offscreen":  # no real screen: no limit but the one simulated
        return QRect(0, 0, OFFSCREEN_LIMIT, OFFSCREEN_LIMIT)
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def _rect(q: QRect) -> spec_rules.Rect:
    return q.x(), q.y(), q.width(), q.height()


def keep_on_screen(window: QMainWindow) -> None:
    """The window no larger than the screen's available geometry, and inside it;
    its maximum size is that geometry, so docks that open squeeze, not grow, it."""
    available = available_geometry(window)
    window.setMaximumSize(available.size())
    x, y, w, h = spec_rules.fit_rect(_rect(window.geometry()), _rect(available))
    if (w, h) != (window.width(), window.height()):
        window.resize(w, h)
    if window.isWindow() and (x, y) != (window.x(), window.y()) and not window.testAttribute(
            Qt.WidgetAttribute.WA_DontShowOnScreen):
        window.move(x, y)


def restore_window_layout(window: Any, settings) -> str:
    """Bring back the layout saved in ``settings``, adapted to this screen; returns the
    name of the layout now in place (the default when nothing was saved)."""
    available = available_geometry(window)
    name = str(settings.value(LAYOUT_KEY, DEFAULT) or DEFAULT)
    saved_screen = settings.value(SCREEN_KEY)
    screen = (available.width(), available.height())
    try:
        saved = (int(saved_screen[0]), int(saved_screen[1])) if saved_screen else None
    except (TypeError, ValueError, IndexError):
        saved = None
    geometry, state = settings.value(GEOMETRY_KEY), settings.value(STATE_KEY)
    if spec_rules.restore_saved_state(saved, screen):
        if isinstance(geometry, QByteArray):
            window.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            window.restoreState(state)
        keep_on_screen(window)
        return name
    window.pending_layout = name  # applied afresh to this screen once every dock exists
    keep_on_screen(window)
    return name


def save_window_layout(window: QMainWindow, settings) -> None:
    """Geometry, dock state, the layout's name and the screen it was made on."""
    available = available_geometry(window)
    manager = getattr(window, "layouts", None)
    settings.setValue(GEOMETRY_KEY, window.saveGeometry())
    settings.setValue(STATE_KEY, window.saveState())
    settings.setValue(LAYOUT_KEY, manager.current if manager is not None else DEFAULT)
    settings.setValue(SCREEN_KEY, [available.width(), available.height()])


class LayoutManager(QObject):
    """The named layouts of one main window (see the module doc)."""

    def __init__(self, window: Any):
        super().__init__(window)
        self.window = window
        self.current = DEFAULT
        self._watched: set[str] = set()
        self._applying = False
        for corner, area in ((Qt.Corner.TopLeftCorner, AREAS["left"]), (Qt.Corner.BottomLeftCorner, AREAS["left"]),
                             (Qt.Corner.TopRightCorner, AREAS["right"]),
                             (Qt.Corner.BottomRightCorner, AREAS["right"])):
            window.setCorner(corner, area)  # the graph and the side panels get the full height
        self._build_menu()
        self.watch_docks()
        keep_on_screen(window)
        window.installEventFilter(self)

    # -- the menu ------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = self.window.view_menu.addMenu("Layout")
        self.menu = menu
        self.actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for spec in LAYOUTS.values():
            action = menu.addAction(spec.title)
            action.setCheckable(True)
            action.setToolTip(spec.description)
            action.setChecked(spec.name == self.current)
            action.triggered.connect(lambda checked=False, n=spec.name: self.apply(n))
            group.addAction(action)
            self.actions[spec.name] = action
        menu.addSeparator()
        self.reset_action = menu.addAction("Reset layout")
        self.reset_action.setToolTip("Back to the Step-through layout, fitted to this screen")
        self.reset_action.triggered.connect(lambda checked=False: self.reset())

    # -- the docks -----------------------------------------------------------------
    def docks(self) -> dict[str, QDockWidget]:
        return {d.objectName(): d for d in self.window.findChildren(QDockWidget) if d.parent() is self.window}

    def watch_docks(self) -> None:
        """Every dock (also ones added later, e.g. the debugger's) is given room when it opens."""
        for name, dock in self.docks().items():
            if name not in self._watched:
                self._watched.add(name)
                if dock.isVisible():  # shown before it was watched
                    QTimer.singleShot(0, lambda d=dock: self.ensure_usable(d))
                dock.visibilityChanged.connect(lambda on, d=dock: on and QTimer.singleShot(0, lambda: self.ensure_usable(d)))
                dock.topLevelChanged.connect(lambda _floating: QTimer.singleShot(0, self._keep_on_screen))

    def _keep_on_screen(self) -> None:
        keep_on_screen(self.window)

    # -- applying a layout ---------------------------------------------------------
    def apply(self, name: str) -> LayoutSpec:
        """Show ``name``'s docks where it says, hide the others, fitted to this screen."""
        window = self.window
        self.watch_docks()
        keep_on_screen(window)
        available = available_geometry(window)
        spec = layout_named(name).for_screen(available.width(), available.height())
        docks = self.docks()
        wanted = set(spec.docks())
        for dock_name, dock in docks.items():
            if dock_name not in wanted:
                dock.hide()
        for placement in spec.placements:
            placed = docks.get(placement.dock)
            if placed is None:
                continue
            placed.setFloating(False)
            if placement.tab_with is None or placement.tab_with not in docks:
                window.addDockWidget(AREAS[placement.area], placed)
            placed.show()
        for placement in spec.placements:
            if placement.tab_with is not None and placement.tab_with in docks and placement.dock in docks:
                window.tabifyDockWidget(docks[placement.tab_with], docks[placement.dock])
        for front in spec.front:
            if front in docks:
                docks[front].raise_()
        self._size_docks(spec, docks)
        self.current = spec.name
        if spec.name in self.actions:
            self.actions[spec.name].setChecked(True)
        keep_on_screen(window)
        # The docks this showed were placed by the layout: no "opened too small" handling for
        # them (their checks, queued while applying, run before this one clears the flag).
        self._applying = True
        QTimer.singleShot(0, self._applied)
        return spec

    def _applied(self) -> None:
        self._applying = False
        keep_on_screen(self.window)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt naming)
        """The window grown past the screen (Qt grows it to fit docks' minimum sizes while they
        are rearranged): back within the screen once the layout has settled."""
        if watched is self.window and event.type() == QEvent.Type.ChildAdded and \
                isinstance(event.child(), QDockWidget):
            QTimer.singleShot(0, self.watch_docks)  # a dock made later (a panel opened the first time)
        if watched is self.window and event.type() == QEvent.Type.Resize:
            available = available_geometry(self.window)
            if self.window.width() > available.width() or self.window.height() > available.height():
                QTimer.singleShot(0, self._keep_on_screen)
        return False

    def _size_docks(self, spec: LayoutSpec, docks: dict[str, QDockWidget]) -> None:
        window = self.window
        available = available_geometry(window)
        width, height = min(window.width(), available.width()), min(window.height(), available.height())
        across, across_px, down, down_px = [], [], [], []
        for p in spec.placements:
            dock = docks.get(p.dock)
            if dock is None or p.tab_with is not None:
                continue
            usable_w, usable_h = USABLE_SIZE.get(p.dock, (160, 120))
            if p.area in ("left", "right"):
                across.append(dock)
                across_px.append(spec_rules.dock_pixels(p.share, width, usable_w))
            else:
                down.append(dock)
                down_px.append(spec_rules.dock_pixels(p.share, height, min(usable_h, dock.minimumSizeHint().height())))
        central = window.centralWidget().minimumSizeHint() if window.centralWidget() is not None else QSize()
        across_px = _leave_room(across_px, width - central.width() - 40)
        down_px = _leave_room(down_px, height - central.height() - _chrome_height(window) - 30)
        if across:
            window.resizeDocks(across, across_px, Qt.Orientation.Horizontal)
        if down:
            window.resizeDocks(down, down_px, Qt.Orientation.Vertical)

    def reset(self) -> None:
        """View ▸ Layout ▸ Reset layout: the default layout, the window fitted to the screen."""
        available = available_geometry(self.window)
        if not self.window.isMaximized() and not self.window.isFullScreen():
            self.window.resize(available.size())
        self.apply(DEFAULT)

    # -- docks opened by hand ------------------------------------------------------
    def ensure_usable(self, dock: QDockWidget) -> None:
        """A dock that opened below its usable size gets room; if the window cannot give
        it room, it floats at a usable size (large, over the window)."""
        if not dock.isVisible() or self._applying:
            return
        usable = USABLE_SIZE.get(dock.objectName())
        if not dock.isFloating() and not self._fits(self.window.minimumSizeHint()):
            self._make_room(dock)
        keep_on_screen(self.window)
        if usable is None:
            return
        if dock.isFloating():
            self._size_floating(dock, usable)
            return
        if dock.width() >= usable[0] and dock.height() >= usable[1]:
            return
        area = self.window.dockWidgetArea(dock)
        vertical = area in (AREAS["top"], AREAS["bottom"])
        extent = self.window.height() if vertical else self.window.width()
        need = usable[1] if vertical else usable[0]
        if need <= extent * 0.45:
            self.window.resizeDocks([dock], [need], Qt.Orientation.Vertical if vertical else Qt.Orientation.Horizontal)
            QApplication.processEvents()
            if dock.width() >= usable[0] and dock.height() >= usable[1]:
                return
        dock.setFloating(True)
        self._size_floating(dock, usable)

    def _fits(self, size: QSize) -> bool:
        available = available_geometry(self.window)
        return size.width() <= available.width() and size.height() <= available.height()

    def _make_room(self, dock: QDockWidget) -> None:
        """A dock whose opening would push the window past the screen joins the tabs of a
        dock already open in its area; if that is not enough, it floats."""
        area = self.window.dockWidgetArea(dock)
        siblings = [d for d in self.docks().values() if d is not dock and d.isVisible() and not d.isFloating()
                    and self.window.dockWidgetArea(d) == area]
        if siblings:
            self.window.tabifyDockWidget(siblings[0], dock)
            dock.show()
            dock.raise_()
            QApplication.processEvents()
        if not self._fits(self.window.minimumSizeHint()):
            dock.setFloating(True)
            QApplication.processEvents()

    def _size_floating(self, dock: QDockWidget, usable: spec_rules.Size) -> None:
        available = available_geometry(self.window)
        large = (max(usable[0], int(available.width() * 0.6)), max(usable[1], int(available.height() * 0.6)))
        w, h = spec_rules.fit_size(large, (available.width(), available.height()))
        if dock.width() < usable[0] or dock.height() < usable[1]:
            dock.resize(QSize(w, h))
            x, y, _, _ = spec_rules.fit_rect((available.center().x() - w // 2, available.center().y() - h // 2, w, h),
                                             _rect(available))
            dock.move(x, y)


def _leave_room(sizes: list[int], room: int) -> list[int]:
    """``sizes`` scaled down together so that they sum to at most ``room`` (the central
    area keeps its minimum size: docks sized past it would squeeze the maps)."""
    total = sum(sizes)
    if total <= room or total <= 0:
        return sizes
    return [max(1, int(size * max(room, 0) / total)) for size in sizes]


def _chrome_height(window: Any) -> int:
    """Menu bar, top toolbars and status bar."""
    from PySide6.QtWidgets import QToolBar
    bars = [window.menuBar(), window.statusBar(), *[t for t in window.findChildren(QToolBar) if t.isVisible()]]
    return sum(bar.sizeHint().height() for bar in bars if bar is not None and bar.isVisible())


def install(window: Any) -> LayoutManager:
    """View ▸ Layout on ``window`` (idempotent); applies a layout saved for a different screen."""
    manager = getattr(window, "layouts", None)
    if isinstance(manager, LayoutManager):
        manager.watch_docks()
        return manager
    manager = LayoutManager(window)
    window.layouts = manager
    pending = getattr(window, "pending_layout", None)
    if pending:
        window.pending_layout = None
        try:
            manager.apply(pending)
        except KeyError:
            manager.apply(DEFAULT)
    return manager
