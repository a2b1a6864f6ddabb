"""The shipped examples build and train to high test accuracy."""
import pathlib

import pytest

import engine
from engine.prototxt import parse_solver

FOLDER = pathlib.Path(__file__).resolve().parents[2] / "resources" / "examples"
FOUND = sorted(p.parent.name for p in FOLDER.glob("*/solver.prototxt"))
# example -> (iterations to train, minimum test accuracy); others: min(max_iter, 1000), 0.9
EXAMPLES = {"spiral_mlp": (1500, 0.9), "xor": (1000, 0.9), "digits_mlp": (1000, 0.9)}


def test_the_issue_examples_ship():
    assert set(EXAMPLES) <= set(FOUND)
    assert sorted(engine.resources.examples()) == FOUND


@pytest.mark.parametrize("name", FOUND)
def test_example_trains_to_high_accuracy(name, examples_dir, tmp_path, monkeypatch):
    """Train in chunks of test_interval iterations until the test accuracy is high (or the budget is spent)."""
    solver_file = examples_dir / name / "solver.prototxt"
    default = (min(parse_solver(str(solver_file))[0].max_iter, 1000), 0.9)
    budget, minimum = EXAMPLES.get(name, default)
    assert budget <= 3000
    monkeypatch.chdir(tmp_path)   # the net file resolves next to the solver, not the working directory
    solver = engine.get_solver(str(solver_file), python_layers=[solver_file.parent])  # consent: its own layers
    assert solver.param.max_iter >= budget
    assert "accuracy" not in solver.net.blobs and "accuracy" in solver.test_nets[0].blobs
    first = solver.step(1)
    initial_accuracy = solver.test_scores[0][1]["accuracy"]
    scores, chunk = {}, solver.param.test_interval or 100
    while solver.iter < budget:
        solver.step(min(chunk, budget - solver.iter))
        scores = solver.test_all()
        if scores["accuracy"] >= minimum:
            break
    assert scores["accuracy"] >= minimum, (name, solver.iter, scores)
    assert scores["accuracy"] > initial_accuracy + 0.2        # training did it
    assert solver.smoothed_loss < first / 2
    assert not list(tmp_path.iterdir())                       # no snapshots written by step()
