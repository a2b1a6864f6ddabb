"""gui.views.graph: layout of the layer graph, selection, step highlighting."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

import engine
from gui.views.graph import GraphView, describe_net, layer_kind, layout_graph


def deep_net_text(hidden: int = 19) -> str:
    lines = ['name: "deep"',
             'layer { name: "data" type: "DummyData" top: "data" top: "label" dummy_data_param { '
             'shape { dim: 4 dim: 6 } shape { dim: 4 } } }']
    bottom = "data"
    for k in range(hidden):
        lines.append(f'layer {{ name: "ip{k}" type: "InnerProduct" bottom: "{bottom}" top: "ip{k}" '
                     f'inner_product_param {{ num_output: 5 weight_filler {{ type: "xavier" }} }} }}')
        lines.append(f'layer {{ name: "relu{k}" type: "ReLU" bottom: "ip{k}" top: "ip{k}" }}')
        bottom = f"ip{k}"
    lines.append(f'layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "{bottom}" bottom: "label" top: "loss" }}')
    return "\n".join(lines)


BRANCHY = '''name: "branchy"
layer { name: "data" type: "DummyData" top: "data" top: "target"
        dummy_data_param { shape { dim: 4 dim: 6 } shape { dim: 4 dim: 3 } } }
layer { name: "a1" type: "InnerProduct" bottom: "data" top: "a1" inner_product_param { num_output: 5 } }
layer { name: "a1_tanh" type: "TanH" bottom: "a1" top: "a1" }
layer { name: "a2" type: "InnerProduct" bottom: "a1" top: "a2" inner_product_param { num_output: 3 } }
layer { name: "b1" type: "InnerProduct" bottom: "data" top: "b1" inner_product_param { num_output: 3 } }
layer { name: "loss_a" type: "EuclideanLoss" bottom: "a2" bottom: "target" top: "loss_a" }
layer { name: "loss_b" type: "EuclideanLoss" bottom: "b1" bottom: "a2" top: "loss_b" }
'''


@pytest.fixture
def spiral_net(examples_dir):
    return engine.get_solver(str(examples_dir / "spiral_mlp" / "solver.prototxt")).net


def test_one_node_per_layer_in_place_attached(spiral_net):
    nodes = describe_net(spiral_net)
    assert [n.name for n in nodes] == [layer.name for layer in spiral_net.layers]
    by_name = {n.name: n for n in nodes}
    assert by_name["relu1"].in_place and nodes[by_name["relu1"].host].name == "ip1"
    assert by_name["relu2"].in_place and nodes[by_name["relu2"].host].name == "ip2"
    assert by_name["ip2"].top_shapes == [(32, 16)]
    assert [layer_kind(n.type) for n in nodes] == ["data", "inner product", "activation", "inner product",
                                                   "activation", "inner product", "loss"]


def test_layout_runs_top_to_bottom_and_labels_blobs(spiral_net):
    layout = layout_graph(describe_net(spiral_net))
    for edge in layout.edges:
        source, target = layout.nodes[edge.source], layout.nodes[edge.target]
        assert target.y > source.y + layout.group_height(source)
    blobs = {(layout.nodes[e.source].name, layout.nodes[e.target].name, e.blob, e.shape) for e in layout.edges}
    assert ("ip1", "ip2", "ip1", (32, 16)) in blobs  # ip1's output after relu1, drawn from the ip1 group
    assert ("data", "loss", "label", (32,)) in blobs
    # the label edge skips ranks: it runs down a lane right of the nodes it passes
    k = [i for i, e in enumerate(layout.edges) if e.blob == "label"][0]
    assert layout.lanes[k] > max(n.x for n in layout.nodes) + 100


def test_split_layers_are_hidden_and_branches_side_by_side():
    net = engine.Net(BRANCHY, engine.TRAIN)
    assert any(layer.type_name == "Split" for layer in net.layers)
    layout = layout_graph(describe_net(net))
    names = [n.name for n in layout.nodes]
    assert names == ["data", "a1", "a1_tanh", "a2", "b1", "loss_a", "loss_b"]
    a1, b1 = layout.node("a1"), layout.node("b1")
    assert a1.y == b1.y and a1.x != b1.x
    edge_pairs = {(layout.nodes[e.source].name, layout.nodes[e.target].name, e.blob) for e in layout.edges}
    assert ("data", "b1", "data") in edge_pairs and ("a2", "loss_b", "a2") in edge_pairs


def test_forty_layers_do_not_overlap():
    net = engine.Net(deep_net_text(19), engine.TRAIN)
    assert len(net.layers) == 40
    layout = layout_graph(describe_net(net))
    boxes = [layout.box(n) for n in layout.nodes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.intersects(b)


@pytest.fixture
def view(qtbot, spiral_net):
    """A shown graph of the spiral net."""
    graph = GraphView()
    qtbot.addWidget(graph)
    graph.resize(420, 700)
    graph.show()
    graph.set_net(spiral_net)
    return graph


def test_click_selects_and_highlight_shows_direction(qtbot, view):
    with qtbot.waitSignal(view.layerSelected) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.node_center("ip2"))
    assert blocker.args == ["ip2"] and view.selected == "ip2"
    assert view.node_items["ip2"].selected and not view.node_items["ip1"].selected
    view.set_active("ip3", "backward")
    assert view.node_items["ip3"].direction == "backward"
    modes = {(e.spec.blob, e.mode) for e in view.edge_items}
    assert ("ip2", "backward") in modes  # the gradient flows up the edge ip3 reads
    view.set_active("ip1", "forward")
    assert view.node_items["ip3"].direction is None and view.node_items["ip1"].direction == "forward"
    view.set_nonfinite("relu2", "NaN")
    assert view.node_items["relu2"].nonfinite
    view.set_nonfinite(None)
    assert not view.node_items["relu2"].nonfinite


def test_wheel_zooms(view):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication
    before = view.transform().m11()
    event = QWheelEvent(QPointF(100, 100), QPointF(100, 100), QPoint(0, 0), QPoint(0, 240), Qt.NoButton,
                        Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.transform().m11() == pytest.approx(before * 1.15 ** 2)


def test_the_graph_follows_the_session_without_a_window(qtbot, tmp_path):
    from gui.model.session import Session
    session = Session()
    view = GraphView()
    qtbot.addWidget(view)
    view.follow(session)
    session.load("resources/examples/spiral_mlp/solver.prototxt")  # NetLoaded: the graph draws the net
    assert set(view.node_items) == {layer.name for layer in session.solver.net.layers}
    net = tmp_path / "net.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'
                   'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                   'inner_product_param { num_output: 2 } }\n')
    session.load(str(net))
    assert set(view.node_items) == {"in", "ip"}


def test_a_context_menu_on_a_node_is_asked_for_by_name(view):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication
    asked = []
    view.layerMenuRequested.connect(lambda name, pos: asked.append((name, pos)))
    centre = view.node_center("ip2")
    QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, centre,
                                                               view.viewport().mapToGlobal(centre)))
    QApplication.sendEvent(view.viewport(), QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(2, 2),
                                                              view.viewport().mapToGlobal(QPoint(2, 2))))
    assert [name for name, _ in asked] == ["ip2"]
    assert asked[0][1] == view.viewport().mapToGlobal(centre)


def test_every_caffe_layer_type_gets_a_colour_family():
    from engine.layer import CAFFE_LAYER_TYPES
    kinds = {name: layer_kind(name) for name in CAFFE_LAYER_TYPES}
    assert set(kinds.values()) <= {"data", "inner product", "activation", "loss", "conv/pool", "other"}
    assert kinds["Im2col"] == kinds["SPP"] == kinds["Convolution"] == "conv/pool"
    assert kinds["LSTM"] == kinds["RNN"] == kinds["InnerProduct"] == "inner product"
    assert kinds["HDF5Data"] == kinds["Input"] == "data" and kinds["SoftmaxWithLoss"] == "loss"
