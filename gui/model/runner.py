"""One run loop and one frame pacer (Qt-free), for both runners.

A run steps the session until it has done the iterations asked for (0: until
stopped), a step stops it (NaN/inf, a breakpoint) or it is stopped from outside,
and hands the view a frame now and then. It happens in one of two places, behind
one interface (:class:`Runner`):

- in the window's worker thread (``gui.worker``: the thread runner), when
  something in the window must see every step, or there is no solver process;
- in the solver process (``gui.model.solver_process``: the process runner), which
  steps on a core of its own and sends frames back.

Both call :func:`run_loop` with a :class:`FramePacer`; what differs is only what
a step, a frame and a stop are on each side.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol, TypeVar

from engine.events import NONFINITE, UPDATE, Event

Found = TypeVar("Found")

#: While a frame is not due, the loop looks again at most this often (seconds).
FRAME_POLL_SECONDS = 0.005


class Runner(Protocol):
    """Runs ``count`` iterations (``count <= 0``: until stopped) of the session's
    solver, publishing frames on the way; returns how many were done."""

    def run(self, request: int, count: int) -> int: ...


class FramePacer:
    """When a run shows a frame, and the rate it shows.

    A frame is due: at the first iteration (unless the run was asked for just one:
    its frame comes when it ends), then once ``view_interval()`` seconds have passed
    since the last one (the view's share of the time, see gui.worker) and making
    frames stays within ``duty`` of the time; where the view says whether it took
    the frames sent (``taken(sent)``), not before it did.
    """

    def __init__(self, view_interval: Callable[[], float], duty: float, *,
                 taken: Callable[[int], bool] | None = None, first_at_once: bool = True):
        self.view_interval = view_interval
        self.duty = duty
        self.taken = taken
        self.sent = 0 if first_at_once else 1
        self.spent = 0.0  # seconds spent making frames
        self.cost = 0.0  # the last frame's
        self.rate = 0.0
        self._last = (time.perf_counter(), 0)  # (time, iterations done) at the last frame

    def interval(self) -> float:
        return max(self.view_interval(), self.cost / self.duty)

    def due(self, now: float) -> bool:
        if self.sent == 0:
            return True
        if self.taken is not None and not self.taken(self.sent):
            return False
        return now - self._last[0] >= self.interval()

    def wait(self, now: float) -> float:
        """Seconds until a frame could be due (0: check again at the next iteration)."""
        return max(0.0, self._last[0] + self.interval() - now)

    def rate_at(self, now: float, done: int) -> float:
        """Iterations per second since the last frame, smoothed."""
        then, done_then = self._last
        if done > done_then and now > then:
            current = (done - done_then) / (now - then)
            self.rate = current if not self.rate else 0.5 * self.rate + 0.5 * current
        return self.rate

    def made(self, now: float, done: int) -> None:
        """A frame was made and handed over (``now``: when it was due)."""
        self.sent += 1
        self.cost = time.perf_counter() - now
        self.spent += self.cost
        self._last = (now, done)


def run_loop(step: Callable[[], bool], count: int, stopped: Callable[[], bool], pacer: FramePacer,
             publish: Callable[[float, int], None], after_step: Callable[[float], bool] | None = None) -> int:
    """The run loop: ``step()`` one iteration (True: it stopped the run, e.g. on NaN),
    ``after_step(now)`` (True: stop, e.g. the window is gone; may wait, e.g. for a speed
    limit), and ``publish(now, done)`` a frame when the pacer says one is due. Stops at
    ``count`` iterations (``count <= 0``: never) or when ``stopped()``. Returns the
    iterations done. Kept to a few comparisons per iteration besides the step."""
    done = 0
    next_check = time.perf_counter()
    while (count <= 0 or done < count) and not stopped():
        done += 1
        if step():
            break
        now = time.perf_counter()
        if after_step is not None and after_step(now):
            break
        if now >= next_check:
            if pacer.due(now):
                publish(now, done)
                pacer.made(now, done)
            next_check = now + max(FRAME_POLL_SECONDS, pacer.wait(now))
    return done


def run_iteration_by_events(next_stop: Callable[[], Event | None],
                            check: Callable[[Event], Found | None] | None = None) -> tuple[Event | None, Found | None]:
    """The one event-level iteration driver, for the session and the debugger: pull
    ``next_stop()`` (the next forward/backward/update/NaN stop; None: the events ran out)
    until the iteration's update, a NaN/inf stop or the end, or until ``check(event)``
    (e.g. a layer breakpoint) finds something. Returns (the last event, what ``check``
    found, or None)."""
    while True:
        event = next_stop()
        if event is None or event.kind == UPDATE or event.kind == NONFINITE:
            return event, None
        if check is not None:
            found = check(event)
            if found is not None:
                return event, found


def iterations_to_max_iter(iteration: int, max_iter: int) -> int:
    """What Run does, as Caffe's Solve: the iterations left before ``max_iter``
    (0: already there, Run stops at once; ``max_iter`` 0 or less: no limit, -1)."""
    if max_iter <= 0:
        return -1
    return max(0, max_iter - iteration)


def max_iter_message(iteration: int, max_iter: int) -> str:
    """The status bar's words when Run stops at (or is asked to start from) ``max_iter``."""
    return (f"Stopped at max_iter = {max_iter} (iteration {iteration}), as Caffe does. "
            "Run ▸ Continue past max_iter or Run N goes on.")
