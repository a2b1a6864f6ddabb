"""Caffe's recurrent layers: LSTMUnit, LSTM and RNN (recurrent_layer.cpp, lstm_layer.cpp,
rnn_layer.cpp, lstm_unit_layer.cpp).

Forwards are checked against plain float64 loops over the formulas written here (and the
LSTM against PyTorch's nn.LSTM), backwards numerically (engine.check_layer); then the
parameter layout and Caffe's filler order, a training net with snapshot/restore and
weight files, the errors, and the strict device stand-in."""
import h5py
import numpy
import pytest

import engine
from engine import backend, rng
from engine.caffe_rng import CaffeStream
from engine.errors import NetDefinitionError, ShapeError
from engine.gradcheck import check_layer
from tests.engine.helpers import make_layer, params_numpy, solver_for

R = numpy.random.default_rng(7)
T, N, D, H = 3, 2, 3, 4
CONT = numpy.array([[0, 0], [1, 0], [1, 1]], numpy.float32)  # stream 1 restarts at t = 1
FILL = 'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 }'


def normal(*shape):
    return R.normal(size=shape).astype(numpy.float32)


def spec(kind, extra=""):
    return f'name: "{kind.lower()}" type: "{kind}" recurrent_param {{ num_output: {H} {FILL} {extra} }}'


def sigmoid(z):
    return 1.0 / (1.0 + numpy.exp(-z))


# -- independent loops over the formulas ----------------------------------------------------
def lstm_loop(x, cont, w_xc, b_c, w_hc, h0=None, c0=None, static=None, w_static=None):
    """h (T x N x H) and the final (h, c) of an LSTM, gates i, f, o, g, in float64."""
    x, cont = numpy.float64(x), numpy.float64(cont)
    hidden = w_hc.shape[1]
    h = numpy.zeros((x.shape[1], hidden)) if h0 is None else numpy.float64(h0)
    c = numpy.zeros((x.shape[1], hidden)) if c0 is None else numpy.float64(c0)
    out = []
    for t in range(x.shape[0]):
        keep = cont[t][:, None]
        a = x[t].reshape(x.shape[1], -1) @ w_xc.T + b_c + (keep * h) @ w_hc.T
        if static is not None:
            a = a + static.reshape(static.shape[0], -1) @ w_static.T
        i, f, o = sigmoid(a[:, :hidden]), sigmoid(a[:, hidden:2 * hidden]), sigmoid(a[:, 2 * hidden:3 * hidden])
        g = numpy.tanh(a[:, 3 * hidden:])
        c = keep * f * c + i * g
        h = o * numpy.tanh(c)
        out.append(h)
    return numpy.stack(out), h, c


def rnn_loop(x, cont, w_xh, b_h, w_hh, w_ho, b_o, h0=None, static=None, w_static=None):
    x, cont = numpy.float64(x), numpy.float64(cont)
    h = numpy.zeros((x.shape[1], w_hh.shape[0])) if h0 is None else numpy.float64(h0)
    out = []
    for t in range(x.shape[0]):
        a = x[t].reshape(x.shape[1], -1) @ w_xh.T + b_h + (cont[t][:, None] * h) @ w_hh.T
        if static is not None:
            a = a + static.reshape(static.shape[0], -1) @ w_static.T
        h = numpy.tanh(a)
        out.append(numpy.tanh(h @ w_ho.T + b_o))
    return numpy.stack(out), h


def weights(layer):
    return [numpy.float64(b.data) for b in layer.blobs]


