"""Zoo layers (part A): LRN, BatchNorm, Deconvolution (+ bilinear filler), Convolution's
axis / 1-D form, Pooling's STOCHASTIC and global modes, Crop, Slice.

Each forward is checked against arithmetic written here (float64 loops over Caffe's
formulas) or PyTorch's equivalent op, and each backward numerically (engine.check_layer)."""
import math

import numpy
import pytest

import engine
from engine.errors import NetDefinitionError, ShapeError
from engine.fillers import bilinear_kernel
from engine.gradcheck import check_layer
from engine.proto import caffe_pb2
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(13)
FLT_MIN = 1.1754943508222875e-38


def torch_or_skip():
    return pytest.importorskip("torch")


# -- LRN ----------------------------------------------------------------------------
def lrn_across_loop(x, size, alpha, beta, k):
    N, C, H, W = x.shape
    y = numpy.zeros_like(x)
    half = (size - 1) // 2
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    total = sum(x[n, j, h, w] ** 2 for j in range(max(0, c - half), min(C, c + half + 1)))
                    y[n, c, h, w] = x[n, c, h, w] * (k + alpha / size * total) ** -beta
    return y


def lrn_within_loop(x, size, alpha, beta):
    """Caffe's composite: x * (1 + alpha * avg(x^2))^-beta, avg over a size x size window with
    zero padding whose divisor counts the padded cells (size * size)."""
    N, C, H, W = x.shape
    y = numpy.zeros_like(x)
    half = (size - 1) // 2
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    total = 0.0
                    for i in range(h - half, h + half + 1):
                        for j in range(w - half, w + half + 1):
                            if 0 <= i < H and 0 <= j < W:
                                total += x[n, c, i, j] ** 2
                    y[n, c, h, w] = x[n, c, h, w] * (1 + alpha * total / (size * size)) ** -beta
    return y


def lrn_spec(region, size=5, alpha=0.1, beta=0.75, k=2.0):
    return (f'type: "LRN" lrn_param {{ norm_region: {region} local_size: {size} alpha: {alpha} '
            f'beta: {beta} k: {k} }}')


@pytest.mark.parametrize("size,channels", [(5, 7), (3, 2), (1, 4)])
def test_lrn_across_channels_forward_matches_loop(size, channels):
    x = RNG.normal(size=(2, channels, 3, 4))
    _, _, top = run_forward(lrn_spec("ACROSS_CHANNELS", size), [x])
    alpha = float(numpy.float32(0.1))  # the proto's fields are float32
    numpy.testing.assert_allclose(top[0].data, lrn_across_loop(x, size, alpha, 0.75, 2.0), rtol=1e-12)


def test_lrn_within_channel_ignores_k_and_matches_loop():
    x = RNG.normal(size=(2, 3, 5, 6))
    _, _, top = run_forward(lrn_spec("WITHIN_CHANNEL", 3, alpha=0.5, k=7.0), [x])
    numpy.testing.assert_allclose(top[0].data, lrn_within_loop(x, 3, 0.5, 0.75), rtol=1e-12)


def test_lrn_across_channels_agrees_with_torch():
    torch = torch_or_skip()
    x = RNG.normal(size=(2, 9, 5, 5)).astype(numpy.float32)
    _, _, top = run_forward(lrn_spec("ACROSS_CHANNELS", 5, alpha=1e-1, beta=0.75, k=2.0), [x],
                            dtype=numpy.float32)
    expected = torch.nn.LocalResponseNorm(5, alpha=0.1, beta=0.75, k=2.0)(torch.from_numpy(x)).numpy()
    numpy.testing.assert_allclose(top[0].data, expected, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("region,size", [("ACROSS_CHANNELS", 5), ("ACROSS_CHANNELS", 3),
                                         ("WITHIN_CHANNEL", 3), ("WITHIN_CHANNEL", 5)])
def test_lrn_gradients(region, size):
    x = RNG.normal(size=(2, 6, 4, 5))
    result = check_layer(lrn_spec(region, size, alpha=0.7, beta=0.75, k=1.5), [x], max_elements=80)
    assert result.passed, result.summary()


def test_lrn_rejects_even_size_and_non_images():
    with pytest.raises(NetDefinitionError, match="odd"):
        make_layer(lrn_spec("ACROSS_CHANNELS", 4), [numpy.zeros((1, 3, 2, 2))])
    with pytest.raises(ShapeError, match="4 axes"):
        make_layer(lrn_spec("ACROSS_CHANNELS", 3), [numpy.zeros((2, 3))])


def test_lrn_defaults_are_caffes():
    layer, _, _ = make_layer('type: "LRN"', [numpy.zeros((1, 3, 2, 2))])
    assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 1.0, 0.75, 1.0)


