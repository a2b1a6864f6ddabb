"""The Draw data panel (gui.model.drawn_data): click to add a point of the chosen class,
drag to paint, right-click to erase; the net builder's net then trains on the drawn
points (an HDF5Data source written on each change, the weights kept). Export HDF5
writes them alone; the net builder's Save puts them beside the net.
"""
from __future__ import annotations

import os
import tempfile
from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.model import net_builder as nb
from gui.model.drawn_data import DrawnData
from gui.views.debug.common import CLASS_COLOURS
from gui.views.docks import add_tabbed_dock

#: Painting leaves a point at most every this fraction of the view's width; erasing takes this radius.
PAINT_SPACING, ERASE_RADIUS = 0.03, 0.06


class DrawingBox(pg.ViewBox):
    """A view box whose mouse draws: left click adds, left drag paints, right click/drag erases."""

    def __init__(self, panel: DrawnDataPanel):
        super().__init__(enableMenu=False)
        self.panel = panel
        self.setMouseEnabled(x=False, y=False)

    def _scale(self) -> float:
        (x0, x1), _ = self.viewRange()
        return float(x1 - x0) or 1.0

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph naming)
        point = self.mapSceneToView(ev.scenePos())
        if ev.button() == Qt.MouseButton.LeftButton:
            self.panel.add_point(point.x(), point.y())
        elif ev.button() == Qt.MouseButton.RightButton:
            self.panel.erase(point.x(), point.y(), ERASE_RADIUS * self._scale())
        ev.accept()

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph naming)
        point = self.mapSceneToView(ev.scenePos())
        if ev.button() == Qt.MouseButton.LeftButton:
            self.panel.paint(point.x(), point.y(), PAINT_SPACING * self._scale())
        elif ev.button() == Qt.MouseButton.RightButton:
            self.panel.erase(point.x(), point.y(), ERASE_RADIUS * self._scale())
        if ev.isFinish():
            self.panel.changed_now()
        ev.accept()


class DrawnDataPanel(QWidget):
    """The drawing, the class to draw, where to start from, Use for training, Export."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.data = DrawnData.from_dataset("xor", num_points=80, num_classes=2)
        self.on_change: Callable[[DrawnData], None] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Start from"))
        self.start = QComboBox()
        self.start.addItems(["(empty)"] + list(nb.DATASETS))
        self.start.setCurrentText("xor")
        row.addWidget(self.start)
        row.addWidget(QLabel("class"))
        self.label_spin = QSpinBox(minimum=0, maximum=len(CLASS_COLOURS) - 1)
        row.addWidget(self.label_spin)
        layout.addLayout(row)
        self.box = DrawingBox(self)
        self.plot = pg.PlotWidget(viewBox=self.box)
        self.plot.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("k", width=0.5))
        self.plot.addItem(self.scatter)
        layout.addWidget(self.plot, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train on these points")
        self.export_button = QPushButton("Export HDF5…")
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.export_button)
        layout.addLayout(buttons)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(400)  # a burst of clicks rebuilds once
        self._timer.timeout.connect(self.changed_now)
        self.start.currentTextChanged.connect(self._on_start)
        self.train_button.clicked.connect(self.changed_now)
        self.redraw()
        self.box.setRange(xRange=(-1.5, 1.5), yRange=(-1.5, 1.5))

    # -- drawing ---------------------------------------------------------------------
    def add_point(self, x: float, y: float) -> None:
        self.data.add(x, y, self.label_spin.value())
        self._changed()

    def paint(self, x: float, y: float, spacing: float) -> None:
        if self.data.paint(x, y, self.label_spin.value(), spacing):
            self.redraw()

    def erase(self, x: float, y: float, radius: float) -> None:
        if self.data.erase(x, y, radius):
            self._changed()

    def _on_start(self, name: str) -> None:
        if name == "(empty)":
            self.data = DrawnData(num_classes=2)
        else:
            self.data = DrawnData.from_dataset(name, num_points=100, num_classes=nb.DATASETS[name])
        self._changed()

    def _changed(self) -> None:
        self.redraw()
        self._timer.start()

    def changed_now(self) -> None:
        """Hand the points to the net now (the net builder rebuilds on them)."""
        self._timer.stop()
        if self.on_change is not None and len(self.data) and len(set(self.data.labels.tolist())) >= 1:
            self.on_change(self.data)

    def redraw(self) -> None:
        data = self.data
        brushes = [pg.mkBrush(*CLASS_COLOURS[int(k) % len(CLASS_COLOURS)]) for k in data.labels]
        self.scatter.setData(pos=numpy.asarray(data.points, float).reshape(-1, 2), brush=brushes)
        counts = ", ".join(f"class {k}: {n}" for k, n in enumerate(data.counts()))
        self.status.setText(f"{len(data)} points ({counts}). Click: add · drag: paint · right-click: erase")


def install(window) -> DrawnDataPanel:
    """The Draw data dock: its points become the net builder's training data."""
    panel = DrawnDataPanel()
    dock = add_tabbed_dock(window, "Draw data", "drawnDataDock", panel)
    window.drawn_data_dock, window.drawn_data = dock, panel
    folder = tempfile.mkdtemp(prefix="backprop-drawn-")
    builder = window.net_builder

    def train_on(data: DrawnData) -> None:
        source = data.save(folder)
        design = builder.design
        design.drawn_source, design.drawn_classes = source, data.num_classes
        design.batch_size = min(32, len(data))
        builder.show_design()
        if builder.on_edit is not None:
            builder.on_edit(f"drawn data: {len(data)} points, {data.num_classes} classes")

    def export() -> None:
        path, _ = QFileDialog.getSaveFileName(window, "Export the drawn points", os.path.join(os.getcwd(),
                                              "drawn_points.h5"), "HDF5 (*.h5)")
        if path:
            try:
                panel.data.to_hdf5(path)
            except Exception as exc:
                window.errors.report_exception("Could not export the points", exc)
                return
            window.statusBar().showMessage(f"Wrote {len(panel.data)} points to {path}", 8000)

    panel.on_change = train_on
    panel.export_button.clicked.connect(export)
    return panel