# -- LSTMUnit -------------------------------------------------------------------------------
def test_lstm_unit_forward_follows_the_formulas_and_its_gradient_checks():
    c_prev, gate_input, cont = normal(1, 3, H), normal(1, 3, 4 * H) * 2, numpy.array([[1, 0, 1]], numpy.float32)
    layer, bottom, top = make_layer('type: "LSTMUnit"', [c_prev, gate_input, cont], num_tops=2, dtype=numpy.float32)
    layer.forward(bottom, top)
    a = numpy.float64(gate_input[0])
    i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), numpy.tanh(a[:, 3 * H:])
    c = cont[0][:, None] * f * c_prev[0] + i * g
    numpy.testing.assert_allclose(top[0].data[0], c, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(top[1].data[0], o * numpy.tanh(c), rtol=1e-5, atol=1e-6)
    result = check_layer('type: "LSTMUnit"', [c_prev, gate_input, cont], num_tops=2, check_bottoms=[0, 1])
    assert result.passed, result.summary()
    assert len(result.blobs) == 2


def test_lstm_unit_refuses_a_gradient_to_cont_and_bad_shapes():
    layer, bottom, top = make_layer('type: "LSTMUnit"', [normal(1, 2, H), normal(1, 2, 4 * H), numpy.ones((1, 2))],
                                    num_tops=2)
    layer.forward(bottom, top)
    assert not layer.allow_force_backward(2)
    with pytest.raises(NetDefinitionError, match="sequence indicators"):
        layer.backward(top, [True, True, True], bottom)
    with pytest.raises(ShapeError, match="4 x 4"):
        make_layer('type: "LSTMUnit"', [normal(1, 2, H), normal(1, 2, 3 * H), numpy.ones((1, 2))], num_tops=2)
    with pytest.raises(ShapeError, match="cont"):
        make_layer('type: "LSTMUnit"', [normal(1, 2, H), normal(1, 2, 4 * H), numpy.ones((2, 2))], num_tops=2)


# -- gradients --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_gradients_through_time_wrt_x_and_every_param(kind):
    result = check_layer(spec(kind), [normal(T, N, D), CONT], check_bottoms=[0])
    assert result.passed, result.summary()
    assert len(result.blobs) == 1 + (3 if kind == "LSTM" else 5)


@pytest.mark.parametrize("kind", ["LSTM", "RNN"])
def test_gradients_with_a_static_input(kind):
    result = check_layer(spec(kind), [normal(T, N, D), CONT, normal(N, 2)], check_bottoms=[0, 2])
    assert result.passed, result.summary()
    assert len(result.blobs) == 2 + (4 if kind == "LSTM" else 6)  # x, x_static and the params


# -- forward against independent arithmetic ---------------------------------------------------
def test_lstm_forward_equals_the_loop_and_carries_its_state_to_the_next_batch():
    x = normal(T, N, D)
    layer, bottom, top = make_layer(spec("LSTM"), [x, CONT], dtype=numpy.float32)
    layer.forward(bottom, top)
    expected, h_last, c_last = lstm_loop(x, CONT, *weights(layer))
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-6)
    # Caffe copies h_T, c_T into h_0, c_0 before each forward: cont 1 at t = 0 continues the batch
    bottom[1].data[...] = numpy.ones((T, N))
    layer.forward(bottom, top)
    expected2, _, _ = lstm_loop(x, numpy.ones((T, N)), *weights(layer), h0=h_last, c0=c_last)
    numpy.testing.assert_allclose(top[0].data, expected2, rtol=1e-5, atol=1e-6)
    assert numpy.abs(expected2 - lstm_loop(x, numpy.ones((T, N)), *weights(layer))[0]).max() > 1e-3


def test_a_new_batch_size_keeps_caffes_blob_memory_for_the_carried_state():
    """N shrinks: Caffe's h_0/c_0 blobs keep their memory, so the first N*H carried values go
    on; N grows past it: fresh (zero) blobs."""
    x = normal(T, N, D)
    layer, bottom, top = make_layer(spec("LSTM"), [x, CONT], dtype=numpy.float32)
    layer.forward(bottom, top)
    _, h_last, c_last = lstm_loop(x, CONT, *weights(layer))
    for streams, h0, c0 in ((1, h_last[:1], c_last[:1]), (N + 1, None, None)):
        x2, cont2 = normal(T, streams, D), numpy.ones((T, streams), numpy.float32)
        bottom[0].reshape(x2.shape)
        bottom[1].reshape(cont2.shape)
        bottom[0].data[...], bottom[1].data[...] = x2, cont2
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
        expected = lstm_loop(x2, cont2, *weights(layer), h0=h0, c0=c0)[0]
        numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-6)


