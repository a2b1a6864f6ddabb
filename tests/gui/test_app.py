"""The main window and the command line, driven through their actions (pytest-qt, offscreen)."""
from __future__ import annotations

import numpy
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

import engine
from engine import resources
from gui.app import main
from gui.main_window import MainWindow
from gui.model.python_consent import Choice

from .windows import module_window

SPIRAL = resources.examples()["spiral_mlp"]


@pytest.fixture(scope="module")
def shared_window(qapp):
    """One window for the module (building the heatmaps is the slow part)."""
    with module_window() as w:
        yield w


@pytest.fixture
def window(qtbot, shared_window):
    """The window freshly opened on the spiral example; errors are recorded, not modal."""
    w = shared_window
    w.pause()
    assert w.wait_until_idle(timeout=30)
    w.errors.clear()
    w.controls.count.setValue(100)
    w.inspector.set_grid_mode(False)
    assert w.open_path(SPIRAL)
    w.inspector.select_layer("ip1")
    yield w
    w.pause()
    w.wait_until_idle(timeout=30)


def trigger(window, action) -> None:
    """Press a control the way a user does, then let the worker finish and the frame draw."""
    action.trigger()
    assert window.wait_until_idle(timeout=30)


def ip_weights(solver) -> list[numpy.ndarray]:
    return [engine.backend.to_numpy(b.data).copy() for b in solver.net.learnable_params]  # cupy refuses numpy.array


@pytest.mark.parametrize("name", sorted(resources.examples()))
def test_opens_each_example(qtbot, window, name, monkeypatch):
    monkeypatch.setattr(window.session.python_consent, "ask", lambda request: Choice.ONCE)  # python_layer's consent
    assert window.open_path(resources.examples()[name])
    net = window.session.solver.net
    drawn = [n.name for n in window.graph.graph_layout.nodes]
    assert drawn == [layer.name for layer in net.layers if layer.type_name != "Split"]
    ips = [layer.name for layer in net.layers if layer.type_name == "InnerProduct"]
    assert list(window.session.frame.views) == ips
    assert window.inspector.selected_layer() == ips[0]
    assert window.status_labels["iteration"].text() == "iteration 0"
    assert name in window.windowTitle()
    assert [a.text() for a in window.examples_menu.actions()] == sorted(resources.examples())


def test_step_action_advances_and_heatmaps_show_the_engine_arrays(window):
    trigger(window, window.controls.step_iteration)
    solver = window.session.solver
    assert solver.iter == 1
    assert window.status_labels["iteration"].text() == "iteration 1"
    for layer in ("ip1", "ip2"):
        window.inspector.select_layer(layer)
        W = solver.net.params[layer][0].data
        numpy.testing.assert_array_equal(window.inspector.heatmap(layer, "W").image_array(), W)
        k = solver.net.learnable_params.index(solver.net.params[layer][0])
        numpy.testing.assert_array_equal(window.inspector.heatmap(layer, "dW").image_array(),
                                         solver.raw_gradients[k])
        numpy.testing.assert_array_equal(window.inspector.heatmap(layer, "update").image_array(),
                                         solver.net.params[layer][0].diff)
    x, y = window.curves.series("loss")
    assert list(x) == [1] and y[0] == pytest.approx(window.session.last_loss)


def test_step_event_visits_layers_forward_backward_update(window):
    twin = engine.get_solver(SPIRAL)
    net = window.session.solver.net
    seen = []
    for _ in range(40):
        trigger(window, window.controls.step_event)
        event = window.session.frame.event
        seen.append((event.kind, event.layer))
        if event.kind in ("forward", "backward"):
            assert window.graph.active == (event.layer, event.kind)
        if event.kind == "update":
            break
    names = [layer.name for layer in net.layers]
    backward = [n for i, n in reversed(list(enumerate(names))) if net.layer_need_backward[i]]
    assert seen == [("forward", n) for n in names] + [("backward", n) for n in backward] + [("update", None)]
    assert window.graph.active is None and "update" in window.graph._status.text()
    twin.step(1)
    for mine, theirs in zip(ip_weights(window.session.solver), ip_weights(twin)):
        numpy.testing.assert_array_equal(mine, theirs)
    assert window.session.iteration == 1


def test_run_then_pause(qtbot, window):
    controls = window.controls
    controls.run_pause.trigger()
    assert controls.run_pause.text() == "Pause" and not controls.step_iteration.isEnabled()
    assert not window.solver_panel.fields["base_lr"].isEnabled()
    qtbot.waitUntil(lambda: window.session.iteration >= 5, timeout=20000)
    controls.run_pause.trigger()
    assert window.wait_until_idle(timeout=30)
    stopped = window.session.iteration
    qtbot.wait(30)
    assert window.session.iteration == stopped
    assert controls.run_pause.text() == "Run" and controls.step_iteration.isEnabled()
    assert window.solver_panel.fields["base_lr"].isEnabled()
    assert window.status_labels["iteration"].text() == f"iteration {stopped}"
    assert len(window.curves.series("loss")[0]) == stopped


