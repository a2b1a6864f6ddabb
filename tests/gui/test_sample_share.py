"""One sample's share of dW, db and δ_down: the shares are taken from the engine's own
arrays of that iteration and sum back to the engine's products (float64 sums, exact to
float32 rounding); the per-sample loss and confusion matrix agree with an independent
float64 softmax."""
from __future__ import annotations

import numpy
import pytest

from gui.model import frames
from gui.model import sample_share as share

EPS32 = float(numpy.finfo(numpy.float32).eps)


def _tolerance(terms: numpy.ndarray, axis: int = 0) -> numpy.ndarray:
    """Float32 rounding bound of a sum of ``terms``: K·eps·Σ|terms| (plus the final rounding)."""
    count = terms.shape[axis]
    return (count + 2) * EPS32 * numpy.abs(terms).sum(axis=axis) + 1e-30


def _stepped_views(solver, iterations: int = 3) -> dict:
    solver.step(iterations)
    return frames.inner_product_views(solver)


@pytest.mark.parametrize("layer", ["ip1", "ip2", "ip3"])
def test_shares_sum_to_the_engines_dW_db_and_delta_down(spiral_solver, layer):
    view = _stepped_views(spiral_solver)[layer]
    products = share.outer_products(view)  # (M, N, K)
    assert products.shape[0] == view.a.shape[0] == 32
    dW = numpy.asarray(view.dW, numpy.float64)
    assert numpy.all(numpy.abs(products.sum(axis=0) - dW) <= _tolerance(products))
    pieces = [share.sample_share(view, m) for m in range(products.shape[0])]
    db_terms = numpy.stack([p.db_share for p in pieces])
    assert numpy.all(numpy.abs(db_terms.sum(axis=0) - view.db) <= _tolerance(db_terms))
    # the raw gradient, not the update the param's diff holds after the step
    assert not numpy.allclose(view.dW, view.update_W)
    if view.delta_down is None:
        assert layer == "ip1" and all(p.delta_down_row is None for p in pieces)
        return
    weight = share.weights_used(view)
    for p in pieces:
        terms = p.delta_row[:, None] * weight  # δₘ·W as its N_ terms per column
        bound = _tolerance(terms) + 2 * EPS32 * numpy.abs(p.delta_row[:, None] * weight).sum(axis=0)
        assert numpy.all(numpy.abs(p.delta_down_check - p.delta_down_row) <= bound)


def test_a_sample_share_is_that_samples_outer_product(spiral_solver):
    view = _stepped_views(spiral_solver, 2)["ip2"]
    m = 7
    piece = share.sample_share(view, m)
    expected = numpy.array([[float(view.delta[m, i]) * float(view.a[m, j]) for j in range(view.a.shape[1])]
                            for i in range(view.delta.shape[1])])
    assert numpy.array_equal(piece.outer, expected)
    assert piece.outer.shape == view.dW.shape
    assert numpy.array_equal(piece.db_share, view.delta[m].astype(numpy.float64))
    with pytest.raises(IndexError):
        share.sample_share(view, view.a.shape[0])


def test_a_cells_bar_chart_sums_to_the_cell(spiral_solver):
    view = _stepped_views(spiral_solver)["ip2"]
    for row, col in ((0, 0), (3, 11), (15, 15)):
        terms = share.cell_contributions(view, row, col)
        assert terms.shape == (32,)
        assert abs(terms.sum() - float(view.dW[row, col])) <= _tolerance(terms)
    assert "Σ of 32 samples" in share.cell_text(view, 3, 11)


def test_transposed_layer_shares_follow_W_orientation(transposed_solver):
    view = _stepped_views(transposed_solver, 2)["ipT"]
    assert view.transpose and view.dW.shape == (5, 3)
    products = share.outer_products(view)
    assert products.shape == (6, 5, 3)
    assert numpy.all(numpy.abs(products.sum(axis=0) - view.dW) <= _tolerance(products))
    piece = share.sample_share(view, 2)
    assert piece.db_share is None  # bias_term: false
    terms = share.cell_contributions(view, 4, 1)
    assert abs(terms.sum() - float(view.dW[4, 1])) <= _tolerance(terms)
    assert numpy.allclose(piece.delta_down_check, piece.delta_down_row, rtol=1e-5, atol=1e-6)


def test_mid_iteration_view_uses_the_unupdated_weights(spiral_solver):
    """Stepped through to the last backward: W is not updated yet and the shares still sum."""
    spiral_solver.step(1)
    events = spiral_solver.iteration_events()
    last = None
    for event in events:
        if event.kind == "backward" and event.layer == "ip2":
            last = event
            break
    view = frames.inner_product_views(spiral_solver, ["ip2"], update_applied=False, last_event=last)["ip2"]
    assert view.update_W is None and view.dW is not None
    products = share.outer_products(view)
    assert numpy.all(numpy.abs(products.sum(axis=0) - view.dW) <= _tolerance(products))
    piece = share.sample_share(view, 0)
    assert numpy.allclose(piece.delta_down_check, piece.delta_down_row, rtol=1e-5, atol=1e-7)


