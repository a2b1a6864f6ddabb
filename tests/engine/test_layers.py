"""Every layer's forward against arithmetic written here, and the seed's
InnerProduct backward worked by hand."""
import h5py
import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import datasets
from engine.products import describe
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(12)


# -- InnerProduct ---------------------------------------------------------------
def _ip_spec(num_output, extra=""):
    return (f'type: "InnerProduct" inner_product_param {{ num_output: {num_output} '
            f'weight_filler {{ type: "gaussian" std: 1 }} bias_filler {{ type: "gaussian" std: 1 }} {extra} }}')


def _reference_inner_product(a, W, b):
    """Row by row, output by output: top[m, n] = sum_k a[m, k] W[n, k] + b[n]."""
    M, K = a.shape
    N = W.shape[0]
    top = numpy.zeros((M, N))
    for m in range(M):
        for n in range(N):
            top[m, n] = sum(a[m, k] * W[n, k] for k in range(K)) + (b[n] if b is not None else 0.0)
    return top


@settings(max_examples=15, deadline=None)
@given(M=st.integers(1, 5), K=st.integers(1, 6), N=st.integers(1, 4))
def test_inner_product_forward_any_shape(M, K, N):
    a = numpy.random.default_rng(M * 100 + K * 10 + N).normal(size=(M, K))
    layer, _, top = run_forward(_ip_spec(N), [a])
    W, b = layer.blobs[0].data, layer.blobs[1].data
    assert W.shape == (N, K) and b.shape == (N,)
    assert (layer.M, layer.N, layer.K) == (M, N, K)
    numpy.testing.assert_allclose(top[0].data, _reference_inner_product(a, W, b), rtol=1e-12, atol=1e-12)


def test_inner_product_axis_flattens_the_trailing_axes():
    a = RNG.normal(size=(2, 3, 4))
    layer, _, top = run_forward(_ip_spec(5, "axis: 2"), [a])
    assert (layer.M, layer.K, layer.N) == (6, 4, 5)
    assert top[0].shape == (2, 3, 5)
    expected = _reference_inner_product(a.reshape(6, 4), layer.blobs[0].data, layer.blobs[1].data)
    numpy.testing.assert_allclose(top[0].data.reshape(6, 5), expected, rtol=1e-12)


def test_inner_product_default_axis_1_flattens_images():
    a = RNG.normal(size=(2, 3, 2, 2))
    layer, _, top = run_forward(_ip_spec(4), [a])
    assert layer.K == 12 and top[0].shape == (2, 4)
    expected = _reference_inner_product(a.reshape(2, 12), layer.blobs[0].data, layer.blobs[1].data)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


def test_inner_product_transpose_stores_weights_k_by_n():
    a = RNG.normal(size=(3, 4))
    layer, _, top = run_forward(_ip_spec(2, "transpose: true"), [a])
    W = layer.blobs[0].data
    assert W.shape == (4, 2)
    expected = _reference_inner_product(a, W.T, layer.blobs[1].data)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


def test_inner_product_without_bias():
    a = RNG.normal(size=(3, 4))
    layer, _, top = run_forward(_ip_spec(2, "bias_term: false"), [a])
    assert len(layer.blobs) == 1
    numpy.testing.assert_allclose(top[0].data, _reference_inner_product(a, layer.blobs[0].data, None),
                                  rtol=1e-12)


def test_inner_product_default_fillers_are_constant_zero():
    layer, _, _ = make_layer('type: "InnerProduct" inner_product_param { num_output: 3 }', [numpy.ones((2, 2))])
    assert not layer.blobs[0].data.any() and not layer.blobs[1].data.any()


