"""Zoo layers, part D (Parameter, Im2col, SPP, BatchReindex, Filter, HDF5Output): each forward
against arithmetic written here (plain float64 loops, or PyTorch's equal op), each backward
against central differences (engine.check_layer), Caffe's checks as errors, one training net,
and every layer on the strict device stand-in."""
import math

import h5py
import numpy
import pytest

import engine
from engine.errors import DataError, LabelError, NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from tests.engine.helpers import assert_layer_same_on_device, make_layer, run_forward, solver_for

RNG = numpy.random.default_rng(4242)
FLT_MAX = float(numpy.finfo(numpy.float32).max)


def normal(*shape):
    return RNG.normal(size=shape)


def distinct(*shape):
    """Values at least 0.05 apart (no max-pooling ties), shuffled."""
    count = math.prod(shape)
    return (RNG.permutation(count) * 0.05 - count * 0.025).reshape(shape)


def assert_gradients(spec, bottoms, blobs, **kwargs):
    result = check_layer(spec, bottoms, **kwargs)
    assert len(result.blobs) == blobs, result.summary()
    assert all(b.checked > 0 for b in result.blobs), result.summary()
    assert result.passed, result.summary()


# -- Parameter ----------------------------------------------------------------------------------
PARAMETER = 'type: "Parameter" parameter_param { shape { dim: 2 dim: 3 dim: 4 } }'


def test_parameter_starts_as_zeros_and_forwards_its_values():
    layer, bottom, top = run_forward(PARAMETER, [])
    assert layer.blobs[0].shape == (2, 3, 4) and top[0].shape == (2, 3, 4)
    assert not layer.blobs[0].data.any()  # Caffe has no filler: a fresh blob is zeros
    values = normal(2, 3, 4)
    layer.blobs[0].data[...] = values
    layer.forward(bottom, top)
    numpy.testing.assert_array_equal(top[0].data, values)


def test_parameter_diff_is_the_top_diff_as_caffe_shares_it():
    layer, bottom, top = run_forward(PARAMETER, [])
    layer.blobs[0].diff = numpy.full((2, 3, 4), 7.0)  # Caffe's shared diff: overwritten, not added to
    top_diff = normal(2, 3, 4)
    top[0].diff[...] = top_diff
    layer.backward(top, [], bottom)
    numpy.testing.assert_array_equal(layer.blobs[0].diff, top_diff)
    assert_gradients(PARAMETER, [], 1, params=[normal(2, 3, 4)])


def test_parameter_refuses_a_negative_dimension():
    with pytest.raises(NetDefinitionError, match="Parameter.*negative"):
        make_layer('type: "Parameter" parameter_param { shape { dim: 2 dim: -1 } }', [])


def test_parameter_values_round_trip_through_a_caffemodel(tmp_path):
    text = ('layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 3 dim: 2 } } }\n'
            'layer { name: "s" type: "Silence" bottom: "p" }')
    net = engine.Net(text)
    values = normal(3, 2).astype(numpy.float32)
    net.params["p"][0].data[...] = values
    net.save(str(tmp_path / "p.caffemodel"))
    again = engine.Net(text, weights=str(tmp_path / "p.caffemodel"))
    again.forward()
    numpy.testing.assert_array_equal(again.blobs["p"].data, values)


# -- Im2col -------------------------------------------------------------------------------------
def im2col_loop(x, kernel, stride, pad, dilation):
    """Caffe's im2col_cpu per image, written out: N x C*kh*kw x Ho x Wo."""
    n, c, h, w = x.shape
    ho = (h + 2 * pad[0] - (dilation[0] * (kernel[0] - 1) + 1)) // stride[0] + 1
    wo = (w + 2 * pad[1] - (dilation[1] * (kernel[1] - 1) + 1)) // stride[1] + 1
    out = numpy.zeros((n, c * kernel[0] * kernel[1], ho, wo))
    for b in range(n):
        for ch in range(c):
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    row = (ch * kernel[0] + i) * kernel[1] + j
                    for y in range(ho):
                        for xx in range(wo):
                            yy = y * stride[0] - pad[0] + i * dilation[0]
                            xc = xx * stride[1] - pad[1] + j * dilation[1]
                            if 0 <= yy < h and 0 <= xc < w:
                                out[b, row, y, xx] = x[b, ch, yy, xc]
    return out


