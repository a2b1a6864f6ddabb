"""Nets, every solver type, the step-through and the gradient check on the strict
device stand-in: the same numbers as numpy, bit for bit, with no implicit crossing."""
import numpy
import pytest

import engine
from engine import backend
from engine.gradcheck import check_net
from tests.engine.helpers import linear_net_text, params_numpy, solver_for
from tests.gui.debug_nets import SHUFFLE_DROPOUT_NET, SPIRAL

X = numpy.random.default_rng(11).normal(size=(4, 3)).astype(numpy.float32)
T = numpy.random.default_rng(12).normal(size=(4, 2)).astype(numpy.float32)
MULTS = 'param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }'
SOLVERS = {
    "SGD": {"base_lr": 0.1, "momentum": 0.9},
    "Nesterov": {"base_lr": 0.1, "momentum": 0.9},
    "AdaGrad": {"base_lr": 0.1, "delta": 1e-8},
    "RMSProp": {"base_lr": 0.01, "rms_decay": 0.9, "delta": 1e-8},
    "AdaDelta": {"base_lr": 1.0, "momentum": 0.95, "delta": 1e-6},
    "Adam": {"base_lr": 0.01, "momentum": 0.9, "momentum2": 0.999, "delta": 1e-8},
}


def _linear(kind: str, device: str, **extra):
    fields = dict(SOLVERS[kind], type=kind, weight_decay=0.01, **extra)
    if device == "gpu":
        engine.set_mode_gpu()
    try:
        solver = solver_for(linear_net_text(extra=MULTS), **fields)
    finally:
        engine.set_mode_cpu()
    solver.net.blobs["data"].data[...] = backend.to_device(X, device)
    solver.net.blobs["target"].data[...] = backend.to_device(T, device)
    return solver


def _assert_same_state(mine, theirs):
    assert mine.iter == theirs.iter
    for a, b in zip(params_numpy(mine.net), params_numpy(theirs.net)):
        numpy.testing.assert_array_equal(a, b)
    for a, b in zip(mine.history, theirs.history):
        numpy.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert mine.smoothed_loss == theirs.smoothed_loss


def _spiral(device):
    solver = engine.get_solver(str(SPIRAL), device=device)
    solver.param.test_initialization = False
    return solver


def test_net_forward_backward_equals_numpy(strict):
    cpu, dev = _spiral("cpu").net, _spiral("gpu").net
    assert type(dev.blobs["data"].data).__module__ == "engine.strict_device"
    assert cpu.forward_backward() == dev.forward_backward()
    for name, blob in cpu.blobs.items():
        numpy.testing.assert_array_equal(backend.to_numpy(dev.blobs[name].data), blob.data, err_msg=name)
        numpy.testing.assert_array_equal(backend.to_numpy(dev.blobs[name].diff), blob.diff, err_msg=name)
    for mine, theirs in zip(dev.learnable_params, cpu.learnable_params):
        numpy.testing.assert_array_equal(backend.to_numpy(mine.diff), theirs.diff)


@pytest.mark.parametrize("kind", sorted(SOLVERS))
def test_every_solver_steps_like_numpy(strict, kind):
    cpu, dev = _linear(kind, "cpu"), _linear(kind, "gpu")
    assert backend.device_of(dev.history[0]) == "gpu"
    cpu.step(3)
    dev.step(3)
    _assert_same_state(dev, cpu)


@pytest.mark.parametrize("extra", [{"clip_gradients": 0.05}, {"iter_size": 2}, {"regularization_type": "L1"}])
def test_solver_stages_like_numpy(strict, extra):
    cpu, dev = _linear("SGD", "cpu", **extra), _linear("SGD", "gpu", **extra)
    cpu.step(2)
    dev.step(2)
    _assert_same_state(dev, cpu)


def test_step_through_equals_step(strict, tmp_path):
    path = tmp_path / "solver.prototxt"
    from tests.gui.debug_nets import solver_text
    path.write_text(solver_text(SHUFFLE_DROPOUT_NET))
    stepped = engine.get_solver(str(path), device="gpu")
    walked = engine.get_solver(str(path), device="gpu")
    cpu = engine.get_solver(str(path), device="cpu")
    engine.rng.set_seed(3)
    stepped.step(2)
    engine.rng.set_seed(3)
    kinds = [event.kind for _ in range(2) for event in walked.iteration_events()]
    engine.rng.set_seed(3)
    cpu.step(2)
    assert kinds.count("iteration_end") == 2 and "update_value" in kinds
    _assert_same_state(walked, stepped)
    _assert_same_state(stepped, cpu)


def test_nonfinite_stop_on_the_device(strict):
    solver = _linear("SGD", "gpu")
    solver.net.blobs["data"].data[0, 0] = numpy.float32("nan")
    events = list(solver.iteration_events())
    assert events[-1].kind == "nonfinite"
    assert solver.iter == 0
    with pytest.raises(engine.NonFiniteError):
        _linear("SGD", "gpu", base_lr=1e30).step(20)


def test_gradient_check_of_a_device_net(strict):
    solver = _spiral("gpu")
    solver.step(2)
    results = check_net(solver.net, max_elements=8)
    assert results and all(result.passed for result in results.values())


def test_moving_a_solver_between_devices_keeps_its_state(strict):
    cpu, moved = _spiral("cpu"), _spiral("cpu")
    cpu.step(3)
    moved.step(1)
    moved.to("gpu")
    moved.step(1)
    assert backend.device_of(moved.net.learnable_params[0].data) == "gpu"
    moved.to("cpu")
    moved.step(1)
    _assert_same_state(moved, cpu)


DATA_NETS = {
    "HDF5Data": """
layer { name: "data" type: "HDF5Data" top: "data" top: "label"
        hdf5_data_param { source: "{list}" batch_size: 4 shuffle: true } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" }
""",
    "DummyData": """
layer { name: "data" type: "DummyData" top: "data" top: "target"
        dummy_data_param { shape { dim: 4 dim: 5 } shape { dim: 4 dim: 2 }
                           data_filler { type: "gaussian" std: 1 } data_filler { type: "uniform" } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
""",
    "MemoryData": """
layer { name: "data" type: "MemoryData" top: "data" top: "label"
        memory_data_param { batch_size: 4 channels: 5 height: 1 width: 1 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
""",
}


@pytest.mark.parametrize("kind", sorted(DATA_NETS))
def test_data_layers_feed_the_device_like_the_host(strict, kind, tmp_path):
    from engine.tools import to_hdf5, write_source_list
    rows = numpy.random.default_rng(5).normal(size=(12, 5)).astype(numpy.float32)
    labels = (numpy.arange(12) % 3).astype(numpy.float32)
    source = write_source_list([to_hdf5(rows, labels, tmp_path / "d.h5")], tmp_path / "list.txt")
    net = DATA_NETS[kind].replace("{list}", source)
    solvers = {}
    for device in ("cpu", "gpu"):
        if device == "gpu":
            engine.set_mode_gpu()
        try:
            solvers[device] = solver_for(net, momentum=0.9, weight_decay=0.001)
        finally:
            engine.set_mode_cpu()
        if kind == "MemoryData":
            solvers[device].net.layers[0].set_arrays(rows.reshape(12, 5, 1, 1), labels)
        solvers[device].step(4)
    _assert_same_state(solvers["gpu"], solvers["cpu"])
