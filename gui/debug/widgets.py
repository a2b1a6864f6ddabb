"""Qt panels of the debugger and classroom features; each observes a Qt-free core.

BreakpointsPanel (breakpoints.Breakpoints), RewindBar (rewind.History),
DecompositionPanel (decompose.Decomposition), BoundaryView
(boundary.BoundaryResult), TimingPanel (timing.TimingReport), OverlayTable
(overlays.LayerStats rows), GradCheckPanel (gradcheck_task.GradCheckTask).
None of them steps the solver: they are given providers / callbacks.
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QGridLayout, QHBoxLayout, QHeaderView, QLabel, QListWidget, QProgressBar,
                               QPushButton, QScrollArea, QSlider, QSpinBox, QSplitter, QTableView,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from . import breakpoints as bp
from . import overlays
from .boundary import BoundaryResult
from .decompose import Decomposition
from .gradcheck_task import GradCheckReport, GradCheckTask
from .rewind import History
from .timing import TimingReport

CLASS_COLOURS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
                 (86, 180, 233), (120, 120, 120), (240, 228, 66), (0, 0, 0), (150, 75, 0)]
CELL_HEIGHT = 255  # one decomposition map with its caption
PASS_COLOUR, FAIL_COLOUR = QColor(205, 240, 205), QColor(250, 190, 190)


def _heatmap_class():
    """The shared HeatmapView when it is available, else None (plain ImageItem fallback)."""
    try:
        from gui.heatmap import HeatmapView
    except ImportError:
        return None
    return HeatmapView


def _diverging_lut():
    """The app's blue-white-red map when the shared theme exists, else pyqtgraph's CET-D1."""
    try:
        from gui import theme
        return theme.DIVERGING.getLookupTable(nPts=256)
    except (ImportError, AttributeError):
        return pg.colormap.get("CET-D1").getLookupTable()


def _bold(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class _MapView(QWidget):
    """One titled matrix: HeatmapView when present, else a pyqtgraph ImageItem."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heatmap = _heatmap_class()
        self.array: numpy.ndarray | None = None
        if heatmap is not None:
            self.view = heatmap(title, compact=True)
            self.image = None
            layout.addWidget(self.view)
        else:
            layout.addWidget(_bold(title))
            self.view = pg.GraphicsLayoutWidget()
            plot = self.view.addPlot()
            plot.invertY(True)
            self.image = pg.ImageItem(axisOrder="row-major")
            plot.addItem(self.image)
            layout.addWidget(self.view)

    def set_array(self, array: numpy.ndarray, row_label: str = "row", col_label: str = "col") -> None:
        self.array = numpy.asarray(array)
        if self.image is None:
            self.view.set_matrix(self.array, row_label=row_label, col_label=col_label)
        else:
            m = float(numpy.nanmax(numpy.abs(self.array))) if self.array.size else 1.0
            m = m if math.isfinite(m) and m > 0 else 1.0
            display = self.array.reshape(self.array.shape[0], -1) if self.array.ndim != 1 \
                else self.array.reshape(-1, 1)
            self.image.setImage(display.astype(numpy.float32), levels=(-m, m), lut=_diverging_lut())


