"""The main window: layer graph, inspector, curves and solver panel as dock
widgets around the stepping controls; the File and Examples menus; the status bar.

The window never touches the solver while the worker runs: it asks the worker
to step, and draws the frames the worker copies out (see gui.worker). Loading,
Reset, device switches and solver edits happen while the worker is idle, under
the session's lock. What the session (the model) says changed reaches the
window as typed events (gui.model.events): a loaded net rebuilds the views, a
rewound / moved / re-weighted state redraws them; the window hands each frame
to the session (``apply_frame`` → ``session.show_frame``) and paces the worker by
what drawing it cost; every panel, the status bar and the banner draw the frame
themselves from the session's FrameReady event.
"""
from __future__ import annotations

import collections
import os
import statistics
import time

from PySide6.QtCore import QAbstractEventDispatcher, QEvent, QEventLoop, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine import resources
from gui.errors import ErrorReporter
from gui.model.events import NetLoaded, StateChanged
from gui.model.session import Session
from gui.model.solver_process import ProcessLane, make_order
from gui.views.consent_dialog import install as install_python_layer_consent
from gui.views.controls import Controls, gpu_availability
from gui.views.dataset_panel import DatasetPanel
from gui.views.graph import GraphView
from gui.views.solver_panel import SolverPanel
from gui.views.status_readout import StatusReadout
from gui.views.stop_banner import StopBanner
from gui.worker import Frame, start_worker, stop_worker

MAX_RECENT = 8
KEPT = "The net that was loaded before stays loaded."


#: The worker waits for a frame's repaint at most this long (ms).
FRAME_WAIT_MS = 250
#: While running, the iteration count and progress are shown this often (ms), frames or not.
TICK_MS = 200


