"""The debugger installed on the real main window: Step Back, breakpoints during a run,
the NaN trap, gradient check, live boundary and decomposition, presenter mode."""
from __future__ import annotations

import numpy
import pytest
from PySide6.QtWidgets import QApplication

import engine
import gui.debug
from engine import resources
from gui.main_window import MainWindow
from gui.model import breakpoints as bp

SPIRAL = resources.examples()["spiral_mlp"]


@pytest.fixture
def window(debugger_window):
    return debugger_window


def run(window, count):
    window.step_iterations(count)
    assert window.wait_until_idle(timeout=60)


def weights(solver):
    return [numpy.array(b.data) for b in solver.net.learnable_params]


def test_install_is_idempotent_adds_the_actions_and_presenter_mode_toggles(window):
    controller = window.debug
    assert gui.debug.install(window) is controller
    assert controller.step_back_action.shortcut().toString() == "Shift+F10"
    toolbar_texts = [a.text() for a in window.toolbar.actions()]
    for text in ("Step Back", "Gradient check", "Presenter mode"):
        assert text in toolbar_texts
    assert not any(d.isVisible() for d in controller.docks.values())  # the default layout is unchanged
    app = QApplication.instance()
    size = app.font().pointSizeF()
    controller.presenter_action.trigger()
    assert controller.presenter.on and app.font().pointSizeF() > size
    controller.presenter_action.trigger()
    assert not controller.presenter.on and app.font().pointSizeF() == size


def test_the_installed_window_still_steps_and_step_back_restores_exactly(window):
    twin = engine.get_solver(SPIRAL)
    twin.step(4)
    after_four = weights(twin)
    twin.step(1)
    after_five = weights(twin)
    run(window, 5)
    solver = window.session.solver
    assert solver.iter == 5 and len(window.debug.timeline) == 6
    for mine, theirs in zip(weights(solver), after_five):
        assert numpy.array_equal(mine, theirs)
    window.debug.step_back_action.trigger()
    assert solver.iter == 4 and window.status_labels["iteration"].text() == "iteration 4"
    for mine, theirs in zip(weights(solver), after_four):
        assert numpy.array_equal(mine, theirs)
    window.inspector.select_layer("ip2")
    numpy.testing.assert_array_equal(window.inspector.heatmap("ip2", "W").image_array(),
                                     solver.net.params["ip2"][0].data)
    run(window, 1)  # forward again: the same numbers
    for mine, theirs in zip(weights(solver), after_five):
        assert numpy.array_equal(mine, theirs)
    for _ in range(3):  # half an iteration, stepped event by event ...
        window.step_event()
        assert window.wait_until_idle(timeout=30)
    assert window.session.mid_iteration
    assert window.debug.step_back()  # ... is undone first
    assert not window.session.mid_iteration and solver.iter == 5
    for mine, theirs in zip(weights(solver), after_five):
        assert numpy.array_equal(mine, theirs)


def test_a_layer_breakpoint_stops_the_run_before_that_layer(window, qtbot):
    controller = window.debug
    controller.breakpoints_panel.add_layer_breakpoint("ip2", bp.BACKWARD)
    with qtbot.waitSignal(controller.stopped, timeout=30000) as signal:
        run(window, 10)
    stop = signal.args[0]
    assert (stop.layer, stop.phase, stop.iteration) == ("ip2", bp.BACKWARD, 0)
    session = window.session
    assert session.mid_iteration and session.last_event.layer == "relu2"
    assert not session.solver.net.params["ip2"][0].diff.any()  # ip2's backward has not run
    qtbot.waitUntil(lambda: "before the backward of layer 'ip2'" in controller.breakpoints_panel.stop_label.text())
    assert controller.docks["breakpoints"].isVisible() and window.inspector.selected_layer() == "ip2"
    with qtbot.waitSignal(controller.stopped, timeout=30000) as signal:
        run(window, 10)  # continue: finishes iteration 0, stops in iteration 1
    assert signal.args[0].iteration == 1 and session.solver.iter == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf − inf in the softmax
def test_a_planted_inf_stops_the_run_at_that_layer(window, qtbot):
    run(window, 2)
    window.session.solver.net.params["ip3"][0].data[1, 2] = numpy.inf
    with qtbot.waitSignal(window.debug.stopped, timeout=30000) as signal:
        run(window, 20)
    stop = signal.args[0]
    assert stop.layer == "ip3" and stop.phase == "forward" and stop.iteration == 2
    assert window.session.solver.iter == 2
    assert window.graph.nonfinite_layer == "ip3"
    # the same trap with a layer breakpoint set (the run then goes event by event)
    assert window.debug.step_back()  # to iteration 1: the planted value was never recorded
    solver = window.session.solver
    assert solver.iter == 1 and numpy.isfinite(solver.net.params["ip3"][0].data).all()
    solver.net.params["ip3"][0].data[1, 2] = numpy.inf
    window.debug.breakpoints_panel.add_layer_breakpoint("loss", bp.BACKWARD)
    with qtbot.waitSignal(window.debug.stopped, timeout=30000) as signal:
        run(window, 20)
    assert (signal.args[0].layer, signal.args[0].phase, signal.args[0].iteration) == ("ip3", "forward", 1)


def test_loss_above_condition_stops_a_run(window, qtbot):
    controller = window.debug
    controller.breakpoints_panel.loss_above_value.setValue(0.0)
    controller.breakpoints_panel.loss_above_box.setChecked(True)
    run(window, 20)
    assert window.session.solver.iter == 1


