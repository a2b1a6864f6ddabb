"""What Rewind costs while training: solver steps with and without recording every
iteration into the rewind history (adaptive checkpoint spacing, as the app does).

    python benchmarks/debug_rewind.py [--quick] [--json FILE]

Three solvers of the same example take turns in many short rounds: one plain,
one recorded, and a plain twin (the control: an A/A ratio that shows the noise
floor). The verdict is the median of the per-round ratios (each ratio is between
rounds run back to back, so a busy spell of the shared machine slows both sides
alike); a round is long enough to hold several checkpoints, so their cost is in
every ratio. BLAS is held to one thread: on a small machine shared with other
jobs, OpenBLAS's second thread alone moved the A/A ratio by up to ±6 %, more than
the cost measured (recording itself is Python and memory copies on one thread).
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

TARGET = 1.08  # recording may slow training by at most 8 %
EXAMPLES = ("spiral_mlp", "digits_mlp")


def contenders(example: str):
    """Plain steps, and steps recorded into a Timeline (two solvers of ``example``)."""
    import engine
    from engine import resources
    from gui.model import frames
    from gui.model.timeline import Timeline

    path = resources.examples()[example]
    plain = engine.get_solver(path)
    frames.prepare_for_inspection(plain)
    recorded = engine.get_solver(path)
    frames.prepare_for_inspection(recorded)
    history = Timeline()

    def step_and_record():
        began = time.perf_counter()
        recorded.step(1)
        history.record_iteration(recorded, time.perf_counter() - began)

    twin = engine.get_solver(path)
    frames.prepare_for_inspection(twin)
    fns = {"step": lambda: plain.step(1), "step + rewind": step_and_record,
           "step (twin)": lambda: twin.step(1)}
    return fns, history, recorded


def paired_ratio(timings: dict[str, common.Timing], name: str) -> float:
    """The median over rounds of (``name``'s round time / the plain round beside it)."""
    pairs = zip(timings[name].samples, timings["step"].samples)
    return statistics.median(other / plain for other, plain in pairs)


def time_step_back(history, solver) -> str:
    """Time Step Back from the newest state (it replays from the checkpoint before it)."""
    marks = history.marks
    base = len(marks) - 2
    while marks[base].checkpoint is None:
        base -= 1
    replayed = marks[-2].iteration - marks[base].iteration
    began = time.perf_counter()
    history.step_back(solver)
    return f"Step Back from there replays {replayed} iterations: {common.format_time(time.perf_counter() - began)}"


def one_blas_thread():
    """Hold BLAS to one thread while measuring (see the module doc); None without threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(1, user_api="blas")


def measure(example: str, quick: bool) -> common.Result:
    fns, history, recorded = contenders(example)
    limits = one_blas_thread()
    try:
        timings = common.compare(fns, calls=200 if quick else 400, rounds=15 if quick else 31, warmup=1)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    ratio, control = paired_ratio(timings, "step + rewind"), paired_ratio(timings, "step (twin)")
    checkpoint = history.entries[-1].nbytes if history.entries else 0
    print(f"{example}: step {common.format_time(timings['step'].median)}, with rewind "
          f"{common.format_time(timings['step + rewind'].median)} (median paired ratio x{ratio:.3f}; "
          f"A/A control x{control:.3f}); checkpoint every {history.checkpoint_every} iterations, "
          f"{checkpoint / 1e3:.0f} kB each; {history.describe()}")
    print(f"  {time_step_back(history, recorded)}")
    return common.Result("debug_rewind", f"{example}: step with rewind / without", ratio, target=TARGET,
                         note=f"checkpoint every {history.checkpoint_every}; A/A x{control:.3f}")


def run(quick: bool) -> list[common.Result]:
    return [measure(example, quick) for example in EXAMPLES]


def main(argv=None) -> int:
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
