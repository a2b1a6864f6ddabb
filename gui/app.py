"""Command line of the desktop app.

``python main.py [PATH] [--device gpu] [--weights W]`` opens a solver or net
prototxt (default: the spiral example). ``--screenshot OUT.png [--steps N]
[--select LAYER] [--size WxH] [--layout NAME] [--presenter]`` builds the window offscreen, runs N iterations
through the same code path as the Step button, renders the window to OUT.png
and exits 0; a file it cannot open, weights it cannot load, or a run that stops
(NaN/inf, a solver error) make it exit 1 with one line on stderr saying why.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

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
    parser.add_argument("--select", metavar="LAYER", help="layer to inspect (any layer of the net)")
    parser.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    parser.add_argument("--grid", action="store_true", help="show every InnerProduct layer at once")
    parser.add_argument("--layout", metavar="NAME",
                        help="a named layout: stepthrough, debugging or classroom (View ▸ Layout)")
    parser.add_argument("--presenter", action="store_true", help="presenter mode (F12)")
    parser.add_argument("--record", metavar="OUT.mp4",
                        help="record the window offscreen to OUT.mp4 or OUT.gif while it runs --steps, and exit")
    parser.add_argument("--events", action="store_true", help="with --record: --steps counts step events, "
                        "one frame each (a step-through)")
    parser.add_argument("--fps", type=float, default=10.0, help="with --record: frames per second (default 10)")
    args = parser.parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        if width < 200 or height < 200:
            raise ValueError
    except ValueError:
        parser.error(f"--size must look like 1600x1000 (at least 200x200), not '{args.size}'")
    args.width, args.height = width, height
    if args.layout:
        from gui.model.layouts import LAYOUTS, layout_named
        try:
            args.layout = layout_named(args.layout).name
        except KeyError:
            parser.error(f"--layout must be one of {', '.join(LAYOUTS)}, not '{args.layout}'")
    if args.steps < 0:
        parser.error("--steps must be 0 or more")
    return args


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"backprop-studio: warning: {_one_line(message)}")  # stderr is kept for the failure


#: Qt notes of the offscreen platform that say nothing about the run
_QT_NOISE = ("This plugin does not support",)


def _qt_message(mode, context, message: str) -> None:
    """A scripted run's Qt messages: the offscreen platform's notes dropped, the rest one line each."""
    if not message.startswith(_QT_NOISE):
        print(f"backprop-studio: qt: {_one_line(message)}", file=sys.stderr)


def default_example() -> str:
    from engine import resources
    return resources.examples()["spiral_mlp"]


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from gui.model.solver_process import leave_a_core_for_drawing
    leave_a_core_for_drawing()  # before numpy loads
    if args.record:  # issue 17: a recording, headless
        from gui.views.recording import record_headless
        return record_headless(args)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        warnings.showwarning = _warning_line  # a scripted run's warnings: one line each, on stdout
    from gui.qt_platform import xcb_problem
    problem = xcb_problem()
    if problem:  # one line naming the packages, instead of Qt's wall of text and an abort
        print(problem, file=sys.stderr)
        return 1
    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    if args.screenshot:
        qInstallMessageHandler(_qt_message)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Backprop Studio")
    app.setOrganizationName("BackpropStudio")
    from gui.main_window import MainWindow

    settings = None if args.screenshot else QSettings("BackpropStudio", "Backprop Studio")
    window = MainWindow(settings=settings, modal_errors=not args.screenshot, lazy_panels=not args.screenshot,
                        process_runs=not args.screenshot, metrics_file=not args.screenshot)
    if args.screenshot:  # the render stands for a screen of exactly --size
        from PySide6.QtCore import QRect

        from gui.views.layouts import keep_on_screen
        window.simulated_screen = QRect(0, 0, args.width, args.height)
        keep_on_screen(window)
    window.resize(args.width, args.height)
    path = args.path or default_example()
    if not window.open_path(path, args.device):
        if args.device != "cpu" and window.open_path(path, "cpu"):
            pass
        elif args.screenshot:  # a scripted run fails on a file it cannot open (the window falls back)
            return _fail(window, f"cannot open '{path}'")
        elif args.path and window.session.solver is None:
            window.open_path(default_example())
        if window.session.solver is None:
            _print_error(window)
            return 1
    if args.weights and not window.open_weights(args.weights) and args.screenshot:
        return _fail(window, f"cannot load the weights '{args.weights}'")
    if args.grid:
        window.grid_action.setChecked(True)
        window.ensure_panels()
        window.inspector.set_grid_mode(True)
    if args.select:
        window.select_layer(args.select)
    if args.screenshot:
        return _screenshot(app, window, args)
    window.show()
    _apply_layout(window, args)
    status = app.exec()
    window.shutdown()
    return status


def _apply_layout(window, args) -> None:
    """``--layout NAME`` and ``--presenter``, once the window and its docks exist."""
    if not (args.layout or args.presenter):
        return
    window.ensure_panels()
    if args.layout:
        window.layouts.apply(args.layout)
    if args.presenter:
        window.debug.presenter_action.trigger()


def _print_error(window) -> None:
    if window.errors.last_error:
        print(f"backprop-studio: {_one_line(window.errors.last_error)}", file=sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(window, what: str) -> int:
    """A scripted run's failure: one line on stderr (what, and the engine's reason); exit status 1."""
    reason = _one_line(window.errors.last_error or "") or "unknown error"
    print(f"backprop-studio: {what}: {reason}", file=sys.stderr)
    window.shutdown()
    return 1


def _run_failure(window, args) -> str | None:
    """Why the scripted run's iterations failed (a NaN/inf stop, a solver error), or None."""
    stop = getattr(window.session, "nonfinite", None)
    name = args.path or "the spiral example"
    if stop is not None:
        return f"backprop-studio: {name}: the run stopped on NaN/inf: {_one_line(stop.message)}"
    if window.errors.last_error:
        return f"backprop-studio: {name}: {_one_line(window.errors.last_error)}"
    return None


def _fit(pixmap, width: int, height: int):
    """The window's picture at exactly width×height: a window that cannot be that small
    (its panels' minimum sizes) is scaled down to fit, centred on white."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPainter, QPixmap
    if pixmap.width() == width and pixmap.height() == height:
        return pixmap
    print(f"backprop-studio: the window needs at least {pixmap.width()}x{pixmap.height()}; "
          f"scaled to fit {width}x{height}")  # a note, on stdout: stderr is kept for a failure
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
    _apply_layout(window, args)
    app.processEvents()
    if args.steps:
        window.step_iterations(args.steps)
        if not window.wait_until_idle(timeout=600):
            print("backprop-studio: the iterations did not finish", file=sys.stderr)
            return 1
    if args.select:
        window.select_layer(args.select)
    window.refresh()
    for _ in range(3):
        app.processEvents()
        time.sleep(0.01)
    pixmap = _fit(window.grab(), args.width, args.height)
    folder = os.path.dirname(os.path.abspath(args.screenshot))
    os.makedirs(folder, exist_ok=True)
    from engine.atomic import atomic_path
    with atomic_path(args.screenshot) as tmp:
        saved = pixmap.save(tmp, "PNG", PNG_QUALITY)
    if not saved:
        print(f"backprop-studio: could not write {args.screenshot}", file=sys.stderr)
        return 1
    failure = _run_failure(window, args)
    window.shutdown()
    print(f"wrote {args.screenshot} ({pixmap.width()}x{pixmap.height()}) at iteration {window.session.iteration}")
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0