def test_gradient_check_action_runs_and_passes(window, qtbot):
    run(window, 3)
    with qtbot.waitSignal(window.debug.gradcheck.finished, timeout=60000) as signal:
        window.debug.gradcheck_action.trigger()
    assert signal.args[0].passed
    assert window.debug.docks["gradcheck"].isVisible()
    assert window.graph.nonfinite_layer is None


def test_boundary_and_decomposition_docks_follow_training(window, qtbot):
    controller = window.debug
    controller.show_panel("boundary")
    controller.show_panel("decomposition")
    run(window, 3)
    qtbot.waitUntil(lambda: controller.decomposition.decomposition is not None, timeout=10000)
    result = controller.boundary.result
    assert result is not None and result.classes.shape == (64, 64)
    assert numpy.array_equal(result.scores, controller.boundary_model.compute().scores)
    d = controller.decomposition.decomposition
    solver = window.session.solver
    assert d.param == "ip1.0" and d.iteration == 2
    assert numpy.array_equal(d.update, solver.net.params["ip1"][0].diff)
    window.inspector.select_layer("ip3")
    window.graph.layerSelected.emit("ip3")
    assert controller.decomposition.decomposition.param == "ip3.0"
    assert controller.boundary.layer_combo.currentText() == "ip3"
    controller.show_panel("overlays")  # debug_info table, its colours on the graph's nodes
    rows = controller.overlays.model.rows
    assert [r.layer for r in rows] == [layer.name for layer in solver.net.layers]
    chips = window.graph.chips
    assert set(chips) == {"ip1", "ip2", "ip3"}  # the layers with an update/weight ratio
    from gui.model.overlays import node_colours
    for name, colour in node_colours(rows, "ratio").items():
        if colour:
            assert chips[name].brush().color().getRgb()[:3] == colour
    controller.docks["overlays"].hide()
    assert not window.graph.chips


def test_slow_motion_steps_events_until_a_layer_breakpoint(window, qtbot):
    controller = window.debug
    controller.slow_motion.set_pace(50)
    controller.breakpoints_panel.add_layer_breakpoint("ip3", bp.FORWARD)
    with qtbot.waitSignal(controller.slow_motion.stopped, timeout=30000) as signal:
        controller.slow_action.trigger()
    assert "before the forward of layer 'ip3'" in signal.args[0]
    assert window.session.last_event.layer == "relu2"
    assert not controller.slow_action.isChecked()


def test_the_graph_context_menu_sets_breakpoints_and_checks_one_layer(window, qtbot):
    controller = window.debug
    centre = window.graph.mapFromScene(window.graph.node_items["ip2"].sceneBoundingRect().center())
    assert window.graph.layer_at(centre) == "ip2"
    menu = controller.layer_menu("ip2")
    actions = {a.text(): a for a in menu.actions() if a.text()}
    actions["Stop before the backward of ip2"].trigger()
    [condition] = controller.breakpoints_panel.layer_breakpoints()
    assert (condition.layer, condition.phase) == ("ip2", bp.BACKWARD)
    with qtbot.waitSignal(controller.gradcheck.finished, timeout=60000) as signal:
        actions["Gradient check ip2"].trigger()
    assert {b.layer for b in signal.args[0].blobs} == {"ip2"}
    data_menu = {a.text() for a in controller.layer_menu("data").actions()}
    assert "Stop before the backward of data" not in data_menu  # the data layer runs no backward


def test_double_clicking_a_weight_sets_it_and_step_back_undoes_it(window, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QGraphicsSceneMouseEvent
    run(window, 2)
    controller = window.debug
    solver = window.session.solver
    original = weights(solver)
    window.inspector.select_layer("ip2")
    view = window.inspector.heatmap("ip2", "W")
    asked = []
    controller.ask_value = lambda title, current: (asked.append((title, current)) or (7.5, True))
    event = QGraphicsSceneMouseEvent(QEvent.Type.GraphicsSceneMouseDoubleClick)
    event.setScenePos(view.cell_scene_pos(3, 5))
    QApplication.sendEvent(view.image_item().scene(), event)
    assert asked and asked[0][1] == original[2][3, 5] and "W[3, 5]" in asked[0][0]
    assert solver.net.params["ip2"][0].data[3, 5] == 7.5
    assert window.inspector.heatmap("ip2", "W").image_array()[3, 5] == 7.5
    assert "edit ip2.0[3, 5]" in controller.timeline.current.label
    controller.step_back()
    assert solver.iter == 2
    for mine, theirs in zip(weights(solver), original):
        assert numpy.array_equal(mine, theirs)


def test_the_main_window_installs_the_debugger_with_its_panels(qtbot):
    from gui.debug.controller import DebugController
    eager = MainWindow(settings=None, modal_errors=False)
    qtbot.addWidget(eager)
    assert isinstance(getattr(eager, "debug", None), DebugController)
    eager.shutdown()
    lazy = MainWindow(settings=None, modal_errors=False, lazy_panels=True)
    qtbot.addWidget(lazy)
    assert getattr(lazy, "debug", None) is None  # pyqtgraph waits for the first paint ...
    lazy.show()
    assert lazy.open_path(SPIRAL)
    qtbot.waitUntil(lambda: isinstance(getattr(lazy, "debug", None), DebugController), timeout=10000)
    assert len(lazy.debug.timeline) == 1  # ... and the debugger then starts from the loaded net
    run(lazy, 2)
    assert lazy.debug.step_back() and lazy.session.solver.iter == 1
    lazy.shutdown()
