"""Zoo layers, part C (neurons, ArgMax, Tile, Reduction, MVN, Embed): each forward against
arithmetic written here (float64 loops or PyTorch's equal op), each backward against
central differences (engine.check_layer), and Caffe's edge cases."""
import math

import numpy
import pytest

# PyTorch is the independent reference for many forwards here; CI installs it (.ci/run)
torch = pytest.importorskip("torch")
F = torch.nn.functional

import engine
from engine.errors import LabelError, NetDefinitionError
from engine.gradcheck import check_layer
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(2024)


def away_from(points, shape, margin=0.05, scale=1.0):
    """Normal values moved at least ``margin`` away from each kink in ``points``."""
    x = RNG.normal(size=shape) * scale
    for p in points:
        near = numpy.abs(x - p) < margin
        x = numpy.where(near, p + numpy.where(x >= p, margin, -margin) * 2, x)
    return x


def f32(value):
    """A prototxt float field as the layer reads it (protobuf floats are float32)."""
    return float(numpy.float32(value))


def assert_gradients(spec, bottoms, blobs, **kwargs):
    result = check_layer(spec, bottoms, **kwargs)
    assert len(result.blobs) == blobs, result.summary()
    assert all(b.checked > 0 for b in result.blobs), result.summary()
    assert result.passed, result.summary()


def backward_of(layer, bottom, top, top_diff, propagate=(True,)):
    for blob in bottom:
        blob.diff[...] = 0
    top[0].diff[...] = top_diff
    layer.backward(top, list(propagate), bottom)
    return bottom[0].diff.copy()


# -- Power ----------------------------------------------------------------------------------
POWER_CASES = [  # (power, scale, shift, input kind)
    (2.0, 0.5, 1.0, "any"), (3.0, 0.7, 0.0, "nonzero"), (0.5, 0.5, 2.0, "positive"),
    (1.0, -1.5, 0.3, "any"), (-1.5, 1.2, 0.4, "positive"), (2.0, 1.0, 0.0, "any")]


def _power_input(kind, shape=(2, 3, 2)):
    if kind == "positive":
        return RNG.uniform(0.2, 2.0, size=shape)
    if kind == "nonzero":
        return away_from([0.0], shape, margin=0.1)
    return RNG.normal(size=shape)


@pytest.mark.parametrize("power,scale,shift,kind", POWER_CASES)
def test_power_forward_and_gradient(power, scale, shift, kind):
    x = _power_input(kind)
    spec = f'type: "Power" power_param {{ power: {power} scale: {scale} shift: {shift} }}'
    _, _, top = run_forward(spec, [x])
    power, scale, shift = f32(power), f32(scale), f32(shift)
    expected = numpy.vectorize(lambda v: math.pow(shift + scale * v, power))(x)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    assert_gradients(spec, [x], 1)


@pytest.mark.parametrize("power,scale", [(0.0, 2.0), (3.0, 0.0)])
def test_power_constant_cases_have_zero_gradient(power, scale):
    x = RNG.normal(size=(2, 3))
    spec = f'type: "Power" power_param {{ power: {power} scale: {scale} shift: 1.5 }}'
    layer, bottom, top = run_forward(spec, [x])
    numpy.testing.assert_array_equal(top[0].data, numpy.full_like(x, 1.0 if power == 0 else 1.5 ** f32(power)))
    numpy.testing.assert_array_equal(backward_of(layer, bottom, top, RNG.normal(size=x.shape)), 0)


def test_power_defaults_are_identity():
    x = RNG.normal(size=(3, 2))
    _, _, top = run_forward('type: "Power"', [x])
    numpy.testing.assert_array_equal(top[0].data, x)


# -- AbsVal, ELU, BNLL, Exp, Log, Threshold, Clip, Swish --------------------------------------------
def test_absval_forward_gradient_and_zero_at_zero():
    x = away_from([0.0], (2, 3, 2))
    _, _, top = run_forward('type: "AbsVal"', [x])
    numpy.testing.assert_array_equal(top[0].data, torch.abs(torch.from_numpy(x)).numpy())
    assert_gradients('type: "AbsVal"', [x], 1)
    layer, bottom, top = run_forward('type: "AbsVal"', [numpy.array([[-2.0, 0.0, 3.0]])])
    numpy.testing.assert_array_equal(backward_of(layer, bottom, top, numpy.ones((1, 3))), [[-1, 0, 1]])


