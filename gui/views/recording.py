"""Record the window, or chosen panels, to MP4 or GIF (gui.model.recording).

File ▸ Record… (and the Record button) asks for a file, what to record (the
window or some of its panels), the frame rate and how: a run sampled at the
frame rate, or one frame per step event (a step-through). Frames are grabbed on
the GUI thread (a widget's grab) and encoded on a thread of their own (FFmpeg
itself runs in its own process), so a run is not held up. ``main.py --record
OUT.mp4 --steps N [--events] [--fps F]`` does the same headless.
"""
from __future__ import annotations

import os
import sys

import numpy
from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from gui.model import recording as rec
from gui.model.events import FrameReady

RUN, EVENTS = "run sampled at the frame rate", "one frame per step event"
WINDOW = "the whole window"


def widget_rgb(widget: QWidget) -> numpy.ndarray:
    """The widget as it is drawn now, H×W×3 uint8 (a copy)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    width, height, stride = image.width(), image.height(), image.bytesPerLine()
    raw = numpy.frombuffer(image.constBits(), numpy.uint8, count=stride * height)
    return raw.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def tile(pictures: list[numpy.ndarray]) -> numpy.ndarray:
    """Pictures side by side on white (tops aligned)."""
    height = max(p.shape[0] for p in pictures)
    columns = [numpy.vstack([p, numpy.full((height - p.shape[0], p.shape[1], 3), 255, numpy.uint8)])
               for p in pictures]
    return numpy.hstack(columns)


class Recorder:
    """One window's recordings: start, the frames (sampled, or one per drawn frame), stop."""

    def __init__(self, window) -> None:
        self.window = window
        self.recording: rec.Recording | None = None
        self.targets: list[QWidget] = []
        self.per_event = False
        self.clock: rec.SampleClock | None = None
        self.timer = QTimer(window)
        self.timer.timeout.connect(self._sample)
        window.session.emitter.connect(self._on_frame, FrameReady)
        self.last_summary: rec.RecordingSummary | None = None

    @property
    def active(self) -> bool:
        return self.recording is not None

    def panels(self) -> dict[str, QWidget]:
        """What can be recorded besides the window: the central inspector and each dock's panel."""
        found: dict[str, QWidget] = {}
        pages = getattr(self.window, "inspector_pages", None)
        if pages is not None:
            found["Inspector"] = pages
        from PySide6.QtWidgets import QDockWidget
        for dock in self.window.findChildren(QDockWidget):
            if dock.widget() is not None and dock.windowTitle():
                found[dock.windowTitle()] = dock.widget()
        return found

    def start(self, path: str, fps: float = 10.0, panels: list[str] | None = None, per_event: bool = False) -> None:
        """Start recording ``panels`` (names from :meth:`panels`; None: the window) to ``path``."""
        if self.active:
            self.stop()
        available = self.panels()
        unknown = [name for name in panels or [] if name not in available]
        if unknown:
            raise KeyError(f"no panel named {', '.join(unknown)} (have: {', '.join(available)})")
        self.targets = [available[name] for name in panels] if panels else [self.window]
        self.recording = rec.Recording(path, fps)
        self.per_event = per_event
        self.clock = rec.SampleClock(fps)
        if not per_event:
            self.timer.start(max(5, int(500 / fps)))  # twice per frame period; the clock decides
        self.grab()

    def caption(self) -> str:
        frame = self.window.session.frame
        iteration = self.window.session.iteration
        if frame is None:
            return rec.caption_for(None, iteration)
        if frame.running or not frame.mid_iteration and (frame.event is None or frame.event.kind != "update"):
            return rec.caption_for(None, max(iteration, frame.iteration))
        return rec.caption_for(frame.event, frame.iteration)

    def grab(self, wait: bool = False) -> bool:
        """Grab the targets now and queue the frame (False: dropped or not recording)."""
        if self.recording is None:
            return False
        pictures = [widget_rgb(target) for target in self.targets if target.isVisible()]
        if not pictures:
            return False
        return self.recording.add(tile(pictures) if len(pictures) > 1 else pictures[0], self.caption(), wait=wait)

    def _sample(self) -> None:
        if self.clock is not None and self.clock.due():
            self.grab()

    def _on_frame(self, event: FrameReady) -> None:
        if self.active and self.per_event and not event.frame.running:
            self.grab(wait=True)

    def stop(self) -> rec.RecordingSummary | None:
        """Finish the file; the summary says how many frames, how long and how big."""
        self.timer.stop()
        recording, self.recording = self.recording, None
        if recording is None:
            return None
        self.last_summary = recording.close()
        return self.last_summary