# -- BatchNorm -------------------------------------------------------------------------
def test_batch_norm_train_forward_and_running_statistics():
    x = RNG.normal(2.0, 3.0, size=(4, 3, 2, 5))
    layer, bottom, top = make_layer('type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 '
                                    'eps: 0.001 }', [x])
    assert not layer.use_global_stats
    for _ in range(2):
        layer.forward(bottom, top)
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
        expected = (x - mean[None, :, None, None]) / numpy.sqrt(var + 0.001)[None, :, None, None]
        numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-12)
    m = 4 * 2 * 5
    factor = float(numpy.float32(0.9)) * 1 + 1  # the proto's fields are float32
    numpy.testing.assert_allclose(layer.blobs[2].data, [factor])
    numpy.testing.assert_allclose(layer.blobs[0].data, mean * factor, rtol=1e-12)
    numpy.testing.assert_allclose(layer.blobs[1].data, var * m / (m - 1) * factor, rtol=1e-12)


def test_batch_norm_global_stats_use_stored_sums_divided_by_the_factor():
    x = RNG.normal(size=(2, 3, 4))
    layer, bottom, top = make_layer('type: "BatchNorm"', [x], phase=engine.TEST)
    assert layer.use_global_stats  # TEST defaults to the stored statistics
    layer.blobs[0].data[...] = [1.0, 2.0, 3.0]
    layer.blobs[1].data[...] = [4.0, 8.0, 0.5]
    layer.blobs[2].data[...] = 2.0
    layer.forward(bottom, top)
    mean, var = numpy.array([0.5, 1.0, 1.5]), numpy.array([2.0, 4.0, 0.25])
    expected = (x - mean[None, :, None]) / numpy.sqrt(var + 1e-5)[None, :, None]
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-6)
    layer.blobs[2].data[...] = 0.0  # Caffe: a zero factor means zero statistics
    layer.forward(bottom, top)
    numpy.testing.assert_allclose(top[0].data, x / numpy.sqrt(1e-5), rtol=1e-6)


def test_batch_norm_use_global_stats_overrides_the_phase():
    layer, _, _ = make_layer('type: "BatchNorm" batch_norm_param { use_global_stats: true }',
                             [numpy.zeros((2, 3))], phase=engine.TRAIN)
    assert layer.use_global_stats
    layer, _, _ = make_layer('type: "BatchNorm" batch_norm_param { use_global_stats: false }',
                             [numpy.zeros((2, 3))], phase=engine.TEST)
    assert not layer.use_global_stats


@pytest.mark.parametrize("phase", [engine.TRAIN, engine.TEST])
def test_batch_norm_gradients(phase):
    x = RNG.normal(size=(3, 2, 3, 2))
    stats = [numpy.array([0.3, -0.2]), numpy.array([1.5, 0.7]), numpy.array([1.0])]
    result = check_layer('type: "BatchNorm" batch_norm_param { eps: 0.01 }', [x], phase=phase,
                         params=stats)
    bottom_check = result.blobs[0]
    assert bottom_check.name.endswith("bottom0") and bottom_check.passed, result.summary()


