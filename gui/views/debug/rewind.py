"""RewindBar: the rewind timeline's slider, Step Back and memory."""
from __future__ import annotations

import contextlib
import threading
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from gui.model.timeline import Timeline


class RewindBar(QWidget):
    """Timeline slider + Step Back, with the memory the kept states use.

    ``solver_provider()`` returns the solver to restore into; ``lock`` (optional)
    is held while restoring. ``restored(position)`` is emitted after a restore.
    """

    restored = Signal(int)

    #: ms between refreshes while another thread records (the worker must not wake the GUI per iteration)
    POLL_MS = 250

    def __init__(self, timeline: Timeline, solver_provider: Callable, lock=None, parent=None, *,
                 before_restore: Callable[[], None] | None = None):
        super().__init__(parent)
        self.timeline = timeline
        self.solver_provider = solver_provider
        self.lock = lock
        self.before_restore = before_restore  # e.g. pause the worker and wait until it is idle
        self._updating = False
        layout = QHBoxLayout(self)
        self.back_button = QPushButton("◀ Step Back")
        self.back_button.setToolTip("Restore the state before the last iteration or edit (Shift+F10)")
        self.back_button.clicked.connect(self.step_back)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self._slider_moved)
        self.position_label = QLabel()
        self.position_label.setMinimumWidth(150)
        self.capacity = QSpinBox(minimum=2, maximum=100000, value=timeline.capacity)
        self.capacity.setPrefix("keep ")
        self.capacity.setSuffix(" states")
        self.capacity.valueChanged.connect(lambda n: self.timeline.set_capacity(int(n)))
        self.memory_label = QLabel()
        for w in (self.back_button, self.slider, self.position_label, self.capacity, self.memory_label):
            layout.addWidget(w)
        layout.setStretchFactor(self.slider, 1)
        self._refresh_pending = False
        self._seen_version = -1
        self._poll = QTimer(self)
        self._poll.setInterval(self.POLL_MS)
        self._poll.timeout.connect(self._poll_refresh)
        self._poll.start()
        timeline.subscribe(self._on_timeline_changed)
        self.refresh()

    def _locked(self):
        return self.lock if self.lock is not None else contextlib.nullcontext()

    def _on_timeline_changed(self, _timeline) -> None:
        """On the GUI thread: refresh now. From another thread (the worker recording every
        iteration): only mark it; the poll timer refreshes a few times a second."""
        if threading.current_thread() is threading.main_thread():  # the GUI thread
            self.refresh()
        else:
            self._refresh_pending = True

    def _poll_refresh(self) -> None:
        """A few times a second: show what the worker recorded (plain iterations only
        bump the timeline's version, see Timeline.subscribe)."""
        if (self._refresh_pending or self.timeline.version != self._seen_version) and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        self._refresh_pending = False
        self._seen_version = self.timeline.version
        self._updating = True
        s = self.timeline.summary()
        count = s["count"]
        self.slider.setMaximum(max(0, count - 1))
        self.slider.setValue(max(0, s["position"]))
        self.slider.setEnabled(count > 1)
        self.back_button.setEnabled(s["can_step_back"])
        self.position_label.setText("no states yet" if not count else
                                    f"{s['position'] + 1}/{count}: {s['label']}")
        self.memory_label.setText(s["describe"])
        self._updating = False

    def _slider_moved(self, value: int) -> None:
        if not self._updating and value != self.timeline.position:
            self.goto(value)

    def goto(self, position: int) -> None:
        if self.before_restore is not None:
            self.before_restore()
        with self._locked():
            self.timeline.goto(self.solver_provider(), position)
        self.restored.emit(position)

    def step_back(self) -> None:
        if self.timeline.can_step_back():
            self.goto(self.timeline.position - 1)
