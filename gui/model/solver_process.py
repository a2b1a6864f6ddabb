"""Runs in a process of its own: the solver steps on one core while the window draws on another.

Python runs one thread at a time, so a solver stepping in a thread of the
window's process shares the interpreter with pyqtgraph's drawing: every frame
drawn is time the solver does not run (issue 7). For a Run (until paused, or
Run N of at least :data:`PROCESS_MIN_RUN` iterations) the worker can instead
hand the session's full state (a :class:`~gui.model.state.Checkpoint`, as Rewind keeps)
to a child process, which steps its own copy of the same solver and sends
frames back. At the end the child's final state is restored into the window's
solver, so the outcome is the one stepping in the thread gives, bit for bit
(tests/gui/test_solver_process.py checks it).

The worker uses the process only when nothing in the window must see each
step: the session's run hooks (the debugger) say so through
``allows_process_run()`` (no breakpoints but the NaN trap, no live debugger
views), and there is no speed limit. Rewind keeps recording: the child records
into a rewind timeline of its own, sent back with the final state.

Qt-free. The worker thread calls :meth:`ProcessLane.run`; the GUI thread may
call :meth:`ProcessLane.request_stop` and :meth:`ProcessLane.frame_taken`.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: Run N uses the process from this many iterations (shorter runs: handing the state
#: over and back costs more than they gain).
PROCESS_MIN_RUN = 100
#: Making and sending frames may take at most this share of the child's time.
FRAME_DUTY = 0.02
#: Seconds the child is given to end when the window closes.
QUIT_WAIT = 2.0
#: How often a running child checks that the window's process is still there (seconds).
PARENT_CHECK_SECONDS = 0.5


class ProcessUnavailable(RuntimeError):
    """The solver process could not take the run (it did not start, or could not build
    the solver): the worker runs it in its thread instead."""


class ProcessCrashed(RuntimeError):
    """The solver process ended in the middle of a run."""


@dataclass
class RunOrder:
    """What the child needs to continue the session exactly where it is."""

    solver_type: str
    param: bytes
    path: str | None
    device: str
    start: Any  # a gui.model.state.Checkpoint (None in a prepare order)
    last_loss: float
    count: int  # iterations to run; <= 0: until stopped
    frame_layers: list[str] | None
    options: dict = field(default_factory=dict)  # from the session's run hooks (e.g. "rewind")
    python_layers: Any = None  # the solver's Python-layer consent (engine.python_layers.PythonLayerAccess)

    def solver_key(self) -> tuple:
        return (self.solver_type, self.param, self.path, self.device, self.python_layers)


@dataclass
class RunResult:
    """How a run in the child ended."""

    final: Any  # a gui.model.state.Checkpoint of the state after the last iteration
    done: int
    last_loss: float
    nonfinite: object  # a session.NonFiniteStop, or None
    error: str | None
    train_points: tuple
    test_points: list
    rate: float
    recorded: dict | None  # rewind.Timeline.recorded() of the child's recorder
    seconds: dict = field(default_factory=dict)  # where the child's time went: steps, rewind, frames, run


class _Shared:
    """Values both processes read without a message: the stop flag, the frames the
    window has taken, the frame interval it asks for, the child's iteration."""

    def __init__(self, context):
        self.stop = context.RawValue("b", 0)
        self.taken = context.RawValue("q", 0)
        self.interval = context.RawValue("d", 1.0 / 30)
        self.iteration = context.RawValue("q", 0)


#: The BLAS libraries' thread-count variables (OpenBLAS, OpenMP builds, MKL, macOS Accelerate).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def leave_a_core_for_drawing() -> bool:
    """Give BLAS every core but one, which the window draws on; call before numpy loads
    (the app's first step). False (nothing changed) once numpy is loaded.

    A BLAS thread that has to share its core with the window waits at every product's
    barrier: two threads on two cores ran the solver process 1.4x slower while the
    window drew. The solver process inherits the setting with the environment, and it
    must: products split over a different number of threads can differ in the last
    bit, and a run in the process must give what stepping in the window gives (and what
    a rewind replays). Values the user set win."""
    if "numpy" in sys.modules:  # too late: this process would not follow, the solver process would
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    threads = str(max(1, cores - 1))
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
    return True


