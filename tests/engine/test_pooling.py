"""Pooling: Caffe's ceil output size and its padding fix, AVE's divisor, MAX's first
maximum and mask; forward against loops written here, numeric gradients, PyTorch."""
import math

import numpy
import pytest

import engine
from engine.errors import NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from engine.layers.pooling import pooled_size
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(9)


def caffe_pooled(size, kernel, stride, pad):
    """Written from Caffe's PoolingLayer::Reshape with float ceil."""
    out = int(math.ceil(float(size + 2 * pad - kernel) / stride)) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def naive_pool(x, method, kernel, stride, pad):
    """Window by window as Caffe's Forward_cpu: (top, mask) with mask = h * W + w of the first max."""
    N, C, H, W = x.shape
    Ho = caffe_pooled(H, kernel[0], stride[0], pad[0])
    Wo = caffe_pooled(W, kernel[1], stride[1], pad[1])
    top = numpy.zeros((N, C, Ho, Wo))
    mask = numpy.full((N, C, Ho, Wo), -1.0)
    for n in range(N):
        for c in range(C):
            for ph in range(Ho):
                for pw in range(Wo):
                    h0, w0 = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
                    if method == "MAX":
                        best = -numpy.inf
                        for h in range(max(h0, 0), min(h0 + kernel[0], H)):
                            for w in range(max(w0, 0), min(w0 + kernel[1], W)):
                                if x[n, c, h, w] > best:
                                    best, mask[n, c, ph, pw] = x[n, c, h, w], h * W + w
                        top[n, c, ph, pw] = best
                    else:
                        h1, w1 = min(h0 + kernel[0], H + pad[0]), min(w0 + kernel[1], W + pad[1])
                        divisor = (h1 - h0) * (w1 - w0)
                        total = x[n, c, max(h0, 0):min(h1, H), max(w0, 0):min(w1, W)].sum()
                        top[n, c, ph, pw] = total / divisor
    return top, mask


def distinct(shape):
    """Distinct values (no ties, gaps far larger than the gradient-check step)."""
    count = int(numpy.prod(shape))
    return (RNG.permutation(count).reshape(shape) - count / 2) * 0.01


def pool_spec(method, geometry):
    return f'type: "Pooling" pooling_param {{ pool: {method} {geometry} }}'


# geometry text, input shape, kernel, stride, pad
CASES = {
    "k2s2_odd_H5": ("kernel_size: 2 stride: 2", (2, 2, 5, 5), (2, 2), (2, 2), (0, 0)),
    "k3s2_pad1": ("kernel_size: 3 stride: 2 pad: 1", (2, 2, 5, 6), (3, 3), (2, 2), (1, 1)),
    "k2s2_pad1_H5": ("kernel_size: 2 stride: 2 pad: 1", (1, 2, 5, 5), (2, 2), (2, 2), (1, 1)),
    "k3s1_pad2": ("kernel_size: 3 stride: 1 pad: 2", (1, 2, 4, 4), (3, 3), (1, 1), (2, 2)),
    "k3s3_pad1_corrected": ("kernel_size: 3 stride: 3 pad: 1", (1, 2, 5, 7), (3, 3), (3, 3), (1, 1)),
    "overlap_k3s2": ("kernel_size: 3 stride: 2", (2, 1, 7, 8), (3, 3), (2, 2), (0, 0)),
    "hw_forms": ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", (2, 2, 6, 5),
                 (3, 2), (2, 1), (1, 0)),
}


@pytest.mark.parametrize("size,kernel,stride,pad,expected", [
    (5, 2, 2, 0, 3),     # ceil: the last window hangs over the edge
    (24, 2, 2, 0, 12),
    (5, 2, 2, 1, 3),     # ceil(5/2)+1 = 4, the 4th would start in the padding -> 3
    (5, 3, 3, 1, 2),     # ceil(4/3)+1 = 3, (3-1)*3 = 6 >= 5+1 -> 2
    (7, 3, 2, 1, 4),
    (4, 3, 1, 2, 6),
])
def test_pooled_size_is_caffes_ceil_rule(size, kernel, stride, pad, expected):
    assert caffe_pooled(size, kernel, stride, pad) == expected
    assert pooled_size(size, kernel, stride, pad) == expected


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_caffes_loops(method, name):
    geometry, shape, kernel, stride, pad = CASES[name]
    x = distinct(shape)
    num_tops = 2 if method == "MAX" else 1
    _, _, top = run_forward(pool_spec(method, geometry), [x], num_tops=num_tops)
    expected, mask = naive_pool(x, method, kernel, stride, pad)
    assert top[0].shape == expected.shape
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    if method == "MAX":
        numpy.testing.assert_array_equal(top[1].data, mask)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_are_numerically_right(method, name):
    geometry, shape, *_ = CASES[name]
    result = check_layer(pool_spec(method, geometry), [distinct(shape)])
    assert result.passed, result.summary()
    assert result.blobs[0].skipped == 0


def test_ave_divisor_counts_padding_but_not_the_overhang():
    # H = W = 3, kernel 2, stride 2, pad 1: windows start at -1 and 1 and end at 1 and 3 (<= H + pad = 4)
    x = numpy.ones((1, 1, 3, 3))
    _, _, top = run_forward(pool_spec("AVE", "kernel_size: 2 stride: 2 pad: 1"), [x])
    # window (0,0) holds 1 real pixel of 4 counted; (0,1) 2 of 4; (1,1) 4 of 4
    numpy.testing.assert_allclose(top[0].data[0, 0], [[0.25, 0.5], [0.5, 1.0]])
    # H = 5, kernel 2, stride 2, pad 0: the last window overhangs by one row and is NOT padded
    _, _, top = run_forward(pool_spec("AVE", "kernel_size: 2 stride: 2"), [numpy.ones((1, 1, 5, 5))])
    assert top[0].data[0, 0, 2, 2] == 1.0  # 1 pixel / window clipped to H + pad = 5 -> 1 x 1


