"""CurvesPanel: batched appends, test points, clear, CSV export (checked against the input written here)."""
from __future__ import annotations

import csv
import os

import numpy
import pytest

from gui.views.curves import CurvesPanel


@pytest.fixture
def curves(qtbot):
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    return panel


def _train(n, start=0):
    it = numpy.arange(start, start + n)
    loss = 1.0 / (1.0 + it)
    return it, loss, loss * 0.9, numpy.where(it < 50, 0.1, 0.05)


def test_batched_appends_accumulate(curves):
    it, loss, smooth, lr = _train(1000)
    for start in range(0, 1000, 7):  # batches of 7, as the GUI thread would hand them over
        stop = start + 7
        curves.add_train_points(it[start:stop], loss[start:stop], smooth[start:stop], lr[start:stop])
    for name, expected in (("loss", loss), ("smoothed_loss", smooth), ("lr", lr)):
        x, y = curves.series(name)
        assert numpy.array_equal(x, it) and numpy.array_equal(y, expected), name
    x, y = curves._items["loss"].getOriginalDataset()
    assert numpy.array_equal(y, loss)  # the plot item holds the same points


def test_test_points_get_their_own_series(curves):
    curves.add_test_point(0, {"accuracy": 0.3, "loss": 1.2})
    curves.add_test_point(100, {"accuracy": 0.8, "loss": 0.4})
    x, y = curves.series("test_accuracy")
    assert x.tolist() == [0, 100] and y.tolist() == [0.3, 0.8]
    assert curves.series("loss")[0].size == 0  # the training loss is separate
    assert curves.series("test_loss")[1].tolist() == [1.2, 0.4]
    assert curves.series("accuracy")[1].tolist() == [0.3, 0.8]  # short name works too
    with pytest.raises(KeyError):
        curves.series("nope")


def test_clear_forgets_everything(curves):
    curves.add_train_points(*_train(10))
    curves.add_test_point(5, {"accuracy": 0.5})
    curves.clear()
    for name in curves.series_names():
        assert curves.series(name)[0].size == 0
    curves.add_train_points(*_train(3, start=20))
    assert curves.series("loss")[0].tolist() == [20, 21, 22]


