"""Fixtures for the inspector / heatmap / curves tests: a real spiral solver, a big single-layer net."""
from __future__ import annotations

import pytest

import engine
from gui.model import frames

SPIRAL = "resources/examples/spiral_mlp/solver.prototxt"

#: A net whose only InnerProduct layer is 1024×1024 (DummyData input, Euclidean loss).
BIG_SOLVER = """
type: "SGD" base_lr: 0.01 momentum: 0.9 random_seed: 3
net_param {
  layer { name: "data" type: "DummyData" top: "data" top: "target"
          dummy_data_param { shape { dim: 4 dim: 1024 } data_filler { type: "gaussian" std: 1 } } }
  layer { name: "big" type: "InnerProduct" bottom: "data" top: "big"
          inner_product_param { num_output: 1024 weight_filler { type: "gaussian" std: 0.01 } } }
  layer { name: "loss" type: "EuclideanLoss" bottom: "big" bottom: "target" top: "loss" }
}
"""


@pytest.fixture
def spiral_solver(examples_dir):
    """The spiral MLP solver, ready for inspection, not yet stepped."""
    solver = engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt"))
    frames.prepare_for_inspection(solver)
    return solver


@pytest.fixture
def big_solver():
    solver = engine.get_solver(BIG_SOLVER)
    frames.prepare_for_inspection(solver)
    return solver


#: Two InnerProduct layers, the second with transpose: true (W stored K_×N_).
TRANSPOSED_SOLVER = """
type: "SGD" base_lr: 0.1 random_seed: 5
net_param {
  layer { name: "data" type: "DummyData" top: "data" top: "target"
          dummy_data_param { shape { dim: 6 dim: 4 } shape { dim: 6 dim: 3 }
                             data_filler { type: "gaussian" std: 1 } } }
  layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
          inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } } }
  layer { name: "ipT" type: "InnerProduct" bottom: "ip1" top: "ipT"
          inner_product_param { num_output: 3 transpose: true weight_filler { type: "gaussian" std: 0.5 }
                                bias_term: false } }
  layer { name: "loss" type: "EuclideanLoss" bottom: "ipT" bottom: "target" top: "loss" }
}
"""


@pytest.fixture
def transposed_solver():
    solver = engine.get_solver(TRANSPOSED_SOLVER)
    frames.prepare_for_inspection(solver)
    return solver



@pytest.fixture
def debugger_window(qtbot):
    """A shown 1280x860 main window on the spiral example with the debugger installed
    (errors recorded, not modal); shut down afterwards."""
    import gui.debug
    from engine import resources
    from gui.main_window import MainWindow
    window = MainWindow(settings=None, modal_errors=False)
    qtbot.addWidget(window)
    window.resize(1280, 860)
    window.show()
    assert window.open_path(resources.examples()["spiral_mlp"])
    gui.debug.install(window)
    yield window
    window.debug.slow_motion.stop()
    window.shutdown()