def test_absval_refuses_in_place():
    net_text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "abs" type: "AbsVal" bottom: "x" top: "x" }
"""
    with pytest.raises(NetDefinitionError, match="'abs'.*in place"):
        engine.Net(net_text, engine.TEST)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_elu_matches_torch_and_its_gradient(alpha):
    x = away_from([0.0], (2, 3, 4))
    spec = f'type: "ELU" elu_param {{ alpha: {alpha} }}'
    _, _, top = run_forward(spec, [x])
    numpy.testing.assert_allclose(top[0].data, F.elu(torch.from_numpy(x), alpha=f32(alpha)).numpy(), rtol=1e-12)
    assert_gradients(spec, [x], 1)


def test_bnll_is_softplus_without_overflow():
    x = numpy.array([[-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0]])
    _, _, top = run_forward('type: "BNLL"', [x])
    expected = [math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v)) for v in x[0]]
    numpy.testing.assert_allclose(top[0].data[0], expected, rtol=1e-12, atol=1e-15)  # Caffe: log(1 + e^x)
    assert numpy.all(numpy.isfinite(top[0].data))
    assert_gradients('type: "BNLL"', [RNG.normal(size=(3, 4)) * 3], 1)


def test_bnll_gradient_saturates_as_caffe_beyond_50():
    layer, bottom, top = run_forward('type: "BNLL"', [numpy.array([[60.0, -60.0]])])
    diff = backward_of(layer, bottom, top, numpy.ones((1, 2)))
    e50 = math.exp(50.0)
    numpy.testing.assert_allclose(diff[0], [e50 / (e50 + 1), math.exp(-60) / (math.exp(-60) + 1)], rtol=1e-12)


@pytest.mark.parametrize("base,scale,shift", [(-1, 1, 0), (2.0, 0.5, 0.3), (-1, -0.7, 1.2), (10.0, 1.0, -0.5)])
def test_exp_forward_and_gradient(base, scale, shift):
    x = RNG.normal(size=(2, 3))
    spec = f'type: "Exp" exp_param {{ base: {base} scale: {scale} shift: {shift} }}'
    _, _, top = run_forward(spec, [x])
    b, scale, shift = (math.e if base == -1 else f32(base)), f32(scale), f32(shift)
    expected = numpy.vectorize(lambda v: b ** (shift + scale * v))(x)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    assert_gradients(spec, [x], 1)


@pytest.mark.parametrize("base,scale,shift", [(-1, 1, 0), (3.0, 0.5, 2.0), (-1, 2.0, 0.5), (0.5, 1.5, 1.0)])
def test_log_forward_and_gradient(base, scale, shift):
    x = RNG.uniform(0.1, 2.0, size=(2, 3))
    spec = f'type: "Log" log_param {{ base: {base} scale: {scale} shift: {shift} }}'
    _, _, top = run_forward(spec, [x])
    b, scale, shift = (math.e if base == -1 else f32(base)), f32(scale), f32(shift)
    expected = numpy.vectorize(lambda v: math.log(shift + scale * v, b))(x)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    assert_gradients(spec, [x], 1)


@pytest.mark.parametrize("kind,base", [("Exp", -2), ("Exp", 0), ("Log", -3), ("Log", 1)])
def test_exp_and_log_refuse_a_bad_base(kind, base):
    with pytest.raises(NetDefinitionError, match=f"layer '{kind}'.*base"):
        make_layer(f'type: "{kind}" {kind.lower()}_param {{ base: {base} }}', [numpy.ones((1, 2))])


def test_threshold_in_place_as_caffe_allows():
    net_text = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "thr" type: "Threshold" bottom: "x" top: "x" threshold_param { threshold: 0.5 } }
"""
    net = engine.Net(net_text, engine.TEST)
    numpy.testing.assert_array_equal(net.forward(x=numpy.array([[0.2, 0.6, 2.0]]))["x"], [[0, 1, 1]])


