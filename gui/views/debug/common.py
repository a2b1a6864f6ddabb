"""What the debugger panels share: class colours, the diverging colour map, bold
titles and one titled matrix view (MapView)."""
from __future__ import annotations

import math

import numpy
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QLabel,
    QVBoxLayout,
    QWidget,
)

CLASS_COLOURS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
                 (86, 180, 233), (120, 120, 120), (240, 228, 66), (0, 0, 0), (150, 75, 0)]
PASS_COLOUR, FAIL_COLOUR = QColor(205, 240, 205), QColor(250, 190, 190)


def heatmap_class():
    """The shared HeatmapView when it is available, else None (plain ImageItem fallback)."""
    try:
        from gui.views.heatmap import HeatmapView
    except ImportError:
        return None
    return HeatmapView


def diverging_lut():
    """The app's blue-white-red map when the shared theme exists, else pyqtgraph's CET-D1."""
    try:
        from gui.views import theme
        return theme.DIVERGING.getLookupTable(nPts=256)
    except (ImportError, AttributeError):
        return pg.colormap.get("CET-D1").getLookupTable()


def bold(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class MapView(QWidget):
    """One titled matrix: HeatmapView when present, else a pyqtgraph ImageItem."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heatmap = heatmap_class()
        self.array: numpy.ndarray | None = None
        if heatmap is not None:
            self.view = heatmap(title, compact=True)
            self.image = None
            layout.addWidget(self.view)
        else:
            layout.addWidget(bold(title))
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
            self.image.setImage(display.astype(numpy.float32), levels=(-m, m), lut=diverging_lut())

    def clear(self, text: str = "") -> None:
        """No matrix (another net was loaded): a placeholder instead."""
        self.array = None
        if self.image is None:
            self.view.set_placeholder(text)
        else:
            self.image.clear()