# -- breakpoints --------------------------------------------------------------------
class BreakpointsPanel(QWidget):
    """Switches and values for the break conditions, and the layer breakpoints list."""

    changed = Signal()

    def __init__(self, breakpoints: bp.Breakpoints | None = None, parent=None):
        super().__init__(parent)
        self.breakpoints = breakpoints if breakpoints is not None else bp.Breakpoints()
        self.nonfinite = bp.NonFinite()
        self.loss_above = bp.LossAbove(10.0)
        self.loss_rising = bp.LossRising(5)
        self.at_iteration = bp.AtIteration(100)
        self.nonfinite.enabled = True
        for condition in (self.loss_above, self.loss_rising, self.at_iteration):
            condition.enabled = False
        for condition in (self.nonfinite, self.loss_above, self.loss_rising, self.at_iteration):
            self.breakpoints.add(condition)
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.nonfinite_box = self._switch("Stop on the first NaN / inf", self.nonfinite)
        form.addRow(self.nonfinite_box)
        self.loss_above_box = self._switch("Loss above", self.loss_above)
        self.loss_above_value = QDoubleSpinBox(decimals=4, minimum=0.0, maximum=1e9, value=self.loss_above.value)
        self.loss_above_value.valueChanged.connect(lambda v: self._set(self.loss_above, "value", float(v)))
        form.addRow(self.loss_above_box, self.loss_above_value)
        self.loss_rising_box = self._switch("Loss rising for K iterations", self.loss_rising)
        self.loss_rising_k = QSpinBox(minimum=1, maximum=10000, value=self.loss_rising.k)
        self.loss_rising_k.valueChanged.connect(lambda v: self._set(self.loss_rising, "k", int(v)))
        form.addRow(self.loss_rising_box, self.loss_rising_k)
        self.at_iteration_box = self._switch("At iteration", self.at_iteration)
        self.at_iteration_n = QSpinBox(minimum=1, maximum=10**9, value=self.at_iteration.n)
        self.at_iteration_n.valueChanged.connect(lambda v: self._set(self.at_iteration, "n", int(v)))
        form.addRow(self.at_iteration_box, self.at_iteration_n)
        layout.addLayout(form)

        layout.addWidget(_bold("Layer breakpoints (stop before…)"))
        row = QHBoxLayout()
        self.layer_combo = QComboBox()
        self.phase_combo = QComboBox()
        self.phase_combo.addItems([bp.FORWARD, bp.BACKWARD])
        self.add_button = QPushButton("Add")
        self.add_button.clicked.connect(self._add_from_combos)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._remove_selected)
        for w in (self.layer_combo, self.phase_combo, self.add_button, self.remove_button):
            row.addWidget(w)
        layout.addLayout(row)
        self.layer_list = QListWidget()
        self.layer_list.setMaximumHeight(110)
        layout.addWidget(self.layer_list)
        self.stop_label = QLabel("No stop yet.")
        self.stop_label.setWordWrap(True)
        layout.addWidget(self.stop_label)
        layout.addStretch(1)

    def _switch(self, text: str, condition: bp.Condition) -> QCheckBox:
        box = QCheckBox(text)
        box.setChecked(condition.enabled)
        box.toggled.connect(lambda on: self._set(condition, "enabled", bool(on)))
        return box

    def _set(self, condition, name: str, value) -> None:
        setattr(condition, name, value)
        condition.reset()
        self.changed.emit()

    def set_layers(self, names: list[str]) -> None:
        self.layer_combo.clear()
        self.layer_combo.addItems(names)

    def add_layer_breakpoint(self, layer: str, phase: str = bp.FORWARD) -> bp.LayerBreak:
        condition = self.breakpoints.add(bp.LayerBreak(layer, phase))
        self.layer_list.addItem(condition.name)
        self.changed.emit()
        return condition

    def layer_breakpoints(self) -> list[bp.LayerBreak]:
        return [c for c in self.breakpoints.conditions if isinstance(c, bp.LayerBreak)]

    def _add_from_combos(self) -> None:
        if self.layer_combo.currentText():
            self.add_layer_breakpoint(self.layer_combo.currentText(), self.phase_combo.currentText())

    def _remove_selected(self) -> None:
        row = self.layer_list.currentRow()
        if row < 0:
            return
        self.breakpoints.remove(self.layer_breakpoints()[row])
        self.layer_list.takeItem(row)
        self.changed.emit()

    def show_stop(self, stop: bp.Stop | None) -> None:
        self.stop_label.setText("No stop yet." if stop is None else f"Stopped: {stop.reason}")
        self.stop_label.setStyleSheet("" if stop is None else "color: #a00000; font-weight: bold;")