def test_batch_norm_statistics_have_lr_mult_zero_in_a_net():
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 2 dim: 2 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }
    """
    param = caffe_pb2.NetParameter()
    from google.protobuf import text_format
    text_format.Parse(text, param)
    net = engine.Net(param, engine.TRAIN)
    assert [b.shape for b in net.params["bn"]] == [(3,), (3,), (1,)]
    assert net.lr_mults == [0.0, 0.0, 0.0]
    assert net.layers[1].param_propagate_down == [False, False, False]


def test_batch_norm_refuses_learned_statistics():
    with pytest.raises(NetDefinitionError, match="lr_mult"):
        make_layer('type: "BatchNorm" param { lr_mult: 0 } param { lr_mult: 1 }', [numpy.zeros((2, 3))])


def test_batch_norm_in_place_backward_keeps_x_norm():
    x = RNG.normal(size=(4, 2, 3))
    layer, bottom, _ = make_layer('type: "BatchNorm"', [x])
    layer.forward(bottom, bottom)  # in place: top is the bottom
    y = bottom[0].data.copy()
    bottom[0].data[...] = 99.0  # an in-place layer above overwrites the data
    dy = RNG.normal(size=x.shape)
    bottom[0].diff[...] = dy
    layer.backward(bottom, [True], bottom)
    mean_dy = dy.mean(axis=(0, 2), keepdims=True)
    mean_dy_y = (dy * y).mean(axis=(0, 2), keepdims=True)
    std = numpy.sqrt(x.var(axis=(0, 2), keepdims=True) + 1e-5)
    numpy.testing.assert_allclose(bottom[0].diff, (dy - mean_dy - mean_dy_y * y) / std, rtol=1e-9)


# -- Deconvolution -----------------------------------------------------------------------
def naive_deconv(x, W, b, stride, pad, dilation, group):
    """Scatter every input pixel through the kernel: the transpose of a convolution."""
    N, C, H, Wd = x.shape
    _, Cog, kh, kw = W.shape
    Co = Cog * group
    Ho = stride[0] * (H - 1) + dilation[0] * (kh - 1) + 1 - 2 * pad[0]
    Wo = stride[1] * (Wd - 1) + dilation[1] * (kw - 1) + 1 - 2 * pad[1]
    top = numpy.zeros((N, Co, Ho, Wo))
    in_per_group = C // group
    for n in range(N):
        for c in range(C):
            g = c // in_per_group
            for h in range(H):
                for w in range(Wd):
                    for o in range(Cog):
                        for i in range(kh):
                            for j in range(kw):
                                y = h * stride[0] - pad[0] + i * dilation[0]
                                z = w * stride[1] - pad[1] + j * dilation[1]
                                if 0 <= y < Ho and 0 <= z < Wo:
                                    top[n, g * Cog + o, y, z] += W[c, o, i, j] * x[n, c, h, w]
    if b is not None:
        top += b[None, :, None, None]
    return top


DECONV_CASES = {
    "plain": (4, "kernel_size: 3", (1, 1), (0, 0), (1, 1), 1),
    "stride_pad": (3, "kernel_size: 4 stride: 2 pad: 1", (2, 2), (1, 1), (1, 1), 1),
    "groups_dilation": (4, "kernel_size: 3 stride: 2 pad: 2 dilation: 2 group: 2", (2, 2), (2, 2),
                        (2, 2), 2),
    "rect": (2, "kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2", (1, 2), (0, 0), (1, 1), 1),
}


def deconv_spec(num_output, geometry, bias=True):
    return (f'type: "Deconvolution" convolution_param {{ num_output: {num_output} {geometry} '
            f'bias_term: {"true" if bias else "false"} weight_filler {{ type: "gaussian" std: 0.5 }} '
            f'bias_filler {{ type: "gaussian" std: 0.5 }} }}')


@pytest.mark.parametrize("name", sorted(DECONV_CASES))
def test_deconvolution_forward_matches_scatter_loop(name):
    num_output, geometry, stride, pad, dilation, group = DECONV_CASES[name]
    x = RNG.normal(size=(2, 4, 3, 4))
    layer, _, top = run_forward(deconv_spec(num_output, geometry), [x])
    W, b = layer.blobs[0].data, layer.blobs[1].data
    assert W.shape[:2] == (4, num_output // group)
    expected = naive_deconv(x, W, b, stride, pad, dilation, group)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(DECONV_CASES))
def test_deconvolution_gradients(name):
    num_output, geometry, *_ = DECONV_CASES[name]
    x = RNG.normal(size=(2, 4, 3, 3))
    result = check_layer(deconv_spec(num_output, geometry), [x], max_elements=40)
    assert result.passed, result.summary()


def test_deconvolution_agrees_with_torch_conv_transpose():
    torch = torch_or_skip()
    x = RNG.normal(size=(2, 4, 5, 5)).astype(numpy.float32)
    layer, _, top = run_forward(deconv_spec(6, "kernel_size: 3 stride: 2 pad: 1 group: 2 dilation: 2"),
                                [x], dtype=numpy.float32)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data), torch.from_numpy(layer.blobs[1].data),
        stride=2, padding=1, groups=2, dilation=2).numpy()
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-5)


def test_bilinear_filler_is_caffes_kernel():
    kernel = bilinear_kernel((2, 1, 4, 4))
    f, c = 2, 3 / 4
    expected = numpy.array([[(1 - abs(x / f - c)) * (1 - abs(y / f - c)) for x in range(4)] for y in range(4)])
    numpy.testing.assert_allclose(kernel[1, 0], expected)
    assert kernel[0, 0, 1, 1] == pytest.approx(0.5625)
    odd = bilinear_kernel((1, 1, 3, 3))[0, 0]  # k = 3: f = 2, c = 0.5
    numpy.testing.assert_allclose(odd, numpy.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5]))
    with pytest.raises(NetDefinitionError, match="square"):
        bilinear_kernel((1, 1, 3, 4))
    with pytest.raises(NetDefinitionError, match="layer 'up' \\(Deconvolution\\): weight_filler: .*square"):
        make_layer('name: "up" type: "Deconvolution" convolution_param { num_output: 2 kernel_h: 3 kernel_w: 4 '
                   'weight_filler { type: "bilinear" } }', [numpy.zeros((1, 2, 3, 3))])


def test_bilinear_deconvolution_upsamples_a_constant_image_exactly():
    """FCN's upsampling layer: factor 2, kernel 4, pad 1, one group per channel."""
    spec = ('type: "Deconvolution" convolution_param { num_output: 3 group: 3 kernel_size: 4 stride: 2 '
            'pad: 1 bias_term: false weight_filler { type: "bilinear" } }')
    x = numpy.ones((1, 3, 4, 4))
    _, _, top = run_forward(spec, [x])
    assert top[0].shape == (1, 3, 8, 8)
    numpy.testing.assert_allclose(top[0].data[:, :, 1:-1, 1:-1], 1.0)  # interior: weights sum to 1