def test_seed_inner_product_worked_by_hand():
    """M_=2 samples, K_=3 inputs, N_=2 outputs; every product written out."""
    a = numpy.array([[1.0, 2.0, 3.0],
                     [4.0, 5.0, 6.0]])            # bottom data, M_ x K_
    W = numpy.array([[1.0, 0.0, -1.0],
                     [2.0, 1.0, 0.0]])            # N_ x K_
    b = numpy.array([0.5, -1.0])
    layer, bottom, top = make_layer('type: "InnerProduct" inner_product_param { num_output: 2 }', [a],
                                    dtype=numpy.float32)
    layer.blobs[0].data[...] = W
    layer.blobs[1].data[...] = b
    layer.forward(bottom, top)
    # top = a . W^T + 1 . b^T
    expected_top = [[1 * 1 + 2 * 0 + 3 * -1 + 0.5, 1 * 2 + 2 * 1 + 3 * 0 - 1.0],   # [-1.5, 3]
                    [4 * 1 + 5 * 0 + 6 * -1 + 0.5, 4 * 2 + 5 * 1 + 6 * 0 - 1.0]]   # [-1.5, 12]
    assert top[0].data.tolist() == expected_top == [[-1.5, 3.0], [-1.5, 12.0]]

    delta = numpy.array([[1.0, -1.0],
                         [2.0, 0.5]])             # top diff, M_ x N_
    top[0].diff[...] = delta
    layer.backward(top, [True], bottom)
    # 1. dW = delta^T . a  (N_ x M_ . M_ x K_)
    dW = [[1 * 1 + 2 * 4, 1 * 2 + 2 * 5, 1 * 3 + 2 * 6],                 # [9, 12, 15]
          [-1 * 1 + 0.5 * 4, -1 * 2 + 0.5 * 5, -1 * 3 + 0.5 * 6]]         # [1, 0.5, 0]
    # 2. db = delta^T . 1_M
    db = [1 + 2, -1 + 0.5]                                                # [3, -0.5]
    # 3. delta_down = delta . W  (M_ x N_ . N_ x K_)
    delta_down = [[1 * 1 + -1 * 2, 1 * 0 + -1 * 1, 1 * -1 + -1 * 0],     # [-1, -1, -1]
                  [2 * 1 + 0.5 * 2, 2 * 0 + 0.5 * 1, 2 * -1 + 0.5 * 0]]   # [3, 0.5, -2]
    assert layer.blobs[0].diff.tolist() == dW == [[9.0, 12.0, 15.0], [1.0, 0.5, 0.0]]
    assert layer.blobs[1].diff.tolist() == db == [3.0, -0.5]
    assert bottom[0].diff.tolist() == delta_down == [[-1.0, -1.0, -1.0], [3.0, 0.5, -2.0]]

    # The dims and products the step-through shows for this layer.
    dims, forward, backward = describe(layer)
    assert dims == {"M_": 2, "N_": 2, "K_": 3}
    assert "[2×2]" in forward[0] and "a [2×3]" in forward[0]
    assert any("dW [2×3]" in p for p in backward)
    assert any("db [2]" in p for p in backward)
    assert any("δ_down [2×3]" in p for p in backward)

    # Param diffs accumulate (the solver clears them once per iteration); δ_down is overwritten.
    layer.backward(top, [True], bottom)
    assert layer.blobs[0].diff.tolist() == [[18.0, 24.0, 30.0], [2.0, 1.0, 0.0]]
    assert layer.blobs[1].diff.tolist() == [6.0, -1.0]
    assert bottom[0].diff.tolist() == delta_down


# -- activations --------------------------------------------------------------------
def test_relu_forward():
    x = numpy.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    _, _, top = run_forward('type: "ReLU"', [x])
    assert top[0].data.tolist() == [[0.0, 0.0, 0.0, 0.5, 3.0]]


def test_leaky_relu_forward_and_backward():
    x = numpy.array([[-2.0, -0.5, 0.5, 3.0]])
    layer, bottom, top = run_forward('type: "ReLU" relu_param { negative_slope: 0.1 }', [x])
    slope = float(numpy.float32(0.1))  # prototxt floats are float32
    numpy.testing.assert_allclose(top[0].data, [[-2 * slope, -0.5 * slope, 0.5, 3.0]], rtol=1e-12)
    top[0].diff[...] = [[1.0, 2.0, 3.0, 4.0]]
    layer.backward(top, [True], bottom)
    numpy.testing.assert_allclose(bottom[0].diff, [[1 * slope, 2 * slope, 3.0, 4.0]], rtol=1e-12)


def test_sigmoid_forward():
    x = numpy.array([[-3.0, -1.0, 0.0, 2.0]])
    _, _, top = run_forward('type: "Sigmoid"', [x])
    expected = [1.0 / (1.0 + numpy.exp(3.0)), 1.0 / (1.0 + numpy.exp(1.0)), 0.5, 1.0 / (1.0 + numpy.exp(-2.0))]
    numpy.testing.assert_allclose(top[0].data[0], expected, rtol=1e-12)