def test_run_n_with_progress(window):
    window.controls.count.setValue(7)
    trigger(window, window.controls.run_n)
    assert window.session.iteration == 7 and window.session.frame.progress == (7, 7)


def test_reset_redraws_weights(window):
    fresh = ip_weights(engine.get_solver(SPIRAL))
    window.controls.count.setValue(3)
    trigger(window, window.controls.run_n)
    trigger(window, window.controls.reset)
    assert window.session.iteration == 0
    assert len(window.curves.series("loss")[0]) == 0
    for mine, theirs in zip(ip_weights(window.session.solver), fresh):
        numpy.testing.assert_array_equal(mine, theirs)
    numpy.testing.assert_array_equal(window.inspector.heatmap("ip1", "W").image_array(), fresh[0])


def test_graph_click_selects_the_layer_in_the_inspector(qtbot, window):
    graph = window.graph
    graph.fit()
    qtbot.mouseClick(graph.viewport(), Qt.LeftButton, pos=graph.node_center("ip3"))
    assert window.inspector.selected_layer() == "ip3"
    numpy.testing.assert_array_equal(window.inspector.heatmap("ip3", "W").image_array(),
                                     window.session.solver.net.params["ip3"][0].data)
    window.inspector.select_layer("ip2")  # and the other way round
    assert graph.selected == "ip2"
    qtbot.mouseClick(graph.viewport(), Qt.LeftButton, pos=graph.node_center("relu1"))
    assert window.inspector.selected_layer() == "ip2"  # not an InnerProduct: the inspector keeps its layer
    assert graph.selected == "relu1"


def test_bad_file_shows_the_error_and_keeps_the_net(window, tmp_path):
    bad = tmp_path / "broken.prototxt"
    bad.write_text('name: "broken"\nlayer {\n  name: "ip" type: "InnerProduct"\n  num_outputs: 3\n}\n')
    with pytest.raises(engine.PrototxtError) as expected:
        engine.Net(str(bad))
    solver = window.session.solver
    assert not window.open_path(str(bad))
    assert window.errors.last_error == str(expected.value)
    assert "num_outputs" in window.errors.last_error and ":4:" in window.errors.last_error
    assert window.errors.box is not None and not window.errors.box.isModal()
    assert window.session.solver is solver and window.graph.graph_layout.nodes[0].name == "data"
    trigger(window, window.controls.step_iteration)
    assert window.session.iteration == 1


def test_weights_that_do_not_fit_show_the_error(window, tmp_path):
    other = engine.get_solver(resources.examples()["xor"])
    path = str(tmp_path / "xor.caffemodel")
    other.net.save(path)
    before = ip_weights(window.session.solver)
    assert not window.open_weights(path)
    assert "ip1" in window.errors.last_error and "shape" in window.errors.last_error.lower()
    for mine, theirs in zip(ip_weights(window.session.solver), before):
        numpy.testing.assert_array_equal(mine, theirs)
    assert window.open_weights(_saved_spiral_weights(tmp_path))


def _saved_spiral_weights(tmp_path) -> str:
    solver = engine.get_solver(SPIRAL)
    solver.step(2)
    path = str(tmp_path / "spiral.caffemodel.h5")
    solver.net.save(path)
    return path


def test_gpu_action_reflects_cuda(window):
    ok, why = engine.gpu_status()
    assert window.controls.gpu.isEnabled() == ok
    if not ok:
        assert window.controls.gpu.toolTip().startswith("GPU unavailable:")
        assert not window.set_device("gpu") and window.session.device == "cpu"
        assert window.errors.last_error and "GPU" in window.errors.last_error


@pytest.mark.gpu
def test_switching_to_gpu_keeps_the_iteration(window):
    trigger(window, window.controls.step_iteration)
    assert window.set_device("gpu") and window.session.device == "gpu"
    assert window.session.iteration == 1
    trigger(window, window.controls.step_iteration)
    twin = engine.get_solver(SPIRAL)
    twin.step(2)
    stepped = ip_weights(window.session.solver)
    assert window.set_device("cpu")  # the shared window goes on on the CPU (and the [strict] stand-in ends here)
    for mine, theirs in zip(stepped, ip_weights(twin)):
        numpy.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_stop_highlights_the_layer(window):
    window.solver_panel.set_value("base_lr", "1e30")
    for _ in range(5):
        trigger(window, window.controls.step_iteration)
        if window.session.nonfinite:
            break
    stop = window.session.nonfinite
    assert stop is not None
    assert window.graph.nonfinite_layer == stop.layer and window.graph.node_items[stop.layer].nonfinite
    assert window.banner.isVisibleTo(window) and stop.message in window.banner.text()
    if stop.layer.startswith("ip"):
        assert window.inspector.selected_layer() == stop.layer


