"""Break conditions for the step-through (Qt-free).

Each condition looks at a step-through :class:`engine.Event` (``check_event``)
or at a finished iteration (``check_iteration``) and returns a :class:`Stop`
saying why to stop, or None. A per-layer breakpoint stops *before* a layer's
forward or backward: it looks at the event just yielded and asks which layer
runs next (:func:`upcoming`).

:func:`run_until` drives a solver's ``iteration_events`` until a condition
fires, so scripts and tests use the same logic as the GUI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from engine.errors import NonFiniteError
from engine.events import BACKWARD, FORWARD, ITERATION_END, NONFINITE, TEST, UPDATE, Event


@dataclass
class Stop:
    """Why the run stopped: ``reason`` for the user, the layer/blob to select."""

    reason: str
    condition: str
    iteration: int
    layer: str | None = None
    blob: str | None = None
    phase: str | None = None

    def __str__(self) -> str:
        return self.reason


@dataclass
class IterationResult:
    """What one finished iteration produced (for iteration-level conditions)."""

    iteration: int
    loss: float
    error: NonFiniteError | None = None


def upcoming(net, event: Event | None) -> tuple[str, int] | None:
    """(phase, layer index) of the layer computation that follows ``event``.

    None when the next stop is not a layer (the update). ``event`` None or an
    iteration end means the start of an iteration: layer 0's forward.
    """
    count = len(net.layers)
    if event is None or event.kind in (ITERATION_END, TEST):
        return (FORWARD, 0) if count else None
    if event.kind == FORWARD and event.layer_index is not None:
        if event.layer_index + 1 < count:
            return FORWARD, event.layer_index + 1
        start = count
    elif event.kind == BACKWARD and event.layer_index is not None:
        start = event.layer_index
    else:
        return None
    for i in reversed(range(start)):
        if net.layer_need_backward[i]:
            return BACKWARD, i
    return None


class Condition:
    """Base: a named, switchable break condition."""

    @property
    def name(self) -> str:
        return "condition"

    def __init__(self) -> None:
        self.enabled = True

    def check_event(self, event: Event, net=None) -> Stop | None:
        return None

    def check_iteration(self, result: IterationResult) -> Stop | None:
        return None

    def reset(self) -> None:
        """Forget what was seen (after a rewind or reset)."""

    def describe(self) -> str:
        return self.name


class NonFinite(Condition):
    """Stop on the first NaN/inf: the engine's ``nonfinite`` event names layer and blob."""

    name = "first non-finite value"

    def check_event(self, event, net=None):
        if event.kind != NONFINITE:
            return None
        blob, phase = event.detail.get("blob"), event.detail.get("phase")
        return Stop(f"non-finite value in '{blob}' after the {phase} of layer '{event.layer}' "
                    f"(iteration {event.iteration})", self.name, event.iteration, event.layer, blob, phase)

    def check_iteration(self, result):
        error = result.error
        if error is None and math.isfinite(result.loss):
            return None
        if error is not None:
            return Stop(str(error), self.name, result.iteration, error.layer, error.blob, error.phase)
        return Stop(f"the loss is {result.loss} at iteration {result.iteration}", self.name, result.iteration)


def _iteration_loss(event: Event) -> float | None:
    return float(event.detail["loss"]) if event.kind == ITERATION_END and "loss" in event.detail else None


class LossAbove(Condition):
    """Stop when an iteration's loss exceeds ``value``."""

    def __init__(self, value: float):
        super().__init__()
        self.value = float(value)

    @property
    def name(self) -> str:
        return f"loss above {self.value:g}"

    def check_iteration(self, result):
        if result.loss > self.value:
            return Stop(f"loss {result.loss:.6g} > {self.value:g} at iteration {result.iteration}",
                        self.name, result.iteration)
        return None

    def check_event(self, event, net=None):
        loss = _iteration_loss(event)
        return None if loss is None else self.check_iteration(IterationResult(event.iteration, loss))


class LossRising(Condition):
    """Stop when the loss rose in each of the last ``k`` iterations."""

    def __init__(self, k: int):
        super().__init__()
        if k < 1:
            raise ValueError("'loss rising for K iterations' needs K >= 1")
        self.k = int(k)
        self.previous: float | None = None
        self.rises = 0

    @property
    def name(self) -> str:
        return f"loss rising for {self.k} iterations"

    def reset(self):
        self.previous, self.rises = None, 0

    def check_iteration(self, result):
        rising = self.previous is not None and result.loss > self.previous
        self.rises = self.rises + 1 if rising else 0
        self.previous = result.loss
        if self.rises >= self.k:
            self.rises = 0
            return Stop(f"loss rose {self.k} iterations in a row (now {result.loss:.6g}, "
                        f"iteration {result.iteration})", self.name, result.iteration)
        return None

    def check_event(self, event, net=None):
        loss = _iteration_loss(event)
        return None if loss is None else self.check_iteration(IterationResult(event.iteration, loss))