def test_tanh_forward():
    x = numpy.array([[-1.0, 0.0, 0.5]])
    _, _, top = run_forward('type: "TanH"', [x])
    expected = [(numpy.exp(v) - numpy.exp(-v)) / (numpy.exp(v) + numpy.exp(-v)) for v in x[0]]
    numpy.testing.assert_allclose(top[0].data[0], expected, rtol=1e-12, atol=1e-15)


def _softmax_reference(x, axis):
    moved = numpy.moveaxis(x, axis, -1)
    out = numpy.empty_like(moved)
    for index in numpy.ndindex(*moved.shape[:-1]):
        e = [numpy.exp(v) for v in moved[index]]
        out[index] = [v / sum(e) for v in e]
    return numpy.moveaxis(out, -1, axis)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_softmax_forward_over_axis(axis):
    x = RNG.normal(size=(2, 3, 4)) * 3
    _, _, top = run_forward(f'type: "Softmax" softmax_param {{ axis: {axis} }}', [x])
    numpy.testing.assert_allclose(top[0].data, _softmax_reference(x, axis), rtol=1e-12)


def test_softmax_is_stable_for_large_inputs():
    x = numpy.array([[1000.0, 1000.0, 990.0]])
    _, _, top = run_forward('type: "Softmax"', [x], dtype=numpy.float32)
    assert numpy.isfinite(top[0].data).all()
    numpy.testing.assert_allclose(top[0].data.sum(), 1.0, rtol=1e-6)


# -- SoftmaxWithLoss --------------------------------------------------------------
def _nll_terms(x, labels, ignore=None):
    """-log p[label] per (sample, position) for scores N x C x H; 0 where ignored."""
    prob = _softmax_reference(x, 1)
    terms = numpy.zeros(labels.shape)
    for n in range(labels.shape[0]):
        for h in range(labels.shape[1]):
            if labels[n, h] != ignore:
                terms[n, h] = -numpy.log(prob[n, int(labels[n, h]), h])
    return terms, prob


@pytest.mark.parametrize("mode,normalizer", [
    ("FULL", lambda n, h, valid: n * h), ("VALID", lambda n, h, valid: valid),
    ("BATCH_SIZE", lambda n, h, valid: n), ("NONE", lambda n, h, valid: 1)])
def test_softmax_with_loss_normalization_modes_and_ignore_label(mode, normalizer):
    x = RNG.normal(size=(3, 4, 2))
    labels = numpy.array([[0, 3], [1, 2], [2, 2]], dtype=float)   # label 2 is ignored: 3 of 6
    spec = (f'type: "SoftmaxWithLoss" loss_param {{ normalization: {mode} ignore_label: 2 }} '
            f'bottom: "x" bottom: "label"')
    layer, bottom, top = run_forward(spec, [x, labels.reshape(3, 1, 2)])
    terms, prob = _nll_terms(x, labels, ignore=2)
    norm = normalizer(3, 2, 3)
    numpy.testing.assert_allclose(float(top[0].data), terms.sum() / norm, rtol=1e-12)
    # backward: (p - onehot) / norm, zero where the label is ignored
    top[0].diff[...] = 1.0
    layer.backward(top, [True, False], bottom)
    expected = prob.copy()
    for n in range(3):
        for h in range(2):
            if labels[n, h] == 2:
                expected[n, :, h] = 0.0
            else:
                expected[n, int(labels[n, h]), h] -= 1.0
    numpy.testing.assert_allclose(bottom[0].diff, expected / norm, rtol=1e-12, atol=1e-15)


def test_softmax_with_loss_default_is_valid_mean_over_samples():
    x = RNG.normal(size=(4, 3))
    labels = numpy.array([0, 1, 2, 1.0])
    _, _, top = run_forward('type: "SoftmaxWithLoss"', [x, labels])
    terms, _ = _nll_terms(x[:, :, None], labels[:, None])
    numpy.testing.assert_allclose(float(top[0].data), terms.sum() / 4, rtol=1e-12)


def test_softmax_with_loss_legacy_normalize_false_divides_by_batch():
    x = RNG.normal(size=(2, 3, 2))
    labels = numpy.array([[0, 1], [2, 1.0]])
    _, _, top = run_forward('type: "SoftmaxWithLoss" loss_param { normalize: false }', [x, labels[:, None, :]])
    terms, _ = _nll_terms(x, labels)
    numpy.testing.assert_allclose(float(top[0].data), terms.sum() / 2, rtol=1e-12)


