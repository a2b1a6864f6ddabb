"""Command line of the desktop app.

``python main.py [PATH] [--device gpu] [--weights W]`` opens a solver or net
prototxt (default: the spiral example). ``--screenshot OUT.png [--steps N]
[--select LAYER] [--size WxH]`` builds the window offscreen, runs N iterations
through the same code path as the Step button, renders the window to OUT.png
and exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


#: Qt's PNG "quality" (zlib effort): 80 writes a window in half the default's time, and smaller.
PNG_QUALITY = 80


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backprop-studio",
                                     description="Backprop Studio: step through back-propagation.")
    parser.add_argument("path", nargs="?", help="solver or net prototxt (default: the spiral example)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where the solver runs")
    parser.add_argument("--weights", help="load these weights (.caffemodel or .caffemodel.h5) after opening")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the window to OUT.png and exit")
    parser.add_argument("--steps", type=int, default=0, help="iterations to run before the screenshot")
    parser.add_argument("--select", metavar="LAYER", help="InnerProduct layer to inspect")
    parser.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    parser.add_argument("--grid", action="store_true", help="show every InnerProduct layer at once")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        if width < 200 or height < 200:
            raise ValueError
    except ValueError:
        parser.error(f"--size must look like 1600x1000 (at least 200x200), not '{args.size}'")
    args.width, args.height = width, height
    if args.steps < 0:
        parser.error("--steps must be 0 or more")
    return args


def default_example() -> str:
    from engine import resources
    return resources.examples()["spiral_mlp"]


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from .solver_process import leave_a_core_for_drawing
    leave_a_core_for_drawing()  # before numpy loads
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Backprop Studio")
    app.setOrganizationName("BackpropStudio")
    from .main_window import MainWindow

    settings = None if args.screenshot else QSettings("BackpropStudio", "Backprop Studio")
    window = MainWindow(settings=settings, modal_errors=not args.screenshot, lazy_panels=not args.screenshot,
                        process_runs=not args.screenshot)
    window.resize(args.width, args.height)
    path = args.path or default_example()
    if not window.open_path(path, args.device):
        if args.device != "cpu" and window.open_path(path, "cpu"):
            pass
        elif args.path and window.session.solver is None:
            window.open_path(default_example())
        if window.session.solver is None:
            _print_error(window)
            return 1
    if args.weights:
        window.open_weights(args.weights)
    if args.grid:
        window.grid_action.setChecked(True)
        window.ensure_panels()
        window.inspector.set_grid_mode(True)
    if args.select:
        window.graph.select(args.select)
        if window.inspector is not None:
            window.inspector.select_layer(args.select)
    if args.screenshot:
        return _screenshot(app, window, args)
    window.show()
    status = app.exec()
    window.shutdown()
    return status


def _print_error(window) -> None:
    if window.errors.last_error:
        print(f"backprop-studio: {window.errors.last_error}", file=sys.stderr)


def _fit(pixmap, width: int, height: int):
    """The window's picture at exactly width×height: a window that cannot be that small
    (its panels' minimum sizes) is scaled down to fit, centred on white."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPainter, QPixmap
    if pixmap.width() == width and pixmap.height() == height:
        return pixmap
    print(f"backprop-studio: the window needs at least {pixmap.width()}x{pixmap.height()}; "
          f"scaled to fit {width}x{height}", file=sys.stderr)
    scaled = pixmap.scaled(width, height, Qt.KeepAspectRatio, Qt.SmoothTransformation)
    canvas = QPixmap(width, height)
    canvas.fill(QColor("white"))
    painter = QPainter(canvas)
    painter.drawPixmap((width - scaled.width()) // 2, (height - scaled.height()) // 2, scaled)
    painter.end()
    return canvas


def _screenshot(app, window, args) -> int:
    """Run ``--steps`` iterations the Step button's way, then render the window."""
    window.show()
    app.processEvents()
    if args.steps:
        window.step_iterations(args.steps)
        if not window.wait_until_idle(timeout=600):
            print("backprop-studio: the iterations did not finish", file=sys.stderr)
            return 1
    if args.select:
        window.inspector.select_layer(args.select)
        window.graph.select(args.select)
    window.refresh()
    for _ in range(3):
        app.processEvents()
        time.sleep(0.01)
    pixmap = _fit(window.grab(), args.width, args.height)
    folder = os.path.dirname(os.path.abspath(args.screenshot))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(args.screenshot)}")
    if not pixmap.save(tmp, "PNG", PNG_QUALITY):
        print(f"backprop-studio: could not write {args.screenshot}", file=sys.stderr)
        return 1
    os.replace(tmp, args.screenshot)
    if window.errors.last_error:
        _print_error(window)
    window.shutdown()
    print(f"wrote {args.screenshot} ({pixmap.width()}x{pixmap.height()}) at iteration {window.session.iteration}")
    return 0
