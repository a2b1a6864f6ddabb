"""engine.pycaffe beyond BVLC's own tests: batching, MemoryData, held arrays,
solver types and state, callbacks, NetSpec details, errors and the caffe alias."""
import os
import subprocess
import sys

import numpy as np
import pytest

import engine.pycaffe as caffe
from engine.errors import DataError, DeviceError, EngineError, NetDefinitionError, ShapeError
from engine.pycaffe import layers as L
from engine.pycaffe import params as P

from .test_bvlc_net import simple_net_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

IP_NET = """name: 'ip' force_backward: true
layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 3 dim: 4 } } }
layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip'
  inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 1 }
                        bias_filler { type: 'gaussian' std: 1 } } }
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_forward_all_and_forward_backward_all_batch_and_trim(tmp_path):
    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    W, b = net.params['ip'][0].data.astype(np.float64), net.params['ip'][1].data.astype(np.float64)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    out = net.forward_all(data=x)
    assert list(out) == ['ip']
    np.testing.assert_allclose(out['ip'], x @ W.T + b, rtol=1e-5, atol=1e-6)

    top_diff = np.random.default_rng(1).normal(size=(7, 2)).astype(np.float32)
    outs, diffs = net.forward_backward_all(data=x, ip=top_diff)
    np.testing.assert_allclose(outs['ip'], x @ W.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(diffs['data'], top_diff @ W, rtol=1e-5, atol=1e-6)


def test_forward_inputs_are_checked(tmp_path):
    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    with pytest.raises(ValueError, match="inputs"):
        net.forward(wrong=np.zeros((3, 4)))
    with pytest.raises(ShapeError, match="batch sized"):
        net.forward(data=np.zeros((2, 4)))
    out = net.forward(blobs=['data'], data=np.ones((3, 4)))
    assert set(out) == {'ip', 'data'}


def test_held_arrays_see_every_update(tmp_path):
    net = caffe.Net(simple_net_file_in(tmp_path), caffe.TRAIN)
    data = net.blobs['data'].data
    net.forward()
    first = data.copy()
    net.forward()
    assert data is net.blobs['data'].data and not np.array_equal(first, data)  # gaussian refill seen


def simple_net_file_in(tmp_path):
    path = simple_net_file(13)
    target = tmp_path / "simple.prototxt"
    os.replace(path, target)
    return str(target)


def test_backward_accumulates_into_param_diffs_as_caffe(tmp_path):
    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    top_diff = np.ones((3, 2), dtype=np.float32)
    net.forward(data=x)
    held = net.params['ip'][0].diff
    held[...] = 5.0  # a user-written diff: Caffe's backward adds to it
    net.backward(ip=top_diff)
    np.testing.assert_allclose(held, 5.0 + top_diff.T @ x, rtol=1e-5)
    net.clear_param_diffs()
    assert (held == 0).all() and (net.params['ip'][1].diff == 0).all()


def test_memory_data_set_input_arrays(tmp_path):
    net = caffe.Net(write(tmp_path, "mem.prototxt", """
layer { name: 'data' type: 'MemoryData' top: 'data' top: 'label'
  memory_data_param { batch_size: 2 channels: 1 height: 1 width: 3 } }
layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip' inner_product_param { num_output: 1 } }
layer { name: 'silence' type: 'Silence' bottom: 'label' }
"""), caffe.TEST)
    data = np.arange(12, dtype=np.float32).reshape(4, 1, 1, 3)
    labels = np.array([0, 1, 2, 3], dtype=np.float32)
    net.set_input_arrays(data, labels)
    net.forward()
    np.testing.assert_array_equal(net.blobs['data'].data, data[:2])
    net.forward()
    np.testing.assert_array_equal(net.blobs['label'].data.reshape(-1), labels[2:])
    with pytest.raises(ShapeError, match="float32"):
        net.set_input_arrays(data.astype(np.float64), labels)
    with pytest.raises(ShapeError, match="multiple"):
        net.set_input_arrays(data[:3], labels[:3])


SOLVER = """net: '{net}'
base_lr: 0.01 momentum: 0.9 lr_policy: 'fixed' max_iter: 4 snapshot_prefix: 'snaps/m' {extra}
"""


def make_solver_file(tmp_path, extra=""):
    return write(tmp_path, "solver.prototxt", SOLVER.format(net=simple_net_file_in(tmp_path), extra=extra))


@pytest.mark.parametrize("kind, cls", [("Adam", caffe.AdamSolver), ("Nesterov", caffe.NesterovSolver),
                                       ("AdaGrad", caffe.AdaGradSolver), ("RMSProp", caffe.RMSPropSolver),
                                       ("AdaDelta", caffe.AdaDeltaSolver), ("SGD", caffe.SGDSolver)])
def test_get_solver_builds_the_files_type(tmp_path, kind, cls):
    path = make_solver_file(tmp_path, f"type: '{kind}'")
    solver = caffe.get_solver(path)
    assert type(solver) is cls and solver.type == kind
    assert type(cls(path)) is cls
    solver.step(2)
    assert solver.iter == 2 and solver.param.max_iter == 4


def test_snapshot_prefix_is_relative_to_the_working_directory_and_restore(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "snaps").mkdir(parents=True)
    monkeypatch.chdir(work)
    solver = caffe.SGDSolver(make_solver_file(tmp_path))
    solver.solve()  # snapshot_after_train: writes snaps/m_iter_4.*
    assert solver.iter == 4
    assert sorted(os.listdir(work / "snaps")) == ["m_iter_4.caffemodel", "m_iter_4.solverstate"]
    fresh = caffe.SGDSolver(make_solver_file(tmp_path))
    fresh.restore("snaps/m_iter_4.solverstate")
    assert fresh.iter == 4
    for name in solver.net.params:
        np.testing.assert_array_equal(fresh.net.params[name][0].data, solver.net.params[name][0].data)


def test_solver_callbacks_and_net_callbacks(tmp_path):
    solver = caffe.SGDSolver(make_solver_file(tmp_path))
    calls = []
    solver.add_callback(lambda: calls.append(("start", solver.iter)),
                        lambda: calls.append(("gradients", float(np.abs(solver.net.params['ip'][0].diff).sum()))))
    solver.net.before_forward(lambda i: calls.append(("fwd", i)))
    solver.step(1)
    assert calls[0] == ("start", 0) and calls[1:5] == [("fwd", 0), ("fwd", 1), ("fwd", 2), ("fwd", 3)]
    assert calls[5][0] == "gradients" and calls[5][1] > 0


def test_net_spec_fields_enums_and_names():
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3, 8, 8]))
    n.conv = L.Convolution(n.data, kernel_size=3, num_output=4, param=[dict(lr_mult=1), dict(lr_mult=2)],
                           weight_filler=dict(type='xavier'))
    n.pool = L.Pooling(n.conv, pool='AVE', kernel_size=2, stride=2)
    pooled = L.Pooling(n.pool, pool=P.Pooling.MAX, kernel_size=2, include=dict(phase=caffe.TEST))
    n.out = L.ReLU(pooled, in_place=True)
    proto = n.to_proto()
    conv, pool, anon, relu = proto.layer[1], proto.layer[2], proto.layer[3], proto.layer[4]
    assert list(conv.convolution_param.kernel_size) == [3] and conv.param[1].lr_mult == 2
    assert conv.convolution_param.weight_filler.type == 'xavier'
    assert pool.pooling_param.pool == caffe.proto.caffe_pb2.PoolingParameter.AVE
    assert anon.name == 'Pooling1' and anon.include[0].phase == caffe.TEST
    assert relu.name == 'out' and list(relu.bottom) == list(relu.top) == ['Pooling1']


def test_errors_say_why(tmp_path):
    with pytest.raises(DataError, match="Could not open"):
        caffe.Net(str(tmp_path / "missing.prototxt"), caffe.TEST)
    path = write(tmp_path, "ip.prototxt", IP_NET)
    with pytest.raises(TypeError, match="phase"):
        caffe.Net(path)
    with pytest.raises(ValueError, match="phase"):
        caffe.Net(path, 7)
    python_net = write(tmp_path, "py.prototxt", IP_NET + """
layer { name: 'mine' type: 'Python' bottom: 'ip' top: 'out' python_param { module: 'm' layer: 'Mine' } }""")
    with pytest.raises(NetDefinitionError, match="cannot import module 'm'"):
        caffe.Net(python_net, caffe.TEST)
    not_a_layer = write(tmp_path, "py2.prototxt", IP_NET + """
