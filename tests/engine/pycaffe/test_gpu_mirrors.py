"""engine.pycaffe on the GPU, run on the strict device stand-in (engine.strict_device):
pycaffe code gets numpy arrays, kept in step with the device arrays both ways."""
import os

import numpy as np
import pytest

import engine.pycaffe as caffe
from engine import strict_device
from engine.errors import DeviceError

from .test_api import IP_NET, make_solver_file, write
from .test_bvlc_python_layer import python_net_file

pytestmark = pytest.mark.filterwarnings("ignore:Upgraded input file")  # Caffe logs it too

@pytest.fixture
def gpu():
    with strict_device.installed() as log:
        caffe.set_mode_gpu()
        yield log
    caffe.set_mode_cpu()


def test_net_blobs_are_numpy_mirrors_that_follow_the_device(tmp_path, gpu):
    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    assert type(net._net.blobs['ip'].data) is not np.ndarray  # the engine's arrays are on the device
    gen = np.random.default_rng(0)
    W, b = gen.normal(size=(2, 4)), gen.normal(size=2)
    held_out = net.blobs['ip'].data
    assert type(held_out) is np.ndarray
    net.params['ip'][0].data[...] = W
    net.params['ip'][1].data[...] = b
    x = gen.normal(size=(3, 4)).astype(np.float32)
    out = net.forward(data=x)
    expected = x.astype(np.float64) @ W.T + b
    np.testing.assert_allclose(out['ip'], expected, rtol=1e-5)
    np.testing.assert_allclose(held_out, expected, rtol=1e-5)  # a held array sees the update

    top_diff = gen.normal(size=(3, 2)).astype(np.float32)
    net.blobs['ip'].diff[...] = top_diff
    grads = net.backward()
    np.testing.assert_allclose(grads['data'], top_diff @ W, rtol=1e-4, atol=1e-6)
    held_diff = net.params['ip'][0].diff
    np.testing.assert_allclose(held_diff, top_diff.T @ x, rtol=1e-4, atol=1e-6)
    net.clear_param_diffs()
    assert (held_diff == 0).all()


def test_solver_step_on_the_device_updates_held_weights(tmp_path, gpu):
    solver = caffe.SGDSolver(make_solver_file(tmp_path, "test_iter: 1 test_interval: 100"))
    solver.net.blobs['label'].data[...] = np.arange(5).reshape(5, 1, 1, 1) % 13
    weights = solver.net.params['ip'][0].data
    before = weights.copy()
    solver.step(1)
    update = solver.net.params['ip'][0].diff
    assert np.abs(update).max() > 0
    np.testing.assert_array_equal(weights, before - update)
    test_weights = solver.test_nets[0].params['ip'][0].data
    np.testing.assert_array_equal(test_weights, weights)  # shared with the test net


def test_python_layers_refuse_the_device(gpu, tmp_path):
    net_file = tmp_path / "python.prototxt"
    os.replace(python_net_file(), net_file)
    with pytest.raises(DeviceError, match="Python layers run on the CPU"):
        caffe.Net(str(net_file), caffe.TRAIN)


def test_set_mode_moves_existing_nets_as_caffes_global_mode(tmp_path):
    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    x = np.random.default_rng(8).normal(size=(3, 4)).astype(np.float32)
    on_cpu = net.forward(data=x)['ip'].copy()
    with strict_device.installed():
        caffe.set_mode_gpu()
        assert type(net._net.blobs['ip'].data) is not np.ndarray
        np.testing.assert_array_equal(net.forward(data=x)['ip'], on_cpu)
        caffe.set_mode_cpu()
    assert type(net._net.params['ip'][0].data) is np.ndarray
    np.testing.assert_array_equal(net.forward(data=x)['ip'], on_cpu)