def test_threshold_forward_and_no_backward():
    x = numpy.array([[-1.0, 0.2, 0.25, 0.3, 2.0]])
    layer, bottom, top = run_forward('type: "Threshold" threshold_param { threshold: 0.25 }', [x])
    numpy.testing.assert_array_equal(top[0].data, [[0, 0, 0, 1, 1]])
    assert not layer.allow_force_backward(0)
    layer.backward(top, [False], bottom)  # nothing asked: nothing done
    with pytest.raises(NetDefinitionError, match="'Threshold'.*no backward"):
        layer.backward(top, [True], bottom)


def test_threshold_on_the_path_to_a_loss_is_refused_at_backward_but_fine_in_test_nets():
    net_text = """
layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "h" inner_product_param { num_output: 2 } }
layer { name: "thr" type: "Threshold" bottom: "h" top: "b" }
layer { name: "loss" type: "EuclideanLoss" bottom: "b" bottom: "t" top: "loss" }
"""
    net = engine.Net(net_text, engine.TRAIN)
    net.forward()
    with pytest.raises(NetDefinitionError, match="thr"):
        net.backward()
    test_net = engine.Net(net_text.replace('bottom: "h" top: "b"', 'bottom: "h" top: "b" propagate_down: false'),
                          engine.TRAIN)
    test_net.forward()
    test_net.backward()  # the gradient stops at the threshold, as the user asked


def test_clip_forward_and_gradient_inside_the_closed_interval():
    x = numpy.array([[-2.0, -0.5, -0.2, 0.0, 0.7, 1.0, 3.0]])
    layer, bottom, top = run_forward('type: "Clip" clip_param { min: -0.5 max: 1 }', [x])
    numpy.testing.assert_array_equal(top[0].data, torch.clamp(torch.from_numpy(x), -0.5, 1.0).numpy())
    diff = backward_of(layer, bottom, top, numpy.full((1, 7), 3.0))
    numpy.testing.assert_array_equal(diff, [[0, 3, 3, 3, 3, 3, 0]])  # both ends pass, as Caffe's clip_layer
    assert_gradients('type: "Clip" clip_param { min: -0.5 max: 0.5 }', [away_from([-0.5, 0.5], (3, 4))], 1)


@pytest.mark.parametrize("beta", [1.0, 1.7, -0.4])
def test_swish_forward_and_gradient(beta):
    x = RNG.normal(size=(2, 3, 2)) * 2
    spec = f'type: "Swish" swish_param {{ beta: {beta} }}'
    _, _, top = run_forward(spec, [x])
    t = torch.from_numpy(x)
    expected = (F.silu(t) if beta == 1.0 else t * torch.sigmoid(f32(beta) * t)).numpy()
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-15)
    assert_gradients(spec, [x], 1)


# -- PReLU --------------------------------------------------------------------------------------
def test_prelu_default_slope_is_a_quarter_per_channel():
    layer, _, top = run_forward('type: "PReLU"', [RNG.normal(size=(2, 3, 2, 2))])
    numpy.testing.assert_array_equal(layer.blobs[0].data, [0.25, 0.25, 0.25])
    shared, _, _ = make_layer('type: "PReLU" prelu_param { channel_shared: true }', [numpy.ones((2, 3))])
    assert shared.blobs[0].shape == () and float(shared.blobs[0].data) == 0.25


@pytest.mark.parametrize("shared,shape", [(False, (2, 3, 2, 2)), (True, (2, 3, 4)), (False, (4, 3))])
def test_prelu_matches_torch_and_its_gradients(shared, shape):
    spec = f'type: "PReLU" prelu_param {{ channel_shared: {str(shared).lower()} ' \
           f'filler {{ type: "uniform" min: -0.5 max: 0.9 }} }}'
    x = away_from([0.0], shape)
    layer, _, top = run_forward(spec, [x])
    weight = torch.from_numpy(numpy.atleast_1d(layer.blobs[0].data).copy())
    numpy.testing.assert_allclose(top[0].data, F.prelu(torch.from_numpy(x), weight).numpy(), rtol=1e-12)
    assert_gradients(spec, [x], 2)


