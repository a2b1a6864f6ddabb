"""Iterations per second: headless vs the same solver running in the window
(offscreen, 1600x1000) through the worker while the views redraw.

    QT_QPA_PLATFORM=offscreen python benchmarks/gui_run_rate.py [example] [seconds] [rounds]

Each round runs headless for seconds/2, then Run (until paused) in the window for
``seconds``, then headless again; the ratio compares the window's rate with the
mean of the two around it, so a machine that gets busier slows both alike.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class WindowRun:
    """One window (offscreen, 1600x1000) that runs the example through the worker."""

    def __init__(self, path: str):
        from PySide6.QtWidgets import QApplication
        from gui.main_window import MainWindow
        self.app = QApplication.instance() or QApplication([])
        self.window = MainWindow(modal_errors=False)
        self.window.resize(1600, 1000)
        self.window.show()
        self.window.open_path(path)
        self.app.processEvents()

    def rate(self, seconds: float, probe: bool = False) -> tuple[float, float, float]:
        """Run (until paused) for ``seconds``: (iterations/s, frames/s, longest event-loop
        gap). ``probe``: a 20 ms timer measures how long the event loop goes without
        running it (waking the GUI 50 times a second costs the solver a little, so
        rates are measured without it)."""
        from PySide6.QtCore import QEventLoop, QTimer
        window = self.window
        loop = QEventLoop()
        window.worker.runFinished.connect(loop.quit)
        frames_before = window.frames_drawn
        longest, last = [0.0], [time.perf_counter()]
        stopped = {}

        def tick():
            now = time.perf_counter()
            longest[0] = max(longest[0], now - last[0])
            last[0] = now

        def stop():
            stopped["iteration"] = window.session.iteration
            stopped["time"] = time.perf_counter()
            stopped["frames"] = window.frames_drawn
            window.pause()
        timer = QTimer()
        timer.setInterval(20)
        timer.timeout.connect(tick)
        if probe:
            timer.start()
        start_iteration = window.session.iteration
        QTimer.singleShot(int(seconds * 1000), stop)
        began = time.perf_counter()
        window.run()
        loop.exec()
        timer.stop()
        window.worker.runFinished.disconnect(loop.quit)
        elapsed = stopped["time"] - began
        return ((stopped["iteration"] - start_iteration) / elapsed,
                (stopped["frames"] - frames_before) / elapsed, longest[0])


def headless_for(path: str, seconds: float) -> float:
    """Iterations per second of the same session stepping on this thread for ``seconds``."""
    from gui.session import Session
    session = Session()
    session.load(path)
    began = time.perf_counter()
    done = 0
    while time.perf_counter() - began < seconds:
        session.step_iteration()
        done += 1
    return done / (time.perf_counter() - began)


def main() -> None:
    import statistics
    name = sys.argv[1] if len(sys.argv) > 1 else "spiral_mlp"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    from engine import resources
    path = resources.examples()[name]
    run = WindowRun(path)
    ratios, windowed, headless, fps = [], [], [], []
    for _ in range(rounds):  # interleaved, so a busy machine slows both alike
        before = headless_for(path, seconds / 2)
        rate, frames, _ = run.rate(seconds)
        after = headless_for(path, seconds / 2)
        ratios.append(rate / ((before + after) / 2))
        windowed.append(rate)
        headless += [before, after]
        fps.append(frames)
    _, _, longest = run.rate(seconds, probe=True)
    run.window.shutdown()
    print(f"{name}: headless {statistics.median(headless):,.0f} it/s, window {statistics.median(windowed):,.0f} it/s "
          f"({statistics.median(fps):.2f} frames/s); ratio window/headless median {statistics.median(ratios):.3f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); longest event-loop gap while running "
          f"{longest * 1000:.0f} ms")


if __name__ == "__main__":
    main()
