"""HeatmapView: drawn array, symmetric levels, locking, hover read-out, placeholders, statistics."""
from __future__ import annotations

import math

import numpy
import pytest

from gui.views.heatmap import HeatmapView, IndexAxis


@pytest.fixture
def heatmap(qtbot):
    view = HeatmapView("W")
    qtbot.addWidget(view)
    view.resize(420, 360)
    view.show()
    qtbot.waitExposed(view)
    return view


def _matrix(rows=5, cols=7, seed=0, scale=1.0):
    rng = numpy.random.default_rng(seed)
    return (rng.standard_normal((rows, cols)) * scale).astype(numpy.float32)


def test_image_is_the_array_as_written(heatmap):
    m = _matrix()
    heatmap.set_matrix(m, row_label="output neuron (N_=5)", col_label="input (K_=7)")
    assert numpy.array_equal(heatmap.image_array(), m)
    # Row-major: the image item holds rows × columns, not the transpose.
    assert heatmap.image_item().image.shape == (5, 7)
    assert heatmap.image_item().width() == 7 and heatmap.image_item().height() == 5
    assert heatmap.axis_labels() == ("output neuron (N_=5)", "input (K_=7)")


def test_levels_are_symmetric_around_zero(heatmap):
    m = numpy.array([[0.5, -2.0, 1.0], [3.0, 0.0, -0.25]], dtype=numpy.float32)
    heatmap.set_matrix(m, row_label="r", col_label="c")
    assert heatmap.levels() == (-3.0, 3.0)
    negative = numpy.array([[-8.0, 1.0], [2.0, 3.0]], dtype=numpy.float32)  # largest |x| is negative
    heatmap.set_matrix(negative, row_label="r", col_label="c")
    assert heatmap.levels() == (-8.0, 8.0)
    lo, hi = heatmap.image_item().getLevels()
    assert (lo, hi) == (-8.0, 8.0)


def test_all_zero_matrix_gets_a_usable_range(heatmap):
    heatmap.set_matrix(numpy.zeros((3, 3), numpy.float32), row_label="r", col_label="c")
    lo, hi = heatmap.levels()
    assert lo == -hi and hi > 0


def test_one_dimensional_array_is_one_column(heatmap):
    db = numpy.array([0.1, -0.2, 0.3, 0.05], dtype=numpy.float32)
    heatmap.set_matrix(db, row_label="output neuron (N_=4)", col_label="bias")
    assert numpy.array_equal(heatmap.image_array(), db)
    assert heatmap.image_item().image.shape == (4, 1)
    assert "row 2, col 0" in heatmap.hover_text(2, 0)


def test_locked_range_keeps_levels_until_unlocked(heatmap):
    heatmap.set_matrix(_matrix(scale=1.0), row_label="r", col_label="c")
    first = heatmap.levels()
    heatmap.set_locked(True)
    bigger = _matrix(seed=1, scale=10.0)
    heatmap.set_matrix(bigger, row_label="r", col_label="c")
    assert heatmap.levels() == first
    assert numpy.array_equal(heatmap.image_array(), bigger)
    heatmap.set_locked(False)
    heatmap.set_matrix(bigger, row_label="r", col_label="c")
    m = float(numpy.abs(bigger).max())
    assert heatmap.levels() == pytest.approx((-m, m))


def test_hover_shows_row_column_value_and_meaning(heatmap, qtbot):
    m = _matrix()
    heatmap.set_matrix(m, row_label="r", col_label="c",
                       meaning=lambda r, c, v: f"weight from input {c} to output {r}")
    qtbot.wait(10)
    scene = heatmap.image_item().scene()
    scene.sigMouseMoved.emit(heatmap.cell_scene_pos(2, 5))
    text = heatmap.hover_label_text()
    assert text.startswith("row 2, col 5:")
    assert f"{float(m[2, 5]):.6g}" in text
    assert "weight from input 5 to output 2" in text
    scene.sigMouseMoved.emit(heatmap.cell_scene_pos(4, 0))
    assert heatmap.hover_label_text().startswith("row 4, col 0:")
    assert heatmap.hover_text(5, 0) == ""  # outside the matrix