PRELU_NET = """
force_backward: true
layer {{ name: "in" type: "Input" top: "x" top: "t" input_param {{ shape {{ dim: 3 dim: 2 dim: 2 }}
        shape {{ dim: 3 dim: 2 dim: 2 }} }} }}
layer {{ name: "scale" type: "Power" bottom: "x" top: "h" power_param {{ scale: 1.5 }} }}
layer {{ name: "prelu" type: "PReLU" bottom: "h" top: "{top}"
        prelu_param {{ filler {{ type: "uniform" min: 0.1 max: 0.5 }} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "{top}" bottom: "t" top: "loss" }}
"""


def test_prelu_in_place_gives_the_same_gradients_as_out_of_place():
    x, t = away_from([0.0], (3, 2, 2)), RNG.normal(size=(3, 2, 2))
    results = []
    for top in ("h", "y"):
        engine.rng.set_seed(7)
        net = engine.Net(PRELU_NET.format(top=top), engine.TRAIN, dtype=numpy.float64)
        net.params["prelu"][0].data[...] = [0.2, 0.4]
        net.forward(x=x, t=t)
        net.backward()
        results.append((net.blobs["x"].diff.copy(), net.params["prelu"][0].diff.copy()))
    for in_place, out_of_place in zip(*results):
        numpy.testing.assert_allclose(in_place, out_of_place, rtol=1e-12)
    assert numpy.any(results[0][0] != 0) and numpy.any(results[0][1] != 0)


def test_prelu_slope_diff_accumulates_like_every_parameter():
    spec = 'type: "PReLU"'
    x = away_from([0.0], (2, 3, 2))
    layer, bottom, top = run_forward(spec, [x])
    top[0].diff[...] = 1.0
    layer.backward(top, [False], bottom)
    once = layer.blobs[0].diff.copy()
    layer.backward(top, [False], bottom)
    numpy.testing.assert_allclose(layer.blobs[0].diff, 2 * once)
    numpy.testing.assert_allclose(once, numpy.where(x <= 0, x, 0).sum(axis=(0, 2)))


# -- Silence ------------------------------------------------------------------------------------
def test_silence_takes_blobs_out_of_the_outputs_and_zeroes_diffs_when_forced():
    net_text = """
force_backward: true
layer { name: "in" type: "Input" top: "x" top: "y" input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
layer { name: "quiet" type: "Silence" bottom: "x" bottom: "y" }
"""
    net = engine.Net(net_text, engine.TRAIN)
    assert net.outputs == []
    net.forward()
    layer = net.layers[net.layer_index("quiet")]
    bottoms = net.bottoms_of(net.layer_index("quiet"))
    for blob in bottoms:
        blob.diff[...] = 5
    layer.backward([], [True, False], bottoms)
    numpy.testing.assert_array_equal(bottoms[0].diff, 0)
    numpy.testing.assert_array_equal(bottoms[1].diff, 5)


# -- ArgMax -------------------------------------------------------------------------------------
def _caffe_ranking(values, k):
    """Caffe's partial_sort of (value, index) pairs with std::greater: value, then index, descending."""
    pairs = sorted(((v, j) for j, v in enumerate(values)), reverse=True)[:k]
    return [j for _, j in pairs], [v for v, _ in pairs]


def test_argmax_over_each_sample_with_values_and_ties():
    x = numpy.array([[[1.0, 5.0], [5.0, 2.0]], [[0.5, -1.0], [3.0, 3.0]]])  # ties inside each sample
    _, _, top = run_forward('type: "ArgMax" argmax_param { top_k: 3 out_max_val: true }', [x])
    assert top[0].shape == (2, 2, 3)
    for n in range(2):
        index, value = _caffe_ranking(list(x[n].ravel()), 3)
        numpy.testing.assert_array_equal(top[0].data[n, 0], index)
        numpy.testing.assert_array_equal(top[0].data[n, 1], value)
    _, _, top = run_forward('type: "ArgMax"', [x])
    assert top[0].shape == (2, 1, 1)
    numpy.testing.assert_array_equal(top[0].data.ravel(), [2, 3])  # the later of two equal maxima


