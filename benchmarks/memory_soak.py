"""Memory soak: 100,000 headless iterations of the spiral example; resident
memory must not grow by more than a few MB (target: <= 5 MB). ``--gui``: a Run of
1,000,000 iterations in the app's window (offscreen, 1600x1000, default docks,
runs in the solver process as the app does, curves spooled to a file): the
window's process must not grow by more than 20 MB (the solver process's growth
is shown too).

The first 1,000 iterations (5,000 in the window) are a warm-up (allocator pools,
caches, the test net's first runs); growth is measured from there to the end,
and sampled so a steady leak shows as a slope.

Run: ``python -m benchmarks.memory_soak`` (``--iterations N``, ``--quick`` for
10,000, ``--gui``, ``--json FILE`` for ``python -m benchmarks``).
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import engine  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.common import Result  # noqa: E402

SPIRAL_SOLVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "resources", "examples", "spiral_mlp", "solver.prototxt")
WARMUP = 1000
TARGET_MB = 5.0


def resident_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; else peak RSS)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def soak(iterations: int) -> tuple[float, list[tuple[int, float]], float]:
    """Run the spiral solver; returns (growth MB, samples (iteration, MB), seconds)."""
    engine.set_mode_cpu()
    solver = engine.get_solver(SPIRAL_SOLVER)
    solver.step(WARMUP)
    gc.collect()
    start_mb = resident_mb()
    samples = [(solver.iter, start_mb)]
    chunk = max(1, min(10_000, iterations // 10))
    start = time.perf_counter()
    done = 0
    while done < iterations:
        n = min(chunk, iterations - done)
        solver.step(n)
        done += n
        samples.append((solver.iter, resident_mb()))
    seconds = time.perf_counter() - start
    gc.collect()
    return resident_mb() - start_mb, samples, seconds


GUI_TARGET_MB = 20.0
GUI_WARMUP = 5000


def resident_mb_of(pid: int) -> float:
    """Resident set size of another process in MB (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def gui_soak(iterations: int) -> tuple[float, float, list[tuple[int, float]], float, int]:
    """Run N in the window; (window growth MB, solver-process growth MB, samples, seconds, points kept)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from gui.model.solver_process import leave_a_core_for_drawing
    leave_a_core_for_drawing()
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from engine import resources
    from gui.main_window import MainWindow
    app = QApplication.instance() or QApplication([])
    window = MainWindow(modal_errors=False, process_runs=True, metrics_file=True)
    window.resize(1600, 1000)
    window.show()
    window.open_path(resources.examples()["spiral_mlp"])
    app.processEvents()

    def run_n(count: int, on_tick=None) -> None:
        loop = QEventLoop()
        window.worker.runFinished.connect(loop.quit)
        timer = QTimer()
        timer.setInterval(2000)
        if on_tick is not None:
            timer.timeout.connect(on_tick)
            timer.start()
        window.step_iterations(count)
        loop.exec()
        timer.stop()
        window.worker.runFinished.disconnect(loop.quit)
        window.wait_until_idle(60)

    run_n(GUI_WARMUP)
    gc.collect()
    lane = window.worker.process_lane
    child = lane._process.pid if lane is not None and lane._process is not None else None
    start_mb, child_start = resident_mb(), resident_mb_of(child) if child else float("nan")
    samples = [(window.session.iteration, start_mb)]
    began = time.perf_counter()
    run_n(iterations, lambda: samples.append((window.worker.iteration, resident_mb())))
    seconds = time.perf_counter() - began
    gc.collect()
    app.processEvents()
    samples.append((window.session.iteration, resident_mb()))
    child_growth = (resident_mb_of(child) - child_start) if child else float("nan")
    kept = int(window.session.metrics.train_arrays()[0].size)
    window.shutdown()
    return samples[-1][1] - start_mb, child_growth, samples, seconds, kept


def run_gui(iterations: int) -> list[Result]:
    growth, child_growth, samples, seconds, kept = gui_soak(iterations)
    print(f"  window Run {iterations} of the spiral example after a {GUI_WARMUP}-iteration warm-up: "
          f"{seconds:.1f} s ({iterations / seconds:.0f} it/s); curve points kept in memory: {kept}")
    step = max(1, len(samples) // 12)
    print("  window resident MB: " + ", ".join(f"{it}: {mb:.1f}" for it, mb in samples[::step] + samples[-1:]))
    return [
        Result(f"GUI memory soak ({iterations} it)", "window process resident memory growth", growth,
               target=GUI_TARGET_MB, unit=" MB",
               note=f"{samples[0][1]:.1f} -> {samples[-1][1]:.1f} MB; solver process grew {child_growth:.1f} MB; "
                    f"{kept} curve points in memory"),
    ]


def run(quick: bool = False, iterations: int | None = None) -> list[Result]:
    iterations = iterations or (10_000 if quick else 100_000)
    growth, samples, seconds = soak(iterations)
    print(f"  spiral example, {iterations} iterations after a {WARMUP}-iteration warm-up, "
          f"{seconds:.1f} s ({iterations / seconds:.0f} it/s incl. its test net every 100 iterations)")
    print("  resident MB: " + ", ".join(f"{it}: {mb:.1f}" for it, mb in samples))
    return [
        Result(f"memory soak ({iterations} it)", "resident memory growth", growth, target=TARGET_MB,
               unit=" MB", note=f"{samples[0][1]:.1f} MB after warm-up -> {samples[-1][1]:.1f} MB"),
        Result(f"memory soak ({iterations} it)", "spiral example iterations per second (headless)",
               iterations / seconds, unit="/s", note="solver.step in chunks, test net included"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 iterations")
    parser.add_argument("--iterations", type=int, help="iterations after the warm-up")
    parser.add_argument("--gui", action="store_true", help="a Run in the window (default 1,000,000 iterations)")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args(argv)
    if args.gui:
        results = run_gui(args.iterations or (100_000 if args.quick else 1_000_000))
    else:
        results = run(args.quick, args.iterations)
    print(common.machine_line())  # after the soak: importing PyTorch for its version costs ~200 MB
    common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
