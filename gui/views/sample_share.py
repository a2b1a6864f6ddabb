"""One sample's share: a panel that takes the selected InnerProduct layer's backward
products apart sample by sample (gui.model.sample_share).

Pick sample m with the spin box, the arrow keys, a click on a row of the
inspector's a or δ map, or a click on a point of the batch plot (2-D data). The
panel shows δₘ, aₘ, δₘᵀ·aₘ beside dW at dW's colour scale, δₘ beside db, and
the engine's row m of δ_down; hovering a dW cell draws the M bars δₘᵢ·aₘⱼ that
sum to it. Its data are each drawn frame's arrays; the batch's loss per sample,
the confusion matrix and sample m's δ at every blob are read from the net when
the worker is idle.
"""
from __future__ import annotations

import numpy
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model import sample_share as share
from gui.model.events import FrameReady
from gui.model.frames import InnerProductView
from gui.views.debug.common import CLASS_COLOURS, bold
from gui.views.docks import add_tabbed_dock
from gui.views.heatmap import HeatmapView

SIZE_BY = ("loss", "|δ|", "same size")


class SampleSharePanel(QWidget):
    """δₘ, aₘ, δₘᵀ·aₘ beside dW, δₘ beside db, δ_down row m, a dW cell's bars, the batch plot."""

    sampleChanged = Signal(int)
    shown = Signal()  # the panel came on screen: draw the last frame

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.views: dict[str, InnerProductView] = {}
        self.layer: str | None = None
        self.m = 0
        self.piece: share.SampleShare | None = None
        self.outcome: share.BatchOutcome | None = None
        self.path: list[share.PathStep] = []
        self.cell: tuple[int, int] | None = None
        self.cell_terms: numpy.ndarray | None = None
        self._build()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # -- building ------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        header = QHBoxLayout()
        self.title = bold("One sample's share")
        self.title.setWordWrap(True)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.title)
        self.layer_combo = QComboBox()
        self.sample_spin = QSpinBox(minimum=0, maximum=0)
        self.sample_spin.setPrefix("sample m = ")
        self.size_combo = QComboBox()
        self.size_combo.addItems(SIZE_BY)
        header.addWidget(QLabel("layer"))
        header.addWidget(self.layer_combo)
        header.addWidget(self.sample_spin)
        header.addWidget(QLabel("size"))
        header.addWidget(self.size_combo)
        layout.addLayout(header)
        grid = QGridLayout()
        grid.setSpacing(4)
        self.maps = {key: HeatmapView(title, compact=True) for key, title in (
            ("delta", "δₘ (1×N_)"), ("a", "aₘ (1×K_)"), ("outer", "δₘᵀ·aₘ (dW's colour scale)"),
            ("dW", "dW = Σₘ δₘᵀ·aₘ"), ("db", "δₘ (row 0) beside db (row 1)"), ("delta_down", "δ_down row m"))}
        for key, (r, c) in (("outer", (0, 0)), ("dW", (0, 1)), ("delta", (1, 0)), ("a", (1, 1)),
                            ("db", (2, 0)), ("delta_down", (2, 1))):
            grid.addWidget(self.maps[key], r, c)
        for row, stretch in ((0, 6), (1, 2), (2, 2), (4, 3)):
            grid.setRowStretch(row, stretch)
        self.bars = pg.PlotWidget()
        self.bars.setMinimumHeight(120)
        self.bars.setLabel("bottom", "sample m")
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.bars.addItem(self.bar_item)
        self.bar_title = QLabel("Hover a cell of dW: its M terms δₘᵢ·aₘⱼ")
        self.bar_title.setWordWrap(True)
        grid.addWidget(self.bar_title, 3, 0, 1, 2)
        grid.addWidget(self.bars, 4, 0, 1, 2)
        side = QVBoxLayout()
        self.batch_plot = pg.PlotWidget()
        self.batch_plot.setAspectLocked(True)
        self.batch_plot.setMinimumSize(140, 140)
        self.regions = pg.ImageItem(axisOrder="row-major")
        self.batch_plot.addItem(self.regions)
        self.batch_scatter = pg.ScatterPlotItem(pen=pg.mkPen("k", width=0.5))
        self.selected_ring = pg.ScatterPlotItem(size=22, brush=None, pen=pg.mkPen("#d00000", width=2.5))
        self.batch_plot.addItem(self.batch_scatter)
        self.batch_plot.addItem(self.selected_ring)
        self.batch_title = QLabel("The batch (2-D data)")
        self.batch_title.setWordWrap(True)
        side.addWidget(self.batch_title)
        side.addWidget(self.batch_plot, 2)
        confusion_title = QLabel("Confusion matrix, this batch (rows: true, columns: predicted)")
        confusion_title.setWordWrap(True)
        side.addWidget(confusion_title)
        self.confusion = QTableWidget(0, 0)
        self.confusion.setMinimumHeight(90)
        side.addWidget(self.confusion, 1)
        self.path_label = QLabel("")
        self.path_label.setWordWrap(True)
        self.path_label.setTextFormat(Qt.TextFormat.PlainText)
        side.addWidget(self.path_label)
        self.readout = QLabel("")
        self.readout.setWordWrap(True)
        side.addWidget(self.readout)
        body = QHBoxLayout()
        body.addLayout(grid, 3)
        body.addLayout(side, 2)
        layout.addLayout(body, 1)
        self.layer_combo.currentTextChanged.connect(self._on_layer)
        self.sample_spin.valueChanged.connect(self.select_sample)
        self.size_combo.currentTextChanged.connect(lambda _t: self._draw_batch())
        self.batch_scatter.sigClicked.connect(self._on_point_clicked)
        for key in ("dW", "outer"):
            self.maps[key].cellHovered.connect(self.show_cell)

    # -- input ---------------------------------------------------------------
    def set_views(self, views: dict, outcome: share.BatchOutcome | None = None,
                  path: list[share.PathStep] | None = None) -> None:
        """A new frame's InnerProduct views (and, read while idle, the batch outcome and path)."""
        self.views = {k: v for k, v in views.items() if isinstance(v, InnerProductView)}
        names = list(self.views)
        if [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())] != names:
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            self.layer_combo.addItems(names)
            self.layer_combo.blockSignals(False)
        if self.layer not in names:
            self.layer = names[-1] if names else None
        if self.layer is not None:
            self.layer_combo.blockSignals(True)
            self.layer_combo.setCurrentText(self.layer)
            self.layer_combo.blockSignals(False)
        if outcome is not None or path is not None:
            self.outcome, self.path = outcome, path or []
        self._redraw()

    def select_layer(self, name: str) -> None:
        if name in self.views:
            self.layer = name
            self.layer_combo.setCurrentText(name)
            self._redraw()

    def select_sample(self, m: int) -> None:
        view = self.views.get(self.layer or "")
        count = share.batch_size(view) if view is not None else 0
        m = max(0, min(int(m), max(0, count - 1)))
        if m != self.sample_spin.value():
            self.sample_spin.setValue(m)  # comes back here
            return
        self.m = m
        self._redraw()
        self.sampleChanged.emit(m)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        self.shown.emit()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        step = {Qt.Key.Key_Right: 1, Qt.Key.Key_Down: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Up: -1}.get(event.key())
        if step is None:
            super().keyPressEvent(event)
            return
        self.select_sample(self.m + step)

    def _on_layer(self, name: str) -> None:
        if name:
            self.layer = name
            self._redraw()

    def _on_point_clicked(self, _item, points, *_args) -> None:
        if len(points):
            self.select_sample(int(points[0].data()))

    # -- drawing -------------------------------------------------------------
    def show_cell(self, row: int, col: int) -> None:
        """The bar chart of dW[row, col]'s M terms (sample m's bar outlined)."""
        view = self.views.get(self.layer or "")
        if view is None or not share.has_pieces(view) or view.dW is None:
            return
        if not (0 <= row < view.dW.shape[0] and 0 <= col < view.dW.shape[1]):
            return
        self.cell = (row, col)
        terms = share.cell_contributions(view, row, col)
        self.cell_terms = terms
        brushes = [pg.mkBrush(200, 40, 40) if t > 0 else pg.mkBrush(40, 80, 200) for t in terms]
        pens = [pg.mkPen("k", width=2) if k == self.m else pg.mkPen(None) for k in range(terms.size)]
        self.bar_item.setOpts(x=numpy.arange(terms.size), height=terms, width=0.8, brushes=brushes, pens=pens)
        self.bar_title.setText(share.cell_text(view, row, col) + f"  (sample {self.m}: {terms[self.m]:.4g})")

    def _redraw(self) -> None:
        view = self.views.get(self.layer or "")
        if view is None or not share.has_pieces(view):
            for heatmap in self.maps.values():
                heatmap.set_placeholder("No backward yet: step an iteration" if view is not None
                                        else "Select an InnerProduct layer")
            self.piece = None
            return
        count = share.batch_size(view)
        self.sample_spin.blockSignals(True)
        self.sample_spin.setMaximum(max(0, count - 1))
        self.sample_spin.blockSignals(False)
        self.m = min(self.m, count - 1)
        piece = share.sample_share(view, self.m)
        self.piece = piece
        self.title.setText(f"{view.layer}: sample {self.m} of {count} — its share of dW, db and δ_down")
        self._draw_maps(view, piece)
        if self.cell is not None:
            self.show_cell(*self.cell)
        self._draw_batch()
        self._draw_confusion()
        self._draw_path()

    def _draw_maps(self, view: InnerProductView, piece: share.SampleShare) -> None:
        dW = view.dW if view.dW is not None else numpy.zeros_like(piece.outer)
        rows, cols = ("input", "output") if view.transpose else ("output", "input")
        self.maps["dW"].set_matrix(dW, row_label=rows, col_label=cols)
        outer_view = self.maps["outer"]
        outer_view.set_locked(False)
        outer_view.reset_levels()
        outer_view.set_matrix(dW, row_label=rows, col_label=cols)  # takes dW's levels ...
        outer_view.set_locked(True)
        outer_view.set_matrix(piece.outer, row_label=rows, col_label=cols,  # ... and keeps them
                              extra_stats=f"‖share‖/‖dW‖ = {piece.fraction_of(dW):.3f}")
        self.maps["delta"].set_matrix(piece.delta_row.reshape(1, -1), row_label="m", col_label="output")
        self.maps["a"].set_matrix(piece.a_row.reshape(1, -1), row_label="m", col_label="input")
        if piece.db_share is not None and view.db is not None:
            self.maps["db"].set_matrix(numpy.vstack([piece.db_share, view.db]), row_label="δₘ | db",
                                       col_label="output")
        else:
            self.maps["db"].set_placeholder("No bias (bias_term: false)")
        if piece.delta_down_row is not None and piece.delta_down_check is not None:
            gap = float(numpy.abs(piece.delta_down_row - piece.delta_down_check).max())
            self.maps["delta_down"].set_matrix(piece.delta_down_row.reshape(1, -1), row_label="m",
                                               col_label="input", extra_stats=f"δₘ·W differs by ≤ {gap:.2g}")
        else:
            self.maps["delta_down"].set_placeholder(f"No δ_down: '{view.bottom_name}' takes no gradient")

    def set_boundary(self, result) -> None:
        """Class regions (a gui.model.boundary.BoundaryResult) behind the batch's points; None clears."""
        if result is None:
            self.regions.clear()
            return
        from gui.views.debug.boundary import BoundaryView
        self.regions.setImage(BoundaryView.region_colours(result), levels=(0, 255), lut=None)
        xmin, xmax, ymin, ymax = result.grid.bounds
        dx = (xmax - xmin) / max(1, result.grid.nx - 1)
        dy = (ymax - ymin) / max(1, result.grid.ny - 1)
        self.regions.setRect(pg.QtCore.QRectF(xmin - dx / 2, ymin - dy / 2, xmax - xmin + dx, ymax - ymin + dy))

    def batch_points(self) -> numpy.ndarray | None:
        """The batch's 2-D inputs (the first InnerProduct layer's a), or None when not 2-D."""
        first = next(iter(self.views.values()), None)
        if first is None or first.a is None or first.a.shape[1] != 2:
            return None
        return numpy.asarray(first.a, float)

    def point_sizes(self) -> numpy.ndarray | None:
        """Each batch point's size: its loss or |δ| at the selected layer, scaled to 6–26 px."""
        view = self.views.get(self.layer or "")
        how = self.size_combo.currentText()
        values = None
        if how == "loss" and self.outcome is not None:
            values = self.outcome.losses
        elif how == "|δ|" and view is not None and view.delta is not None:
            values = numpy.linalg.norm(numpy.asarray(view.delta, float), axis=1)
        if values is None:
            return None
        top = float(values.max()) if values.size else 0.0
        return 6.0 + 20.0 * (values / top if top > 0 else values * 0)

    def _draw_batch(self) -> None:
        points = self.batch_points()
        if points is None:
            self.batch_scatter.clear()
            self.selected_ring.clear()
            self.batch_title.setText("The batch: not 2-D data (the points plot needs 2 inputs)")
            return
        sizes = self.point_sizes()
        sizes = numpy.full(len(points), 9.0) if sizes is None or sizes.size != len(points) else sizes
        labels = self.outcome.labels if self.outcome is not None and self.outcome.labels.size == len(points) \
            else numpy.zeros(len(points), int)
        brushes = [pg.mkBrush(*CLASS_COLOURS[int(k) % len(CLASS_COLOURS)], 200) for k in labels]
        self.batch_scatter.setData(pos=points, size=sizes, brush=brushes, data=list(range(len(points))))
        m = min(self.m, len(points) - 1)
        self.selected_ring.setData(pos=points[m:m + 1])
        self.batch_title.setText(f"The batch: size = {self.size_combo.currentText()}; click a point to pick it")

    def _draw_confusion(self) -> None:
        outcome = self.outcome
        if outcome is None:
            self.confusion.setRowCount(0)
            self.confusion.setColumnCount(0)
            return
        matrix = outcome.confusion
        self.confusion.setRowCount(matrix.shape[0])
        self.confusion.setColumnCount(matrix.shape[1])
        self.confusion.setHorizontalHeaderLabels([f"pred {k}" for k in range(matrix.shape[1])])
        self.confusion.setVerticalHeaderLabels([f"true {k}" for k in range(matrix.shape[0])])
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                item = QTableWidgetItem(str(int(matrix[i, j])))
                if i == j:
                    item.setBackground(pg.mkColor(205, 240, 205))
                self.confusion.setItem(i, j, item)
        self.confusion.resizeColumnsToContents()
        m = self.m
        if m < outcome.labels.size:
            self.readout.setText(f"sample {m}: class {outcome.labels[m]}, predicted {outcome.predictions[m]}, "
                                 f"loss {outcome.losses[m]:.4g}; batch accuracy {outcome.accuracy:.0%}")

    def _draw_path(self) -> None:
        if not self.path:
            self.path_label.setText("")
            return
        lines = [f"sample {self.m}'s δ, loss → input:"]
        for step in self.path:
            shown = " ".join(f"{v:+.3f}" for v in step.row[:6]) + (" …" if step.row.size > 6 else "")
            lines.append(f"  {step.blob} (from {', '.join(step.layers)}): ‖δ‖={step.norm:.3g}  [{shown}]")
        self.path_label.setText("\n".join(lines))

    def path_notes(self) -> dict[str, str]:
        """Layer name -> a short line on sample m's δ at its top, for the graph."""
        notes: dict[str, str] = {}
        for step in self.path:
            for layer in step.layers:
                notes[layer] = f"δ[{self.m}] ‖{step.norm:.2g}‖"
        return notes