def test_batch_outcome_matches_an_independent_softmax(spiral_solver):
    loss = float(spiral_solver.step(1))
    outcome = share.batch_outcome(spiral_solver.net)
    assert outcome is not None and outcome.loss_layer == "loss"
    scores, labels = outcome.scores, outcome.labels
    by_hand = [-numpy.log(numpy.exp(s[y]) / sum(numpy.exp(v) for v in s)) for s, y in zip(scores, labels)]
    assert numpy.allclose(outcome.losses, by_hand, rtol=1e-12)
    assert abs(outcome.losses.mean() - loss) <= 1e-5 * max(1.0, loss)
    assert outcome.confusion.sum() == 32 and outcome.confusion.shape == (3, 3)
    for true_class in range(3):
        for predicted in range(3):
            count = sum(1 for y, p in zip(labels, scores.argmax(axis=1)) if y == true_class and p == predicted)
            assert outcome.confusion[true_class, predicted] == count
    # the loss layer's δ (ip3's δ) is (softmax − onehot)/M: the per-sample loss's gradient
    view = frames.inner_product_views(spiral_solver, ["ip3"])["ip3"]
    p = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[numpy.arange(32), labels] -= 1.0
    assert numpy.allclose(view.delta, p / 32, atol=1e-6)


def test_sample_path_runs_from_the_loss_to_the_first_layer(spiral_solver):
    spiral_solver.step(1)
    path = share.sample_path(spiral_solver.net, 5)
    assert [step.blob for step in path] == ["ip3", "ip2", "ip1"]
    view = frames.inner_product_views(spiral_solver, ["ip3", "ip2"])
    assert numpy.array_equal(path[0].row, view["ip3"].delta[5].astype(numpy.float64))
    assert numpy.array_equal(path[1].row, view["ip2"].delta[5].astype(numpy.float64))
    assert share.sample_path(spiral_solver.net, 99) == []


# -- the panel, in the window ------------------------------------------------------------


@pytest.fixture(scope="module")
def window(qapp):
    from tests.gui.windows import module_window
    with module_window() as window:
        window.open_path("resources/examples/spiral_mlp/solver.prototxt")
        window.step_iterations(3)
        assert window.wait_until_idle()
        window.sample_share_dock.show()
        window.sample_share_dock.raise_()
        qapp.processEvents()
        yield window


def test_panel_shows_the_selected_samples_share_at_dWs_scale(window, qapp):
    panel = window.sample_share
    panel.select_layer("ip2")
    panel.select_sample(4)
    view = window.session.frame.views["ip2"]
    expected = share.sample_share(view, 4)
    assert numpy.array_equal(panel.maps["outer"].image_array(), expected.outer)
    assert panel.maps["outer"].levels() == panel.maps["dW"].levels()  # one colour scale
    assert numpy.array_equal(panel.maps["delta"].image_array().ravel(), expected.delta_row)
    assert panel.outcome is not None and panel.outcome.confusion.sum() == 32
    assert [step.blob for step in panel.path] == ["ip3", "ip2", "ip1"]
    assert "ip2" in window.graph.notes  # sample 4's δ on the graph
    assert panel.regions.image is not None and panel.regions.image.shape == (48, 48, 3)  # class regions


def test_arrow_keys_and_batch_points_pick_a_sample(window, qapp):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    panel = window.sample_share
    panel.select_sample(2)
    QTest.keyClick(panel, Qt.Key.Key_Right)
    assert panel.m == 3 and panel.sample_spin.value() == 3
    QTest.keyClick(panel, Qt.Key.Key_Left)
    assert panel.m == 2
    points = panel.batch_points()
    assert points is not None and points.shape == (32, 2)
    sizes = panel.point_sizes()  # by loss: the largest loss is the largest point
    assert sizes is not None and int(sizes.argmax()) == int(panel.outcome.losses.argmax())
    spots = panel.batch_scatter.points()
    panel._on_point_clicked(panel.batch_scatter, [spots[9]])
    assert panel.m == 9


def mouse_to_cell(heatmap, row: int, col: int, click: bool = False) -> None:
    """Point at a cell of ``heatmap`` as the mouse does: the plot's scene reports the move
    (pyqtgraph's sigMouseMoved); a click is a real one on the plot's viewport."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    scene_pos = heatmap.cell_scene_pos(row, col)
    heatmap.image_item().scene().sigMouseMoved.emit(scene_pos)
    if click:
        view = heatmap.image_item().scene().views()[0]
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         view.mapFromScene(scene_pos))


def test_hovering_a_dW_cell_draws_bars_that_sum_to_it(window, qapp):
    panel = window.sample_share
    panel.select_layer("ip3")
    heatmap = panel.maps["dW"]
    mouse_to_cell(heatmap, 1, 5)
    assert panel.cell == (1, 5)
    view = window.session.frame.views["ip3"]
    heights = panel.bar_item.opts["height"]
    assert len(heights) == 32
    assert abs(float(numpy.sum(heights)) - float(view.dW[1, 5])) <= _tolerance(numpy.asarray(heights))
    assert "dW[1,5]" in panel.bar_title.text()


def test_clicking_a_row_of_the_inspectors_delta_map_picks_that_sample(window, qapp):
    window.select_layer("ip2")
    window.refresh()
    qapp.processEvents()
    heatmap = window.inspector.heatmap("ip2", "delta")
    mouse_to_cell(heatmap, 12, 3, click=True)
    assert window.sample_share.m == 12 and window.sample_share.layer == "ip2"
