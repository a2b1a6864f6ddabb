"""The net builder: a design writes a net and a solver that reload into the same net;
edits rebuild the net keeping the weights of layers whose shapes did not change."""
from __future__ import annotations

import numpy
import pytest

import engine
from engine.backend import to_numpy
from engine.proto import caffe_pb2
from engine.prototxt import parse_net
from gui.model import net_builder as nb


def _solver(design: nb.NetDesign):
    param = caffe_pb2.SolverParameter()
    param.type, param.base_lr, param.momentum, param.random_seed = "SGD", 0.1, 0.9, 1701
    param.lr_policy, param.max_iter = "fixed", 1000
    param.net_param.CopyFrom(design.net_param())
    return engine.get_solver(param)


def _shapes(net) -> dict:
    return {layer.name: [b.shape for b in layer.blobs] for layer in net.layers if layer.blobs}


def test_default_design_is_the_spiral_mlp_shape_and_trains():
    design = nb.NetDesign()
    assert design.summary() == "2 → 16 ReLU → 16 ReLU → 3, SoftmaxWithLoss"
    solver = _solver(design)
    assert _shapes(solver.net) == {"ip1": [(16, 2), (16,)], "ip2": [(16, 16), (16,)], "out": [(3, 16), (3,)]}
    first = float(solver.step(1))
    solver.step(100)
    assert numpy.mean(solver.losses) < first


def test_save_writes_a_net_and_solver_that_reload_into_the_same_net(tmp_path):
    design = nb.NetDesign(dataset="xor")
    design.add_layer(num_output=5, activation="TanH")
    design.set_activation(0, "ELU")
    design.set_loss("HingeLoss")
    net_path, solver_path = nb.save(design, str(tmp_path))
    reloaded = engine.get_solver(solver_path)
    built = _solver(design)
    assert _shapes(reloaded.net) == _shapes(built.net)
    assert [layer.type_name for layer in reloaded.net.layers] == [layer.type_name for layer in built.net.layers]
    again = nb.design_from_net_param(parse_net(net_path)[0])
    assert again.hidden == design.hidden and again.loss == "HingeLoss" and again.dataset == "xor"
    assert again.prototxt() == design.prototxt()


def test_editing_keeps_the_weights_of_unchanged_layers():
    design = nb.NetDesign()
    old = _solver(design)
    old.step(5)
    ip1 = to_numpy(old.net.params["ip1"][0].data).copy()
    out = to_numpy(old.net.params["out"][0].data).copy()
    design.change_units(1, +4)  # ip2: 16 -> 20, so ip2 and out change shape
    solver, kept, fresh = nb.rebuild(old, design)
    assert kept == ["ip1"] and fresh == ["ip2", "out"]
    assert numpy.array_equal(to_numpy(solver.net.params["ip1"][0].data), ip1)
    design.change_units(1, -4)
    again, kept, fresh = nb.rebuild(old, design)
    assert kept == ["ip1", "ip2", "out"] and fresh == []
    assert numpy.array_equal(to_numpy(again.net.params["out"][0].data), out)
    design.add_layer(index=0, num_output=16)  # a new first layer: ip3 2->16, ip1 now 16->16
    third, kept, fresh = nb.rebuild(old, design)
    assert [h.name for h in design.hidden] == ["ip3", "ip1", "ip2"]
    assert fresh == ["ip3", "ip1"] and kept == ["ip2", "out"]
    assert numpy.isfinite(float(third.step(1)))


def test_bad_edits_say_what_is_allowed():
    design = nb.NetDesign()
    with pytest.raises(ValueError, match="ReLU, Sigmoid"):
        design.set_activation(0, "Swish")
    with pytest.raises(ValueError, match="SoftmaxWithLoss"):
        design.set_loss("EuclideanLoss")
    assert design.change_units(0, -100) == 1 and design.change_units(0, 10_000) == nb.MAX_UNITS


