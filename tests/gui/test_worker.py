"""gui.worker: the solver steps in its own thread; frames are host copies of the latest state."""
from __future__ import annotations

import numpy
import pytest

import engine
from gui.model.session import Session
from gui.worker import MAX_FPS, MAX_FRAME_GAP, start_worker, stop_worker


@pytest.fixture
def worker(qtbot, examples_dir):
    session = Session()
    session.load(str(examples_dir / "xor" / "solver.prototxt"))
    worker, thread = start_worker(session)
    yield worker
    stop_worker(worker, thread)


def wait_idle(qtbot, worker):
    qtbot.waitUntil(lambda: not worker.busy, timeout=20000)


def test_run_n_iterations_in_the_worker_thread(qtbot, worker, examples_dir):
    frames = []
    worker.frameReady.connect(lambda: frames.append(worker.take_frame()))
    worker.request_run(25)
    wait_idle(qtbot, worker)
    qtbot.waitUntil(lambda: not worker.frame_pending, timeout=5000)
    frames = [f for f in frames if f is not None]
    last = frames[-1]
    assert last.iteration == 25 and not last.running
    # every iteration's point is in the session's metrics exactly once, however many frames were sent
    assert worker.session.metrics.iterations == list(range(1, 26))
    twin = engine.get_solver(str(examples_dir / "xor" / "solver.prototxt"))
    twin.step(25)
    numpy.testing.assert_array_equal(last.views["ip1"].W, twin.net.params["ip1"][0].data)
    assert last.loss == pytest.approx(float(twin.net.loss), rel=1e-6)


def test_pause_stops_a_run_within_one_iteration(qtbot, worker):
    worker.request_run(0)  # until paused
    qtbot.waitUntil(lambda: worker.session.iteration >= 5, timeout=20000)
    worker.pause()
    wait_idle(qtbot, worker)
    stopped_at = worker.session.iteration
    qtbot.wait(50)
    assert worker.session.iteration == stopped_at
    # a run asked for before the pause is cancelled too; a new one runs
    worker.request_run(3)
    wait_idle(qtbot, worker)
    assert worker.session.iteration == stopped_at + 3


def test_step_event_publishes_the_event(qtbot, worker):
    worker.request_event()
    wait_idle(qtbot, worker)
    frame = worker.take_frame()
    assert frame.event.kind == "forward" and frame.event.layer == "data" and frame.mid_iteration
    assert frame.iteration == 0


def test_frames_are_paced_by_the_gui_cost(worker):
    worker.speed_limit = 0
    worker.render_cost = 0.0
    assert worker._frame_interval() == pytest.approx(1 / MAX_FPS)
    worker.render_cost = 0.1  # a slow redraw: send frames rarely while running flat out
    assert worker._frame_interval() > 1.0
    worker.render_cost = 10.0  # but at least one every MAX_FRAME_GAP seconds
    assert worker._frame_interval() == pytest.approx(MAX_FRAME_GAP)
    worker.render_cost = 0.2
    worker.speed_limit = 5  # a slow run has time to spare: more frames, the GUI still half idle
    assert worker._frame_interval() == pytest.approx(0.4)
    worker.render_cost = 0.005
    assert worker._frame_interval() == pytest.approx(1 / MAX_FPS)


def test_engine_error_mid_run_is_reported(qtbot, worker):
    messages = []
    worker.failed.connect(messages.append)
    worker.session.solver.param.lr_policy = "step"
    worker.session.solver.param.stepsize = 0  # the engine refuses this when computing the rate
    worker.request_run(2)
    wait_idle(qtbot, worker)
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert "stepsize" in messages[0]
