"""The status bar's readout: iteration, loss, learning rate, device and rate,
drawn from each frame the session shows (FrameReady)."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from gui.model.events import FrameReady, RunProgress

#: The labels and their fixed widths (px): a fixed size, so setText re-lays out nothing.
FIELDS = (("iteration", 130), ("loss", 260), ("lr", 120), ("device", 110), ("rate", 120))


class StatusReadout:
    """The permanent labels at the right of ``bar``; ``labels[name]`` is each QLabel."""

    def __init__(self, bar: QStatusBar) -> None:
        self.labels: dict[str, QLabel] = {}
        self._session = None
        for key, width in FIELDS:
            label = QLabel("")
            label.setFixedSize(width, label.sizeHint().height())
            bar.addPermanentWidget(label)
            self.labels[key] = label

    def follow(self, session) -> None:
        """Draw every frame ``session`` (a gui.model Session) shows."""
        self._session = session
        session.emitter.connect(self._on_frame, FrameReady)
        session.emitter.connect(lambda event: self.show_iteration(event.iteration), RunProgress)

    def show_iteration(self, iteration: int) -> None:
        """The iteration count alone (between a run's frames)."""
        self.labels["iteration"].setText(f"iteration {iteration}")

    def _on_frame(self, event: FrameReady) -> None:
        frame = event.frame
        iteration = frame.iteration
        if frame.running and self._session is not None:  # the ticker may already show a later count
            iteration = max(iteration, self._session.iteration)
        self.show_iteration(iteration)
        loss = "—" if frame.loss != frame.loss else f"{frame.loss:.4g}"
        smoothed = "" if not frame.iteration else f" (smoothed {frame.smoothed_loss:.4g})"
        self.labels["loss"].setText(f"loss {loss}{smoothed}")
        self.labels["lr"].setText(f"lr {frame.learning_rate:g}")
        self.labels["device"].setText(f"device {frame.device.upper()}")
        self.labels["rate"].setText(f"{frame.rate:,.0f} it/s" if frame.rate else "— it/s")
