"""Render every debugger panel offscreen to PNG, fed by a real training run.

``python -m gui.tools.screenshots [OUTDIR] [--steps N]`` writes
OUTDIR/debug_<panel>.png (default OUTDIR: docs).
"""
from __future__ import annotations

import argparse
import os
import sys

SPIRAL = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "examples", "spiral_mlp",
                      "solver.prototxt")


def build_panels(steps: int = 300) -> dict:
    """{name: (widget, size)} for each panel, showing the spiral MLP after ``steps`` iterations."""
    import engine
    from engine import resources
    from engine.layers.inner_product import InnerProductLayer
    from gui.model import breakpoints as bp
    from gui.model.boundary import BoundaryModel, training_points
    from gui.model.decompose import param_index, step_with_decomposition
    from gui.model.gradcheck import run_check
    from gui.model.overlays import layer_stats
    from gui.model.timeline import Timeline
    from gui.model.timing import time_solver
    from gui.views.debug.boundary import BoundaryView
    from gui.views.debug.breakpoints import BreakpointsPanel
    from gui.views.debug.decompose import DecompositionPanel
    from gui.views.debug.gradcheck import GradCheckPanel
    from gui.views.debug.overlays import OverlayTable
    from gui.views.debug.rewind import RewindBar
    from gui.views.debug.timing import TimingPanel

    solver = engine.get_solver(os.path.abspath(SPIRAL))
    history = Timeline()
    history.step(solver, steps)
    panels = {}

    breakpoints = BreakpointsPanel()
    breakpoints.set_layers([layer.name for layer in solver.net.layers])
    breakpoints.add_layer_breakpoint("ip2", bp.BACKWARD)
    breakpoints.loss_above_box.setChecked(True)
    breakpoints.show_stop(bp.Stop("non-finite value in 'ip2' after the forward of layer 'ip2' (iteration 300)",
                                  "first non-finite value", steps, "ip2", "ip2", "forward"))
    panels["breakpoints"] = (breakpoints, (420, 420))

    for _ in range(3):
        history.step_back(solver)
    rewind = RewindBar(history, lambda: solver)
    panels["rewind"] = (rewind, (900, 60))
    history.step(solver, 3)

    decomposition = DecompositionPanel()
    index = param_index(solver.net, "ip2", 0)
    found, _ = step_with_decomposition(solver, [index])
    decomposition.set_decomposition(found[index])
    panels["decomposition"] = (decomposition, (1100, 640))

    boundary = BoundaryView()
    model = BoundaryModel(solver.net, resolution=96)
    points, labels = training_points(solver.net)
    boundary.set_result(model.compute(), points, labels)
    panels["boundary"] = (boundary, (520, 520))

    hidden = BoundaryView()
    hidden.set_result(model.compute(), points, labels)
    hidden.show_response("relu1", 3)
    panels["boundary_hidden_unit"] = (hidden, (520, 520))

    timing = TimingPanel()
    timing.set_report(time_solver(solver, 20))
    panels["timing"] = (timing, (560, 340))

    overlay = OverlayTable()
    overlay.set_rows(layer_stats(solver.net))
    panels["overlays"] = (overlay, (900, 330))

    gradcheck = GradCheckPanel()
    real_backward = InnerProductLayer.backward

    def broken(self, top, propagate_down, bottom):  # a deliberately wrong dW, for the picture
        real_backward(self, top, propagate_down, bottom)
        if self.name == "ip2":
            self.blobs[0].diff *= 1.5

    InnerProductLayer.backward = broken
    try:
        report = run_check(solver.net, max_elements=64)
    finally:
        InnerProductLayer.backward = real_backward
    gradcheck.set_report(report)
    panels["gradcheck"] = (gradcheck, (760, 640))

    from gui.model.tiles import image_layers, weight_tiles
    from gui.views.debug.tiles import WeightTilesView
    digits = engine.get_solver(resources.examples()["digits_mlp"])
    digits.step(300)
    tiles = WeightTilesView(lambda name: weight_tiles(digits.net, name))
    tiles.set_layers(image_layers(digits.net))
    tiles.refresh()
    panels["weight_tiles"] = (tiles, (520, 560))
    return panels


def render_window(path: str, steps: int = 300, size=(1600, 1000)) -> str:
    """The main window with the debugger installed and its main docks open."""
    from PySide6.QtWidgets import QApplication

    import gui.debug
    from engine import resources
    from gui.main_window import MainWindow

    app = QApplication.instance()
    window = MainWindow(settings=None, modal_errors=False)
    window.resize(*size)
    window.show()
    window.open_path(resources.examples()["spiral_mlp"])
    controller = gui.debug.install(window)
    for name in ("rewind", "boundary", "overlays"):
        controller.show_panel(name)
    window.step_iterations(steps)
    window.wait_until_idle(120)
    app.processEvents()
    from PySide6.QtCore import Qt

    from engine.atomic import atomic_path
    with atomic_path(path) as tmp:
        window.grab().scaledToWidth(1100, Qt.TransformationMode.SmoothTransformation).save(tmp, "PNG")
    window.shutdown()
    window.close()
    return path


def render(outdir: str, steps: int = 300) -> list[str]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from engine.atomic import atomic_path
    from gui.views import theme  # noqa: F401  (pyqtgraph options)
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, (widget, (w, h)) in build_panels(steps).items():
        widget.resize(w, h)
        widget.show()
        app.processEvents()
        path = os.path.join(outdir, f"debug_{name}.png")
        with atomic_path(path) as tmp:
            widget.grab().save(tmp, "PNG")
        paths.append(path)
        widget.close()
    paths.append(render_window(os.path.join(outdir, "debug_window.png"), steps))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", default="docs")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    for path in render(args.outdir, args.steps):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