IM2COL_CASES = [  # (convolution_param body, kernel, stride, pad, dilation)
    ("kernel_size: 3", (3, 3), (1, 1), (0, 0), (1, 1)),
    ("kernel_size: 2 stride: 2 pad: 1", (2, 2), (2, 2), (1, 1), (1, 1)),
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", (3, 2), (2, 1), (1, 0), (1, 1)),
    ("kernel_size: 2 dilation: 2 pad: 1 stride: 1", (2, 2), (1, 1), (1, 1), (2, 2)),
    ("kernel_size: 3 kernel_size: 2 stride: 1 stride: 2 pad: 0 pad: 1 force_nd_im2col: true",
     (3, 2), (1, 2), (0, 1), (1, 1)),
]


@pytest.mark.parametrize("body, kernel, stride, pad, dilation", IM2COL_CASES)
def test_im2col_forward_is_caffes_columns_and_backward_is_col2im(body, kernel, stride, pad, dilation):
    x = normal(2, 3, 6, 5)
    spec = f'type: "Im2col" convolution_param {{ {body} }}'
    _, _, top = run_forward(spec, [x])
    numpy.testing.assert_allclose(top[0].data, im2col_loop(x, kernel, stride, pad, dilation), rtol=0, atol=0)
    assert_gradients(spec, [x], 1)


def test_im2col_equals_torch_unfold():
    torch = pytest.importorskip("torch")
    x = normal(2, 3, 7, 6)
    _, _, top = run_forward('type: "Im2col" convolution_param { kernel_size: 3 stride: 2 pad: 1 dilation: 1 }', [x])
    theirs = torch.nn.functional.unfold(torch.from_numpy(x), 3, padding=1, stride=2).numpy()
    numpy.testing.assert_array_equal(top[0].data.reshape(2, 27, -1), theirs)


def test_im2col_one_spatial_axis_and_a_later_channel_axis():
    x = normal(2, 3, 7)
    _, _, top = run_forward('type: "Im2col" convolution_param { kernel_size: 3 stride: 2 pad: 1 }', [x])
    expected = im2col_loop(x[:, :, None, :], (1, 3), (1, 2), (0, 1), (1, 1))
    assert top[0].shape == (2, 9, 4)
    numpy.testing.assert_array_equal(top[0].data, expected[:, :, 0, :])
    y = normal(2, 2, 3, 4, 4)  # axis 2: the first two axes are all images
    spec = 'type: "Im2col" convolution_param { kernel_size: 2 axis: 2 }'
    _, _, top = run_forward(spec, [y])
    assert top[0].shape == (2, 2, 12, 3, 3)
    expected = im2col_loop(y.reshape(4, 3, 4, 4), (2, 2), (1, 1), (0, 0), (1, 1)).reshape(2, 2, 12, 3, 3)
    numpy.testing.assert_array_equal(top[0].data, expected)
    assert_gradients(spec, [y], 1)


