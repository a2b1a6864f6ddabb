"""Rewind: keep the last N iterations' full training state and step back exactly.

Qt-free. The states are :class:`gui.model.state.Checkpoint` s (capture and
restore live there, shared with the solver process's hand-over); restoring a
checkpoint and stepping again reproduces the same numbers bit for bit.

:class:`Timeline` is the timeline of states with a cursor (like an undo stack):
``record_iteration`` after every iteration (``record`` after an edit),
``step_back`` / ``goto`` to scrub, and recording from a rewound position drops
the states after it. Only some states hold a checkpoint (every k-th iteration,
k adapted to what a copy costs); the others are reached by restoring the
checkpoint before them and replaying the iterations in between.
"""
from __future__ import annotations

import math
import threading
import time

from engine import backend
from gui.model.state import Checkpoint, capture, restore

__all__ = ["Checkpoint", "capture", "restore", "Timeline", "Mark", "RunRecorder", "checkpoint_spacing"]

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
MAX_CHECKPOINT_EVERY = 200  # the most iterations a goto replays is one less
MAX_REPLAY_SECONDS = 0.5  # ... and they take about this long at most
TRIM_SHARE = 20  # a full history drops 1/TRIM_SHARE of its states at once (trimming one per iteration cost 3 %)


# -- the history ----------------------------------------------------------------
def checkpoint_spacing(capture_seconds: float, iteration_seconds: float, duty: float, capacity: int) -> int:
    """k, the iterations between full checkpoints: copies cost about ``duty`` of the
    training time, but at most MAX_CHECKPOINT_EVERY, MAX_REPLAY_SECONDS of replay and
    half the capacity (1 until both times are known)."""
    if not capture_seconds or not iteration_seconds:
        return 1
    wanted = math.ceil(capture_seconds / (duty * iteration_seconds) - 1e-9)
    longest = int(MAX_REPLAY_SECONDS / iteration_seconds)  # a goto stays quick
    room = capacity // 2  # trimming must leave a checkpoint to replay from
    return max(1, min(MAX_CHECKPOINT_EVERY, longest, room, wanted))

def _nbytes(mark: "Mark") -> int:
    return mark.checkpoint.nbytes if mark.checkpoint is not None else 0


class Mark:
    """One reachable state on the timeline: after an iteration, or after an edit.
    ``checkpoint`` is None where the state is reached by replaying iterations
    from the nearest earlier checkpoint (deterministic, see the module doc)."""

    __slots__ = ("iteration", "_label", "checkpoint")

    def __init__(self, iteration: int, label: str | None = None, checkpoint: Checkpoint | None = None):
        self.iteration = iteration
        self._label = label  # None: "iteration N", made when asked (one Mark per iteration is recorded)
        self.checkpoint = checkpoint

    @property
    def label(self) -> str:
        return self._label or f"iteration {self.iteration}"


