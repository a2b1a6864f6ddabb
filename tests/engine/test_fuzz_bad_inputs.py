"""Issue 15: a few hundred seeded bad inputs (nets, solvers, weights, solver
states, HDF5 data, special files, snapshot prefixes; see fuzz_cases.py).

For every case: the engine's own error naming the file / layer / field, or a
documented EngineWarning; never another exception type; no hang (a per-case
alarm); no allocation past a cap (the worker runs under an address-space limit
and must refuse before allocating); a failed load changes nothing; a divergence
raises no numpy warning on the way.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.engine import fuzz_cases

CASES = {case.name: case for case in fuzz_cases.cases()}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    """Every case's outcome, from one worker process (its memory capped)."""
    folder = tmp_path_factory.mktemp("fuzz")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "tests.engine.fuzz_cases", str(folder)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {}
    for line in done.stdout.splitlines():
        result = json.loads(line)
        found[result["name"]] = result
    return found


def test_the_suite_is_a_few_hundred_distinct_cases():
    assert len(CASES) >= 250
    assert len(CASES) == len(fuzz_cases.cases())  # names are unique
    kinds = {name.split("-")[0] for name in CASES}
    assert {"net", "huge", "in", "builtin", "solver", "prefix", "weights", "state", "h5", "lr", "divergence",
            "zero", "model"} <= kinds


def test_cases_are_seeded():
    def mutated_bytes(seed):  # what the first net mutations hold (their closures' bytes)
        return [case.run.__closure__[0].cell_contents for case in fuzz_cases.cases(seed)[:5]]
    assert mutated_bytes(15) == mutated_bytes(15)
    assert mutated_bytes(15) != mutated_bytes(16)


def test_no_allocation_past_the_cap(results):
    summary = results["__summary__"]
    assert summary["peak_rss"] < summary["cap"]
    assert summary["peak_rss"] < 1.5 * 2**30


def test_every_case_ran(results):
    assert set(CASES) <= set(results)
    assert max(results[name]["seconds"] for name in CASES) < fuzz_cases.CASE_SECONDS


def _names(case, result) -> list[str]:
    return [text.replace("{dir}", result["dir"]) for text in case.must_name]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(results, name):
    case, result = CASES[name], results[name]
    outcome = result["outcome"]
    assert outcome not in ("raw", "timeout"), \
        f"{outcome}: {result.get('type')}: {result.get('message')}\n{result.get('where', '')}"
    message = result.get("message", "")
    if not name.startswith("layer-param"):  # a solver run (a divergence) is reported once, not by numpy;
        # a bare net.forward() of absurd values warns as numpy does
        assert not [w for w in result["other_warnings"] if w.startswith("RuntimeWarning")], result["other_warnings"]
    if case.expect == "error":
        assert outcome == "error", f"expected an engine error, got {outcome} (warnings: {result['warnings']})"
        for text in _names(case, result):
            assert text in message, f"{text!r} not named in: {message}"
        assert "\n" not in message.strip()
    elif case.expect == "warning":
        assert outcome == "ok", f"{result.get('type')}: {message}"
        warned = " | ".join(result["warnings"])
        for text in _names(case, result):
            assert text in warned, f"{text!r} not named in the warnings: {warned}"
    else:  # a random mutation: still valid, or an error that names the file or something in it
        if outcome == "error":
            names = _names(case, result)
            assert any(text in message for text in names) or "'" in message, message