# -- the window's side -----------------------------------------------------------
class ProcessLane:
    """The window's handle on its solver process (started on first use)."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")  # never fork a process that runs Qt
        self._process: Any = None  # the child (a spawn Process) once started
        self._conn: Any = None  # our end of its pipe
        self._shared: _Shared | None = None
        self._send_lock = threading.Lock()
        self.broken: str | None = None  # why the process can't be used any more
        self.active = False  # a run is in the child now
        self.runs = 0  # runs the child finished
        self.last_result: RunResult | None = None

    @property
    def started(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the child (about half a second, in the background); idempotent."""
        if self.started or self.broken:
            return
        parent_conn, child_conn = self._context.Pipe()
        self._shared = _Shared(self._context)
        self._process = self._context.Process(target=child_main, args=(child_conn, self._shared),
                                              name="backprop-solver", daemon=True)
        try:
            self._process.start()
        except OSError as exc:
            self.broken = f"the solver process could not start: {exc}"
            self._process = None
            raise ProcessUnavailable(self.broken) from exc
        finally:
            child_conn.close()
        self._conn = parent_conn

    def prepare(self, order: RunOrder) -> None:
        """Have the child build the solver now, so the first run starts at once."""
        try:
            self.start()
            self._send(("prepare", order))
        except (ProcessUnavailable, OSError, ValueError):
            pass  # the run itself will say

    def _send(self, message) -> None:
        with self._send_lock:
            self._conn.send(message)

    @property
    def iteration(self) -> int:
        """The child's iteration (updated every step; read it while ``active``)."""
        return int(self._shared.iteration.value) if self._shared is not None else 0

    def request_stop(self) -> None:
        """End the run in progress after the iteration the child is in (any thread)."""
        if self._shared is not None:
            self._shared.stop.value = 1

    def frame_taken(self) -> None:
        """The window took the last frame: the child may send the next (GUI thread)."""
        if self._shared is not None:
            self._shared.taken.value += 1

    def set_frame_interval(self, seconds: float) -> None:
        if self._shared is not None:
            self._shared.interval.value = seconds

    def run(self, order: RunOrder, on_frame, cancelled) -> RunResult:
        """Run ``order`` in the child; ``on_frame(Frame)`` for each frame it sends.
        ``cancelled()`` is asked once the stop flag is cleared, so a stop asked for
        just before the run is not lost."""
        self.start()
        shared = self._shared
        assert shared is not None  # start() made it
        shared.stop.value = 0
        shared.taken.value = 0
        shared.iteration.value = order.start.iteration
        if cancelled():
            shared.stop.value = 1
        self.active = True
        try:
            self._send(("run", order))
            while True:
                kind, payload = self._receive()
                if kind == "frame":
                    on_frame(payload)
                elif kind == "done":
                    self.runs += 1
                    self.last_result = payload
                    return payload
                elif kind == "unavailable":
                    raise ProcessUnavailable(payload)
        finally:
            self.active = False

    def _receive(self):
        while True:
            try:
                if self._conn.poll(0.5):
                    return self._conn.recv()
            except (EOFError, OSError) as exc:
                self._crashed()
                raise ProcessCrashed(self.broken) from exc
            if not self._process.is_alive():
                self._crashed()
                raise ProcessCrashed(self.broken)

    def _crashed(self) -> None:
        code = self._process.exitcode if self._process is not None else None
        self.broken = f"The solver process ended unexpectedly (exit code {code}) in the middle of a run."

    def close(self) -> None:
        """End the child (the window is closing)."""
        process, self._process = self._process, None
        if process is None:
            return
        self.request_stop()
        try:
            self._send(("quit", None))
        except (OSError, ValueError):
            pass
        process.join(QUIT_WAIT)
        if process.is_alive():
            process.terminate()
            process.join(QUIT_WAIT)
        self._conn.close()