def test_csv_has_one_row_per_iteration_with_test_columns(curves, tmp_path):
    it, loss, smooth, lr = _train(4, start=1)
    curves.add_test_point(0, {"accuracy": 0.25, "loss": 1.5})  # test_initialization: before any training
    curves.add_train_points(it, loss, smooth, lr)
    curves.add_test_point(2, {"accuracy": 0.75, "loss": 0.5})
    path = tmp_path / "curves.csv"
    curves.to_csv(str(path))
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["iteration", "loss", "smoothed_loss", "lr", "test_accuracy", "test_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert rows[1] == ["0", "", "", "", "0.25", "1.5"]
    assert float(rows[2][1]) == pytest.approx(0.5) and float(rows[2][2]) == pytest.approx(0.45)
    assert float(rows[2][3]) == pytest.approx(0.1) and rows[2][4:] == ["", ""]
    assert rows[3][4:] == ["0.75", "0.5"]
    assert os.listdir(tmp_path) == ["curves.csv"]  # the temp file was renamed, not left behind


def test_csv_overwrites_atomically(curves, tmp_path):
    path = tmp_path / "curves.csv"
    path.write_text("old content\n")
    curves.add_train_points(*_train(2))
    curves.to_csv(str(path))
    assert path.read_text().splitlines()[0].startswith("iteration,loss")


def test_mismatched_lengths_are_refused(curves):
    with pytest.raises(ValueError):
        curves.add_train_points([1, 2, 3], [0.1, 0.2], [0.1, 0.2], [0.1, 0.1])


def test_layout_follows_the_shape_of_the_dock(curves, qtbot):
    curves.add_train_points(*_train(20))
    curves.resize(1400, 250)  # a wide bottom dock: plots side by side
    curves.show()
    qtbot.waitExposed(curves)
    assert curves.is_horizontal()
    assert curves.loss_plot.sceneBoundingRect().right() <= curves.score_plot.sceneBoundingRect().left() + 1
    curves.resize(500, 700)  # a tall one: stacked
    qtbot.wait(10)
    assert not curves.is_horizontal()
    assert curves.loss_plot.sceneBoundingRect().bottom() <= curves.score_plot.sceneBoundingRect().top() + 1
    assert numpy.array_equal(curves.series("loss")[1], _train(20)[1])


# -- the axes follow the data in steps --------------------------------------------------
@pytest.mark.parametrize("value", [0.00731, 0.37, 1.0, 1.1, 2.0, 9.99, 12.0, 1234.0, 5e-7])
def test_stepped_top_is_the_next_fifth_of_a_decade(value):
    from gui.views.curves import stepped_top
    step = 10.0 ** numpy.floor(numpy.log10(value)) / 5.0  # independent: a fifth of the power of ten
    top = stepped_top(value)
    assert top >= value
    assert top - step < value * (1 + 1e-12)  # the smallest such multiple
    assert abs(top / step - round(top / step)) < 1e-9  # a whole number of steps
    assert top <= 1.2 * value + 1e-15  # never more than a fifth of the scale left empty


def _ranges(panel):
    (x0, x1), (y0, y1) = panel.loss_plot.getViewBox().viewRange()
    return (x0, x1), (y0, y1)


def test_loss_axes_hold_the_data_and_stay_put_within_a_step(curves, qtbot):
    it, loss, smooth, lr = _train(120)
    curves.add_train_points(it, loss, smooth, lr)
    first = _ranges(curves)
    (x0, x1), (y0, y1) = first
    assert x0 <= 0 and x1 >= 119 and y0 <= 0 and y1 >= 1.0  # every point is in view
    curves.add_train_points([120, 121], [0.5, 0.4], [0.45, 0.41], [0.05, 0.05])  # inside the current step
    assert _ranges(curves) == first  # no re-layout of the axes for these
    curves.add_train_points([122], [3.3], [0.6], [0.05])  # a spike above the range
    (_, _), (_, y1_after) = _ranges(curves)
    assert y1_after >= 3.3 > y1


def test_nonfinite_losses_do_not_break_the_range(curves):
    curves.add_train_points([0, 1, 2], [1.5, float("nan"), float("inf")], [1.5, 1.5, 1.5], [0.1] * 3)
    (_, _), (y0, y1) = _ranges(curves)
    assert numpy.isfinite([y0, y1]).all() and y1 >= 1.5


def test_zooming_stops_following_and_follow_resumes(curves):
    it, loss, smooth, lr = _train(100)
    curves.add_train_points(it, loss, smooth, lr)
    view = curves.loss_plot.getViewBox()
    view.scaleBy((0.5, 0.5))  # what a wheel zoom does
    view.sigRangeChangedManually.emit(view.state["mouseEnabled"])
    assert not curves.is_following()
    zoomed = _ranges(curves)
    curves.add_train_points([100, 101], [5.0, 5.0], [5.0, 5.0], [0.1, 0.1])
    assert _ranges(curves) == zoomed  # the user's zoom is kept
    curves.follow_data()
    (_, x1), (_, y1) = _ranges(curves)
    assert curves.is_following() and x1 >= 101 and y1 >= 5.0


def test_batched_test_points_equal_one_at_a_time(qtbot):
    one, batch = CurvesPanel(), CurvesPanel()
    qtbot.addWidget(one)
    qtbot.addWidget(batch)
    points = [(i * 100, {"accuracy": 0.1 * i, "loss": 2.0 / (i + 1)}) for i in range(6)]
    for iteration, scores in points:
        one.add_test_point(iteration, scores)
    batch.add_test_points(points)
    for name in ("test_accuracy", "test_loss"):
        for a, b in zip(one.series(name), batch.series(name)):
            assert numpy.array_equal(a, b)
    assert one.view_ranges() == batch.view_ranges()


def test_live_mode_drops_antialiasing_of_the_wide_curves_and_restores_it(curves):
    curves.add_train_points([0, 1], [1.0, 0.9], [1.0, 0.95], [0.1, 0.1])
    wide = ("smoothed_loss", "lr")
    assert all(curves._items[n].curve.opts["antialias"] for n in wide)
    curves.set_live(True)
    curves.add_test_point(1, {"accuracy": 0.5})  # a series created during the run is fast too
    assert curves.is_live()
    assert not any(curves._items[n].curve.opts["antialias"] for n in wide + ("test_accuracy",))
    curves.set_live(False)
    assert not curves.is_live()
    assert all(curves._items[n].curve.opts["antialias"] for n in wide + ("test_accuracy",))
