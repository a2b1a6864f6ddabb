"""The inspector's and the curves' documentation images (not imported by the app):
``python -m gui.tools.inspector_docs docs/`` (offscreen: QT_QPA_PLATFORM=offscreen)."""
from __future__ import annotations

import os


def render_docs(folder: str, steps: int = 200) -> list[str]:
    """Render the inspector (single layer, grid) and the curves for the spiral example after ``steps``
    iterations into ``folder`` (inspector.png, inspector_grid.png, inspector_curves.png)."""
    from PySide6.QtWidgets import QApplication

    import engine
    from engine import resources
    from gui.model.frames import inner_product_views, prepare_for_inspection, solver_info
    from gui.views.curves import CurvesPanel
    from gui.views.inspector import InspectorPanel, grab_to_png

    solver = engine.get_solver(resources.examples()["spiral_mlp"])
    prepare_for_inspection(solver)
    curves = CurvesPanel()
    loss = float("nan")
    for _ in range(steps):
        tests_before = len(solver.test_scores)
        loss = solver.step(1)
        for iteration, scores in solver.test_scores[tests_before:]:
            curves.add_test_point(iteration, scores)
        curves.add_train_points([solver.iter - 1], [loss], [solver.smoothed_loss], [solver.learning_rate])
    panel = InspectorPanel()
    paths = []
    for name, grid, size in (("inspector.png", False, (1500, 820)), ("inspector_grid.png", True, (1500, 900))):
        panel.set_grid_mode(grid)
        panel.resize(*size)
        panel.show()
        panel.set_views(inner_product_views(solver), solver_info(solver, loss))
        panel.select_layer("ip2")
        QApplication.processEvents()  # lay out new widgets before rendering them
        paths.append(os.path.join(folder, name))
        grab_to_png(panel, paths[-1])
    curves.resize(1000, 560)
    curves.show()
    QApplication.processEvents()
    paths.append(os.path.join(folder, "inspector_curves.png"))
    grab_to_png(curves, paths[-1])
    return paths


if __name__ == "__main__":  # python -m gui.tools.inspector_docs docs/  (offscreen: QT_QPA_PLATFORM=offscreen)
    import sys

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    print("\n".join(render_docs(sys.argv[1] if len(sys.argv) > 1 else "docs")))