def make_order(session, count: int, frame_layers: list[str] | None, *, state: bool = True) -> RunOrder:
    """The session's state and settings as a :class:`RunOrder` (holds the session lock);
    ``state=False``: the settings only (for :meth:`ProcessLane.prepare`)."""
    from gui.model.state import capture
    with session.lock:
        session.apply_pending_edits()
        solver = session.solver
        options: dict = {}
        for hook in session.run_hooks:
            options.update(hook.process_run_options())
        return RunOrder(solver.type_name, solver.param.SerializeToString(), solver.path, solver.device,
                        capture(solver) if state else None, session.last_loss, count, frame_layers, options,
                        solver.python_layers)


def absorb(session, result: RunResult) -> None:
    """Make the window's session what the child's was at the end of the run: its state,
    last loss and NaN stop (the curve points are appended as frames arrive)."""
    from gui.model.state import restore
    with session.lock:
        restore(session.solver, result.final)
        session.last_loss = result.last_loss
        session.last_event = None
        session.nonfinite = None
        if result.nonfinite is not None:
            session.stop_on_nonfinite(result.nonfinite)
        for hook in session.run_hooks:
            hook.absorb_process_run(result)


# -- the child's side --------------------------------------------------------------
def child_main(conn, shared: _Shared) -> None:
    """The solver process: build the ordered solver (kept while the order's settings
    stay the same), run, send frames and the result; until told to quit."""
    session, key = None, None
    sender = _Sender(conn)
    while True:
        try:
            kind, order = conn.recv()
        except (EOFError, OSError):
            return
        if kind == "quit":
            sender.close()
            return
        if order.solver_key() != key:
            try:
                session, key = _build_session(order), order.solver_key()
            except Exception as exc:  # the window built the same solver: say why this one can't
                session, key = None, None
                if kind == "run":
                    sender.post(("unavailable", f"the solver process could not build the solver: {exc}"))
                continue
        if kind == "run":
            try:
                result = _child_run(session, order, sender, shared)
            except Exception as exc:  # not the steps (those are caught in the run): the hand-over
                session, key = None, None  # build afresh next time
                sender.post(("unavailable", f"the solver process failed: {error_message(exc)}"))
                continue
            sender.post(("done", result))


