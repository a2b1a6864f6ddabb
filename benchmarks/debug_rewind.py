"""What Rewind costs while training: solver steps with and without recording every
iteration into the rewind history (adaptive checkpoint spacing, as the app does).

    python benchmarks/debug_rewind.py [--quick] [--json FILE]

The two solvers take turns in many short rounds; the verdict is the median of
the per-round ratios (each ratio is between two rounds run back to back, so a
busy spell of the shared machine slows both sides of it alike). Each round is
long enough to hold several checkpoints, so their cost is in every ratio.
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
    """Plain steps, and steps recorded into a History (two solvers of ``example``)."""
    import engine
    from engine import resources
    from gui import snapshot
    from gui.debug.rewind import History

    path = resources.examples()[example]
    plain = engine.get_solver(path)
    snapshot.prepare_for_inspection(plain)
    recorded = engine.get_solver(path)
    snapshot.prepare_for_inspection(recorded)
    history = History()

    def step_and_record():
        began = time.perf_counter()
        recorded.step(1)
        history.record_iteration(recorded, time.perf_counter() - began)

    return {"step": lambda: plain.step(1), "step + rewind": step_and_record}, history


def paired_ratio(timings: dict[str, common.Timing]) -> float:
    """The median over rounds of (recorded round time / the plain round beside it)."""
    pairs = zip(timings["step + rewind"].samples, timings["step"].samples)
    return statistics.median(recorded / plain for recorded, plain in pairs)


def measure(example: str, quick: bool) -> common.Result:
    fns, history = contenders(example)
    timings = common.compare(fns, calls=200 if quick else 400, rounds=15 if quick else 31, warmup=1)
    ratio = paired_ratio(timings)
    checkpoint = history.entries[-1].nbytes if history.entries else 0
    print(f"{example}: step {common.format_time(timings['step'].median)}, with rewind "
          f"{common.format_time(timings['step + rewind'].median)} (median paired ratio x{ratio:.3f}); "
          f"checkpoint every {history.checkpoint_every} iterations, {checkpoint / 1e3:.0f} kB each; "
          f"{history.describe()}")
    return common.Result("debug_rewind", f"{example}: step with rewind / without", ratio, target=TARGET,
                         note=f"checkpoint every {history.checkpoint_every}")


def run(quick: bool) -> list[common.Result]:
    return [measure(example, quick) for example in EXAMPLES]


def main(argv=None) -> int:
    return common.quick_main(run, __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
