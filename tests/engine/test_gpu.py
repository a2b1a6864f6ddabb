"""GPU (cupy) runs: marked ``gpu`` and skipped without CUDA, except the error one."""
import numpy
import pytest

import engine
from engine import backend
from tests.engine.helpers import params_numpy, relative_error


def _spiral(examples_dir, device):
    solver = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"), device=device)
    solver.param.test_initialization = False
    return solver


@pytest.mark.gpu
def test_cpu_and_gpu_weights_agree_after_ten_iterations(examples_dir):
    cpu = _spiral(examples_dir, "cpu")
    gpu = _spiral(examples_dir, "gpu")
    assert gpu.net.learnable_params[0].device == "gpu"
    for a, b in zip(params_numpy(cpu.net), params_numpy(gpu.net)):
        assert numpy.array_equal(a, b)             # one seed, one initialisation on both
    cpu.step(10)
    gpu.step(10)
    for a, b in zip(params_numpy(cpu.net), params_numpy(gpu.net)):
        assert relative_error(b, a) <= 1e-5
    for a, b in zip(cpu.history, gpu.history):
        assert relative_error(backend.to_numpy(b), a) <= 1e-5


@pytest.mark.gpu
def test_net_to_gpu_and_back_keeps_values(examples_dir):
    solver = _spiral(examples_dir, "cpu")
    solver.step(3)
    net = solver.net
    data = {name: blob.data.copy() for name, blob in net.blobs.items()}
    weights = params_numpy(net)
    history = [h.copy() for h in solver.history]
    solver.to("gpu")
    assert all(blob.device == "gpu" for blob in net.blobs.values())
    assert backend.device_of(solver.history[0]) == "gpu"
    for name, blob in net.blobs.items():
        assert numpy.array_equal(backend.to_numpy(blob.data), data[name])
    solver.to("cpu")
    for name, blob in net.blobs.items():
        assert isinstance(blob.data, numpy.ndarray) and numpy.array_equal(blob.data, data[name])
    assert all(numpy.array_equal(a, b) for a, b in zip(params_numpy(net), weights))
    assert all(numpy.array_equal(a, b) for a, b in zip(solver.history, history))
    solver.to("gpu")
    solver.step(2)                                  # and it still trains there
    assert solver.iter == 5


@pytest.mark.gpu
def test_stepthrough_on_gpu_equals_step(examples_dir):
    stepped, walked = _spiral(examples_dir, "gpu"), _spiral(examples_dir, "gpu")
    stepped.step(2)
    for _ in range(2):
        for _event in walked.iteration_events():
            pass
    for a, b in zip(params_numpy(stepped.net), params_numpy(walked.net)):
        assert numpy.array_equal(a, b)


def test_set_mode_gpu_without_cuda_raises_device_error():
    if engine.gpu_status()[0]:
        pytest.skip("a CUDA GPU is present: set_mode_gpu succeeds here (covered by the gpu tests)")
    with pytest.raises(engine.DeviceError) as info:
        engine.set_mode_gpu()
    message = str(info.value)
    assert "GPU requested but unavailable" in message
    assert "cupy" in message or "CUDA" in message
    assert backend.current_mode() == "cpu"          # the failed request left the mode alone
    with pytest.raises(engine.DeviceError):
        engine.Net('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }').to("gpu")
