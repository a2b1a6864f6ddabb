"""InspectorPanel on a real solver: the maps are the engine's arrays, and they fit the seed's products."""
from __future__ import annotations

import os

import numpy
import pytest

from gui.model import frames
from gui.views.inspector import GRID_MAPS, MAP_POSITIONS, InspectorPanel

LAYERS = ("ip1", "ip2", "ip3")


@pytest.fixture(scope="module")
def shared_panel(qapp):
    """One panel for the module (building ~20 plots is the slow part); each test resets its modes."""
    widget = InspectorPanel()
    widget.resize(1400, 800)
    widget.show()
    yield widget
    widget.close()
    widget.deleteLater()


@pytest.fixture
def panel(shared_panel, qtbot):
    shared_panel.set_grid_mode(False)
    shared_panel.set_locked_range(False)
    qtbot.waitExposed(shared_panel)
    return shared_panel


def _show(panel, solver, loss=float("nan")):
    panel.set_views(frames.inner_product_views(solver), frames.solver_info(solver, loss))


def _engine_arrays(solver, name):
    """The engine's own arrays for layer ``name`` (read directly, not through the snapshot)."""
    net = solver.net
    i = net.layer_index(name)
    weight, bias = net.layers[i].blobs
    k = net.learnable_params.index(weight)
    kb = net.learnable_params.index(bias)
    return {"W": weight.data, "db": solver.raw_gradients[kb], "dW": solver.raw_gradients[k],
            "update": weight.diff, "a": net.bottoms_of(i)[0].data,
            "delta": net.captured[name]["top_diff"]}


def test_images_equal_the_engine_arrays(panel, spiral_solver):
    loss = spiral_solver.step(3)
    _show(panel, spiral_solver, loss)
    for name in LAYERS:
        panel.select_layer(name)
        assert panel.selected_layer() == name
        for which, expected in _engine_arrays(spiral_solver, name).items():
            image = panel.heatmap(name, which).image_array()
            assert numpy.array_equal(image, numpy.asarray(expected).reshape(image.shape)), (name, which)
            lo, hi = panel.heatmap(name, which).levels()
            assert lo == -hi and hi == pytest.approx(float(numpy.abs(image).max()))


def test_maps_satisfy_the_three_products(panel, spiral_solver):
    """dW = δᵀ·a, db = δᵀ·1 and δ_down = δ·W (W before this iteration's update: W + V)."""
    spiral_solver.step(2)
    _show(panel, spiral_solver)
    panel.select_layer("ip2")
    m = {which: panel.heatmap("ip2", which).image_array().astype(numpy.float64) for which in MAP_POSITIONS}
    numpy.testing.assert_allclose(m["dW"], m["delta"].T @ m["a"], rtol=1e-4, atol=1e-7)
    numpy.testing.assert_allclose(m["db"], m["delta"].sum(axis=0), rtol=1e-4, atol=1e-7)
    w_used = m["W"] + m["update"]
    numpy.testing.assert_allclose(m["delta_down"], m["delta"] @ w_used, rtol=1e-4, atol=1e-6)
    # Shapes: W N×K, δ M×N, a M×K for ip2 (16 outputs, 16 inputs, batch 32).
    assert m["W"].shape == (16, 16) and m["delta"].shape == (32, 16) and m["a"].shape == (32, 16)


def test_placeholders_before_backward_and_for_the_data_layer(panel, spiral_solver):
    _show(panel, spiral_solver)  # nothing stepped: no gradient, no update yet
    panel.select_layer("ip2")
    assert panel.heatmap("ip2", "dW").is_placeholder()
    assert "first backward" in panel.heatmap("ip2", "dW").placeholder_text()
    assert "update stage" in panel.heatmap("ip2", "update").placeholder_text()
    assert not panel.heatmap("ip2", "W").is_placeholder()
    spiral_solver.step(1)
    _show(panel, spiral_solver)
    assert not panel.heatmap("ip2", "dW").is_placeholder()
    assert not panel.heatmap("ip2", "delta_down").is_placeholder()
    panel.select_layer("ip1")
    down = panel.heatmap("ip1", "delta_down")
    assert down.is_placeholder() and "No gradient flows into the data layer" in down.placeholder_text()


def test_labels_name_the_dimensions_and_hover_names_the_cell(panel, spiral_solver, qtbot):
    spiral_solver.step(1)
    _show(panel, spiral_solver)
    panel.select_layer("ip3")
    w = panel.heatmap("ip3", "W")
    assert w.axis_labels() == ("output (N_=3)", "input (K_=16)")
    assert panel.heatmap("ip3", "delta").axis_labels() == ("sample (M_=32)", "output (N_=3)")
    assert panel.heatmap("ip3", "a").axis_labels() == ("sample (M_=32)", "input (K_=16)")
    assert "weight from input 5 to output 2" in w.hover_text(2, 5)
    w.image_item().scene().sigMouseMoved.emit(w.cell_scene_pos(2, 5))
    assert "weight from input 5 to output 2" in w.hover_label_text()
    assert "δ of sample 3 at output 2" in panel.heatmap("ip3", "delta").hover_text(3, 2)
    assert "‖V‖/‖W‖" in w.stats_text()


