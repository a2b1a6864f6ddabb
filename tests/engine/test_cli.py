"""The command line (``python -m engine ...``): every subcommand and its error paths."""
from __future__ import annotations

import io as stdio
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy
import pytest

import engine
from engine import cli
from engine.layer import _REGISTRY, Layer, register

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def lenet(data_dir, tmp_path):
    """A private copy of tests/data/lenet (snapshots land beside the solver)."""
    folder = tmp_path / "lenet"
    shutil.copytree(data_dir / "lenet", folder)
    return folder


def run_cli(*args, timeout=120, cwd=None):
    """``python -m engine ARGS`` in a fresh process: (exit code, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True,
                            text=True, timeout=timeout, cwd=cwd or ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT})
    return result.returncode, result.stdout, result.stderr


def call(capsys, *args):
    """cli.main in this process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def logged(pattern: str, text: str) -> list[float]:
    return [float(m) for m in re.findall(pattern, text)]


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------
def test_train_logs_like_caffe_and_snapshots(lenet):
    code, out, err = run_cli("train", "--solver", lenet / "mlp_solver.prototxt")
    assert code == 0, err
    assert out.startswith("Solving LeNetMLP\nLearning Rate Policy: inv\n")
    losses = logged(r"(?m)^Iteration \d+, loss = (\S+)$", out)
    assert len(losses) == 5  # iterations 0, 10, 20, 30 and Caffe's extra pass at 40
    assert losses[-1] < 0.5 * losses[0]
    assert "    Train net output #0: loss = " in out
    assert re.search(r"(?m)^Iteration 0, lr = 0\.05$", out)
    # inv policy: base_lr * (1 + gamma * iter) ^ -power at iteration 10, computed here
    assert logged(r"(?m)^Iteration 10, lr = (\S+)$", out) == [pytest.approx(0.05 * (1 + 0.0001 * 10) ** -0.75,
                                                                             rel=1e-5)]
    assert re.search(r"(?m)^Iteration 20, Testing net \(#0\)\n    Test net output #0: accuracy = \S+\n"
                     r"    Test net output #1: loss = \S+ \(\* 1 = \S+ loss\)$", out)
    accuracy = logged(r"Test net output #0: accuracy = (\S+)", out)
    assert accuracy[-1] > accuracy[0] and accuracy[-1] > 0.5
    assert "Snapshotting to HDF5 file " + str(lenet / "mlp_iter_20.caffemodel.h5") in out
    assert "Snapshotting solver state to HDF5 file " + str(lenet / "mlp_iter_40.solverstate.h5") in out
    assert out.rstrip().endswith("Optimization Done.")
    assert "\r" not in out  # no progress bar when stdout is not a terminal
    assert sorted(p.name for p in lenet.glob("mlp_iter_*")) == [
        "mlp_iter_20.caffemodel.h5", "mlp_iter_20.solverstate.h5",
        "mlp_iter_40.caffemodel.h5", "mlp_iter_40.solverstate.h5"]

    # resuming from iteration 20 in a new process reaches the same weights at 40, bit for bit
    with h5py.File(lenet / "mlp_iter_40.caffemodel.h5", "r") as handle:
        straight = {k: handle[f"data/{k}/{j}"][()] for k in ("ip1", "ip2") for j in (0,)}
    for path in lenet.glob("mlp_iter_40.*"):
        path.unlink()
    code, out, err = run_cli("train", "--solver", lenet / "mlp_solver.prototxt",
                             "--snapshot", lenet / "mlp_iter_20.solverstate.h5")
    assert code == 0, err
    assert "Resuming from" in out and not re.search(r"(?m)^Iteration 10,", out)
    with h5py.File(lenet / "mlp_iter_40.caffemodel.h5", "r") as handle:
        for key, values in straight.items():
            assert handle[f"data/{key}/0"][()].tobytes() == values.tobytes()


def test_train_iterations_override_and_finetuning(lenet, capsys):
    code, out, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt", "--iterations", 3)
    assert code == 0, err
    assert (lenet / "mlp_iter_3.caffemodel.h5").exists()  # snapshot_after_train at the new max_iter
    fresh_loss = logged(r"(?m)^Iteration 0, loss = (\S+)$", out)[0]
    code, out, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt", "--iterations", 30)
    assert code == 0, err
    code, out, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt", "--iterations", 1,
                          "--weights", lenet / "mlp_iter_30.caffemodel.h5")
    assert code == 0, err
    assert "Finetuning from" in out
    assert logged(r"(?m)^Iteration 0, loss = (\S+)$", out)[0] < 0.5 * fresh_loss


