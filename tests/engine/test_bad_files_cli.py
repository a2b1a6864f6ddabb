"""Issue 15 through the command line: every failure is one line on stderr and a
non-zero exit; SIGTERM stops like Ctrl-C; stale temporaries are swept; NaN
weights warn and fail ``test``; a divergence prints one line. Also the HDF5
source list read by lines and the bounded ``test_scores``."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import h5py
import numpy
import pytest

import engine
from engine import cli
from engine.solver import ScoreLog
from tests.conftest import ROOT

NET = """name: "mlp"
layer { name: "data" type: "BuiltinData" top: "data" top: "label"
        builtin_data_param { dataset: "spiral" num_points: 60 batch_size: 8 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" }
"""


def write_solver(folder, extra: str = "", prefix: str = "snap/mlp", max_iter: int = 20) -> str:
    (folder / "net.prototxt").write_text(NET)
    text = (f'net: "net.prototxt"\nbase_lr: 0.1\nmomentum: 0.9\nlr_policy: "fixed"\nmax_iter: {max_iter}\n'
            f'display: 1\nrandom_seed: 3\nsnapshot_prefix: "{prefix}"\n')
    path = folder / "solver.prototxt"
    path.write_text(text + extra)
    return str(path)


def call(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Warning" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("extra, field", [("base_lr: -1\n", "base_lr"), ("momentum: 1.5\n", "momentum"),
                                          ("average_loss: 0\n", "average_loss"), ("iter_size: 0\n", "iter_size")])
def test_train_refuses_a_bad_solver_value_before_building(tmp_path, capsys, extra, field):
    solver = write_solver(tmp_path, extra)
    code, out, err = call(capsys, "train", "--solver", solver)
    assert code == cli.EXIT_ERROR
    one_line(err, "solver.prototxt", field)
    assert "Iteration" not in out


def test_train_checks_the_snapshot_prefix_at_start(tmp_path, capsys):
    solver = write_solver(tmp_path, "snapshot: 5\n", prefix="/proc/nonexistent/spiral", max_iter=100000)
    start = time.perf_counter()
    code, out, err = call(capsys, "train", "--solver", solver)
    assert code == cli.EXIT_ERROR
    one_line(err, "/proc/nonexistent/spiral")
    assert "Iteration 1," not in out and time.perf_counter() - start < 10


def test_train_sweeps_the_temporaries_a_killed_run_left(tmp_path, capsys):
    solver = write_solver(tmp_path, max_iter=0)
    snap = tmp_path / "snap"
    snap.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = snap / f".mlp_iter_5.caffemodel.{dead.pid}.abcd1234.tmp"
    live = snap / f".mlp_iter_5.solverstate.{os.getpid()}.abcd1234.tmp"   # a writer still running
    other = snap / f".other_iter_5.caffemodel.{dead.pid}.abcd1234.tmp"    # another prefix's
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    code, _, err = call(capsys, "train", "--solver", solver)
    assert code == 0, err
    assert not stale.exists() and live.exists() and other.exists()


def test_sigterm_finishes_the_iteration_writes_a_snapshot_and_exits_non_zero(tmp_path):
    solver = write_solver(tmp_path, max_iter=10**7)
    process = subprocess.Popen([sys.executable, "-m", "engine", "train", "--solver", solver], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen, deadline = "", time.monotonic() + 60
        while "Iteration 3," not in seen:  # a few iterations in (never waits on a stuck process)
            assert time.monotonic() < deadline, seen
            if select.select([process.stdout], [], [], 1.0)[0]:
                line = process.stdout.readline()
                assert line, f"train ended early: {seen}"
                seen += line
        assert seen.startswith("Solving")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    line = one_line(err, "terminated at iteration")
    state = line.rsplit("snapshot written to ", 1)[1]
    assert os.path.isfile(state)
    assert not [name for name in os.listdir(tmp_path / "snap") if name.endswith(".tmp")]
    resumed = engine.get_solver(solver)
    resumed.restore(state)
    assert resumed.iter >= 4


def test_test_warns_on_nan_weights_and_fails_on_a_non_finite_output(tmp_path, capsys):
    (tmp_path / "net.prototxt").write_text(NET)
    net = engine.Net(str(tmp_path / "net.prototxt"), engine.TEST)
    net.params["ip2"][0].data[0, 0] = numpy.nan
    weights = tmp_path / "nan.caffemodel"
    net.save(str(weights))
    code, out, err = call(capsys, "test", "--model", tmp_path / "net.prototxt", "--weights", weights,
                          "--iterations", "2")
    assert code == cli.EXIT_ERROR
    one_line(err, "non-finite", "nan.caffemodel")
    assert "layer 'ip2' blob 0 holds 1 non-finite value(s)" in out  # the load's warning, as a log line


def test_a_divergence_is_one_line(tmp_path, capsys):
    solver = write_solver(tmp_path, max_iter=50)
    text = open(solver).read().replace("base_lr: 0.1", "base_lr: 1e35")
    open(solver, "w").write(text)
    code, out, err = call(capsys, "train", "--solver", solver)
    assert code == cli.EXIT_ERROR
    one_line(err, "non-finite value at iteration", "NaN/inf")
    assert "encountered" not in out + err  # no numpy "overflow encountered in ..." lines


@pytest.mark.parametrize("args, fragments", [
    (("time", "--model", "/dev/zero"), ("/dev/zero", "regular file")),
    (("test", "--model", "{dir}/net.prototxt", "--weights", "{dir}"), ("is a folder",)),
    (("train", "--solver", "{dir}/solver.prototxt", "--snapshot", "{dir}/net.prototxt"), ("corrupt",)),
    (("train", "--solver", "{dir}/solver.prototxt", "--weights", "{dir}/garbage.caffemodel"), ("garbage",)),
    (("gradcheck", "--model", "{dir}/inplace.prototxt"), ("'fc'", "in place")),
])
def test_each_verb_fails_in_one_line(tmp_path, capsys, args, fragments):
    write_solver(tmp_path)
    (tmp_path / "garbage.caffemodel").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "inplace.prototxt").write_text(
        'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 4 } } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "x" inner_product_param { num_output: 4 } }\n')
    code, _, err = call(capsys, *[a.replace("{dir}", str(tmp_path)) for a in args])
    assert code == cli.EXIT_ERROR
    one_line(err, *fragments)


def test_resume_reports_what_was_restored(tmp_path, capsys):
    solver = write_solver(tmp_path, "snapshot: 4\nsnapshot_format: HDF5\n", max_iter=4)
    assert call(capsys, "train", "--solver", solver)[0] == 0
    code, out, err = call(capsys, "train", "--solver", solver, "--snapshot",
                          tmp_path / "snap" / "mlp_iter_4.solverstate.h5", "--iterations", "6")
    assert code == 0, err
    assert "Restored iteration 4" in out and "Data positions: data (train)" in out


def test_hdf5_source_list_names_files_by_whole_lines(tmp_path):
    folder = tmp_path / "my data"
    folder.mkdir()
    for name, value in (("part one.h5", 1.0), ("part two.h5", 2.0)):
        with h5py.File(folder / name, "w") as handle:
            handle["data"] = numpy.full((2, 3), value, numpy.float32)
            handle["label"] = numpy.zeros(2, numpy.float32)
    source = tmp_path / "list.txt"
    source.write_text(f"{folder / 'part one.h5'}\r\n\n  my data/part two.h5  \n")
    net = engine.Net(f'layer {{ name: "d" type: "HDF5Data" top: "data" top: "label" '
                     f'hdf5_data_param {{ source: "{source}" batch_size: 4 }} }}')
    net.forward()
    numpy.testing.assert_array_equal(net.blobs["data"].data[:, 0], [1, 1, 2, 2])


def test_test_scores_keep_the_last_ones_and_count_every_one():
    log = ScoreLog()
    log.keep = 5
    for k in range(23):
        before = len(log)
        log.append((k, {"loss": float(k)}))
        assert log[before:] == [(k, {"loss": float(k)})]  # the reader's idiom sees each new score
    assert len(log) == 23 and list.__len__(log) <= 2 * log.keep
    assert log[-1][0] == 22 and [it for it, _ in log][-1] == 22
    log[:] = [(1, {})]
    assert len(log) == 1 and log[0] == (1, {})
