"""Dataset controls for the built-in teaching sets: number of points, noise,
train/test split and seed; Regenerate rebuilds the net on the new data."""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from gui.model.events import NetLoaded


class DatasetPanel(QWidget):
    """Edits the BuiltinData settings; ``on_regenerate(**changes)`` applies them."""

    def __init__(self, on_regenerate: Callable[..., None], parent=None):
        super().__init__(parent)
        self._on_regenerate = on_regenerate
        self.name = QLabel("—")
        self.num_points = QSpinBox(minimum=10, maximum=100_000, singleStep=50)
        self.noise = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, decimals=3)
        self.test_fraction = QDoubleSpinBox(minimum=0.0, maximum=0.9, singleStep=0.05, decimals=2)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.regenerate = QPushButton("Regenerate (weights re-drawn, iteration 0)")
        self.regenerate.clicked.connect(self._apply)
        self.note = QLabel("The test split's loss and accuracy are plotted beside training "
                           "(Curves) when the net has a TEST phase.")
        self.note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("dataset", self.name)
        form.addRow("points", self.num_points)
        form.addRow("noise", self.noise)
        form.addRow("test fraction", self.test_fraction)
        form.addRow("seed", self.seed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.regenerate)
        layout.addWidget(self.note)
        layout.addStretch(1)
        self.show_settings(None)

    def follow(self, session) -> None:
        """Show the settings of each net ``session`` (a gui.model Session) loads, on its ``NetLoaded`` event."""
        self._session = session
        session.emitter.connect(self._on_net_loaded, NetLoaded)

    def _on_net_loaded(self, _event: NetLoaded) -> None:
        self.show_settings(self._session.dataset_settings())

    def show_settings(self, settings: dict | None) -> None:
        """Show the current net's dataset settings (None: no built-in dataset)."""
        enabled = settings is not None
        for widget in (self.num_points, self.noise, self.test_fraction, self.seed, self.regenerate):
            widget.setEnabled(enabled)
        if not enabled:
            self.name.setText("this net reads no built-in dataset")
            return
        self.name.setText(settings["dataset"])
        self.num_points.setValue(int(settings["num_points"]))
        self.noise.setValue(float(settings["noise"]))
        self.test_fraction.setValue(float(settings["test_fraction"]))
        self.seed.setValue(int(settings["seed"]))
        self.noise.setEnabled(settings["dataset"] != "digits")

    def changes(self) -> dict:
        return {"num_points": self.num_points.value(), "noise": self.noise.value(),
                "test_fraction": self.test_fraction.value(), "seed": self.seed.value()}

    def _apply(self) -> None:
        self._on_regenerate(**self.changes())
