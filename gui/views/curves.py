"""CurvesPanel: training loss (raw and smoothed), test scores and learning rate over iterations.

The panel draws a :class:`gui.model.metrics.Metrics` (the session's, in the app):
it holds no points of its own. ``redraw()`` (called for every frame) re-reads the
model's bounded, decimated copy only when its revision moved, so a frame with no
new point costs nothing and a long run never grows the plot's arrays. CSV export
is the model's (full resolution).

The axes follow the data in steps (:func:`stepped_top`): the iteration axis ends a
little past the newest point and the value axes just outside the data, and
neither moves until a point falls outside. Most frames then change only the
curves, so the (cached) axes and grids are not redrawn, the ticks do not jitter,
and a frame costs one repaint instead of a repaint plus pyqtgraph's deferred
auto-range repaint. Zooming or panning a plot stops the following; a double
click resumes it.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.model.events import FrameReady, NetLoaded, RunStatus
from gui.model.metrics import TRAIN_SERIES, Metrics
from gui.views import theme


def _finite_bounds(values: numpy.ndarray) -> tuple[float, float]:
    finite = values[numpy.isfinite(values)]
    if not finite.size:
        return math.inf, -math.inf
    return float(finite.min()), float(finite.max())


def stepped_top(value: float) -> float:
    """The smallest multiple of a fifth of ``value``'s power of ten that is >= ``value``
    (1.1 -> 1.2, 0.37 -> 0.4, 1234 -> 1400): a range end that grows in a few steps
    per decade instead of with every new point."""
    if not math.isfinite(value) or value <= 0:
        return 0.0
    step = 10.0 ** math.floor(math.log10(value)) / 5.0
    top = math.ceil(value / step - 1e-9) * step
    return float(f"{top:.12g}")  # 0.6000000000000001 -> 0.6


def stepped_range(lo: float, hi: float) -> tuple[float, float]:
    """A range holding [lo, hi] whose ends move in steps (0 is kept in view)."""
    top = stepped_top(hi) if hi > 0 else 0.0
    bottom = -stepped_top(-lo) if lo < 0 else 0.0
    if top == bottom:
        top = bottom + 1.0
    return bottom, top

#: While running, the curves redraw at most this often (seconds): each redraw hands every
#: series to pyqtgraph again, and the heatmaps, not the curves, need every frame.
CURVES_INTERVAL = 0.1


def is_loss_name(key: str) -> bool:
    """Test outputs whose name says 'loss' share the loss plot; others (accuracy, ...) get their own."""
    return "loss" in key.lower()


class CurvesPanel(QWidget):
    """Three stacked plots sharing the iteration axis: loss, test scores, learning rate."""

    def __init__(self, metrics: Metrics | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.metrics = metrics if metrics is not None else Metrics()
        self._data: dict[str, tuple[numpy.ndarray, numpy.ndarray]] = {}
        self._bounds_of: dict[str, tuple[float, float]] = {}
        self._drawn_revision = -1
        self._drawn_at = 0.0  # perf_counter of the last redraw a frame asked for
        self._drawn_generation = -1
        self._drawn_tests: tuple[int, int] | None = None  # (generation, test_count) the test series show
        self._test_keys: list[str] = []
        self._items: dict[str, pg.PlotDataItem] = {}
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self._graphics = pg.GraphicsLayoutWidget()
        self._graphics.setAntialiasing(False)  # grids and axes are straight; the curves smooth themselves
        layout.addWidget(self._graphics)
        self.loss_plot = self._add_plot(0, "loss", "Loss")
        self.score_plot = self._add_plot(1, "test score", "Test scores (TEST phase)")
        self.lr_plot = self._add_plot(2, "learning rate", "Learning rate")
        for plot in (self.score_plot, self.lr_plot):
            plot.setXLink(self.loss_plot)
        self._horizontal: bool | None = None
        self._arrange(horizontal=False)
        self._following = True  # False once the user zooms or pans; a double click resumes
        self._ranges: dict[str, tuple[float, float]] = {}
        for plot in (self.loss_plot, self.score_plot, self.lr_plot):
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)
        self._graphics.scene().sigMouseClicked.connect(self._on_click)
        self._apply_ranges()
        self.loss_plot.addLegend(offset=(-10, 10), labelTextSize=f"{theme.STATS_PT}pt")
        self.score_plot.addLegend(offset=(-10, 10), labelTextSize=f"{theme.STATS_PT}pt")
        # The raw loss is a thin, noisy line: drawn without smoothing it costs a fraction.
        self._items["loss"] = self._curve(self.loss_plot, "loss", "training loss", width=1, antialias=False)
        self._items["smoothed_loss"] = self._curve(self.loss_plot, "smoothed_loss", "smoothed loss", width=3)
        self._items["lr"] = self._curve(self.lr_plot, "lr", None, width=2)

    def _arrange(self, horizontal: bool) -> None:
        """Plots side by side (a wide, short dock) or stacked (a tall one); x axes stay linked."""
        if horizontal == self._horizontal:
            return
        self._horizontal = horizontal
        ci = self._graphics.ci
        plots = (self.loss_plot, self.score_plot, self.lr_plot)
        for plot in plots:
            ci.removeItem(plot)
        stretches = (3, 2, 1) if not horizontal else (2, 1, 1)
        for k, plot in enumerate(plots):
            row, col = (0, k) if horizontal else (k, 0)
            ci.addItem(plot, row=row, col=col)
            last = horizontal or plot is self.lr_plot
            plot.getAxis("bottom").setStyle(showValues=last)
            plot.setLabel("bottom", "iteration" if last else "", **{"font-size": f"{theme.LABEL_PT}pt"})
            if not last:
                plot.getAxis("bottom").showLabel(False)
        for k in range(3):
            ci.layout.setRowStretchFactor(k, 1 if horizontal and k == 0 else (0 if horizontal else stretches[k]))
            ci.layout.setColumnStretchFactor(k, stretches[k] if horizontal else (1 if k == 0 else 0))

    def is_horizontal(self) -> bool:
        return bool(self._horizontal)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        size = event.size()
        self._arrange(horizontal=size.width() >= 2.2 * size.height())

    def _add_plot(self, row: int, y_label: str, title: str) -> pg.PlotItem:
        plot = self._graphics.addPlot(row=row, col=0)
        plot.setTitle(title, size=f"{theme.LABEL_PT + 1}pt", bold=True)
        plot.setLabel("left", y_label, **{"font-size": f"{theme.LABEL_PT}pt"})
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        for name in ("left", "bottom"):
            plot.getAxis(name).setStyle(tickFont=theme.font(theme.TICK_PT))
            plot.getAxis(name).enableAutoSIPrefix(False)
        plot.getAxis("left").setWidth(72)
        theme.cache_axes(plot.getAxis("left"), plot.getAxis("bottom"))
        return plot

    @staticmethod
    def _curve(plot: pg.PlotItem, key: str, name: str | None, width: int,
               antialias: bool = True) -> pg.PlotDataItem:
        item = plot.plot([], [], pen=pg.mkPen(theme.CURVE_COLORS[key], width=width), name=name,
                         antialias=antialias)
        # Peak downsampling to one bin per pixel column keeps every spike's envelope
        # while a long run draws ~2 vertices per pixel instead of ~10 (pyqtgraph's default).
        item.setDownsampling(auto=True, method="peak")
        item.opts["autoDownsampleFactor"] = 1.0
        item.setClipToView(True)
        return item

    # ---------------------------------------------------------------- public
    def follow(self, session) -> None:
        """Redraw from the metrics on each frame ``session`` (a gui.model Session) shows
        (FrameReady; at most every CURVES_INTERVAL while running) and on NetLoaded; drawn
        the fast way while a run goes (RunStatus)."""
        session.emitter.connect(self._on_frame, FrameReady)
        session.emitter.connect(lambda _event: self.redraw(), NetLoaded)
        session.emitter.connect(lambda event: self.set_live(event.running), RunStatus)
        self.set_live(session.running)

    def _on_frame(self, event: FrameReady) -> None:
        now = time.perf_counter()
        if event.frame.running and now - self._drawn_at < CURVES_INTERVAL:
            return
        self._drawn_at = now
        self.redraw()

    def redraw(self) -> None:
        """Draw the metrics again if they changed since the last redraw."""
        revision = self.metrics.revision
        if revision == self._drawn_revision:
            return
        self._drawn_revision = revision
        if self.metrics.generation != self._drawn_generation:  # cleared or cut back: follow the data again
            self._drawn_generation = self.metrics.generation
            self._following, self._ranges = True, {}
        iterations, losses, smoothed, lrs = self.metrics.train_arrays()
        for key, values in (("loss", losses), ("smoothed_loss", smoothed), ("lr", lrs)):
            self._set_series(key, iterations, values)
        tests_now = (self.metrics.generation, self.metrics.test_count)
        if tests_now != self._drawn_tests:  # most frames bring no test pass: the markers stay as they are
            self._drawn_tests = tests_now
            self._redraw_tests()
        self._apply_ranges()

    def _redraw_tests(self) -> None:
        by_key: dict[str, tuple[list[float], list[float]]] = {}
        for iteration, scores in self.metrics.tests:
            for key, value in scores.items():
                xs, ys = by_key.setdefault(key, ([], []))
                xs.append(float(iteration))
                ys.append(float(value))
        for key in self._test_keys:
            by_key.setdefault(key, ([], []))
        for key, (xs, ys) in by_key.items():
            if key not in self._test_keys:
                self._add_test_series(key)
            self._set_series(f"test_{key}", numpy.asarray(xs, numpy.float64), numpy.asarray(ys, numpy.float64))

    def _set_series(self, name: str, x: numpy.ndarray, y: numpy.ndarray) -> None:
        self._data[name] = (x, y)
        self._bounds_of[name] = _finite_bounds(y)
        self._items[name].setData(x, y)

    def add_train_points(self, iterations: Sequence[int], losses: Sequence[float],
                         smoothed: Sequence[float], lrs: Sequence[float]) -> None:
        """Append a batch of training iterations to the metrics (all four sequences
        have the same length) and redraw."""
        sizes = {len(iterations), len(losses), len(smoothed), len(lrs)}
        if len(sizes) != 1:
            raise ValueError(f"add_train_points: sequences of different lengths {sorted(sizes)}")
        for row in zip(iterations, losses, smoothed, lrs):
            self.metrics.append(*row)
        self.redraw()

    def view_ranges(self) -> dict[str, tuple[float, float]]:
        """The ranges the plots follow: 'iteration', 'loss', 'score' and 'lr' as (low, high)."""
        x_top = max((float(x[-1]) for x, _ in self._data.values() if x.size), default=0.0)
        loss_names = ["loss", "smoothed_loss"] + [f"test_{k}" for k in self._test_keys if is_loss_name(k)]
        score_names = [f"test_{k}" for k in self._test_keys if not is_loss_name(k)]
        return {"iteration": (0.0, stepped_top(max(1.0, x_top * 1.02))),
                "loss": stepped_range(*self._bounds(loss_names)),
                "score": stepped_range(*self._bounds(score_names, at_least=(0.0, 1.0))),
                "lr": stepped_range(*self._bounds(["lr"]))}

    def set_live(self, live: bool) -> None:
        """While a run redraws the plots many times a second, draw the wide curves without
        antialiasing (a smoothed 3-pixel line costs ~15 ms a repaint with it, ~2 ms
        without); a paused view gets the smooth lines back."""
        smooth = not live
        for name, item in self._items.items():
            if name == "loss" or item.opts.get("antialias") == smooth:
                continue
            item.opts["antialias"] = smooth
            item.curve.opts["antialias"] = smooth
            item.scatter.opts["antialias"] = smooth
            item.curve.update()

    def is_live(self) -> bool:
        """True while the wide curves are drawn the fast way (a run is going)."""
        return self._items["smoothed_loss"].opts.get("antialias") is False

    def is_following(self) -> bool:
        """True while the plots follow the data (no zoom or pan by the user since)."""
        return self._following

    def follow_data(self) -> None:
        """Follow the data again (after the user zoomed or panned)."""
        self._following = True
        self._ranges = {}
        self._apply_ranges()

    def _bounds(self, names: list[str], at_least: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
        """(min, max) over the finite values of the named series, widened to ``at_least``."""
        lo, hi = at_least
        for name in names:
            low, high = self._bounds_of.get(name, (math.inf, -math.inf))
            lo, hi = min(lo, low), max(hi, high)
        return lo, hi

    def _apply_ranges(self) -> None:
        """Give each plot its stepped range, touching only those that changed."""
        if not self._following:
            return
        ranges = self.view_ranges()
        plots = {"loss": self.loss_plot, "score": self.score_plot, "lr": self.lr_plot}
        if ranges["iteration"] != self._ranges.get("iteration"):
            self.loss_plot.setXRange(*ranges["iteration"], padding=0.02)  # the others are linked
        for key, plot in plots.items():
            if ranges[key] != self._ranges.get(key):
                plot.setYRange(*ranges[key], padding=0.04)
        self._ranges = ranges

    def _stop_following(self, *_args) -> None:
        self._following = False

    def _on_click(self, event) -> None:
        if event.double():
            self.follow_data()

    def add_test_point(self, iteration: int, scores: dict[str, float]) -> None:
        """Append one test pass (e.g. {'accuracy': 0.9, 'loss': 0.31}) at ``iteration``."""
        self.add_test_points([(iteration, scores)])

    def add_test_points(self, points: Sequence[tuple[int, dict[str, float]]]) -> None:
        """Append several test passes, (iteration, scores) each, with one redraw."""
        if points:
            self.metrics.add_tests(points)
            self.redraw()

    def clear(self) -> None:
        """Forget every point (the metrics are cleared too)."""
        self.metrics.clear()
        self.redraw()
        self.follow_data()

    def series(self, name: str) -> tuple[numpy.ndarray, numpy.ndarray]:
        """(iterations, values) of 'loss', 'smoothed_loss', 'lr' or 'test_<output>' as drawn (copies)."""
        self.redraw()
        if name not in self._data and f"test_{name}" in self._data:
            name = f"test_{name}"
        if name not in self._data:
            raise KeyError(f"no series '{name}' (have: {', '.join(self.series_names())})")
        x, y = self._data[name]
        return x.copy(), y.copy()

    def series_names(self) -> list[str]:
        return list(TRAIN_SERIES) + [f"test_{k}" for k in self._test_keys]

    def to_csv(self, path: str) -> None:
        """The metrics as CSV: one row per iteration (see Metrics.to_csv; atomic)."""
        self.metrics.to_csv(path)

    # ---------------------------------------------------------------- private
    def _add_test_series(self, key: str) -> None:
        name = f"test_{key}"
        colors = theme.CURVE_COLORS["test"]
        color = colors[len(self._test_keys) % len(colors)]
        self._test_keys.append(key)
        plot = self.loss_plot if is_loss_name(key) else self.score_plot
        item = plot.plot([], [], pen=pg.mkPen(color, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                         symbol="o", symbolSize=8, symbolBrush=color, symbolPen=pg.mkPen("w"),
                         name=f"test {key}")
        self._items[name] = item
        if self.is_live():
            self.set_live(True)


