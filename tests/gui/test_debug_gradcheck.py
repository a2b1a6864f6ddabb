"""Gradient check task: a deliberately broken backward is flagged, the real ones pass."""
import numpy

from engine import rng
from engine.layers.inner_product import InnerProductLayer
from gui.model.gradcheck import GradCheckTask, run_check

from .debug_nets import spiral_solver


def _plant_wrong_dW(monkeypatch, layer_name):
    """A planted bug: layer ``layer_name`` accumulates 1.5·δᵀ·a instead of δᵀ·a for dW."""
    real_backward = InnerProductLayer.backward

    def broken_backward(self, top, propagate_down, bottom):
        real_backward(self, top, propagate_down, bottom)
        if self.name == layer_name:
            W = self.blobs[0]
            top_diff = top[0].diff.reshape(self.M, self.N)
            W.diff += 0.5 * (top_diff.T @ bottom[0].data.reshape(self.M, self.K))

    monkeypatch.setattr(InnerProductLayer, "backward", broken_backward)


def test_the_real_backward_passes():
    solver = spiral_solver()
    solver.step(10)
    report = run_check(solver.net, max_elements=16)
    assert report.passed, report.summary()
    assert {b.layer for b in report.blobs} == {"ip1", "relu1", "ip2", "relu2", "ip3", "loss"}
    for b in report.blobs:
        assert b.worst_error < 1e-6 and b.checked > 0


def test_a_broken_backward_is_flagged_at_its_layer(monkeypatch):
    solver = spiral_solver()
    solver.step(10)
    _plant_wrong_dW(monkeypatch, "ip2")
    report = run_check(solver.net, max_elements=16)
    assert report.failed_layers == ["ip2"]
    bad = [b for b in report.blobs if not b.passed]
    assert [b.blob for b in bad] == ["param0"]
    # the per-element error map: checked entries have relative error |a - n| / max(|a|, |n|, 1)
    blob = bad[0]
    checked = ~numpy.isnan(blob.error)
    assert checked.sum() == blob.checked
    a, n = blob.analytic[checked], blob.numeric[checked]
    numpy.testing.assert_allclose(blob.error[checked], numpy.abs(a - n) / numpy.maximum(
        numpy.maximum(numpy.abs(a), numpy.abs(n)), 1.0))
    numpy.testing.assert_allclose(a, 1.5 * n, rtol=1e-6, atol=1e-9)


def test_the_task_runs_off_thread_with_progress_and_keeps_the_rng():
    solver = spiral_solver()
    solver.step(5)
    state = rng.get_state()
    task = GradCheckTask(solver.net, max_elements=8)
    progress, results = [], []
    thread = task.start(lambda done, total: progress.append((done, total)), results.append)
    assert task.wait(60)
    assert thread.name == "gradcheck"
    assert results and results[0] is task.report and task.report.passed
    assert progress[-1][0] == progress[-1][1] == 6  # six layers run backward
    assert rng.get_state() == state


def test_the_task_checks_the_state_frozen_when_it_was_made():
    solver = spiral_solver()
    solver.step(5)
    task = GradCheckTask(solver.net, ["ip1"], max_elements=8)
    W = solver.net.params["ip1"][0].data.copy()
    solver.step(3)  # training moves on; the task keeps the frozen weights
    assert numpy.array_equal(task.frozen.params["ip1"][0].data, W)
    assert task.run().passed


def test_a_cancelled_task_reports_cancellation():
    solver = spiral_solver()
    task = GradCheckTask(solver.net, max_elements=4)
    task.cancel()
    results = []
    task.start(None, results.append)
    task.wait(30)
    assert results and type(results[0]).__name__ == "Cancelled"
