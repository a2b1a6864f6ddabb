"""WeightTilesView: weights over an image input as tiles."""
from __future__ import annotations

from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from gui.views.debug.common import bold, diverging_lut


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
        self.title = bold("")
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
        self.mosaic = None
        self.image.clear()
        self.title.setText("" if names else "No layer of this net takes an image as input.")
        if names and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        name = self.layer_combo.currentText()
        if self.mosaic_provider is not None and name:
            self.set_mosaic(self.mosaic_provider(name))

    def set_mosaic(self, mosaic) -> None:
        self.mosaic = mosaic
        finite = mosaic.image[numpy.isfinite(mosaic.image)]
        m = float(numpy.percentile(numpy.abs(finite), 99)) if finite.size else 1.0  # one outlier must not wash out
        m = m if m > 0 else 1.0
        self.image.setImage(mosaic.image, levels=(-m, m), lut=diverging_lut())
        n, channels, h, w = mosaic.tiles.shape
        per = f"{channels}×{h}×{w}" if channels > 1 else f"{h}×{w}"
        self.title.setText(f"{mosaic.layer}: {n} tiles of {per}, one per output (colours ±{m:.3g}, 99th pct)")
