"""BreakpointsPanel: the break conditions and the last stop."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.model import breakpoints as bp
from gui.views.debug.common import bold


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

        layout.addWidget(bold("Layer breakpoints (stop before…)"))
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