class MainWindow(QMainWindow):
    """Backprop Studio's window. ``settings``: where the layout and recent files are
    remembered (None: nowhere, as in tests). ``modal_errors=False`` shows error
    dialogs without blocking (tests read ``errors.last_error``). ``lazy_panels``: the
    inspector and curves (pyqtgraph, the slow part to import and build) are built
    just after the window first shows, so the app is on screen and steppable at
    once; they then draw the session's latest frame.
    ``metrics_file``: the curves keep full resolution in a temporary file (the app's
    long runs; memory holds a bounded, thinned copy either way)."""

    def __init__(self, session: Session | None = None, *, settings: QSettings | None = None,
                 modal_errors: bool = True, lazy_panels: bool = False, process_runs: bool = False,
                 metrics_file: bool = False):
        super().__init__()
        self.session = session or Session()
        if metrics_file:
            self.session.metrics.start_spool()
        self.settings = settings
        self.errors = ErrorReporter(self, modal=modal_errors)
        self.worker, self._thread = start_worker(self.session)
        if process_runs:  # issue 7: runs step in a process of their own (see gui.model.solver_process)
            self.worker.process_lane = ProcessLane()
        self.controls = Controls(self)
        self.controls.follow(self.session)
        self.inspector = None  # built by ensure_panels()
        self.curves = None
        self.graph = GraphView()
        self.graph.follow(self.session)  # draws each net loaded (before the window's own NetLoaded work)
        self.solver_panel = SolverPanel(self.session)
        self.dataset_panel = DatasetPanel(self.regenerate_data)
        self.dataset_panel.follow(self.session)
        self.frames_drawn = 0
        self._running = False
        self._frame_costs: collections.deque[float] = collections.deque(maxlen=5)  # GUI CPU s per frame
        self._last_frame_cpu: float | None = None
        self._discard_next_cost = False
        self._run_goal = (0, 0)  # (iteration at the start of the run, iterations asked for; 0: until paused)
        self._ticker = QTimer(self)
        self._ticker.setInterval(TICK_MS)
        self._ticker.timeout.connect(self._tick)
        self._frame_state: str | None = None  # None, "applied" (worker waits), "painted"
        self._frame_serial = 0
        self.setWindowTitle("Backprop Studio")
        self.resize(1600, 1000)
        self._build_central()
        self._build_docks()
        self._build_toolbar_and_menus()
        install_python_layer_consent(self)  # the consent dialog, File ▸ Python layer folders
        self._build_status_bar()
        self._connect()
        if settings is not None:
            self._restore_layout()
        if lazy_panels:
            QTimer.singleShot(50, self.ensure_panels)  # after the first paint
        else:
            self.ensure_panels()

    # -- building ------------------------------------------------------
    def _build_central(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        self.banner = StopBanner()
        self.banner.follow(self.session)
        layout.addWidget(self.banner)
        self._inspector_slot = QLabel("Building the inspector…")
        self._inspector_slot.setAlignment(Qt.AlignCenter)
        layout.addWidget(self._inspector_slot, 1)
        self._central_layout = layout
        self.setCentralWidget(central)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.graph_dock = self._dock("Layer graph", "graphDock", self.graph, Qt.LeftDockWidgetArea)
        self.solver_dock = self._dock("Solver", "solverDock", self.solver_panel, Qt.RightDockWidgetArea)
        self.curves_dock = self._dock("Curves", "curvesDock", QLabel("Building the curves…"),
                                      Qt.BottomDockWidgetArea)
        self.dataset_dock = self._dock("Dataset", "datasetDock", self.dataset_panel, Qt.RightDockWidgetArea)
        self.tabifyDockWidget(self.solver_dock, self.dataset_dock)
        self.solver_dock.raise_()
        self.resizeDocks([self.graph_dock, self.solver_dock], [400, 300], Qt.Horizontal)
        self.resizeDocks([self.curves_dock], [300], Qt.Vertical)

    def _build_toolbar_and_menus(self) -> None:
        toolbar = QToolBar("Controls")
        toolbar.setObjectName("controlsToolbar")
        self.controls.fill_toolbar(toolbar)
        self.addToolBar(Qt.TopToolBarArea, toolbar)
        self.toolbar = toolbar
        menu = self.menuBar()
        self.file_menu = menu.addMenu("&File")
        self.open_action = self._menu_action(self.file_menu, "&Open prototxt…", QKeySequence.Open,
                                             self._ask_open)
        self.weights_action = self._menu_action(self.file_menu, "Open &weights…", "Ctrl+Shift+O",
                                                self._ask_weights)
        self.recent_menu = self.file_menu.addMenu("Recent files")
        self.file_menu.addSeparator()
        self.snapshot_action = self._menu_action(self.file_menu, "&Save snapshot…", QKeySequence.Save,
                                                 self._ask_snapshot)
        self.export_png_action = self._menu_action(self.file_menu, "Export heatmaps (PNG)…", None,
                                                   self._ask_export_png)
        self.export_csv_action = self._menu_action(self.file_menu, "Export curves (CSV)…", None,
                                                   self._ask_export_csv)
        self.file_menu.addSeparator()
        self._menu_action(self.file_menu, "&Quit", QKeySequence.Quit, self.close)
        self.examples_menu = menu.addMenu("&Examples")
        for name, path in resources.examples().items():
            action = self.examples_menu.addAction(name)
            action.setToolTip(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        self.run_menu = menu.addMenu("&Run")
        self.controls.fill_menu(self.run_menu)
        self.continue_action = self._menu_action(self.run_menu, "Continue past max_iter", None,
                                                 lambda: self.run(past_max_iter=True))
        self.view_menu = menu.addMenu("&View")
        for dock in (self.graph_dock, self.curves_dock, self.solver_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self.grid_action = self._menu_action(self.view_menu, "All InnerProduct layers (grid)", "Ctrl+G",
                                             self._toggle_grid)
        self.grid_action.setCheckable(True)
        self._refresh_recent_menu()

    def _toggle_grid(self) -> None:
        self.ensure_panels()
        self.inspector_pages.show_inner_products()
        self.inspector.set_grid_mode(self.grid_action.isChecked())

    def _menu_action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda checked=False: slot())
        menu.addAction(action)
        return action

    def _build_status_bar(self) -> None:
        self.status = StatusReadout(self.statusBar())
        self.status.follow(self.session)
        self.status_labels = self.status.labels

    def _connect(self) -> None:
        c = self.controls
        c.step_iteration.triggered.connect(lambda: self.step_iterations(1))
        c.step_event.triggered.connect(self.step_event)
        c.run_pause.triggered.connect(self.toggle_run)
        c.run_n.triggered.connect(lambda: self.step_iterations(c.count.value()))
        c.reset.triggered.connect(self.reset)
        c.speed.currentTextChanged.connect(lambda _: setattr(self.worker, "speed_limit", c.speed_limit))
        c.cpu.triggered.connect(lambda: self.set_device("cpu"))
        c.gpu.triggered.connect(lambda: self.set_device("gpu"))
        self.worker.frameReady.connect(self._on_frame_ready, Qt.QueuedConnection)
        self.worker.runFinished.connect(self._on_run_finished, Qt.QueuedConnection)
        self.worker.runStarted.connect(self._on_run_started, Qt.QueuedConnection)
        self.worker.failed.connect(self._on_worker_failed, Qt.QueuedConnection)
        self.worker.processLost.connect(self._on_process_lost, Qt.QueuedConnection)
        self._watch_event_loop()
        self.graph.layerSelected.connect(self._on_graph_selected)
        self.session.emitter.connect(self._on_net_loaded, NetLoaded)
        self.session.emitter.connect(self._on_state_changed, StateChanged)
        self.solver_panel.invalid.connect(lambda message: self.statusBar().showMessage(message, 6000))
        self.solver_panel.edited.connect(self._on_solver_edited)

    def ensure_panels(self) -> None:
        """Build the inspector and the curves (imports pyqtgraph) if not built yet."""
        if self.inspector is not None:
            return
        from gui.views.curves import CurvesPanel
        from gui.views.inspector_area import InspectorArea
        self.inspector_pages = InspectorArea(self.session)  # issue 13/14: any other layer, the data batch
        self.inspector = self.inspector_pages.inspector
        self.layer_inspector = self.inspector_pages.layer_inspector
        self.data_view = self.inspector_pages.data_view
        self.curves = CurvesPanel(self.session.metrics)
        self.curves.follow(self.session)
        self._central_layout.replaceWidget(self._inspector_slot, self.inspector_pages)
        self._inspector_slot.deleteLater()
        self.curves_dock.widget().deleteLater()
        self.curves_dock.setWidget(self.curves)
        self.inspector.layerSelected.connect(  # only while the InnerProduct page is the one shown
            lambda name: self.inspector_pages.currentWidget() is self.inspector and self.graph.select(name))
        self.inspector_pages.follow()  # draws the session's latest frame, if one came before
        if self.graph.selected:
            self.inspector.select_layer(self.graph.selected)
        self.curves.redraw()
        from gui.debug import install as install_debugger  # issue 6: debugger docks, Debug menu, Step Back
        install_debugger(self)
        from gui.views.layouts import install as install_layouts  # issue 16: View ▸ Layout, on-screen rules
        install_layouts(self)
        from gui.views.sample_share import install as install_sample_share  # issue 17
        self.sample_share = install_sample_share(self)
        from gui.views.recording import install as install_recorder  # issue 17: File ▸ Record
        install_recorder(self)
        from gui.views.branches import install as install_branches  # issue 17: branching runs
        install_branches(self)
        from gui.views.net_builder import install as install_net_builder  # issue 17: net builder
        install_net_builder(self)
        from gui.views.drawn_data import install as install_drawn_data  # issue 17: drawn data
        install_drawn_data(self)

    # -- files ---------------------------------------------------------
    def open_path(self, path: str, device: str | None = None) -> bool:
        """Open a solver or net prototxt; on failure show why and keep the current net."""
        self._stop_and_wait()
        try:
            self.session.load(path, device)
        except Exception as exc:  # the engine's clear message (or a missing file)
            kept = KEPT if self.session.solver is not None else ""
            self.errors.report_exception(f"Could not open {os.path.basename(path)}", exc, kept)
            return False
        self._remember_recent(os.path.abspath(path))
        return True

    def open_weights(self, path: str) -> bool:
        """Copy weights from a .caffemodel(.h5) into the net."""
        self._stop_and_wait()
        try:
            self.session.load_weights(path)
        except Exception as exc:
            self.errors.report_exception(f"Could not load weights {os.path.basename(path)}", exc,
                                         "The weights the net had stay in place.")
            return False
        self.statusBar().showMessage(f"Weights loaded from {path}", 6000)
        return True

    def save_snapshot(self, prefix: str) -> list[str]:
        self._stop_and_wait()
        try:
            paths = self.session.save_snapshot(prefix)
        except Exception as exc:
            self.errors.report_exception("Could not save the snapshot", exc)
            return []
        self.statusBar().showMessage("Saved " + ", ".join(paths), 8000)
        return paths

    def export_heatmaps(self, folder: str) -> list[str]:
        self.ensure_panels()
        try:
            paths = self.inspector.export_png(folder)
        except Exception as exc:
            self.errors.report_exception("Could not export the heatmaps", exc)
            return []
        self.statusBar().showMessage(f"Exported {len(paths)} heatmap(s) to {folder}", 8000)
        return paths

    def export_curves(self, path: str) -> bool:
        self.ensure_panels()
        try:
            self.curves.to_csv(path)
        except Exception as exc:
            self.errors.report_exception("Could not export the curves", exc)
            return False
        self.statusBar().showMessage(f"Curves written to {path}", 8000)
        return True

    def _start_folder(self) -> str:
        path = self.session.path
        return os.path.dirname(path) if path else os.getcwd()

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open solver or net prototxt", self._start_folder(),
                                              "Prototxt (*.prototxt *.pbtxt *.txt);;All files (*)")
        if path:
            self.open_path(path)

    def _ask_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open weights", self._start_folder(),
                                              "Caffe weights (*.caffemodel *.caffemodel.h5 *.h5);;All files (*)")
        if path:
            self.open_weights(path)

    def _ask_snapshot(self) -> None:
        solver = self.session.solver
        default = os.path.join(self._start_folder(), solver.param.snapshot_prefix or "snapshot")
        from engine.snapshot_location import relocate  # a shipped example's folder is read-only input
        default = relocate(default, self._start_folder())
        prefix, _ = QFileDialog.getSaveFileName(self, "Save snapshot (file name prefix)", default)
        if prefix:
            self.save_snapshot(prefix)

    def _ask_export_png(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export heatmaps to folder", self._start_folder())
        if folder:
            self.export_heatmaps(folder)

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export curves", os.path.join(self._start_folder(),
                                              "curves.csv"), "CSV (*.csv)")
        if path:
            self.export_curves(path)

    # -- recent files --------------------------------------------------
    def recent_files(self) -> list[str]:
        if self.settings is None:
            return list(getattr(self, "_recent", []))
        value = self.settings.value("recentFiles", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember_recent(self, path: str) -> None:
        files = [path] + [p for p in self.recent_files() if p != path]
        files = files[:MAX_RECENT]
        if self.settings is None:
            self._recent = files
        else:
            self.settings.setValue("recentFiles", files)
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(files))

    # -- layout memory -------------------------------------------------
    def _restore_layout(self) -> None:
        """The saved layout, adapted to this screen (gui.views.layouts)."""
        from gui.views.layouts import restore_window_layout
        restore_window_layout(self, self.settings)

    def closeEvent(self, event) -> None:
        if self.settings is not None:
            from gui.views.layouts import save_window_layout
            save_window_layout(self, self.settings)
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._thread is not None:
            QAbstractEventDispatcher.instance().aboutToBlock.disconnect(self._on_event_loop_idle)
            stop_worker(self.worker, self._thread)
            self._thread = None
            self.session.metrics.close()

    # -- stepping ------------------------------------------------------
    def step_iterations(self, count: int = 1) -> None:
        """What Step (count 1), Run N and ``--screenshot --steps N`` do: run ``count``
        iterations in the worker (an iteration half stepped through is finished first)."""
        if self.session.solver is None or self._running:
            return
        if count > 1:
            self._run_goal = (self.session.iteration, count)
            self._set_running(True)
        self.worker.request_run(count)

    def step_event(self) -> None:
        """Forward or backward of the next layer, or the update stage."""
        if self.session.solver is None or self._running:
            return
        self.worker.request_event()

    def toggle_run(self) -> None:
        if self._running:
            self.pause()
        else:
            self.run()

    def run(self, past_max_iter: bool = False) -> None:
        """Run until paused, or until the solver's ``max_iter`` as Caffe's Solve
        (``past_max_iter``: Run ▸ Continue past max_iter, until paused)."""
        if self.session.solver is None:
            return
        from gui.model.runner import iterations_to_max_iter, max_iter_message
        max_iter = self.session.solver.param.max_iter
        count = 0 if past_max_iter else max(0, iterations_to_max_iter(self.session.iteration, max_iter))
        if not past_max_iter and count == 0 and max_iter > 0:
            self.statusBar().showMessage(max_iter_message(self.session.iteration, max_iter), 15000)
            self.controls.set_running(False)  # the Run button the user just checked springs back
            return
        self._stops_at_max_iter = max_iter if count else 0
        self._run_goal = (self.session.iteration, count)
        self._set_running(True)
        self.worker.request_run(count)

    def pause(self) -> None:
        """Stop within one iteration."""
        self.worker.pause()

    def regenerate_data(self, **changes) -> None:
        """New built-in dataset settings: rebuild the net on the regenerated data."""
        self._stop_and_wait()
        try:
            self.session.regenerate_data(**changes)
        except Exception as exc:
            self.errors.report_exception("Could not regenerate the dataset", exc, KEPT)

    def reset(self) -> None:
        """Re-initialise the weights from the fillers and the seed (iteration 0)."""
        self._stop_and_wait()
        try:
            self.session.reset()
        except Exception as exc:
            self.errors.report_exception("Could not reset the solver", exc, KEPT)

    def set_device(self, device: str) -> bool:
        """Move the whole state to 'cpu' or 'gpu', keeping the iteration."""
        self._stop_and_wait()
        if self.session.solver is None or device == self.session.device:
            self.controls.show_device(self.session.device)
            return True
        if device == "gpu":
            ok, why = gpu_availability(probe=True)
            if not ok:
                self.controls.disable_gpu(why)
        try:
            self.session.move_to(device)
        except Exception as exc:
            self.errors.report_exception("Could not switch to the " + device.upper(), exc,
                                         f"The net stays on the {self.session.device.upper()}.")
            self.controls.show_device(self.session.device)  # the choice the user clicked springs back
            return False
        return True

    def _stop_and_wait(self) -> None:
        self.worker.pause()
        self.worker.wait_idle()
        frame = self.worker.take_frame()
        if frame is not None:
            self.apply_frame(frame)

    def _set_running(self, running: bool) -> None:
        """The run status is the session's: the controls, the solver panel and the curves
        follow its RunStatus; the window keeps only its ticker."""
        self._running = running
        self.session.set_running(running)
        if running:
            self._ticker.start()
        else:
            self._ticker.stop()

    def _tick(self) -> None:
        """While running, between frames (one a second when a run stays in the thread): the iteration
        count and the Run N progress, read without the session lock (two integers), so the
        window shows progress at a cost of well under 1% of the time."""
        iteration = self.worker.iteration
        start, count = self._run_goal
        self.session.report_progress(iteration, min(count, max(0, iteration - start)) if count else 0, count)

    def _on_run_finished(self) -> None:
        if self.worker.notice:
            self.statusBar().showMessage(f"Ran in the window's thread: {self.worker.notice}", 8000)
            self.worker.notice = ""
        if not self.worker.busy:
            self._set_running(False)
            max_iter = getattr(self, "_stops_at_max_iter", 0)
            self._stops_at_max_iter = 0
            if max_iter and self.session.solver is not None and self.session.iteration >= max_iter:
                from gui.model.runner import max_iter_message
                self.statusBar().showMessage(max_iter_message(self.session.iteration, max_iter), 15000)

    def wait_until_idle(self, timeout: float = 60.0) -> bool:
        """Run the event loop until the worker is idle and its last frame is drawn."""
        loop = QEventLoop()
        deadline = time.perf_counter() + timeout
        timer = QTimer()
        timer.setInterval(5)

        def check() -> None:
            if (not self.worker.busy and not self.worker.frame_pending) or time.perf_counter() > deadline:
                loop.quit()
        timer.timeout.connect(check)
        timer.start()
        check()
        if self.worker.busy or self.worker.frame_pending:
            loop.exec()
        timer.stop()
        QApplication.instance().processEvents()
        return not self.worker.busy and not self.worker.frame_pending

    # -- the model's events (GUI thread) ---------------------------------------
    def _on_net_loaded(self, _event: NetLoaded) -> None:
        self._after_load()

    def _on_state_changed(self, _event: StateChanged) -> None:
        """Rewound, weights loaded or edited, moved: draw the state now current."""
        self.refresh()

    # -- drawing -------------------------------------------------------
    def _after_load(self) -> None:
        self.worker.forget_rate()  # the graph, the dataset panel and the curves follow NetLoaded themselves
        if self.inspector is not None:  # the graph marks the layer the inspector now shows
            self.graph.select(self.inspector.selected_layer())
        name = os.path.basename(os.path.dirname(self.session.path)) if self.session.path else "net"
        self.setWindowTitle(f"Backprop Studio — {name} ({os.path.basename(self.session.path or '')})")
        self.refresh()
        if self.worker.process_lane is not None:  # the solver process builds it now: Run starts at once
            self.worker.process_lane.prepare(make_order(self.session, 0, None, state=False))

    def refresh(self) -> None:
        """Draw the current state (worker idle): a frame made on this thread under the lock."""
        if self.session.solver is None:
            return
        self.apply_frame(self.worker.make_frame())

    def _on_frame_ready(self) -> None:
        frame = self.worker.take_frame()
        if frame is not None:
            self.apply_frame(frame)

    def apply_frame(self, frame: Frame) -> None:
        """Hand one frame to the session, whose FrameReady every view draws; the time
        that takes tells the worker how often to send them."""
        self._pace_worker()
        self._begin_frame()
        self.frames_drawn += 1
        self.session.show_frame(frame)

    def _watch_event_loop(self) -> None:
        """Python runs one thread at a time, and pyqtgraph paints in Python: a GUI thread
        that must win the interpreter back from the solver for every call draws a frame
        several times slower. So the worker steps aside from the moment a frame is
        applied until the window has repainted it and the event loop goes idle."""
        QAbstractEventDispatcher.instance().aboutToBlock.connect(self._on_event_loop_idle)

    def _begin_frame(self) -> None:
        if not self.isVisible() or self.isMinimized():
            self._frame_state = None  # no repaint will come: the solver must not wait for one
            return
        self.worker.gui_busy = True
        self._frame_state = "applied"
        self._frame_serial += 1
        serial = self._frame_serial
        QTimer.singleShot(FRAME_WAIT_MS, lambda: serial == self._frame_serial and self._end_frame())

    def _end_frame(self) -> None:
        self.worker.gui_busy = False
        self._frame_state = None

    def event(self, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        handled = super().event(event)
        if event.type() == QEvent.Type.UpdateRequest and getattr(self, "_frame_state", None) == "applied":
            self._frame_state = "painted"  # the window's repaint (every dirty child) just ran
        return handled

    def _on_event_loop_idle(self) -> None:
        if self._frame_state == "painted":
            self._end_frame()

    def _on_run_started(self) -> None:
        """A run starts: what the GUI did while idle is no frame's cost, nor is the run's
        first frame (it repaints all that starting changed); the last run's costs stay
        the estimate until new ones come in."""
        self._last_frame_cpu = None
        self._discard_next_cost = True

    def _pace_worker(self) -> None:
        """Tell the worker what a frame costs: the GUI thread's CPU time since the
        previous frame (drawing it, its deferred repaints, anything else the GUI did).
        Python runs one thread at a time, so that is time the solver did not run."""
        cpu = time.thread_time()
        if self._last_frame_cpu is not None and self._discard_next_cost:
            self._discard_next_cost = False  # the run's first frame repaints everything the start changed
        elif self._last_frame_cpu is not None:
            self._frame_costs.append(cpu - self._last_frame_cpu)
            self.worker.render_cost = statistics.median(self._frame_costs)  # one slow frame is no trend
        self._last_frame_cpu = cpu

    def _on_process_lost(self, message: str) -> None:
        self.errors.report("The solver process stopped", message,
                           "The state from before that run is kept; only the run's own iterations are lost. "
                           "Runs now step in the window's own thread (the views then redraw about once a second "
                           "at full speed).")

    def _on_worker_failed(self, message: str) -> None:
        self.errors.report("The solver stopped", message, "The net stays loaded; fix the setting and step again.")

    def _on_graph_selected(self, name: str) -> None:
        self.ensure_panels()
        assert self.inspector is not None
        if self.inspector_pages.show_layer(name) and not self.worker.busy:
            self.refresh()  # frames now also copy this layer (gui.model.frames builds its LayerFrame / DataBatch)

    def select_layer(self, name: str) -> None:
        """Select layer ``name`` as a click on its node in the graph does."""
        self.graph.select(name)
        self._on_graph_selected(name)
        self.graph.select(name)  # building the panels on the way may have selected their first layer

    def _on_solver_edited(self, name: str, value) -> None:
        self.statusBar().showMessage(f"{name} = {value}: applies from the next iteration", 6000)
        if not self.worker.busy:
            self.refresh()