def test_ratio_of_update_to_weights_matches_arithmetic(panel, spiral_solver):
    spiral_solver.step(2)
    _show(panel, spiral_solver)
    panel.select_layer("ip1")
    w = panel.heatmap("ip1", "W").image_array().astype(numpy.float64)
    v = panel.heatmap("ip1", "update").image_array().astype(numpy.float64)
    ratio = numpy.sqrt((v * v).sum()) / numpy.sqrt((w * w).sum())
    assert f"‖V‖/‖W‖ = {ratio:.4g}" in panel.heatmap("ip1", "W").stats_text()


def test_side_panel_shows_products_and_rule(panel, spiral_solver):
    spiral_solver.step(1)
    _show(panel, spiral_solver)
    panel.select_layer("ip2")
    text = panel.side_text()
    assert "dW [16×16] += δᵀ [16×32] · a [32×16]" in text
    assert "δ_down [32×16] = δ [32×16] · W [16×16]" in text
    assert "V ← 0.9·V + 0.1·(dW + 0.0001·W)" in text


def test_grid_mode_shows_every_layer(panel, spiral_solver, tmp_path):
    spiral_solver.step(2)
    panel.set_grid_mode(True)
    _show(panel, spiral_solver)
    assert panel.grid_mode()
    assert {name for name, _ in panel.visible_heatmaps()} == set(LAYERS)
    for name in LAYERS:
        arrays = _engine_arrays(spiral_solver, name)
        for which in GRID_MAPS:
            image = panel.heatmap(name, which).image_array()
            assert numpy.array_equal(image, numpy.asarray(arrays[which]).reshape(image.shape)), (name, which)
    exported = {os.path.basename(p) for p in panel.export_png(str(tmp_path))}
    assert exported == {f"{name}_{which}.png" for name in LAYERS for which in GRID_MAPS}
    panel.set_grid_mode(False)
    assert set(panel.visible_heatmaps()) == {(panel.selected_layer(), w) for w in MAP_POSITIONS}


def test_locked_range_keeps_levels_across_iterations(panel, spiral_solver):
    spiral_solver.step(1)
    _show(panel, spiral_solver)
    panel.select_layer("ip2")
    before = {w: panel.heatmap("ip2", w).levels() for w in ("W", "dW", "delta")}
    panel.set_locked_range(True)
    spiral_solver.step(5)
    _show(panel, spiral_solver)
    after = {w: panel.heatmap("ip2", w).levels() for w in ("W", "dW", "delta")}
    assert after == before
    panel.set_locked_range(False)
    _show(panel, spiral_solver)
    dW = panel.heatmap("ip2", "dW").image_array()
    assert panel.heatmap("ip2", "dW").levels()[1] == pytest.approx(float(numpy.abs(dW).max()))


def test_first_layer_is_selected_by_default(qtbot, spiral_solver):
    fresh = InspectorPanel()
    qtbot.addWidget(fresh)
    assert fresh.selected_layer() is None
    with qtbot.waitSignal(fresh.layerSelected) as blocker:
        _show(fresh, spiral_solver)
    assert blocker.args == ["ip1"] and fresh.selected_layer() == "ip1"


def test_layer_selected_signal_and_non_inner_product_names(panel, spiral_solver, qtbot):
    _show(panel, spiral_solver)
    panel.select_layer("ip1")
    with qtbot.waitSignal(panel.layerSelected) as blocker:
        panel._combo.setCurrentText("ip3")  # as a user picking from the list
    assert blocker.args == ["ip3"] and panel.selected_layer() == "ip3"
    panel.select_layer("relu1")  # not an InnerProduct layer: ignored
    assert panel.selected_layer() == "ip3"
    with pytest.raises(KeyError):
        panel.heatmap("ip1", "W")  # not on screen


def test_export_png_writes_one_file_per_map(panel, spiral_solver, tmp_path):
    spiral_solver.step(1)
    _show(panel, spiral_solver)
    panel.select_layer("ip1")
    paths = panel.export_png(str(tmp_path / "maps"))
    expected = {f"ip1_{w}.png" for w in MAP_POSITIONS if w != "delta_down"}  # δ_down is a placeholder here
    assert {os.path.basename(p) for p in paths} == expected
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path / "maps")) == sorted(expected)  # no temp files left


def test_big_inner_product_layer_updates(panel, big_solver):
    big_solver.step(1)
    _show(panel, big_solver)
    big_solver.step(1)
    views = frames.inner_product_views(big_solver)
    panel.set_views(views, frames.solver_info(big_solver))
    w = panel.heatmap("big", "W")
    assert w.image_array().shape == (1024, 1024)
    assert numpy.array_equal(w.image_array(), big_solver.net.params["big"][0].data)
    assert numpy.array_equal(panel.heatmap("big", "dW").image_array(), views["big"].dW)
    assert "No gradient flows" in panel.heatmap("big", "delta_down").placeholder_text()
    assert not panel.grab().isNull()


