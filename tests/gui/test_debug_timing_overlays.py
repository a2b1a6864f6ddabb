"""Per-layer timing leaves training untouched; debug_info overlays are the arrays' own statistics."""
import math

import numpy

from gui.model.overlays import colour_scale, layer_stats, node_colours, ramp
from gui.model.timing import time_net, time_solver

from .debug_nets import make_solver, weights


def test_timing_reports_every_layer_and_does_not_change_the_run(tmp_path):
    twin = make_solver(tmp_path)  # the random stream is global: run the twin first
    twin.step(5)
    expected = weights(twin)
    solver = make_solver(tmp_path)  # reseeds the stream
    solver.step(2)
    report = time_solver(solver, 3)
    assert [t.layer for t in report.layers] == [layer.name for layer in solver.net.layers]
    assert all(t.forward_ms >= 0 and t.backward_ms >= 0 for t in report.layers)
    assert math.isclose(report.forward_ms, sum(t.forward_ms for t in report.layers))
    assert "Average Forward pass" in report.text()
    solver.step(3)
    for mine, theirs in zip(weights(solver), expected):
        assert numpy.array_equal(mine, theirs)


def test_timing_uses_the_given_clock(tmp_path):
    solver = make_solver(tmp_path)
    ticks = iter(range(10**6))
    report = time_net(solver.net, 2, clock=lambda: float(next(ticks)))
    # every forward and backward is bracketed by two consecutive ticks: 1 s each
    assert all(t.forward_ms == 1000.0 and t.backward_ms == 1000.0 for t in report.layers)


def test_layer_stats_are_mean_abs_and_update_ratio(tmp_path):
    solver = make_solver(tmp_path)
    solver.step(3)
    rows = {r.layer: r for r in layer_stats(solver.net)}
    net = solver.net
    ip2 = rows["ip2"]
    assert ip2.data_mean_abs == numpy.abs(net.blobs["ip2"].data).mean()
    W, b = net.params["ip2"]
    w = numpy.r_[W.data.ravel(), b.data.ravel()].astype(numpy.float64)
    d = numpy.r_[W.diff.ravel(), b.diff.ravel()].astype(numpy.float64)
    assert math.isclose(ip2.update_ratio, numpy.linalg.norm(d) / numpy.linalg.norm(w), rel_tol=1e-9)
    assert math.isclose(ip2.param_mean_abs, numpy.abs(w).mean(), rel_tol=1e-6)
    assert rows["relu2"].update_ratio is None and rows["loss"].data_mean_abs > 0


def test_node_colours_span_the_ramp(tmp_path):
    solver = make_solver(tmp_path)
    solver.step(2)
    rows = layer_stats(solver.net)
    colours = node_colours(rows, "ratio")
    ratios = {r.layer: r.update_ratio for r in rows if r.update_ratio}
    lowest, highest = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    assert colours[lowest] == ramp(0.0) and colours[highest] == ramp(1.0)
    assert colours["tanh1"] is None
    low, high = colour_scale(rows, "ratio")
    assert math.isclose(10 ** low, ratios[lowest], rel_tol=1e-9)
