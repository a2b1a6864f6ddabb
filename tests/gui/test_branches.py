"""Branching runs: rewinding and running on with another setting keeps the earlier
continuation as a branch; a branch can be made current again, bit for bit; the weight
difference and the first differing iteration come from replaying each branch; branches
are saved as Caffe snapshots and reload; memory stays bounded."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine.backend import to_numpy
from gui.model.branches import BranchSet, describe_differences
from gui.model.session import Session

SPIRAL = "resources/examples/spiral_mlp/solver.prototxt"


def _step(session: Session, count: int) -> None:
    """Iterations as the app's debugger records them (session, then the rewind timeline)."""
    for _ in range(count):
        session.step_iteration()
        session.timeline.record_iteration(session.solver, 0.0, every_iteration=True)


def _rewind_to(session: Session, iteration: int) -> None:
    position = next(k for k, m in enumerate(session.timeline.marks) if m.iteration == iteration)
    session.timeline.goto(session.solver, position)
    session.changed("rewound", rewound=True)


def _weights(solver) -> list[numpy.ndarray]:
    return [to_numpy(b.data).copy() for b in solver.net.learnable_params]


@pytest.fixture
def session():
    session = Session()
    session.load(SPIRAL)
    session.timeline.record(session.solver, checkpoint=True)
    return session


def test_rewinding_and_running_on_keeps_the_earlier_continuation(session):
    branches = BranchSet(session)
    _step(session, 12)
    tip_weights = _weights(session.solver)
    _rewind_to(session, 5)
    assert branches.names() == ["A"]  # a rewind alone makes no branch
    session.edit("base_lr", 0.01)
    _step(session, 4)
    assert branches.names() == ["A", "B"] and branches.current == "B"
    a = branches.get("A")
    assert a.iteration == 12 and a.curve[-1, 0] == 12
    assert "base_lr 0.1 → 0.01" in branches.get("B").differs and "iteration 5" in branches.get("B").differs
    assert all(numpy.array_equal(x, y) for x, y in zip(a.tip.params, tip_weights))
    curves = branches.curves()
    assert curves["B"][0][-1, 0] == 9 and curves["A"][0][-1, 0] == 12
    # going back to the tip without stepping makes no branch
    _rewind_to(session, 7)
    session.timeline.goto(session.solver, len(session.timeline.marks) - 1)
    assert branches.names() == ["A", "B"]


def test_first_difference_and_weight_difference_replay_each_branch(session):
    branches = BranchSet(session)
    _step(session, 10)
    _rewind_to(session, 4)
    session.edit("base_lr", 0.02)
    _step(session, 6)
    assert branches.first_difference("A", "B") == 5  # the first update with the new lr
    difference, iteration = branches.weight_difference("A", "B", "ip2")
    assert iteration == 10
    # independent: run both lines from scratch with plain solvers
    first = engine.get_solver(SPIRAL)
    first.step(10)
    second = engine.get_solver(SPIRAL)
    second.step(4)
    second.param.base_lr = 0.02
    second.step(6)
    expected = to_numpy(first.net.params["ip2"][0].data).astype(float) - \
        to_numpy(second.net.params["ip2"][0].data).astype(float)
    assert numpy.array_equal(difference, expected)
    same, _ = branches.weight_difference("A", "B", "ip2", iteration=4)
    assert not same.any()


def test_a_weight_edit_differs_at_the_fork_itself(session):
    branches = BranchSet(session)
    _step(session, 6)
    _rewind_to(session, 3)
    session.timeline.edit_weight(session.solver, 0, (0, 0), 1.5)
    _step(session, 2)
    assert branches.names() == ["A", "B"]
    assert branches.first_difference("A", "B") == 3
    assert "edit" in branches.get("B").differs


def test_making_a_branch_current_again_is_bit_exact(session):
    branches = BranchSet(session)
    _step(session, 8)
    a_tip = _weights(session.solver)
    _rewind_to(session, 2)
    session.edit("type", "Adam")
    session.edit("base_lr", 0.01)
    _step(session, 3)
    b_tip = _weights(session.solver)
    branches.make_current("A")
    assert branches.current == "A" and session.solver.type_name == "SGD"
    assert all(numpy.array_equal(x, y) for x, y in zip(_weights(session.solver), a_tip))
    assert session.iteration == 8 and session.metrics.last_iteration == 8
    _step(session, 2)  # continues A exactly as an uninterrupted run
    straight = engine.get_solver(SPIRAL)
    straight.step(10)
    assert all(numpy.array_equal(x, to_numpy(y.data)) for x, y in
               zip(_weights(session.solver), straight.net.learnable_params))
    branches.make_current("B")
    assert session.solver.type_name == "Adam"
    assert all(numpy.array_equal(x, y) for x, y in zip(_weights(session.solver), b_tip))