# -- Convolution: axis and 1-D ----------------------------------------------------------
def test_convolution_axis_2_runs_over_the_leading_axes():
    x = RNG.normal(size=(2, 3, 4, 5, 5))
    spec = ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 axis: 2 '
            'weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } }')
    layer, _, top = run_forward(spec, [x])
    assert top[0].shape == (2, 3, 2, 3, 3)
    flat_layer, flat_bottom, flat_top = make_layer(spec.replace("axis: 2", ""), [x.reshape(6, 4, 5, 5)])
    for mine, theirs in zip(flat_layer.blobs, layer.blobs):
        mine.data[...] = theirs.data
    flat_layer.forward(flat_bottom, flat_top)
    numpy.testing.assert_allclose(top[0].data.reshape(6, 2, 3, 3), flat_top[0].data, rtol=1e-12)
    result = check_layer(spec, [RNG.normal(size=(2, 2, 3, 4, 4))], max_elements=30)
    assert result.passed, result.summary()


def test_one_dimensional_convolution_agrees_with_torch_and_gradients():
    torch = torch_or_skip()
    x = RNG.normal(size=(2, 3, 11))
    spec = ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 '
            'dilation: 2 weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } }')
    layer, _, top = run_forward(spec, [x])
    assert layer.blobs[0].shape == (4, 3, 3)  # Caffe's 1-D weight shape
    expected = torch.nn.functional.conv1d(torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data),
                                          torch.from_numpy(layer.blobs[1].data), stride=2, padding=1,
                                          dilation=2).numpy()
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-12)
    result = check_layer(spec, [x], max_elements=30)
    assert result.passed, result.summary()


