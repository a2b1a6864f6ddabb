"""Runs in the solver process (gui.model.solver_process): the window's state after a run there
is the state stepping in one thread gives, bit for bit, and the debugger keeps working."""
from __future__ import annotations

import os
import pathlib
import time

import numpy
import pytest

from engine import resources
from gui.main_window import MainWindow
from gui.model import breakpoints as bp
from gui.model.session import Session
from gui.model.solver_process import PROCESS_MIN_RUN

from .windows import module_window

SPIRAL = resources.examples()["spiral_mlp"]
LENET_DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "lenet"


@pytest.fixture(scope="module")
def lane_window(qapp):
    """One window with a solver process for the module (starting one takes a moment)."""
    with module_window(process_runs=True) as w:
        yield w


@pytest.fixture
def window(qtbot, lane_window):
    w = lane_window
    w.pause()
    assert w.wait_until_idle(timeout=30)
    w.errors.clear()
    conditions = list(w.debug.breakpoints.conditions)
    assert w.open_path(SPIRAL)
    yield w
    w.debug.breakpoints.conditions[:] = conditions


def hdf5_dropout_solver(tmp_path: pathlib.Path) -> str:
    """The LeNet-data MLP (two HDF5 training files, a test net every 20 iterations) with
    Dropout: a run crosses files, tests and the random masks."""
    net = (LENET_DATA / "mlp_train_test.prototxt").read_text()
    for name in ("train_h5_list.txt", "test_h5_list.txt"):
        net = net.replace(f'"{name}"', f'"{(LENET_DATA / name).as_posix()}"')
    net = net.replace('''layer {
  name: "ip2"''', '''layer {
  name: "drop1"
  type: "Dropout"
  bottom: "ip1"
  top: "ip1"
  dropout_param { dropout_ratio: 0.3 }
}
layer {
  name: "ip2"''', 1)
    (tmp_path / "net.prototxt").write_text(net)
    solver = (LENET_DATA / "mlp_solver.prototxt").read_text().replace(
        'net: "mlp_train_test.prototxt"', 'net: "net.prototxt"')
    (tmp_path / "solver.prototxt").write_text(solver)
    return str(tmp_path / "solver.prototxt")


def reference(path: str, iterations: int) -> Session:
    """The same solver stepped ``iterations`` times on this thread."""
    session = Session()
    session.load(path)
    for _ in range(iterations):
        session.step_iteration()
    return session


def assert_same_state(session: Session, expected: Session) -> None:
    solver, other = session.solver, expected.solver
    assert solver.iter == other.iter
    for mine, theirs in zip(solver.net.learnable_params, other.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, theirs.data)
    for mine, theirs in zip(solver.history, other.history):
        numpy.testing.assert_array_equal(mine, theirs)
    assert solver.smoothed_loss == other.smoothed_loss
    assert solver.test_scores == other.test_scores
    assert session.metrics.losses == expected.metrics.losses
    assert session.metrics.tests == expected.metrics.tests


def run_n(window: MainWindow, count: int) -> None:
    window.step_iterations(count)
    assert window.wait_until_idle(timeout=60)


def test_run_n_in_the_process_matches_stepping_in_one_thread(window, tmp_path):
    path = hdf5_dropout_solver(tmp_path)
    assert window.open_path(path)
    runs = window.worker.process_lane.runs
    run_n(window, 130)
    assert window.worker.process_lane.runs == runs + 1  # it did run in the process
    assert_same_state(window.session, reference(path, 130))
    window.step_iterations(1)  # and the window's own solver goes on from there exactly
    assert window.wait_until_idle(timeout=30)
    assert_same_state(window.session, reference(path, 131))
    assert window.session.frame.iteration == 131
    assert window.errors.count == 0


def test_a_loss_window_begun_mid_run_continues_in_the_process(window):
    """After a resume (Caffe's Solve from a state) the smoothed-loss window starts at that
    iteration, not 0: the process must continue that window, not a fresh one."""
    def resumed_at_3(session: Session) -> None:
        for _ in range(3):
            session.step_iteration()
        session.solver.losses = []  # what resuming from a Caffe solver state leaves
        session.step_iteration()  # the window starts here, in the window's solver
    resumed_at_3(window.session)
    run_n(window, PROCESS_MIN_RUN)
    expected = Session()
    expected.load(SPIRAL)
    resumed_at_3(expected)
    for _ in range(PROCESS_MIN_RUN):
        expected.step_iteration()
    assert window.session.solver.smoothed_loss == expected.solver.smoothed_loss
    assert window.session.metrics.smoothed[-1] == expected.metrics.smoothed[-1]


def test_run_until_paused_then_rewind(window):
    window.run()
    deadline = time.perf_counter() + 20
    while window.worker.iteration < 300 and time.perf_counter() < deadline:
        window.wait_until_idle(timeout=0.05)
    window.pause()
    assert window.wait_until_idle(timeout=30)
    done = window.session.iteration
    assert done >= 300
    assert_same_state(window.session, reference(SPIRAL, done))
    history = window.debug.timeline
    assert [m.iteration for m in history.marks][-3:] == [done - 2, done - 1, done]  # every iteration recorded
    position = [m.iteration for m in history.marks].index(250)
    history.goto(window.session.solver, position)
    expected = reference(SPIRAL, 250)
    for mine, theirs in zip(window.session.solver.net.learnable_params, expected.solver.net.learnable_params):
        numpy.testing.assert_array_equal(mine.data, theirs.data)


