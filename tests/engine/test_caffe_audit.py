"""Places where the engine must do what BVLC Caffe's own sources do, checked against
small numpy reimplementations of those sources (src/caffe/solvers/sgd_solver.cpp,
src/caffe/solver.cpp): float32 where Caffe computes in Dtype, double where it does."""
import ctypes
import ctypes.util
import math

import h5py
import numpy
import pytest
from google.protobuf import text_format

import engine
from engine.lr_policy import learning_rate
from engine.proto import caffe_pb2
from tests.engine.helpers import linear_net_text, mt19937_outputs, solver_for

F32 = numpy.float32
_LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_LIBM.powf.restype, _LIBM.powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
_LIBM.expf.restype, _LIBM.expf.argtypes = ctypes.c_float, [ctypes.c_float]


# -- GetLearningRate ---------------------------------------------------------
def _caffe_inv(base_lr, gamma, power, it):
    # rate = base_lr * pow(Dtype(1) + gamma * iter_, -power): pow(float, float) is powf (g++ >= 6
    # brings std's float overloads in through <math.h>), the product float
    base = F32(1) + F32(gamma) * F32(it)
    return F32(base_lr) * F32(_LIBM.powf(float(base), -float(F32(power))))


def _caffe_sigmoid(base_lr, gamma, stepsize, it):
    # base_lr * (Dtype(1.) / (Dtype(1.) + exp(-gamma * (Dtype(iter_) - Dtype(stepsize))))): expf, all float
    exponent = -F32(gamma) * (F32(it) - F32(stepsize))
    return F32(base_lr) * (F32(1) / (F32(1) + F32(_LIBM.expf(float(exponent)))))


def _param(**fields):
    param = caffe_pb2.SolverParameter(max_iter=1000)
    for name, value in fields.items():
        setattr(param, name, value)
    return param


def test_inv_policy_takes_its_base_in_float():
    param = _param(lr_policy="inv", base_lr=0.01, gamma=1e-4, power=0.75)
    for it in range(400):
        rate, _ = learning_rate(param, it, 0)
        assert rate == _caffe_inv(0.01, 1e-4, 0.75, it), it


def test_sigmoid_policy_takes_its_exponent_in_float():
    param = _param(lr_policy="sigmoid", base_lr=0.01, gamma=0.1, stepsize=100)
    for it in range(300):
        rate, _ = learning_rate(param, it, 0)
        assert rate == _caffe_sigmoid(0.01, 0.1, 100, it), it


def test_sigmoid_policy_far_before_its_step_is_a_zero_rate_not_an_error():
    param = _param(lr_policy="sigmoid", base_lr=0.01, gamma=10.0, stepsize=100)
    rate, _ = learning_rate(param, 0, 0)   # exp(1000) is inf in C++: the rate is 0
    assert rate == F32(0.0)
    assert learning_rate(param, 100, 0)[0] == F32(0.005)


# -- ClipGradients -------------------------------------------------------------
def _caffe_clip(diffs, clip):
    """Dtype sumsq_diff += each blob's sumsq (sdot); l2norm = sqrt(sumsq) in float;
    if l2norm > clip: scale_diff(clip / l2norm) (a float quotient)."""
    sumsq = F32(0)
    for diff in diffs:
        flat = diff.reshape(-1)
        sumsq = F32(sumsq + F32(numpy.dot(flat, flat)))
    norm = F32(numpy.sqrt(sumsq))
    if norm > F32(clip):
        return [diff * (F32(clip) / norm) for diff in diffs]
    return [diff.copy() for diff in diffs]


def test_clip_gradients_in_float32_as_caffe():
    solver = solver_for(linear_net_text(num_inputs=40, num_outputs=30), clip_gradients=0.3)
    rng = numpy.random.default_rng(7)
    mismatches_fixed = 0
    for _ in range(40):
        diffs = [rng.normal(0, 1, b.shape).astype(F32) for b in solver.net.learnable_params]
        for blob, diff in zip(solver.net.learnable_params, diffs):
            blob.diff[...] = diff
        solver.clip_gradients()
        expected = _caffe_clip(diffs, 0.3)
        for blob, want in zip(solver.net.learnable_params, expected):
            numpy.testing.assert_array_equal(engine.backend.to_numpy(blob.diff), want)
        double_scale = F32(0.3 / math.sqrt(sum(float(numpy.dot(d.reshape(-1), d.reshape(-1))) for d in diffs)))
        mismatches_fixed += not numpy.array_equal(diffs[0] * double_scale, expected[0])
    assert mismatches_fixed  # the draws include cases where double math would differ


# -- Solver::Test ----------------------------------------------------------------
def _h5_list(folder, name, data, target):
    path = folder / f"{name}.h5"
    with h5py.File(path, "w") as handle:
        handle["data"] = data
        handle["target"] = target
    listing = folder / f"{name}.txt"
    listing.write_text(f"{path}\n")
    return listing


