"""Every panel draws the model's state: after another net is loaded none shows the
previous net, and after a rewind the status bar, inspector and curves show the
state rewound to (or say they have nothing to show)."""
from __future__ import annotations

import numpy
import pytest
from PySide6.QtWidgets import QApplication

import engine
from engine import resources
from gui.model.tiles import image_layers

EXAMPLES = resources.examples()


@pytest.fixture
def window(debugger_window):
    return debugger_window


def settle(window, qtbot) -> None:
    assert window.wait_until_idle(timeout=60)
    qtbot.wait(20)
    QApplication.processEvents()


def fill_every_panel(window, qtbot) -> None:
    """Give each panel something of the first net: curves, timing, gradient check,
    decision boundary, the update taken apart, and a NaN stop."""
    debug = window.debug
    for name in ("timing", "gradcheck", "tiles", "boundary", "decomposition"):  # the last of each tab group shows
        debug.show_panel(name)
    window.step_iterations(3)
    settle(window, qtbot)
    debug.timing._run()
    task = debug.run_gradient_check()
    task.wait(60)
    qtbot.waitUntil(lambda: debug.gradcheck.report is not None, timeout=60000)
    assert debug.boundary.result is not None and debug.decomposition.decomposition is not None
    window.session.edit("base_lr", 1e30)
    window.step_iterations(3)
    settle(window, qtbot)
    assert window.banner.isVisible() and "Stopped" in debug.breakpoints_panel.stop_label.text()


# (panel, check after loading the second net); each check returns what is wrong, or "".
def _inspector(window, solver):
    names = [layer.name for layer in solver.net.layers if layer.type_name == "InnerProduct"]
    shown = window.inspector.layer_names()
    if shown != names:
        return f"inspector lists {shown}, the net has {names}"
    W = window.inspector._views[names[0]].W
    return "" if numpy.array_equal(W, solver.net.params[names[0]][0].data) else "inspector W is not the net's"


def _graph(window, solver):
    names = sorted(layer.name for layer in solver.net.layers)
    return "" if sorted(window.graph.node_items) == names else f"graph shows {sorted(window.graph.node_items)}"


def _curves(window, solver):
    x, _ = window.curves.series("loss")
    return "" if x.size == 0 or x.max() <= solver.iter else f"curves reach iteration {x.max()}"


def _status(window, solver):
    text = window.status_labels["iteration"].text()
    return "" if text == f"iteration {solver.iter}" else f"status bar says {text!r}"


def _gradcheck(window, solver):
    panel = window.debug.gradcheck
    return "" if panel.report is None and panel.table.rowCount() == 0 and \
        panel.verdict.text() == panel.NOT_RUN else "gradient-check table of the previous net"


def _boundary(window, solver):
    panel, model = window.debug.boundary, window.debug.boundary_model
    if model is None:
        return "" if panel.result is None and panel.title.text().startswith("No decision boundary") \
            else f"boundary of the previous net ({panel.title.text()!r})"
    if panel.result is None:
        return ""
    last = [layer.name for layer in solver.net.layers if layer.type_name == "InnerProduct"][-1]
    classes = solver.net.params[last][0].shape[0]
    shown = panel.result.probabilities.shape[-1]
    return "" if shown == classes else f"boundary of {shown} classes, the net has {classes}"


def _tiles(window, solver):
    panel = window.debug.tiles
    names = image_layers(solver.net)
    listed = [panel.layer_combo.itemText(i) for i in range(panel.layer_combo.count())]
    if listed != names:
        return f"tiles list {listed}, the net has {names}"
    if panel.mosaic is not None and panel.mosaic.layer not in names:
        return f"tiles of {panel.mosaic.layer}"
    return "" if names or "No layer" in panel.title.text() else "tiles say nothing"


def _timing(window, solver):
    panel = window.debug.timing
    return "" if panel.table.rowCount() == 0 and panel.total.text() == panel.NOT_RUN else \
        "layer timing of the previous net"


def _nan_message(window, solver):
    if window.banner.isVisible():
        return f"banner: {window.banner.text()}"
    label = window.debug.breakpoints_panel.stop_label.text()
    return "" if label == "No stop yet." else f"breakpoints panel: {label}"


def _decomposition(window, solver):
    panel = window.debug.decomposition
    if panel.decomposition is None:
        return ""
    return "" if panel.decomposition.param.split(".")[0] in solver.net.params else "update of the previous net"


PANELS = {"inspector": _inspector, "graph": _graph, "curves": _curves, "status bar": _status,
          "gradient check": _gradcheck, "decision boundary": _boundary, "weight tiles": _tiles,
          "layer timing": _timing, "NaN message": _nan_message, "update taken apart": _decomposition}


