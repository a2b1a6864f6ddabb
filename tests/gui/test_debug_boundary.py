"""Decision boundary: the image equals the net's own predictions on the grid, computed independently."""
import numpy
import pytest

from engine import rng
from engine.errors import NetDefinitionError
from gui.model.boundary import BoundaryModel, Grid, decision_boundary, training_points

from .debug_nets import make_solver, spiral_solver


def _independent_scores(net, points):
    """relu(relu(x·W1ᵀ+b1)·W2ᵀ+b2)·W3ᵀ+b3 in float64, from the train net's weights."""
    p = {name: [b.data.astype(numpy.float64) for b in blobs] for name, blobs in net.params.items()}
    h = numpy.maximum(points @ p["ip1"][0].T + p["ip1"][1], 0)
    h = numpy.maximum(h @ p["ip2"][0].T + p["ip2"][1], 0)
    return h @ p["ip3"][0].T + p["ip3"][1]


def test_boundary_matches_predictions_on_the_grid():
    solver = spiral_solver()
    solver.step(150)
    result = decision_boundary(solver.net, resolution=33)
    grid = result.grid
    xs, ys = grid.xs, grid.ys
    points = numpy.array([[x, y] for y in ys for x in xs], dtype=numpy.float32).astype(numpy.float64)
    scores = _independent_scores(solver.net, points).reshape(grid.ny, grid.nx, 3)
    expected = scores.argmax(axis=-1)
    top2 = numpy.sort(scores, axis=-1)
    clear = (top2[..., -1] - top2[..., -2]) > 1e-4  # float32 vs float64 only matters at exact ties
    assert clear.mean() > 0.99
    assert numpy.array_equal(result.classes[clear], expected[clear])
    assert len(numpy.unique(result.classes)) == 3  # all three arms have a region
    e = numpy.exp(scores - scores.max(axis=-1, keepdims=True))
    numpy.testing.assert_allclose(result.probabilities, e / e.sum(axis=-1, keepdims=True), atol=1e-5)


def test_hidden_unit_responses_are_each_layers_output():
    solver = spiral_solver()
    solver.step(20)
    result = decision_boundary(solver.net, resolution=9)
    grid = result.grid
    points = grid.points().astype(numpy.float64)
    W1, b1 = (b.data.astype(numpy.float64) for b in solver.net.params["ip1"])
    pre = (points @ W1.T + b1).reshape(grid.ny, grid.nx, -1)
    numpy.testing.assert_allclose(result.responses["ip1"], pre, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(result.responses["relu1"], numpy.maximum(pre, 0), rtol=1e-5, atol=1e-6)
    assert set(result.responses) == {"ip1", "relu1", "ip2", "relu2", "ip3"}


def test_grid_points_are_row_major_in_y():
    grid = Grid((-1.0, 1.0, 0.0, 2.0), 3, 2)
    assert grid.points().tolist() == [[-1, 0], [0, 0], [1, 0], [-1, 2], [0, 2], [1, 2]]


def test_the_model_follows_training_and_leaves_the_random_stream_alone(tmp_path):
    solver = make_solver(tmp_path)
    state = rng.get_state()
    model = BoundaryModel(solver.net, resolution=12)
    assert rng.get_state() == state
    before = model.compute().scores.copy()
    solver.step(5)
    after = model.compute().scores
    assert not numpy.array_equal(before, after)  # shared weights: the boundary moved with training
    points, labels = training_points(solver.net)
    xmin, xmax, ymin, ymax = model.grid.bounds
    assert xmin < points[:, 0].min() and points[:, 0].max() < xmax
    assert ymin < points[:, 1].min() and points[:, 1].max() < ymax
    assert set(labels.tolist()) == {0, 1, 2}


def test_a_net_without_two_inputs_is_refused(tmp_path):
    net = """
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
    solver = make_solver(tmp_path, net)
    with pytest.raises(NetDefinitionError, match="2 inputs"):
        BoundaryModel(solver.net)
