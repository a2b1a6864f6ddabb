"""Reproduce a real BVLC Caffe run of an AlexNet-style net (tests/data/caffe_reference/
alexnet_mini_lrn, see its README): LRN in both regions, grouped convolution, ceil-mode MAX and
AVE pooling, lr/decay multipliers, SGD + momentum + step lr, binary snapshots.

Checked: the weights after every iteration against Caffe's binary .caffemodel snapshots (read
here with protobuf alone), every activation, gradient and raw parameter gradient of iterations
0-9 against tensors/iter_<k>.h5, the momentum history against Caffe's iteration-10
.solverstate, Caffe's extra forward pass after training, a resume from Caffe's own
iteration-6 .solverstate (and the data restart of a resume at iteration 3), and the
layout of the binary snapshots the engine writes.

Tolerances (max |engine - caffe| / max |caffe| per array): the engine computes in float32 as
Caffe does, but sums in another order (im2col GEMMs, LRN window sums), so single values differ
by a few float32 ulps (eps = 1.2e-7); measured worst cases are 9.7e-7 for activations and
gradients (norm2), 5.3e-7 for weights and momentum. TENSORS 4e-6 and WEIGHTS 2e-6 leave about
4x room for BLAS builds that block sums differently, while any formula error (a wrong LRN
alpha/n, pooling divisor or group split) changes values by 1e-3 or more.
"""
import csv

import h5py
import numpy
import pytest

import engine
from engine.proto import caffe_pb2
from tests.engine.helpers import check_caffe_iteration, relative_error

TENSORS = 4e-6
WEIGHTS = 2e-6
LOSS = 2e-6
PREFIX = "alexnet_mini_lrn_iter_"
PARAM_LAYERS = ("conv1", "conv2", "fc6", "fc7")


@pytest.fixture(scope="module")
def reference():
    from tests.conftest import DATA
    folder = DATA / "caffe_reference" / "alexnet_mini_lrn"
    with open(folder / "losses.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return folder, rows


def caffemodel_weights(path) -> dict[tuple[str, int], numpy.ndarray]:
    """The blobs of a binary .caffemodel as Caffe wrote it, read with protobuf only."""
    param = caffe_pb2.NetParameter()
    param.ParseFromString(path.read_bytes())
    return {(layer.name, i): numpy.asarray(blob.data, dtype=numpy.float32).reshape(tuple(blob.shape.dim))
            for layer in param.layer for i, blob in enumerate(layer.blobs)}


def solverstate(path) -> caffe_pb2.SolverState:
    state = caffe_pb2.SolverState()
    state.ParseFromString(path.read_bytes())
    return state


def tensors(path) -> dict[str, numpy.ndarray]:
    found: dict[str, numpy.ndarray] = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, numpy.array(item))
                          if isinstance(item, h5py.Dataset) else None)
    return found


def snapshot(folder, k: int, kind: str = ".caffemodel"):
    return folder / "snapshots" / f"{PREFIX}{k}{kind}"


def check_weights(net, expected, k) -> float:
    worst = 0.0
    for (layer, i), values in expected.items():
        error = relative_error(net.params[layer][i].data, values)
        assert error <= WEIGHTS, (k, layer, i, error)
        worst = max(worst, error)
    return worst


def check_iteration(solver, recorded, used, k) -> None:
    net = solver.net
    check_caffe_iteration(solver, recorded, used, PARAM_LAYERS, k, weights=WEIGHTS, tensors=TENSORS)
    assert float(net.loss) == pytest.approx(float(recorded["loss"]), rel=LOSS)


def test_reproduces_the_caffe_run_with_binary_snapshots(reference):
    folder, rows = reference
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    assert solver.auto_snapshot is False  # nothing is written into the test data
    net = solver.net
    net.copy_from(str(snapshot(folder, 0)))  # Caffe's initial weights, binary
    initial = caffemodel_weights(snapshot(folder, 0))
    assert set(initial) == {(layer, i) for layer in PARAM_LAYERS for i in (0, 1)}
    check_weights(net, initial, 0)
    solver.capture_gradients = True
    for k in range(10):
        used = {key: net.params[key[0]][key[1]].data.copy() for key in initial}
        loss = solver.step(1)
        assert loss == pytest.approx(float(rows[k]["loss_full_precision"]), rel=LOSS), k
        assert solver.learning_rate == pytest.approx(float(rows[k]["lr"]), rel=1e-7), k
        check_iteration(solver, tensors(folder / "tensors" / f"iter_{k}.h5"), used, k)
        check_weights(net, caffemodel_weights(snapshot(folder, k + 1)), k + 1)
    final = solverstate(snapshot(folder, 10, ".solverstate"))
    assert (solver.iter, solver.current_step) == (final.iter, final.current_step) == (10, 2)
    assert len(final.history) == len(solver.history) == 8
    for i, (mine, theirs) in enumerate(zip(solver.history, final.history)):
        expected = numpy.asarray(theirs.data, dtype=numpy.float32).reshape(tuple(theirs.shape.dim))
        assert relative_error(mine, expected) <= WEIGHTS, (i, "history")
    net.forward()  # Caffe's extra forward pass after the last iteration (the next batch)
    assert net.loss == pytest.approx(float(rows[10]["loss_full_precision"]), rel=LOSS)


