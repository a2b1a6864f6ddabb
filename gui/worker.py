"""The solver runs here, off the GUI thread.

:class:`SolverWorker` lives in its own ``QThread``. It steps the session,
honours a pause within one iteration, keeps to a speed limit, and hands the GUI
the LATEST state as a :class:`Frame` at most ~30 times a second. Frames are made
in the worker (host copies from ``gui.model.frames``), so the GUI thread never reads
an array the solver is writing. Only one frame is ever in flight: a slow GUI
skips frames instead of queueing them.

With a ``process_lane`` (the app has one), a run that nothing in the window must
see step by step goes to the solver process instead (``gui.model.solver_process``):
the worker thread then only relays its frames and takes its final state.
"""
from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QThread, Signal, Slot

from gui.model import solver_process
from gui.model.events import RunFinished, RunStarted
from gui.model.frames import Frame
from gui.model.runner import FramePacer, run_loop
from gui.model.session import Session

#: Redraws per second, at most.
MAX_FPS = 30.0
#: While running flat out, the GUI may use at most this share of the time to redraw
#: (Python runs one thread at a time: each redraw is time the solver does not run).
GUI_DUTY = 0.06
#: ... but the view never goes longer than this without a frame (seconds).
MAX_FRAME_GAP = 2.0
#: The longest the solver waits for the GUI to finish drawing a frame (seconds).
MAX_GUI_WAIT = 0.25
#: Under a speed limit the solver has time to spare, but the GUI still keeps half
#: its time for the user (clicks, hovers) however slow a redraw is.
GUI_DUTY_LIMITED = 0.5
#: A run in the solver process steps on a core of its own; the window may use this
#: share of another for frames (what it leaves over, the machine's other work gets,
#: so the solver is not crowded off its core).
GUI_DUTY_PROCESS = 0.35