def test_softmax_with_loss_second_top_is_the_probability():
    x = RNG.normal(size=(3, 4))
    _, _, top = run_forward('type: "SoftmaxWithLoss"', [x, numpy.array([0, 1, 3.0])], num_tops=2)
    numpy.testing.assert_allclose(top[1].data, _softmax_reference(x, 1), rtol=1e-12)


def test_softmax_with_loss_loss_weight_scales_the_gradient():
    x = RNG.normal(size=(2, 3))
    labels = numpy.array([2, 0.0])
    layer, bottom, top = run_forward('type: "SoftmaxWithLoss"', [x, labels])
    top[0].diff[...] = 3.0
    layer.backward(top, [True, False], bottom)
    prob = _softmax_reference(x, 1)
    prob[0, 2] -= 1
    prob[1, 0] -= 1
    numpy.testing.assert_allclose(bottom[0].diff, 3.0 * prob / 2, rtol=1e-12)


# -- EuclideanLoss, Accuracy --------------------------------------------------------------
def test_euclidean_loss_forward_and_backward():
    a = numpy.array([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]])
    b = numpy.array([[0.0, 2.0], [1.0, 1.0], [0.5, -1.0]])
    layer, bottom, top = run_forward('type: "EuclideanLoss"', [a, b])
    # 1/(2N) * ((1)^2 + 0 + (2)^2 + (3)^2 + (-0.5)^2 + 0) with N = 3
    assert float(top[0].data) == pytest.approx((1 + 4 + 9 + 0.25) / 6, rel=1e-12)
    top[0].diff[...] = 2.0
    layer.backward(top, [True, True], bottom)
    numpy.testing.assert_allclose(bottom[0].diff, 2.0 * (a - b) / 3, rtol=1e-12)
    numpy.testing.assert_allclose(bottom[1].diff, -2.0 * (a - b) / 3, rtol=1e-12)


def _accuracy_reference(scores, labels, k, ignore=None):
    hits = total = 0
    for row, label in zip(scores, labels):
        if label == ignore:
            continue
        total += 1
        best = sorted(range(len(row)), key=lambda c: -row[c])[:k]
        hits += int(label) in best
    return hits / total


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_accuracy_top_k(top_k):
    scores = RNG.normal(size=(20, 5))
    labels = RNG.integers(0, 5, size=20).astype(float)
    _, _, top = run_forward(f'type: "Accuracy" accuracy_param {{ top_k: {top_k} }}', [scores, labels])
    assert float(top[0].data) == pytest.approx(_accuracy_reference(scores, labels, top_k), abs=1e-12)


def test_accuracy_ignore_label_and_per_class_top():
    scores = numpy.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]])
    labels = numpy.array([0, 1, 1, 1, 2.0])        # rows 1, 2, 3 have label 1: 1 hit of 3
    _, _, top = run_forward('type: "Accuracy" accuracy_param { ignore_label: 2 }', [scores, labels], num_tops=2)
    assert float(top[0].data) == pytest.approx(2 / 4)   # row 0 right, row 1 right, 2 and 3 wrong
    numpy.testing.assert_allclose(top[1].data, [1.0, 1 / 3, 0.0])


# -- Dropout -------------------------------------------------------------------------
def test_dropout_train_drops_the_ratio_and_scales_the_rest():
    x = numpy.ones((200, 500))
    engine.rng.set_seed(3)
    layer, bottom, top = run_forward('type: "Dropout" dropout_param { dropout_ratio: 0.3 }', [x])
    y = top[0].data
    dropped = (y == 0).mean()
    assert abs(dropped - 0.3) < 0.01
    numpy.testing.assert_allclose(y[y != 0], 1 / (1 - float(numpy.float32(0.3))), rtol=1e-12)
    assert abs(y.mean() - 1.0) < 0.02
    top[0].diff[...] = 2.0
    layer.backward(top, [True], bottom)
    numpy.testing.assert_allclose(bottom[0].diff, 2.0 * y, rtol=1e-12)


def test_dropout_test_phase_is_identity():
    x = RNG.normal(size=(4, 5))
    layer, bottom, top = run_forward('type: "Dropout"', [x], phase=engine.TEST)
    assert numpy.array_equal(top[0].data, x)
    top[0].diff[...] = 1.5
    layer.backward(top, [True], bottom)
    assert (bottom[0].diff == 1.5).all()


