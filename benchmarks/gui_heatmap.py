"""What refreshing one 1024x1024 heatmap costs (issue 7: under 10 ms).

    QT_QPA_PLATFORM=offscreen python -m benchmarks.gui_heatmap [--quick] [--json FILE]

A HeatmapView (offscreen, 600x600) is given a new float32 matrix each time, as a
running solver would (the arrays are made beforehand, so their creation is not
timed). Two figures: ``set_matrix`` alone (statistics, levels, the hand-over to
the image item) and ``set_matrix`` plus a synchronous repaint of the view (the
colour mapping and drawing of the 1M pixels, which pyqtgraph does lazily at
paint time).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TARGET_MS = 10.0
SIZE = 1024


def measure(repeats: int) -> tuple[list[float], list[float]]:
    import numpy
    from PySide6.QtWidgets import QApplication

    from gui.views.heatmap import HeatmapView
    app = QApplication.instance() or QApplication([])
    view = HeatmapView("W")
    view.resize(600, 600)
    view.show()
    app.processEvents()
    rng = numpy.random.default_rng(0)
    arrays = [rng.standard_normal((SIZE, SIZE), dtype=numpy.float32) * (1 + k % 3) for k in range(4)]
    graphics = view.findChild(__import__("pyqtgraph").GraphicsLayoutWidget)

    def refresh(k: int, paint: bool) -> float:
        began = time.perf_counter()
        view.set_matrix(arrays[k % len(arrays)], row_label="output (N_=1024)", col_label="input (K_=1024)")
        if paint:
            graphics.viewport().repaint()
        return time.perf_counter() - began

    for k in range(3):
        refresh(k, True)
    update = [refresh(k, False) for k in range(repeats)]
    app.processEvents()
    with_paint = [refresh(k, True) for k in range(repeats)]
    view.close()
    return update, with_paint


def run(quick: bool) -> list:
    from benchmarks import common
    update, with_paint = measure(10 if quick else 30)
    ms = [1e3 * statistics.median(update), 1e3 * statistics.median(with_paint)]
    print(f"1024x1024 heatmap: set_matrix median {ms[0]:.2f} ms (best {1e3 * min(update):.2f}); "
          f"with the repaint {ms[1]:.2f} ms (best {1e3 * min(with_paint):.2f})")
    name = "heatmap 1024x1024"
    return [common.Result(name, "set_matrix (stats, levels, hand-over)", ms[0], target=TARGET_MS, unit=" ms",
                          note="median; the colour mapping happens at paint time"),
            common.Result(name, "set_matrix + repaint of the view", ms[1], unit=" ms",
                          note="median; colour-mapping and drawing 1M pixels offscreen")]


def main(argv: list[str] | None = None) -> int:
    from benchmarks import common
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
