"""The debugger panels build, render and drive their Qt-free cores (pytest-qt, offscreen)."""
import numpy
import pytest
from PySide6.QtCore import Qt

from engine.layers.inner_product import InnerProductLayer
from gui.model import breakpoints as bp
from gui.model.boundary import BoundaryModel, training_points
from gui.model.decompose import param_index, step_with_decomposition
from gui.model.overlays import layer_stats, node_colours
from gui.model.timeline import Timeline
from gui.model.timing import time_solver
from gui.views.debug.boundary import BoundaryView
from gui.views.debug.breakpoints import BreakpointsPanel
from gui.views.debug.decompose import DecompositionPanel
from gui.views.debug.gradcheck import GradCheckPanel
from gui.views.debug.overlays import OverlayTable
from gui.views.debug.presenter import FONT_SCALE, PresenterMode, SlowMotion, events_per_second_to_interval
from gui.views.debug.rewind import RewindBar
from gui.views.debug.timing import TimingPanel

from .debug_nets import spiral_solver, weights


def _renders(qtbot, widget, size=(400, 300)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    image = widget.grab().toImage()
    assert image.width() == size[0] and image.height() == size[1]
    return image


def test_rewind_bar_steps_back_and_scrubs(qtbot):
    solver = spiral_solver()
    history = Timeline()
    history.step(solver, 4)
    bar = RewindBar(history, lambda: solver)
    _renders(qtbot, bar, (800, 50))
    assert bar.slider.maximum() == 4 and "5 / " in bar.memory_label.text()
    with qtbot.waitSignal(bar.restored):
        qtbot.mouseClick(bar.back_button, Qt.MouseButton.LeftButton)
    assert solver.iter == 3 and bar.slider.value() == 3
    bar.slider.setValue(2)
    assert solver.iter == 2
    after_two = weights(solver)
    bar.slider.setValue(4)
    assert solver.iter == 4
    bar.slider.setValue(2)
    for mine, theirs in zip(weights(solver), after_two):
        assert numpy.array_equal(mine, theirs)
    bar.capacity.setValue(3)
    assert len(history) == 3


def test_breakpoints_panel_edits_the_conditions(qtbot):
    panel = BreakpointsPanel()
    _renders(qtbot, panel)
    panel.set_layers(["data", "ip1", "ip2"])
    panel.layer_combo.setCurrentText("ip2")
    panel.phase_combo.setCurrentText(bp.BACKWARD)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    [layer_break] = panel.layer_breakpoints()
    assert (layer_break.layer, layer_break.phase) == ("ip2", bp.BACKWARD)
    panel.loss_above_box.setChecked(True)
    panel.loss_above_value.setValue(3.5)
    assert panel.loss_above.enabled and panel.loss_above.value == 3.5
    panel.layer_list.setCurrentRow(0)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.layer_breakpoints() == [] and panel.layer_list.count() == 0
    panel.show_stop(bp.Stop("loss 4 > 3.5", "loss above", 7))
    assert "loss 4 > 3.5" in panel.stop_label.text()


def test_decomposition_panel_shows_every_term(qtbot):
    solver = spiral_solver()
    solver.step(2)
    index = param_index(solver.net, "ip1", 0)
    found, _ = step_with_decomposition(solver, [index])
    panel = DecompositionPanel()
    _renders(qtbot, panel, (900, 700))
    panel.set_decomposition(found[index])
    shown = {t.key for t in found[index].terms} & set(DecompositionPanel.MAP_TERMS)
    assert set(panel.maps) == shown and {"dW", "decay", "history", "update", "W_after"} <= shown
    assert numpy.array_equal(panel.maps["update"].array, found[index].update)
    assert "momentum = 0.9" in panel.numbers.text() and "momentum term" in panel.numbers.text()


def test_boundary_view_draws_the_class_regions_and_points(qtbot):
    solver = spiral_solver()
    solver.step(30)
    model = BoundaryModel(solver.net, resolution=20)
    result = model.compute()
    points, labels = training_points(solver.net)
    view = BoundaryView()
    _renders(qtbot, view, (400, 400))
    view.set_result(result, points, labels)
    drawn = view.image.image
    assert drawn.shape == (20, 20, 3)
    # the most confident pixel of each class has that class's hue: its largest channel matches
    from gui.views.debug.common import CLASS_COLOURS
    for k in numpy.unique(result.classes):
        mask = result.classes == k
        j, i = numpy.unravel_index(numpy.argmax(numpy.where(mask, result.probabilities[..., k], -1)), mask.shape)
        assert numpy.argmin(drawn[j, i]) == numpy.argmin(CLASS_COLOURS[k])
    assert len(view.scatter.data) == len(points)
    view.show_response("ip1", 2)
    assert numpy.array_equal(view.image.image, result.responses["ip1"][:, :, 2].astype(numpy.float32))


def test_timing_and_overlay_panels(qtbot):
    solver = spiral_solver()
    solver.step(2)
    timing = TimingPanel(lambda n: time_solver(solver, n))
    _renders(qtbot, timing)
    timing.iterations.setValue(2)
    qtbot.mouseClick(timing.button, Qt.MouseButton.LeftButton)
    assert timing.table.rowCount() == len(solver.net.layers)
    assert timing.table.item(1, 0).text() == "ip1"
    table = OverlayTable()
    _renders(qtbot, table, (700, 300))
    rows = layer_stats(solver.net)
    with qtbot.waitSignal(table.colouring_changed) as signal:
        table.set_rows(rows)
    assert signal.args[0] == node_colours(rows, "ratio")
    assert table.model.rowCount() == len(rows)
    index = table.model.index(1, 3)
    assert table.model.data(index) == f"{rows[1].data_mean_abs:.4g}"
    table.metric_combo.setCurrentIndex(0)  # colour by mean |data|
    assert table.model.colours == node_colours(rows, "data")


def test_gradcheck_panel_runs_off_thread_and_flags_a_broken_layer(qtbot, monkeypatch):
    solver = spiral_solver()
    solver.step(3)
    real_backward = InnerProductLayer.backward

    def broken(self, top, propagate_down, bottom):  # planted bug: ip3's db doubled
        real_backward(self, top, propagate_down, bottom)
        if self.name == "ip3":
            self.blobs[1].diff *= 2

    monkeypatch.setattr(InnerProductLayer, "backward", broken)
    panel = GradCheckPanel(lambda: solver.net)
    _renders(qtbot, panel, (600, 500))
    with qtbot.waitSignal(panel.finished, timeout=60000) as signal:
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    report = signal.args[0]
    assert report.failed_layers == ["ip3"]
    assert "ip3" in panel.verdict.text()
    assert panel.progress.value() == panel.progress.maximum() == 6
    assert panel.button.isEnabled()
    worst = max(report.blobs, key=lambda b: b.worst_error)
    assert (worst.layer, worst.blob) == ("ip3", "param1")
    assert numpy.array_equal(panel.analytic_map.array, worst.analytic)


def test_slow_motion_advances_step_events_until_a_breakpoint(qtbot):
    solver = spiral_solver()
    runner = bp.Runner(solver, bp.Breakpoints())
    stop_before = bp.LayerBreak("ip3", bp.FORWARD)
    seen = []
    slow = SlowMotion(runner.next_event, pace=50,
                      should_stop=lambda e: stop_before.check_event(e, solver.net))
    slow.advanced.connect(seen.append)
    with qtbot.waitSignal(slow.stopped, timeout=5000) as signal:
        slow.start()
    assert "before the forward of layer 'ip3'" in signal.args[0]
    assert seen[0].kind == "test"  # the solver tests at iteration 0 first
    assert [e.layer for e in seen[1:]] == ["data", "ip1", "relu1", "ip2", "relu2"]
    assert not slow.running
    assert events_per_second_to_interval(2) == 500 and events_per_second_to_interval(1000) == 17


def test_presenter_mode_scales_fonts_and_restores(qtbot):
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow
    window = QMainWindow()
    controls = QLabel("controls")
    window.setCentralWidget(controls)
    qtbot.addWidget(window)
    window.show()
    app = QApplication.instance()
    size = app.font().pointSizeF()
    presenter = PresenterMode(window, [controls])
    presenter.hide_controls = True
    presenter.set_enabled(True)
    assert app.font().pointSizeF() == pytest.approx(size * FONT_SCALE)
    assert presenter.theme is not None and not controls.isVisible()
    assert app.palette().window().color().name() == presenter.theme.window
    presenter.toggle()
    assert app.font().pointSizeF() == pytest.approx(size) and controls.isVisible()


def test_rewind_bar_shows_iterations_recorded_on_the_fast_path(qtbot):
    """Plain iterations recorded during a run bump Timeline.version without calling the
    listeners; the bar's poll timer shows them."""
    solver = spiral_solver()
    history = Timeline()
    history.step(solver, 3)
    bar = RewindBar(history, lambda: solver)
    _renders(qtbot, bar, (800, 50))
    calls = []
    history.subscribe(calls.append)
    shown = bar.slider.maximum()
    version = history.version
    for _ in range(5):
        solver.step(1)
        history.record_iteration(solver, 0.001)
    assert history.version == version + 5 and len(history) == shown + 1 + 5
    plain = 5 - len(calls)  # checkpoints still notify; the iterations between them do not
    assert plain > 0
    qtbot.waitUntil(lambda: bar.slider.maximum() == len(history) - 1, timeout=2000)
