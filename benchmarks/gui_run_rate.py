"""Iterations per second: headless solver vs the same solver running in the
window (offscreen), through the worker, with the views redrawing.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_run_rate.py [example] [iterations]
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def headless_rate(path: str, iterations: int) -> float:
    from gui.session import Session
    session = Session()
    session.load(path)
    began = time.perf_counter()
    for _ in range(iterations):
        session.step_iteration()
    return iterations / (time.perf_counter() - began)


def raw_rate(path: str, iterations: int) -> float:
    import engine
    solver = engine.get_solver(path)
    began = time.perf_counter()
    solver.step(iterations)
    return iterations / (time.perf_counter() - began)


def window_rate(path: str, iterations: int) -> tuple[float, int, float]:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    from gui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    window = MainWindow(modal_errors=False)
    window.resize(1600, 1000)
    window.show()
    window.open_path(path)
    app.processEvents()
    loop = QEventLoop()
    window.worker.runFinished.connect(loop.quit)
    frames_before = window.frames_drawn
    longest = [0.0]
    last = [time.perf_counter()]

    def tick():  # how long the event loop went without running a timer
        now = time.perf_counter()
        longest[0] = max(longest[0], now - last[0])
        last[0] = now
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    began = time.perf_counter()
    window.step_iterations(iterations)
    loop.exec()
    elapsed = time.perf_counter() - began
    timer.stop()
    frames = window.frames_drawn - frames_before
    window.shutdown()
    return iterations / elapsed, frames / elapsed, longest[0]


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "spiral_mlp"
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    from engine import resources
    path = resources.examples()[name]
    raw = raw_rate(path, iterations)
    headless = headless_rate(path, iterations)
    windowed, fps, longest = window_rate(path, iterations)
    print(f"{name}: solver.step {raw:,.0f} it/s; session headless {headless:,.0f} it/s; "
          f"window {windowed:,.0f} it/s ({fps:.1f} frames/s, longest event-loop gap {longest * 1000:.0f} ms); "
          f"ratio window/headless {windowed / headless:.3f}")


if __name__ == "__main__":
    main()