@pytest.mark.parametrize("axis,out_max_val", [(1, False), (2, True), (-1, False), (0, True)])
def test_argmax_along_an_axis(axis, out_max_val):
    x = RNG.integers(0, 4, size=(2, 3, 4)).astype(float)  # many ties
    spec = f'type: "ArgMax" argmax_param {{ top_k: 2 axis: {axis} out_max_val: {str(out_max_val).lower()} }}'
    _, _, top = run_forward(spec, [x])
    moved = numpy.moveaxis(x, axis, -1)
    expected = numpy.zeros(moved.shape[:-1] + (2,))
    for position in numpy.ndindex(*moved.shape[:-1]):
        index, value = _caffe_ranking(list(moved[position]), 2)
        expected[position] = value if out_max_val else index
    numpy.testing.assert_array_equal(top[0].data, numpy.moveaxis(expected, -1, axis))


def test_argmax_refuses_top_k_beyond_the_axis_and_has_no_backward():
    with pytest.raises(NetDefinitionError, match="top_k 5"):
        make_layer('type: "ArgMax" argmax_param { top_k: 5 axis: 1 }', [numpy.ones((2, 4))])
    layer, bottom, top = run_forward('type: "ArgMax"', [numpy.ones((2, 4))])
    assert not layer.allow_force_backward(0)
    with pytest.raises(NetDefinitionError, match="no backward"):
        layer.backward(top, [True], bottom)


# -- Tile ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis,tiles", [(1, 3), (0, 2), (-1, 2), (2, 1)])
def test_tile_matches_numpy_tile_and_sums_diffs(axis, tiles):
    x = RNG.normal(size=(2, 3, 2))
    spec = f'type: "Tile" tile_param {{ axis: {axis} tiles: {tiles} }}'
    layer, bottom, top = run_forward(spec, [x])
    reps = [1, 1, 1]
    reps[axis] = tiles
    numpy.testing.assert_array_equal(top[0].data, numpy.tile(x, reps))
    numpy.testing.assert_array_equal(top[0].data, torch.from_numpy(x).repeat(*reps).numpy())
    assert_gradients(spec, [x], 1)


# -- Reduction ----------------------------------------------------------------------------------
def _reduce(op, block):
    values = list(block.ravel())
    if op == "SUM":
        return sum(values)
    if op == "ASUM":
        return sum(abs(v) for v in values)
    if op == "SUMSQ":
        return sum(v * v for v in values)
    return sum(values) / len(values)


@pytest.mark.parametrize("op", ["SUM", "ASUM", "SUMSQ", "MEAN"])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_reduction_over_trailing_axes(op, axis):
    x = away_from([0.0], (2, 3, 2))
    coeff = 1.0 if axis == 0 else -2.5  # exact in float32
    spec = f'type: "Reduction" reduction_param {{ operation: {op} axis: {axis} coeff: {coeff} }}'
    _, _, top = run_forward(spec, [x])
    keep = axis % 3
    assert top[0].shape == x.shape[:keep]
    expected = numpy.zeros(x.shape[:keep])
    for position in numpy.ndindex(*x.shape[:keep]):
        expected[position] = coeff * _reduce(op, x[position])
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    assert_gradients(spec, [x], 1)


def test_reduction_default_is_sum_of_everything():
    x = RNG.normal(size=(3, 4))
    _, _, top = run_forward('type: "Reduction"', [x])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(sum(x.ravel()), rel=1e-12)


# -- MVN ----------------------------------------------------------------------------------------
def _mvn_reference(x, normalize_variance, across_channels, eps):
    """Loop over groups: (x - mean) / (sqrt(E[(x - mean)^2]) + eps)."""
    x = numpy.asarray(x, dtype=numpy.float64)
    groups = x.reshape(x.shape[0], -1) if across_channels else x.reshape(x.shape[0] * x.shape[1], -1)
    out = numpy.empty_like(groups)
    for g, row in enumerate(groups):
        mean = sum(row) / len(row)
        centred = [v - mean for v in row]
        if normalize_variance:
            std = math.sqrt(sum(c * c for c in centred) / len(row))
            centred = [c / (std + eps) for c in centred]
        out[g] = centred
    return out.reshape(x.shape)


