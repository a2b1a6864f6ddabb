"""The model's typed events and the emitter views subscribe with (napari's
``utils/events`` in small: one emitter, events are plain dataclasses, a view
connects a callback to the event types it cares about).

Callbacks run on the thread that emitted: NetLoaded, StateChanged and
SettingChanged come from the GUI thread (loading, editing, rewinding; the worker
is idle then); RunStarted, RunFinished and Stopped from the stepping thread, so a
Qt view re-posts those to the GUI thread (a queued signal); RunStatus tells the
views on the GUI thread when a run begins and ends there. What the views draw
arrives as FrameReady, on the GUI thread: the latest host copy of the solver's
state (a :class:`gui.model.frames.Frame`) after a step, an event, a run's frame or
any change above; each panel subscribes and draws its part of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: StateChanged reasons
REWOUND, EDITED, WEIGHTS, DEVICE = ("rewound", "edited", "weights", "device")


@dataclass(frozen=True)
class NetLoaded:
    """Another solver and net are loaded (open, Reset, regenerated data)."""

    solver: Any
    path: str | None
    reason: str = "opened"  # opened / reset / regenerated


@dataclass(frozen=True)
class StateChanged:
    """The solver's state changed in place, outside a run: ``reason`` is one of
    rewound (the timeline restored a state), edited (a weight), weights (loaded
    from a file), device (moved). A new solver (open, Reset) is a NetLoaded."""

    reason: str
    iteration: int


@dataclass(frozen=True)
class FrameReady:
    """The latest copy of the solver's state is the one to draw (``frame``: a
    gui.model.frames.Frame, also kept as ``session.frame``). GUI thread only."""

    frame: Any


@dataclass(frozen=True)
class SettingChanged:
    """A solver setting was edited (applies from the next iteration)."""

    field: str
    value: Any


@dataclass(frozen=True)
class RunStatus:
    """The window started a run (Run, Run N) or the run it started is over:
    ``running`` (also ``session.running``). GUI thread only."""

    running: bool


@dataclass(frozen=True)
class RunProgress:
    """Between a run's frames (GUI thread, a few times a second): the iteration the run
    has reached, and ``done`` of ``total`` for a Run N (``total`` 0: until paused)."""

    iteration: int
    done: int
    total: int


@dataclass(frozen=True)
class RunStarted:
    iterations: int  # 0: until paused


@dataclass(frozen=True)
class RunFinished:
    done: int


@dataclass(frozen=True)
class Stopped:
    """A run or step stopped on its own: ``reason`` "nonfinite" (``stop`` is the
    session's NonFiniteStop) or "breakpoint" (``stop`` names the condition)."""

    reason: str
    message: str
    stop: Any = None


class EventEmitter:
    """Calls each connected callback with the events of the types it asked for."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[Callable[[Any], None], tuple[type, ...]]] = []

    def connect(self, callback: Callable[[Any], None], *types: type) -> None:
        """Call ``callback(event)`` for events of ``types`` (every event when none given)."""
        if all(c != callback for c, _ in self._callbacks):  # bound methods compare equal, not identical
            self._callbacks.append((callback, types))

    def disconnect(self, callback: Callable[[Any], None]) -> None:
        self._callbacks = [(c, t) for c, t in self._callbacks if c != callback]

    def emit(self, event: object) -> None:
        for callback, types in list(self._callbacks):
            if not types or isinstance(event, types):
                callback(event)
