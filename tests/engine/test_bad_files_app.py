"""Issue 15, D1: the app's scripted mode (``main.py --screenshot``) exits 1 with one
line on stderr naming the file and what is wrong: a net it cannot open, weights it
cannot load, a run that stops on NaN. (The window itself keeps its net on a failed
open: tests/gui/test_app.py.)"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy

import engine
from tests.conftest import ROOT

EXAMPLE = os.path.join(ROOT, "resources", "examples", "xor", "solver.prototxt")


def one_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("backprop-studio: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_main_py_exits_1_on_a_net_it_cannot_open(tmp_path):
    """The issue's reproduction, as a user runs it (a fresh process)."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), str(tmp_path / "missing.prototxt"),
                           "--screenshot", str(tmp_path / "o.png"), "--steps", "5"], cwd=tmp_path,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    one_line(done.stderr, "missing.prototxt", "does not exist")
    assert not (tmp_path / "o.png").exists()  # no fallback to the spiral example's picture


def test_weights_it_cannot_load_and_a_nan_stop_fail_the_run(qtbot, tmp_path, capsys):
    from gui.app import main
    out_png = str(tmp_path / "o.png")
    assert main([EXAMPLE, "--weights", "/dev/zero", "--screenshot", out_png]) == 1
    one_line(capsys.readouterr().err, "/dev/zero", "not a regular file")

    solver = engine.get_solver(EXAMPLE)
    next(iter(solver.net.params.values()))[0].data[0, 0] = numpy.nan
    nan_weights = str(tmp_path / "nan.caffemodel")
    solver.net.save(nan_weights)
    assert main([EXAMPLE, "--weights", nan_weights, "--steps", "3", "--screenshot", out_png]) == 1
    out, err = capsys.readouterr()
    one_line(err, "solver.prototxt", "NaN/inf", "ip1")
    assert "non-finite" in out  # the load's warning: one line, on stdout