def test_train_progress_bar_only_on_a_terminal(lenet, monkeypatch):
    class Terminal(stdio.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert cli.main(["train", "--solver", str(lenet / "mlp_solver.prototxt"), "--iterations", "4"]) == 0
    text = screen.getvalue()
    assert "\r[" in text and "] 4/4  loss " in text
    assert "Iteration 0, loss = " in text


def test_train_error_paths(lenet, capsys, tmp_path):
    code, _, err = call(capsys, "train", "--solver", tmp_path / "missing.prototxt")
    assert code == 1
    assert_one_line_error(err, "missing.prototxt")
    code, _, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt",
                        "--weights", "a.caffemodel", "--snapshot", "b.solverstate")
    assert code == 2
    assert_one_line_error(err, "either --weights or --snapshot")
    code, _, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt",
                        "--snapshot", lenet / "nothing.solverstate")
    assert code == 1
    assert_one_line_error(err, "nothing.solverstate", "does not exist")
    (tmp_path / "broken.prototxt").write_text('net: "x.prototxt"\nbase_lr: oops\n')
    code, _, err = call(capsys, "train", "--solver", tmp_path / "broken.prototxt")
    assert code == 1
    assert_one_line_error(err, "broken.prototxt:2")


def test_train_debug_shows_the_traceback(tmp_path):
    code, _, err = run_cli("train", "--solver", tmp_path / "missing.prototxt", "--debug")
    assert code != 0
    assert "Traceback" in err and "missing.prototxt" in err


def test_unmodified_lmdb_lenet_names_the_missing_database(data_dir, capsys):
    code, _, err = call(capsys, "train", "--solver", data_dir / "lenet" / "lenet_solver_lmdb.prototxt")
    assert code == 1
    assert_one_line_error(err, "layer 'mnist' (Data)", "mnist_train_lmdb", "does not exist", "convert_imageset")
    with pytest.raises(engine.DataError, match="mnist_train_lmdb.*does not exist"):
        engine.Net(str(data_dir / "lenet" / "lenet_train_test_lmdb.prototxt"), engine.TRAIN)


@pytest.mark.slow
@pytest.mark.skipif("Convolution" not in engine.supported_types(),
                    reason="LeNet needs the Convolution and Pooling layers, which are not registered yet")
def test_lenet_in_caffes_layout_trains(lenet):
    solver = engine.get_solver(str(lenet / "lenet_solver.prototxt"))
    assert [layer.type_name for layer in solver.net.layers if layer.type_name != "Split"] == [
        "HDF5Data", "Convolution", "Pooling", "Convolution", "Pooling", "InnerProduct", "ReLU",
        "InnerProduct", "SoftmaxWithLoss"]
    assert solver.net.blobs["pool2"].shape == (64, 50, 4, 4)
    losses = []
    for _ in range(10):
        losses.append(solver.step(1))
    assert solver.test_scores[0][1]["accuracy"] < 0.3  # untrained: about chance
    assert numpy.mean(losses[-3:]) < 0.8 * losses[0]  # from Caffe's own xavier init (random_seed)


@pytest.mark.skipif(engine.gpu_status()[0], reason="checks the message shown when CUDA is missing")
def test_gpu_without_cuda_is_a_clear_error(lenet, capsys):
    code, _, err = call(capsys, "train", "--solver", lenet / "mlp_solver.prototxt", "--gpu")
    assert code == 1
    assert_one_line_error(err, "GPU requested but unavailable")


