"""The Branches panel (gui.model.branches): every line of training with what differs,
their loss curves overlaid, W(A) − W(B) of the selected layer at one iteration and
the first iteration at which A and B differ; make a branch current, save, load.
"""
from __future__ import annotations

from typing import Callable

import numpy
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.model.branches import BranchSet
from gui.model.events import FrameReady, NetLoaded
from gui.views.debug.common import CLASS_COLOURS, bold
from gui.views.docks import add_tabbed_dock
from gui.views.heatmap import HeatmapView


class BranchesPanel(QWidget):
    """Table of branches, overlaid curves, the weight difference of two branches."""

    changed = Signal()  # the branch set changed (maybe on the stepping thread): redraw on the GUI thread

    def __init__(self, branches: BranchSet, parent: QWidget | None = None):
        super().__init__(parent)
        self.branches = branches
        self.on_switch: Callable[[str], None] | None = None  # set by install: stops the worker, then switches
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = bold("Branches: rewind, change a setting or a weight, run on — the old line is kept")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["branch", "iteration", "what differs"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(90)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.current_button = QPushButton("Make current")
        self.save_button = QPushButton("Save…")
        self.load_button = QPushButton("Load…")
        for button in (self.current_button, self.save_button, self.load_button):
            buttons.addWidget(button)
        self.memory = QLabel("")
        buttons.addWidget(self.memory, 1)
        layout.addLayout(buttons)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "smoothed loss")
        self.plot.addLegend(offset=(-10, 10))
        self.plot.setMinimumHeight(160)
        layout.addWidget(self.plot, 2)
        compare = QHBoxLayout()
        self.a_combo, self.b_combo, self.layer_combo = QComboBox(), QComboBox(), QComboBox()
        compare.addWidget(QLabel("W("))
        compare.addWidget(self.a_combo)
        compare.addWidget(QLabel(") − W("))
        compare.addWidget(self.b_combo)
        compare.addWidget(QLabel(") of"))
        compare.addWidget(self.layer_combo)
        self.compare_button = QPushButton("Compare")
        compare.addWidget(self.compare_button)
        layout.addLayout(compare)
        self.first_difference = QLabel("")
        self.first_difference.setWordWrap(True)
        layout.addWidget(self.first_difference)
        self.difference = HeatmapView("W(A) − W(B)", compact=True)
        layout.addWidget(self.difference, 2)
        self.current_button.clicked.connect(self._make_current)
        self.compare_button.clicked.connect(self.compare)
        self._curve_revision: tuple | None = None
        self.changed.connect(self.refresh, Qt.ConnectionType.QueuedConnection)
        branches.listeners.append(lambda _b: self.changed.emit())
        self.refresh()

    def selected_name(self) -> str | None:
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def set_layers(self, names: list[str]) -> None:
        self.layer_combo.clear()
        self.layer_combo.addItems(names)

    def refresh(self) -> None:
        """Table, combos, memory and curves from the branch set."""
        branches = self.branches
        names = branches.names()
        self.table.setRowCount(len(names))
        for row, name in enumerate(names):
            current = name == branches.current
            if current:
                iteration, differs = branches.session.iteration, branches.current_differs
            else:
                branch = branches.branches[name]
                iteration = branch.iteration
                differs = branch.differs + ("" if branch.tip is not None else " (state dropped: curve only)")
            cells = [f"{name} (current)" if current else name, str(iteration), differs]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, name)
                if current:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, col, item)
        for combo, default in ((self.a_combo, 0), (self.b_combo, 1)):
            if [combo.itemText(k) for k in range(combo.count())] != names:
                combo.clear()
                combo.addItems(names)
                combo.setCurrentIndex(min(default, len(names) - 1))
        self.memory.setText(branches.describe_memory())
        self.draw_curves()

    def draw_curves(self) -> None:
        """Each branch's smoothed loss, named with what differs."""
        curves = self.branches.curves()
        key = tuple((n, len(c), float(c[-1, 0]) if len(c) else -1.0) for n, (c, _d) in sorted(curves.items()))
        if key == self._curve_revision:
            return
        self._curve_revision = key
        self.plot.clear()
        for k, (name, (rows, differs)) in enumerate(sorted(curves.items())):
            if not len(rows):
                continue
            colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
            width = 3 if name == self.branches.current else 1.5
            label = f"{name}: {differs if len(differs) < 60 else differs[:57] + '…'}"
            self.plot.plot(rows[:, 0], rows[:, 2], pen=pg.mkPen(colour, width=width), name=label)

    def compare(self) -> None:
        """W(A) − W(B) of the chosen layer at the later iteration both reached; where they first differ."""
        a, b, layer = self.a_combo.currentText(), self.b_combo.currentText(), self.layer_combo.currentText()
        if not (a and b and layer) or a == b:
            self.first_difference.setText("Pick two different branches and a layer.")
            return
        try:
            difference, iteration = self.branches.weight_difference(a, b, layer)
            first = self.branches.first_difference(a, b)
        except (ValueError, KeyError) as exc:
            self.first_difference.setText(str(exc))
            return
        self.difference.set_title(f"W({a}) − W({b}) of {layer} at iteration {iteration}")
        self.difference.set_matrix(difference, row_label="output", col_label="input",
                                   extra_stats=f"max |ΔW| {numpy.abs(difference).max():.3g}")
        forks = sorted((self.branches.get(a).fork_iteration, self.branches.get(b).fork_iteration))
        if first is None:
            text = f"{a} and {b} hold the same weights up to iteration {iteration}"
        elif first == forks[1] and forks[1] > forks[0]:
            text = f"{a} and {b} already differ at iteration {first}, where the later of them branched off"
        else:
            text = f"{a} and {b} first differ at iteration {first}"
        self.first_difference.setText(text)

    def _make_current(self) -> None:
        name = self.selected_name()
        if name and self.on_switch is not None:
            self.on_switch(name)


