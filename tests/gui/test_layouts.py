"""Named layouts (View ▸ Layout) at 1280×720, 1600×1000 and 1920×1080, offscreen, with the
docks open: maps ≥ 120 px, no overlapping labels, docks at a usable size, the window
within the screen; a layout saved on a larger screen adapted; Reset layout; presenter
mode on and off restores the exact state."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, QSettings
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QWidget

from engine import resources
from gui.main_window import MainWindow
from gui.model.layouts import DEFAULT, LAYOUTS, MIN_MAP_SIDE, USABLE_SIZE, fit_rect, overlapping, restore_saved_state
from gui.views.layouts import available_geometry, keep_on_screen

SIZES = [(1280, 720), (1600, 1000), (1920, 1080)]
LENET = resources.examples()["digits_lenet"]


def settle(times: int = 4) -> None:
    for _ in range(times):
        QApplication.processEvents()


@pytest.fixture(scope="module")
def window(qapp):
    w = MainWindow(settings=None, modal_errors=False)
    w.simulated_screen = QRect(0, 0, 1600, 1000)
    w.show()
    assert w.open_path(LENET)
    w.select_layer("conv1")  # the report: conv1 selected, then two steps
    w.step_iterations(2)
    assert w.wait_until_idle(timeout=60)
    yield w
    w.shutdown()
    w.close()


def show_screen(window, size) -> None:
    window.simulated_screen = QRect(0, 0, *size)
    keep_on_screen(window)
    window.resize(*size)
    settle()


def visible_docks(window) -> list[QDockWidget]:
    return [d for d in window.findChildren(QDockWidget) if d.isVisible() and not d.visibleRegion().isEmpty()]


def map_widgets(root: QWidget) -> list[QWidget]:
    from gui.views.heatmap import HeatmapView
    from gui.views.param_layer import TileMapView
    return [m for m in root.findChildren(QWidget) if isinstance(m, (HeatmapView, TileMapView)) and m.isVisible()]


def label_rects(panel: QWidget) -> list[tuple[str, tuple[int, int, int, int]]]:
    rects = []
    for label in panel.findChildren(QLabel):
        if not label.isVisible() or not label.text().strip() or label.width() <= 0:
            continue
        top_left = label.mapTo(panel, QPoint(0, 0))
        rects.append((label.text()[:30], (top_left.x(), top_left.y(), label.width(), label.height())))
    return rects


def panels(window) -> list[QWidget]:
    return [window.inspector_pages.currentWidget()] + [d.widget() for d in visible_docks(window)]


def check_geometry(window, size) -> None:
    available = available_geometry(window)
    assert window.width() <= available.width() and window.height() <= available.height(), \
        f"window {window.width()}x{window.height()} on a {size} screen"
    for view in map_widgets(window.inspector_pages.currentWidget()):
        assert min(view.width(), view.height()) >= MIN_MAP_SIDE, (size, type(view).__name__, view.width(), view.height())
        corner = view.mapTo(window, QPoint(view.width(), view.height()))
        assert corner.x() <= window.width() and corner.y() <= window.height()  # on the window, not cut off
    for panel in panels(window):
        assert not overlapping(label_rects(panel)), (size, type(panel).__name__)
    for dock in visible_docks(window):
        usable = USABLE_SIZE.get(dock.objectName())
        if usable is not None and not dock.isFloating():
            assert dock.width() >= usable[0] - 1 and dock.height() >= usable[1] - 1, \
                (size, dock.objectName(), dock.width(), dock.height())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_fits_every_screen(window, name, size):
    show_screen(window, size)
    for layer in ("conv1", "ip1"):
        window.select_layer(layer)
        window.layouts.apply(name)
        window.refresh()
        settle()
        check_geometry(window, size)
    if name == "debugging":
        table = window.debug.gradcheck.table
        rows = table.viewport().height() // table.verticalHeader().defaultSectionSize()
        assert rows >= 6, (size, table.viewport().height())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_opening_every_dock_never_grows_the_window_past_the_screen(window, size):
    show_screen(window, size)
    window.layouts.apply("stepthrough")
    settle()
    for dock in window.findChildren(QDockWidget):
        dock.toggleViewAction().trigger() if not dock.isVisible() else None
        settle(3)
        available = available_geometry(window)
        assert window.width() <= available.width() and window.height() <= available.height(), dock.objectName()
    decomposition = window.debug.docks["decomposition"]
    usable = USABLE_SIZE[decomposition.objectName()]
    assert decomposition.width() >= usable[0] and decomposition.height() >= usable[1]  # a large tab or window
    window.layouts.reset()
    settle()
    assert not decomposition.isVisible()
    assert window.size() == available_geometry(window).size()
    check_geometry(window, size)


def test_rewind_does_not_squash_the_curves(window):
    show_screen(window, (1280, 720))
    window.layouts.apply("classroom")
    settle()
    assert window.debug.docks["rewind"].isVisible()
    assert window.curves_dock.height() >= USABLE_SIZE["curvesDock"][1] - 1


def test_a_layout_saved_on_a_larger_screen_is_adapted(tmp_path, qapp, monkeypatch):
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(MainWindow, "simulated_screen", QRect(0, 0, 1920, 1080), raising=False)
    big = MainWindow(settings=settings, modal_errors=False)
    big.resize(1920, 1080)
    big.show()
    big.layouts.apply("debugging")
    settle()
    big.close()  # saves
    settings.sync()
    monkeypatch.setattr(MainWindow, "simulated_screen", QRect(0, 0, 1280, 720), raising=False)
    small = MainWindow(settings=QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat),
                       modal_errors=False)
    try:
        small.show()
        settle()
        assert small.width() <= 1280 and small.height() <= 720
        assert small.layouts.current == "debugging"  # the same layout, made afresh for this screen
        assert small.debug.docks["gradcheck"].isVisible()
        check_geometry(small, (1280, 720))
    finally:
        small.shutdown()


def test_the_adaptation_rules():
    assert fit_rect((100, 50, 1920, 1080), (0, 0, 1280, 720)) == (0, 0, 1280, 720)
    assert fit_rect((900, 600, 800, 400), (0, 0, 1280, 720)) == (480, 320, 800, 400)
    assert restore_saved_state((1280, 720), (1920, 1080))
    assert not restore_saved_state((1920, 1080), (1600, 1000))
    assert not restore_saved_state(None, (1600, 1000))
    assert DEFAULT in LAYOUTS


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_presenter_on_and_off_restores_the_exact_layout(window, size):
    show_screen(window, size)
    window.layouts.apply("debugging")
    settle()
    geometry, state = window.saveGeometry(), window.saveState()
    font = QApplication.instance().font().pointSizeF()
    window.debug.presenter_action.trigger()
    settle()
    assert window.debug.presenter.on
    assert window.width() <= size[0] and window.height() <= size[1]
    assert QApplication.instance().font().pointSizeF() == pytest.approx(1.5 * font)
    palette = QApplication.instance().palette()  # a disabled button (GPU without a GPU) looks disabled
    assert palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText) != \
        palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    window.debug.presenter_action.trigger()
    settle()
    assert not window.debug.presenter.on
    assert window.saveGeometry() == geometry
    assert window.saveState() == state
    assert QApplication.instance().font().pointSizeF() == font


def test_screenshot_takes_a_layout_and_presenter_mode():
    from gui.app import parse_args
    args = parse_args(["--screenshot", "out.png", "--layout", "Step-through", "--presenter"])
    assert args.layout == "stepthrough" and args.presenter
    assert parse_args(["--layout", "debugging"]).layout == "debugging"
    with pytest.raises(SystemExit):
        parse_args(["--layout", "cinema"])



@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_inspector_rows_share_the_height_mid_iteration(qapp, size):
    """Mid-iteration the top row holds wrapped "computed at the backward" notes: the W map
    must keep its share of the height (in the app, whose panels are built just after the
    window shows, it shrank to a strip)."""
    import time

    from PySide6.QtWidgets import QStackedWidget
    w = MainWindow(settings=None, modal_errors=False, lazy_panels=True)
    try:
        w.resize(*size)
        w.show()
        deadline = time.perf_counter() + 10
        while w.inspector is None and time.perf_counter() < deadline:
            QApplication.processEvents()
        assert w.open_path(resources.examples()["spiral_mlp"])
        for step in ("iteration", "event", "event", "event", "iteration"):
            w.step_iterations(1) if step == "iteration" else w.step_event()
            assert w.wait_until_idle(timeout=60)
            settle()
            heights = {which: w.inspector.heatmap(w.inspector.selected_layer(), which).findChild(QStackedWidget)
                       .height() for which in ("W", "a")}
            assert min(heights.values()) >= 0.75 * max(heights.values()), (size, step, heights)
    finally:
        w.shutdown()
        w.close()
