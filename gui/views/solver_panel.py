"""The solver panel: the update's settings, editable while paused, and the
equivalent solver prototxt.

Edits go to :meth:`gui.model.session.Session.edit`, which writes the ``solver.param``
field and so applies from the next iteration (an iteration that is being
stepped through finishes with the old settings).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget

from engine.lr_policy import POLICIES
from engine.prototxt import to_text
from gui.model.events import NetLoaded, RunStatus, StateChanged
from gui.model.session import SOLVER_TYPES, Session

#: lr_policy -> the fields it reads.
POLICY_FIELDS = {
    "fixed": (), "step": ("gamma", "stepsize"), "exp": ("gamma",), "inv": ("gamma", "power"),
    "multistep": ("gamma", "stepvalue"), "poly": ("power", "max_iter"), "sigmoid": ("gamma", "stepsize"),
}
#: solver type -> the extra fields it reads.
TYPE_FIELDS = {
    "SGD": ("momentum",), "Nesterov": ("momentum",), "AdaGrad": ("delta",),
    "RMSProp": ("delta", "rms_decay"), "AdaDelta": ("momentum", "delta"),
    "Adam": ("momentum", "momentum2", "delta"),
}
NUMBER_FIELDS = ("base_lr", "gamma", "power", "stepsize", "stepvalue", "max_iter", "momentum", "momentum2",
                 "delta", "rms_decay", "weight_decay", "clip_gradients")
LABELS = {
    "type": "type", "base_lr": "base_lr", "lr_policy": "lr_policy", "gamma": "  gamma", "power": "  power",
    "stepsize": "  stepsize", "stepvalue": "  stepvalue", "max_iter": "  max_iter", "momentum": "momentum",
    "momentum2": "momentum2", "delta": "delta", "rms_decay": "rms_decay", "weight_decay": "weight_decay",
    "regularization_type": "regularization", "clip_gradients": "clip_gradients",
}
TIPS = {
    "base_lr": "Base learning rate", "clip_gradients": "Scale all gradients down when their global L2 norm "
    "exceeds this (−1: off)", "stepvalue": "Iterations where the rate drops (comma separated)",
    "weight_decay": "Regularisation strength (added to dW as decay·W for L2)",
}


class SolverPanel(QWidget):
    """Form over the session's solver settings. Emits ``edited(name, value)`` after
    an edit is applied and ``invalid(message)`` for a value that was refused."""

    edited = Signal(str, object)
    invalid = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.fields: dict[str, QWidget] = {}
        self._updating = False
        self._build()
        session.emitter.connect(self._on_model_changed, NetLoaded, StateChanged)
        session.emitter.connect(self._on_run_status, RunStatus)

    def _on_run_status(self, event: RunStatus) -> None:
        """Read-only while running; after a run, the settings it ended with."""
        self.set_editable(not event.running)
        if not event.running:
            self.refresh()

    def _on_model_changed(self, event) -> None:
        """Another net, or its state set from outside a run: show its settings."""
        self.refresh()
        if isinstance(event, NetLoaded):
            self.set_editable(True)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignRight)
        for name in LABELS:
            widget = self._make_field(name)
            self.fields[name] = widget
            form.addRow(LABELS[name], widget)
        self.form = form
        layout.addLayout(form)
        self.note = QLabel("Edits apply from the next iteration. Pause to edit.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #606060;")
        layout.addWidget(self.note)
        title = QLabel("As solver prototxt")
        title.setStyleSheet("font-weight: bold;")
        layout.addWidget(title)
        self.prototxt = QPlainTextEdit()
        self.prototxt.setReadOnly(True)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.Monospace)
        mono.setPointSizeF(9)
        self.prototxt.setFont(mono)
        layout.addWidget(self.prototxt, 1)

    def _make_field(self, name: str) -> QWidget:
        if name in ("type", "lr_policy", "regularization_type"):
            combo = QComboBox()
            combo.addItems({"type": SOLVER_TYPES, "lr_policy": POLICIES,
                            "regularization_type": ("L2", "L1")}[name])
            combo.currentTextChanged.connect(lambda text, n=name: self._commit(n, text))
            return combo
        edit = QLineEdit()
        edit.setToolTip(TIPS.get(name, ""))
        edit.editingFinished.connect(lambda n=name: self._commit_text(n))
        return edit

    # -- showing -------------------------------------------------------
    def refresh(self) -> None:
        """Show the session's settings (edits not yet applied included)."""
        if self.session.solver is None:
            return
        param = self.session.effective_param()
        self._updating = True
        try:
            for name, widget in self.fields.items():
                value = _field_text(param, name)
                if isinstance(widget, QComboBox):
                    if widget.currentText() != value:
                        widget.setCurrentText(value)
                elif widget.text() != value:
                    widget.setText(value)
                    widget.setStyleSheet("")
        finally:
            self._updating = False
        self._enable_relevant(param.type or "SGD", param.lr_policy or "fixed")
        text = to_text(param)
        if self.prototxt.toPlainText() != text:
            self.prototxt.setPlainText(text)

    def _enable_relevant(self, solver_type: str, policy: str) -> None:
        relevant = set(POLICY_FIELDS.get(policy, ())) | set(TYPE_FIELDS.get(solver_type, ()))
        optional = {"gamma", "power", "stepsize", "stepvalue", "max_iter", "momentum", "momentum2", "delta",
                    "rms_decay"}
        for name in optional:
            label = self.form.labelForField(self.fields[name])
            on = name in relevant
            self.fields[name].setVisible(on)
            if label is not None:
                label.setVisible(on)

    def set_editable(self, on: bool) -> None:
        """Editable while paused; read-only while the solver runs."""
        for widget in self.fields.values():
            widget.setEnabled(on)
        self.note.setText("Edits apply from the next iteration." if on else
                          "Running: pause to edit the solver.")

    # -- editing -------------------------------------------------------
    def _commit_text(self, name: str) -> None:
        if self._updating:
            return
        widget = self.fields[name]
        try:
            value = _parse(name, widget.text())
        except ValueError as exc:
            widget.setStyleSheet("QLineEdit { border: 2px solid #D62728; }")
            widget.setToolTip(str(exc))
            self.invalid.emit(str(exc))
            return
        widget.setStyleSheet("")
        widget.setToolTip(TIPS.get(name, ""))
        self._commit(name, value)

    def _commit(self, name: str, value) -> None:
        if self._updating or self.session.solver is None:
            return
        current = _field_value(self.session.effective_param(), name)
        if current == value:
            return
        try:
            self.session.edit(name, value)
        except (ValueError, KeyError) as exc:
            self.invalid.emit(str(exc))
            self.refresh()
            return
        self.refresh()
        self.edited.emit(name, value)

    def set_value(self, name: str, value) -> None:
        """Type ``value`` into field ``name`` and commit it, as a user would."""
        widget = self.fields[name]
        if isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        else:
            widget.setText(str(value))
            widget.editingFinished.emit()


def _field_value(param, name: str):
    if name == "stepvalue":
        return [int(v) for v in param.stepvalue]
    if name == "type":
        return param.type or "SGD"
    return getattr(param, name)


def _field_text(param, name: str) -> str:
    value = _field_value(param, name)
    if name == "stepvalue":
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def _parse(name: str, text: str):
    text = text.strip()
    if name == "stepvalue":
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"stepvalue must be whole numbers separated by commas, not '{text}'") from None
    if name in ("stepsize", "max_iter"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not '{text}'") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not '{text}'") from None