def im2col_nd_loop(x, kernel, stride, pad, dilation):
    """Caffe's im2col_nd_cpu written out: N x C*prod(kernel) x out..."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    out = tuple((s + 2 * p - (d * (k - 1) + 1)) // st + 1
                for s, k, st, p, d in zip(spatial, kernel, stride, pad, dilation))
    result = numpy.zeros((n, c * math.prod(kernel)) + out)
    for b in range(n):
        for ch in range(c):
            for k_index, offset in enumerate(numpy.ndindex(*kernel)):
                for position in numpy.ndindex(*out):
                    source = tuple(o * st - p + k * d for o, st, p, k, d in zip(position, stride, pad, offset, dilation))
                    if all(0 <= v < s for v, s in zip(source, spatial)):
                        result[(b, ch * math.prod(kernel) + k_index) + position] = x[(b, ch) + source]
    return result


def test_im2col_three_spatial_axes_is_caffes_nd_im2col():
    x = normal(2, 2, 4, 5, 3)
    spec = 'type: "Im2col" convolution_param { kernel_size: 2 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1 ' \
           'stride: 1 pad: 1 dilation: 1 dilation: 1 dilation: 2 }'
    _, _, top = run_forward(spec, [x])
    expected = im2col_nd_loop(x, (2, 3, 2), (2, 1, 1), (1, 1, 1), (1, 1, 2))
    assert top[0].shape == expected.shape == (2, 24, 3, 5, 3)
    numpy.testing.assert_array_equal(top[0].data, expected)
    assert_gradients(spec, [x], 1)
    # two spatial axes: the N-d loop is Caffe's other routine, and equals the 2-D columns
    y = normal(1, 2, 5, 4)
    _, _, top = run_forward('type: "Im2col" convolution_param { kernel_size: 3 stride: 2 pad: 1 dilation: 2 }', [y])
    numpy.testing.assert_array_equal(top[0].data, im2col_nd_loop(y, (3, 3), (2, 2), (1, 1), (2, 2)))


@pytest.mark.parametrize("body, shape, error, words", [
    ("kernel_h: 2 kernel_w: 2", (2, 3, 5), NetDefinitionError, "kernel_h/kernel_w"),
    ("kernel_size: 2 kernel_size: 2", (2, 3, 4, 4, 4), NetDefinitionError, "once per spatial axis \\(3\\)"),
    ("kernel_size: 2 pad_h: 1 pad_w: 1", (2, 3, 4, 4, 4), NetDefinitionError, "pad_h/pad_w"),
    ("kernel_size: 2", (2, 3), NetDefinitionError, "0 spatial axes"),
    ("kernel_size: 0", (2, 3, 4, 4), NetDefinitionError, "kernel size must be > 0"),
    ("", (2, 3, 4, 4), NetDefinitionError, "kernel_size"),
    ("kernel_size: 6 pad: 0", (2, 3, 4, 4), ShapeError, "larger than"),
    ("kernel_size: 2 kernel_h: 2 kernel_w: 2", (2, 3, 4, 4), NetDefinitionError, "not both"),
])
def test_im2col_refusals(body, shape, error, words):
    with pytest.raises(error, match=f"Im2col.*{words}"):
        make_layer(f'type: "Im2col" convolution_param {{ {body} }}', [numpy.zeros(shape)])


# -- SPP ----------------------------------------------------------------------------------------
def caffe_pool_loop(x, kernel, stride, pad, method):
    """Caffe's PoolingLayer Forward_cpu (MAX / AVE), written out in float64."""
    n, c, h, w = x.shape
    pooled = []
    for size, k, s, p in ((h, kernel[0], stride[0], pad[0]), (w, kernel[1], stride[1], pad[1])):
        count = int(math.ceil((size + 2 * p - k) / s)) + 1
        if p and (count - 1) * s >= size + p:
            count -= 1
        pooled.append(count)
    out = numpy.zeros((n, c, pooled[0], pooled[1]))
    for b in range(n):
        for ch in range(c):
            for ph in range(pooled[0]):
                for pw in range(pooled[1]):
                    hs, ws = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
                    he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
                    area = (he - hs) * (we - ws)
                    hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                    window = x[b, ch, hs:he, ws:we]
                    out[b, ch, ph, pw] = window.max(initial=-FLT_MAX) if method == "MAX" else window.sum() / area
    return out