def test_solver_edit_applies_from_next_iteration(window):
    trigger(window, window.controls.step_iteration)
    window.solver_panel.set_value("base_lr", "0.05")
    trigger(window, window.controls.step_iteration)
    assert window.session.solver.learning_rate == pytest.approx(0.05)
    assert window.status_labels["lr"].text() == "lr 0.05"
    assert window.curves.series("lr")[1].tolist() == pytest.approx([0.1, 0.05])


def test_exports(window, tmp_path):
    trigger(window, window.controls.step_iteration)
    paths = window.export_heatmaps(str(tmp_path / "maps"))
    assert paths and all(QImage(p).width() > 0 for p in paths)
    csv = tmp_path / "curves.csv"
    assert window.export_curves(str(csv))
    assert csv.read_text().splitlines()[0].startswith("iteration")
    prefix = str(tmp_path / "snap")
    saved = window.save_snapshot(prefix)
    assert saved and all(p.startswith(prefix) for p in saved)


def test_screenshot_writes_png_of_the_size_asked(qtbot, tmp_path):
    out = tmp_path / "shot.png"
    assert main(["--screenshot", str(out), "--steps", "3", "--size", "900x640", "--select", "ip2"]) == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (900, 640)


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--size", "big"])
    assert info.value.code == 2 and "--size" in capsys.readouterr().err


def test_layout_and_recent_files_are_remembered(qtbot, tmp_path):
    from PySide6.QtCore import QSettings
    settings = QSettings(str(tmp_path / "studio.ini"), QSettings.IniFormat)
    first = MainWindow(settings=settings, modal_errors=False)
    qtbot.addWidget(first)
    first.resize(1300, 900)
    first.show()
    assert first.open_path(SPIRAL)
    first.curves_dock.hide()
    first.close()
    second = MainWindow(settings=settings, modal_errors=False)
    qtbot.addWidget(second)
    second.show()
    assert second.recent_files()[0].endswith("spiral_mlp/solver.prototxt")
    assert [a.text() for a in second.recent_menu.actions()] == second.recent_files()
    assert not second.curves_dock.isVisible() and second.graph_dock.isVisible()
    second.close()


def test_the_worker_steps_aside_until_a_frame_is_painted(qtbot, window):
    """A frame stops the worker (the GUI gets the interpreter) from apply until the window
    has repainted and its event loop is idle; pausing releases a waiting worker too."""
    window.step_iterations(3)
    assert window.wait_until_idle(timeout=30)
    window.apply_frame(window.worker.make_frame())
    assert window.worker.gui_busy  # set synchronously by the frame
    qtbot.waitUntil(lambda: not window.worker.gui_busy, timeout=2000)
    assert window._frame_state is None
    window.worker.gui_busy = True
    window.worker.pause()
    assert not window.worker.gui_busy


def test_a_minimized_or_hidden_window_never_holds_the_worker(qtbot, window):
    """No repaint comes while the window is minimized or hidden, so a frame must not make
    the worker wait for one (it waited FRAME_WAIT_MS per frame, and frames kept coming)."""
    window.step_iterations(3)
    assert window.wait_until_idle(timeout=30)
    qtbot.waitUntil(lambda: not window.worker.gui_busy, timeout=2000)  # the last frame is painted
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized, timeout=2000)
    try:
        window.apply_frame(window.worker.make_frame())
        assert not window.worker.gui_busy
    finally:
        window.showNormal()
    qtbot.waitUntil(lambda: not window.isMinimized(), timeout=2000)
    qtbot.waitUntil(lambda: not window.worker.gui_busy, timeout=2000)
    window.hide()
    try:
        window.apply_frame(window.worker.make_frame())
        assert not window.worker.gui_busy
    finally:
        window.show()
    qtbot.waitExposed(window)
    window.apply_frame(window.worker.make_frame())
    assert window.worker.gui_busy  # shown: it waits for the paint again


def test_the_iteration_count_ticks_between_frames(qtbot, window):
    """Frames come about once a second at full speed; the status bar's iteration count and
    the Run N progress follow the solver five times a second without them."""
    start = window.session.iteration
    window.controls.count.setValue(100000)
    window.controls.run_n.trigger()  # a long run: not waited for
    assert window._ticker.isActive()
    qtbot.waitUntil(lambda: window.session.iteration > start + 50, timeout=10000)
    window.pause()
    assert window.wait_until_idle(timeout=30)
    assert not window._ticker.isActive()
    window._tick()  # what the timer does: read the solver's count without a frame
    assert window.status_labels["iteration"].text() == f"iteration {window.session.iteration}"