class SolverWorker(QObject):
    """Steps a :class:`Session` in a worker thread; see the module doc."""

    frameReady = Signal()
    runStarted = Signal()
    runFinished = Signal()
    failed = Signal(str)
    processLost = Signal(str)  # the solver process ended mid-run (why); runs go on in this thread
    _runRequested = Signal(int, int)
    _eventRequested = Signal()

    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.speed_limit = 0.0  # iterations per second; 0 = as fast as possible
        self.render_cost = 0.0  # seconds the GUI took to draw the last frame
        self._gui_idle = threading.Event()  # cleared while the GUI draws a frame: give it the interpreter
        self._gui_idle.set()
        self.rate = 0.0
        self._outstanding = 0  # requests asked for and not finished
        self._count_lock = threading.Lock()
        self._requests = 0
        self._cancelled_upto = 0
        self._frame_lock = threading.Lock()
        self._latest: Frame | None = None
        self._frame_pending = False
        #: a gui.model.solver_process.ProcessLane: runs go to a process of their own when they can
        self.process_lane: solver_process.ProcessLane | None = None
        self.notice = ""  # why the last run did not use the solver process (shown in the status bar)
        self._runRequested.connect(self._run)
        self._eventRequested.connect(self._step_event)

    # -- requests from the GUI thread ------------------------------------
    def request_run(self, count: int) -> None:
        """Run ``count`` iterations (``count <= 0``: until paused)."""
        self._requests += 1
        self._begin()
        self._runRequested.emit(self._requests, count)

    def request_event(self) -> None:
        """Advance the step-through by one stop."""
        self._begin()
        self._eventRequested.emit()

    @property
    def busy(self) -> bool:
        """True while a request is queued or running."""
        return self._outstanding > 0

    def _begin(self) -> None:
        with self._count_lock:
            self._outstanding += 1

    def _end(self) -> None:
        with self._count_lock:
            self._outstanding -= 1

    @property
    def gui_busy(self) -> bool:
        """True while the GUI thread draws a frame (set by the GUI thread)."""
        return not self._gui_idle.is_set()

    @gui_busy.setter
    def gui_busy(self, busy: bool) -> None:
        if busy:
            self._gui_idle.clear()
        else:
            self._gui_idle.set()

    def pause(self) -> None:
        """Stop every run asked for so far, within one iteration."""
        self._cancelled_upto = self._requests
        self._gui_idle.set()  # a worker waiting for a frame to be drawn stops now
        if self.process_lane is not None:
            self.process_lane.request_stop()

    @property
    def iteration(self) -> int:
        """The solver's iteration, also while a run is in the solver process."""
        lane = self.process_lane
        if lane is not None and lane.active:
            return lane.iteration
        return self.session.iteration

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block (GUI thread) until the worker is idle; True if it is."""
        deadline = time.perf_counter() + timeout
        while self.busy and time.perf_counter() < deadline:
            time.sleep(0.002)
        return not self.busy

    def forget_rate(self) -> None:
        """A new solver was loaded: its run rate is not known yet."""
        self.rate = 0.0

    @property
    def frame_pending(self) -> bool:
        """A frame was published and the GUI has not taken it yet."""
        return self._frame_pending

    def take_frame(self) -> Frame | None:
        """The latest frame (GUI thread); None if it was already taken."""
        with self._frame_lock:
            frame, self._latest, self._frame_pending = self._latest, None, False
        lane = self.process_lane
        if frame is not None and lane is not None and lane.active:
            lane.frame_taken()
        return frame

    # -- the worker thread ---------------------------------------------
    @Slot(int, int)
    def _run(self, request: int, count: int) -> None:
        self.runStarted.emit()
        self.session.emitter.emit(RunStarted(count))
        done = 0
        try:
            if self._process_allowed(count):
                try:
                    done = self._run_in_process(request, count)
                    return
                except solver_process.ProcessUnavailable as exc:
                    self.notice = str(exc)
                except solver_process.ProcessCrashed as exc:
                    self.processLost.emit(str(exc))
                    return
            done = self._run_in_thread(request, count)
        except Exception as exc:  # an engine error mid-run: report it, keep the app alive
            self.failed.emit(_message(exc))
        finally:
            self._publish(running=False, progress=(done, count))
            self._end()
            self.session.emitter.emit(RunFinished(done))
            self.runFinished.emit()

    def _process_allowed(self, count: int) -> bool:
        """A run goes to the solver process when there is one, it is long enough, runs
        flat out, and no run hook (the debugger) needs to see each step."""
        lane, session = self.process_lane, self.session
        if lane is None or lane.broken or self.speed_limit > 0 or session.mid_iteration:
            return False
        if 0 < count < solver_process.PROCESS_MIN_RUN:
            return False
        return all(hook.allows_process_run() for hook in session.run_hooks)

    def _run_in_thread(self, request: int, count: int) -> int:
        """The thread runner: gui.model.runner's loop, stepping the session here."""
        session = self.session
        pacer = FramePacer(self._frame_interval, GUI_DUTY, first_at_once=count != 1)

        began = [0.0]  # when the last step began (the speed limit counts from there)

        def step() -> bool:
            began[0] = time.perf_counter()
            session.step_iteration()
            return session.nonfinite is not None

        def publish(now: float, done: int) -> None:
            self.rate = pacer.rate_at(now, done)
            self._publish(running=True, progress=(done, count))

        def after_step(_now: float) -> bool:
            self._keep_speed_limit(began[0], request)
            self._yield_to_gui()
            return False

        done = run_loop(step, count, lambda: request <= self._cancelled_upto, pacer, publish, after_step)
        if done > 1:
            self.rate = pacer.rate_at(time.perf_counter(), done)
        return done

    def _run_in_process(self, request: int, count: int) -> int:
        """Run in the solver process; frames come from there, the state comes back at
        the end (see gui.model.solver_process)."""
        lane = self.process_lane
        order = solver_process.make_order(self.session, count, self.session.frame_layers)
        lane.set_frame_interval(self._frame_interval(GUI_DUTY_PROCESS))

        def on_frame(frame: Frame) -> None:  # made in the child; its points are new to the metrics
            self._append_points(frame.train_points, frame.test_points)
            self.rate = frame.rate
            self._post(frame)
            lane.set_frame_interval(self._frame_interval(GUI_DUTY_PROCESS))

        kept = self.session.iteration
        try:
            result = lane.run(order, on_frame, lambda: request <= self._cancelled_upto)
        except (solver_process.ProcessCrashed, solver_process.ProcessUnavailable):
            with self.session.lock:  # the state is the one before the run: so are the curves
                self.session.metrics.truncate_after(kept)
            raise
        self._append_points(result.train_points, result.test_points)
        solver_process.absorb(self.session, result)
        if result.rate:
            self.rate = result.rate
        if result.error:
            self.failed.emit(result.error)
        self.notice = ""
        return result.done

    def _append_points(self, train_points: tuple, test_points: list) -> None:
        """Curve points made in the solver process join the session's metrics."""
        metrics = self.session.metrics
        for iteration, loss, smoothed, lr in zip(*train_points):
            metrics.append(iteration, loss, smoothed, lr)
        if test_points:
            metrics.add_tests(test_points)

    @Slot()
    def _step_event(self) -> None:
        try:
            self.session.step_event()
            self._publish()
        except Exception as exc:
            self.failed.emit(_message(exc))
            self._publish()
        finally:
            self._end()
            self.runFinished.emit()

    def _frame_interval(self, duty: float | None = None) -> float:
        """Seconds between frames; ``duty``: the GUI's share of the time (by default
        GUI_DUTY flat out, GUI_DUTY_LIMITED under a speed limit)."""
        if duty is None:
            duty = GUI_DUTY if self.speed_limit <= 0 else GUI_DUTY_LIMITED
        return min(MAX_FRAME_GAP, max(1.0 / MAX_FPS, self.render_cost / duty))

    def _keep_speed_limit(self, began: float, request: int) -> None:
        if self.speed_limit <= 0:
            return
        until = began + 1.0 / self.speed_limit
        while request > self._cancelled_upto:
            left = until - time.perf_counter()
            if left <= 0:
                return
            time.sleep(min(left, 0.01))

    def _yield_to_gui(self) -> None:
        """Wait while the GUI thread draws a frame: Python runs one thread at a time, and
        a GUI that must fight for it draws slowly. Never longer than MAX_GUI_WAIT."""
        if not self.gui_busy:
            return
        self._gui_idle.wait(MAX_GUI_WAIT)

    # -- frames --------------------------------------------------------
    def make_frame(self, **extra) -> Frame:
        """Copy what the views draw out of the solver (holds the session lock)."""
        session = self.session
        with session.lock:
            solver = session.solver
            frame = Frame(
                iteration=solver.iter, loss=session.last_loss, smoothed_loss=float(solver.smoothed_loss),
                learning_rate=float(solver.learning_rate), device=solver.device,
                views=session.views(session.frame_layers), info=session.info(),
                event=session.last_event, nonfinite=session.nonfinite,
                mid_iteration=session.mid_iteration, rate=self.rate, **extra)
        return frame

    def _publish(self, **extra) -> None:
        self._post(self.make_frame(**extra))

    def _post(self, frame: Frame) -> None:
        """Make ``frame`` the latest (a frame not drawn yet is dropped: the curves are
        read from the session's metrics, so nothing is lost)."""
        with self._frame_lock:
            self._latest = frame
            notify = not self._frame_pending
            self._frame_pending = True
        if notify:
            self.frameReady.emit()


_message = solver_process.error_message


def start_worker(session: Session) -> tuple[SolverWorker, QThread]:
    """A worker in a started thread of its own."""
    thread = QThread()
    thread.setObjectName("solver-worker")
    worker = SolverWorker(session)
    worker.moveToThread(thread)
    thread.start()
    return worker, thread


def stop_worker(worker: SolverWorker, thread: QThread) -> None:
    """Pause the worker and end its thread."""
    worker.pause()
    thread.quit()
    thread.wait(5000)
    if worker.process_lane is not None:
        worker.process_lane.close()