layer { name: 'mine' type: 'Python' bottom: 'ip' top: 'out' python_param { module: 'os' layer: 'path' } }""")
    with pytest.raises(NetDefinitionError, match="not a subclass of caffe.Layer"):
        caffe.Net(not_a_layer, caffe.TEST)


def test_set_mode_gpu_without_a_gpu_says_why():
    from engine.backend import gpu_status

    if gpu_status()[0]:
        pytest.skip("a GPU is available here")
    with pytest.raises(DeviceError, match="cupy|CUDA"):
        caffe.set_mode_gpu()
    caffe.set_mode_cpu()


def test_caffe_alias_only_on_request(tmp_path):
    from engine.pycaffe import _alias

    shim = _alias.install_alias(str(tmp_path))
    script = ("import caffe, caffe.io, engine.pycaffe\n"
              "from caffe.proto import caffe_pb2\n"
              "import caffe.proto.caffe_pb2 as pb\n"
              "from caffe import layers as L, params as P\n"
              "assert caffe is engine.pycaffe and caffe.io is engine.pycaffe.io\n"
              "assert pb.NetParameter is caffe_pb2.NetParameter and P.Pooling.MAX == 0\n"
              "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr
    assert _alias.remove_alias(str(tmp_path)) == shim and not os.path.exists(shim)

    other = tmp_path / "other"
    other.mkdir()
    (other / "caffe.py").write_text("# a real caffe\n")
    with pytest.raises(EngineError, match="already exists"):
        _alias.install_alias(str(other))
    with pytest.raises(EngineError, match="not written"):
        _alias.remove_alias(str(other))


def test_io_proto_round_trips():
    gen = np.random.default_rng(6)
    arrays = [gen.normal(size=(2, 3, 4)).astype(np.float32), gen.normal(size=(5,)).astype(np.float32)]  # protos hold float32
    back = caffe.io.blobprotovector_str_to_arraylist(caffe.io.arraylist_to_blobprotovector_str(arrays))
    for original, restored in zip(arrays, back):
        np.testing.assert_array_equal(restored, original)
    blob = caffe.io.array_to_blobproto(arrays[0], diff=2 * arrays[0])
    np.testing.assert_array_equal(caffe.io.blobproto_to_array(blob, return_diff=True), 2 * arrays[0])
    parsed = caffe.proto.caffe_pb2.BlobProto()
    parsed.ParseFromString(blob.SerializeToString())  # as a mean.binaryproto is read
    np.testing.assert_array_equal(caffe.io.blobproto_to_array(parsed), arrays[0])

    image = gen.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    datum = caffe.io.array_to_datum(image, label=7)
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 4, 5, 7)
    np.testing.assert_array_equal(caffe.io.datum_to_array(datum), image)
    floats = caffe.io.datum_to_array(caffe.io.array_to_datum(image / 2.0))
    np.testing.assert_array_equal(floats, image / 2.0)
    with pytest.raises(ValueError):
        caffe.io.array_to_datum(np.zeros((2, 2)))


def test_alias_command_line(tmp_path, capsys):
    from engine.pycaffe.__main__ import main

    assert main(["--install-alias", "--target", str(tmp_path)]) == 0
    assert (tmp_path / "caffe.py").read_text().startswith("# engine.pycaffe alias")
    assert main(["--remove-alias", "--target", str(tmp_path)]) == 0
    assert not (tmp_path / "caffe.py").exists()
    (tmp_path / "caffe.py").write_text("# someone's caffe\n")
    assert main(["--install-alias", "--target", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


class EuclideanLossLayer(caffe.Layer):
    """BVLC's examples/pycaffe/layers/pyloss.py, as users write Python loss layers."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            sign = 1 if i == 0 else -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num


def test_python_loss_layer_with_loss_weight(tmp_path):
    net = caffe.Net(write(tmp_path, "pyloss.prototxt", f"""force_backward: true
layer {{ name: 'in' type: 'Input' top: 'a' top: 'b' input_param {{ shape {{ dim: 4 dim: 3 }} }} }}
layer {{ name: 'loss' type: 'Python' bottom: 'a' bottom: 'b' top: 'loss' loss_weight: 1
  python_param {{ module: '{__name__}' layer: 'EuclideanLossLayer' }} }}
"""), caffe.TRAIN)
    gen = np.random.default_rng(7)
    a, b = gen.normal(size=(4, 3)), gen.normal(size=(4, 3))
    out = net.forward(a=a.astype(np.float32), b=b.astype(np.float32))
    np.testing.assert_allclose(out['loss'], [((a - b) ** 2).sum() / 4 / 2], rtol=1e-5)
    assert net.layers[1].type == 'Python' and isinstance(net.layers[1], EuclideanLossLayer)
    diffs = net.backward()
    np.testing.assert_allclose(diffs['a'], (a - b) / 4, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(diffs['b'], -(a - b) / 4, rtol=1e-5, atol=1e-7)


def test_coord_map_crop_builds_a_net_that_aligns(tmp_path):
    from engine.pycaffe.coord_map import crop

    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 8, 8]))
    n.conv = L.Convolution(n.data, num_output=1, kernel_size=3, weight_filler=dict(type='gaussian'))
    n.aligned = crop(n.data, n.conv)  # the input, cropped to the conv output's coordinates
    proto = n.to_proto()
    assert proto.layer[2].crop_param.axis == 2 and list(proto.layer[2].crop_param.offset) == [1]
    net = caffe.Net(write(tmp_path, "crop.prototxt", str(proto)), caffe.TEST)
    x = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    out = net.forward(data=x)
    np.testing.assert_array_equal(out['aligned'], x[:, :, 1:7, 1:7])


def test_engine_net_accepts_pycaffes_legacy_argument_order(tmp_path):
    import engine

    net = caffe.Net(write(tmp_path, "ip.prototxt", IP_NET), caffe.TEST)
    weights = str(tmp_path / "ip.caffemodel")
    net.save(weights)
    legacy = engine.Net(str(tmp_path / "ip.prototxt"), weights, engine.TEST)
    assert legacy.phase == engine.TEST
    np.testing.assert_array_equal(legacy.params['ip'][0].data, net.params['ip'][0].data)
