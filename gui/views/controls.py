"""The stepping controls: actions with shortcuts (toolbar and Run menu), the
Run-N count and progress bar, the speed limit and the CPU / GPU selector.

The actions only emit; :class:`gui.main_window.MainWindow` connects them to the
worker. The GPU action is disabled, with a tooltip saying why, when cupy or a
CUDA device is missing.
"""
from __future__ import annotations

import importlib.util

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QSpinBox, QStyle, QToolBar, QWidget

from gui.model.events import FrameReady, NetLoaded, RunProgress, RunStatus, StateChanged

#: Speed-limit choices: label -> iterations per second (0 = as fast as possible).
SPEEDS = {"as fast as possible": 0.0, "1 it/s": 1.0, "2 it/s": 2.0, "5 it/s": 5.0, "10 it/s": 10.0,
          "30 it/s": 30.0, "100 it/s": 100.0}


def gpu_availability(probe: bool = False) -> tuple[bool, str]:
    """(usable, why) for the GPU selector.

    Without ``probe`` this never imports cupy: a missing cupy is reported from the
    package index alone; when cupy is installed the full check
    (``engine.gpu_status``, which imports it) runs only with ``probe=True``.
    """
    if importlib.util.find_spec("cupy") is None:
        return False, "GPU unavailable: cupy is not installed (pip install -e '.[gpu]')"
    if not probe:
        count, why = _cuda_device_count()
        if count < 1:
            return False, f"GPU unavailable: {why}"
        return True, f"Run on the GPU (cupy, {count} CUDA device(s))"
    import engine
    ok, why = engine.gpu_status()
    return ok, ("Run on the GPU: " + why) if ok else ("GPU unavailable: " + why)


def _cuda_device_count() -> tuple[int, str]:
    """CUDA devices seen by the driver, asked through libcuda (cheap; no cupy import)."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("cuda") or "libcuda.so.1"
    try:
        cuda = ctypes.CDLL(name)
    except OSError:
        return 0, "no CUDA driver (libcuda) was found"
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0:
        return 0, "the CUDA driver failed to initialise (no usable device)"
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0, "the CUDA driver could not count devices"
    return count.value, "no CUDA device was found" if count.value < 1 else f"{count.value} device(s)"


class Controls(QObject):
    """Every stepping action and the widgets that go with them."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        style = parent.style()
        icon = style.standardIcon
        self.step_iteration = self._action(parent, "Step iteration", "F10", icon(QStyle.SP_MediaSkipForward),
                                           "Run one whole iteration: forward, backward, update (F10)")
        self.step_event = self._action(parent, "Step event", "F11", icon(QStyle.SP_MediaSeekForward),
                                       "Forward or backward of the next layer, then the update (F11)")
        self.run_pause = self._action(parent, "Run", "F5", icon(QStyle.SP_MediaPlay),
                                      "Run until paused (F5)")
        self.run_pause.setCheckable(True)
        self._play_icon, self._pause_icon = icon(QStyle.SP_MediaPlay), icon(QStyle.SP_MediaPause)
        self.run_n = self._action(parent, "Run N", "Ctrl+R", icon(QStyle.SP_MediaPlay),
                                  "Run the number of iterations in the box (Ctrl+R)")
        self.reset = self._action(parent, "Reset", "Ctrl+Shift+R", icon(QStyle.SP_BrowserReload),
                                  "Rebuild the solver: weights from the fillers and the seed, iteration 0")
        self.count = QSpinBox()
        self.count.setRange(1, 1_000_000)
        self.count.setValue(100)
        self.count.setSuffix(" its")
        self.count.setToolTip("How many iterations Run N runs")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setMaximumWidth(160)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setToolTip("Speed limit while running")
        self.device_group = QActionGroup(parent)
        self.device_group.setExclusive(True)
        self.cpu = QAction("CPU", parent, checkable=True, checked=True)
        self.cpu.setToolTip("Run on the CPU (numpy)")
        self.gpu = QAction("GPU", parent, checkable=True)
        for action in (self.cpu, self.gpu):
            self.device_group.addAction(action)
        ok, why = gpu_availability()
        self.gpu.setEnabled(ok)
        self.gpu.setToolTip(why)
        self.gpu_reason = why

    @staticmethod
    def _action(parent, text: str, shortcut: str, icon, tip: str) -> QAction:
        action = QAction(icon, text, parent)
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ApplicationShortcut)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        return action

    @property
    def speed_limit(self) -> float:
        return SPEEDS[self.speed.currentText()]

    def set_speed_limit(self, per_second: float) -> None:
        for label, value in SPEEDS.items():
            if value == per_second:
                self.speed.setCurrentText(label)
                return
        label = f"{per_second:g} it/s"
        SPEEDS[label] = per_second
        self.speed.addItem(label)
        self.speed.setCurrentText(label)

    def disable_gpu(self, why: str) -> None:
        self.gpu.setEnabled(False)
        self.gpu.setToolTip(why)
        self.gpu_reason = why

    def show_device(self, device: str) -> None:
        (self.gpu if device == "gpu" else self.cpu).setChecked(True)

    def set_running(self, running: bool) -> None:
        """Run shows Pause while running; stepping and editing wait."""
        self.run_pause.blockSignals(True)
        self.run_pause.setChecked(running)
        self.run_pause.blockSignals(False)
        self.run_pause.setText("Pause" if running else "Run")
        self.run_pause.setIcon(self._pause_icon if running else self._play_icon)
        self.run_pause.setToolTip("Pause within one iteration (F5)" if running else "Run until paused (F5)")
        for action in (self.step_iteration, self.step_event, self.run_n, self.reset):
            action.setEnabled(not running)
        self.device_group.setEnabled(not running)
        if not running:
            self.gpu.setEnabled(self.gpu_reason.startswith("Run on the GPU"))

    def follow(self, session) -> None:
        """Follow ``session`` (a gui.model Session): Run shows Pause while it runs, a Run
        N's progress comes with each frame, the device selector shows where the net is."""
        session.emitter.connect(self._on_frame, FrameReady)
        session.emitter.connect(self._on_run_status, RunStatus)
        session.emitter.connect(self._on_progress, RunProgress)
        session.emitter.connect(lambda _event: self.show_device(session.device), NetLoaded, StateChanged)

    def _on_progress(self, event: RunProgress) -> None:
        if event.total > 1:
            self.show_progress(event.done, event.total)

    def _on_run_status(self, event: RunStatus) -> None:
        self.set_running(event.running)
        if not event.running:
            self.progress.setVisible(False)

    def _on_frame(self, event: FrameReady) -> None:
        if event.frame.running:
            self.show_progress(*event.frame.progress)

    def show_progress(self, done: int, total: int) -> None:
        if total <= 1:
            self.progress.setVisible(False)
            return
        self.progress.setVisible(True)
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def fill_toolbar(self, toolbar: QToolBar) -> None:
        toolbar.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for action in (self.step_event, self.step_iteration, self.run_pause):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addWidget(self.count)
        toolbar.addAction(self.run_n)
        toolbar.addWidget(self.progress)
        toolbar.addSeparator()
        toolbar.addAction(self.reset)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Speed: "))
        toolbar.addWidget(self.speed)
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Device: "))
        toolbar.addAction(self.cpu)
        toolbar.addAction(self.gpu)

    def fill_menu(self, menu) -> None:
        for action in (self.step_event, self.step_iteration, self.run_pause, self.run_n):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.reset)
        menu.addSeparator()
        device = menu.addMenu("Device")
        device.addAction(self.cpu)
        device.addAction(self.gpu)