def test_branches_save_as_caffe_snapshots_and_reload(session, tmp_path):
    branches = BranchSet(session)
    _step(session, 6)
    _rewind_to(session, 3)
    session.edit("momentum", 0.5)
    _step(session, 2)
    written = branches.save(str(tmp_path))
    assert any(p.endswith("A_iter_6.caffemodel") for p in written)
    assert any(p.endswith("B_iter_5.solverstate") for p in written)
    # a Caffe snapshot: a plain solver resumes from it
    plain = engine.get_solver(SPIRAL)
    plain.restore(str(tmp_path / "A_iter_6.solverstate"))
    a_tip = branches.get("A").tip.params
    assert all(numpy.array_equal(to_numpy(b.data), w) for b, w in zip(plain.net.learnable_params, a_tip))
    other = Session()
    other.load(SPIRAL)
    reloaded = BranchSet(other)
    names = reloaded.load(str(tmp_path))
    assert names == ["A'", "B"]  # A is taken by the live line
    assert all(numpy.array_equal(x, y) for x, y in zip(reloaded.get("B").tip.params, branches.get("B").tip.params))
    assert numpy.array_equal(reloaded.get("B").curve, branches.get("B").curve)
    assert "momentum 0.9 → 0.5" in reloaded.get("B").differs
    with pytest.raises(ValueError, match="not a saved set"):
        reloaded.load(str(tmp_path / "nowhere"))


def test_memory_is_bounded_oldest_states_first(session):
    branches = BranchSet(session, max_bytes=1)
    _step(session, 4)
    _rewind_to(session, 2)
    _step(session, 1)
    _rewind_to(session, 1)
    _step(session, 1)
    assert branches.names() == ["A", "B", "C"]
    assert all(b.tip is None and not b.points for b in branches.branches.values())
    assert "3 branches" in branches.describe_memory()
    assert len(branches.get("A").curve) > 0  # the curves stay
    with pytest.raises(ValueError, match="dropped"):
        branches.make_current("A")


def test_describe_differences_names_the_settings():
    from engine.proto import caffe_pb2
    before, after = caffe_pb2.SolverParameter(), caffe_pb2.SolverParameter()
    before.base_lr, after.base_lr = 0.1, 0.05
    after.type = "Adam"
    assert describe_differences(before, after) == ["type SGD → Adam", "base_lr 0.1 → 0.05"]
    assert describe_differences(after, after) == []


# -- the panel, in the window -----------------------------------------------------------


def test_branches_panel_in_the_window(qapp):
    from tests.gui.windows import module_window
    with module_window() as window:
        window.open_path(SPIRAL)
        window.step_iterations(8)
        assert window.wait_until_idle()
        timeline, session = window.session.timeline, window.session
        assert timeline.marks[-1].iteration == 8  # the debugger records the rewind timeline
        for _ in range(4):  # Step Back (Shift+F10) four times
            window.debug.step_back()
        assert session.iteration == 4
        session.edit("base_lr", 0.02)  # what the solver panel does
        window.step_iterations(4)
        assert window.wait_until_idle()
        qapp.processEvents()
        panel = window.branches_dock.widget()
        window.branches_dock.show()
        window.branches_dock.raise_()
        qapp.processEvents()
        assert window.branches.names() == ["A", "B"]
        assert panel.table.rowCount() == 2 and "(current)" in panel.table.item(1, 0).text()
        assert "base_lr 0.1 → 0.02" in panel.table.item(1, 2).text()
        assert len(panel.plot.getPlotItem().listDataItems()) == 2
        panel.a_combo.setCurrentText("A")
        panel.b_combo.setCurrentText("B")
        panel.layer_combo.setCurrentText("ip2")
        panel.compare()
        assert "first differ at iteration 5" in panel.first_difference.text()
        assert panel.difference.image_array().shape == (16, 16) and panel.difference.image_array().any()
        panel.table.setCurrentCell(0, 0)
        panel.current_button.click()
        qapp.processEvents()
        assert window.branches.current == "A" and session.iteration == 8