def test_three_dimensional_convolution_is_refused_clearly():
    with pytest.raises(ShapeError, match="3 spatial axes"):
        make_layer('type: "Convolution" convolution_param { num_output: 2 kernel_size: 1 }',
                   [numpy.zeros((1, 2, 3, 3, 3))])


# -- Pooling: STOCHASTIC and global ---------------------------------------------------------
def stochastic_test_loop(x, kernel, stride, pooled):
    N, C, H, W = x.shape
    top = numpy.zeros((N, C) + pooled)
    for n in range(N):
        for c in range(C):
            for ph in range(pooled[0]):
                for pw in range(pooled[1]):
                    window = x[n, c, ph * stride:min(ph * stride + kernel, H), pw * stride:min(pw * stride + kernel, W)]
                    top[n, c, ph, pw] = (window ** 2).sum() / (FLT_MIN + window.sum())
    return top


def test_stochastic_pooling_test_phase_is_the_activation_weighted_average():
    x = RNG.uniform(0.1, 2.0, size=(2, 3, 7, 7))
    spec = 'type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }'
    _, _, top = run_forward(spec, [x], phase=engine.TEST)
    assert top[0].shape == (2, 3, 3, 3)
    numpy.testing.assert_allclose(top[0].data, stochastic_test_loop(x, 3, 2, (3, 3)), rtol=1e-12)
    result = check_layer(spec, [x], phase=engine.TEST, max_elements=60)
    assert result.passed, result.summary()


def test_stochastic_pooling_test_phase_ceil_window_is_clipped():
    x = RNG.uniform(0.1, 2.0, size=(1, 2, 6, 6))  # ceil: 3 windows of 3 with stride 2, the last clipped
    _, _, top = run_forward('type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }',
                            [x], phase=engine.TEST)
    numpy.testing.assert_allclose(top[0].data, stochastic_test_loop(x, 3, 2, (3, 3)), rtol=1e-12)


def test_stochastic_pooling_train_picks_window_members_in_proportion():
    x = numpy.array([[[[1.0, 3.0], [0.0, 4.0]]]])  # one window: P = 1/8, 3/8, 0, 4/8
    spec = 'type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }'
    layer, bottom, top = make_layer(spec, [x], phase=engine.TRAIN)
    engine.rng.set_seed(5)
    picks = []
    for _ in range(4000):
        layer.forward(bottom, top)
        picks.append(float(top[0].data[0, 0, 0, 0]))
    values, counts = numpy.unique(picks, return_counts=True)
    assert set(values) <= {1.0, 3.0, 4.0}
    frequency = dict(zip(values, counts / len(picks)))
    for value, probability in ((1.0, 1 / 8), (3.0, 3 / 8), (4.0, 4 / 8)):
        assert abs(frequency[value] - probability) < 0.03
    # backward: the whole top diff goes to the picked cell
    top[0].diff[...] = 2.5
    layer.backward(top, [True], bottom)
    picked = numpy.argwhere(x[0, 0] == top[0].data[0, 0, 0, 0])[0]
    expected = numpy.zeros((2, 2))
    expected[tuple(picked)] = 2.5
    numpy.testing.assert_array_equal(bottom[0].diff[0, 0], expected)


def test_stochastic_pooling_train_gradients_with_fixed_picks():
    x = RNG.uniform(0.1, 2.0, size=(2, 2, 5, 5))
    result = check_layer('type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 }',
                         [x], phase=engine.TRAIN, max_elements=60)
    assert result.passed, result.summary()


def test_stochastic_pooling_is_repeatable_with_one_seed():
    x = RNG.uniform(0.1, 2.0, size=(2, 3, 6, 6))
    spec = 'type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 3 }'
    outputs = []
    for _ in range(2):
        engine.rng.set_seed(11)
        _, _, top = run_forward(spec, [x], phase=engine.TRAIN)
        outputs.append(top[0].data.copy())
    numpy.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("method", ["MAX", "AVE", "STOCHASTIC"])
