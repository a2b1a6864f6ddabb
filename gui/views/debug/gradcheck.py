"""GradCheckPanel: the gradient check's verdicts and error maps."""
from __future__ import annotations

from typing import Callable

import numpy
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model.gradcheck import GradCheckReport, GradCheckTask
from gui.views.debug.common import FAIL_COLOUR, PASS_COLOUR, MapView, bold


class _Relay(QObject):
    progress = Signal(int, int)
    done = Signal(object)


class GradCheckPanel(QWidget):
    """Run button, progress bar, per-blob verdicts and the error map of the selected blob.

    ``net_provider()`` returns the net to check (called on the GUI thread while paused).
    ``finished(report)`` is emitted on the GUI thread; ``failed_layers`` to mark the graph.
    """

    finished = Signal(object)
    NOT_RUN = "Not run yet. Threshold rule: |a − n| ≤ 1e-5 · max(|a|, |n|, 1); kinks skipped."

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
        self.verdict = bold(self.NOT_RUN)
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["layer", "blob", "worst rel. error", "checked / skipped", "verdict"])
        header = self.table.horizontalHeader()  # whole headers: columns fit their text, the last one stretches
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.currentCellChanged.connect(lambda r, *_: self.show_blob(r))
        splitter.addWidget(self.table)
        # Six rows and the header stay readable whatever the dock's size (issue 16).
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height()
                                    + 6 * self.table.verticalHeader().defaultSectionSize()
                                    + 2 * self.table.frameWidth() + 2
                                    + self.table.horizontalScrollBar().sizeHint().height())  # wide columns scroll
        splitter.setChildrenCollapsible(False)
        maps = QWidget()
        maps_layout = QHBoxLayout(maps)
        maps_layout.setContentsMargins(0, 0, 0, 0)
        self.error_map = MapView("per-element relative error (0 where not sampled)")
        self.analytic_map = MapView("analytic gradient")
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
        task = self.task
        task.start(self.relay.progress.emit, lambda result: self.relay.done.emit((task, result)))
        return task

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def clear(self) -> None:
        """Another net: forget the report (a check still running on the old net is ignored)."""
        self.task, self.report = None, None
        self.button.setEnabled(True)
        self.progress.setValue(0)
        self.table.setRowCount(0)
        self.verdict.setText(self.NOT_RUN)
        self.verdict.setStyleSheet("")
        self.error_map.clear("run the check to see the errors")
        self.analytic_map.clear("")

    def _on_done(self, finished) -> None:
        task, result = finished
        if task is not self.task:  # cleared meanwhile: the result is of a net no longer loaded
            return
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
