"""gui.model.session: the Qt-free model/controller (loading, stepping, editing, non-finite stops)."""
from __future__ import annotations

import threading

import numpy
import pytest

import engine
from engine.errors import PrototxtError
from engine.events import BACKWARD, FORWARD, UPDATE
from gui.model.events import Stopped
from gui.model.session import Session, solver_source

SPIRAL = "resources/examples/spiral_mlp/solver.prototxt"


def weights(solver) -> list[numpy.ndarray]:
    return [numpy.array(b.data) for b in solver.net.learnable_params]


@pytest.fixture
def session(examples_dir):
    s = Session()
    s.load(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    return s


def test_step_events_visit_every_layer_forward_then_backward_then_update(session, examples_dir):
    twin = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    net = session.solver.net
    seen = []
    while True:
        event = session.step_event()
        seen.append((event.kind, event.layer))
        if event.kind == UPDATE:
            break
    names = [layer.name for layer in net.layers]
    backward = [n for i, n in reversed(list(enumerate(names))) if net.layer_need_backward[i]]
    assert seen == [(FORWARD, n) for n in names] + [(BACKWARD, n) for n in backward] + [(UPDATE, None)]
    assert not session.mid_iteration and session.iteration == 1 and len(session.metrics) == 1
    twin.step(1)
    for mine, theirs in zip(weights(session.solver), weights(twin)):
        numpy.testing.assert_array_equal(mine, theirs)
    assert session.metrics.losses[0] == pytest.approx(twin.smoothed_loss, rel=1e-6)


def test_step_iteration_finishes_the_iteration_in_progress(session, examples_dir):
    twin = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    for _ in range(3):
        session.step_event()
    assert session.mid_iteration
    session.step_iteration()
    assert not session.mid_iteration and session.iteration == 1
    session.step_iteration()
    twin.step(2)
    for mine, theirs in zip(weights(session.solver), weights(twin)):
        numpy.testing.assert_array_equal(mine, theirs)
    assert session.metrics.iterations == [1, 2]


def test_history_records_loss_lr_and_test_scores(session):
    for _ in range(3):
        loss = session.step_iteration()
        assert loss == session.metrics.losses[-1]
    assert session.metrics.lrs == [pytest.approx(0.1)] * 3
    # spiral tests every 100 iterations, and before the first (test_initialization)
    assert [it for it, _ in session.metrics.tests] == [0]
    assert set(session.metrics.tests[0][1]) == {"accuracy", "loss"}
    session.solver.param.test_initialization = False
    session.reset()
    session.step_iteration()
    assert session.metrics.tests == []


def test_net_prototxt_opens_with_default_sgd(examples_dir):
    s = Session()
    s.load(str(examples_dir / "xor" / "net.prototxt"))
    p = s.solver.param
    assert (s.solver.type_name, p.base_lr, p.momentum, p.lr_policy) == ("SGD", pytest.approx(0.01), pytest.approx(0.9),
                                                                        "fixed")
    s.step_iteration()
    assert s.iteration == 1


def test_broken_prototxt_keeps_the_loaded_solver(session, tmp_path):
    bad = tmp_path / "net.prototxt"
    bad.write_text('name: "x"\nlayer {\n  name: "ip" type: "InnerProduct"\n  bogus_field: 3\n}\n')
    before = session.solver
    with pytest.raises(PrototxtError) as info:
        session.load(str(bad))
    # the net parser got further (line 4) than the solver parser (line 1): its message is shown
    assert ":4:" in str(info.value) and "bogus_field" in str(info.value)
    assert session.solver is before
    session.step_iteration()
    assert session.iteration == 1


def test_solver_source_tells_solver_from_net(examples_dir):
    assert solver_source(str(examples_dir / "xor" / "solver.prototxt")).endswith("solver.prototxt")
    param = solver_source(str(examples_dir / "xor" / "net.prototxt"))
    assert param.net.endswith("net.prototxt")


def test_edit_applies_from_the_next_iteration(session, examples_dir):
    for _ in range(2):
        session.step_event()
    session.edit("base_lr", 0.02)  # mid-iteration: queued
    assert session.solver.param.base_lr == pytest.approx(0.1)
    assert session.effective_param().base_lr == pytest.approx(0.02)
    session.step_iteration()
    assert session.solver.learning_rate == pytest.approx(0.1)
    session.step_iteration()
    assert session.solver.learning_rate == pytest.approx(0.02)
    with pytest.raises(ValueError):
        session.edit("lr_policy", "sometimes")


def test_switching_solver_type_restarts_history(session):
    session.step_iteration()
    session.edit("type", "Adam")
    assert session.solver.type_name == "Adam"
    assert len(session.solver.history) == 2 * len(session.solver.net.learnable_params)
    assert all(not numpy.any(h) for h in session.solver.history)
    session.step_iteration()
    assert session.iteration == 2


def test_reset_redraws_weights_from_the_seed(session, examples_dir):
    fresh = weights(engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt")))
    session.step_iteration()
    session.reset()
    assert session.iteration == 0 and len(session.metrics) == 0
    for mine, theirs in zip(weights(session.solver), fresh):
        numpy.testing.assert_array_equal(mine, theirs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_stop_names_the_layer(session):
    calls = []
    session.emitter.connect(calls.append, Stopped)
    session.edit("base_lr", 1e30)
    for _ in range(5):
        session.step_iteration()
        if session.nonfinite:
            break
    stop = session.nonfinite
    assert stop is not None and stop.layer in [l.name for l in session.solver.net.layers]
    assert stop.layer in stop.message and "non-finite" in stop.message
    assert [c.reason for c in calls] == ["nonfinite"] and calls[0].stop is stop
    # the step-through reports the same kind of stop as an event
    event = session.step_event()
    while event.kind not in ("nonfinite", "update"):
        event = session.step_event()
    assert event.kind == "nonfinite" and session.nonfinite.layer == event.layer


def test_views_are_copies(session):
    session.step_iteration()
    views = session.views()
    assert set(views) == {"ip1", "ip2", "ip3"}
    W = session.solver.net.params["ip1"][0].data
    numpy.testing.assert_array_equal(views["ip1"].W, W)
    assert views["ip1"].W is not W


# -- step wrappers -------------------------------------------------------------
def test_step_wrappers_run_around_every_step_until_removed(session):
    calls = []

    def outer(kind, proceed):
        calls.append(("outer in", kind, session.iteration))
        result = proceed()
        calls.append(("outer out", kind, session.iteration))
        return result

    def inner(kind, proceed):
        calls.append(("inner in", kind, session.iteration))
        return proceed()

    session.add_step_wrapper(outer)
    session.add_step_wrapper(inner)
    session.add_step_wrapper(outer)  # once only
    loss = session.step_iteration()
    assert loss == session.last_loss and session.iteration == 1
    assert calls == [("outer in", "iteration", 0), ("inner in", "iteration", 0),
                     ("outer out", "iteration", 1)]
    calls.clear()
    event = session.step_event()
    assert event.kind == FORWARD and session.last_event is event
    assert [c[:2] for c in calls] == [("outer in", "event"), ("inner in", "event"), ("outer out", "event")]
    calls.clear()
    session.step_event(wrapped=False)  # what a wrapper stepping on its own uses
    assert calls == []
    session.remove_step_wrapper(outer)
    session.step_iteration()  # finishes the iteration in progress
    assert calls == [("inner in", "iteration", 1)] and session.iteration == 2
    session.remove_step_wrapper(inner)
    session.remove_step_wrapper(inner)  # removing twice is harmless
    calls.clear()
    session.step_iteration()
    session.step_event()
    assert calls == [] and session.iteration == 3


def test_a_step_wrapper_sees_the_lock_held_and_may_replace_the_result(session):
    def another_thread_can_lock() -> bool:
        got = []

        def attempt():
            got.append(session.lock.acquire(blocking=False))
            if got[0]:
                session.lock.release()
        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join()
        return got[0]

    def wrapper(kind, proceed):
        assert not another_thread_can_lock()
        proceed()
        return -1.0 if kind == "iteration" else None

    assert another_thread_can_lock()
    session.add_step_wrapper(wrapper)
    assert session.step_iteration() == -1.0
    assert session.step_event() is None and session.mid_iteration  # the step was taken
    session.remove_step_wrapper(wrapper)
    assert session.step_event().kind == FORWARD
