"""``python -m benchmarks``: run every benchmark script in this folder, each in
its own process (so one cannot disturb another's memory or threads), then
print the whole table of targets with the machine line.

Options: ``--quick`` (fewer rounds / iterations), ``--only NAME`` (repeatable),
``--list``. Benchmarks print their own detail while they run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NOT_BENCHMARKS = {"__init__", "__main__", "common"}

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402


def benchmark_names() -> list[str]:
    """The benchmark modules in this folder, in name order."""
    names = [f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and f[:-3] not in NOT_BENCHMARKS]
    return sorted(names)


def speaks_json(name: str) -> bool:
    """Whether the script hands its rows over with ``--json`` (ours do)."""
    with open(os.path.join(HERE, name + ".py"), encoding="utf-8") as handle:
        return "--json" in handle.read()


def run_one(name: str, quick: bool) -> tuple[int, list[common.Result]]:
    print(f"\n== {name} ==", flush=True)
    command = [sys.executable, "-m", f"benchmarks.{name}"]
    json_path = None
    if speaks_json(name):
        handle, json_path = tempfile.mkstemp(suffix=".json", prefix=f"bench_{name}_")
        os.close(handle)
        command += ["--json", json_path] + (["--quick"] if quick else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        code = subprocess.call(command, cwd=ROOT, env=env)
        results = []
        if json_path and code == 0 and os.path.getsize(json_path):
            results = common.read_results(json_path)
    finally:
        if json_path:
            os.unlink(json_path)
    if code != 0:
        results.append(common.Result(name, "script exit status", float(code), target=0,
                                     unit="", note="the benchmark failed"))
    return code, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and iterations")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    names = benchmark_names()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)} (have: {', '.join(names)})", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.only]
    machine = common.machine_line()
    print(machine)
    results, failed = [], []
    for name in names:
        code, rows = run_one(name, args.quick)
        results += rows
        if code:
            failed.append(name)
    print(f"\n## All benchmarks ({'quick' if args.quick else 'full'} run)\n\nMachine: {machine}\n")
    common.print_results(results)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
