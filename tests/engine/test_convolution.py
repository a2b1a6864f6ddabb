"""Convolution and im2col: forward against loops written here, numeric gradients,
Caffe's output size and parameter rules, and (when installed) PyTorch."""
import contextlib

import numpy
import pytest

import engine
from engine.errors import NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from engine.im2col import col2im, conv_output_size, im2col
from engine.products import describe
from tests.engine.helpers import make_layer, run_forward

RNG = numpy.random.default_rng(5)


def naive_conv(x, W, b, stride=(1, 1), pad=(0, 0), dilation=(1, 1), group=1):
    """Pixel by pixel: top[n, o, y, x] = sum over the group's channels and the kernel."""
    N, C, H, Wd = x.shape
    Co, Cg, kh, kw = W.shape
    Ho = (H + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    Wo = (Wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out_per_group = Co // group
    top = numpy.zeros((N, Co, Ho, Wo))
    for n in range(N):
        for o in range(Co):
            g = o // out_per_group
            for y in range(Ho):
                for xx in range(Wo):
                    total = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h = y * stride[0] - pad[0] + i * dilation[0]
                                w = xx * stride[1] - pad[1] + j * dilation[1]
                                if 0 <= h < H and 0 <= w < Wd:
                                    total += W[o, c, i, j] * x[n, g * Cg + c, h, w]
                    top[n, o, y, xx] = total
    return top


def conv_spec(num_output, geometry, extra=""):
    return (f'type: "Convolution" convolution_param {{ num_output: {num_output} {geometry} '
            f'weight_filler {{ type: "gaussian" std: 1 }} bias_filler {{ type: "gaussian" std: 1 }} {extra} }}')


# (geometry text, input shape, num_output, stride, pad, dilation, group, kernel)
CASES = {
    "3x3": ("kernel_size: 3", (2, 3, 6, 5), 4, (1, 1), (0, 0), (1, 1), 1, (3, 3)),
    "stride2": ("kernel_size: 3 stride: 2", (2, 2, 7, 6), 3, (2, 2), (0, 0), (1, 1), 1, (3, 3)),
    "pad1": ("kernel_size: 3 pad: 1", (1, 2, 5, 5), 3, (1, 1), (1, 1), (1, 1), 1, (3, 3)),
    "dilation2": ("kernel_size: 2 dilation: 2", (2, 2, 6, 6), 2, (1, 1), (0, 0), (2, 2), 1, (2, 2)),
    "group2": ("kernel_size: 2 group: 2", (2, 4, 5, 4), 6, (1, 1), (0, 0), (1, 1), 2, (2, 2)),
    "nonsquare_hw": ("kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
                     (2, 2, 7, 5), 3, (2, 1), (1, 0), (1, 1), 1, (3, 1)),
    "repeated_per_axis": ("kernel_size: 2 kernel_size: 3 stride: 1 stride: 2 pad: 0 pad: 1 "
                          "dilation: 2 dilation: 1", (1, 3, 6, 7), 2, (1, 2), (0, 1), (2, 1), 1, (2, 3)),
    "everything": ("kernel_size: 3 stride: 2 pad: 2 dilation: 2 group: 3", (2, 3, 8, 7), 3,
                   (2, 2), (2, 2), (2, 2), 3, (3, 3)),
    "1x1": ("kernel_size: 1", (2, 3, 3, 4), 2, (1, 1), (0, 0), (1, 1), 1, (1, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_naive_loops(name):
    geometry, shape, num_output, stride, pad, dilation, group, kernel = CASES[name]
    x = RNG.normal(size=shape)
    layer, _, top = run_forward(conv_spec(num_output, geometry), [x])
    W, b = layer.blobs[0].data, layer.blobs[1].data
    assert W.shape == (num_output, shape[1] // group) + kernel
    expected = naive_conv(x, W, b, stride, pad, dilation, group)
    assert top[0].shape == expected.shape
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_are_numerically_right(name):
    geometry, shape, num_output, *_ = CASES[name]
    result = check_layer(conv_spec(num_output, geometry), [RNG.normal(size=shape)], max_elements=60)
    assert result.passed, result.summary()
    assert len(result.blobs) == 3  # bottom, W, b


def test_without_bias_has_one_param_and_right_gradients():
    spec = conv_spec(3, "kernel_size: 2 stride: 2 pad: 1", "bias_term: false")
    x = RNG.normal(size=(2, 2, 5, 5))
    layer, _, top = run_forward(spec, [x])
    assert len(layer.blobs) == 1
    expected = naive_conv(x, layer.blobs[0].data, None, (2, 2), (1, 1))
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-11, atol=1e-11)
    result = check_layer(spec, [x])
    assert result.passed and len(result.blobs) == 2, result.summary()


def test_float32_forward_agrees_with_float64_loops():
    x = RNG.normal(size=(3, 2, 6, 6)).astype(numpy.float32)
    layer, _, top = run_forward(conv_spec(4, "kernel_size: 3 pad: 1 stride: 2"), [x], dtype=numpy.float32)
    assert top[0].data.dtype == numpy.float32
    expected = naive_conv(x.astype(float), layer.blobs[0].data.astype(float), layer.blobs[1].data.astype(float),
                          (2, 2), (1, 1))
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-5)


def test_backward_products_by_hand():
    """dW = sum_n delta[n] . col[n]^T, db = sum of delta, bottom diff = col2im(W^T delta)
    worked with explicit loops on a 1-channel 3x3 input and a 2x2 kernel."""
    x = numpy.arange(2 * 1 * 3 * 3, dtype=float).reshape(2, 1, 3, 3)
    layer, bottom, top = make_layer(conv_spec(1, "kernel_size: 2"), [x])
    layer.forward(bottom, top)
    delta = RNG.normal(size=top[0].shape)
    top[0].diff[...] = delta
    layer.backward(top, [True], bottom)
    W = layer.blobs[0].data[0, 0]
    dW = numpy.zeros((2, 2))
    dx = numpy.zeros_like(x)
    for n in range(2):
        for y in range(2):
            for xx in range(2):
                dW += delta[n, 0, y, xx] * x[n, 0, y:y + 2, xx:xx + 2]
                dx[n, 0, y:y + 2, xx:xx + 2] += delta[n, 0, y, xx] * W
    numpy.testing.assert_allclose(layer.blobs[0].diff[0, 0], dW, rtol=1e-12)
    numpy.testing.assert_allclose(layer.blobs[1].diff, [delta.sum()], rtol=1e-12)
    numpy.testing.assert_allclose(bottom[0].diff, dx, rtol=1e-12)


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x = RNG.normal(size=(2, 2, 4, 4))
    layer, bottom, top = make_layer(conv_spec(2, "kernel_size: 3 pad: 1"), [x])
    layer.forward(bottom, top)
    top[0].diff[...] = RNG.normal(size=top[0].shape)
    layer.backward(top, [True], bottom)
    first_w, first_b, first_x = (layer.blobs[0].diff.copy(), layer.blobs[1].diff.copy(),
                                 bottom[0].diff.copy())
    layer.backward(top, [True], bottom)
    numpy.testing.assert_allclose(layer.blobs[0].diff, 2 * first_w, rtol=1e-12)
    numpy.testing.assert_allclose(layer.blobs[1].diff, 2 * first_b, rtol=1e-12)
    numpy.testing.assert_allclose(bottom[0].diff, first_x, rtol=1e-12)


def test_two_bottoms_share_the_weights():
    a, b = RNG.normal(size=(2, 2, 4, 4)), RNG.normal(size=(2, 2, 4, 4))
    spec = ('type: "Convolution" bottom: "a" bottom: "b" top: "ta" top: "tb" convolution_param { num_output: 2 '
            'kernel_size: 3 weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, _, top = run_forward(spec, [a, b])
    W, bias = layer.blobs[0].data, layer.blobs[1].data
    numpy.testing.assert_allclose(top[0].data, naive_conv(a, W, bias), rtol=1e-11)
    numpy.testing.assert_allclose(top[1].data, naive_conv(b, W, bias), rtol=1e-11)
    result = check_layer(spec, [a, b], max_elements=40)
    assert result.passed, result.summary()


def test_large_batches_run_in_chunks_of_images(monkeypatch):
    from engine.layers import convolution
    spec = conv_spec(4, "kernel_size: 3 stride: 2 pad: 1 group: 2")
    x = RNG.normal(size=(5, 2, 5, 5))
    per_image = 2 * 3 * 3 * 3 * 3  # C * kh * kw * Ho * Wo
    monkeypatch.setattr(convolution, "COL_BUFFER_ELEMENTS", 2 * per_image)
    layer, _, top = run_forward(spec, [x])
    assert [(c.start, c.stop) for c in layer._chunks()] == [(0, 2), (2, 4), (4, 5)]
    expected = naive_conv(x, layer.blobs[0].data, layer.blobs[1].data, (2, 2), (1, 1), group=2)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-11, atol=1e-11)
    result = check_layer(spec, [x], max_elements=60)
    assert result.passed, result.summary()


@pytest.mark.parametrize("size,kernel,stride,pad,dilation,expected", [
    (28, 5, 1, 0, 1, 24), (7, 3, 2, 1, 1, 4), (8, 3, 2, 2, 2, 4), (6, 2, 3, 0, 1, 2), (5, 5, 1, 0, 1, 1),
])
def test_output_size_is_caffes_floor_rule(size, kernel, stride, pad, dilation, expected):
    assert conv_output_size(size, kernel, stride, pad, dilation) == expected
    x = numpy.zeros((1, 1, size, size))
    geometry = f"kernel_size: {kernel} stride: {stride} pad: {pad} dilation: {dilation}"
    _, _, top = make_layer(conv_spec(1, geometry), [x])
    assert top[0].shape == (1, 1, expected, expected)


def test_im2col_rows_and_col2im_adjoint():
    x = RNG.normal(size=(2, 3, 5, 4))
    kernel, stride, pad, dilation = (2, 3), (2, 1), (1, 1), (1, 2)
    col = im2col(x, kernel, stride, pad, dilation)
    Ho, Wo = conv_output_size(5, 2, 2, 1, 1), conv_output_size(4, 3, 1, 1, 2)
    assert col.shape == (3, 2, 3, Ho, Wo, 2)
    padded = numpy.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for c, i, j, n, y, xx in [(0, 0, 0, 0, 0, 0), (2, 1, 2, 1, Ho - 1, Wo - 1), (1, 1, 0, 0, 1, 1), (0, 0, 1, 1, 2, 0)]:
        assert col[c, i, j, y, xx, n] == padded[n, c, y * 2 + i, xx + 2 * j]
    other = RNG.normal(size=col.shape)
    back = col2im(other, x.shape, kernel, stride, pad, dilation)
    # <im2col(x), other> == <x, col2im(other)>: col2im is the transpose of im2col
    numpy.testing.assert_allclose((col * other).sum(), (x * back).sum(), rtol=1e-12)


@pytest.mark.parametrize("geometry,error", [
    ("kernel_size: 3 group: 2", NetDefinitionError),          # 3 channels, group 2
    ("", NetDefinitionError),                                 # no kernel
    ("kernel_size: 3 kernel_h: 3 kernel_w: 3", NetDefinitionError),
    ("kernel_size: 1 kernel_size: 2 kernel_size: 3", NetDefinitionError),
    ("kernel_size: 9", ShapeError),                           # larger than the 5x5 input
    ("kernel_size: 3 stride: 0", NetDefinitionError),
])
def test_bad_parameters_give_clear_errors(geometry, error):
    with pytest.raises(error, match="layer 'Convolution'"):
        make_layer(conv_spec(2, geometry), [numpy.zeros((1, 3, 5, 5))])


def test_non_image_bottom_is_rejected():
    with pytest.raises(ShapeError, match="N x C x H x W"):
        make_layer(conv_spec(2, "kernel_size: 1"), [numpy.zeros((2, 3))])


def test_step_through_describes_im2col_and_the_three_products():
    layer, _, _ = make_layer(conv_spec(20, "kernel_size: 5"), [numpy.zeros((64, 1, 28, 28))])
    dims, forward, backward = describe(layer)
    assert dims["N"] == 64 and dims["K_"] == 25 and dims["N_"] == 576 and dims["M_"] == 20
    assert any("im2col" in line and "[25×576]" in line for line in forward)
    assert any(line.startswith("dW [20×25] += δ [20×576] · colᵀ [576×25]") for line in backward)
    assert any(line.startswith("db [20]") for line in backward)
    assert any("δ_col [25×576] = Wᵀ [25×20] · δ [20×576]" in line for line in backward)


def _one_blas_thread():
    """Small GEMMs on a busy 2-core machine run ~10x slower with 2 OpenBLAS threads."""
    try:
        import threadpoolctl
    except ImportError:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(1, user_api="blas")


def test_lenet_example_trains_to_high_test_accuracy(examples_dir):
    solver = engine.get_solver(str(examples_dir / "digits_lenet" / "solver.prototxt"))
    first = float(solver.test_nets[0].forward()["accuracy"])  # a copy: the blob is reused
    with _one_blas_thread():
        solver.step(100)
    accuracy = solver.test_nets[0].forward()["accuracy"]
    assert float(first) < 0.5 and float(accuracy) > 0.9


def test_torch_conv2d_agrees():
    torch = pytest.importorskip("torch")
    for geometry, shape, num_output, stride, pad, dilation, group, _ in CASES.values():
        x = RNG.normal(size=shape)
        layer, _, top = run_forward(conv_spec(num_output, geometry), [x])
        expected = torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data), torch.from_numpy(layer.blobs[1].data),
            stride=stride, padding=pad, dilation=dilation, groups=group).numpy()
        numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.gpu
def test_cpu_and_gpu_agree():
    spec = conv_spec(4, "kernel_size: 3 stride: 2 pad: 1 group: 2")
    x = RNG.normal(size=(3, 4, 9, 8)).astype(numpy.float32)
    cpu_layer, cpu_bottom, cpu_top = make_layer(spec, [x], dtype=numpy.float32)
    gpu_layer, gpu_bottom, gpu_top = make_layer(spec, [x], dtype=numpy.float32)
    for blob in gpu_layer.blobs + gpu_bottom + gpu_top:
        blob.to("gpu")
    for mine, theirs in zip(gpu_layer.blobs, cpu_layer.blobs):
        mine.data[...] = engine.backend.to_device(theirs.data, "gpu")
    delta = RNG.normal(size=cpu_top[0].shape).astype(numpy.float32)
    for layer, bottom, top, to in ((cpu_layer, cpu_bottom, cpu_top, "cpu"), (gpu_layer, gpu_bottom, gpu_top, "gpu")):
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
        top[0].diff[...] = engine.backend.to_device(delta, to)
        layer.backward(top, [True], bottom)
    to_np = engine.backend.to_numpy
    numpy.testing.assert_allclose(to_np(gpu_top[0].data), cpu_top[0].data, rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(to_np(gpu_bottom[0].diff), cpu_bottom[0].diff, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(gpu_layer.blobs, cpu_layer.blobs):
        numpy.testing.assert_allclose(to_np(mine.diff), theirs.diff, rtol=1e-5, atol=1e-4)