def spp_loop(x, height, method):
    """Caffe's SPP: per level kernel ceil(H/2^l), pad (kernel*2^l - H + 1) / 2, stride kernel;
    flattened and concatenated (pyramid height 1: the pooling's 4-axis output)."""
    levels = []
    for level in range(height):
        bins = 2 ** level
        geometry = []
        for size in x.shape[2:]:
            k = -(-size // bins)
            geometry.append((k, (k * bins - size + 1) // 2))
        (kh, ph), (kw, pw) = geometry
        levels.append(caffe_pool_loop(x, (kh, kw), (kh, kw), (ph, pw), method))
    if height == 1:
        return levels[0]
    return numpy.concatenate([lv.reshape(x.shape[0], -1) for lv in levels], axis=1)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("height, shape", [(1, (2, 3, 5, 7)), (2, (2, 2, 9, 8)), (3, (1, 2, 13, 6)),
                                           (3, (2, 1, 16, 16)), (2, (1, 2, 3, 2))])
def test_spp_forward_is_caffes_pyramid(method, height, shape):
    x = distinct(*shape)
    _, _, top = run_forward(f'type: "SPP" spp_param {{ pyramid_height: {height} pool: {method} }}', [x])
    expected = spp_loop(x, height, method)
    assert top[0].shape == expected.shape
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=0)


def test_spp_bins_equal_torch_adaptive_pooling_where_the_windows_agree():
    torch = pytest.importorskip("torch")
    x = distinct(2, 3, 8, 16)  # sizes divisible by every level's bins: no padding, plain tiling
    _, _, top = run_forward('type: "SPP" spp_param { pyramid_height: 4 pool: MAX }', [x])
    t = torch.from_numpy(x)
    theirs = torch.cat([torch.nn.functional.adaptive_max_pool2d(t, 2 ** lv).reshape(2, -1) for lv in range(4)], 1)
    numpy.testing.assert_array_equal(top[0].data, theirs.numpy())
    _, _, top = run_forward('type: "SPP" spp_param { pyramid_height: 4 pool: AVE }', [x])
    theirs = torch.cat([torch.nn.functional.adaptive_avg_pool2d(t, 2 ** lv).reshape(2, -1) for lv in range(4)], 1)
    numpy.testing.assert_allclose(top[0].data, theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("body, shape", [("pyramid_height: 3 pool: MAX", (2, 2, 9, 8)),
                                         ("pyramid_height: 3 pool: AVE", (1, 2, 7, 9)),
                                         ("pyramid_height: 1 pool: MAX", (2, 2, 5, 4))])
def test_spp_gradients(body, shape):
    assert_gradients(f'type: "SPP" spp_param {{ {body} }}', [distinct(*shape)], 1)


def test_spp_follows_a_new_input_size():
    layer, bottom, top = run_forward('type: "SPP" spp_param { pyramid_height: 2 }', [distinct(1, 2, 6, 6)])
    x = distinct(1, 2, 11, 5)
    bottom[0].reshape(x.shape)
    bottom[0].data[...] = x
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    numpy.testing.assert_array_equal(top[0].data, spp_loop(x, 2, "MAX"))


@pytest.mark.parametrize("body, shape, error, words", [
    ("pool: MAX", (1, 1, 4, 4), NetDefinitionError, "pyramid_height must be >= 1"),
    ("pyramid_height: 3", (1, 1, 7, 5), NetDefinitionError, "level 2 of the 7x5 input.*pad"),
    ("pyramid_height: 2", (1, 4, 4), ShapeError, "4 axes"),
    ("pyramid_height: 2 pool: STOCHASTIC", (1, 1, 5, 5), NetDefinitionError, "padding"),
])
def test_spp_refusals(body, shape, error, words):
    with pytest.raises(error, match=f"SPP.*{words}"):
        make_layer(f'type: "SPP" spp_param {{ {body} }}', [numpy.zeros(shape)])


# -- BatchReindex -------------------------------------------------------------------------------
def test_batch_reindex_gathers_and_scatters_back():
    x = normal(4, 2, 3)
    index = numpy.array([3, 0, 3, 1.7, 3])  # repeats; 1.7 is truncated to 1, as Caffe's static_cast
    layer, bottom, top = run_forward('type: "BatchReindex"', [x, index])
    assert top[0].shape == (5, 2, 3)
    for m, i in enumerate([3, 0, 3, 1, 3]):
        numpy.testing.assert_array_equal(top[0].data[m], x[i])
    top_diff = normal(5, 2, 3)
    top[0].diff[...] = top_diff
    bottom[0].diff[...] = 9.0  # overwritten, as Caffe's caffe_set(0) first
    layer.backward(top, [True, False], bottom)
    expected = numpy.zeros_like(x)
    for m, i in enumerate([3, 0, 3, 1, 3]):
        expected[i] += top_diff[m]
    numpy.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-15)
    with pytest.raises(NetDefinitionError, match="BatchReindex.*indices"):
        layer.backward(top, [True, True], bottom)
    assert_gradients('type: "BatchReindex"', [x, numpy.array([2.0, 2.0, 0.0])], 1)


@pytest.mark.parametrize("index", [[0, 4], [-0.5, 1], [float("nan")]])
def test_batch_reindex_refuses_an_index_outside_the_batch(index):
    layer, bottom, top = make_layer('type: "BatchReindex"', [normal(4, 2), numpy.array(index)])
    with pytest.raises(LabelError, match="BatchReindex.*outside the batch of 4"):
        layer.forward(bottom, top)


def test_batch_reindex_needs_one_axis_of_indices():
    with pytest.raises(ShapeError, match="BatchReindex.*one axis"):
        make_layer('type: "BatchReindex"', [normal(4, 2), numpy.zeros((2, 1))])


# -- Filter -------------------------------------------------------------------------------------
def test_filter_keeps_the_selected_items_and_routes_diffs_back():
    a, b = normal(5, 2, 3), normal(5, 4)
    selector = numpy.array([[0.0], [2.0], [0.0], [-1.0], [float("nan")]])
    layer, bottom, top = make_layer('type: "Filter"', [a, b, selector], num_tops=2)
    assert top[0].shape == (5, 2, 3) and top[1].shape == (5, 4)  # Caffe's first reshape: all N items
    layer.forward(bottom, top)
    kept = [1, 3, 4]  # NaN is non-zero, as C++'s if
    numpy.testing.assert_array_equal(top[0].data, a[kept])
    numpy.testing.assert_array_equal(top[1].data, b[kept])
    diffs = [normal(3, 2, 3), normal(3, 4)]
    for blob, d in zip(top, diffs):
        blob.diff[...] = d
    for blob in bottom:
        blob.diff[...] = 5.0
    layer.backward(top, [True, True, False], bottom)
    for k, (blob, d) in enumerate(zip(bottom, diffs)):
        expected = numpy.zeros(blob.shape)
        for row, item in enumerate(kept):
            expected[item] = d[row]
        numpy.testing.assert_array_equal(blob.diff, expected, err_msg=f"bottom {k}")
    with pytest.raises(NetDefinitionError, match="Filter.*selector"):
        layer.backward(top, [True, True, True], bottom)
    assert_filter_gradients([a, b, numpy.array([1.0, 0, 0, 1, 1]).reshape(5, 1, 1)])


def assert_filter_gradients(bottoms, step=1e-6):
    """Central differences of sum(w * top) (check_layer sizes its weights before the first forward,
    while a Filter's tops take their selected size only then)."""
    layer, bottom, top = make_layer('type: "Filter"', bottoms, num_tops=len(bottoms) - 1)
    layer.forward(bottom, top)
    weights = [normal(*t.shape) for t in top]

    def objective():
        layer.forward(bottom, top)
        return sum(float((w * t.data).sum()) for w, t in zip(weights, top))

    for t, w in zip(top, weights):
        t.diff[...] = w
    layer.backward(top, [True] * (len(bottom) - 1) + [False], bottom)
    for k, blob in enumerate(bottom[:-1]):
        analytic = blob.diff.copy()
        for index in numpy.ndindex(blob.shape):
            keep = blob.data[index]
            blob.data[index] = keep + step
            up = objective()
            blob.data[index] = keep - step
            down = objective()
            blob.data[index] = keep
            numeric = (up - down) / (2 * step)
            assert abs(numeric - analytic[index]) <= 1e-6 * max(abs(numeric), 1), (k, index)


def test_filter_with_nothing_selected_gives_an_empty_top_and_refuses_backward():
    layer, bottom, top = run_forward('type: "Filter"', [normal(3, 2), numpy.zeros(3)])
    assert top[0].shape == (0, 2)
    with pytest.raises(ShapeError, match="Filter.*selected no item"):
        layer.backward(top, [True, False], bottom)


@pytest.mark.parametrize("bottoms, num_tops, error, words", [
    ([normal(3, 2), numpy.zeros((3, 2))], 1, ShapeError, "selector"),
    ([normal(4, 2), numpy.zeros(3)], 1, ShapeError, "3 items"),
    ([normal(3, 2), normal(3), numpy.zeros(3)], 1, NetDefinitionError, "need as many tops"),
    ([numpy.zeros(3)], 1, NetDefinitionError, "at least 2 bottoms"),
])
def test_filter_refusals(bottoms, num_tops, error, words):
    with pytest.raises(error, match=f"Filter.*{words}"):
        make_layer('type: "Filter"', bottoms, num_tops=num_tops)


# -- HDF5Output ---------------------------------------------------------------------------------
def _hdf5_output(path, data, label, dtype=numpy.float32):
    return make_layer(f'type: "HDF5Output" hdf5_output_param {{ file_name: "{path}" }}', [data, label],
                      num_tops=0, dtype=dtype)


def test_hdf5_output_writes_data_and_label_once_as_caffe(tmp_path):
    path = tmp_path / "out.h5"
    data, label = normal(3, 2, 4).astype(numpy.float32), numpy.arange(3, dtype=numpy.float32)
    layer, bottom, top = _hdf5_output(path, data, label)
    assert not path.exists()  # nothing is written while the net is built
    layer.forward(bottom, top)
    with h5py.File(path, "r") as h5:
        assert sorted(h5) == ["data", "label"]
        assert h5["data"].dtype == numpy.float32 and h5["data"].shape == (3, 2, 4, 1)  # legacy 4 axes
        assert h5["label"].shape == (3, 1, 1, 1)
        numpy.testing.assert_array_equal(h5["data"][...][..., 0], data)
        numpy.testing.assert_array_equal(h5["label"][...].reshape(3), label)
    before = path.read_bytes()
    bottom[0].data[...] = 0
    with pytest.raises(DataError, match="HDF5Output.*one batch per net"):
        layer.forward(bottom, top)  # Caffe: the datasets exist, H5LTmake_dataset fails
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]  # no temporary left behind
    layer.backward(top, [False, False], bottom)  # a no-op, as Caffe's


def test_hdf5_output_in_a_net_writes_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = engine.Net("""
        layer { name: "d" type: "DummyData" top: "d" top: "l"
                dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 }
                                   data_filler { type: "constant" value: 1.5 } } }
        layer { name: "out" type: "HDF5Output" bottom: "d" bottom: "l" hdf5_output_param { file_name: "o.h5" } }
    """, engine.TEST)
    net.forward()
    with h5py.File(tmp_path / "o.h5", "r") as h5:
        numpy.testing.assert_array_equal(h5["data"][...], numpy.full((2, 3, 1, 1), 1.5, numpy.float32))
        numpy.testing.assert_array_equal(h5["label"][...], numpy.full((2, 1, 1, 1), 1.5, numpy.float32))


def test_hdf5_output_refusals(tmp_path):
    with pytest.raises(DataError, match="HDF5Output.*does not exist"):
        _hdf5_output(tmp_path / "missing" / "o.h5", normal(2, 3), normal(2))
    with pytest.raises(NetDefinitionError, match="HDF5Output.*file_name is required"):
        make_layer('type: "HDF5Output"', [normal(2, 3), normal(2)], num_tops=0)
    with pytest.raises(ShapeError, match="HDF5Output.*5 axes"):
        _hdf5_output(tmp_path / "o.h5", normal(2, 1, 1, 1, 1), normal(2))
    with pytest.raises(ShapeError, match="HDF5Output.*2 item.*3"):
        _hdf5_output(tmp_path / "o.h5", normal(2, 3), normal(3))
    assert not any(tmp_path.iterdir())


# -- a net that trains with them ----------------------------------------------------------------
TRAIN_NET = """
layer { name: "x" type: "DummyData" top: "x" top: "idx" top: "sel" top: "zeros" top: "zeros2"
        dummy_data_param { shape { dim: 4 dim: 2 dim: 6 dim: 6 } shape { dim: 3 } shape { dim: 4 dim: 1 }
                           shape { dim: 3 dim: 15 } shape { dim: 4 dim: 1 }
                           data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
                           data_filler { type: "constant" value: 1 } data_filler { type: "constant" value: 0 }
                           data_filler { type: "constant" value: 0 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "conv"
        convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "spp" type: "SPP" bottom: "conv" top: "spp" spp_param { pyramid_height: 2 } }
layer { name: "cols" type: "Im2col" bottom: "conv" top: "cols" convolution_param { kernel_size: 2 stride: 2 } }
layer { name: "pick" type: "BatchReindex" bottom: "spp" bottom: "idx" top: "picked" }
layer { name: "keep" type: "Filter" bottom: "cols" bottom: "sel" top: "kept" }
layer { name: "p" type: "Parameter" top: "p" parameter_param { shape { dim: 3 dim: 15 } } }
layer { name: "sum" type: "Eltwise" bottom: "picked" bottom: "p" top: "sum" }
layer { name: "loss" type: "EuclideanLoss" bottom: "sum" bottom: "zeros" top: "loss" }
layer { name: "ip" type: "InnerProduct" bottom: "kept" top: "ip"
        inner_product_param { num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss2" type: "EuclideanLoss" bottom: "ip" bottom: "zeros2" top: "loss2" }
"""


def test_a_net_with_them_trains():
    solver = solver_for(TRAIN_NET, base_lr=0.1)
    net = solver.net
    assert {"SPP", "Im2col", "BatchReindex", "Filter", "Parameter"} <= {layer.type_name for layer in net.layers}
    conv_before = net.params["conv"][0].data.copy()
    solver.step(1)
    picked = net.blobs["picked"].data.astype(numpy.float64)
    # p starts at zeros; dLoss/dp = (picked + p - 0) / 3 (EuclideanLoss over 3 items): one SGD step
    numpy.testing.assert_allclose(net.params["p"][0].data, -0.1 * picked / 3, rtol=1e-5, atol=1e-7)
    assert not numpy.array_equal(net.params["conv"][0].data, conv_before)
    solver.step(2)
    assert numpy.isfinite(net.params["conv"][0].data).all()


def test_a_parameter_keeps_only_the_last_passs_gradient_with_iter_size_as_caffe():
    # Caffe's Parameter top shares the blob's diff, which the Eltwise above overwrites on each
    # pass: with iter_size 2 the update is the second pass's gradient, halved by the solver
    solver = solver_for(TRAIN_NET, base_lr=0.1, iter_size=2)
    solver.step(1)
    picked = solver.net.blobs["picked"].data.astype(numpy.float64)  # the second pass's values
    numpy.testing.assert_allclose(solver.net.params["p"][0].data, -0.1 * picked / 3 / 2, rtol=1e-5, atol=1e-7)


# -- on the strict device stand-in --------------------------------------------------------------
DEVICE_CASES = [  # (Caffe type, prototxt body, bottoms, bottoms that take a gradient, tops)
    ("Parameter", "parameter_param { shape { dim: 2 dim: 3 } }", [], [], 1),
    ("Im2col", "convolution_param { kernel_size: 2 stride: 2 pad: 1 dilation: 1 }", [normal(2, 3, 5, 4)], [0], 1),
    ("Im2col", "convolution_param { kernel_size: 3 }", [normal(2, 3, 7)], [0], 1),
    ("Im2col", "convolution_param { kernel_size: 2 stride: 2 pad: 1 }", [normal(2, 2, 3, 4, 3)], [0], 1),
    ("SPP", "spp_param { pyramid_height: 3 }", [distinct(2, 2, 9, 8)], [0], 1),
    ("SPP", "spp_param { pyramid_height: 2 pool: AVE }", [normal(2, 2, 7, 6)], [0], 1),
    ("SPP", "spp_param { pyramid_height: 1 }", [normal(2, 2, 5, 4)], [0], 1),
    ("BatchReindex", "", [normal(4, 3), numpy.array([3.0, 0.0, 3.0])], [0], 1),
    ("Filter", "", [normal(4, 3), normal(4, 2, 2), numpy.array([1.0, 0.0, 2.0, 0.0])], [0, 1], 2),
]


@pytest.mark.gpu
@pytest.mark.parametrize("kind, body, bottoms, grads, tops", DEVICE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DEVICE_CASES)])
def test_layer_on_the_device_equals_numpy(gpu_kind, kind, body, bottoms, grads, tops):
    random_weights = lambda blobs: [normal(*b.shape).astype(numpy.float32) for b in blobs]  # noqa: E731
    assert_layer_same_on_device(gpu_kind, kind, body, bottoms, grads, tops, weights=random_weights)


