"""Dataset controls: regenerating the built-in data rebuilds the net on it."""
import numpy
import pytest
from PySide6.QtCore import Qt

from engine import datasets
from gui.model.session import Session

SPIRAL = "resources/examples/spiral_mlp/solver.prototxt"


def _train_rows(solver):
    layer = solver.net.layers[0]
    return layer.batcher.arrays[0]


def test_session_regenerates_the_data_with_new_settings():
    session = Session()
    session.load(SPIRAL)
    session.step_iteration()
    session.edit("base_lr", 0.05)
    session.regenerate_data(num_points=150, noise=0.3, test_fraction=0.4, seed=7)
    solver = session.solver
    assert solver.iter == 0
    assert solver.param.base_lr == pytest.approx(0.05)  # solver settings are kept
    noise = solver.net.layers[0].param.builtin_data_param.noise  # 0.3 as the prototxt's float32
    assert noise == pytest.approx(0.3)
    data, labels = datasets.load("spiral", num_points=150, noise=noise, num_classes=3, seed=7)
    (train, _), (test, _) = datasets.split(data, labels, 0.4, 7)
    numpy.testing.assert_array_equal(_train_rows(solver), train)
    numpy.testing.assert_array_equal(solver.test_nets[0].layers[0].batcher.arrays[0], test)
    assert session.dataset_settings()["noise"] == pytest.approx(0.3)


def test_a_net_without_builtin_data_has_no_dataset_settings(tmp_path):
    net = tmp_path / "net.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                   'inner_product_param { num_output: 2 } }\n')
    session = Session()
    session.load(str(net))
    assert session.dataset_settings() is None
    with pytest.raises(Exception, match="no built-in dataset"):
        session.regenerate_data(noise=0.2)


def test_the_panel_regenerates_the_window_net(qtbot):
    from gui.main_window import MainWindow
    window = MainWindow(modal_errors=False)
    qtbot.addWidget(window)
    window.open_path(SPIRAL)
    panel = window.dataset_panel
    assert panel.regenerate.isEnabled()
    assert panel.num_points.value() == 300
    panel.noise.setValue(0.25)
    panel.seed.setValue(3)
    qtbot.mouseClick(panel.regenerate, Qt.LeftButton)
    window.wait_until_idle()
    layer = window.session.solver.net.layers[0]
    assert layer.param.builtin_data_param.noise == pytest.approx(0.25)
    assert layer.param.builtin_data_param.seed == 3
    assert window.session.iteration == 0
    window.step_iterations(1)
    window.wait_until_idle()
    assert window.session.iteration == 1
    window.shutdown()


def test_the_panel_follows_the_session_without_a_window(qtbot, tmp_path):
    from gui.views.dataset_panel import DatasetPanel
    session = Session()
    panel = DatasetPanel(lambda **_: None)
    qtbot.addWidget(panel)
    panel.follow(session)
    session.load(SPIRAL)  # NetLoaded: the panel shows the net's settings by itself
    assert panel.regenerate.isEnabled() and panel.num_points.value() == 300
    net = tmp_path / "net.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n')
    session.load(str(net))
    assert not panel.regenerate.isEnabled()