def test_placeholder_replaces_the_image(heatmap):
    heatmap.set_matrix(_matrix(), row_label="r", col_label="c")
    heatmap.set_placeholder("dW appears after the first backward pass")
    assert heatmap.is_placeholder()
    assert heatmap.placeholder_text() == "dW appears after the first backward pass"
    assert heatmap.image_array().size == 0 and heatmap.stats_text() == ""
    heatmap.set_matrix(_matrix(), row_label="r", col_label="c")
    assert not heatmap.is_placeholder()


def test_stats_text_matches_independent_arithmetic(heatmap):
    m = numpy.array([[3.0, -4.0], [0.0, 1.0]], dtype=numpy.float32)
    heatmap.set_matrix(m, row_label="r", col_label="c", extra_stats="‖V‖/‖W‖ = 0.01")
    text = heatmap.stats_text()
    assert "min -4 " in text and "max 3" in text
    assert "mean|x| 2 " in text  # (3 + 4 + 0 + 1) / 4
    assert f"‖x‖₂ {math.sqrt(26):.3g}" in text
    assert "‖V‖/‖W‖ = 0.01" in text


def test_non_finite_values_are_located_and_do_not_break_levels(heatmap):
    m = numpy.array([[0.5, -1.0], [numpy.nan, 2.0]], dtype=numpy.float32)
    heatmap.set_matrix(m, row_label="r", col_label="c")
    assert heatmap.levels() == (-2.0, 2.0)
    assert "1 non-finite, first at [1, 0]" in heatmap.stats_text()


def test_large_matrix_refreshes(heatmap, qtbot):
    rng = numpy.random.default_rng(3)
    for k in range(3):
        m = rng.standard_normal((1024, 1024)).astype(numpy.float32) * (k + 1)
        heatmap.set_matrix(m, row_label="r", col_label="c")
        heatmap.image_item().render()
    assert numpy.array_equal(heatmap.image_array(), m)
    top = float(numpy.abs(m).max())
    assert heatmap.levels() == pytest.approx((-top, top))
    assert not heatmap.grab().isNull()


@pytest.mark.parametrize("length, pixels", [(2, 200), (16, 60), (16, 400), (1024, 300)])
def test_index_axis_ticks_only_integers(qtbot, length, pixels):
    axis = IndexAxis("bottom")
    levels = axis.tickValues(-0.5, length - 0.5, pixels)
    values = [v for _, level in levels for v in level]
    assert values and all(float(v).is_integer() and 0 <= v < length for v in values)
    major = levels[0][1]
    assert len(major) <= pixels // 30 + 1  # labelled ticks at least 30 px apart
    assert 0 in major


def test_a_new_shape_shows_the_whole_matrix(heatmap):
    """Switching from a 16×2 to a 16×16 matrix (ip1 → ip2) must widen the view to all 16 columns."""
    heatmap.set_matrix(_matrix(16, 2), row_label="r", col_label="c")
    heatmap.set_matrix(_matrix(16, 16), row_label="r", col_label="c")
    (x0, x1), (y0, y1) = heatmap.image_item().getViewBox().viewRange()
    assert (x0, x1) == pytest.approx((-0.5, 15.5)) and (y0, y1) == pytest.approx((-0.5, 15.5))
    heatmap.set_matrix(_matrix(3, 40), row_label="r", col_label="c")
    (x0, x1), (y0, y1) = heatmap.image_item().getViewBox().viewRange()
    assert (x0, x1) == pytest.approx((-0.5, 39.5)) and (y0, y1) == pytest.approx((-0.5, 2.5))


def test_hover_read_out_follows_new_frames(heatmap):
    m = _matrix()
    heatmap.set_matrix(m, row_label="r", col_label="c")
    heatmap.image_item().scene().sigMouseMoved.emit(heatmap.cell_scene_pos(1, 3))
    heatmap.set_matrix(2 * m, row_label="r", col_label="c")  # the mouse stays, the values change
    assert f"{float(2 * m[1, 3]):.6g}" in heatmap.hover_label_text()
    far = heatmap.cell_scene_pos(1, 3)
    far.setX(far.x() + 10_000)
    heatmap.image_item().scene().sigMouseMoved.emit(far)
    assert heatmap.hover_label_text() == ""