def test_nan_stops_the_run_in_the_process_as_in_the_thread(window):
    window.session.edit("base_lr", 1e6)
    stops = []
    window.debug.stopped.connect(stops.append)
    runs = window.worker.process_lane.runs
    run_n(window, 500)
    assert window.worker.process_lane.runs == runs + 1
    nonfinite = window.session.nonfinite
    assert nonfinite is not None
    expected = Session()
    expected.load(SPIRAL)
    expected.edit("base_lr", 1e6)
    while expected.nonfinite is None:
        expected.step_iteration()
    assert (nonfinite.iteration, nonfinite.layer, nonfinite.blob) == \
        (expected.nonfinite.iteration, expected.nonfinite.layer, expected.nonfinite.blob)
    assert window.session.iteration == expected.solver.iter
    window.wait_until_idle(timeout=5)
    assert stops and stops[-1].condition == bp.NonFinite.name
    window.debug.stopped.disconnect(stops.append)


def test_a_breakpoint_keeps_the_run_in_the_window(window):
    window.debug.breakpoints.add(bp.AtIteration(PROCESS_MIN_RUN + 50))
    runs = window.worker.process_lane.runs
    run_n(window, PROCESS_MIN_RUN + 100)
    assert window.worker.process_lane.runs == runs  # checked here, step by step
    assert window.session.iteration == PROCESS_MIN_RUN + 50


def test_short_runs_and_speed_limits_stay_in_the_window(window):
    runs = window.worker.process_lane.runs
    run_n(window, PROCESS_MIN_RUN - 1)
    window.worker.speed_limit = 1e6
    try:
        run_n(window, PROCESS_MIN_RUN)
    finally:
        window.worker.speed_limit = 0.0
    assert window.worker.process_lane.runs == runs
    assert_same_state(window.session, reference(SPIRAL, 2 * PROCESS_MIN_RUN - 1))


def test_a_crashed_process_is_reported_and_the_state_kept(window, qtbot):
    run_n(window, 5)  # in the thread
    before = [b.data.copy() for b in window.session.solver.net.learnable_params]
    lane = window.worker.process_lane
    window.run()
    qtbot.waitUntil(lambda: lane.active and lane.iteration > 50, timeout=20000)
    os.kill(lane._process.pid, 9)
    assert window.wait_until_idle(timeout=30)
    assert lane.broken and "solver process ended" in window.errors.last_error
    assert window.errors.last_title == "The solver process stopped"
    assert window.session.iteration == 5
    for mine, saved in zip(window.session.solver.net.learnable_params, before):
        numpy.testing.assert_array_equal(mine.data, saved)
    assert len(window.session.metrics) == 5
    iterations, _ = window.curves.series("loss")
    assert list(iterations) == [1, 2, 3, 4, 5]  # the lost run's points are gone from the plot too
    run_n(window, PROCESS_MIN_RUN)  # runs go on, in the window's thread
    assert_same_state(window.session, reference(SPIRAL, 5 + PROCESS_MIN_RUN))


@pytest.mark.gpu
@pytest.mark.cuda_only  # the child is another interpreter: the strict stand-in is not installed there
def test_run_n_on_the_gpu_in_the_process_matches_the_thread(window):
    assert window.open_path(SPIRAL, "gpu")
    runs = window.worker.process_lane.runs
    run_n(window, PROCESS_MIN_RUN)
    assert window.worker.process_lane.runs == runs + 1
    assert window.session.device != "cpu"
    expected = Session()
    expected.load(SPIRAL, "gpu")
    for _ in range(PROCESS_MIN_RUN):
        expected.step_iteration()
    assert_same_state(window.session, expected)


LEAVE_A_CORE = """
import os, sys
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.pop(name, None)
os.environ["MKL_NUM_THREADS"] = "7"  # the user's own setting
sys.path.insert(0, {root!r})
from gui.model.solver_process import leave_a_core_for_drawing
first = leave_a_core_for_drawing()
import numpy
print(first, leave_a_core_for_drawing(), os.environ["OPENBLAS_NUM_THREADS"], os.environ["MKL_NUM_THREADS"],
      len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
"""


def test_blas_leaves_a_core_to_the_window_only_before_numpy_loads():
    import subprocess
    import sys
    root = str(pathlib.Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", LEAVE_A_CORE.format(root=root)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    first, again, openblas, mkl, cores = out.stdout.split()
    assert (first, again) == ("True", "False")  # the second call came after numpy loaded
    assert int(openblas) == max(1, int(cores) - 1)
    assert mkl == "7"


ORPHAN = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ["QT_QPA_PLATFORM"] = "offscreen"

def main():
    from PySide6.QtWidgets import QApplication
    from engine import resources
    from gui.main_window import MainWindow
    app = QApplication([])
    window = MainWindow(settings=None, modal_errors=False, process_runs=True)
    window.open_path(resources.examples()["spiral_mlp"])
    window.run()
    lane = window.worker.process_lane
    while not (lane.active and lane.iteration > 20):
        app.processEvents()
        time.sleep(0.01)
    print(lane._process.pid, flush=True)
    while True:
        app.processEvents()
        time.sleep(0.01)

if __name__ == "__main__":
    main()
"""


@pytest.mark.skipif(not hasattr(os, "getpgid"), reason="POSIX process handling")
def test_the_solver_process_ends_when_the_window_is_killed(tmp_path):
    import signal
    import subprocess
    import sys
    script = tmp_path / "window.py"
    script.write_text(ORPHAN.format(root=str(pathlib.Path(__file__).resolve().parents[2])))
    window = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(window.stdout.readline())
    finally:
        window.send_signal(signal.SIGKILL)
        window.wait(30)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie waiting for its (new) parent to reap it has ended too
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(")")[1].split()[0] != "Z"
        except OSError:
            return True
    deadline = time.perf_counter() + 10
    while alive(child) and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert not alive(child)