class _Sender:
    """Writes the child's messages to the pipe from a thread of its own: a write blocks
    while the window's process is busy drawing (its reader needs the interpreter there),
    and the solver must not wait for that."""

    def __init__(self, conn) -> None:
        self._conn = conn
        self._queue: queue.Queue = queue.Queue()
        self._busy = threading.Event()  # a message is queued or being written
        self._thread = threading.Thread(target=self._write, name="frame-sender", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return not self._busy.is_set()

    def post(self, message) -> None:
        """Queue ``message`` (pickled now, on the caller's thread: it may hold views the
        solver overwrites next)."""
        self._busy.set()
        self._queue.put(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def _write(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            try:
                self._conn.send_bytes(data)
            except (OSError, ValueError):
                return  # the window is gone
            if self._queue.empty():
                self._busy.clear()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(QUIT_WAIT)


def _build_session(order: RunOrder):
    from engine.proto import caffe_pb2
    from engine.solver import solver_class
    from gui.model.session import Session
    param = caffe_pb2.SolverParameter()
    param.ParseFromString(order.param)
    solver = solver_class(order.solver_type)(param, device=order.device, path=order.path,
                                             python_layers=order.python_layers)
    session = Session()
    session._install(solver, order.path)
    return session


class _Points:
    """The child session's metrics: the curve points and test scores not sent yet
    (the window's metrics keep them; here they only wait for the next frame)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.tests: list = []

    def append(self, iteration: int, loss: float, smoothed: float, lr: float) -> None:
        self.rows.append((iteration, loss, smoothed, lr))

    def add_tests(self, points) -> None:
        self.tests.extend(points)

    def take(self) -> tuple[tuple, list]:
        rows, self.rows = self.rows, []
        tests, self.tests = self.tests, []
        points = tuple(list(column) for column in zip(*rows)) if rows else ([], [], [], [])
        return points, tests


def _child_run(session, order: RunOrder, sender: _Sender, shared: _Shared) -> RunResult:
    """The process runner: gui.model.runner's loop in the child, until the count, a
    stop, NaN/inf or an error; frames as the window takes them (the pacer waits for
    the window to take the last one and for the sender to be idle)."""
    from gui.model.runner import FramePacer, run_loop
    from gui.model.state import capture, restore
    from gui.model.timeline import RunRecorder
    solver = session.solver
    restore(solver, order.start)
    points = _Points()
    session.metrics, session.last_loss = points, order.last_loss
    session.nonfinite, session.last_event, session.events = None, None, None
    rewind = order.options.get("rewind")
    recorder = RunRecorder(rewind, order.start) if rewind is not None else None
    frames = FramePacer(lambda: shared.interval.value, FRAME_DUTY,
                        taken=lambda sent: shared.taken.value >= sent and sender.idle)
    seconds = {"steps": 0.0, "rewind": 0.0, "frames": 0.0}
    run_began = time.perf_counter()
    next_parent_check = [run_began]
    step_iteration, iteration = session.step_iteration, shared.iteration

    def step() -> bool:
        began = time.perf_counter()
        step_iteration(wrapped=False)
        seconds["steps"] += time.perf_counter() - began
        iteration.value = solver.iter
        return session.nonfinite is not None

    def after_step(now: float) -> bool:
        if recorder is not None and solver.iter >= recorder.next_due:
            recorder.checkpoint(solver, seconds["steps"])
            seconds["rewind"] += time.perf_counter() - now
        if now >= next_parent_check[0]:
            if not _parent_alive():
                return True  # the window was killed: never run on alone
            next_parent_check[0] = now + PARENT_CHECK_SECONDS
        return False

    def publish(now: float, done: int) -> None:
        sender.post(("frame", _frame(session, order, points, frames.rate_at(now, done), done)))
        seconds["frames"] = frames.spent

    done, error = 0, None
    try:
        done = run_loop(step, order.count, lambda: bool(shared.stop.value), frames, publish, after_step)
    except Exception as exc:  # an engine error mid-run: the window reports it, the state comes back
        error = error_message(exc)
        done = max(0, solver.iter - order.start.iteration)
    rate = frames.rate_at(time.perf_counter(), done) if done > 1 else frames.rate
    train_points, test_points = points.take()
    seconds["run"] = time.perf_counter() - run_began
    recorded = recorder.recorded(solver.iter) if recorder is not None else None
    return RunResult(capture(solver), done, session.last_loss, session.nonfinite, error, train_points,
                     test_points, rate, recorded, seconds)


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _frame(session, order: RunOrder, points: _Points, rate: float, done: int):
    """A gui.model.frames.Frame of the child's state (its curve points: those not sent yet)."""
    from gui.model.frames import Frame
    solver = session.solver
    train_points, test_points = points.take()
    return Frame(iteration=solver.iter, loss=session.last_loss, smoothed_loss=float(solver.smoothed_loss),
                 learning_rate=float(solver.learning_rate), device=solver.device,
                 views=session.views(order.frame_layers), info=session.info(), train_points=train_points,
                 test_points=test_points, rate=rate, running=True, progress=(done, order.count))


def error_message(exc: Exception) -> str:
    """An engine error's own message; any other error with its type."""
    from engine.errors import EngineError
    return str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
