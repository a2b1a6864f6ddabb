"""gui.views.solver_panel: editing the solver while paused, applied from the next iteration."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine.prototxt import to_text
from gui.model.session import Session
from gui.views.solver_panel import SolverPanel


@pytest.fixture
def panel(qtbot, examples_dir):
    session = Session()
    session.load(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    widget = SolverPanel(session)
    qtbot.addWidget(widget)
    widget.refresh()
    return widget


def test_shows_the_solver_and_its_prototxt(panel):
    assert panel.fields["base_lr"].text() == "0.1"
    assert panel.fields["lr_policy"].currentText() == "step"
    assert panel.fields["stepsize"].text() == "2000"
    assert panel.fields["regularization_type"].currentText() == "L2"
    assert panel.prototxt.toPlainText() == to_text(panel.session.solver.param)
    # only the fields the policy / type use are shown
    assert not panel.fields["power"].isVisibleTo(panel) and panel.fields["gamma"].isVisibleTo(panel)


def test_edit_applies_from_the_next_iteration(panel, examples_dir):
    session = panel.session
    session.step_iteration()
    panel.set_value("base_lr", "0.03")
    panel.set_value("momentum", "0.5")
    panel.set_value("weight_decay", "0.001")
    assert session.solver.param.base_lr == pytest.approx(0.03)
    assert "base_lr: 0.03" in panel.prototxt.toPlainText()
    session.step_iteration()
    assert session.solver.learning_rate == pytest.approx(0.03)
    # the same two iterations on a twin solver edited between them give the same weights
    twin = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    twin.step(1)
    twin.param.base_lr, twin.param.momentum, twin.param.weight_decay = 0.03, 0.5, 0.001
    twin.step(1)
    for mine, theirs in zip(session.solver.net.learnable_params, twin.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, theirs.data)


def test_policy_and_regularization_and_clip(panel):
    panel.set_value("lr_policy", "inv")
    assert panel.session.solver.param.lr_policy == "inv"
    assert panel.fields["power"].isVisibleTo(panel) and not panel.fields["stepsize"].isVisibleTo(panel)
    panel.set_value("regularization_type", "L1")
    panel.set_value("clip_gradients", "1.5")
    p = panel.session.solver.param
    assert (p.regularization_type, p.clip_gradients) == ("L1", pytest.approx(1.5))


def test_invalid_value_is_refused(qtbot, panel):
    with qtbot.waitSignal(panel.invalid) as blocker:
        panel.set_value("base_lr", "fast")
    assert "base_lr must be a number" in blocker.args[0]
    assert panel.session.solver.param.base_lr == pytest.approx(0.1)


def test_read_only_while_running(panel):
    panel.set_editable(False)
    assert not panel.fields["base_lr"].isEnabled() and "pause" in panel.note.text().lower()
    panel.set_editable(True)
    assert panel.fields["base_lr"].isEnabled()