def test_lstm_with_static_input_and_exposed_hidden_state_equals_the_loop():
    x, static, h0, c0 = normal(T, N, D), normal(N, 2), normal(1, N, H), normal(1, N, H)
    cont = numpy.ones((T, N), numpy.float32)
    layer, bottom, top = make_layer(spec("LSTM", "expose_hidden: true"), [x, cont, static, h0, c0], num_tops=3,
                                    dtype=numpy.float32)
    assert [b.shape for b in layer.blobs] == [(4 * H, D), (4 * H,), (4 * H, 2), (4 * H, H)]
    layer.forward(bottom, top)
    w_xc, b_c, w_static, w_hc = weights(layer)
    expected, h_last, c_last = lstm_loop(x, cont, w_xc, b_c, w_hc, h0[0], c0[0], static, w_static)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(top[1].data[0], h_last, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(top[2].data[0], c_last, rtol=1e-5, atol=1e-6)


def test_lstm_equals_pytorch_with_the_gate_rows_permuted():
    torch = pytest.importorskip("torch")
    x = normal(T, N, D)
    cont = numpy.ones((T, N), numpy.float32)
    cont[0] = 0
    layer, bottom, top = make_layer(spec("LSTM"), [x, cont], dtype=numpy.float32)
    layer.forward(bottom, top)
    w_xc, b_c, w_hc = (b.data for b in layer.blobs)
    order = numpy.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]  # Caffe's i, f, o, g -> PyTorch's i, f, g, o
    lstm = torch.nn.LSTM(D, H)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(w_xc[order].copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(w_hc[order].copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b_c[order].copy()))
        lstm.bias_hh_l0.zero_()
        expected, _ = lstm(torch.from_numpy(x))
    numpy.testing.assert_allclose(top[0].data, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_rnn_forward_equals_the_loop_with_and_without_static_input():
    x, static = normal(T, N, D), normal(N, 2)
    layer, bottom, top = make_layer(spec("RNN"), [x, CONT], dtype=numpy.float32)
    assert [b.shape for b in layer.blobs] == [(H, D), (H,), (H, H), (H, H), (H,)]
    layer.forward(bottom, top)
    numpy.testing.assert_allclose(top[0].data, rnn_loop(x, CONT, *weights(layer))[0], rtol=1e-5, atol=1e-6)
    layer, bottom, top = make_layer(spec("RNN", "expose_hidden: true"), [x, CONT, static, normal(1, N, H)],
                                    num_tops=2, dtype=numpy.float32)
    assert [b.shape for b in layer.blobs] == [(H, D), (H,), (H, 2), (H, H), (H, H), (H,)]
    layer.forward(bottom, top)
    w_xh, b_h, w_static, w_hh, w_ho, b_o = weights(layer)
    expected, h_last = rnn_loop(x, CONT, w_xh, b_h, w_hh, w_ho, b_o, bottom[3].data[0], static, w_static)
    numpy.testing.assert_allclose(top[0].data, expected, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(top[1].data[0], h_last, rtol=1e-5, atol=1e-6)


# -- bit for bit against Caffe's unrolled net, built here from the engine's own layers ----------------
def input_layer(static):
    """x, cont, target (and x_static) of the nets below."""
    tops = 'top: "x" top: "cont" top: "target"' + (' top: "x_static"' if static else "")
    shapes = f"shape {{ dim: {T} dim: {N} dim: {D} }} shape {{ dim: {T} dim: {N} }} shape {{ dim: {T} dim: {N} dim: {H} }}"
    if static:
        shapes += f" shape {{ dim: {N} dim: 2 }}"
    return f'layer {{ name: "input" type: "Input" {tops} input_param {{ {shapes} }} }}'


def unrolled_text(kind, static):
    """The net Caffe's FillUnrolledNet builds (lstm_layer.cpp / rnn_layer.cpp), as prototxt, with a
    loss on its output; weights shared by param name."""
    gates = 4 * H if kind == "LSTM" else H
    w_x, b_x, w_s, w_h = ("W_xc", "b_c", "W_xc_static", "W_hc") if kind == "LSTM" else \
        ("W_xh", "b_h", "W_xh_static", "W_hh")
    out = "h" if kind == "LSTM" else "o"
    static_bottom = ' bottom: "W_x_s"' if static else ""
    lines = [input_layer(static),
             f'layer {{ name: "state" type: "Input" top: "c_0" top: "h_0" input_param {{ shape {{ dim: 1 dim: {N} '
             f'dim: {H} }} shape {{ dim: 1 dim: {N} dim: {H} }} }} }}',
             'layer { name: "cont_slice" type: "Slice" bottom: "cont" '
             + " ".join(f'top: "cont_{t}"' for t in range(1, T + 1)) + " slice_param { axis: 0 } }",
             f'layer {{ name: "x_transform" type: "InnerProduct" bottom: "x" top: "W_x_x" param {{ name: "{w_x}" }} '
             f'param {{ name: "{b_x}" }} propagate_down: true inner_product_param {{ num_output: {gates} axis: 2 }} }}']
    if static:
        lines += [f'layer {{ name: "x_static_transform" type: "InnerProduct" bottom: "x_static" top: "W_x_s_pre" '
                  f'param {{ name: "{w_s}" }} propagate_down: true inner_product_param {{ num_output: {gates} '
                  f'bias_term: false }} }}',
                  f'layer {{ name: "static_reshape" type: "Reshape" bottom: "W_x_s_pre" top: "W_x_s" '
                  f'reshape_param {{ shape {{ dim: 1 dim: -1 dim: {gates} }} }} }}']
    lines.append('layer { name: "x_slice" type: "Slice" bottom: "W_x_x" '
                 + " ".join(f'top: "W_x_x_{t}"' for t in range(1, T + 1)) + " slice_param { axis: 0 } }")
    for t in range(1, T + 1):
        lines += [f'layer {{ name: "h_conted_{t - 1}" type: "Scale" bottom: "h_{t - 1}" bottom: "cont_{t}" '
                  f'top: "h_conted_{t - 1}" scale_param {{ axis: 0 }} }}',
                  f'layer {{ name: "transform_{t}" type: "InnerProduct" bottom: "h_conted_{t - 1}" '
                  f'top: "W_h_h_{t - 1}" param {{ name: "{w_h}" }} '
                  f'inner_product_param {{ num_output: {gates} axis: 2 bias_term: false }} }}',
                  f'layer {{ name: "sum_{t}" type: "Eltwise" bottom: "W_h_h_{t - 1}" bottom: "W_x_x_{t}"'
                  f'{static_bottom} top: "sum_{t}" }}']
        if kind == "LSTM":
            lines.append(f'layer {{ name: "unit_{t}" type: "LSTMUnit" bottom: "c_{t - 1}" bottom: "sum_{t}" '
                         f'bottom: "cont_{t}" top: "c_{t}" top: "h_{t}" }}')
        else:
            lines += [f'layer {{ name: "h_neuron_{t}" type: "TanH" bottom: "sum_{t}" top: "h_{t}" }}',
                      f'layer {{ name: "W_ho_h_{t}" type: "InnerProduct" bottom: "h_{t}" top: "W_ho_h_{t}" '
                      f'param {{ name: "W_ho" }} param {{ name: "b_o" }} inner_product_param {{ num_output: {H} '
                      f'axis: 2 }} }}',
                      f'layer {{ name: "o_neuron_{t}" type: "TanH" bottom: "W_ho_h_{t}" top: "o_{t}" }}']
    if kind == "LSTM":
        lines += [f'layer {{ name: "c_T_copy" type: "Split" bottom: "c_{T}" top: "c_T" }}',
                  'layer { name: "silence" type: "Silence" bottom: "c_T" }']
    lines.append('layer { name: "concat" type: "Concat" '
                 + " ".join(f'bottom: "{out}_{t}"' for t in range(1, T + 1))
                 + f' top: "{out}" concat_param {{ axis: 0 }} }}')
    lines.append(f'layer {{ name: "loss" type: "EuclideanLoss" bottom: "{out}" bottom: "target" top: "loss" }}')
    return "\n".join(lines)


def layer_text(kind, static):
    static_bottom = ' bottom: "x_static"' if static else ""
    return "\n".join([
        "force_backward: true", input_layer(static),
        f'layer {{ {spec(kind)} bottom: "x" bottom: "cont"{static_bottom} top: "out" }}',
        'layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }'])


@pytest.mark.parametrize("kind, static", [("LSTM", False), ("LSTM", True), ("RNN", False), ("RNN", True)])
def test_the_layer_equals_caffes_unrolled_net_bit_for_bit(kind, static):
    """Same weights and inputs: the output, every parameter diff and the input diffs are
    the same bits as the unrolled net's (the engine's InnerProduct, Scale, Eltwise, Split,
    LSTMUnit/TanH and Concat layers, run by the net in Caffe's order)."""
    rng.set_seed(2)
    mine = engine.Net(layer_text(kind, static), engine.TRAIN)
    unrolled = engine.Net(unrolled_text(kind, static), engine.TRAIN)
    owners = ["x_transform", "x_transform"] + (["x_static_transform"] if static else []) + ["transform_1"]
    indices = [0, 1] + ([0] if static else []) + [0]
    if kind == "RNN":
        owners, indices = owners + ["W_ho_h_1", "W_ho_h_1"], indices + [0, 1]
    for blob, owner, j in zip(mine.params[kind.lower()], owners, indices):
        unrolled.params[owner][j].data[...] = blob.data
    inputs = {"x": normal(T, N, D), "cont": CONT, "target": normal(T, N, H)}
    if static:
        inputs["x_static"] = normal(N, 2)
    for net in (mine, unrolled):
        for name, values in inputs.items():
            net.blobs[name].data[...] = values
        net.forward()
        net.clear_param_diffs()
        net.backward()
    out = "h" if kind == "LSTM" else "o"
    numpy.testing.assert_array_equal(mine.blobs["out"].data, unrolled.blobs[out].data)
    for blob, owner, j in zip(mine.params[kind.lower()], owners, indices):
        numpy.testing.assert_array_equal(blob.diff, unrolled.params[owner][j].diff, err_msg=f"{owner} {j}")
    for name in ["x"] + (["x_static"] if static else []):
        numpy.testing.assert_array_equal(mine.blobs[name].diff, unrolled.blobs[name].diff, err_msg=name)
    assert numpy.abs(mine.blobs["x"].diff).max() > 0


# -- Caffe's filler order ------------------------------------------------------------------------
def test_fillers_draw_from_caffes_stream_in_the_unrolled_nets_order():
    """Every timestep's InnerProduct fills its copy of a shared weight before the unrolled
    net shares it: the stream moves on T times for W_hc (RNN: W_hh, W_ho, b_o per step)."""
    uniform = 'weight_filler { type: "uniform" min: -0.5 max: 0.5 } bias_filler { type: "uniform" min: 0 max: 1 }'
    for kind, shapes, per_step in (("LSTM", [(4 * H, D), (4 * H,), (4 * H, H)], 1),
                                   ("RNN", [(H, D), (H,), (H, H), (H, H), (H,)], 3)):
        rng.set_seed(11)
        layer = make_layer(f'type: "{kind}" recurrent_param {{ num_output: {H} {uniform} }}',
                           [normal(T, N, D), CONT], dtype=numpy.float32)[0]
        after = rng.caffe_stream().uniform(5, 0, 1)
        stream = CaffeStream(11)
        low_high = [(-0.5, 0.5) if len(s) == 2 else (0, 1) for s in shapes]
        expected = [stream.uniform(int(numpy.prod(s)), *lh).reshape(s) for s, lh in zip(shapes, low_high)]
        for _ in range(T - 1):  # the discarded copies of the shared weights
            for s, lh in list(zip(shapes, low_high))[-per_step:]:
                stream.uniform(int(numpy.prod(s)), *lh)
        for mine, theirs in zip(layer.blobs, expected):
            numpy.testing.assert_array_equal(mine.data, theirs)
        numpy.testing.assert_array_equal(after, stream.uniform(5, 0, 1))


# -- a net that trains, snapshots and saves ---------------------------------------------------------
def lstm_net(source):
    return f"""
name: "seq"
layer {{ name: "data" type: "HDF5Data" top: "x" top: "cont" top: "target" hdf5_data_param {{ source: "{source}"
        batch_size: {T} }} }}
layer {{ name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
        recurrent_param {{ num_output: {H} weight_filler {{ type: "uniform" min: -0.4 max: 0.4 }}
                          bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "out" type: "InnerProduct" bottom: "h" top: "y"
        inner_product_param {{ num_output: 2 axis: 2 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }}
"""


def write_sequences(tmp_path):
    rows = 4 * T  # four batches of T timesteps
    x = numpy.random.default_rng(5).normal(size=(rows, N, D)).astype(numpy.float32)
    cont = numpy.ones((rows, N), numpy.float32)
    cont[::T] = 0  # every batch starts its sequences
    target = numpy.tanh(numpy.cumsum(x[..., :2], axis=0)).astype(numpy.float32)
    path = tmp_path / "seq.h5"
    with h5py.File(path, "w") as handle:
        handle["x"], handle["cont"], handle["target"] = x, cont, target
    source = tmp_path / "list.txt"
    source.write_text(f"{path}\n")
    return source


def test_a_net_with_an_lstm_trains_and_resumes_bit_exactly(tmp_path):
    text = lstm_net(write_sequences(tmp_path))
    fields = dict(base_lr=0.2, momentum=0.9, snapshot_prefix=str(tmp_path / "snap"))
    straight = solver_for(text, **fields)
    losses = [straight.step(1) for _ in range(16)]
    assert sum(losses[-4:]) < 0.75 * sum(losses[:4])  # the same four batches, an epoch apart
    expected = params_numpy(straight.net)

    first = solver_for(text, **fields)
    first.step(8)  # two epochs: each batch starts its sequences (cont 0), so no state is lost
    state = [p for p in first.snapshot() if "solverstate" in p][0]
    resumed = solver_for(text, **fields)
    resumed.restore(state)
    resumed.step(8)
    for mine, theirs in zip(params_numpy(resumed.net), expected):
        numpy.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("suffix", [".caffemodel", ".caffemodel.h5"])
def test_weights_round_trip_by_layer_name(tmp_path, suffix):
    text = lstm_net(write_sequences(tmp_path))
    solver = solver_for(text, random_seed=3)
    solver.step(2)
    path = tmp_path / f"w{suffix}"
    solver.net.save(str(path))
    other = solver_for(text, random_seed=4).net
    assert not numpy.array_equal(other.params["lstm"][0].data, solver.net.params["lstm"][0].data)
    other.copy_from(str(path))
    assert [b.shape for b in other.params["lstm"]] == [(4 * H, D), (4 * H,), (4 * H, H)]
    for mine, theirs in zip(params_numpy(other), params_numpy(solver.net)):
        numpy.testing.assert_array_equal(mine, theirs)


# -- errors --------------------------------------------------------------------------------------------
def test_caffes_checks_are_errors_naming_the_layer():
    with pytest.raises(NetDefinitionError, match="num_output must be positive"):
        make_layer('name: "l" type: "LSTM"', [normal(T, N, D), CONT])
    with pytest.raises(ShapeError, match=r"'l' \(RNN\).*cont"):
        make_layer('name: "l" type: "RNN" recurrent_param { num_output: 2 }', [normal(T, N, D), numpy.ones((T, 3))])
    with pytest.raises(NetDefinitionError, match="takes 4 or 5 bottom"):
        make_layer(spec("LSTM", "expose_hidden: true"), [normal(T, N, D), CONT], num_tops=3)
    with pytest.raises(NetDefinitionError, match="produces 2 top"):
        make_layer(spec("RNN", "expose_hidden: true"), [normal(T, N, D), CONT, normal(1, N, H)])
    with pytest.raises(ShapeError, match="third axis"):
        make_layer(spec("LSTM"), [normal(T, N), CONT])
    layer, bottom, top = make_layer(spec("LSTM"), [normal(T, N, D), CONT])
    bottom[0].reshape(T + 1, N, D)
    with pytest.raises(ShapeError, match="number of timesteps changed"):
        layer.reshape(bottom, top)


# -- the strict device stand-in ---------------------------------------------------------------------------
DEVICE_CASES = [
    ("LSTMUnit", 'type: "LSTMUnit"', [normal(1, N, H), normal(1, N, 4 * H), numpy.array([[1, 0]], numpy.float32)],
     [0, 1], 2),
    ("LSTM", spec("LSTM"), [normal(T, N, D), CONT], [0], 1),
    ("LSTM", spec("LSTM"), [normal(T, N, D), CONT, normal(N, 2)], [0, 2], 1),
    ("RNN", spec("RNN"), [normal(T, N, D), CONT, normal(N, 2)], [0, 2], 1),
    ("RNN", spec("RNN", "expose_hidden: true"), [normal(T, N, D), numpy.ones((T, N), numpy.float32),
                                                 normal(1, N, H)], [0], 2),
]


def run_twice(layer, bottom, top, grads, device):
    """Two forwards (the second continues the first's state) and one backward with ramp top diffs."""
    for _ in range(2):
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
    for blob in top:
        ramp = numpy.linspace(-1, 1, blob.count()).reshape(blob.shape).astype(numpy.float32)
        blob.diff[...] = backend.to_device(ramp, device)
    layer.backward(top, [k in grads for k in range(len(bottom))], bottom)
    found = [b.data for b in top] + [bottom[k].diff for k in grads] + [b.diff for b in layer.blobs]
    return [backend.to_numpy(a) for a in found]


@pytest.mark.gpu
@pytest.mark.parametrize("kind, text, bottoms, grads, tops", DEVICE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DEVICE_CASES)])
def test_recurrent_layers_on_the_device_equal_numpy(gpu_kind, kind, text, bottoms, grads, tops):
    rng.set_seed(3)
    cpu = make_layer(text, bottoms, num_tops=tops, dtype=numpy.float32)
    expected = run_twice(*cpu, grads, "cpu")
    rng.set_seed(3)
    layer, bottom, top = make_layer(text, bottoms, num_tops=tops, dtype=numpy.float32)
    layer.device = "gpu"
    for blob in bottom + top + layer.blobs:
        blob.to("gpu")
    found = run_twice(layer, bottom, top, grads, "gpu")
    assert all(backend.device_of(b.data) == "gpu" for b in top)
    for mine, theirs in zip(found, expected):
        if gpu_kind == "strict":
            numpy.testing.assert_array_equal(mine, theirs, err_msg=kind)
        else:
            numpy.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=2e-6, err_msg=kind)


def test_the_engine_lists_the_recurrent_types():
    assert {"LSTM", "RNN", "LSTMUnit"} <= set(engine.supported_types())
