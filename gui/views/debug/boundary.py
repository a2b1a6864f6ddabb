"""BoundaryView: class regions or a unit's response over the input plane."""
from __future__ import annotations

import numpy
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.model.boundary import BoundaryResult
from gui.views.debug.common import CLASS_COLOURS, bold, diverging_lut


class BoundaryView(QWidget):
    """Class regions (colour = most likely class, paleness = uncertainty) behind the data points;
    or one hidden unit's response map (chosen below the plot, or by selecting a layer)."""

    CLASSES = "class regions"

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.title = bold("Decision boundary")
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
            self.image.setImage(response.astype(numpy.float32), levels=(-m, m), lut=diverging_lut())
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

    def clear(self, text: str) -> None:
        """Nothing to draw (another net, not computed yet): say why."""
        self.result, self.rgb = None, None
        self.image.clear()
        self.scatter.clear()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItem(self.CLASSES)
        self.layer_combo.blockSignals(False)
        self.title.setText(text)