# -- data layers ---------------------------------------------------------------------
def test_input_layer_shapes_tops_and_leaves_values():
    net = engine.Net('layer { name: "in" type: "Input" top: "a" top: "b" '
                     'input_param { shape { dim: 2 dim: 3 } shape { dim: 4 } } }')
    assert net.blobs["a"].shape == (2, 3) and net.blobs["b"].shape == (4,)
    net.blobs["a"].data[...] = 7.0
    net.forward()
    assert (net.blobs["a"].data == 7.0).all()


def test_dummy_data_constant_and_random_fillers():
    engine.rng.set_seed(8)
    net = engine.Net('''layer { name: "d" type: "DummyData" top: "c" top: "u"
        dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 500 }
                           data_filler { type: "constant" value: 3 }
                           data_filler { type: "uniform" min: -1 max: 2 } } }''')
    net.forward()
    assert net.blobs["c"].shape == (2, 3) and (net.blobs["c"].data == 3).all()
    first = net.blobs["u"].data.copy()
    assert first.min() >= -1 and first.max() <= 2 and abs(first.mean() - 0.5) < 0.15
    net.forward()
    assert not numpy.array_equal(first, net.blobs["u"].data)  # refilled every forward


def test_memory_data_serves_rows_in_order_with_wraparound():
    net = engine.Net('layer { name: "mem" type: "MemoryData" top: "data" top: "label" '
                     'memory_data_param { batch_size: 2 channels: 3 height: 1 width: 1 } }')
    data = numpy.arange(4 * 3, dtype=numpy.float32).reshape(4, 3, 1, 1)
    labels = numpy.array([10, 11, 12, 13], dtype=numpy.float32)
    net.layers[0].set_arrays(data, labels)
    for rows in ([0, 1], [2, 3], [0, 1]):
        net.forward()
        assert numpy.array_equal(net.blobs["data"].data, data[rows])
        assert numpy.array_equal(net.blobs["label"].data, labels[rows])


def test_builtin_data_serves_the_seeded_train_and_test_splits():
    spec = ('layer {{ name: "d" type: "BuiltinData" top: "data" top: "label" '
            'builtin_data_param {{ dataset: "spiral" num_points: 90 num_classes: 3 seed: 4 '
            'test_fraction: 0.2 batch_size: {batch} }} }}')
    noise = float(numpy.float32(0.1))   # the prototxt default, a float32
    data, labels = datasets.spiral(num_points=90, noise=noise, num_classes=3, seed=4)
    order = numpy.random.default_rng(4 + 7919).permutation(90)   # the documented split
    test_rows, train_rows = order[:18], order[18:]
    train = engine.Net(spec.format(batch=10), engine.TRAIN)
    train.forward()
    assert numpy.array_equal(train.blobs["data"].data, data[train_rows[:10]])
    assert numpy.array_equal(train.blobs["label"].data, labels[train_rows[:10]])
    test = engine.Net(spec.format(batch=18), engine.TEST)
    test.forward()
    assert numpy.array_equal(test.blobs["data"].data, data[test_rows])


def _write_h5(path, data, labels):
    with h5py.File(path, "w") as handle:
        handle["data"] = data
        handle["label"] = labels


def test_hdf5_data_reads_rows_in_order_across_files_and_wraps(tmp_path):
    first = numpy.arange(3 * 2, dtype=numpy.float32).reshape(3, 2)
    second = 100 + numpy.arange(2 * 2, dtype=numpy.float32).reshape(2, 2)
    _write_h5(tmp_path / "a.h5", first, numpy.array([0, 1, 2], numpy.float32))
    _write_h5(tmp_path / "b.h5", second, numpy.array([3, 4], numpy.float32))
    (tmp_path / "list.txt").write_text("a.h5\nb.h5\n")
    net_file = tmp_path / "net.prototxt"
    net_file.write_text('layer { name: "h" type: "HDF5Data" top: "data" top: "label" '
                        'hdf5_data_param { source: "list.txt" batch_size: 2 } }')
    net = engine.Net(str(net_file))
    rows = numpy.concatenate([first, second])       # the files in order: 5 rows
    labels = numpy.arange(5, dtype=numpy.float32)
    for k in range(6):                              # 12 rows: wraps around twice
        net.forward()
        picked = [(2 * k + i) % 5 for i in range(2)]
        assert numpy.array_equal(net.blobs["data"].data, rows[picked]), k
        assert numpy.array_equal(net.blobs["label"].data, labels[picked]), k


