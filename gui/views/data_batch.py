"""DataBatchView: the batch a data layer delivered, as the net saw it (after the transform).

Images are drawn as a grid of tiles, each with its label under it; 2-D points
(the spiral) as a scatter coloured by label; other flat rows as a table. It draws
a :class:`gui.model.data_batch.DataBatch` made by the worker.
"""
from __future__ import annotations

import html
import math

import numpy
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import (
    QLabel,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model.data_batch import IMAGES, POINTS, DataBatch, display_images
from gui.views import theme

CLASS_COLOURS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
                 (86, 180, 233), (120, 120, 120), (240, 228, 66), (0, 0, 0), (150, 75, 0)]
GAP = 6  # pixels between tiles


class TileCanvas(QWidget):
    """The batch's images in a grid as large as fits, each tile with its label beneath."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._images: list[QImage] = []
        self._pixels: numpy.ndarray | None = None  # keeps the QImages' memory alive
        self._labels: list[str] = []
        self._cells: list[tuple[QRect, QRect]] = []
        self.setMinimumSize(200, 150)

    def set_images(self, pixels: numpy.ndarray, labels: list[str]) -> None:
        """``pixels``: n×H×W×3 uint8; ``labels``: one text per image ('' for none)."""
        self._pixels = numpy.ascontiguousarray(pixels)
        n, h, w, _ = self._pixels.shape
        self._images = [QImage(self._pixels[k].data, w, h, 3 * w, QImage.Format.Format_RGB888) for k in range(n)]
        self._labels = labels
        self._layout()
        self.update()

    def cells(self) -> list[tuple[QRect, str]]:
        """(where the tile is drawn, its label) of every tile, as laid out now."""
        return [(image_rect, label) for (image_rect, _), label in zip(self._cells, self._labels)]

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self._layout()

    def _label_height(self) -> int:
        return self.fontMetrics().height() + 2 if any(self._labels) else 0

    def _layout(self) -> None:
        """Choose the columns that make the tiles largest, then place each tile and label."""
        n = len(self._images)
        self._cells = []
        if not n:
            return
        h, w = self._images[0].height(), self._images[0].width()
        width, height, text = max(1, self.width()), max(1, self.height()), self._label_height()
        best, best_cols = 0.0, 1
        for cols in range(1, n + 1):
            rows = math.ceil(n / cols)
            scale = min((width - GAP * (cols + 1)) / (cols * w), (height - GAP * (rows + 1) - rows * text) / (rows * h))
            if scale > best:
                best, best_cols = scale, cols
        scale = max(best, 0.1)
        if scale >= 1:
            scale = math.floor(scale)  # whole pixels per image pixel: crisp digits
        tw, th = max(1, int(w * scale)), max(1, int(h * scale))
        for k in range(n):
            r, c = divmod(k, best_cols)
            x = GAP + c * (tw + GAP)
            y = GAP + r * (th + text + GAP)
            self._cells.append((QRect(x, y, tw, th), QRect(x, y + th, tw, text)))

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.setFont(theme.font(theme.LABEL_PT, bold=True))
        for image, (image_rect, text_rect), label in zip(self._images, self._cells, self._labels):
            painter.drawImage(QRectF(image_rect), image)
            painter.setPen(QColor("#999999"))
            painter.drawRect(image_rect.adjusted(0, 0, -1, -1))
            if label:
                painter.setPen(QColor(theme.TEXT_COLOR))
                painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, label)
        painter.end()


class DataBatchView(QWidget):
    """The data layer's current batch: tiles with labels, a scatter, or a table."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._batch: DataBatch | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.heading = QLabel("")
        self.heading.setFont(theme.font(theme.TITLE_PT, bold=True))
        layout.addWidget(self.heading)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setFont(theme.font(theme.LABEL_PT))
        self.details.setStyleSheet(f"color: {theme.MUTED_COLOR};")
        layout.addWidget(self.details)
        self.canvas = TileCanvas()
        self.scatter_plot = pg.PlotWidget()
        self.scatter_plot.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=9, pen=pg.mkPen("#333333", width=0.5))
        self.scatter_plot.addItem(self.scatter)
        self.table = QTableWidget()
        self.table.setFont(theme.mono_font(theme.STATS_PT))
        self._pages = QStackedWidget()
        for page in (self.canvas, self.scatter_plot, self.table):
            self._pages.addWidget(page)
        layout.addWidget(self._pages, 1)

    def set_batch(self, batch: DataBatch) -> None:
        self._batch = batch
        self.heading.setText(f"{batch.layer}  ({batch.type}): the batch of the last forward")
        self.details.setText(self._details(batch))
        if batch.kind == IMAGES:
            self._pages.setCurrentWidget(self.canvas)
            self.canvas.set_images(display_images(batch), [batch.label_text(k) for k in range(batch.shown)])
        elif batch.kind == POINTS:
            self._pages.setCurrentWidget(self.scatter_plot)
            self._show_points(batch)
        else:
            self._pages.setCurrentWidget(self.table)
            self._show_table(batch)

    def batch(self) -> DataBatch | None:
        return self._batch

    def show_waiting(self, name: str) -> None:
        """``name`` was selected: say so until its batch arrives with the next frame."""
        if self._batch is None or self._batch.layer != name:
            self.heading.setText(f"{name}: waiting for its batch…")

    def page(self) -> str:
        """Which drawing is on screen: 'images', 'points' or 'table'."""
        return {0: "images", 1: "points", 2: "table"}[self._pages.currentIndex()]

    @staticmethod
    def _details(batch: DataBatch) -> str:
        shape = "×".join(str(d) for d in batch.data_shape)
        parts = [f"top '{html.escape(batch.data_name)}' {shape}"]
        if batch.shown < batch.batch_size:
            parts.append(f"first {batch.shown} of {batch.batch_size} shown")
        if batch.label_name:
            parts.append(f"labels from '{batch.label_name}'")
        if batch.reshaped:
            parts.append(f"rows drawn as images ({batch.reshaped})")
        parts.append("transform: " + (", ".join(batch.transform) if batch.transform else "none"))
        if batch.channel_order:
            parts.append(f"channels {batch.channel_order} (drawn as RGB)")
        if batch.kind == IMAGES:
            parts.append("grey levels span the batch's min..max")
        return "  ·  ".join(parts)

    def _show_points(self, batch: DataBatch) -> None:
        values = batch.values if batch.values is not None else numpy.zeros((0, 2), numpy.float32)
        labels = batch.labels.reshape(-1) if batch.labels is not None else numpy.zeros(values.shape[0])
        brushes = [pg.mkBrush(*CLASS_COLOURS[int(v) % len(CLASS_COLOURS)]) for v in labels[:values.shape[0]]]
        self.scatter.setData(x=values[:, 0], y=values[:, 1], brush=brushes)
        self.scatter_plot.setLabel("bottom", f"{batch.data_name}[:, 0]")
        self.scatter_plot.setLabel("left", f"{batch.data_name}[:, 1]")

    def _show_table(self, batch: DataBatch) -> None:
        values = batch.values if batch.values is not None else numpy.zeros((0, 0), numpy.float32)
        columns = min(values.shape[1], 32)
        label_column = 1 if batch.labels is not None else 0
        self.table.setRowCount(values.shape[0])
        self.table.setColumnCount(columns + label_column)
        headers = (["label"] if label_column else []) + [str(j) for j in range(columns)]
        self.table.setHorizontalHeaderLabels(headers)
        for r in range(values.shape[0]):
            if label_column:
                self.table.setItem(r, 0, QTableWidgetItem(batch.label_text(r)))
            for j in range(columns):
                self.table.setItem(r, j + label_column, QTableWidgetItem(f"{float(values[r, j]):.4g}"))
