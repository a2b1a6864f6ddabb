"""Memory soak: 100,000 headless iterations of the spiral example; resident
memory must not grow by more than a few MB (target: <= 5 MB).

The first 1,000 iterations are a warm-up (allocator pools, caches, the test
net's first runs); growth is measured from there to the end, and sampled
every 10,000 iterations so a steady leak shows as a slope.

Run: ``python -m benchmarks.memory_soak`` (``--iterations N``, ``--quick`` for
10,000, ``--json FILE`` for ``python -m benchmarks``).
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
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args(argv)
    results = run(args.quick, args.iterations)
    print(common.machine_line())  # after the soak: importing PyTorch for its version costs ~200 MB
    common.report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
