"""Render the teaching features (docs/teaching.md) offscreen to PNG, in the real window.

``python -m gui.tools.teaching_shots [OUTDIR] [--steps N]`` writes OUTDIR/teaching_*.png
(default OUTDIR: docs). Not imported by the app.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SPIRAL = os.path.join(ROOT, "resources", "examples", "spiral_mlp", "solver.prototxt")


def _window(app, steps: int, size=(1600, 1000)):
    from gui.main_window import MainWindow
    window = MainWindow(settings=None, modal_errors=False)
    window.resize(*size)
    window.show()
    window.open_path(os.path.abspath(SPIRAL))
    window.step_iterations(steps)
    window.wait_until_idle(120)
    app.processEvents()
    return window


def sample_share_shot(app, folder: str, steps: int) -> list[str]:
    """The sample-share dock beside the inspector, sample 5 of ip2, a dW cell hovered."""
    from PySide6.QtCore import Qt
    window = _window(app, steps)
    window.select_layer("ip2")
    window.sample_share_dock.show()
    window.sample_share_dock.raise_()
    app.processEvents()
    window.resizeDocks([window.sample_share_dock], [950], Qt.Orientation.Horizontal)
    app.processEvents()
    window.refresh()
    app.processEvents()
    panel = window.sample_share
    panel.select_layer("ip2")
    panel.select_sample(5)
    panel.show_cell(3, 7)
    app.processEvents()
    paths = []
    for name, widget in (("teaching_sample_share_window.png", window), ("teaching_sample_share.png", panel)):
        path = os.path.join(folder, name)
        widget.grab().save(path)
        paths.append(path)
    window.shutdown()
    return paths


def branches_shot(app, folder: str, steps: int) -> list[str]:
    """Three branches of the spiral run (lr 0.1; lr 0.02 from iteration 150; Adam from 200), compared."""
    from PySide6.QtCore import Qt
    window = _window(app, steps)
    session = window.session

    def rewind_to(iteration: int) -> None:
        marks = session.timeline.marks
        position = max(k for k, m in enumerate(marks) if m.iteration <= iteration)
        window.debug.timeline.goto(session.solver, position)
        session.changed("rewound", rewound=True)

    rewind_to(150)
    session.edit("base_lr", 0.02)
    window.step_iterations(steps - 150)
    window.wait_until_idle(120)
    rewind_to(200)
    session.edit("type", "Adam")
    session.edit("base_lr", 0.01)
    window.step_iterations(steps - 200)
    window.wait_until_idle(120)
    window.branches_dock.show()
    window.branches_dock.raise_()
    window.resizeDocks([window.branches_dock], [760], Qt.Orientation.Horizontal)
    app.processEvents()
    panel = window.branches_dock.widget()
    panel.refresh()
    panel.a_combo.setCurrentText("A")
    panel.b_combo.setCurrentText("C")
    panel.layer_combo.setCurrentText("ip2")
    panel.compare()
    app.processEvents()
    paths = []
    for name, widget in (("teaching_branches_window.png", window), ("teaching_branches.png", panel)):
        path = os.path.join(folder, name)
        widget.grab().save(path)
        paths.append(path)
    window.shutdown()
    return paths


def net_builder_shot(app, folder: str, steps: int) -> list[str]:
    """The spiral net edited in the builder: a third hidden layer (TanH), then trained."""
    from PySide6.QtCore import Qt
    window = _window(app, 0)
    window.net_builder_dock.show()
    window.net_builder_dock.raise_()
    window.resizeDocks([window.net_builder_dock], [430], Qt.Orientation.Horizontal)
    panel = window.net_builder
    panel.design.add_layer(num_output=8, activation="TanH")
    panel._edited("added ip3 (8 units)")
    panel.change_units(0, +4)
    window.step_iterations(steps)
    window.wait_until_idle(120)
    window.graph_dock.show()
    app.processEvents()
    path = os.path.join(folder, "teaching_net_builder.png")
    window.grab().save(path)
    window.shutdown()
    return [path]


def drawn_data_shot(app, folder: str, steps: int) -> list[str]:
    """XOR with a cluster of class-1 points painted in the middle, trained; the decision boundary."""
    from PySide6.QtCore import Qt
    window = _window(app, 0)
    window.open_path(os.path.join(ROOT, "resources", "examples", "xor", "solver.prototxt"))
    window.drawn_data_dock.show()
    window.drawn_data_dock.raise_()
    window.resizeDocks([window.drawn_data_dock], [520], Qt.Orientation.Horizontal)
    panel = window.drawn_data
    panel.label_spin.setValue(1)
    for k in range(14):
        panel.paint(0.12 * math.cos(k), 0.12 * math.sin(k * 1.7), 0.02)
    panel.changed_now()
    window.step_iterations(steps * 3)
    window.wait_until_idle(120)
    window.debug.show_panel("boundary")
    window.refresh()
    app.processEvents()
    paths = []
    for name, widget in (("teaching_drawn_data_window.png", window), ("teaching_drawn_data.png", panel)):
        path = os.path.join(folder, name)
        widget.grab().save(path)
        paths.append(path)
    window.shutdown()
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outdir", nargs="?", default=os.path.join(ROOT, "docs"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--only", help="one shot: sample_share, branches or net_builder")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(sys.argv[:1])
    os.makedirs(args.outdir, exist_ok=True)
    for shot in (sample_share_shot, branches_shot, net_builder_shot, drawn_data_shot):
        if args.only and shot.__name__ != f"{args.only}_shot":
            continue
        for path in shot(app, args.outdir, args.steps):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
