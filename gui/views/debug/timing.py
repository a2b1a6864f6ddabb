"""TimingPanel: per-layer forward / backward milliseconds."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model.timing import TimingReport


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

    NOT_RUN = "Not timed yet for this net: press Time layers."

    def _run(self) -> None:
        if self.run_timing is not None:
            self.set_report(self.run_timing(self.iterations.value()))

    def clear(self) -> None:
        """Another net: the old table goes."""
        self.table.setRowCount(0)
        self.total.setText(self.NOT_RUN)

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