@pytest.mark.parametrize("normalize_variance", [True, False])
@pytest.mark.parametrize("across_channels", [False, True])
def test_mvn_forward_with_caffes_eps_after_the_square_root(normalize_variance, across_channels):
    x = RNG.normal(size=(2, 3, 2, 2)) * 3 + 1
    eps = 0.25  # large, so that eps placement matters
    spec = (f'type: "MVN" mvn_param {{ normalize_variance: {str(normalize_variance).lower()} '
            f'across_channels: {str(across_channels).lower()} eps: {eps} }}')
    _, _, top = run_forward(spec, [x])
    numpy.testing.assert_allclose(top[0].data, _mvn_reference(x, normalize_variance, across_channels, eps),
                                  rtol=1e-12, atol=1e-14)
    assert_gradients(spec.replace(f"eps: {eps}", "eps: 1e-9"), [x], 1)


def test_mvn_backward_is_caffes_formula_with_a_large_eps():
    x, dy = RNG.normal(size=(2, 2, 3)), RNG.normal(size=(2, 2, 3))
    eps = 0.5
    layer, bottom, top = run_forward(f'type: "MVN" mvn_param {{ eps: {eps} }}', [x])
    diff = backward_of(layer, bottom, top, dy)
    expected = numpy.empty_like(x)
    for n, c in numpy.ndindex(2, 2):
        row, grad = x[n, c], dy[n, c]
        mean = row.mean()
        sd = math.sqrt(((row - mean) ** 2).mean()) + eps
        y = (row - mean) / sd
        expected[n, c] = (grad - grad.mean() - y * (y * grad).mean()) / sd
    numpy.testing.assert_allclose(diff, expected, rtol=1e-12)


# -- Embed --------------------------------------------------------------------------------------
EMBED = ('type: "Embed" embed_param {{ num_output: 4 input_dim: 6 {bias} '
         'weight_filler {{ type: "gaussian" }} bias_filler {{ type: "gaussian" }} }}')


@pytest.mark.parametrize("bias", ["", "bias_term: false"])
def test_embed_matches_torch_embedding_and_its_gradients(bias):
    spec = EMBED.format(bias=bias)
    words = numpy.array([[0.0, 5.0, 2.0], [2.0, 2.0, 1.0]])  # repeated rows add up in the weight diff
    layer, bottom, top = run_forward(spec, [words])
    weight = torch.from_numpy(layer.blobs[0].data.copy()).requires_grad_()
    expected = F.embedding(torch.from_numpy(words).long(), weight)
    if layer.bias_term:
        expected = expected + torch.from_numpy(layer.blobs[1].data)
    assert top[0].shape == (2, 3, 4)
    numpy.testing.assert_allclose(top[0].data, expected.detach().numpy(), rtol=1e-12)
    dy = RNG.normal(size=top[0].shape)
    expected.backward(torch.from_numpy(dy))
    top[0].diff[...] = dy
    layer.backward(top, [False], bottom)
    numpy.testing.assert_allclose(layer.blobs[0].diff, weight.grad.numpy(), rtol=1e-12)
    assert_gradients(spec, [words], 2 if layer.bias_term else 1, check_bottoms=[])


@pytest.mark.parametrize("value", [6.0, -1.0, 2.5])
def test_embed_refuses_an_index_naming_layer_and_value(value):
    with pytest.raises(LabelError, match=rf"layer 'Embed'.*index {value:g}.*\[0, 5\]"):
        run_forward(EMBED.format(bias=""), [numpy.array([1.0, value])])


def test_embed_gives_no_gradient_to_its_indices():
    layer, bottom, top = run_forward(EMBED.format(bias=""), [numpy.array([1.0, 3.0])])
    assert not layer.allow_force_backward(0)
    with pytest.raises(NetDefinitionError, match="cannot backpropagate"):
        layer.backward(top, [True], bottom)


# -- in place, where Caffe's backward reads only what in-place computation keeps ---------------------
IN_PLACE_NET = """
force_backward: true
layer {{ name: "in" type: "Input" top: "x" top: "t" input_param {{ shape {{ dim: 3 dim: 4 }} shape {{ dim: 3 dim: 4 }} }} }}
layer {{ name: "scale" type: "Power" bottom: "x" top: "h" power_param {{ scale: 1.5 }} }}
layer {{ name: "act" type: "{kind}" bottom: "h" top: "{top}" {body} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "{top}" bottom: "t" top: "loss" }}
"""