def test_hdf5_single_file_wraps_around(tmp_path):
    data = numpy.arange(5, dtype=numpy.float32).reshape(5, 1)
    _write_h5(tmp_path / "only.h5", data, numpy.zeros(5, numpy.float32))
    (tmp_path / "list.txt").write_text(str(tmp_path / "only.h5"))
    net = engine.Net(f'layer {{ name: "h" type: "HDF5Data" top: "data" '
                     f'hdf5_data_param {{ source: "{tmp_path / "list.txt"}" batch_size: 3 }} }}')
    net.forward()
    assert net.blobs["data"].data.ravel().tolist() == [0, 1, 2]
    net.forward()
    assert net.blobs["data"].data.ravel().tolist() == [3, 4, 0]


# -- fillers -------------------------------------------------------------------------
def _filled_weights(filler: str, num_output=200, inputs=50):
    engine.rng.set_seed(21)
    layer, _, _ = make_layer(f'type: "InnerProduct" inner_product_param {{ num_output: {num_output} '
                             f'weight_filler {{ {filler} }} bias_filler {{ type: "constant" value: 0.25 }} }}',
                             [numpy.zeros((1, inputs))])
    return layer.blobs[0].data, layer.blobs[1].data


def test_constant_and_uniform_fillers():
    weights, bias = _filled_weights('type: "constant" value: -1.5')
    assert (weights == -1.5).all() and (bias == 0.25).all()
    weights, _ = _filled_weights('type: "uniform" min: -0.5 max: 2')
    assert weights.min() >= -0.5 and weights.max() <= 2
    assert abs(weights.mean() - 0.75) < 0.05


def test_gaussian_filler_mean_and_std():
    weights, _ = _filled_weights('type: "gaussian" mean: 1 std: 0.2')
    assert abs(weights.mean() - 1) < 0.01 and abs(weights.std() - 0.2) < 0.01


@pytest.mark.parametrize("norm,fan", [("", 50), ("variance_norm: FAN_IN", 50), ("variance_norm: FAN_OUT", 200),
                                      ("variance_norm: AVERAGE", 125)])
def test_xavier_and_msra_scale_with_the_fan(norm, fan):
    # W is num_output x K = 200 x 50: fan_in = count / shape[0] = 50, fan_out = count / shape[1] = 200
    xavier, _ = _filled_weights(f'type: "xavier" {norm}')
    bound = numpy.sqrt(3.0 / fan)
    assert xavier.min() >= -bound and xavier.max() <= bound
    assert xavier.max() > 0.95 * bound and xavier.min() < -0.95 * bound
    msra, _ = _filled_weights(f'type: "msra" {norm}')
    assert abs(msra.std() / numpy.sqrt(2.0 / fan) - 1) < 0.03
    assert abs(msra.mean()) < 0.01


def test_unknown_filler_is_an_error():
    with pytest.raises(engine.NetDefinitionError, match="unknown filler type 'orthogonal'"):
        _filled_weights('type: "orthogonal"')


@pytest.mark.parametrize("top_k,expected", [(1, 0.0), (2, 0.0), (3, 1.0)])
def test_accuracy_ties_count_against_the_true_class_as_in_caffe(top_k, expected):
    """All-equal scores (e.g. zero-initialised weights): Caffe counts every score >= the
    true one, itself included, so a 3-way tie is right only for top_k 3."""
    scores = numpy.zeros((4, 3))
    labels = numpy.array([0, 1, 2, 1.0])
    _, _, top = run_forward(f'type: "Accuracy" accuracy_param {{ top_k: {top_k} }}', [scores, labels])
    assert float(top[0].data) == expected


def test_accuracy_over_an_inner_axis():
    scores = RNG.normal(size=(2, 4, 3))            # N x C x H, label per (n, h)
    labels = RNG.integers(0, 4, size=(2, 3)).astype(float)
    _, _, top = run_forward('type: "Accuracy"', [scores, labels])
    hits = sum(int(numpy.argmax(scores[n, :, h]) == labels[n, h]) for n in range(2) for h in range(3))
    assert float(top[0].data) == pytest.approx(hits / 6)


def test_sigmoid_saturates_without_overflow_warnings():
    import warnings
    x = numpy.array([[-200.0, -90.0, 90.0, 200.0]], dtype=numpy.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, top = run_forward('type: "Sigmoid"', [x], dtype=numpy.float32)
    numpy.testing.assert_allclose(top[0].data, [[0.0, 0.0, 1.0, 1.0]], atol=1e-30)
