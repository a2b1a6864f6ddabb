"""The debugger on the GPU: rewind restores cupy arrays exactly; the decomposition and the
decision boundary read device arrays through host copies."""
import numpy
import pytest

import engine
from engine import backend
from gui.model.boundary import decision_boundary
from gui.model.decompose import step_with_decomposition
from gui.model.timeline import Timeline

from .debug_nets import SPIRAL

pytestmark = pytest.mark.gpu


def _host_weights(solver):
    return [backend.to_numpy(b.data).copy() for b in solver.net.learnable_params]


def test_rewind_5_forward_5_on_the_gpu():
    solver = engine.get_solver(str(SPIRAL), device="gpu")
    history = Timeline(checkpoint_every=3)
    history.step(solver, 8)
    expected = _host_weights(solver)
    for _ in range(5):
        history.step_back(solver)
    history.step(solver, 5)
    for mine, theirs in zip(_host_weights(solver), expected):
        assert numpy.array_equal(mine, theirs)


def test_decomposition_and_boundary_on_the_gpu():
    solver = engine.get_solver(str(SPIRAL), device="gpu")
    solver.step(3)
    found, _ = step_with_decomposition(solver)
    for i, blob in enumerate(solver.net.learnable_params):
        numpy.testing.assert_allclose(found[i].update, backend.to_numpy(blob.diff), rtol=1e-5, atol=1e-9)
    result = decision_boundary(solver.net, resolution=16)
    assert result.classes.shape == (16, 16) and isinstance(result.probabilities, numpy.ndarray)