TEST_NET = """
name: "audit"
layer {{ name: "train_data" type: "HDF5Data" top: "data" top: "target" include {{ phase: TRAIN }}
        hdf5_data_param {{ source: "{train}" batch_size: 2 }} }}
layer {{ name: "test_data" type: "HDF5Data" top: "data" top: "target" include {{ phase: TEST }}
        hdf5_data_param {{ source: "{test}" batch_size: 2 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param {{ num_output: 2 weight_filler {{ type: "gaussian" std: 0.5 }} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }}
layer {{ name: "scores" type: "Power" bottom: "ip" top: "scores" include {{ phase: TEST }} }}
"""


@pytest.fixture
def test_data(tmp_path):
    rng = numpy.random.default_rng(3)
    train = _h5_list(tmp_path, "train", rng.normal(size=(4, 3)).astype(F32), rng.normal(size=(4, 2)).astype(F32))
    test_x, test_y = rng.normal(size=(5, 3)).astype(F32), rng.normal(size=(5, 2)).astype(F32)
    test = _h5_list(tmp_path, "test", test_x, test_y)
    return TEST_NET.format(train=train, test=test), test_x, test_y


def _caffe_test_scores(weight, bias, test_x, test_y, passes, first_row):
    """Per output element: the float sum over the passes, then / test_iter (Solver::Test)."""
    loss_sum, score_sum = F32(0), numpy.zeros(4, F32)
    rows = len(test_x)
    for p in range(passes):
        index = [(first_row + 2 * p + i) % rows for i in range(2)]
        ip = test_x[index].astype(numpy.float64) @ weight.T.astype(numpy.float64) + bias
        loss_sum = F32(loss_sum + F32(((ip - test_y[index]) ** 2).sum() / 4.0))
        score_sum = score_sum + ip.reshape(-1).astype(F32)
    return loss_sum / F32(passes), score_sum / F32(passes)


def test_test_scores_are_per_output_element_and_test_cursors_move_on(test_data):
    net_text, test_x, test_y = test_data
    solver = solver_for(net_text, test_iter=[3], test_interval=100)
    weight = engine.backend.to_numpy(solver.net.params["ip"][0].data).copy()
    bias = engine.backend.to_numpy(solver.net.params["ip"][1].data).copy()
    for call, first_row in ((0, 0), (1, 6)):   # the test net's data layer keeps its position
        scores = solver.test_all()
        loss, elements = _caffe_test_scores(weight, bias, test_x, test_y, 3, first_row)
        assert sorted(scores) == ["loss", "scores[0]", "scores[1]", "scores[2]", "scores[3]"], call
        assert scores["loss"] == pytest.approx(float(loss), rel=1e-6), call
        for j in range(4):
            assert scores[f"scores[{j}]"] == pytest.approx(float(elements[j]), rel=1e-6, abs=1e-7), (call, j)


# -- the solver's `weights` field (SolverParameter field 42) ------------------------
WEIGHTS_NET = """
name: "finetune"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "extra" type: "InnerProduct" bottom: "ip" top: "extra" include { phase: TEST }
        inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "Reduction" bottom: "ip" top: "loss" loss_weight: 1 }
"""


def _caffemodel_h5(path, layers):
    with h5py.File(path, "w") as handle:
        for layer, blobs in layers.items():
            for i, values in enumerate(blobs):
                handle[f"data/{layer}/{i}"] = values


def test_solver_weights_field_loads_into_train_and_test_nets(tmp_path):
    ip_w, ip_b = numpy.arange(6, dtype=F32).reshape(2, 3) / 7, numpy.array([0.5, -0.25], F32)
    extra_w, extra_b = numpy.array([[2.0, -3.0]], F32), numpy.array([0.125], F32)
    _caffemodel_h5(tmp_path / "a.caffemodel.h5", {"ip": [ip_w, ip_b]})
    _caffemodel_h5(tmp_path / "b.caffemodel.h5", {"extra": [extra_w, extra_b]})
    (tmp_path / "net.prototxt").write_text(WEIGHTS_NET)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt" base_lr: 0.1 max_iter: 1 test_iter: 1 test_interval: 10 '
        'weights: "a.caffemodel.h5, b.caffemodel.h5"')
    solver = engine.get_solver(str(tmp_path / "solver.prototxt"))
    numpy.testing.assert_array_equal(engine.backend.to_numpy(solver.net.params["ip"][0].data), ip_w)
    numpy.testing.assert_array_equal(engine.backend.to_numpy(solver.net.params["ip"][1].data), ip_b)
    test_net = solver.test_nets[0]
    numpy.testing.assert_array_equal(engine.backend.to_numpy(test_net.params["ip"][0].data), ip_w)
    numpy.testing.assert_array_equal(engine.backend.to_numpy(test_net.params["extra"][0].data), extra_w)
    numpy.testing.assert_array_equal(engine.backend.to_numpy(test_net.params["extra"][1].data), extra_b)


