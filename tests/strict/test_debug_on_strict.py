"""The app's session, step events, frames, rewind, the update taken apart and the
decision boundary on the strict device stand-in (no Qt needed)."""
import numpy

import engine
from engine import backend
from gui.model.boundary import decision_boundary
from gui.model.decompose import step_with_decomposition
from gui.model.session import Session
from gui.model.timeline import Timeline, capture, restore
from tests.gui.debug_nets import SPIRAL


def _host_weights(solver):
    return [backend.to_numpy(b.data).copy() for b in solver.net.learnable_params]


def test_rewind_on_the_device_restores_exactly(strict):
    solver = engine.get_solver(str(SPIRAL), device="gpu")
    history = Timeline(checkpoint_every=3)
    history.step(solver, 8)
    expected = _host_weights(solver)
    for _ in range(5):
        history.step_back(solver)
    assert solver.iter == 3
    history.step(solver, 5)
    for mine, theirs in zip(_host_weights(solver), expected):
        numpy.testing.assert_array_equal(mine, theirs)
    saved = capture(solver)
    solver.step(2)
    restore(solver, saved)
    for mine, theirs in zip(_host_weights(solver), expected):
        numpy.testing.assert_array_equal(mine, theirs)
    assert backend.device_of(solver.history[0]) == "gpu"


def test_decomposition_and_boundary_on_the_device(strict):
    dev, cpu = engine.get_solver(str(SPIRAL), device="gpu"), engine.get_solver(str(SPIRAL))
    dev.step(3)
    cpu.step(3)
    found, loss = step_with_decomposition(dev)
    theirs, cpu_loss = step_with_decomposition(cpu)
    assert loss == cpu_loss
    for i, blob in enumerate(dev.net.learnable_params):
        numpy.testing.assert_array_equal(found[i].update, backend.to_numpy(blob.diff))
        numpy.testing.assert_array_equal(found[i].update, theirs[i].update)
    result = decision_boundary(dev.net, resolution=16)
    reference = decision_boundary(cpu.net, resolution=16)
    numpy.testing.assert_array_equal(result.probabilities, reference.probabilities)


def test_session_step_events_and_views_on_the_device(strict):
    dev, cpu = Session(), Session()
    dev.load(str(SPIRAL), "gpu")
    cpu.load(str(SPIRAL), "cpu")
    assert dev.device == "gpu"
    for session in (dev, cpu):
        session.step_iteration()
        for _ in range(4):
            session.step_event()
    mine, theirs = dev.views(), cpu.views()
    assert mine.keys() == theirs.keys()
    for name in mine:
        for key in ("W", "b", "a", "dW", "db", "delta", "delta_down"):
            a, b = getattr(mine[name], key), getattr(theirs[name], key)
            assert (a is None) == (b is None), (name, key)
            if a is not None:
                assert type(a) is numpy.ndarray
                numpy.testing.assert_array_equal(a, b)
    dev.move_to("cpu")
    cpu.move_to("cpu")
    dev.step_iteration()
    cpu.step_iteration()
    for a, b in zip(_host_weights(dev.solver), _host_weights(cpu.solver)):
        numpy.testing.assert_array_equal(a, b)


def test_layer_statistics_timing_and_gradient_check_on_the_device(strict):
    from gui.model.gradcheck import freeze, run_check
    from gui.model.overlays import layer_stats
    from gui.model.timing import time_solver

    dev, cpu = engine.get_solver(str(SPIRAL), device="gpu"), engine.get_solver(str(SPIRAL))
    dev.step(2)
    cpu.step(2)
    assert [(row.layer, row.values()) for row in layer_stats(dev.net)] == \
        [(row.layer, row.values()) for row in layer_stats(cpu.net)]
    assert time_solver(dev, iterations=2) is not None
    report = run_check(freeze(dev.net), max_elements=8)
    assert report.passed and report.blobs
