"""DecompositionPanel: the update taken apart, one map per stage."""
from __future__ import annotations

import numpy
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gui.model.decompose import Decomposition
from gui.views.debug.common import MapView, bold

CELL_HEIGHT = 255  # one decomposition map with its caption


class DecompositionPanel(QWidget):
    """The update of one parameter taken apart: one map per stage with its formula.

    Maps are drawn for the stages in ``MAP_TERMS``; the additive pieces (momentum,
    gradient and decay steps) are listed with their norms in the header.
    """

    MAP_TERMS = ("dW", "clipped", "decay", "history", "history2", "update", "W_before", "W_after")

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.header = bold("Select an InnerProduct layer and step to see its update taken apart.")
        self.header.setWordWrap(True)
        self.numbers = QLabel("")
        self.numbers.setWordWrap(True)
        layout.addWidget(self.header)
        layout.addWidget(self.numbers)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setSpacing(4)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_host)
        layout.addWidget(scroll, 1)
        self.maps: dict[str, MapView] = {}
        self.captions: dict[str, QLabel] = {}
        self.decomposition: Decomposition | None = None

    def show_message(self, text: str) -> None:
        """Nothing to take apart (another net, no step yet): say so, drop the old maps."""
        self.decomposition = None
        self.header.setText(text)
        self.numbers.setText("")
        for widget in list(self.maps.values()) + list(self.captions.values()):
            widget.setParent(None)
        self.maps, self.captions = {}, {}

    def set_decomposition(self, d: Decomposition, columns: int = 4) -> None:
        self.decomposition = d
        self.header.setText(f"{d.param}: the {d.solver_type} update of iteration {d.iteration}, stage by stage")
        check = ""
        total = d.pieces_sum()
        if total is not None:
            names = " + ".join(f"{d.term(k).title} (‖·‖ {float(numpy.linalg.norm(d.term(k).array)):.3g})"
                               for k in d.pieces)
            check = f"\nΔW = {names}   (max |sum − ΔW| = {float(numpy.abs(total - d.update).max()):.1e})"
        self.numbers.setText(d.numbers_text() + check)
        terms = [t for t in d.terms if t.key in self.MAP_TERMS]
        if list(self.maps) != [t.key for t in terms]:
            for widget in list(self.maps.values()) + list(self.captions.values()):
                widget.setParent(None)
            self.maps, self.captions = {}, {}
            for k, term in enumerate(terms):
                cell = QWidget()
                v = QVBoxLayout(cell)
                v.setContentsMargins(0, 0, 0, 0)
                view = MapView(term.title)
                view.setMinimumSize(150, 150)
                cell.setFixedHeight(CELL_HEIGHT)
                caption = QLabel()
                caption.setWordWrap(True)
                v.addWidget(view, 1)
                v.addWidget(caption)
                self.grid.addWidget(cell, k // columns, k % columns)
                self.maps[term.key], self.captions[term.key] = view, caption
        for term in terms:
            self.maps[term.key].set_array(term.array, "output (N_)", "input (K_)")
            self.captions[term.key].setText(" · ".join(t for t in (term.formula, term.numbers) if t))