def test_global_pooling_covers_the_whole_plane(method):
    x = RNG.uniform(0.1, 2.0, size=(2, 3, 4, 5))
    spec = f'type: "Pooling" pooling_param {{ pool: {method} global_pooling: true }}'
    _, _, top = run_forward(spec, [x], phase=engine.TEST)
    assert top[0].shape == (2, 3, 1, 1)
    expected = {"MAX": x.max(axis=(2, 3)), "AVE": x.mean(axis=(2, 3)),
                "STOCHASTIC": (x ** 2).sum(axis=(2, 3)) / x.sum(axis=(2, 3))}[method]
    numpy.testing.assert_allclose(top[0].data[:, :, 0, 0], expected, rtol=1e-12)
    result = check_layer(spec, [x], phase=engine.TEST, max_elements=40)
    assert result.passed, result.summary()


# -- Crop ------------------------------------------------------------------------------------
@pytest.mark.parametrize("geometry,window", [
    ("", (slice(None), slice(None), slice(0, 3), slice(0, 4))),
    ("crop_param { offset: 2 }", (slice(None), slice(None), slice(2, 5), slice(2, 6))),
    ("crop_param { axis: 1 offset: 1 offset: 0 offset: 3 }",
     (slice(None), slice(1, 3), slice(0, 3), slice(3, 7))),
    ("crop_param { axis: -1 offset: 1 }", (slice(None), slice(None), slice(None), slice(1, 5))),
])
def test_crop_forward_and_gradients(geometry, window):
    x = RNG.normal(size=(2, 4, 6, 7))
    reference = numpy.zeros((2, 2, 3, 4))
    spec = f'type: "Crop" {geometry}'
    _, _, top = run_forward(spec, [x, reference])
    numpy.testing.assert_array_equal(top[0].data, x[window])
    result = check_layer(spec, [x, reference], check_bottoms=[0], max_elements=60)
    assert result.passed, result.summary()


@pytest.mark.parametrize("geometry,error,match", [
    ("crop_param { offset: 4 }", ShapeError, "does not fit"),
    ("crop_param { offset: 1 offset: 2 offset: 3 }", NetDefinitionError, "per cropped axis"),
    ("crop_param { axis: 4 }", ShapeError, "out of range"),
])
def test_crop_errors(geometry, error, match):
    with pytest.raises(error, match=match):
        make_layer(f'type: "Crop" {geometry}', [numpy.zeros((1, 2, 5, 5)), numpy.zeros((1, 2, 3, 3))])


# -- Slice -----------------------------------------------------------------------------------
@pytest.mark.parametrize("geometry,axis,bounds", [
    ("slice_param { slice_point: 1 slice_point: 4 }", 1, [0, 1, 4, 6]),
    ("", 1, [0, 2, 4, 6]),
    ("slice_param { axis: -1 slice_point: 2 slice_point: 3 }", 3, [0, 2, 3, 5]),
    ("slice_param { slice_dim: 2 }", 2, [0, 1, 2, 3]),
])
def test_slice_forward_and_gradients(geometry, axis, bounds):
    x = RNG.normal(size=(2, 6, 3, 5))
    spec = f'type: "Slice" {geometry}'
    _, _, tops = run_forward(spec, [x], num_tops=3)
    for top, start, stop in zip(tops, bounds, bounds[1:]):
        numpy.testing.assert_array_equal(top.data, numpy.take(x, range(start, stop), axis=axis))
    result = check_layer(spec, [x], num_tops=3, max_elements=60)
    assert result.passed, result.summary()


@pytest.mark.parametrize("geometry,error,match", [
    ("slice_param { slice_point: 2 }", NetDefinitionError, "slice_point"),
    ("slice_param { slice_point: 3 slice_point: 2 }", ShapeError, "increase"),
    ("", ShapeError, "equal parts"),
    ("slice_param { axis: 1 slice_dim: 1 }", NetDefinitionError, "not both"),
])
def test_slice_errors(geometry, error, match):
    with pytest.raises(error, match=match):
        make_layer(f'type: "Slice" {geometry}', [numpy.zeros((2, 5, 3))], num_tops=3)


