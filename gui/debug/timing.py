"""Per-layer forward / backward time, like ``caffe time`` (Qt-free).

The timed passes run on the training net itself; its full state (weights,
diffs, data cursors, RNG) is captured before and restored after with
:mod:`gui.debug.rewind`, so timing never changes the training run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from engine import backend

from .rewind import capture, restore


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


def time_solver(solver, iterations: int = 10) -> TimingReport:
    """Time the solver's train net without changing its state."""
    saved = capture(solver, "timing", activations=True)
    try:
        return time_net(solver.net, iterations)
    finally:
        restore(solver, saved)