# -- rewind ---------------------------------------------------------------------------
class RewindBar(QWidget):
    """History slider + Step Back, with the memory the kept states use.

    ``solver_provider()`` returns the solver to restore into; ``lock`` (optional)
    is held while restoring. ``restored(position)`` is emitted after a restore.
    """

    restored = Signal(int)

    #: ms between refreshes while another thread records (the worker must not wake the GUI per iteration)
    POLL_MS = 250

    def __init__(self, history: History, solver_provider: Callable, lock=None, parent=None, *,
                 before_restore: Callable[[], None] | None = None):
        super().__init__(parent)
        self.history = history
        self.solver_provider = solver_provider
        self.lock = lock
        self.before_restore = before_restore  # e.g. pause the worker and wait until it is idle
        self._updating = False
        layout = QHBoxLayout(self)
        self.back_button = QPushButton("◀ Step Back")
        self.back_button.setToolTip("Restore the state before the last iteration or edit (Shift+F10)")
        self.back_button.clicked.connect(self.step_back)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self._slider_moved)
        self.position_label = QLabel()
        self.position_label.setMinimumWidth(150)
        self.capacity = QSpinBox(minimum=2, maximum=100000, value=history.capacity)
        self.capacity.setPrefix("keep ")
        self.capacity.setSuffix(" states")
        self.capacity.valueChanged.connect(lambda n: self.history.set_capacity(int(n)))
        self.memory_label = QLabel()
        for w in (self.back_button, self.slider, self.position_label, self.capacity, self.memory_label):
            layout.addWidget(w)
        layout.setStretchFactor(self.slider, 1)
        self._refresh_pending = False
        self._seen_version = -1
        self._poll = QTimer(self)
        self._poll.setInterval(self.POLL_MS)
        self._poll.timeout.connect(self._poll_refresh)
        self._poll.start()
        history.subscribe(self._on_history_changed)
        self.refresh()

    def _locked(self):
        return self.lock if self.lock is not None else contextlib.nullcontext()

    def _on_history_changed(self, _history) -> None:
        """On the GUI thread: refresh now. From another thread (the worker recording every
        iteration): only mark it; the poll timer refreshes a few times a second."""
        if threading.current_thread() is threading.main_thread():  # the GUI thread
            self.refresh()
        else:
            self._refresh_pending = True

    def _poll_refresh(self) -> None:
        """A few times a second: show what the worker recorded (plain iterations only
        bump the history's version, see History.subscribe)."""
        if (self._refresh_pending or self.history.version != self._seen_version) and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        self._refresh_pending = False
        self._seen_version = self.history.version
        self._updating = True
        s = self.history.summary()
        count = s["count"]
        self.slider.setMaximum(max(0, count - 1))
        self.slider.setValue(max(0, s["position"]))
        self.slider.setEnabled(count > 1)
        self.back_button.setEnabled(s["can_step_back"])
        self.position_label.setText("no history yet" if not count else
                                    f"{s['position'] + 1}/{count}: {s['label']}")
        self.memory_label.setText(s["describe"])
        self._updating = False

    def _slider_moved(self, value: int) -> None:
        if not self._updating and value != self.history.position:
            self.goto(value)

    def goto(self, position: int) -> None:
        if self.before_restore is not None:
            self.before_restore()
        with self._locked():
            self.history.goto(self.solver_provider(), position)
        self.restored.emit(position)

    def step_back(self) -> None:
        if self.history.can_step_back():
            self.goto(self.history.position - 1)