def test_step_through_shows_this_iterations_gradients(panel, spiral_solver):
    """Mid-iteration: a layer whose backward ran shows the fresh dW = δᵀ·a; one still waiting shows none."""
    spiral_solver.step(1)  # so that stale gradients of a previous iteration exist
    events = spiral_solver.iteration_events()
    net = spiral_solver.net
    ip2 = net.layer_index("ip2")
    for event in events:
        if event.kind == "backward" and event.layer_index == ip2:
            break
    views = frames.inner_product_views(spiral_solver, update_applied=False, last_event=event)
    panel.set_views(views, frames.solver_info(spiral_solver))
    panel.select_layer("ip2")
    delta = panel.heatmap("ip2", "delta").image_array().astype(numpy.float64)
    a = panel.heatmap("ip2", "a").image_array().astype(numpy.float64)
    numpy.testing.assert_allclose(panel.heatmap("ip2", "dW").image_array(), delta.T @ a, rtol=1e-4, atol=1e-7)
    assert "update stage" in panel.heatmap("ip2", "update").placeholder_text()
    panel.select_layer("ip1")  # below ip2: its backward comes later in this iteration
    assert "computed at ip1's backward" in panel.heatmap("ip1", "dW").placeholder_text()
    assert panel.heatmap("ip1", "delta").is_placeholder()
    for _ in events:  # finish the iteration: the full view is back
        pass
    _show(panel, spiral_solver)
    assert not panel.heatmap("ip1", "dW").is_placeholder()


def test_views_of_only_the_selected_layer_are_enough(panel, spiral_solver):
    spiral_solver.step(1)
    _show(panel, spiral_solver)  # the full dict: the panel learns the layer names
    panel.select_layer("ip2")
    assert panel.needed_layers() == ["ip2"]
    spiral_solver.step(1)
    panel.set_views(frames.inner_product_views(spiral_solver, ["ip2"]), frames.solver_info(spiral_solver))
    assert panel.layer_names() == list(LAYERS)
    assert numpy.array_equal(panel.heatmap("ip2", "W").image_array(), spiral_solver.net.params["ip2"][0].data)
    panel.select_layer("ip3")  # its arrays come with the next frame
    assert panel.heatmap("ip3", "W").is_placeholder()
    panel.set_views(frames.inner_product_views(spiral_solver, panel.needed_layers()),
                    frames.solver_info(spiral_solver))
    assert numpy.array_equal(panel.heatmap("ip3", "W").image_array(), spiral_solver.net.params["ip3"][0].data)
    panel.set_grid_mode(True)
    assert panel.needed_layers() is None


def test_transposed_weights_and_missing_bias(panel, transposed_solver):
    transposed_solver.step(1)
    _show(panel, transposed_solver)
    panel.select_layer("ipT")
    w = panel.heatmap("ipT", "W")
    W = transposed_solver.net.params["ipT"][0].data
    assert W.shape == (5, 3)  # K_ × N_
    assert numpy.array_equal(w.image_array(), W)
    assert w.axis_labels() == ("input (K_=5)", "output (N_=3)")
    assert "weight from input 4 to output 1" in w.hover_text(4, 1)
    assert "No bias" in panel.heatmap("ipT", "db").placeholder_text()
    m = {k: panel.heatmap("ipT", k).image_array().astype(numpy.float64) for k in ("dW", "delta", "a")}
    numpy.testing.assert_allclose(m["dW"], m["a"].T @ m["delta"], rtol=1e-4, atol=1e-7)  # aᵀ·δ when transposed


def test_a_net_without_inner_product_layers(panel, spiral_solver):
    _show(panel, spiral_solver)
    panel.set_views({}, frames.solver_info(spiral_solver))
    assert panel.selected_layer() is None and panel.layer_names() == []
    assert panel.visible_heatmaps() == {}
    assert all("no InnerProduct layer" in m.placeholder_text() for m in panel._maps.values())
    _show(panel, spiral_solver)  # opening a net with such layers again selects the first
    assert panel.selected_layer() == "ip1"
    assert not panel.heatmap("ip1", "W").is_placeholder()


def test_gradient_hovers_show_the_seed_formula_for_the_cell(qtbot):
    import engine
    from gui.model import frames
    from gui.views.inspector import InspectorPanel
    solver = engine.get_solver("resources/examples/spiral_mlp/solver.prototxt")
    frames.prepare_for_inspection(solver)
    solver.step(1)
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.set_views(frames.inner_product_views(solver), frames.solver_info(solver))
    panel.select_layer("ip2")
    assert "dW[3,7] = Σₘ δ[m,3]·a[m,7], m < M_=32" in panel.heatmap("ip2", "dW").hover_text(3, 7)
    assert "db[4] = Σₘ δ[m,4]" in panel.heatmap("ip2", "db").hover_text(4, 0)
    assert "δ_down[1,2] = Σₙ δ[1,n]·W[n,2], n < N_=16" in panel.heatmap("ip2", "delta_down").hover_text(1, 2)