def test_builder_panel_rebuilds_the_windows_net_keeping_weights(qapp):
    from tests.gui.windows import module_window
    with module_window() as window:
        window.open_path("resources/examples/spiral_mlp/solver.prototxt")
        window.step_iterations(3)
        assert window.wait_until_idle()
        panel = window.net_builder
        assert [h.name for h in panel.design.hidden] == ["ip1", "ip2"] and panel.design.output_name == "ip3"
        ip1 = to_numpy(window.session.solver.net.params["ip1"][0].data).copy()
        panel.change_units(1, +1)  # ip2: 16 -> 17
        qapp.processEvents()
        net = window.session.solver.net
        assert net.params["ip2"][0].shape == (17, 16) and net.params["ip3"][0].shape == (3, 17)
        assert numpy.array_equal(to_numpy(net.params["ip1"][0].data), ip1)
        assert "ip2" in window.graph.node_items and "num_output: 17" in panel.prototxt.toPlainText()
        assert window.session.timeline.marks[-1].label == "net edited: ip2 num_output → 17"
        panel.set_activation(0, "TanH")
        assert "TanH" in {layer.type_name for layer in window.session.solver.net.layers}
        window.step_iterations(2)
        assert window.wait_until_idle() and window.session.iteration == 2


# -- drawn data ---------------------------------------------------------------------------


def test_drawn_points_add_paint_erase_and_export(tmp_path):
    import h5py

    from gui.model.drawn_data import DrawnData
    data = DrawnData(num_classes=2)
    data.add(0.0, 0.0, 0)
    data.add(1.0, 1.0, 1)
    assert not data.paint(0.01, 0.0, 0, spacing=0.05)  # too close to the first
    assert data.paint(0.5, 0.0, 2, spacing=0.05) and data.num_classes == 3
    assert data.erase(0.0, 0.0, radius=0.1) == 1 and len(data) == 2
    assert data.counts() == [0, 1, 1]
    path = data.to_hdf5(str(tmp_path / "points.h5"))
    with h5py.File(path, "r") as handle:
        assert handle["data"].shape == (2, 2) and handle["data"].dtype == numpy.float32
        assert handle["label"][...].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="no points"):
        DrawnData().to_hdf5(str(tmp_path / "none.h5"))


def test_a_net_trains_on_drawn_points_and_saves_them_beside_it(tmp_path):
    from gui.model.drawn_data import DrawnData
    data = DrawnData.from_dataset("xor", num_points=40, num_classes=2)
    data.add(0.0, 0.0, 1)
    design = nb.NetDesign(dataset="xor")
    design.drawn_source, design.drawn_classes = data.save(str(tmp_path / "work")), data.num_classes
    design.batch_size = 41  # the whole set in one batch: the batch is the drawn points
    solver = _solver(design)
    solver.step(1)
    batch = to_numpy(solver.net.blobs["data"].data)
    assert numpy.array_equal(batch, data.points) and solver.net.params["out"][0].shape == (2, 16)
    net_path, solver_path = nb.save(design, str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "drawn_points.h5").exists()
    assert 'source: "drawn_points.txt"' in open(net_path).read()
    reloaded = engine.get_solver(solver_path)
    reloaded.step(1)
    assert numpy.array_equal(to_numpy(reloaded.net.blobs["data"].data), data.points)


def test_drawing_in_the_window_rebuilds_the_net_on_the_points(qapp):
    from tests.gui.windows import module_window
    with module_window() as window:
        window.open_path("resources/examples/xor/solver.prototxt")
        panel = window.drawn_data
        before = len(panel.data)
        panel.label_spin.setValue(1)
        panel.add_point(0.0, 0.0)
        panel.changed_now()
        qapp.processEvents()
        net = window.session.solver.net
        assert net.layers[0].type_name == "HDF5Data" and len(panel.data) == before + 1
        assert window.net_builder.design.drawn_source.endswith("drawn_points.txt")
        window.step_iterations(3)
        assert window.wait_until_idle() and window.session.iteration == 3
