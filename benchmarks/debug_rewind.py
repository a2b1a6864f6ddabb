"""What Rewind costs while training: solver steps with and without recording every
iteration into the rewind history (adaptive checkpoint spacing, as the app does).

    python benchmarks/debug_rewind.py [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

TARGET = 1.08  # recording may slow training by at most 8 %


def contenders(example: str):
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results = []
    for example in ("spiral_mlp", "digits_mlp"):
        fns, history = contenders(example)
        calls = 200 if args.quick else 500
        timings = common.compare(fns, calls=calls, rounds=3 if args.quick else 7, warmup=1)
        ratio = timings["step + rewind"].median / timings["step"].median
        checkpoint = history.entries[-1].nbytes if history.entries else 0
        print(f"{example}: step {common.format_time(timings['step'].median)}, with rewind "
              f"{common.format_time(timings['step + rewind'].median)} (x{ratio:.3f}); checkpoint every "
              f"{history.checkpoint_every} iterations, {checkpoint / 1e3:.0f} kB each; {history.describe()}")
        results.append(common.Result("debug_rewind", f"{example}: step with rewind / without", ratio,
                                     target=TARGET, note=f"checkpoint every {history.checkpoint_every}"))
    common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