def test_colour_bar_labels_read_the_exact_levels(heatmap):
    m = numpy.array([[0.00424, -0.001], [0.002, -0.00399]], dtype=numpy.float32)
    heatmap.set_matrix(m, row_label="r", col_label="c")
    top = float(numpy.abs(m).max())
    labels = dict(heatmap.colour_bar_labels())
    assert labels[1.0] == f"{top:.3g}" and labels[-1.0] == f"{-top:.3g}" and labels[0.0] == "0"
    assert labels[0.5] == f"{top / 2:.3g}"
    heatmap.set_matrix(m * 1e-3, row_label="r", col_label="c")  # tiny gradients: exponent form
    assert dict(heatmap.colour_bar_labels())[1.0] == f"{top * 1e-3:.1e}"


def test_colour_bar_labels_fit_the_bar(heatmap, qtbot):
    heatmap.set_matrix(numpy.array([[-0.00424, 1e-5]], dtype=numpy.float32), row_label="r", col_label="c")
    from PySide6.QtGui import QFontMetrics
    metrics = QFontMetrics(heatmap._bar_axis.style["tickFont"])
    widest = max(metrics.horizontalAdvance(text) for _, text in heatmap.colour_bar_labels())
    assert widest + 6 <= heatmap._bar_axis.width()  # the text drawn beside the ticks is not cut


def test_hover_read_out_is_shown_whole_on_a_narrow_map(qtbot):
    """The read-out is laid over the statistics, wrapped, as tall as it needs: a narrow map
    shows all of it (the old one-line read-out beside the title was cut)."""
    view = HeatmapView("dW", compact=True)
    qtbot.addWidget(view)
    view.resize(150, 200)
    view.show()
    qtbot.waitExposed(view)
    long_meaning = "dW[3,1] = Σₘ δ[m,3]·a[m,1], m < M_=32 — the weight from input 1 to output 3"
    view.set_matrix(_matrix(5, 2), row_label="r", col_label="c", meaning=lambda r, c, v: long_meaning)
    view._on_mouse_moved(view.cell_scene_pos(3, 1))
    label = view._hover
    assert label.isVisible() and long_meaning in label.text()
    assert label.height() >= label.heightForWidth(label.width())  # every wrapped line fits
    assert label.geometry().bottom() <= view.rect().bottom() and label.width() <= view.width()
    view._on_mouse_moved(view.cell_scene_pos(-5, -5))  # off the map: the read-out goes away
    assert not label.isVisible()


def test_a_map_of_denormal_values_is_drawn_in_colour(heatmap, qtbot):
    """After a long decay, updates can be ~1e-44: the colour scale must not overflow."""
    import warnings
    tiny = numpy.array([[1e-44, -1e-44], [5e-45, 0.0]], dtype=numpy.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        heatmap.set_matrix(tiny, row_label="r", col_label="c")
        image = heatmap.image_item()
        image.render()
    argb = image.qimage
    assert argb is not None
    top_left = argb.pixelColor(0, 0)
    top_right = argb.pixelColor(1, 0)
    assert top_left.red() > top_left.blue() + 50  # +max: (dark) red
    assert top_right.blue() > top_right.red() + 50  # -max: (dark) blue
    assert heatmap.image_array()[0, 0] == pytest.approx(float(tiny[0, 0]))


def test_double_clicking_a_cell_emits_its_row_and_column(heatmap):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtWidgets import QApplication, QGraphicsSceneMouseEvent
    heatmap.set_matrix(numpy.zeros((4, 6)), row_label="r", col_label="c")
    clicked = []
    heatmap.cellDoubleClicked.connect(lambda row, col: clicked.append((row, col)))
    for pos in (heatmap.cell_scene_pos(2, 5), QPointF(-1000.0, -1000.0)):  # a cell, then nowhere
        event = QGraphicsSceneMouseEvent(QEvent.Type.GraphicsSceneMouseDoubleClick)
        event.setScenePos(pos)
        QApplication.sendEvent(heatmap.image_item().scene(), event)
    assert clicked == [(2, 5)]