@pytest.mark.parametrize("second", ["xor", "digits_mlp"])
def test_after_another_net_and_a_rewind_every_panel_shows_the_new_state(window, qtbot, second):
    fill_every_panel(window, qtbot)
    assert window.open_path(EXAMPLES[second])
    settle(window, qtbot)
    solver = window.session.solver
    wrong = {name: check(window, solver) for name, check in PANELS.items()}
    assert not any(wrong.values()), {k: v for k, v in wrong.items() if v}

    window.step_iterations(6)
    settle(window, qtbot)
    twin = engine.get_solver(EXAMPLES[second])
    twin_loss = twin.step(3)
    for _ in range(3):
        assert window.debug.step_back()
    settle(window, qtbot)
    assert solver.iter == 3
    wrong = {name: check(window, solver) for name, check in PANELS.items()}
    assert not any(wrong.values()), {k: v for k, v in wrong.items() if v}
    x, _ = window.curves.series("loss")
    assert x.max() == 3  # cut back to the state rewound to
    assert window.status_labels["loss"].text().startswith(f"loss {twin_loss:.4g}")
    name = window.inspector.layer_names()[0]
    assert numpy.array_equal(window.inspector._views[name].W, twin.net.params[name][0].data)

    # the rewind slider goes the same way
    window.debug.rewind_bar.goto(1)
    settle(window, qtbot)
    assert solver.iter == 1 and window.status_labels["iteration"].text() == "iteration 1"
    assert window.curves.series("loss")[0].max() == 1


def test_every_view_draws_the_frame_the_session_shows(window, qtbot):
    """The views follow the session's FrameReady, not the main window: a frame shown
    through the session alone (no window method) reaches the inspector, the graph,
    the banner, the status bar and the Run N progress."""
    import dataclasses

    from gui.model.events import FrameReady
    from gui.model.session import NonFiniteStop
    window.step_iterations(2)
    settle(window, qtbot)
    seen = []
    window.session.emitter.connect(seen.append, FrameReady)
    drawn_before = window.frames_drawn
    frame = window.worker.make_frame()
    layer = window.inspector.layer_names()[-1]
    stop = NonFiniteStop(iteration=41, layer=layer, blob=layer, phase="backward", message="made-up NaN in " + layer)
    shown = dataclasses.replace(frame, iteration=41, loss=0.125, learning_rate=0.5, nonfinite=stop,
                                running=True, progress=(3, 9))
    window.session.show_frame(shown)
    QApplication.processEvents()
    assert window.frames_drawn == drawn_before  # the window dealt nothing out
    assert [event.frame for event in seen] == [shown] and window.session.frame is shown
    assert window.status_labels["iteration"].text() == f"iteration {max(41, window.session.iteration)}"
    assert window.status_labels["loss"].text().startswith("loss 0.125")
    assert window.status_labels["lr"].text() == "lr 0.5"
    assert window.banner.isVisibleTo(window) and "made-up NaN in " + layer in window.banner.text()
    assert window.graph.nonfinite_layer == layer
    assert window.inspector.selected_layer() == layer
    assert (window.controls.progress.value(), window.controls.progress.maximum()) == (3, 9)

    window.session.show_frame(frame)  # the frame of the real state again: the stop is gone
    QApplication.processEvents()
    assert not window.banner.isVisibleTo(window) and window.graph.nonfinite_layer is None
    assert window.status_labels["iteration"].text() == "iteration 2"


def test_the_run_status_is_the_sessions(window, qtbot):
    """Run shows Pause, the solver panel is read-only and the curves draw the fast way
    while the session says a run goes; all follow its RunStatus, and a real run both
    sets and clears it."""
    from gui.model.events import RunStatus
    seen = []
    window.session.emitter.connect(seen.append, RunStatus)
    field = next(iter(window.solver_panel.fields.values()))
    window.session.set_running(True)
    assert window.controls.run_pause.text() == "Pause" and not window.controls.step_iteration.isEnabled()
    assert not field.isEnabled() and window.curves.is_live()
    window.session.set_running(False)
    assert window.controls.run_pause.text() == "Run" and window.controls.step_iteration.isEnabled()
    assert field.isEnabled() and not window.curves.is_live()
    assert seen == [RunStatus(True), RunStatus(False)]

    window.step_iterations(40)
    assert window.session.running
    settle(window, qtbot)
    assert not window.session.running and seen[-2:] == [RunStatus(True), RunStatus(False)]
    assert field.isEnabled() and window.controls.run_pause.text() == "Run"


def test_a_runs_progress_between_frames_reaches_the_status_bar_and_the_controls(window):
    window.session.report_progress(1234, 34, 100)
    assert window.status_labels["iteration"].text() == "iteration 1234"
    assert (window.controls.progress.value(), window.controls.progress.maximum()) == (34, 100)
