"""The inspector on every layer (issue 13): the Qt-free LayerFrame holds what the engine
computed (checked against independent im2col arithmetic), per layer type the maps that
exist, the tiles hold exactly the blobs' data; the window shows conv1's W tiles, dW,
feature maps and the im2col formula with live shapes after a click in the graph."""
from __future__ import annotations

import numpy
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

import engine
from engine import resources
from gui.model import frames
from gui.model.param_layer_frames import filter_tiles, layer_frame, map_tiles, mosaic

LENET = resources.examples()["digits_lenet"]

#: Every parameter layer type the issue names, plus a parameter-free and an in-place layer.
ZOO = """
type: "SGD" base_lr: 0.01 momentum: 0.9 random_seed: 4
net_param {
  layer { name: "data" type: "DummyData" top: "data" top: "target"
          dummy_data_param { shape { dim: 3 dim: 2 dim: 5 dim: 5 } shape { dim: 3 dim: 4 dim: 5 dim: 5 }
                             data_filler { type: "gaussian" std: 1 } } }
  layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
          convolution_param { num_output: 4 kernel_size: 3 pad: 1 dilation: 1
                              weight_filler { type: "gaussian" std: 0.3 } } }
  layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "bn" }
  layer { name: "scale" type: "Scale" bottom: "bn" top: "scale" scale_param { bias_term: true } }
  layer { name: "prelu" type: "PReLU" bottom: "scale" top: "prelu" }
  layer { name: "relu" type: "ReLU" bottom: "prelu" top: "prelu" }
  layer { name: "pool" type: "Pooling" bottom: "prelu" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 1 } }
  layer { name: "deconv" type: "Deconvolution" bottom: "pool" top: "deconv"
          convolution_param { num_output: 4 kernel_size: 2 stride: 1 weight_filler { type: "gaussian" std: 0.3 } } }
  layer { name: "loss" type: "EuclideanLoss" bottom: "deconv" bottom: "target" top: "loss" }
}
"""


@pytest.fixture(scope="module")
def lenet():
    solver = engine.get_solver(LENET)
    frames.prepare_for_inspection(solver)
    solver.step(2)
    return solver


@pytest.fixture(scope="module")
def zoo():
    solver = engine.get_solver(ZOO)
    frames.prepare_for_inspection(solver)
    solver.step(2)
    return solver


def im2col_f64(image: numpy.ndarray, k: int, pad: int) -> numpy.ndarray:
    """Caffe's col buffer of one C×H×W image (stride 1), by plain loops in float64."""
    c, h, w = image.shape
    padded = numpy.zeros((c, h + 2 * pad, w + 2 * pad))
    padded[:, pad:pad + h, pad:pad + w] = image
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    col = numpy.zeros((c * k * k, ho * wo))
    for ch in range(c):
        for i in range(k):
            for j in range(k):
                for y in range(ho):
                    for x in range(wo):
                        col[(ch * k + i) * k + j, y * wo + x] = padded[ch, y + i, x + j]
    return col


# ------------------------------------------------------------------ Qt-free model
def test_conv_frame_is_what_the_engine_computed_and_dw_is_delta_times_col_transposed(lenet):
    net = lenet.net
    layer = net.layers[net.layer_index("conv1")]
    frame = layer_frame(lenet, "conv1")
    assert [p.name for p in frame.params] == ["W", "b"]
    numpy.testing.assert_array_equal(frame.params[0].data, layer.blobs[0].data)
    numpy.testing.assert_array_equal(frame.output, net.blobs["conv1"].data)
    numpy.testing.assert_array_equal(frame.input, net.blobs["data"].data)
    assert frame.delta.shape == net.blobs["conv1"].shape and frame.delta_down is None  # data needs no δ
    assert "No gradient flows" in frame.missing["delta_down"]
    # dW = Σₙ δ[n]·col[n]ᵀ and db = Σ δ, from the frame's own input and δ, in float64
    grad = numpy.zeros((8, 9))
    for n in range(frame.input.shape[0]):
        grad += frame.delta[n].reshape(8, -1).astype(numpy.float64) @ im2col_f64(frame.input[n], 3, 1).T
    numpy.testing.assert_allclose(frame.params[0].grad.reshape(8, 9), grad, rtol=1e-4, atol=1e-6)
    numpy.testing.assert_allclose(frame.params[1].grad, frame.delta.sum(axis=(0, 2, 3), dtype=numpy.float64),
                                  rtol=1e-4, atol=1e-6)
    assert frame.params[0].update is not None  # V, after the update stage