def install(window) -> SampleSharePanel:
    """Mount the panel as a dock (View menu), fed by each frame the window draws; a click on
    a row of the inspector's a or δ map picks that sample."""
    panel = SampleSharePanel()
    dock = add_tabbed_dock(window, "One sample's share", "sampleShareDock", panel)
    window.sample_share_dock = dock

    boundary: dict = {}  # id(net) -> BoundaryModel (or None: not a 2-input net)

    def on_frame(frame) -> None:
        if not panel.isVisible():
            return
        outcome = path = None
        if not frame.running and not window.worker.busy and window.session.solver is not None:
            with window.session.lock:
                net = window.session.solver.net
                outcome = share.batch_outcome(net)
                path = share.sample_path(net, panel.m)
                panel.set_boundary(_boundary_of(boundary, net))
        panel.set_views(frame.views, outcome, path)
        _show_path_on_graph(window, panel)

    def on_sample(m: int) -> None:
        session = window.session
        if session.solver is not None and not window.worker.busy:
            with session.lock:
                panel.path = share.sample_path(session.solver.net, m)
            panel._draw_path()
            _show_path_on_graph(window, panel)

    window.session.emitter.connect(lambda event: on_frame(event.frame), FrameReady)
    panel.sampleChanged.connect(on_sample)
    def on_shown() -> None:
        if window.session.frame is not None:
            on_frame(window.session.frame)
    panel.shown.connect(on_shown)
    def on_map_clicked(layer: str, which: str, row: int, _col: int) -> None:
        if which in ("a", "delta"):  # a row of a or δ is one sample
            panel.select_layer(layer)
            panel.select_sample(row)

    if window.inspector is not None:
        window.inspector.layerSelected.connect(panel.select_layer)
        window.inspector.mapCellClicked.connect(on_map_clicked)
    window.graph.layerSelected.connect(panel.select_layer)
    return panel


def _boundary_of(cache: dict, net):
    """The class regions of a 2-input net (a grid forward sharing its weights), else None."""
    from engine.errors import EngineError
    from gui.model.boundary import BoundaryModel
    if id(net) not in cache:
        cache.clear()
        try:
            cache[id(net)] = BoundaryModel(net, resolution=48)
        except (EngineError, KeyError, IndexError):
            cache[id(net)] = None
    model = cache[id(net)]
    return model.compute(responses=False) if model is not None else None


def _show_path_on_graph(window, panel: SampleSharePanel) -> None:
    setter = getattr(window.graph, "set_notes", None)
    if setter is not None:
        setter(panel.path_notes())