def install(window) -> BranchesPanel:
    """The Branches dock (View menu); a new net starts with no branches."""
    branches = BranchSet(window.session)
    panel = BranchesPanel(branches)
    dock = add_tabbed_dock(window, "Branches", "branchesDock", panel)
    window.branches_dock, window.branches = dock, branches

    def switch(name: str) -> None:
        window._stop_and_wait()
        try:
            branches.make_current(name)
        except Exception as exc:
            window.errors.report_exception(f"Could not make branch {name} current", exc)
            return
        window.statusBar().showMessage(f"Branch {name} is current (iteration {window.session.iteration})", 6000)

    def save() -> None:
        folder = QFileDialog.getExistingDirectory(window, "Save branches to folder")
        if folder:
            window._stop_and_wait()
            try:
                written = branches.save(folder)
            except Exception as exc:
                window.errors.report_exception("Could not save the branches", exc)
                return
            window.statusBar().showMessage(f"Saved {len(written)} files to {folder}", 8000)

    def load() -> None:
        folder = QFileDialog.getExistingDirectory(window, "Load branches from folder")
        if folder:
            try:
                names = branches.load(folder)
            except Exception as exc:
                window.errors.report_exception("Could not load the branches", exc)
                return
            window.statusBar().showMessage(f"Loaded branches {', '.join(names)}", 8000)

    def on_loaded(_event) -> None:
        branches.reset()
        panel.set_layers(window.session.inner_product_layers())

    panel.on_switch = switch
    panel.save_button.clicked.connect(save)
    panel.load_button.clicked.connect(load)
    window.session.emitter.connect(on_loaded, NetLoaded)
    def on_frame(_event: FrameReady) -> None:
        if panel.isVisible():
            panel.refresh()
    window.session.emitter.connect(on_frame, FrameReady)
    if window.session.solver is not None:
        panel.set_layers(window.session.inner_product_layers())
    return panel