def test_im2col_product_shapes_are_the_engines_col_buffer(lenet):
    net = lenet.net
    for name in ("conv1", "conv2"):
        layer = net.layers[net.layer_index(name)]
        frame = layer_frame(lenet, name)
        rows = layer.channels * layer.kernel[0] * layer.kernel[1]
        pixels = layer.output_shape[0] * layer.output_shape[1]
        col = layer._cols[0]  # the engine's buffer: C×kh×kw×Ho×Wo × images, all images side by side
        assert frame.col_shape == (rows, pixels) == (int(numpy.prod(col.shape[:3])), int(numpy.prod(col.shape[3:5])))
        assert col.shape[-1] == layer.num
        m, k = layer.num_output, rows
        texts = dict(frame.products)
        dw = next(shapes for text, shapes in texts.items() if text.startswith("dW"))
        assert dw == f"[{m}×{k}] = [{m}×{pixels}]·[{pixels}×{k}]"
        down = next(shapes for text, shapes in texts.items() if text.startswith("δ_down"))
        assert down.startswith(f"[{k}×{pixels}] = [{k}×{m}]·[{m}×{pixels}]")
        assert any(text.startswith("db") for text in texts)


def test_which_maps_each_layer_type_has(zoo):
    net = zoo.net
    names = {name: [p.name for p in layer_frame(zoo, name).params]
             for name in ("conv", "bn", "scale", "prelu", "relu", "pool", "deconv")}
    assert names == {"conv": ["W", "b"], "bn": ["mean (running sum)", "variance (running sum)", "scale factor"],
                     "scale": ["scale γ", "bias β"], "prelu": ["slope a"], "relu": [], "pool": [],
                     "deconv": ["W", "b"]}
    bn = layer_frame(zoo, "bn")
    assert all(p.statistics and p.lr_mult == 0 for p in bn.params)
    assert any("statistics, not learned" in note for note in bn.notes)
    for name in ("relu", "pool"):
        frame = layer_frame(zoo, name)
        assert any("has no parameters" in note for note in frame.notes)
        assert frame.output is not None and frame.delta_down is not None
    relu = layer_frame(zoo, "relu")
    assert relu.in_place and relu.input is None and "in place" in relu.missing["input"]
    prelu = layer_frame(zoo, "prelu")
    assert any("rewritten in place by relu" in note for note in prelu.notes)
    for name in ("scale", "prelu", "deconv"):
        frame = layer_frame(zoo, name)
        layer = net.layers[net.layer_index(name)]
        for p, blob in zip(frame.params, layer.blobs, strict=True):
            numpy.testing.assert_array_equal(p.data, blob.data)
            assert p.grad is not None and p.grad.shape == blob.shape
    deconv = net.layers[net.layer_index("deconv")]
    frame = layer_frame(zoo, "deconv")
    k = deconv.num_output * 2 * 2
    hw = deconv.input_shape[0] * deconv.input_shape[1]
    assert dict(frame.products)[next(t for t in dict(frame.products) if t.startswith("dW"))] == \
        f"[{deconv.channels}×{k}] = [{deconv.channels}×{hw}]·[{hw}×{k}]"


def test_mid_iteration_a_layer_before_its_backward_shows_no_gradient(lenet):
    solver = engine.get_solver(LENET)
    frames.prepare_for_inspection(solver)
    events = solver.iteration_events()
    for event in events:
        if event.kind == "backward" and event.layer == "ip1":
            break
    views = frames.inner_product_views(solver, ["conv1", "pool2", "loss"], update_applied=False, last_event=event)
    for below in ("conv1", "pool2"):  # their backward comes after ip1's
        assert views[below].pending_backward and views[below].delta is None
        assert "step on" in views[below].missing["delta"]
    assert views["conv1"].params[0].grad is None
    assert not views["loss"].pending_backward and views["loss"].delta_down is not None
    events.close()


def test_tiles_hold_exactly_the_blobs_data(lenet):
    weights = lenet.net.params["conv2"][0].data
    tiles = filter_tiles(weights)
    laid = mosaic(tiles)
    n, c, h, w = tiles.shape
    assert (n, c) == (16, 8)
    for k in range(n):
        for ch in range(c):
            top, left = laid.origin(k, ch)
            numpy.testing.assert_array_equal(laid.image[top:top + h, left:left + w], weights[k, ch])
            assert laid.locate(top + h - 1, left + w - 1) == (k, ch, h - 1, w - 1)
    assert numpy.isnan(laid.image).sum() == laid.image.size - tiles.size  # only separators are NaN
    maps = map_tiles(lenet.net.blobs["conv1"].data[5])
    assert maps.shape == (8, 1, 8, 8)
    numpy.testing.assert_array_equal(maps[:, 0], lenet.net.blobs["conv1"].data[5])


# ----------------------------------------------------------------------- the window
@pytest.fixture(scope="module")
def window():
    from tests.gui.windows import module_window
    with module_window() as w:
        assert w.open_path(LENET)
        w.step_iterations(3)
        assert w.wait_until_idle(timeout=60)
        yield w


def click_node(window, qtbot, name: str) -> None:
    window.graph.centerOn(window.graph.node_items[name])
    qtbot.mouseClick(window.graph.viewport(), Qt.MouseButton.LeftButton, pos=window.graph.node_center(name))
    assert window.wait_until_idle(timeout=30)
    QApplication.processEvents()