class AtIteration(Condition):
    """Stop when iteration ``n`` has been completed (the solver's iter reaches n)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = int(n)

    @property
    def name(self) -> str:
        return f"at iteration {self.n}"

    def check_iteration(self, result):
        if result.iteration + 1 == self.n:
            return Stop(f"reached iteration {self.n}", self.name, result.iteration)
        return None

    def check_event(self, event, net=None):
        if event.kind == ITERATION_END:
            return self.check_iteration(IterationResult(event.iteration, float("nan")))
        return None


class LayerBreak(Condition):
    """Stop before the ``phase`` ('forward' or 'backward') of layer ``layer``."""

    def __init__(self, layer: str, phase: str = FORWARD):
        super().__init__()
        if phase not in (FORWARD, BACKWARD):
            raise ValueError(f"a layer breakpoint is before 'forward' or 'backward', not '{phase}'")
        self.layer, self.phase = layer, phase

    @property
    def name(self) -> str:
        return f"before {self.phase} of {self.layer}"

    def check_event(self, event, net=None):
        if net is None or event.kind in (NONFINITE, TEST):  # TEST: check_start covers layer 0
            return None
        nxt = upcoming(net, event)
        if nxt is None or nxt[0] != self.phase or net.layers[nxt[1]].name != self.layer:
            return None
        iteration = event.iteration + (1 if event.kind == ITERATION_END else 0)
        return Stop(f"breakpoint: before the {self.phase} of layer '{self.layer}' (iteration {iteration})",
                    self.name, iteration, self.layer, None, self.phase)


@dataclass
class Breakpoints:
    """The set of conditions; the first that fires wins."""

    conditions: list[Condition] = field(default_factory=list)

    def add(self, condition: Condition) -> Condition:
        self.conditions.append(condition)
        return condition

    def remove(self, condition: Condition) -> None:
        self.conditions.remove(condition)

    def active(self) -> Iterable[Condition]:
        return (c for c in self.conditions if c.enabled)

    def check_event(self, event: Event, net=None) -> Stop | None:
        for condition in self.active():
            stop = condition.check_event(event, net)
            if stop is not None:
                return stop
        return None

    def watches_iterations(self) -> bool:
        """True when an enabled condition looks at finished iterations (loss, count)."""
        for c in self.conditions:  # a plain loop: this runs every iteration
            if c.enabled and type(c).check_iteration is not Condition.check_iteration and not isinstance(c, NonFinite):
                return True
        return False

    def check_iteration(self, result: IterationResult) -> Stop | None:
        for condition in self.active():
            stop = condition.check_iteration(result)
            if stop is not None:
                return stop
        return None

    def check_start(self, net, iteration: int) -> Stop | None:
        """Layer breakpoints before layer 0's forward, checked at the start of an iteration."""
        start = Event(ITERATION_END, iteration - 1)
        for condition in self.active():
            if isinstance(condition, LayerBreak):
                stop = condition.check_event(start, net)
                if stop is not None:
                    return stop
        return None

    def reset(self) -> None:
        for condition in self.conditions:
            condition.reset()


class Runner:
    """Drives ``solver.iteration_events`` one event at a time, stopping where a
    condition fires; ``resume`` continues from the same place."""

    def __init__(self, solver, breakpoints: Breakpoints):
        self.solver = solver
        self.breakpoints = breakpoints
        self.events: Iterator[Event] | None = None
        self.last_event: Event | None = None

    def next_event(self) -> Event:
        """Advance by one event (starting a new iteration when needed)."""
        if self.events is None:
            self.events = self.solver.iteration_events()
        try:
            event = next(self.events)
        except StopIteration:
            self.events = self.solver.iteration_events()
            event = next(self.events)
        if event.kind in (ITERATION_END, NONFINITE):
            self.events = None
        self.last_event = event
        return event

    def run(self, max_iterations: int, *, skip_first: bool = False) -> Stop | None:
        """Run until a condition fires or ``max_iterations`` iterations ended.

        ``skip_first`` ignores a layer breakpoint at the very place we resume from.
        """
        net = self.solver.net
        ended = 0
        if self.events is None and not skip_first:
            stop = self.breakpoints.check_start(net, self.solver.iter)
            if stop is not None:
                return stop
        while ended < max_iterations:
            event = self.next_event()
            stop = self.breakpoints.check_event(event, net)
            if event.kind == NONFINITE:
                return stop or Stop(event.detail.get("message", "non-finite value"), "non-finite",
                                    event.iteration, event.layer, event.detail.get("blob"),
                                    event.detail.get("phase"))
            if event.kind == ITERATION_END:
                ended += 1
            if stop is not None:
                return stop
        return None


def run_until(solver, breakpoints: Breakpoints, max_iterations: int) -> Stop | None:
    """Run up to ``max_iterations`` iterations event by event; the first Stop, or None."""
    return Runner(solver, breakpoints).run(max_iterations)


__all__ = ["Stop", "IterationResult", "Condition", "NonFinite", "LossAbove", "LossRising", "AtIteration",
           "LayerBreak", "Breakpoints", "Runner", "run_until", "upcoming",
           "FORWARD", "BACKWARD", "UPDATE", "NONFINITE"]