def test_solver_weights_field_parses_as_caffe_proto():
    param = caffe_pb2.SolverParameter()
    text_format.Parse('weights: "x.caffemodel" weights: "y.caffemodel,z.caffemodel"', param)
    assert param.DESCRIPTOR.fields_by_name["weights"].number == 42
    assert list(param.weights) == ["x.caffemodel", "y.caffemodel,z.caffemodel"]


# -- fillers -------------------------------------------------------------------
def test_positive_unitball_filler_exists_and_normalizes_each_slice():
    from engine.fillers import filled_array
    values = filled_array(caffe_pb2.FillerParameter(type="positive_unitball"), (4, 3, 2))
    assert values.dtype == F32 and values.shape == (4, 3, 2)
    assert (values >= 0).all()
    numpy.testing.assert_allclose(values.reshape(4, -1).sum(axis=1), 1.0, rtol=1e-6)


# -- ApplyUpdate: Normalize, Regularize, ComputeUpdateValue of every solver type -------
def _caffe_update(kind, w, g, hist, it, rate, lr_mult, decay_mult, p):
    """One param's update as the CPU branches of Caffe's solvers compute it (float32)."""
    g = g.copy()
    if p["iter_size"] > 1:
        g *= F32(1.0) / F32(p["iter_size"])
    decay = F32(p["weight_decay"]) * F32(decay_mult)
    if decay:
        g += decay * (w if p["regularization_type"] == "L2" else numpy.sign(w))
    local_rate, m, delta = F32(rate) * F32(lr_mult), F32(p["momentum"]), F32(p["delta"])
    if kind == "SGD":
        hist[0] = local_rate * g + m * hist[0]
        g = hist[0].copy()
    elif kind == "Nesterov":
        old = hist[0].copy()
        hist[0] = local_rate * g + m * hist[0]
        g = (F32(1) + m) * hist[0] + (-m) * old
    elif kind == "AdaGrad":
        hist[0] = g * g + hist[0]
        g = local_rate * (g / (numpy.sqrt(hist[0]) + delta))
    elif kind == "RMSProp":
        decay_rate = F32(p["rms_decay"])
        hist[0] = (F32(1) - decay_rate) * (g * g) + decay_rate * hist[0]
        g = local_rate * (g / (numpy.sqrt(hist[0]) + delta))
    elif kind == "AdaDelta":
        hist[0] = (F32(1) - m) * (g * g) + m * hist[0]
        g = g * numpy.sqrt((delta + hist[1]) / (delta + hist[0]))
        hist[1] = (F32(1) - m) * (g * g) + m * hist[1]
        g = local_rate * g
    elif kind == "Adam":
        b2, t = F32(p["momentum2"]), it + 1
        correction = F32(math.sqrt(1.0 - float(b2) ** t) / (1.0 - float(m) ** t))  # double, then Dtype
        hist[0] = (F32(1) - m) * g + m * hist[0]
        hist[1] = (F32(1) - b2) * (g * g) + b2 * hist[1]
        g = (local_rate * correction) * (hist[0] / (numpy.sqrt(hist[1]) + delta))
    return w - g