def test_float32_lrn_within_matches_float64_loop():
    x = RNG.normal(size=(2, 3, 5, 5)).astype(numpy.float32)
    _, _, top = run_forward(lrn_spec("WITHIN_CHANNEL", 3, alpha=0.5), [x], dtype=numpy.float32)
    expected = lrn_within_loop(x.astype(float), 3, 0.5, 0.75)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=2e-6, atol=1e-7)
    assert math.isfinite(float(top[0].data.sum()))


# -- the same numbers on the device (the strict stand-in: no implicit host<->device crossing) --
STRICT_CASES = [
    ('type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }', engine.TRAIN),
    ('type: "Pooling" pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }', engine.TEST),
    ('type: "BatchNorm"', engine.TEST),
    ('type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.5 }', engine.TRAIN),
    (lrn_spec("ACROSS_CHANNELS", 5), engine.TRAIN),
    (lrn_spec("WITHIN_CHANNEL", 3), engine.TRAIN),
    (deconv_spec(4, "kernel_size: 3 stride: 2 pad: 1 dilation: 2 group: 2"), engine.TRAIN),
    ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 axis: 2 '
     'weight_filler { type: "gaussian" std: 1 } }', engine.TRAIN),
]


@pytest.mark.parametrize("spec,phase", STRICT_CASES)
def test_device_path_gives_numpys_numbers(spec, phase):
    from engine import backend, rng, strict_device
    x = RNG.uniform(0.1, 2.0, size=(2, 4, 7, 7)).astype(numpy.float32)
    delta = None
    results = []
    for device in ("cpu", "gpu"):
        with strict_device.installed():
            rng.set_seed(3)
            layer, bottom, top = make_layer(spec, [x], phase=phase, dtype=numpy.float32)
            stats = [numpy.full(b.shape, v, numpy.float32) for b, v in zip(layer.blobs, (0.2, 1.5, 2.0))]
            if device == "gpu":
                layer.device = "gpu"
                for blob in bottom + top + layer.blobs:
                    blob.to("gpu")
            if "BatchNorm" in spec:
                for blob, values in zip(layer.blobs, stats):
                    blob.data[...] = backend.to_device(values, device)
            rng.set_seed(5)
            layer.forward(bottom, top)
            if delta is None:
                delta = numpy.linspace(-1, 1, top[0].count()).reshape(top[0].shape).astype(numpy.float32)
            top[0].diff[...] = backend.to_device(delta, device)
            layer.backward(top, [True], bottom)
            arrays = [top[0].data, bottom[0].diff] + [b.diff for b in layer.blobs] + [b.data for b in layer.blobs]
            results.append([backend.to_numpy(a).copy() for a in arrays])
    for cpu, gpu in zip(*results):
        numpy.testing.assert_array_equal(gpu, cpu)


def test_deconvolution_in_runs_of_images_gives_the_same_numbers(monkeypatch):
    import engine.layers.convolution as convolution
    spec = deconv_spec(4, "kernel_size: 3 stride: 2 pad: 1 group: 2")
    x = RNG.normal(size=(5, 4, 3, 3))
    layer, bottom, top = make_layer(spec, [x])
    layer.forward(bottom, top)
    whole = top[0].data.copy()
    monkeypatch.setattr(convolution, "COL_BUFFER_ELEMENTS", 2 * 4 * 9 * 9)  # two images per run
    assert len(layer._chunks()) == 3
    layer.forward(bottom, top)
    numpy.testing.assert_allclose(top[0].data, whole, rtol=1e-12)
    result = check_layer(spec, [x], max_elements=40)
    assert result.passed, result.summary()