def test_resumes_from_caffes_iteration_6_solverstate(reference):
    """6 batches make one pass over the data, so Caffe's restart of the HDF5 cursor at row 0
    lines up with the uninterrupted run: iterations 6-9 and the weights 7-10 match it."""
    folder, rows = reference
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    solver.restore(str(snapshot(folder, 6, ".solverstate")))
    assert solver.iter == 6
    check_weights(solver.net, caffemodel_weights(snapshot(folder, 6)), 6)
    for k in range(6, 10):
        loss = solver.step(1)
        assert loss == pytest.approx(float(rows[k]["loss_full_precision"]), rel=LOSS), k
        assert solver.learning_rate == pytest.approx(float(rows[k]["lr"]), rel=1e-7), k
        check_weights(solver.net, caffemodel_weights(snapshot(folder, k + 1)), k + 1)


def test_writes_binary_snapshots_in_caffes_layout(reference, tmp_path):
    """``caffe train`` with snapshot: 1 and BINARYPROTO: the engine's files parse as Caffe's do,
    with the same layers, blob shapes and (to float32 rounding) values."""
    folder, _ = reference
    from google.protobuf import text_format
    param = caffe_pb2.SolverParameter()
    text_format.Parse((folder / "solver.prototxt").read_text(), param)
    param.net = str(folder / "net.prototxt")
    param.snapshot_prefix = str(tmp_path / "alexnet_mini_lrn")
    param.max_iter = 2
    solver = engine.get_solver(param)
    solver.net.copy_from(str(snapshot(folder, 0)))
    solver.auto_snapshot = True
    solver.step(2)
    written = tmp_path / f"{PREFIX}2.caffemodel"
    mine, theirs = caffe_pb2.NetParameter(), caffe_pb2.NetParameter()
    mine.ParseFromString(written.read_bytes())
    theirs.ParseFromString(snapshot(folder, 2).read_bytes())
    assert [layer.name for layer in mine.layer] == [layer.name for layer in theirs.layer]
    for a, b in zip(mine.layer, theirs.layer):
        assert [list(blob.shape.dim) for blob in a.blobs] == [list(blob.shape.dim) for blob in b.blobs], a.name
    expected = caffemodel_weights(snapshot(folder, 2))
    for key, values in caffemodel_weights(written).items():
        assert relative_error(values, expected[key]) <= WEIGHTS, key
    state = solverstate(tmp_path / f"{PREFIX}2.solverstate")
    caffe_state = solverstate(snapshot(folder, 6, ".solverstate"))
    assert (state.iter, state.current_step, len(state.history)) == (2, 0, len(caffe_state.history))
    assert state.learned_net.endswith(f"{PREFIX}2.caffemodel")
    assert [list(h.shape.dim) for h in state.history] == [list(h.shape.dim) for h in caffe_state.history]


def test_resuming_elsewhere_restarts_the_data_at_row_0_as_caffe_does(reference):
    """A Caffe .solverstate holds no data cursor: Caffe's resume at iteration 3 reads rows 0-7
    (batch 0), not rows 24-31, and so does the engine's."""
    folder, _ = reference
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    solver.restore(str(snapshot(folder, 3, ".solverstate")))
    assert solver.iter == 3
    check_weights(solver.net, caffemodel_weights(snapshot(folder, 3)), 3)
    solver.step(1)
    with h5py.File(folder / "images.h5", "r") as handle:
        numpy.testing.assert_array_equal(solver.net.blobs["data"].data, handle["data"][0:8])


# one layer alone, from Caffe's inputs: measured worst 4.1e-7 (conv1's forward); pooling forwards are exact
LAYER_TOLERANCE = 1e-6


@pytest.mark.parametrize("name", ["conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "fc6"])
@pytest.mark.parametrize("k", [0, 7])
def test_each_layer_alone_reproduces_caffes_tensors(reference, name, k):
    """Each layer fed Caffe's recorded bottom (and top diff) gives Caffe's top (and bottom and
    weight diffs): LRN in both regions, ceil-mode MAX/AVE pooling and grouped convolution."""
    from google.protobuf import text_format

    from engine.blob import Blob
    from engine.layer import create_layer
    folder, _ = reference
    net_param = caffe_pb2.NetParameter()
    text_format.Parse((folder / "net.prototxt").read_text(), net_param)
    layer_param = next(layer for layer in net_param.layer if layer.name == name)
    recorded = tensors(folder / "tensors" / f"iter_{k}.h5")
    bottom_name, top_name = layer_param.bottom[0], layer_param.top[0]
    layer = create_layer(layer_param, engine.TRAIN)
    layer.dtype, layer.device = numpy.dtype(numpy.float32), "cpu"
    bottom, top = Blob(recorded[f"sub0/data/{bottom_name}"].shape), Blob(())
    bottom.data[...] = recorded[f"sub0/data/{bottom_name}"]
    layer.setup([bottom], [top])
    for i, blob in enumerate(layer.blobs):
        blob.data[...] = recorded[f"param_data/{name}/{i}"]
    layer.forward([bottom], [top])
    assert relative_error(top.data, recorded[f"sub0/data/{top_name}"]) <= LAYER_TOLERANCE
    top.diff[...] = recorded[f"sub0/diff/{top_name}"]
    layer.param_propagate_down = [True] * len(layer.blobs)
    layer.backward([top], [bottom_name != "data"], [bottom])
    if bottom_name != "data":
        assert relative_error(bottom.diff, recorded[f"sub0/diff/{bottom_name}"]) <= LAYER_TOLERANCE
    for i, blob in enumerate(layer.blobs):
        assert relative_error(blob.diff, recorded[f"param_diff/{name}/{i}"]) <= LAYER_TOLERANCE, i