# -- decomposition ------------------------------------------------------------------------
class DecompositionPanel(QWidget):
    """The update of one parameter taken apart: one map per stage with its formula.

    Maps are drawn for the stages in ``MAP_TERMS``; the additive pieces (momentum,
    gradient and decay steps) are listed with their norms in the header.
    """

    MAP_TERMS = ("dW", "clipped", "decay", "history", "history2", "update", "W_before", "W_after")

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.header = _bold("Select an InnerProduct layer and step to see its update taken apart.")
        self.header.setWordWrap(True)
        self.numbers = QLabel("")
        self.numbers.setWordWrap(True)
        layout.addWidget(self.header)
        layout.addWidget(self.numbers)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(4)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        layout.addWidget(scroll, 1)
        self.maps: dict[str, _MapView] = {}
        self.captions: dict[str, QLabel] = {}
        self.decomposition: Decomposition | None = None

    def set_decomposition(self, d: Decomposition, columns: int = 4) -> None:
        self.decomposition = d
        self.header.setText(f"{d.param}: the {d.solver_type} update of iteration {d.iteration}, stage by stage")
        check = ""
        total = d.pieces_sum()
        if total is not None:
            names = " + ".join(f"{d.term(k).title} (‖·‖ {float(numpy.linalg.norm(d.term(k).array)):.3g})"
                               for k in d.pieces)
            check = f"\nΔW = {names}   (max |sum − ΔW| = {float(numpy.abs(total - d.update).max()):.1e})"
        self.numbers.setText(d.numbers_text() + check)
        terms = [t for t in d.terms if t.key in self.MAP_TERMS]
        if list(self.maps) != [t.key for t in terms]:
            for widget in list(self.maps.values()) + list(self.captions.values()):
                widget.setParent(None)
            self.maps, self.captions = {}, {}
            for k, term in enumerate(terms):
                cell = QWidget()
                v = QVBoxLayout(cell)
                v.setContentsMargins(0, 0, 0, 0)
                view = _MapView(term.title)
                view.setMinimumSize(150, 150)
                cell.setFixedHeight(CELL_HEIGHT)
                caption = QLabel()
                caption.setWordWrap(True)
                v.addWidget(view, 1)
                v.addWidget(caption)
                self.grid.addWidget(cell, k // columns, k % columns)
                self.maps[term.key], self.captions[term.key] = view, caption
        for term in terms:
            self.maps[term.key].set_array(term.array, "output (N_)", "input (K_)")
            self.captions[term.key].setText(" · ".join(t for t in (term.formula, term.numbers) if t))


# -- decision boundary -------------------------------------------------------------------------
class BoundaryView(QWidget):
    """Class regions (colour = most likely class, paleness = uncertainty) behind the data points;
    or one hidden unit's response map (chosen below the plot, or by selecting a layer)."""

    CLASSES = "class regions"

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.title = _bold("Decision boundary")
        layout.addWidget(self.title)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setAspectLocked(True)
        self.plot = self.plot_widget.getPlotItem()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.scatter = pg.ScatterPlotItem(size=6, pen=pg.mkPen("k", width=0.6))
        self.plot.addItem(self.scatter)
        layout.addWidget(self.plot_widget, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        self.layer_combo = QComboBox()
        self.layer_combo.addItem(self.CLASSES)
        self.unit_spin = QSpinBox(minimum=0, maximum=0)
        self.unit_spin.setPrefix("unit ")
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.unit_spin)
        layout.addLayout(row)
        self.layer_combo.currentTextChanged.connect(lambda _t: self._redraw())
        self.unit_spin.valueChanged.connect(lambda _v: self._redraw())
        self.result: BoundaryResult | None = None
        self.rgb: numpy.ndarray | None = None
        self.setMinimumSize(220, 240)

    @staticmethod
    def region_colours(result: BoundaryResult) -> numpy.ndarray:
        """(ny, nx, 3) uint8: each class's colour blended toward white by (1 − its probability)."""
        probs = result.probabilities
        palette = numpy.array([CLASS_COLOURS[k % len(CLASS_COLOURS)] for k in range(probs.shape[-1])], float)
        confidence = probs.max(axis=-1, keepdims=True)
        base = palette[result.classes]
        strength = 0.25 + 0.5 * (confidence - 1.0 / probs.shape[-1]) / max(1e-9, 1 - 1.0 / probs.shape[-1])
        return (255 - (255 - base) * strength).clip(0, 255).astype(numpy.uint8)

    def _place(self, result: BoundaryResult) -> None:
        xmin, xmax, ymin, ymax = result.grid.bounds
        nx, ny = result.grid.nx, result.grid.ny
        dx, dy = (xmax - xmin) / max(1, nx - 1), (ymax - ymin) / max(1, ny - 1)
        self.image.setRect(pg.QtCore.QRectF(xmin - dx / 2, ymin - dy / 2, xmax - xmin + dx, ymax - ymin + dy))

    def set_result(self, result: BoundaryResult, points=None, labels=None) -> None:
        self.result = result
        names = [self.CLASSES] + list(result.responses)
        if [self.layer_combo.itemText(i) for i in range(self.layer_combo.count())] != names:
            current = self.layer_combo.currentText()
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            self.layer_combo.addItems(names)
            self.layer_combo.setCurrentText(current if current in names else self.CLASSES)
            self.layer_combo.blockSignals(False)
        if points is not None:
            labels = numpy.zeros(len(points), int) if labels is None else numpy.asarray(labels, int)
            brushes = [pg.mkBrush(*CLASS_COLOURS[k % len(CLASS_COLOURS)]) for k in labels]
            self.scatter.setData(pos=numpy.asarray(points, float), brush=brushes)
        self._redraw()

    def _redraw(self) -> None:
        result = self.result
        if result is None:
            return
        layer = self.layer_combo.currentText()
        if layer in result.responses:
            units = result.responses[layer].shape[-1]
            self.unit_spin.setMaximum(units - 1)
            self.unit_spin.setEnabled(True)
            unit = self.unit_spin.value()
            response = result.responses[layer][:, :, unit]
            m = float(numpy.abs(response).max()) or 1.0
            self.image.setImage(response.astype(numpy.float32), levels=(-m, m), lut=_diverging_lut())
            self.title.setText(f"{layer} unit {unit}: its output over the input plane (blue < 0 < red)")
        else:
            self.unit_spin.setEnabled(False)
            self.rgb = self.region_colours(result)
            self.image.setImage(self.rgb, levels=(0, 255), lut=None)
            self.title.setText(f"Decision boundary ({result.probabilities.shape[-1]} classes; pale = unsure)")
        self._place(result)

    def show_response(self, layer: str, unit: int = 0) -> bool:
        """Draw hidden unit ``unit`` of ``layer``; False when the layer has no response map."""
        if self.result is None or layer not in self.result.responses:
            return False
        self.layer_combo.setCurrentText(layer)
        self.unit_spin.setMaximum(self.result.responses[layer].shape[-1] - 1)
        self.unit_spin.setValue(unit)
        self._redraw()
        return True

    def show_classes(self) -> None:
        self.layer_combo.setCurrentText(self.CLASSES)


# -- timing ----------------------------------------------------------------------------------
class TimingPanel(QWidget):
    """Per-layer forward / backward ms (``caffe time``); ``run_timing(n)`` is the caller's."""

    def __init__(self, run_timing: Callable[[int], TimingReport] | None = None, parent=None):
        super().__init__(parent)
        self.run_timing = run_timing
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.iterations = QSpinBox(minimum=1, maximum=1000, value=10)
        self.iterations.setPrefix("average of ")
        self.iterations.setSuffix(" passes")
        self.button = QPushButton("Time layers")
        self.button.clicked.connect(self._run)
        row.addWidget(self.iterations)
        row.addWidget(self.button)
        row.addStretch(1)
        layout.addLayout(row)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["layer", "type", "forward ms", "backward ms"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)
        self.total = QLabel("")
        layout.addWidget(self.total)

    def _run(self) -> None:
        if self.run_timing is not None:
            self.set_report(self.run_timing(self.iterations.value()))

    def set_report(self, report: TimingReport) -> None:
        self.table.setRowCount(len(report.layers))
        slowest = max((t.total_ms for t in report.layers), default=0.0)
        for r, t in enumerate(report.layers):
            cells = [t.layer, t.type, f"{t.forward_ms:.4f}", f"{t.backward_ms:.4f}"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if t.total_ms == slowest and slowest > 0:
                    item.setBackground(QColor(255, 235, 200))
                self.table.setItem(r, c, item)
        self.total.setText(f"forward {report.forward_ms:.3f} ms + backward {report.backward_ms:.3f} ms = "
                           f"{report.forward_ms + report.backward_ms:.3f} ms per iteration "
                           f"(average of {report.iterations})")


# -- overlays ---------------------------------------------------------------------------------
class LayerStatsModel(QAbstractTableModel):
    """overlays.layer_stats rows as a Qt table model."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[overlays.LayerStats] = []
        self.colour_key = "ratio"
        self.colours: dict = {}

    def set_rows(self, rows: list[overlays.LayerStats]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.colours = overlays.node_colours(rows, self.colour_key)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(overlays.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return overlays.COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        value = row.values()[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if value is None:
                return "—"
            return value if isinstance(value, str) else f"{value:.4g}"
        if role == Qt.ItemDataRole.BackgroundRole and index.column() == 0:
            colour = self.colours.get(row.layer)
            return QBrush(QColor(*colour)) if colour else None
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class _Legend(QWidget):
    """A horizontal colour ramp with its log10 range."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.low, self.high, self.title = 0.0, 1.0, ""
        self.setMinimumHeight(50)

    def set_range(self, title: str, low: float, high: float) -> None:
        self.title, self.low, self.high = title, low, high
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        width = max(40, self.width() - 20)
        painter.setPen(QPen(self.palette().windowText().color()))
        painter.drawText(QRectF(10, 0, width, 16), int(Qt.AlignmentFlag.AlignHCenter), self.title)
        gradient = QLinearGradient(10, 0, 10 + width, 0)
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            gradient.setColorAt(t, QColor(*overlays.ramp(t)))
        painter.fillRect(QRectF(10, 18, width, 12), gradient)
        painter.drawText(QRectF(10, 32, width, 16), int(Qt.AlignmentFlag.AlignLeft), f"{10 ** self.low:.2g}")
        painter.drawText(QRectF(10, 32, width, 16), int(Qt.AlignmentFlag.AlignRight), f"{10 ** self.high:.2g}")
        painter.end()


class OverlayTable(QWidget):
    """Live debug_info: the table, a metric chooser for the graph colouring, and its legend.

    ``colouring_changed(dict)`` carries {layer: (r, g, b) | None} for the graph view.
    """

    colouring_changed = Signal(dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Colour the graph by"))
        self.metric_combo = QComboBox()
        for key, title in overlays.METRICS.items():
            self.metric_combo.addItem(title, key)
        self.metric_combo.setCurrentIndex(list(overlays.METRICS).index("ratio"))
        self.metric_combo.currentIndexChanged.connect(self._metric_changed)
        row.addWidget(self.metric_combo)
        row.addStretch(1)
        layout.addLayout(row)
        self.legend = _Legend()
        layout.addWidget(self.legend)
        self.model = LayerStatsModel(self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.view, 1)

    def _metric_changed(self) -> None:
        self.model.colour_key = self.metric_combo.currentData()
        self.set_rows(self.model.rows)

    def set_rows(self, rows: list[overlays.LayerStats]) -> None:
        self.model.set_rows(rows)
        key = self.model.colour_key
        low, high = overlays.colour_scale(rows, key)
        self.legend.set_range(overlays.METRICS[key] + " (log scale)", low, high)
        self.colouring_changed.emit(self.model.colours)

    def refresh_from(self, net) -> None:
        self.set_rows(overlays.layer_stats(net))


# -- gradient check ------------------------------------------------------------------------------
class _Relay(QObject):
    progress = Signal(int, int)
    done = Signal(object)


class GradCheckPanel(QWidget):
    """Run button, progress bar, per-blob verdicts and the error map of the selected blob.

    ``net_provider()`` returns the net to check (called on the GUI thread while paused).
    ``finished(report)`` is emitted on the GUI thread; ``failed_layers`` to mark the graph.
    """

    finished = Signal(object)

    def __init__(self, net_provider: Callable | None = None, parent=None):
        super().__init__(parent)
        self.net_provider = net_provider
        self.task: GradCheckTask | None = None
        self.report: GradCheckReport | None = None
        self.relay = _Relay(self)
        self.relay.progress.connect(self._on_progress)
        self.relay.done.connect(self._on_done)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.button = QPushButton("Gradient check")
        self.button.setToolTip("Compare every backward with central differences (float64, current batch)")
        self.button.clicked.connect(lambda: self.start())
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m layers")
        row.addWidget(self.button)
        row.addWidget(self.progress, 1)
        layout.addLayout(row)
        self.verdict = _bold("Not run yet. Threshold rule: |a − n| ≤ 1e-5 · max(|a|, |n|, 1); kinks skipped.")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["layer", "blob", "worst rel. error", "checked / skipped", "verdict"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.currentCellChanged.connect(lambda r, *_: self.show_blob(r))
        splitter.addWidget(self.table)
        maps = QWidget()
        maps_layout = QHBoxLayout(maps)
        maps_layout.setContentsMargins(0, 0, 0, 0)
        self.error_map = _MapView("per-element relative error (0 where not sampled)")
        self.analytic_map = _MapView("analytic gradient")
        maps_layout.addWidget(self.error_map)
        maps_layout.addWidget(self.analytic_map)
        splitter.addWidget(maps)
        layout.addWidget(splitter, 1)

    def start(self, layers: list[str] | None = None) -> GradCheckTask | None:
        """Check every layer (or only ``layers``) in a background thread."""
        if self.net_provider is None or (self.task is not None and not self.task.wait(0)):
            return None
        self.task = GradCheckTask(self.net_provider(), layers)
        self.button.setEnabled(False)
        self.progress.setValue(0)
        self.verdict.setText("Checking…")
        self.task.start(self.relay.progress.emit, self.relay.done.emit)
        return self.task

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _on_done(self, result) -> None:
        self.button.setEnabled(True)
        if isinstance(result, BaseException):
            self.verdict.setText(f"The check could not run: {result}")
            return
        self.set_report(result)
        self.finished.emit(result)

    def set_report(self, report: GradCheckReport) -> None:
        self.report = report
        self.progress.setMaximum(max(1, len({b.layer for b in report.blobs})))
        self.progress.setValue(self.progress.maximum())
        self.table.setRowCount(len(report.blobs))
        for r, b in enumerate(report.blobs):
            cells = [b.layer, b.blob, f"{b.worst_error:.2e}", f"{b.checked} / {b.skipped}",
                     "ok" if b.passed else "FAIL"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setBackground(PASS_COLOUR if b.passed else FAIL_COLOUR)
                self.table.setItem(r, c, item)
        if report.passed:
            self.verdict.setText(f"All {len(report.blobs)} gradients agree with central differences.")
            self.verdict.setStyleSheet("color: #006000;")
        else:
            self.verdict.setText(f"Backward disagrees with the numeric gradient in: {', '.join(report.failed_layers)}")
            self.verdict.setStyleSheet("color: #a00000;")
        worst = max(range(len(report.blobs)), key=lambda k: report.blobs[k].worst_error, default=-1)
        if worst >= 0:
            self.table.selectRow(worst)
            self.show_blob(worst)

    def show_blob(self, row: int) -> None:
        if self.report is None or not 0 <= row < len(self.report.blobs):
            return
        blob = self.report.blobs[row]
        self.error_map.set_array(numpy.nan_to_num(blob.error, nan=0.0), "row", "column")
        self.analytic_map.set_array(blob.analytic, "row", "column")


# -- weights as images ------------------------------------------------------------------------------
class WeightTilesView(QWidget):
    """Each output's weights over an image input as a tile (blue < 0 < red, grey between tiles).

    ``mosaic_provider(layer)`` returns a tiles.Mosaic for the chosen layer.
    """

    def __init__(self, mosaic_provider: Callable | None = None, parent=None):
        super().__init__(parent)
        self.mosaic_provider = mosaic_provider
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Layer"))
        self.layer_combo = QComboBox()
        self.layer_combo.currentTextChanged.connect(lambda _t: self.refresh())
        row.addWidget(self.layer_combo, 1)
        layout.addLayout(row)
        self.title = _bold("")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setAspectLocked(True)
        self.plot_widget.setBackground("#9a9a9a")
        self.plot_widget.getPlotItem().invertY(True)
        self.plot_widget.getPlotItem().hideAxis("left")
        self.plot_widget.getPlotItem().hideAxis("bottom")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot_widget.addItem(self.image)
        layout.addWidget(self.plot_widget, 1)
        self.mosaic = None
        self.setMinimumSize(220, 240)

    def set_layers(self, names: list[str]) -> None:
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self.title.setText("" if names else "No layer of this net takes an image as input.")

    def refresh(self) -> None:
        name = self.layer_combo.currentText()
        if self.mosaic_provider is not None and name:
            self.set_mosaic(self.mosaic_provider(name))

    def set_mosaic(self, mosaic) -> None:
        self.mosaic = mosaic
        finite = mosaic.image[numpy.isfinite(mosaic.image)]
        m = float(numpy.percentile(numpy.abs(finite), 99)) if finite.size else 1.0  # one outlier must not wash out
        m = m if m > 0 else 1.0
        self.image.setImage(mosaic.image, levels=(-m, m), lut=_diverging_lut())
        n, channels, h, w = mosaic.tiles.shape
        per = f"{channels}×{h}×{w}" if channels > 1 else f"{h}×{w}"
        self.title.setText(f"{mosaic.layer}: {n} tiles of {per}, one per output (colours ±{m:.3g}, 99th pct)")
