"""Per-layer forward / backward time, like ``caffe time`` (Qt-free).

:func:`time_solver` times real training iterations: a :class:`LayerTimer`
observes the engine's iteration body (``engine.events.Observer``) around each
layer's forward and backward. The solver's full state (weights, diffs, data
cursors, RNG) is captured before and restored after with
:mod:`gui.model.timeline`, so timing never changes the training run.
:func:`time_net` times a bare net's passes (no solver).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from engine import backend
from engine.events import FORWARD, Observer
from gui.model.timeline import capture, restore


@dataclass
class LayerTiming:
    layer: str
    type: str
    forward_ms: float
    backward_ms: float

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms


@dataclass
class TimingReport:
    iterations: int
    layers: list[LayerTiming]

    @property
    def forward_ms(self) -> float:
        return sum(t.forward_ms for t in self.layers)

    @property
    def backward_ms(self) -> float:
        return sum(t.backward_ms for t in self.layers)

    def text(self) -> str:
        """The table as ``caffe time`` prints it."""
        lines = [f"{t.layer:>12s}  forward: {t.forward_ms:8.4f} ms.  backward: {t.backward_ms:8.4f} ms."
                 for t in self.layers]
        lines.append(f"Average Forward pass: {self.forward_ms:.4f} ms.")
        lines.append(f"Average Backward pass: {self.backward_ms:.4f} ms.")
        lines.append(f"Average Forward-Backward: {self.forward_ms + self.backward_ms:.4f} ms.")
        return "\n".join(lines)


def _synchronize(net) -> None:
    if net.device == "gpu":
        backend.cupy_module().cuda.Device().synchronize()


def time_net(net, iterations: int = 10, *, clock=time.perf_counter) -> TimingReport:
    """Average per-layer forward and backward milliseconds over ``iterations`` passes."""
    if iterations < 1:
        raise ValueError("timing needs at least 1 iteration")
    count = len(net.layers)
    forward, backward = [0.0] * count, [0.0] * count
    for _ in range(iterations):
        for i in range(count):
            _synchronize(net)
            start = clock()
            net.forward_layer(i)
            _synchronize(net)
            forward[i] += clock() - start
        for i in reversed(range(count)):
            start = clock()
            net.backward_layer(i)
            _synchronize(net)
            backward[i] += clock() - start
    scale = 1000.0 / iterations
    layers = [LayerTiming(layer.name, layer.type_name, forward[i] * scale, backward[i] * scale)
              for i, layer in enumerate(net.layers)]
    return TimingReport(iterations, layers)


class LayerTimer(Observer):
    """Adds up each layer's forward and backward seconds over the iterations it watches."""

    def __init__(self, net, clock=time.perf_counter):
        self.clock = clock
        self.forward = [0.0] * len(net.layers)
        self.backward = [0.0] * len(net.layers)
        self.iterations = 0
        self._started = 0.0

    def before_layer(self, solver, phase: str, index: int) -> None:
        _synchronize(solver.net)
        self._started = self.clock()

    def after_layer(self, solver, phase: str, index: int) -> None:
        _synchronize(solver.net)
        seconds = self.clock() - self._started
        if phase == FORWARD:
            self.forward[index] += seconds
        else:
            self.backward[index] += seconds

    def on_iteration_end(self, solver, loss: float) -> None:
        self.iterations += 1

    def report(self, net) -> TimingReport:
        scale = 1000.0 / max(1, self.iterations)
        return TimingReport(self.iterations, [
            LayerTiming(layer.name, layer.type_name, self.forward[i] * scale, self.backward[i] * scale)
            for i, layer in enumerate(net.layers)])


def time_solver(solver, iterations: int = 10) -> TimingReport:
    """Time ``iterations`` training iterations layer by layer, leaving the solver's state as it was."""
    if iterations < 1:
        raise ValueError("timing needs at least 1 iteration")
    saved = capture(solver, "timing", activations=True)
    timer = LayerTimer(solver.net)
    auto_snapshot, solver.auto_snapshot = solver.auto_snapshot, False
    solver.observers.append(timer)
    try:
        solver.step(iterations)
        return timer.report(solver.net)
    finally:
        solver.observers.remove(timer)
        solver.auto_snapshot = auto_snapshot
        restore(solver, saved)