def test_max_backward_routes_to_the_first_maximum_on_ties():
    x = numpy.zeros((1, 1, 4, 4))
    x[0, 0, 1, 0] = x[0, 0, 0, 1] = 1.0  # two equal maxima in the first window: (0,1) comes first
    layer, bottom, top = make_layer(pool_spec("MAX", "kernel_size: 2 stride: 2"), [x], num_tops=2)
    layer.forward(bottom, top)
    assert top[1].data[0, 0, 0, 0] == 1.0  # h * W + w of (0, 1)
    assert top[1].data[0, 0, 1, 1] == 2 * 4 + 2  # all zeros: the window's first pixel
    top[0].diff[...] = 1.0
    layer.backward(top, [True], bottom)
    expected = numpy.zeros((4, 4))
    expected[0, 1] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1.0
    numpy.testing.assert_array_equal(bottom[0].diff[0, 0], expected)


def test_overlapping_max_windows_sum_their_gradients():
    x = numpy.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre is the max of all four 2x2 windows
    layer, bottom, top = make_layer(pool_spec("MAX", "kernel_size: 2 stride: 1"), [x])
    layer.forward(bottom, top)
    top[0].diff[...] = [[[[1.0, 2.0], [3.0, 4.0]]]]
    layer.backward(top, [True], bottom)
    assert bottom[0].diff[0, 0, 1, 1] == 10.0 and bottom[0].diff.sum() == 10.0


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method):
    x = distinct((2, 3, 4, 5))
    _, _, top = run_forward(pool_spec(method, "global_pooling: true"), [x])
    expected = x.max(axis=(2, 3)) if method == "MAX" else x.mean(axis=(2, 3))
    assert top[0].shape == (2, 3, 1, 1)
    numpy.testing.assert_allclose(top[0].data[:, :, 0, 0], expected, rtol=1e-12)
    result = check_layer(pool_spec(method, "global_pooling: true"), [x])
    assert result.passed, result.summary()


def test_float32_max_and_ave():
    x = distinct((2, 3, 7, 7)).astype(numpy.float32)
    for method in ("MAX", "AVE"):
        _, _, top = run_forward(pool_spec(method, "kernel_size: 3 stride: 2 pad: 1"), [x], dtype=numpy.float32)
        expected, _ = naive_pool(x.astype(float), method, (3, 3), (2, 2), (1, 1))
        numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geometry,error,match", [
    ("stride: 2", NetDefinitionError, "kernel_size"),
    ("kernel_size: 2 kernel_h: 2 kernel_w: 2", NetDefinitionError, "either"),
    ("kernel_h: 2", NetDefinitionError, "both"),
    ("kernel_size: 2 pad: 2", NetDefinitionError, "smaller than the kernel"),
    ("global_pooling: true kernel_size: 2", NetDefinitionError, "global_pooling"),
    ("global_pooling: true stride: 2", NetDefinitionError, "global_pooling"),
    ("kernel_size: 2 stride: 3", ShapeError, "starts outside"),   # H = 6: the 3rd window starts at 6
    ("kernel_size: 9", ShapeError, "does not fit"),
])
def test_bad_parameters_give_clear_errors(geometry, error, match):
    with pytest.raises(error, match=match):
        make_layer(f'type: "Pooling" pooling_param {{ {geometry} }}', [numpy.zeros((1, 1, 6, 6))])


def test_mask_top_only_for_max():
    with pytest.raises(NetDefinitionError, match="mask"):
        make_layer(pool_spec("AVE", "kernel_size: 2"), [numpy.zeros((1, 1, 4, 4))], num_tops=2)


def test_torch_pooling_agrees_where_the_rules_coincide():
    """torch's ceil_mode applies the 'start inside' fix always and Caffe only with padding; they
    differ only where a window would start past the input, which this engine rejects. torch's
    avg divisor with count_include_pad is Caffe's. torch needs pad <= kernel / 2."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for geometry, shape, kernel, stride, pad in CASES.values():
        if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
            continue
        x = distinct(shape)
        _, _, top = run_forward(pool_spec("MAX", geometry), [x], num_tops=2)
        values, indices = F.max_pool2d(torch.from_numpy(x), kernel, stride, pad, ceil_mode=True,
                                       return_indices=True)
        numpy.testing.assert_allclose(top[0].data, values.numpy(), rtol=1e-12)
        numpy.testing.assert_array_equal(top[1].data, indices.numpy())
        _, _, top = run_forward(pool_spec("AVE", geometry), [x])
        expected = F.avg_pool2d(torch.from_numpy(x), kernel, stride, pad, ceil_mode=True, count_include_pad=True)
        numpy.testing.assert_allclose(top[0].data, expected.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_cpu_and_gpu_agree(method):
    spec = pool_spec(method, "kernel_size: 3 stride: 2 pad: 1")
    x = distinct((2, 3, 9, 8)).astype(numpy.float32)
    results = []
    for device in ("cpu", "gpu"):
        layer, bottom, top = make_layer(spec, [x], dtype=numpy.float32)
        for blob in bottom + top:
            blob.to(device)
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
        top[0].diff[...] = engine.backend.to_device(numpy.linspace(-1, 1, top[0].data.size).reshape(top[0].shape)
                                                    .astype(numpy.float32), device)
        layer.backward(top, [True], bottom)
        results.append((engine.backend.to_numpy(top[0].data), engine.backend.to_numpy(bottom[0].diff)))
    for cpu, gpu in zip(*results):
        numpy.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5)