@pytest.mark.parametrize("kind", ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"])
@pytest.mark.parametrize("regularization", ["L2", "L1"])
def test_every_solver_update_is_caffes(kind, regularization):
    p = {"iter_size": 2, "weight_decay": 0.01, "regularization_type": regularization,
         "momentum": 0.9 if kind != "AdaGrad" else 0.0, "delta": 1e-6 if kind != "AdaDelta" else 1e-4,
         "rms_decay": 0.95, "momentum2": 0.999}
    extra = 'param { lr_mult: 1.5 decay_mult: 2 } param { lr_mult: 2 decay_mult: 0 }'
    fields = dict(p, type=kind, base_lr=0.05 if kind != "AdaDelta" else 1.0, lr_policy="step", gamma=0.5,
                  stepsize=2)
    if kind == "AdaGrad":
        del fields["momentum"]
    if kind not in ("RMSProp",):
        del fields["rms_decay"]
    if kind != "Adam":
        del fields["momentum2"]
    solver = solver_for(linear_net_text(num_inputs=5, num_outputs=3, extra=extra), **fields)
    rng = numpy.random.default_rng(11)
    solver.net.blobs["data"].data[...] = rng.normal(size=solver.net.blobs["data"].shape)
    solver.net.blobs["target"].data[...] = rng.normal(size=solver.net.blobs["target"].shape)
    solver.capture_gradients = True
    mults = [(1.5, 2.0), (2.0, 0.0)]
    histories = [[numpy.zeros(b.shape, F32) for _ in range(2)] for b in solver.net.learnable_params]
    for it in range(4):
        before = [engine.backend.to_numpy(b.data).copy() for b in solver.net.learnable_params]
        solver.step(1)
        rate = F32(0.05 if kind != "AdaDelta" else 1.0) * F32(0.5) ** (it // 2)
        for i, blob in enumerate(solver.net.learnable_params):
            raw = engine.backend.to_numpy(solver.raw_gradients[i]).astype(F32)
            want = _caffe_update(kind, before[i], raw, histories[i], it, rate, *mults[i], p)
            numpy.testing.assert_allclose(engine.backend.to_numpy(blob.data), want, rtol=2e-6, atol=1e-9,
                                          err_msg=f"{kind} iteration {it} param {i}")


def test_test_iters_beyond_the_test_nets_test_the_generic_net():
    """InitTestNets: test_net_param / test_net first, then one instance of net / net_param
    per remaining test_iter."""
    param = caffe_pb2.SolverParameter(base_lr=0.1, max_iter=1, test_interval=5)
    text_format.Parse(linear_net_text(), param.net_param)
    other = param.test_net_param.add()
    text_format.Parse(linear_net_text(num_outputs=2, batch=6), other)
    param.test_iter.extend([1, 2])
    solver = engine.get_solver(param)
    assert [net.blobs["data"].shape for net in solver.test_nets] == [(6, 3), (4, 3)]
    assert all(net.phase == engine.TEST for net in solver.test_nets)


# -- Caffe's random stream: boost::mt19937 + uniform_real<float> ---------------------
def test_caffe_stream_is_boost_mt19937_through_uniform_real_float():
    from engine.fillers import CaffeStream
    raws = mt19937_outputs(1701, 50)
    low, high = F32(-0.5), numpy.nextafter(F32(0.5), F32(1))
    # boost: numerator / (float(max - min) + 1) * (max - min) + min, redrawn while >= max
    expected = [v for v in (F32(r) / (F32(4294967295.0) + F32(1)) * (high - low) + low for r in raws) if v < high]
    numpy.testing.assert_array_equal(CaffeStream(1701).uniform(len(expected), -0.5, 0.5), expected)


def test_solver_random_seed_gives_caffes_own_initial_weights():
    """mlp_sgd's xavier weights (random_seed 1701) as BVLC Caffe drew them, bit for bit;
    then the first updates follow Caffe's snapshots without loading any weights."""
    from tests.conftest import DATA
    folder = DATA / "caffe_reference" / "mlp_sgd"
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    for k in range(4):
        with h5py.File(folder / "snapshots" / f"mlp_sgd_iter_{k}.caffemodel.h5", "r") as handle:
            for layer in ("ip1", "ip2", "ip3"):
                for i in (0, 1):
                    stored = numpy.array(handle["data"][layer][str(i)])
                    mine = engine.backend.to_numpy(solver.net.params[layer][i].data)
                    if k == 0:
                        numpy.testing.assert_array_equal(mine, stored, err_msg=f"{layer}.{i}")
                    else:
                        numpy.testing.assert_allclose(mine, stored, rtol=1e-5, atol=1e-6, err_msg=f"{k} {layer}")
        solver.step(1)


def test_solver_random_seed_gives_caffes_own_gaussian_weights():
    """alexnet_mini_lrn's gaussian weights (random_seed 1701; 5912 draws of boost's
    ziggurat normal, tail draws included) as BVLC Caffe drew them, bit for bit."""
    from tests.conftest import DATA
    folder = DATA / "caffe_reference" / "alexnet_mini_lrn"
    solver = engine.get_solver(str(folder / "solver.prototxt"))
    stored = caffe_pb2.NetParameter()
    stored.ParseFromString((folder / "snapshots" / "alexnet_mini_lrn_iter_0.caffemodel").read_bytes())
    checked = 0
    for layer in stored.layer:
        for i, blob in enumerate(layer.blobs):
            want = numpy.asarray(blob.data, dtype=F32).reshape(tuple(blob.shape.dim))
            mine = engine.backend.to_numpy(solver.net.params[layer.name][i].data)
            numpy.testing.assert_array_equal(mine, want, err_msg=f"{layer.name}.{i}")
            checked += want.size
    assert checked > 5900


def test_caffe_stream_normals_do_not_depend_on_how_they_are_asked_for():
    from engine.caffe_rng import CaffeStream
    whole = CaffeStream(5).normal(20000, 0.0, 1.0)
    stream = CaffeStream(5)
    parts = numpy.concatenate([stream.normal(n, 0.0, 1.0) for n in (7001, 1, 12998)])
    numpy.testing.assert_array_equal(whole, parts)
    assert abs(float(whole.mean())) < 0.03 and abs(float(whole.std()) - 1.0) < 0.03
