"""Iterations per second: headless vs the same solver running in the window
(offscreen, 1600x1000) through the worker while the views redraw.

    QT_QPA_PLATFORM=offscreen python -m benchmarks.gui_run_rate [--quick] [--json FILE]
    QT_QPA_PLATFORM=offscreen python benchmarks/gui_run_rate.py [example] [seconds] [rounds] [thread]

The window runs as the app does: runs in the solver process (gui.model.solver_process);
``thread`` keeps them in the window's worker thread instead, for comparison.

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


def configure_as_the_app() -> None:
    """BLAS threads as the app sets them (gui.app.main), before numpy loads: the headless
    runs use the same setting, so the ratio measures the window alone."""
    from gui.model.solver_process import leave_a_core_for_drawing
    leave_a_core_for_drawing()


class WindowRun:
    """One window (offscreen, 1600x1000) that runs the example through the worker."""

    def __init__(self, path: str, process_runs: bool = True):
        from PySide6.QtWidgets import QApplication

        from gui.main_window import MainWindow
        self.app = QApplication.instance() or QApplication([])
        self.window = MainWindow(modal_errors=False, process_runs=process_runs)
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
            stopped["iteration"] = window.worker.iteration
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
        window.run(past_max_iter=True)  # until paused, however far past max_iter
        loop.exec()
        timer.stop()
        window.worker.runFinished.disconnect(loop.quit)
        elapsed = stopped["time"] - began
        return ((stopped["iteration"] - start_iteration) / elapsed,
                (stopped["frames"] - frames_before) / elapsed, longest[0])


def headless_for(path: str, seconds: float) -> float:
    """Iterations per second of the same session stepping on this thread for ``seconds``."""
    from gui.model.session import Session
    session = Session()
    session.load(path)
    began = time.perf_counter()
    done = 0
    while time.perf_counter() - began < seconds:
        session.step_iteration()
        done += 1
    return done / (time.perf_counter() - began)


RATE_TARGET = 0.9  # issue 7: the window keeps at least 90% of the headless rate
FRAME_CPU_TARGET_MS = 15.0  # issue 12: the GUI's CPU per frame (median), spiral at 1600x1000, default docks
FPS_TARGET = 20.0  # issue 12: frames drawn per second while running


def measure(name: str, seconds: float, rounds: int, process_runs: bool = True) -> dict:
    """Rounds of headless / window / headless; the window's rate against the mean of
    the two headless runs around it, so a machine that gets busier slows both alike."""
    import statistics

    from engine import resources
    path = resources.examples()[name]
    run = WindowRun(path, process_runs)
    ratios, windowed, headless, fps, costs, controls = [], [], [], [], [], []
    for _ in range(rounds):
        before = headless_for(path, seconds / 2)
        rate, frames, _ = run.rate(seconds)
        costs.append(run.window.worker.render_cost)
        after = headless_for(path, seconds / 2)
        ratios.append(rate / ((before + after) / 2))
        controls.append(after / before)  # A/A: the same headless run twice; its spread is the noise
        windowed.append(rate)
        headless += [before, after]
        fps.append(frames)
    _, _, longest = run.rate(seconds, probe=True)
    run.window.shutdown()
    result = {"ratio": statistics.median(ratios), "ratios": ratios, "headless": statistics.median(headless),
              "window": statistics.median(windowed), "fps": statistics.median(fps),
              "frame_cpu": statistics.median(costs), "longest_gap": longest, "controls": controls}
    print(f"{name} ({'process' if process_runs else 'thread'}): headless {result['headless']:,.0f} it/s, window {result['window']:,.0f} it/s "
          f"({result['fps']:.2f} frames/s, GUI CPU {1000 * result['frame_cpu']:.0f} ms per frame); ratio "
          f"window/headless median {result['ratio']:.3f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"longest event-loop gap while running {longest * 1000:.0f} ms; A/A control headless/headless "
          f"{', '.join(f'{r:.2f}' for r in controls)}")
    return result


def run(quick: bool) -> list:
    from benchmarks import common
    name = "spiral_mlp"
    result = measure(name, 2.0 if quick else 3.0, 5 if quick else 10)
    bench = f"GUI running {name}"
    return [common.Result(bench, "window rate / headless rate (median)", result["ratio"], target=RATE_TARGET,
                          higher_is_better=True,
                          note=f"window {result['window']:,.0f} it/s, headless {result['headless']:,.0f} it/s; "
                               f"rounds {', '.join(f'{r:.2f}' for r in result['ratios'])}; A/A control "
                               f"{min(result['controls']):.2f}-{max(result['controls']):.2f}"),
            common.Result(bench, "frames drawn per second", result["fps"], unit="/s", target=FPS_TARGET,
                          higher_is_better=True),
            common.Result(bench, "GUI CPU per frame (median)", 1000 * result["frame_cpu"], unit=" ms",
                          target=FRAME_CPU_TARGET_MS, note="the GUI thread's CPU time between two frames"),
            common.Result(bench, "longest event-loop gap while running", 1000 * result["longest_gap"], unit=" ms",
                          note="a 20 ms timer on the GUI thread, measured in a run of its own")]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    configure_as_the_app()
    if argv and not argv[0].startswith("-"):  # the old form: [example] [seconds] [rounds]
        measure(argv[0], float(argv[1]) if len(argv) > 1 else 6.0, int(argv[2]) if len(argv) > 2 else 3,
                process_runs=argv[3:4] != ["thread"])
        return 0
    from benchmarks import common
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
