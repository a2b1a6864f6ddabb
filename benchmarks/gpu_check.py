"""GPU checks for a CUDA machine (benchmarks/gpu_check.sh runs this with the rest):

* switch: a solver stepped CPU -> GPU -> CPU -> GPU mid-run keeps its state; its
  weights and histories agree with a CPU-only run to 1e-5 relative;
* process: a Run N in the solver process on the GPU hands its state back; it equals the
  same iterations stepped here on the GPU (and a CPU run, to 1e-5 relative after 10
  iterations; the longer run's drift is printed, not judged).

One line per check (``PASS``/``FAIL name: detail``); exit status 1 when one failed.
Without a CUDA device it prints one line and exits 0. ``--strict`` runs the switch
check on the strict device stand-in instead (what CI can run; the solver process is
another interpreter, where the stand-in is not installed).

Run: ``python -m benchmarks.gpu_check [--strict]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import numpy  # noqa: E402

import engine  # noqa: E402
from engine import backend  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPIRAL = os.path.join(ROOT, "resources", "examples", "spiral_mlp", "solver.prototxt")
TOLERANCE = 1e-5


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| over host copies."""
    a = backend.to_numpy(actual).astype(numpy.float64)
    b = backend.to_numpy(expected).astype(numpy.float64)
    scale = float(numpy.abs(b).max()) if b.size else 0.0
    diff = float(numpy.abs(a - b).max()) if b.size else 0.0
    return diff / scale if scale else diff


def worst_error(solver, reference) -> float:
    pairs = [(m.data, t.data) for m, t in zip(solver.net.learnable_params, reference.net.learnable_params)]
    pairs += list(zip(solver.history, reference.history))
    return max(relative_error(a, b) for a, b in pairs)


def check_switch() -> tuple[bool, str]:
    """20 iterations on the CPU, 20 on the GPU, 10 on the CPU, 10 on the GPU vs 60 on the CPU."""
    cpu = engine.get_solver(SPIRAL, device="cpu")
    moved = engine.get_solver(SPIRAL, device="cpu")
    cpu.step(60)
    for device, count in (("cpu", 20), ("gpu", 20), ("cpu", 10), ("gpu", 10)):
        moved.to(device)
        moved.step(count)
    on_gpu = backend.device_of(moved.net.learnable_params[0].data) == "gpu"
    error = worst_error(moved, cpu)
    ok = on_gpu and moved.iter == cpu.iter == 60 and error <= TOLERANCE
    return ok, f"iteration {moved.iter}, ends on {'gpu' if on_gpu else 'cpu'}, worst relative error {error:.2e}"


def check_process(iterations: int = 150) -> tuple[bool, str]:
    """A Run N of ``iterations`` in the solver process on the GPU, handed back."""
    from gui.model import solver_process
    from gui.model.session import Session
    window, here, cpu = Session(), Session(), Session()
    window.load(SPIRAL, "gpu")
    here.load(SPIRAL, "gpu")
    cpu.load(SPIRAL, "cpu")
    lane = solver_process.ProcessLane()
    frames = []

    def on_frame(frame) -> None:
        frames.append(frame.iteration)
        lane.frame_taken()

    began = time.perf_counter()
    try:
        result = lane.run(solver_process.make_order(window, iterations, None), on_frame, lambda: False)
        solver_process.absorb(window, result)
    finally:
        lane.close()
    seconds = time.perf_counter() - began
    for _ in range(iterations):
        here.step_iteration()
        cpu.step_iteration()
    same = worst_error(window.solver, here.solver)
    drift = worst_error(window.solver, cpu.solver)
    ok = (result.error is None and window.solver.iter == iterations and window.solver.device == "gpu"
          and same <= 1e-6)
    return ok, (f"{iterations} iterations in {seconds:.2f} s, {len(frames)} frames; vs the same steps here on "
                f"the GPU {same:.2e}, vs the CPU {drift:.2e} (drift, not judged); error {result.error}")


def run_checks(checks) -> int:
    failed = 0
    for name, check in checks:
        try:
            ok, detail = check()
        except Exception as exc:  # a check that breaks is a failed check, the others still run
            ok, detail = False, f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strict", action="store_true", help="the switch check on the strict stand-in")
    args = parser.parse_args(argv)
    if args.strict:
        from engine import strict_device
        with strict_device.installed():
            return run_checks([("switch (strict stand-in)", check_switch)])
    ok, why = engine.gpu_status()
    if not ok:
        print(f"no CUDA device: GPU checks skipped ({why})")
        return 0
    return run_checks([("switch", check_switch), ("process", check_process)])


if __name__ == "__main__":
    sys.exit(main())
