"""The gradient check button's work (Qt-free): ``engine.gradcheck.check_net``
on the current batch and weights, in float64, off the GUI thread.

:class:`GradCheckTask` freezes a copy of the net when created (call it while
paused), runs the check in a background thread with a progress callback, and
reports per blob the worst relative error, Caffe's verdict
(|analytic − numeric| ≤ threshold · max(|analytic|, |numeric|, 1), kinks
skipped) and the per-element error map. The engine's random stream is saved
and restored around the check, so it does not change the training run.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy

from engine import backend, rng
from engine.gradcheck import check_net
from engine.net import Net


@dataclass
class BlobReport:
    layer: str
    blob: str
    worst_error: float
    checked: int
    skipped: int
    passed: bool
    error: numpy.ndarray     # per element, NaN where not checked
    analytic: numpy.ndarray
    numeric: numpy.ndarray


@dataclass
class GradCheckReport:
    threshold: float
    blobs: list[BlobReport] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.blobs)

    @property
    def failed_layers(self) -> list[str]:
        seen = []
        for b in self.blobs:
            if not b.passed and b.layer not in seen:
                seen.append(b.layer)
        return seen

    def for_layer(self, layer: str) -> list[BlobReport]:
        return [b for b in self.blobs if b.layer == layer]

    def summary(self) -> str:
        lines = [f"{b.layer}/{b.blob}: worst {b.worst_error:.2e} ({b.checked} checked, {b.skipped} skipped) "
                 f"{'ok' if b.passed else 'FAIL'}" for b in self.blobs]
        verdict = "all gradients agree" if self.passed else f"FAILED: {', '.join(self.failed_layers)}"
        return "\n".join(lines + [verdict])


class Cancelled(Exception):
    """Raised inside the check to stop it."""


def freeze(net) -> Net:
    """A CPU copy of ``net`` with its weights and current batch (the RNG is left as it was)."""
    saved = rng.get_state()
    try:
        copy = Net(net.param, net.phase, dtype=net.dtype, device="cpu", python_layers=net.python_layers)
    finally:
        rng.set_state(saved)
    for name, blobs in net.params.items():
        for mine, theirs in zip(copy.params.get(name, []), blobs):
            mine.data[...] = backend.to_numpy(theirs.data)
    for name, blob in net.blobs.items():
        if name in copy.blobs and copy.blobs[name].shape == blob.shape:
            copy.blobs[name].data[...] = backend.to_numpy(blob.data)
    return copy


def to_report(results: dict, threshold: float) -> GradCheckReport:
    report = GradCheckReport(threshold)
    for layer, result in results.items():
        for blob in result.blobs:
            report.blobs.append(BlobReport(layer, blob.name.split("/", 1)[-1], blob.worst_error, blob.checked,
                                           blob.skipped, blob.passed, blob.error, blob.analytic, blob.numeric))
    return report


def run_check(net, layers=None, *, threshold: float = 1e-5, stepsize: float = 1e-6, max_elements: int = 64,
              progress: Callable[[int, int], None] | None = None) -> GradCheckReport:
    """Check ``net`` (already frozen or not) synchronously; the RNG state is preserved."""
    saved = rng.get_state()
    try:
        results = check_net(net, layers, stepsize=stepsize, threshold=threshold, max_elements=max_elements,
                            progress=progress)
    finally:
        rng.set_state(saved)
    return to_report(results, threshold)


class GradCheckTask:
    """One gradient check in a background thread.

    ``on_progress(done, total)`` and ``on_done(report_or_exception)`` are called
    from the worker thread (a Qt panel forwards them through signals).
    """

    def __init__(self, net, layers=None, *, threshold: float = 1e-5, max_elements: int = 64):
        self.frozen = freeze(net)
        self.layers = layers
        self.threshold = threshold
        self.max_elements = max_elements
        self.report: GradCheckReport | None = None
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def _progress(self, done: int, total: int, callback) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        if callback:
            callback(done, total)

    def run(self, on_progress=None) -> GradCheckReport:
        """Run here (blocking)."""
        self.report = run_check(self.frozen, self.layers, threshold=self.threshold,
                                max_elements=self.max_elements,
                                progress=lambda d, t: self._progress(d, t, on_progress))
        return self.report

    def start(self, on_progress=None, on_done=None) -> threading.Thread:
        def work():
            try:
                result = self.run(on_progress)
            except BaseException as exc:  # reported to the panel, never lost
                self.error = exc
                result = exc
            if on_done:
                on_done(result)

        self._thread = threading.Thread(target=work, name="gradcheck", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True
