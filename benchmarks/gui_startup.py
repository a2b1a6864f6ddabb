"""How long ``python main.py`` takes until the window is up with the spiral example
loaded and steppable, and until the (lazily built) heatmaps and curves exist.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_startup.py

Prints wall and CPU seconds (CPU time is the fairer number on a busy machine) and
whether cupy / pyqtgraph were imported by then.
"""
import os
import sys
import time

T0 = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

import gui.app as app_module  # noqa: E402


def _measure_instead_of_exec(self=None) -> int:
    app = QApplication.instance()
    print(f"window built, shown, example loaded: {time.perf_counter() - T0:.2f} s wall, "
          f"{time.process_time():.2f} s CPU; pyqtgraph imported: {'pyqtgraph' in sys.modules}")
    app.processEvents()
    print(f"heatmaps and curves built: {time.perf_counter() - T0:.2f} s wall, {time.process_time():.2f} s CPU; "
          f"cupy imported: {'cupy' in sys.modules}")
    return 0


QApplication.exec = _measure_instead_of_exec
app_module.main([])