def test_clicking_conv1_shows_w_tiles_dw_maps_and_the_im2col_formula(window, qtbot):
    click_node(window, qtbot, "conv1")
    page = window.layer_inspector
    assert window.inspector_pages.currentWidget() is page
    net = window.session.solver.net
    layer = net.layers[net.layer_index("conv1")]
    w_view, dw_view, v_view = page.param_views()["W"]
    numpy.testing.assert_array_equal(w_view.tiles(), layer.blobs[0].data)
    assert not dw_view.is_placeholder() and not v_view.is_placeholder()
    numpy.testing.assert_array_equal(dw_view.tiles(), window.session.solver.raw_gradients[0])
    out = page.feature_views["output"].tiles()
    numpy.testing.assert_array_equal(out[:, 0], net.blobs["conv1"].data[0])
    assert not page.feature_views["delta"].is_placeholder()
    text = page.formula.text()
    pixels = layer.output_shape[0] * layer.output_shape[1]
    assert f"[{layer.num_output}×{layer.kernel_dim}] = [{layer.num_output}×{pixels}]·[{pixels}×{layer.kernel_dim}]" in text
    assert "im2col" in text and "col2im" in text


def test_the_sample_follows_the_arrow_keys(window, qtbot):
    window.select_layer("conv1")
    page = window.layer_inspector
    page.set_sample(0)
    qtbot.keyClick(page, Qt.Key.Key_Right)
    assert page.sample() == 1 and page.sample_box.value() == 1
    net = window.session.solver.net
    numpy.testing.assert_array_equal(page.feature_views["input"].tiles()[:, 0], net.blobs["data"].data[1])
    qtbot.keyClick(page, Qt.Key.Key_Left)
    assert page.sample() == 0


def test_every_selection_changes_the_inspector(window):
    window.select_layer("pool1")
    page = window.layer_inspector
    assert "has no parameters" in page.notes.text() and page.notes.isVisibleTo(window)
    assert page.param_views() == {}
    window.select_layer("ip1")
    assert window.inspector_pages.currentWidget() is window.inspector
    assert window.inspector.selected_layer() == "ip1"
    window.select_layer("conv2")
    assert window.inspector_pages.currentWidget() is page and page.frame().layer == "conv2"


def test_tiles_are_laid_out_to_fill_the_area():
    from gui.model.param_layer_frames import best_columns
    assert best_columns((8, 1, 8, 8), 800, 100) == 8  # a wide strip: one row
    assert best_columns((8, 1, 8, 8), 100, 800) == 1  # a tall strip: one column
    assert best_columns((16, 1, 8, 8), 400, 400) == 4


@pytest.mark.gpu
def test_frames_of_device_arrays_are_host_copies():
    from engine import backend
    from gui.model.data_batch import data_batch
    solver = engine.get_solver(LENET, device="gpu")
    frames.prepare_for_inspection(solver)
    solver.step(1)
    frame = layer_frame(solver, "conv2")
    arrays = [frame.input, frame.output, frame.delta, frame.delta_down] + \
        [a for p in frame.params for a in (p.data, p.grad, p.update)]
    assert all(type(a) is numpy.ndarray for a in arrays)
    numpy.testing.assert_array_equal(frame.params[0].data, backend.to_numpy(solver.net.params["conv2"][0].data))
    batch = data_batch(solver.net, "data")
    assert type(batch.images) is numpy.ndarray and type(batch.labels) is numpy.ndarray
    numpy.testing.assert_array_equal(batch.images, backend.to_numpy(solver.net.blobs["data"].data))


LSTM_SOLVER = """type: "SGD" base_lr: 0.1 random_seed: 1
net_param {
 layer { name: "x" type: "DummyData" top: "x" top: "cont" top: "t"
   dummy_data_param { shape { dim: 3 dim: 2 dim: 4 } shape { dim: 3 dim: 2 } shape { dim: 3 dim: 2 dim: 5 }
     data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
     data_filler { type: "gaussian" std: 1 } } }
 layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
         recurrent_param { num_output: 5 weight_filler { type: "uniform" min: -0.1 max: 0.1 } } }
 layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "t" top: "loss" } }"""


def test_an_lstm_shows_its_named_weight_matrices_whole(qtbot):
    from gui.views.param_layer import LayerInspector
    solver = engine.get_solver(LSTM_SOLVER)
    frames.prepare_for_inspection(solver)
    solver.step(2)
    frame = layer_frame(solver, "lstm")
    assert [p.name for p in frame.params] == ["W_xc", "b_c", "W_hc"]
    page = LayerInspector()
    qtbot.addWidget(page)
    page.set_frame(frame)
    value, grad, update = page.param_views()["W_hc"]
    w_hc = solver.net.params["lstm"][2]
    numpy.testing.assert_array_equal(value.tiles()[0, 0], w_hc.data)  # one 20×5 matrix, as stored
    numpy.testing.assert_array_equal(update.tiles()[0, 0], w_hc.diff)  # after a step: the update applied