def test_deeplab_style_dilated_convolution_agrees_with_torch():
    torch = torch_or_skip()
    x = RNG.normal(size=(1, 3, 17, 17))
    spec = ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 pad: 6 dilation: 6 '
            'weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } }')
    layer, _, top = run_forward(spec, [x])
    assert top[0].shape == (1, 4, 17, 17)  # "same" size: pad = dilation
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data),
                                          torch.from_numpy(layer.blobs[1].data), padding=6, dilation=6).numpy()
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-12)


# -- BatchNorm in a residual net, trained by the solver ------------------------------------
RESIDUAL_NET = """
name: "bn_residual"
layer { name: "in" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 2 dim: 5 dim: 5 } shape { dim: 4 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 bias_term: false
                            weight_filler { type: "msra" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "bn1" }
layer { name: "scale1" type: "Scale" bottom: "bn1" top: "scale1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "scale1" top: "relu1" }
layer { name: "conv2" type: "Convolution" bottom: "relu1" top: "conv2"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 bias_term: false
                            weight_filler { type: "msra" } } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "bn2"
        param { lr_mult: 0 decay_mult: 0 } param { lr_mult: 0 decay_mult: 0 } param { lr_mult: 0 decay_mult: 0 } }
layer { name: "scale2" type: "Scale" bottom: "bn2" top: "scale2" scale_param { bias_term: true } }
layer { name: "sum" type: "Eltwise" bottom: "relu1" bottom: "scale2" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


# bn2 is written as in the zoo (three lr_mult 0 specs), which Caffe's upgrade step drops with a notice
UPGRADE_NOTICE = pytest.mark.filterwarnings("ignore:Upgraded input file")


def residual_net(phase):
    from google.protobuf import text_format
    param = caffe_pb2.NetParameter()
    text_format.Parse(RESIDUAL_NET, param)
    net = engine.Net(param, phase)
    net.blobs["data"].data[...] = RNG.normal(size=(4, 2, 5, 5))
    net.blobs["label"].data[...] = [0, 1, 2, 1]
    return net


@UPGRADE_NOTICE
def test_batch_norm_residual_net_gradients():
    net = residual_net(engine.TRAIN)
    results = engine.check_net(net, max_elements=20)
    assert {"conv1", "bn1", "scale1", "conv2", "bn2", "fc"} <= set(results)
    for name, result in results.items():
        assert result.passed, (name, result.summary())


@UPGRADE_NOTICE
def test_batch_norm_statistics_accumulate_in_training_and_serve_the_test_net():
    from tests.engine.helpers import solver_for
    solver = solver_for(RESIDUAL_NET, base_lr=0.1, momentum=0.9, weight_decay=0.01)
    net = solver.net
    net.blobs["data"].data[...] = RNG.normal(size=(4, 2, 5, 5))
    net.blobs["label"].data[...] = [0, 1, 2, 1]
    means = []
    for _ in range(3):
        conv1 = net.blobs["conv1"].data  # the input of bn1 in this iteration, after its forward
        solver.step(1)
        means.append(conv1.mean(axis=(0, 2, 3)))
    fraction = float(numpy.float32(0.999))
    factor = (1 * fraction + 1) * fraction + 1
    bn1 = net.params["bn1"]
    numpy.testing.assert_allclose(bn1[2].data, [factor], rtol=1e-6)
    numpy.testing.assert_allclose(bn1[0].data, (means[0] * fraction + means[1]) * fraction + means[2],
                                  rtol=1e-4, atol=1e-6)
    assert net.lr_mults[net.param_display_names.index("bn1.0")] == 0
    test_net = engine.Net(net.param, engine.TEST)
    test_net.share_weights(net)
    assert test_net.params["bn1"][0] is bn1[0]
    test_net.blobs["data"].data[...] = net.blobs["data"].data
    test_net.forward()
    mean, variance = bn1[0].data / bn1[2].data, bn1[1].data / bn1[2].data
    expected = (test_net.blobs["conv1"].data - mean[None, :, None, None]) / numpy.sqrt(
        variance + numpy.float32(1e-5))[None, :, None, None]
    numpy.testing.assert_allclose(test_net.blobs["bn1"].data, expected, rtol=1e-4, atol=1e-5)