@pytest.mark.gpu
def test_hdf5_output_on_the_device(gpu_kind, tmp_path):
    data, label = normal(2, 3).astype(numpy.float32), numpy.array([1.0, 0.0], numpy.float32)
    layer, bottom, top = _hdf5_output(tmp_path / "o.h5", data, label)
    layer.device = "gpu"
    for blob in bottom:
        blob.to("gpu")
    layer.forward(bottom, top)
    with h5py.File(tmp_path / "o.h5", "r") as h5:
        numpy.testing.assert_array_equal(h5["data"][...].reshape(2, 3), data)
        numpy.testing.assert_array_equal(h5["label"][...].reshape(2), label)


def test_layers_after_a_filter_follow_its_selected_count():
    """Caffe reshapes every layer at every forward: when the selector keeps another number
    of items, the layers after the Filter take the new batch size (forward and backward)."""
    net = engine.Net("""
    layer { name: "in" type: "Input" top: "x" top: "keep"
            input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }
    layer { name: "filter" type: "Filter" bottom: "x" bottom: "keep" top: "kept" }
    layer { name: "ip" type: "InnerProduct" bottom: "kept" top: "y"
            inner_product_param { num_output: 2 weight_filler { type: "constant" value: 1 } } }
    layer { name: "loss" type: "Reduction" bottom: "y" top: "loss" loss_weight: 1 }
    force_backward: true
    """, engine.TRAIN)
    x = numpy.arange(12, dtype=numpy.float32).reshape(4, 3)
    for keep, rows in (([1, 0, 1, 0], [0, 2]), ([1, 1, 1, 0], [0, 1, 2]), ([0, 0, 0, 1], [3])):
        net.blobs["x"].data[...] = x
        net.blobs["keep"].data[...] = keep
        net.forward()
        assert net.blobs["y"].shape == (len(rows), 2)
        assert numpy.array_equal(net.blobs["y"].data, numpy.repeat(x[rows].sum(1, keepdims=True), 2, axis=1))
        net.backward()
        expected = numpy.zeros((4, 3), numpy.float32)
        expected[rows] = 2  # d(sum of y)/dx through two all-ones weight rows
        assert numpy.array_equal(net.blobs["x"].diff, expected)
