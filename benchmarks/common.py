"""Timing helpers shared by the benchmark scripts.

Every script measures its contenders side by side in one process: the
contenders take turns (round-robin) so that a slow-down of the machine hits
all of them alike, and a ratio is always between numbers of the same run.
"""
from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy


# -- the machine -------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description() -> str:
    """The BLAS numpy runs (library, version, kernel, threads) via threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return "BLAS: unknown (threadpoolctl not installed)"
    parts = []
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") != "blas":
            continue
        parts.append(f"{info.get('internal_api')} {info.get('version')} "
                     f"kernel={info.get('architecture')} threads={info.get('num_threads')}")
    return "BLAS: " + ("; ".join(parts) if parts else "none found")


def torch_module():
    """PyTorch if installed (only ever a comparison, never a project dependency)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def thread_count() -> int:
    """The number of BLAS threads numpy uses (the count every contender gets)."""
    try:
        import threadpoolctl
        counts = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    return os.cpu_count() or 1


def machine_line() -> str:
    """One line naming what the numbers were taken on."""
    torch = torch_module()
    torch_text = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not installed"
    env = [f"{name}={os.environ[name]}" for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                    "OMP_NUM_THREADS") if name in os.environ]
    return (f"{cpu_model()}, {os.cpu_count()} cores | Python {platform.python_version()} | "
            f"numpy {numpy.__version__} | {blas_description()} | {torch_text}"
            + (f" | env: {' '.join(env)}" if env else ""))


def match_torch_threads() -> None:
    """Give PyTorch the same number of threads numpy's BLAS has."""
    torch = torch_module()
    if torch is not None:
        torch.set_num_threads(thread_count())


# -- timing --------------------------------------------------------------------
@dataclass
class Timing:
    """Per-call seconds of one contender, one sample per round."""
    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def compare(contenders: dict[str, Callable[[], object]], *, calls: int, rounds: int = 7,
            warmup: int = 3, sync: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time each contender's ``calls`` consecutive calls, ``rounds`` times, taking turns.

    Each contender is called ``warmup`` x ``calls`` times first. ``sync`` (e.g. a
    device synchronize) runs after each batch of calls, inside the timed part.
    Returns per-call Timings (best and median over the rounds).
    """
    for fn in contenders.values():
        for _ in range(warmup * calls):
            fn()
        if sync:
            sync()
    timings = {name: Timing(name) for name in contenders}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in contenders.items():
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                if sync:
                    sync()
                timings[name].samples.append((time.perf_counter() - start) / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    return timings


def calls_for(fn: Callable[[], object], budget_s: float = 0.2) -> int:
    """How many calls of ``fn`` fill about ``budget_s`` seconds (at least 1)."""
    fn()
    start = time.perf_counter()
    fn()
    one = max(time.perf_counter() - start, 1e-7)
    return max(1, int(budget_s / one))


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


# -- targets and the table -------------------------------------------------------
@dataclass
class Result:
    """One row of the table: a measured ratio (or value) against a target."""
    benchmark: str
    what: str
    value: float
    target: float | None = None
    higher_is_better: bool = False
    unit: str = "x"
    note: str = ""

    @property
    def measured(self) -> bool:
        return self.value == self.value  # NaN marks "not measured here"

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        if not self.measured:
            return "not measured"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "MISS"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.higher_is_better else '<='} {self.target:g}{self.unit}"

    def margin_text(self) -> str:
        """By how much the target is met or missed, in percent of the target."""
        if self.target is None or not self.target or not self.measured:
            return ""
        if self.higher_is_better:
            pct = (self.value / self.target - 1) * 100
        else:
            pct = (1 - self.value / self.target) * 100
        return f"{pct:+.0f}%"


def print_results(results: list[Result]) -> None:
    """The rows as a Markdown table (pasteable into RESULTS.md)."""
    print("| benchmark | measure | value | target | verdict (margin) | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        value = "-" if not r.measured else f"{r.value:.3g}{r.unit}"
        verdict = r.verdict + (f" ({r.margin_text()})" if r.margin_text() else "")
        print(f"| {r.benchmark} | {r.what} | {value} | {r.target_text()} | {verdict} | {r.note} |")


def report(results: list[Result], json_path: str | None) -> None:
    """Print the table and, when ``python -m benchmarks`` asked for it, write the JSON rows."""
    print_results(results)
    if json_path:
        write_results(json_path, results)


def quick_main(run: Callable[[bool], list[Result]], description: str, argv: list[str] | None) -> int:
    """The command line shared by benchmark scripts: ``[--quick] [--json PATH]``."""
    import argparse
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args(argv)
    print(machine_line())
    report(run(args.quick), args.json)
    return 0


def print_timings(title: str, timings: dict[str, Timing]) -> None:
    print(f"  {title}")
    for t in timings.values():
        print(f"    {t.name:<44} median {format_time(t.median):>10}   best {format_time(t.best):>10}")


def write_results(path: str, results: list[Result]) -> None:
    """Hand result rows to ``python -m benchmarks`` (a JSON list)."""
    import dataclasses
    import json
    with open(path, "w", encoding="utf-8") as handle:
        json.dump([dataclasses.asdict(r) for r in results], handle)


def read_results(path: str) -> list[Result]:
    import json
    with open(path, encoding="utf-8") as handle:
        return [Result(**row) for row in json.load(handle)]


def layer_times(net, backward: bool, repeats: int = 5) -> list[tuple[str, float, float]]:
    """(layer, forward ms, backward ms) of an engine net, medians over ``repeats`` runs of
    each layer (after one whole pass, so every layer has its inputs)."""
    rows = []
    net.forward_backward() if backward else net.forward()
    for i, layer in enumerate(net.layers):
        forward, backward_times = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            net.forward_layer(i)
            forward.append(time.perf_counter() - start)
            if backward:
                start = time.perf_counter()
                net.backward_layer(i)
                backward_times.append(time.perf_counter() - start)
        rows.append((layer.name, 1e3 * statistics.median(forward),
                     1e3 * statistics.median(backward_times) if backward_times else 0.0))
    return rows