def test_ctrl_c_snapshots_before_exiting(lenet):
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", "--solver", str(lenet / "mlp_solver.prototxt"),
         "--iterations", "1000000"], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or line.startswith("Iteration 30, lr"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert_one_line_error(err, "interrupted at iteration", "snapshot written to")
    iteration = int(re.search(r"interrupted at iteration (\d+)", err).group(1))
    assert iteration > 30
    state = lenet / f"mlp_iter_{iteration}.solverstate.h5"
    assert state.exists() and (lenet / f"mlp_iter_{iteration}.caffemodel.h5").exists()
    solver = engine.get_solver(str(lenet / "mlp_solver.prototxt"))
    solver.restore(state)
    assert solver.iter == iteration
    assert "Optimization Done." not in out


# ---------------------------------------------------------------------------
# test
# ---------------------------------------------------------------------------
@pytest.fixture
def trained(lenet, capsys):
    assert cli.main(["train", "--solver", str(lenet / "mlp_solver.prototxt"), "--iterations", "30"]) == 0
    capsys.readouterr()
    return lenet / "mlp_iter_30.caffemodel.h5"


def test_test_prints_each_batch_and_the_means(lenet, trained, capsys):
    code, out, err = call(capsys, "test", "--model", lenet / "mlp_train_test.prototxt", "--weights", trained,
                          "--iterations", 2)
    assert code == 0, err
    batches = logged(r"(?m)^Batch \d+, accuracy = (\S+)$", out)
    assert len(batches) == 2
    mean = logged(r"(?m)^accuracy = (\S+)$", out)[0]
    assert mean == pytest.approx(sum(batches) / 2, abs=1e-6)
    assert mean > 0.5
    batch_losses = logged(r"(?m)^Batch \d+, loss = (\S+)$", out)
    assert logged(r"(?m)^Loss: (\S+)$", out)[0] == pytest.approx(sum(batch_losses) / 2, rel=1e-5)
    assert re.search(r"(?m)^loss = \S+ \(\* 1 = \S+ loss\)$", out)


def test_test_error_paths(lenet, data_dir, capsys):
    code, _, err = call(capsys, "test", "--model", lenet / "mlp_train_test.prototxt")
    assert code == 2
    assert_one_line_error(err, "--weights")
    code, _, err = call(capsys, "test", "--model", lenet / "mlp_train_test.prototxt",
                        "--weights", data_dir / "caffe_reference" / "mlp_sgd" / "snapshots" / "mlp_sgd_iter_20.caffemodel.h5")
    assert code == 1
    assert_one_line_error(err, "layer 'ip1' blob 0", "(16, 2)", "(64, 784)")
    code, _, err = call(capsys, "test", "--model", lenet / "mlp_train_test.prototxt", "--weights", "x.caffemodel",
                        "--iterations", 0)
    assert code == 2
    assert_one_line_error(err, "--iterations must be > 0")
    corrupt = lenet / "corrupt.caffemodel"
    corrupt.write_bytes(b"\x0a\xff\xff\xff\x0f garbage")
    code, _, err = call(capsys, "test", "--model", lenet / "mlp_train_test.prototxt", "--weights", corrupt)
    assert code == 1
    assert_one_line_error(err, "corrupt.caffemodel", "corrupt or truncated")


# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------
def test_time_reports_each_layer_and_totals(lenet, capsys):
    code, out, err = call(capsys, "time", "--model", lenet / "mlp_train_test.prototxt", "--iterations", 2)
    assert code == 0, err
    for layer in ("mnist", "ip1", "relu1", "ip2", "loss"):
        assert re.search(rf"(?m)^\s*{layer}\tforward: [\d.e-]+ ms\.$", out), layer
        assert re.search(rf"(?m)^\s*{layer}\tbackward: [\d.e-]+ ms\.$", out), layer
    forward = logged(r"(?m)^\s*\S+\tforward: (\S+) ms\.$", out)
    average_forward = logged(r"(?m)^Average Forward pass: (\S+) ms\.$", out)[0]
    assert average_forward == pytest.approx(sum(forward), rel=1e-3, abs=1e-3)
    assert logged(r"(?m)^Total Time: (\S+) ms\.$", out)[0] > 0
    assert "*** Benchmark ends ***" in out and len(re.findall("forward-backward time", out)) == 2


def test_time_error_paths(tmp_path, capsys):
    code, _, err = call(capsys, "time", "--model", tmp_path / "none.prototxt")
    assert code == 1
    assert_one_line_error(err, "none.prototxt")
    code, _, err = call(capsys, "time", "--model", tmp_path / "none.prototxt", "--iterations", "many")
    assert code == 2
    assert_one_line_error(err, "--iterations")


# ---------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------
def test_gradcheck_passes_on_a_correct_net(lenet, capsys):
    code, out, err = call(capsys, "gradcheck", "--model", lenet / "mlp_train_test.prototxt", "--layer", "ip2",
                          "--max-elements", 16)
    assert code == 0, err
    rows = re.findall(r"(?m)^(ip2/\S+)\s+worst relative error (\S+) .* ok$", out)
    assert {name for name, _ in rows} == {"ip2/ip1", "ip2/param0", "ip2/param1"}
    assert all(float(error) <= 1e-5 for _, error in rows)


class WrongScale(Layer):
    """y = 2x, with a backward that forgets the 2 (a deliberately broken layer)."""

    num_bottoms = 1
    num_tops = 1

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        top[0].data[...] = 2 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff


@pytest.fixture
def wrong_scale_registered():
    register("TestWrongScale")(WrongScale)
    yield
    _REGISTRY.pop("TestWrongScale", None)


def test_gradcheck_fails_on_a_wrong_backward(lenet, capsys, wrong_scale_registered):
    text = (lenet / "mlp_train_test.prototxt").read_text().replace(
        'bottom: "data"\n  top: "ip1"', 'bottom: "scaled"\n  top: "ip1"').replace(
        'layer {\n  name: "ip1"',
        'layer { name: "scale" type: "TestWrongScale" bottom: "data" top: "scaled" }\nlayer {\n  name: "ip1"', 1)
    text = text.replace('layer { name: "scale"', 'force_backward: true\nlayer { name: "scale"', 1)
    (lenet / "broken.prototxt").write_text(text)
    code, out, err = call(capsys, "gradcheck", "--model", lenet / "broken.prototxt", "--layer", "scale",
                          "--max-elements", 8)
    assert code == 1
    assert re.search(r"(?m)^scale/data\s+worst relative error \S+ .* FAIL$", out)
    assert_one_line_error(err, "gradient check failed", "scale/data")


def test_gradcheck_error_paths(lenet, capsys):
    code, _, err = call(capsys, "gradcheck", "--model", lenet / "mlp_train_test.prototxt", "--layer", "nope")
    assert code == 2
    assert_one_line_error(err, "no layer named 'nope'", "ip1")
    code, _, err = call(capsys, "gradcheck", "--model", lenet / "mlp_train_test.prototxt", "--layer", "mnist")
    assert code == 2
    assert_one_line_error(err, "'mnist' runs no backward pass")


# ---------------------------------------------------------------------------
# convert and usage
# ---------------------------------------------------------------------------
def test_convert_writes_data_an_hdf5data_layer_reads(tmp_path, capsys):
    data = numpy.arange(24, dtype=numpy.float32).reshape(6, 1, 2, 2)
    labels = numpy.array([0, 1, 2, 0, 1, 2])
    numpy.save(tmp_path / "x.npy", data)
    numpy.save(tmp_path / "y.npy", labels)
    code, out, err = call(capsys, "convert", "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                          "--output", tmp_path / "out.h5", "--list", tmp_path / "list.txt", "--compress")
    assert code == 0, err
    assert (tmp_path / "list.txt").read_text() == "out.h5\n"
    net = engine.Net(f"""
    layer {{ name: "d" type: "HDF5Data" top: "data" top: "label"
            hdf5_data_param {{ source: "{tmp_path / 'list.txt'}" batch_size: 6 }} }}""")
    net.forward()
    numpy.testing.assert_array_equal(net.blobs["data"].data, data)
    numpy.testing.assert_array_equal(net.blobs["label"].data, labels)
    numpy.save(tmp_path / "short.npy", labels[:4])
    code, _, err = call(capsys, "convert", "--data", tmp_path / "x.npy", "--labels", tmp_path / "short.npy",
                        "--output", tmp_path / "bad.h5")
    assert code == 1
    assert_one_line_error(err, "6 rows of data but 4 labels")
    assert not (tmp_path / "bad.h5").exists()


def test_usage_errors_are_one_line(capsys):
    code, _, err = call(capsys)
    assert code == 2
    assert_one_line_error(err, "required")
    code, _, err = call(capsys, "fly")
    assert code == 2
    assert_one_line_error(err, "invalid choice")
    code, _, err = call(capsys, "train")
    assert code == 2
    assert_one_line_error(err, "--solver")


def test_help_and_module_entry_point():
    code, out, _ = run_cli("--help")
    assert code == 0
    for command in ("train", "test", "time", "gradcheck", "convert"):
        assert command in out