class RecordDialog(QDialog):
    """File, what to record, frame rate and mode."""

    def __init__(self, recorder: Recorder, folder: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Record")
        form = QFormLayout(self)
        row = QHBoxLayout()
        ok, _why = rec.mp4_available()
        self.path = QLineEdit(os.path.join(folder, "recording.mp4" if ok else "recording.gif"))
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("File (.mp4 or .gif)", row)
        self.what = QListWidget()
        for name in [WINDOW] + list(recorder.panels()):
            item = QListWidgetItem(name)
            item.setCheckState(_checked(name == WINDOW))
            self.what.addItem(item)
        form.addRow("Record", self.what)
        self.fps = QDoubleSpinBox(minimum=0.5, maximum=60.0, value=10.0, decimals=1, suffix=" frames/s")
        form.addRow("Frame rate", self.fps)
        self.mode = QComboBox()
        self.mode.addItems([RUN, EVENTS])
        form.addRow("Frames", self.mode)
        self.open_after = QCheckBox("say where the file is when it stops")
        self.open_after.setChecked(True)
        form.addRow("", self.open_after)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Record to", self.path.text(), "Video (*.mp4 *.gif)")
        if path:
            self.path.setText(path)

    def chosen_panels(self) -> list[str] | None:
        names = [self.what.item(k).text() for k in range(self.what.count())
                 if self.what.item(k).checkState() == _checked(True)]
        return None if not names or WINDOW in names else names


def _checked(on: bool):
    from PySide6.QtCore import Qt
    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked


def install(window) -> Recorder:
    """File ▸ Record… / Stop recording and a Record button on the toolbar."""
    recorder = Recorder(window)
    action = QAction("● Record", window)
    action.setCheckable(True)
    action.setToolTip("Record the window or chosen panels to MP4 or GIF")

    def toggled(on: bool) -> None:
        if on and not recorder.active:
            dialog = RecordDialog(recorder, os.getcwd(), window)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                action.setChecked(False)
                return
            try:
                recorder.start(dialog.path.text(), dialog.fps.value(), dialog.chosen_panels(),
                               dialog.mode.currentText() == EVENTS)
            except Exception as exc:
                action.setChecked(False)
                window.errors.report_exception("Could not start recording", exc)
                return
            window.statusBar().showMessage(f"Recording to {dialog.path.text()}", 4000)
        elif not on and recorder.active:
            try:
                summary = recorder.stop()
            except Exception as exc:
                window.errors.report_exception("The recording failed", exc)
                return
            if summary is not None:
                window.statusBar().showMessage(describe(summary), 10000)
    action.toggled.connect(toggled)
    window.toolbar.addAction(action)
    window.file_menu.insertAction(window.file_menu.actions()[-1], action)
    window.record_action = action
    window.recorder = recorder
    return recorder


def describe(summary: rec.RecordingSummary) -> str:
    dropped = f", {summary.dropped} dropped (encoder behind)" if summary.dropped else ""
    return (f"Recorded {summary.frames} frames ({summary.seconds:.1f} s{dropped}) to {summary.path}, "
            f"{summary.bytes / 1e6:.2f} MB")


def record_headless(args) -> int:
    """``main.py --record OUT --steps N [--events] [--fps F]``: the window offscreen, N iterations
    sampled at F frames/s (or N step events, one frame each), written to OUT; exit 0."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(settings=None, modal_errors=False)
    window.resize(args.width, args.height)
    window.show()
    path = args.path or os.path.join(os.path.dirname(__file__), "..", "..", "resources", "examples",
                                     "spiral_mlp", "solver.prototxt")
    if not window.open_path(path, args.device):
        print(f"backprop-studio: cannot open '{path}': {window.errors.last_error}", file=sys.stderr)
        window.shutdown()
        return 1
    if args.select:
        window.select_layer(args.select)
    app.processEvents()
    recorder: Recorder = getattr(window, "recorder")  # noqa: B009 (installed by ensure_panels)
    try:
        recorder.start(args.record, args.fps, None, per_event=args.events)
        if args.events:
            for _ in range(args.steps):
                window.step_event()
                window.wait_until_idle(60)
        elif args.steps:
            window.step_iterations(args.steps)
            window.wait_until_idle(600)
        window.refresh()
        app.processEvents()
        recorder.grab(wait=True)  # the end state
        summary = recorder.stop()
    except Exception as exc:
        print(f"backprop-studio: recording failed: {' '.join(str(exc).split())}", file=sys.stderr)
        window.shutdown()
        return 1
    window.shutdown()
    if summary is not None:
        print(describe(summary))
    return 0