class Timeline:
    """The timeline of the last N states with a cursor (like an undo stack).

    ``capacity`` is N, the most states kept; ``max_bytes`` bounds the memory of
    their checkpoints (default ~200 MB). ``checkpoint_every`` = k keeps a full
    checkpoint every k-th iteration only (while running fast); the states in
    between are restored by replaying at most k − 1 iterations from the checkpoint
    before them, which gives the same numbers bit for bit. Edits always get a
    checkpoint of their own.
    """

    __slots__ = ("capacity", "max_bytes", "activations", "checkpoint_every", "marks", "position", "listeners",
                 "before_restore",
                 "lock", "_last_nbytes", "_bytes", "_last_checkpoint_iteration", "_limit", "_plain_until", "duty",
                 "_iteration_seconds", "_capture_seconds", "version")  # record_iteration reads them every iteration

    def __init__(self, capacity: int = 1000, max_bytes: int = DEFAULT_MAX_BYTES, *, activations: bool = True,
                 checkpoint_every: int = 1):
        if capacity < 2:
            raise ValueError("the rewind history needs room for at least 2 states")
        self.capacity = int(capacity)
        self.max_bytes = int(max_bytes)
        self.activations = activations
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.marks: list[Mark] = []
        self.position = -1
        self.listeners: list = []
        #: ``hook(solver, position)`` runs before goto restores a state (issue 17: branches keep the tip)
        self.before_restore: list = []
        self.version = 0  # counts every change, the plain iterations included (see subscribe)
        self.lock = threading.RLock()  # the worker records while the GUI reads summary()
        self._last_nbytes = 0  # size of the newest checkpoint (for the memory bound)
        self._bytes = 0  # total size of the kept checkpoints
        self._last_checkpoint_iteration: int | None = None  # None: unknown, look it up
        self._limit = self.capacity  # effective_capacity() as of the last trim
        self._plain_until = 0  # record_iteration's fast path: iterations before this one (0: none)
        #: record_iteration keeps checkpoints to about this share of the training time (their
        #: measured copy time; the caches they stir up cost the next iterations about as much again)
        self.duty = 0.005
        self._iteration_seconds = 0.0
        self._capture_seconds = 0.0

    # -- observing ------------------------------------------------------
    def subscribe(self, callback) -> None:
        """``callback(history)`` runs after every change but a plain iteration recorded by
        record_iteration's fast path (maybe on the worker thread). Those only bump
        ``version``: a view that shows them polls it (calling back on every iteration of a
        run cost ~3 % of the step time)."""
        self.listeners.append(callback)

    def _changed(self) -> None:
        self.version += 1
        for callback in list(self.listeners):
            callback(self)

    # -- sizes ------------------------------------------------------------
    @property
    def entries(self) -> list[Checkpoint]:
        """The full checkpoints kept (oldest first)."""
        return [m.checkpoint for m in self.marks if m.checkpoint is not None]

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def _drop(self, start: int, stop: int | None = None) -> None:
        """Delete marks[start:stop], keeping the byte count."""
        self._plain_until = 0
        gone = self.marks[start:stop]
        if gone:
            dropped = [m for m in gone if m.checkpoint is not None]
            self._bytes -= sum(_nbytes(m) for m in dropped)
            del self.marks[start:stop]
            last = self._last_checkpoint_iteration
            if any(m.iteration == last for m in dropped):
                self._last_checkpoint_iteration = None  # maybe the newest checkpoint went: look it up again

    def keep_only_checkpoints(self) -> None:
        """Forget the states up to the cursor that would be replayed, and those after it
        (after a settings change a replay would not give the same numbers)."""
        with self.lock:
            self._plain_until = 0
            kept = [m for m in self.marks[:self.position + 1] if m.checkpoint is not None]
            self.marks = kept
            self._bytes = sum(_nbytes(m) for m in kept)
            self._last_checkpoint_iteration = None
            self.position = len(kept) - 1
        self._changed()

    def effective_capacity(self) -> int:
        """N after the memory bound: how many states fit, given the checkpoint size and spacing."""
        if not self._last_nbytes:
            return self.capacity
        per_state = self._last_nbytes / self.checkpoint_every
        return max(2, min(self.capacity, int(self.max_bytes // per_state)))

    def set_capacity(self, capacity: int) -> None:
        with self.lock:
            self.capacity = max(2, int(capacity))
            self._trim()
        self._changed()

    def summary(self) -> dict:
        """A consistent read of what a widget shows (safe while another thread records)."""
        with self.lock:
            current = self.current
            return {"count": len(self.marks), "position": self.position,
                    "label": current.label if current else "", "describe": self.describe(),
                    "can_step_back": self.can_step_back()}

    def describe(self) -> str:
        """'12 / 500 states, 3.4 MB' for a status line."""
        return (f"{len(self.marks)} / {self.effective_capacity()} states, "
                f"{self.memory_bytes / 1e6:.1f} MB")

    def __len__(self) -> int:
        return len(self.marks)

    @property
    def current(self) -> Mark | None:
        return self.marks[self.position] if 0 <= self.position < len(self.marks) else None

    # -- recording ----------------------------------------------------------
    def _needs_checkpoint(self, iteration: int) -> bool:
        if self.checkpoint_every <= 1:
            return True
        if self._last_checkpoint_iteration is None:  # after a drop: find it again (once)
            self._last_checkpoint_iteration = next(
                (m.iteration for m in reversed(self.marks) if m.checkpoint is not None), None)
        last = self._last_checkpoint_iteration
        return last is None or iteration - last >= self.checkpoint_every

    def record(self, solver, label: str = "", *, checkpoint: bool | None = None) -> Mark:
        """Append the solver's current state (dropping any states after the cursor).
        ``checkpoint``: force (True) or skip (False) a full copy; None: by ``checkpoint_every``."""
        with self.lock:
            self._drop(self.position + 1)
            self._plain_until = 0
            want = self._needs_checkpoint(solver.iter) if checkpoint is None else checkpoint
            if not self.marks:
                want = True  # the oldest state is always a full checkpoint
            mark = Mark(solver.iter, label or None,
                        capture(solver, label, activations=self.activations) if want else None)
            if mark.checkpoint is not None:
                self._last_nbytes = mark.checkpoint.nbytes
                self._bytes += mark.checkpoint.nbytes
                self._last_checkpoint_iteration = mark.iteration
            self.marks.append(mark)
            self.position = len(self.marks) - 1
            self._trim()
        self._changed()
        return mark

    def record_iteration(self, solver, seconds: float, *, every_iteration: bool = False) -> Mark:
        """Record after an iteration that took ``seconds``: full checkpoints only every
        k-th iteration, k chosen so they cost about ``duty`` of the training time, but
        at most MAX_CHECKPOINT_EVERY, MAX_REPLAY_SECONDS of replay and half the capacity
        (``every_iteration``: k = 1, e.g. while the update decomposition is shown).

        Between checkpoints this only appends a :class:`Mark` holding the iteration
        number (no array is copied: :meth:`goto` replays those states); that path
        runs on every iteration of a run, so it is kept to a few attribute reads."""
        average = self._iteration_seconds
        if seconds > 0:  # one outlier (the thread lost its core for a while) moves it by 30 % at most
            self._iteration_seconds = seconds if not average else 0.9 * average + 0.1 * min(seconds, 4 * average)
        iteration = solver.iter
        if not every_iteration:
            with self.lock:  # the fast path: no checkpoint due (by the current k), nothing to trim
                plain = iteration < self._plain_until
                if plain:
                    mark = Mark(iteration)
                    self.marks.append(mark)
                    self.position += 1
                    self.version += 1
            if plain:
                return mark
        self.checkpoint_every = 1 if every_iteration else checkpoint_spacing(
            self._capture_seconds, self._iteration_seconds, self.duty, self.capacity)
        began = time.perf_counter() if self._needs_checkpoint(iteration) else None
        mark = self.record(solver)
        if mark.checkpoint is not None and began is not None:
            took = time.perf_counter() - began
            self._capture_seconds = took if not self._capture_seconds else \
                0.8 * self._capture_seconds + 0.2 * took
        if not every_iteration:
            with self.lock:
                self._plain_until = self._fast_path_end(iteration)
        return mark

    def _fast_path_end(self, iteration: int) -> int:
        """The iteration before which the next ones only append a Mark: no checkpoint due
        by the current k, no trim (the next ones are taken to come one by one; every other
        change to the history sets ``_plain_until`` back to 0)."""
        last = self._last_checkpoint_iteration
        if last is None or self.position != len(self.marks) - 1 or self.marks[-1].iteration != iteration:
            return 0
        return min(last + self.checkpoint_every, iteration + 1 + self._limit - len(self.marks))

    def _trim(self) -> None:
        self._plain_until = 0
        limit = self.effective_capacity()
        drop = max(0, len(self.marks) - limit)
        if drop:  # full: the oldest 5% go at once, so the next iterations take the fast path again
            drop += limit // TRIM_SHARE
        if self._bytes > self.max_bytes:  # k grew: the older checkpoints are denser than the newer
            excess, i = self._bytes - self.max_bytes, 0
            while i < len(self.marks) - 1 and (excess > 0 or i < drop):
                excess -= _nbytes(self.marks[i])
                i += 1
            drop = max(drop, i)
        while drop < len(self.marks) - 1 and self.marks[drop].checkpoint is None:
            drop += 1  # the oldest kept state must be a checkpoint to replay from
        if drop:
            self._drop(0, drop)
            self.position = max(0, self.position - drop)
        self._limit = limit

    # -- recording in the solver process ------------------------------------
    def recorder_settings(self) -> dict:
        """What a history recording in another process (see gui.model.solver_process) needs to
        choose its checkpoints as this one would."""
        with self.lock:
            return {"capacity": self.capacity, "max_bytes": self.max_bytes, "activations": self.activations,
                    "duty": self.duty, "iteration_seconds": self._iteration_seconds,
                    "capture_seconds": self._capture_seconds}

    def append_recorded(self, recorded: dict) -> None:
        """Continue the timeline at the cursor with a run recorded elsewhere. Its first
        state is the one the run started from: where the cursor's state has no checkpoint,
        it takes the recorder's."""
        marks = list(recorded["marks"])
        with self.lock:
            self._drop(self.position + 1)
            current = self.current
            if marks and current is not None and current.iteration == marks[0].iteration:
                first = marks.pop(0)
                if current.checkpoint is None and first.checkpoint is not None:
                    current.checkpoint = first.checkpoint
                    self._bytes += first.checkpoint.nbytes
            for mark in marks:
                if mark.checkpoint is not None:
                    self._bytes += mark.checkpoint.nbytes
                    self._last_nbytes = mark.checkpoint.nbytes
            self.marks.extend(marks)
            self.position = len(self.marks) - 1
            self._last_checkpoint_iteration = None
            self._iteration_seconds = recorded["iteration_seconds"]
            self._capture_seconds = recorded["capture_seconds"]
            self.checkpoint_every = recorded["checkpoint_every"]
            self._trim()
        self._changed()

    def ensure_recorded(self, solver) -> None:
        """Record the current state unless the cursor already holds it."""
        current = self.current
        if current is not None and current.iteration == solver.iter:
            with self.lock:
                self._drop(self.position + 1)  # continuing from a rewound state
            return
        self.record(solver)

    def step(self, solver, iterations: int = 1) -> float:
        """Run ``iterations`` solver steps, recording after each; returns the last loss."""
        self.ensure_recorded(solver)
        loss = float("nan")
        for _ in range(iterations):
            loss = solver.step(1)
            self.record(solver)
        return loss

    def edit_weight(self, solver, param_index: int, index: tuple, value: float) -> None:
        """Set one weight (while paused) and record it, so Step Back undoes the edit."""
        self.ensure_recorded(solver)
        if self.current is not None and self.current.checkpoint is None:
            with self.lock:
                self.current.checkpoint = capture(solver, self.current.label, activations=self.activations)
                self._bytes += self.current.checkpoint.nbytes
                self._last_checkpoint_iteration = None
        blob = solver.net.learnable_params[param_index]
        old = float(backend.to_numpy(blob.data[index]))
        blob.data[index] = value
        name = solver.net.param_display_names[param_index]
        self.record(solver, f"edit {name}{list(index)}: {old:g} → {float(value):g}", checkpoint=True)

    # -- moving ---------------------------------------------------------------
    def can_step_back(self) -> bool:
        return self.position > 0

    def step_back(self, solver) -> Mark:
        """Restore the state before the last iteration or edit."""
        if not self.can_step_back():
            raise IndexError("nothing to step back to: the history holds no earlier state")
        return self.goto(solver, self.position - 1)

    def goto(self, solver, position: int) -> Mark:
        """Restore the state at ``position`` (the history slider); later ones are kept
        until something new is recorded."""
        if not 0 <= position < len(self.marks):
            raise IndexError(f"history position {position} out of range 0..{len(self.marks) - 1}")
        for hook in list(self.before_restore):
            hook(solver, position)
        with self.lock:
            self._plain_until = 0
            base = position
            while base >= 0 and self.marks[base].checkpoint is None:
                base -= 1
            if base < 0:
                raise IndexError(f"history position {position} has no checkpoint before it to replay from")
            checkpoint = self.marks[base].checkpoint
            assert checkpoint is not None
            restore(solver, checkpoint)
            replay = self.marks[position].iteration - self.marks[base].iteration
            if replay:
                solver.step(replay)
            self.position = position
        self._changed()
        return self.marks[position]

    def clear(self) -> None:
        with self.lock:
            self.marks.clear()
            self.position = -1
            self._last_nbytes = 0
            self._bytes = 0
            self._last_checkpoint_iteration = None
            self._limit = self.capacity
            self._plain_until = 0
        self._changed()


class RunRecorder:
    """Records a run for Rewind where no timeline is kept: the solver process.

    Between checkpoints an iteration costs the caller one comparison
    (``solver.iter >= recorder.next_due``); only then is :meth:`checkpoint` called.
    The checkpoints follow the window's Timeline rules (:func:`checkpoint_spacing`,
    its capacity and memory bound), and :meth:`recorded` makes the run's marks for
    :meth:`Timeline.append_recorded` at the end.
    """

    def __init__(self, settings: dict, start: Checkpoint):
        self.capacity = settings["capacity"]
        self.max_bytes = settings["max_bytes"]
        self.activations = settings["activations"]
        self.duty = settings["duty"]
        self.iteration_seconds = settings["iteration_seconds"]
        self.capture_seconds = settings["capture_seconds"]
        self.checkpoints = [start]  # oldest first; the run's start is the window's current state
        self.every = checkpoint_spacing(self.capture_seconds, self.iteration_seconds, self.duty, self.capacity)
        self.next_due = start.iteration + self.every
        self._bytes = start.nbytes
        self._last = (start.iteration, 0.0)  # (iteration, step seconds so far) at the last checkpoint

    def checkpoint(self, solver, step_seconds: float) -> None:
        """Capture the state after an iteration; ``step_seconds``: the run's time in steps so far."""
        iteration = solver.iter
        last_iteration, last_seconds = self._last
        if iteration > last_iteration and step_seconds > last_seconds:
            self.iteration_seconds = (step_seconds - last_seconds) / (iteration - last_iteration)
        began = time.perf_counter()
        checkpoint = capture(solver, activations=self.activations)
        took = time.perf_counter() - began
        self.capture_seconds = took if not self.capture_seconds else 0.8 * self.capture_seconds + 0.2 * took
        self.checkpoints.append(checkpoint)
        self._bytes += checkpoint.nbytes
        self._last = (iteration, step_seconds)
        self.every = checkpoint_spacing(self.capture_seconds, self.iteration_seconds, self.duty, self.capacity)
        self.next_due = iteration + self.every
        kept = self.checkpoints  # the oldest goes once the next one alone covers the capacity, or for memory
        while len(kept) > 1 and (self._bytes > self.max_bytes or kept[1].iteration <= iteration - self.capacity):
            self._bytes -= kept.pop(0).nbytes

    def recorded(self, last_iteration: int) -> dict:
        """The run's marks up to ``last_iteration`` (at most the capacity's worth, from a
        checkpoint on), for :meth:`Timeline.append_recorded`."""
        wanted_from = last_iteration - self.capacity + 1
        base = self.checkpoints[0]
        for checkpoint in self.checkpoints:
            if checkpoint.iteration <= max(wanted_from, base.iteration):
                base = checkpoint
        by_iteration = {c.iteration: c for c in self.checkpoints if c.iteration <= last_iteration}
        marks = [Mark(i, None, by_iteration.get(i)) for i in range(base.iteration, last_iteration + 1)]
        return {"marks": marks, "iteration_seconds": self.iteration_seconds,
                "capture_seconds": self.capture_seconds, "checkpoint_every": self.every}
