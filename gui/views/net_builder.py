"""The Net builder panel (gui.model.net_builder): dataset, hidden layers (num_output
with − / +, activation, remove), add a layer, loss; the prototxt beside it. Every
edit made while paused rebuilds the net at once, keeping the weights of the layers
whose shapes did not change (the layer graph and the views follow, and the rewind
timeline notes the edit); Save writes a prototxt and a solver that reload into the
same net.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.model import net_builder as nb
from gui.model.events import NetLoaded
from gui.views.docks import add_tabbed_dock


class NetBuilderPanel(QWidget):
    """Edits a :class:`NetDesign`; ``on_edit(what)`` is called after each change."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.design = nb.NetDesign()
        self.on_edit: Callable[[str], None] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Dataset"))
        self.dataset = QComboBox()
        self.dataset.addItems(list(nb.DATASETS))
        top.addWidget(self.dataset)
        top.addWidget(QLabel("Loss"))
        self.loss = QComboBox()
        self.loss.addItems(list(nb.LOSSES))
        top.addWidget(self.loss)
        layout.addLayout(top)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.rows = QGridLayout()
        self.rows_box = QWidget()
        self.rows_box.setLayout(self.rows)
        layout.addWidget(self.rows_box)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("+ Add layer")
        self.save_button = QPushButton("Save net and solver…")
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)
        self.prototxt = QPlainTextEdit()
        self.prototxt.setReadOnly(True)
        self.prototxt.setFont(QFont("DejaVu Sans Mono", 8))
        layout.addWidget(self.prototxt, 1)
        self.dataset.currentTextChanged.connect(self._on_dataset)
        self.loss.currentTextChanged.connect(self._on_loss)
        self.add_button.clicked.connect(self._on_add)
        self.show_design()

    def set_design(self, design: nb.NetDesign) -> None:
        self.design = design
        self.show_design()

    def show_design(self) -> None:
        """Rows, combos, summary and prototxt from the design."""
        design = self.design
        for combo, value in ((self.dataset, design.dataset), (self.loss, design.loss)):
            combo.blockSignals(True)
            combo.setCurrentText(value)
            combo.blockSignals(False)
        self.dataset.setEnabled(not design.drawn_source)
        while self.rows.count():
            item = self.rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for k, layer in enumerate(design.hidden):
            self._add_row(k, layer)
        self.summary.setText(f"<b>{design.summary()}</b>" + (" (drawn data)" if design.drawn_source else ""))
        self.prototxt.setPlainText(design.prototxt())

    def _add_row(self, k: int, layer: nb.Hidden) -> None:
        name = QLabel(f"{layer.name}: {layer.num_output} units")
        minus, plus, remove = QPushButton("−"), QPushButton("+"), QPushButton("✕")
        for button in (minus, plus, remove):
            button.setFixedWidth(28)
        activation = QComboBox()
        activation.addItems(list(nb.ACTIVATIONS))
        activation.setCurrentText(layer.activation)
        minus.clicked.connect(lambda: self.change_units(k, -1))
        plus.clicked.connect(lambda: self.change_units(k, +1))
        remove.clicked.connect(lambda: self.remove_layer(k))
        activation.currentTextChanged.connect(lambda text: self.set_activation(k, text))
        for col, widget in enumerate((name, minus, plus, activation, remove)):
            self.rows.addWidget(widget, k, col)

    # -- edits -------------------------------------------------------------------
    def _edited(self, what: str) -> None:
        self.show_design()
        if self.on_edit is not None:
            self.on_edit(what)

    def change_units(self, k: int, delta: int) -> None:
        units = self.design.change_units(k, delta)
        self._edited(f"{self.design.hidden[k].name} num_output → {units}")

    def set_activation(self, k: int, activation: str) -> None:
        self.design.set_activation(k, activation)
        self._edited(f"{self.design.hidden[k].name} activation → {activation}")

    def remove_layer(self, k: int) -> None:
        if len(self.design.hidden) > 0:
            gone = self.design.remove_layer(k)
            self._edited(f"removed {gone.name}")

    def _on_add(self) -> None:
        layer = self.design.add_layer(num_output=8)
        self._edited(f"added {layer.name} ({layer.num_output} units)")

    def _on_dataset(self, name: str) -> None:
        if name and name != self.design.dataset:
            self.design.dataset = name
            self._edited(f"dataset → {name}")

    def _on_loss(self, name: str) -> None:
        if name and name != self.design.loss:
            self.design.set_loss(name)
            self._edited(f"loss → {name}")


def install(window) -> NetBuilderPanel:
    """The Net builder dock (View menu): its edits rebuild the window's net while paused."""
    panel = NetBuilderPanel()
    dock = add_tabbed_dock(window, "Net builder", "netBuilderDock", panel, beside=window.graph_dock)
    window.net_builder_dock, window.net_builder = dock, panel
    session = window.session
    rebuilding = [False]

    def apply(what: str) -> None:
        if session.solver is None:
            return
        window._stop_and_wait()
        try:
            solver, kept, fresh = nb.rebuild(session.solver, panel.design, session.effective_param())
        except Exception as exc:
            window.errors.report_exception("Could not build that net", exc, "The net before the edit stays.")
            return
        rebuilding[0] = True
        try:
            session.install_solver(solver, "edited")
        finally:
            rebuilding[0] = False
        session.timeline.record(session.solver, f"net edited: {what}", checkpoint=True)
        window.statusBar().showMessage(f"{what}: weights kept for {', '.join(kept) or 'no layer'}; "
                                       f"new weights for {', '.join(fresh) or 'no layer'}", 8000)

    def save() -> None:
        folder = QFileDialog.getExistingDirectory(window, "Save the net and its solver to folder")
        if folder:
            try:
                net_path, solver_path = nb.save(panel.design, folder, session.effective_param()
                                                if session.solver is not None else None)
            except Exception as exc:
                window.errors.report_exception("Could not save the net", exc)
                return
            window.statusBar().showMessage(f"Saved {net_path} and {solver_path}", 8000)

    def on_loaded(_event) -> None:
        if rebuilding[0] or session.solver is None:
            return
        design = nb.design_from_net_param(session.solver.net.param) if _buildable(session.solver.net) else None
        if design is not None:
            panel.set_design(design)

    panel.on_edit = apply
    panel.save_button.clicked.connect(save)
    session.emitter.connect(on_loaded, NetLoaded)
    if session.solver is not None:
        on_loaded(None)
    return panel


def _buildable(net) -> bool:
    """A net the builder can show: a 2-D dataset or drawn data, InnerProducts with activations."""
    types = {layer.type_name for layer in net.layers}
    allowed = {"BuiltinData", "HDF5Data", "InnerProduct", "Accuracy"} | set(nb.ACTIVATIONS) | set(nb.LOSSES)
    if not types <= allowed:
        return False
    for layer in net.param.layer:
        if layer.type == "BuiltinData" and layer.builtin_data_param.dataset not in nb.DATASETS:
            return False
    return True
