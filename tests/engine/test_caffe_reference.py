"""Reproduce a real BVLC Caffe run (tests/data/caffe_reference/mlp_sgd, see its README):
weights after every iteration, losses, learning rates, momentum history, and every
activation and gradient of iterations 0 and 1."""
import csv

import h5py
import numpy
import pytest

import engine
from tests.engine.helpers import check_caffe_iteration, relative_error

TOLERANCE = 1e-5
PARAM_LAYERS = ("ip1", "ip2", "ip3")


@pytest.fixture(scope="module")
def reference(data_dir_module):
    folder = data_dir_module / "caffe_reference" / "mlp_sgd"
    with open(folder / "losses.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return folder, rows


@pytest.fixture(scope="module")
def data_dir_module():
    from tests.conftest import DATA
    return DATA


def _weights(path):
    with h5py.File(path, "r") as handle:
        return {(layer, int(i)): numpy.array(handle["data"][layer][i])
                for layer in PARAM_LAYERS for i in handle["data"][layer]}


def _load(net, weights):
    for (layer, i), values in weights.items():
        net.params[layer][i].data[...] = values


def _tensors(path):
    found = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, numpy.array(item))
                          if isinstance(item, h5py.Dataset) else None)
    return found


def _check_iteration_tensors(solver, tensors, before, k):
    net = solver.net
    check_caffe_iteration(solver, tensors, before, PARAM_LAYERS, k, weights=TOLERANCE, tensors=TOLERANCE)
    # the captured per-layer views are the same matrices: δ arriving and δ sent down
    for layer, bottom in (("ip1", "data"), ("ip2", "relu1"), ("ip3", "relu2")):
        assert relative_error(net.captured[layer]["top_diff"], tensors[f"sub0/diff/{layer}"]) <= TOLERANCE
        if bottom != "data":
            error = relative_error(net.captured[layer]["bottom_diff"], tensors[f"sub0/diff/{bottom}"])
            assert error <= TOLERANCE, (k, layer, error)
    assert float(net.loss) == pytest.approx(float(tensors["loss"]), rel=TOLERANCE)


def test_reproduces_the_caffe_run(reference):
    folder, rows = reference
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    assert solver.auto_snapshot is False       # nothing written into the test data
    net = solver.net
    assert [layer.name for layer in net.layers] == ["data", "ip1", "relu1", "ip2", "relu2", "ip3", "loss"]
    initial = _weights(folder / "snapshots" / "mlp_sgd_iter_0.caffemodel.h5")
    _load(net, initial)
    solver.capture_gradients = True
    net.capture_layers = set(PARAM_LAYERS)
    worst = 0.0
    for k in range(20):
        before = {(layer, i): net.params[layer][i].data.copy() for layer, i in initial}
        loss = solver.step(1)
        assert loss == pytest.approx(float(rows[k]["loss_full_precision"]), rel=TOLERANCE), k
        assert solver.learning_rate == pytest.approx(float(rows[k]["lr"]), rel=1e-7), k
        if k in (0, 1):
            _check_iteration_tensors(solver, _tensors(folder / "tensors" / f"iter_{k}.h5"), before, k)
        expected = _weights(folder / "snapshots" / f"mlp_sgd_iter_{k + 1}.caffemodel.h5")
        for (layer, i), values in expected.items():
            error = relative_error(net.params[layer][i].data, values)
            worst = max(worst, error)
            assert error <= TOLERANCE, (k + 1, layer, i, error)
    assert solver.iter == 20
    with h5py.File(folder / "snapshots" / "mlp_sgd_iter_20.solverstate.h5", "r") as handle:
        assert int(handle["iter"][0]) == solver.iter
        assert int(handle["current_step"][0]) == solver.current_step
        for i, history in enumerate(solver.history):
            error = relative_error(history, numpy.array(handle["history"][str(i)]))
            assert error <= TOLERANCE, (i, error)
    # Caffe's extra forward pass after training, on the next batch
    net.forward()
    assert net.loss == pytest.approx(float(rows[20]["loss_full_precision"]), rel=TOLERANCE)
