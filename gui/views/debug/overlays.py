"""OverlayTable: debug_info per layer, as a table and a colour legend."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.model import overlays


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

    def rowCount(self, parent=None) -> int:  # noqa: N802 (Qt API)
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent=None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(overlays.COLUMNS)

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
