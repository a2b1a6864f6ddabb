"""Break conditions: planted non-finite values stop at the right layer; layer breakpoints stop before."""
import math

import numpy
import pytest

from engine.events import BACKWARD, FORWARD, Event
from gui.model import breakpoints as bp

from .debug_nets import make_solver, spiral_solver


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf · 0 in the planted layer
def test_a_planted_inf_weight_stops_at_that_layers_forward():
    solver = spiral_solver()
    solver.step(3)
    solver.net.params["ip2"][0].data[4, 7] = numpy.inf
    runner = bp.Runner(solver, bp.Breakpoints([bp.NonFinite()]))
    stop = runner.run(5)
    assert stop is not None and stop.condition == bp.NonFinite.name
    assert (stop.layer, stop.blob, stop.phase, stop.iteration) == ("ip2", "ip2", FORWARD, 3)
    net = solver.net
    for i in range(net.layer_index("ip2")):  # every layer before it is finite
        assert all(numpy.isfinite(b.data).all() for b in net.tops_of(i))
    assert not numpy.isfinite(net.blobs["ip2"].data).all()
    assert solver.iter == 3  # the weights were not updated


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_a_huge_learning_rate_stops_at_the_first_layer_that_goes_non_finite(tmp_path):
    solver = make_solver(tmp_path, base_lr=1e30, momentum=0.0, weight_decay=0.0)
    stop = bp.run_until(solver, bp.Breakpoints([bp.NonFinite()]), 50)
    assert stop is not None and stop.layer is not None
    net = solver.net
    index = net.layer_index(stop.layer)
    if stop.phase == FORWARD:
        for i in range(index):
            assert all(numpy.isfinite(b.data).all() for b in net.tops_of(i)), net.layers[i].name
        bad = [net.blobs[n].data for n in net.top_names[index]]
    else:
        for i in range(len(net.layers)):
            assert all(numpy.isfinite(b.data).all() for b in net.tops_of(i))
        bad = [b.diff for b in net.bottoms_of(index)] + [b.diff for b in net.layers[index].blobs]
    assert any(not numpy.isfinite(a).all() for a in bad)
    assert stop.iteration > 0  # iteration 0 ran with finite initial weights


def test_loss_above_and_loss_rising_on_iteration_results():
    above = bp.LossAbove(2.0)
    assert above.check_iteration(bp.IterationResult(3, 1.5)) is None
    stop = above.check_iteration(bp.IterationResult(4, 2.5))
    assert stop is not None and "2.5" in stop.reason and stop.iteration == 4
    rising = bp.LossRising(3)
    losses = [1.0, 0.9, 1.0, 1.1, 0.95, 1.0, 1.2, 1.3]
    fired = [k for k, loss in enumerate(losses) if rising.check_iteration(bp.IterationResult(k, loss))]
    assert fired == [7]  # 1.0 → 1.2 → 1.3 after 0.95: three rises in a row end at index 7
    with pytest.raises(ValueError):
        bp.LossRising(0)


def test_nonfinite_loss_as_an_iteration_result():
    stop = bp.NonFinite().check_iteration(bp.IterationResult(9, math.nan))
    assert stop is not None and stop.iteration == 9


def test_at_iteration_stops_when_the_solver_reaches_n(tmp_path):
    solver = make_solver(tmp_path)
    stop = bp.run_until(solver, bp.Breakpoints([bp.AtIteration(4)]), 20)
    assert stop is not None and solver.iter == 4


def test_loss_above_stops_the_runner_at_the_first_such_iteration(tmp_path):
    twin = make_solver(tmp_path)  # the random stream is global: run the twin first
    losses = [twin.step(1) for _ in range(6)]
    solver = make_solver(tmp_path)  # reseeds the stream
    threshold = sorted(losses)[-2]  # exceeded by exactly one of the six
    first = next(k for k, loss in enumerate(losses) if loss > threshold)
    stop = bp.run_until(solver, bp.Breakpoints([bp.LossAbove(threshold)]), 6)
    assert stop is not None and stop.iteration == first and solver.iter == first + 1


def test_upcoming_walks_forward_then_backward():
    solver = spiral_solver()
    net = solver.net
    assert bp.upcoming(net, None) == (FORWARD, 0)
    last = len(net.layers) - 1
    after_last_forward = Event(FORWARD, 0, layer_index=last)
    assert bp.upcoming(net, after_last_forward) == (BACKWARD, last)
    after_ip1_backward = Event(BACKWARD, 0, layer_index=net.layer_index("ip1"))
    assert bp.upcoming(net, after_ip1_backward) is None  # the data layer takes no backward: update next


def test_layer_breakpoint_stops_before_the_backward_of_ip2():
    solver = spiral_solver()
    runner = bp.Runner(solver, bp.Breakpoints([bp.LayerBreak("ip2", BACKWARD)]))
    stop = runner.run(3)
    assert stop is not None and (stop.layer, stop.phase) == ("ip2", BACKWARD)
    assert runner.last_event.kind == BACKWARD and runner.last_event.layer == "relu2"
    W, b = solver.net.params["ip2"]
    assert not W.diff.any() and not b.diff.any()  # ip2's backward has not run yet
    stop = runner.run(3, skip_first=True)  # resumes and stops there again one iteration later
    assert stop is not None and stop.iteration == 1


def test_layer_breakpoint_before_the_first_forward(tmp_path):
    solver = make_solver(tmp_path)
    runner = bp.Runner(solver, bp.Breakpoints([bp.LayerBreak("data", FORWARD)]))
    stop = runner.run(2)
    assert stop is not None and runner.last_event is None and solver.iter == 0
    stop = runner.run(2, skip_first=True)
    assert stop is not None and solver.iter == 1 and stop.iteration == 1


def test_disabled_conditions_do_not_fire(tmp_path):
    solver = make_solver(tmp_path)
    condition = bp.AtIteration(2)
    condition.enabled = False
    assert bp.run_until(solver, bp.Breakpoints([condition]), 3) is None
    assert solver.iter == 3