@pytest.mark.parametrize("kind,body", [
    ("ELU", "elu_param { alpha: 0.8 }"), ("Exp", "exp_param { base: 2 shift: 1 }"),
    ("Swish", "swish_param { beta: 0.7 }"), ("MVN", "mvn_param { across_channels: true }"),
    # Caffe allows these in place but its backward would read y for x: the input is kept
    ("Power", "power_param { power: 2 shift: 0.5 }"), ("Power", "power_param { power: 3 scale: 2 }"),
    ("Power", "power_param { power: 0.5 shift: 9 }"), ("Power", "power_param { scale: 3 shift: 1 }"),
    ("Log", "log_param { base: 2 shift: 9 }"), ("BNLL", ""), ("Clip", "clip_param { min: -0.5 max: 1 }")])
def test_in_place_gives_the_out_of_place_gradient(kind, body):
    x, t = away_from([0.0], (3, 4)), RNG.normal(size=(3, 4))
    grads = []
    for top in ("h", "y"):
        net = engine.Net(IN_PLACE_NET.format(kind=kind, body=body, top=top), engine.TRAIN, dtype=numpy.float64)
        net.forward(x=x, t=t)
        net.backward()
        grads.append(net.blobs["x"].diff.copy())
    numpy.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    assert numpy.any(grads[0] != 0)


# -- in a net: splits, in-place tops and several losses together --------------------------------
ZOO_C_NET = """
name: "zoo_c"
layer { name: "in" type: "Input" top: "words" top: "label" top: "target"
        input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } shape { dim: 4 dim: 5 } } }
layer { name: "embed" type: "Embed" bottom: "words" top: "vectors"
        embed_param { num_output: 4 input_dim: 7 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "prelu" type: "PReLU" bottom: "vectors" top: "vectors" }
layer { name: "mvn" type: "MVN" bottom: "vectors" top: "normed" mvn_param { across_channels: true } }
layer { name: "ip" type: "InnerProduct" bottom: "normed" top: "scores"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "elu" type: "ELU" bottom: "scores" top: "scores" }
layer { name: "swish" type: "Swish" bottom: "scores" top: "gated" }
layer { name: "tile" type: "Tile" bottom: "gated" top: "tiled" tile_param { axis: 1 tiles: 2 } }
layer { name: "sum" type: "Reduction" bottom: "tiled" top: "total" reduction_param { operation: SUMSQ axis: 1 coeff: 0.1 } }
layer { name: "softmax_loss" type: "SoftmaxWithLoss" bottom: "scores" bottom: "label" top: "loss" }
layer { name: "sigmoid_loss" type: "SigmoidCrossEntropyLoss" bottom: "gated" bottom: "target" top: "bce"
        loss_weight: 0.5 }
layer { name: "penalty" type: "Power" bottom: "total" top: "penalty" power_param { scale: 0.01 } loss_weight: 1 }
layer { name: "accuracy" type: "Accuracy" bottom: "scores" bottom: "label" top: "accuracy" }
"""


def test_zoo_c_layers_together_in_a_net_pass_the_net_gradient_check():
    engine.rng.set_seed(5)
    net = engine.Net(ZOO_C_NET, engine.TRAIN)
    net.blobs["words"].data[...] = [[0, 6, 2], [3, 3, 1], [5, 0, 4], [2, 2, 6]]
    net.blobs["label"].data[...] = [0, 4, 2, 1]
    net.blobs["target"].data[...] = RNG.uniform(size=(4, 5))
    outputs = net.forward()
    assert set(outputs) >= {"loss", "bce", "penalty", "accuracy"}
    results = engine.check_net(net, threshold=1e-4)
    assert set(results) >= {"embed", "prelu", "mvn", "ip", "elu", "swish", "tile", "sum", "penalty"}
    for name, result in results.items():
        assert result.passed, f"{name}:\n{result.summary()}"
