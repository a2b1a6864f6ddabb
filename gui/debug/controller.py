"""Mounts the debugger and classroom panels on the main window and binds them to its session.

``install(window)`` adds (hidden) dock widgets, a Debug menu and three toolbar
actions (Step Back Shift+F10, Gradient check, Presenter mode). A step wrapper
registered with ``Session.add_step_wrapper`` records every finished iteration
for Rewind and checks the break conditions, in the worker thread under the
session's lock (``unhook_session`` removes it). Views are updated on the GUI
thread: from signals the worker thread emits (queued), or when the worker is idle.
"""
from __future__ import annotations

import re
import time

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QInputDialog, QMenu

from engine.errors import EngineError
from gui.model import breakpoints as bp
from gui.model.boundary import BoundaryModel, training_points
from gui.model.decompose import UpdateCapture, decompose, param_index
from gui.model.events import EDITED, NetLoaded, SettingChanged, StateChanged, Stopped
from gui.model.overlays import layer_stats
from gui.model.runner import run_iteration_by_events
from gui.model.tiles import image_layers, weight_tiles
from gui.model.timeline import restore
from gui.model.timing import time_solver
from gui.views.debug.boundary import BoundaryView
from gui.views.debug.breakpoints import BreakpointsPanel
from gui.views.debug.decompose import DecompositionPanel
from gui.views.debug.gradcheck import GradCheckPanel
from gui.views.debug.overlays import OverlayTable
from gui.views.debug.presenter import PresenterMode, SlowMotion
from gui.views.debug.rewind import RewindBar
from gui.views.debug.tiles import WeightTilesView
from gui.views.debug.timing import TimingPanel

#: Seconds between live redraws of the boundary / debug_info while running.
LIVE_INTERVAL = 0.25


class DebugController(QObject):
    """The debugger features of one main window (see the module doc)."""

    stopped = Signal(object)        # a breakpoints.Stop (emitted from the worker thread)
    boundaryReady = Signal(object)  # a BoundaryResult (worker thread)
    statsReady = Signal(object)     # overlays rows (worker thread)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.timeline = self.session.timeline
        self.breakpoints = self.session.breakpoints
        self.breakpoints_panel = BreakpointsPanel(self.breakpoints)
        self.rewind_bar = RewindBar(self.timeline, lambda: self.session.solver, self.session.lock,
                                    before_restore=self._prepare_restore)
        self.decomposition = DecompositionPanel()
        #: the observer that keeps what each update stage produced while that view is open
        self.update_capture = UpdateCapture()
        self.boundary = BoundaryView()
        self.timing = TimingPanel(self.time_layers)
        self.overlays = OverlayTable()
        self.gradcheck = GradCheckPanel(self._net_for_check)
        self.tiles = WeightTilesView(lambda name: weight_tiles(self.session.solver.net, name))
        self.presenter = PresenterMode(window, [window.toolbar])
        self.slow_motion = SlowMotion(self._slow_advance, pace=2.0, parent=self)
        self.boundary_model: BoundaryModel | None = None
        self.boundary_points = None
        self._live = {"boundary": False, "overlays": False, "decomposition": False, "tiles": False}
        self._last_live = 0.0
        self._skip_start: int | None = None
        self._slow_stopped_at = None
        self._build_docks()
        self._build_actions()
        self.hook_session()
        self.stopped.connect(self._on_stopped, Qt.QueuedConnection)
        self.boundaryReady.connect(self._show_boundary, Qt.QueuedConnection)
        self.statsReady.connect(self.overlays.set_rows, Qt.QueuedConnection)
        self.rewind_bar.restored.connect(lambda _p: self._after_restore())
        self.gradcheck.finished.connect(self._on_gradcheck_finished)
        #: asks the user for a weight's new value: (title, current) -> (value, ok)
        self.ask_value = lambda title, current: QInputDialog.getDouble(
            self.window, "Set weight", title, current, -1e30, 1e30, 6)
        self.overlays.colouring_changed.connect(self._paint_chips)
        self.slow_motion.stopped.connect(lambda why: self._set_slow_checked(False, why))
        window.worker.runFinished.connect(self._on_worker_idle, Qt.QueuedConnection)
        if getattr(window, "inspector", None) is not None:  # built by ensure_panels (install after it)
            window.inspector.weightEditRequested.connect(self.edit_weight_at)  # a W cell double-clicked
        if hasattr(window, "graph"):
            window.graph.layerSelected.connect(self._on_layer_selected)
            window.graph.layerMenuRequested.connect(self._on_layer_menu)
        self.session.emitter.connect(self._on_net_loaded, NetLoaded)
        self.session.emitter.connect(self._on_state_changed, StateChanged, SettingChanged)
        if self.session.solver is not None:
            self._on_loaded()

    # -- building ------------------------------------------------------
    def _dock(self, title: str, name: str, widget, area, key: str | None = None) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.window.addDockWidget(area, dock)
        dock.hide()  # shown from the Debug menu: the default layout stays as it was
        if key is not None:
            dock.visibilityChanged.connect(lambda on, k=key: self._set_live(k, on))
        return dock

    def _build_docks(self) -> None:
        right, bottom = Qt.RightDockWidgetArea, Qt.BottomDockWidgetArea
        self.docks = {
            "rewind": self._dock("Rewind", "debugRewindDock", self.rewind_bar, Qt.TopDockWidgetArea),
            "breakpoints": self._dock("Breakpoints", "debugBreakpointsDock", self.breakpoints_panel, right),
            "boundary": self._dock("Decision boundary", "debugBoundaryDock", self.boundary, right, "boundary"),
            "decomposition": self._dock("The update taken apart", "debugDecompositionDock",
                                        self.decomposition, bottom, "decomposition"),
            "overlays": self._dock("Layer statistics (debug_info)", "debugOverlaysDock", self.overlays, bottom,
                                   "overlays"),
            "timing": self._dock("Layer timing", "debugTimingDock", self.timing, bottom),
            "gradcheck": self._dock("Gradient check", "debugGradcheckDock", self.gradcheck, right),
            "tiles": self._dock("Weights as images", "debugTilesDock", self.tiles, right, "tiles"),
        }
        for a, b in (("breakpoints", "boundary"), ("boundary", "gradcheck"), ("gradcheck", "tiles")):
            self.window.tabifyDockWidget(self.docks[a], self.docks[b])
        for a, b in (("decomposition", "overlays"), ("overlays", "timing")):
            self.window.tabifyDockWidget(self.docks[a], self.docks[b])

    def _action(self, text: str, shortcut: str | None, slot, tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ApplicationShortcut)
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_actions(self) -> None:
        w = self.window
        self.step_back_action = self._action("Step Back", "Shift+F10", self.step_back,
                                             "Restore the state before the last iteration or edit (Shift+F10)")
        self.gradcheck_action = self._action("Gradient check", "Ctrl+Shift+G", self.run_gradient_check,
                                             "Compare every backward with central differences (float64)")
        self.presenter_action = self._action("Presenter mode", "F12", self.toggle_presenter,
                                             "Larger fonts and a clean theme that follows the system (F12)")
        self.presenter_action.setCheckable(True)
        self.hide_controls_action = QAction("Hide controls in presenter mode", w)
        self.hide_controls_action.setCheckable(True)
        self.hide_controls_action.toggled.connect(lambda on: setattr(self.presenter, "hide_controls", on))
        self.slow_action = self._action("Slow motion", "Ctrl+F11", self.toggle_slow_motion,
                                        "Advance step events automatically at the chosen pace")
        self.slow_action.setCheckable(True)
        self.timing_action = self._action("Layer timing", None, self.show_layer_timing,
                                          "Time every layer's forward and backward (opens the Layer timing panel)")
        toolbar = w.toolbar
        toolbar.addSeparator()
        for action in (self.step_back_action, self.gradcheck_action, self.presenter_action):
            toolbar.addAction(action)
        menu = w.menuBar().addMenu("&Debug")
        self.debug_menu = menu
        for action in (self.step_back_action, self.gradcheck_action, self.timing_action):
            menu.addAction(action)
        menu.addSeparator()
        for name, dock in self.docks.items():
            if name not in ("gradcheck", "timing"):  # their actions above open them: one entry each
                menu.addAction(dock.toggleViewAction())
        menu.addSeparator()
        menu.addAction(self.presenter_action)
        menu.addAction(self.hide_controls_action)
        menu.addAction(self.slow_action)
        pace_menu = menu.addMenu("Slow-motion pace")
        group = QActionGroup(self)
        for pace in (0.5, 1.0, 2.0, 4.0, 8.0):
            action = pace_menu.addAction(f"{pace:g} events per second")
            action.setCheckable(True)
            action.setChecked(pace == self.slow_motion.pace)
            action.triggered.connect(lambda checked=False, p=pace: self.slow_motion.set_pace(p))
            group.addAction(action)

    def show_layer_timing(self) -> None:
        """Debug ▸ Layer timing: open the panel, then time the layers (the panel shows the result)."""
        self.show_panel("timing")
        self.timing._run()

    def dock(self, name: str) -> QDockWidget:
        return self.docks[name]

    def show_panel(self, name: str) -> None:
        dock = self.docks[name]
        dock.show()
        dock.raise_()

    def _set_live(self, key: str, on: bool) -> None:
        self._live[key] = bool(on)
        if key == "decomposition":
            self._watch_update(bool(on))
        if key == "overlays" and not on:
            self._paint_chips({})
        if on and not self.window.worker.busy:
            self._on_worker_idle()

    # -- the session's stepping (worker thread) ------------------------------
    def hook_session(self) -> None:
        """Record and check every step the session takes (its step wrapper; idempotent)."""
        self.session.add_step_wrapper(self._around_step)
        self.session.add_run_hook(self)

    def unhook_session(self) -> None:
        """Stop recording and checking the session's steps."""
        self.session.remove_step_wrapper(self._around_step)
        self.session.remove_run_hook(self)

    # -- runs in the solver process (gui.model.solver_process; worker thread) ----------
    def allows_process_run(self) -> bool:
        """A run may go to the solver process unless a breakpoint (but the NaN trap,
        which the process keeps) or a live view must see each step."""
        live = self._live
        return not (self._layer_breaks() or self.breakpoints.watches_iterations() or live["boundary"]
                    or live["overlays"] or live["decomposition"])

    def process_run_options(self) -> dict:
        """Rewind keeps recording in the solver process, as it would here."""
        return {"rewind": self.timeline.recorder_settings()}

    def absorb_process_run(self, result) -> None:
        """The run's states join the rewind timeline; a NaN stop is reported as here."""
        if result.recorded is not None:
            self.timeline.append_recorded(result.recorded)
        if self.session.nonfinite is not None:
            self._report_nonfinite()

    def _around_step(self, kind: str, proceed):
        """The session's step wrapper (worker thread, session lock held)."""
        return self._step_iteration(proceed) if kind == "iteration" else self._step_event(proceed)

    def _layer_breaks(self) -> bool:
        for condition in self.breakpoints.conditions:  # a plain loop: this runs every iteration
            if condition.enabled and isinstance(condition, bp.LayerBreak):
                return True
        return False

    def _step_iteration(self, proceed) -> float:
        if self.session.solver is None:
            return float("nan")
        if self._layer_breaks():
            return self._iteration_by_events()
        began = time.perf_counter()
        loss = proceed()
        self._after_iteration(loss, time.perf_counter() - began)
        return loss

    def _step_event(self, proceed):
        session = self.session
        event = proceed()
        if event is not None and event.kind == bp.UPDATE and session.nonfinite is None:
            self._after_iteration(session.last_loss, 0.0)
        return event

    def _plain_step_event(self):
        return self.session.step_event(wrapped=False)

    def _iteration_by_events(self) -> float:
        """Run the rest of an iteration stop by stop, checking the layer breakpoints."""
        session = self.session
        net = session.solver.net
        if not session.mid_iteration:
            if self._skip_start != session.solver.iter:
                stop = self.breakpoints.check_start(net, session.solver.iter)
                if stop is not None:
                    self._skip_start = session.solver.iter
                    self._halt(stop)
                    return float("nan")
            self._skip_start = None
        began = time.perf_counter()
        event, stop = run_iteration_by_events(self._plain_step_event,
                                              lambda stop_event: self.breakpoints.check_event(stop_event, net))
        if stop is not None:
            self._halt(stop)
            return float("nan")
        if event is None:
            return float("nan")
        if event.kind == bp.NONFINITE:
            self._report_nonfinite()
            return float("nan")
        self._after_iteration(session.last_loss, time.perf_counter() - began)  # the update ended it
        return session.last_loss

    def _report_nonfinite(self) -> None:
        stop = self.session.nonfinite
        self.stopped.emit(bp.Stop(stop.message, bp.NonFinite.name, stop.iteration, stop.layer, stop.blob,
                                  stop.phase))

    def _halt(self, stop: bp.Stop) -> None:
        self.window.worker.pause()
        self.session.emitter.emit(Stopped("breakpoint", stop.reason, stop))
        self.stopped.emit(stop)

    def _after_iteration(self, loss: float, seconds: float) -> None:
        """Record the finished iteration, check the conditions, feed the live views."""
        session = self.session
        solver = session.solver
        if session.nonfinite is not None:
            self._report_nonfinite()
            return
        self._record(solver, seconds)
        if self.breakpoints.watches_iterations():  # the NaN trap works through session.nonfinite
            stop = self.breakpoints.check_iteration(bp.IterationResult(solver.iter - 1, loss))
            if stop is not None:
                self._halt(stop)
        if not (self._live["boundary"] or self._live["overlays"]):
            return
        now = time.perf_counter()
        if now - self._last_live >= LIVE_INTERVAL and self.window.worker.busy:
            self._last_live = now
            if self._live["boundary"] and self.boundary_model is not None:
                self.boundaryReady.emit(self.boundary_model.compute())
            if self._live["overlays"]:
                self.statsReady.emit(layer_stats(solver.net))

    def _record(self, solver, seconds: float) -> None:
        self.timeline.record_iteration(solver, seconds, every_iteration=self._live["decomposition"])

    # -- the model's events (GUI thread) ---------------------------------------
    def _on_net_loaded(self, _event: NetLoaded) -> None:
        self._on_loaded()

    def _on_state_changed(self, event) -> None:
        if isinstance(event, SettingChanged):
            self._on_changed("param")
        elif event.reason in ("weights", "device"):
            self._on_changed(event.reason)
        elif self.window.worker is not None and not self.window.worker.busy:
            self._on_worker_idle()  # rewound or edited: the live views follow

    def _watch_update(self, on: bool) -> None:
        """Put the update capture on the solver's observers (or take it off)."""
        solver = self.session.solver
        if solver is None:
            return
        with self.session.lock:
            watching = self.update_capture in solver.observers
            if on and not watching:
                solver.observers.append(self.update_capture)
            elif not on and watching:
                solver.observers.remove(self.update_capture)

    def _forget_previous_net(self) -> None:
        """Every panel that showed something of the net before says it has nothing yet."""
        self.update_capture.last = None
        self.gradcheck.clear()
        self.timing.clear()
        self.breakpoints_panel.show_stop(None)
        self.decomposition.show_message("Step once with this view open to see the update taken apart.")
        self.overlays.set_rows([])
        self._paint_chips({})

    def _on_loaded(self) -> None:
        solver = self.session.solver
        self._forget_previous_net()
        self._watch_update(self._live["decomposition"])
        self.timeline.clear()
        self._skip_start = None
        self.breakpoints.reset()
        if solver is None:
            return
        self.timeline.record(solver, f"loaded: iteration {solver.iter}")
        self.breakpoints_panel.set_layers([layer.name for layer in solver.net.layers])
        self.tiles.set_layers(image_layers(solver.net))
        self._build_boundary_model()
        self._on_worker_idle()

    def _build_boundary_model(self) -> None:
        solver = self.session.solver
        self.boundary_model, self.boundary_points = None, None
        try:
            self.boundary_model = BoundaryModel(solver.net)
            self.boundary_points = training_points(solver.net)
            self.boundary.clear("Decision boundary (open this view while paused or step to draw it)")
        except (EngineError, KeyError, IndexError, ValueError) as exc:
            self.boundary.clear(f"No decision boundary for this net: {exc}")

    def _on_changed(self, name: str) -> None:
        solver = self.session.solver
        if solver is None or self.session.mid_iteration:
            return
        if name == "device":
            self._build_boundary_model()
        if name == "param":  # replays must not cross a settings change: keep only full checkpoints
            self.timeline.keep_only_checkpoints()
            self.timeline.record(solver, f"settings edited at iteration {solver.iter}", checkpoint=True)
        elif name == "weights":
            self.timeline.record(solver, f"weights loaded at iteration {solver.iter}", checkpoint=True)

    # -- GUI-thread refresh ------------------------------------------------------
    def _on_worker_idle(self) -> None:
        if self.window.worker.busy or self.session.solver is None:
            return
        with self.session.lock:
            if self._live["boundary"] and self.boundary_model is not None:
                self._show_boundary(self.boundary_model.compute())
            if self._live["overlays"]:
                self.overlays.set_rows(layer_stats(self.session.solver.net))
            if self._live["decomposition"]:
                self._refresh_decomposition()
            if self._live["tiles"]:
                self.tiles.refresh()

    def _show_boundary(self, result) -> None:
        points, labels = self.boundary_points if self.boundary_points is not None else (None, None)
        self.boundary.set_result(result, points, labels)

    def selected_inner_product(self) -> str | None:
        inspector = getattr(self.window, "inspector", None)
        name = inspector.selected_layer() if inspector is not None else None
        names = [layer.name for layer in self.session.solver.net.layers if layer.type_name == "InnerProduct"]
        return name if name in names else (names[0] if names else None)

    def _refresh_decomposition(self) -> None:
        """Show the captured stages of the last finished iteration for the selected layer.
        After a rewind the iteration that led here is replayed from the checkpoint before
        it (bit for bit, as the rewind replays) so the capture sees it."""
        solver = self.session.solver
        layer = self.selected_inner_product()
        if layer is None:
            self.decomposition.show_message("No InnerProduct layer in this net: nothing to take apart.")
            return
        if self.session.mid_iteration:
            return
        captured = self.update_capture.last
        if captured is None or captured.iteration != solver.iter - 1:
            captured = self._replay_last_iteration()
        index = param_index(solver.net, layer, 0)
        if captured is None or index not in captured.arrays:
            self.decomposition.show_message(
                f"Iteration {solver.iter}: step once with this view open to take the update apart.")
            return
        self.decomposition.set_decomposition(decompose(captured, index))

    def _replay_last_iteration(self):
        """Restore the checkpoint of iteration ``iter − 1`` and step it again, watched."""
        solver = self.session.solver
        marks, position = self.timeline.marks, self.timeline.position
        if position < 1 or self.update_capture not in solver.observers:
            return None
        before = marks[position - 1]
        if before.checkpoint is None or before.iteration != solver.iter - 1 or \
                marks[position].iteration != solver.iter:
            return None
        restore(solver, before.checkpoint)
        solver.step(1)
        return self.update_capture.last

    def _on_layer_selected(self, name: str) -> None:
        if self.boundary.result is not None and name in self.boundary.result.responses:
            self.boundary.show_response(name, 0)
        elif self.boundary.result is not None:
            self.boundary.show_classes()
        if self._live["decomposition"] and not self.window.worker.busy:
            with self.session.lock:
                self._refresh_decomposition()

    def _on_stopped(self, stop: bp.Stop) -> None:
        self.breakpoints_panel.show_stop(stop)
        self.window.statusBar().showMessage(f"Stopped: {stop.reason}", 15000)
        if stop.condition != bp.NonFinite.name:  # the window shows NaN stops itself (banner)
            self.show_panel("breakpoints")
        if stop.layer and hasattr(self.window, "graph"):
            self.window.graph.select(stop.layer)
            inspector = getattr(self.window, "inspector", None)
            if inspector is not None and stop.layer in inspector.layer_names():
                inspector.select_layer(stop.layer)
        if self.slow_motion.running:
            self.slow_motion.stop(stop.reason)

    # -- overlay chips on the graph ---------------------------------------------------
    def _paint_chips(self, colours: dict) -> None:
        """The debug_info metric as a coloured disc on each node (legend and numbers in
        the Layer statistics panel)."""
        graph = getattr(self.window, "graph", None)
        if graph is None:
            return
        rows = {r.layer: r for r in self.overlays.model.rows}
        key = self.overlays.model.colour_key
        tips = {}
        for name, row in rows.items():
            value = row.metric(key)
            tips[name] = f"{name}: {key} = {value:.4g}" if value is not None else name
        graph.set_chips(colours, tips)

    # -- double-click a weight to set it (the inspector's weightEditRequested) ----------
    def edit_weight_at(self, layer: str, row: int, col: int) -> bool:
        """Ask for a new value of W[row, col] of ``layer`` (paused only) and set it."""
        if self.session.solver is None:
            return False
        if self.window.worker.busy:
            self.window.statusBar().showMessage("Pause to edit a weight", 6000)
            return False
        W = self.session.solver.net.params[layer][0]
        current = float(W.data[row, col].item())  # one explicit read (the data may be on the GPU)
        value, ok = self.ask_value(f"{layer}: W[{row}, {col}] (weight from input {col} to output {row})",
                                   current)
        if not ok:
            return False
        self.edit_weight(layer, 0, (row, col), value)
        self.window.statusBar().showMessage(
            f"{layer} W[{row}, {col}]: {current:g} → {value:g} (Step Back undoes it)", 8000)
        return True

    # -- the graph's context menu ---------------------------------------------------
    def layer_menu(self, name: str) -> QMenu:
        """Per-layer debugging actions: breakpoints, gradient check, response maps."""
        menu = QMenu(self.window.graph)
        menu.addSection(name)
        forward = menu.addAction(f"Stop before the forward of {name}")
        forward.triggered.connect(lambda: self._add_layer_break(name, bp.FORWARD))
        solver = self.session.solver
        index = solver.net.layer_index(name) if solver is not None else -1
        if index >= 0 and solver.net.layer_need_backward[index]:
            backward = menu.addAction(f"Stop before the backward of {name}")
            backward.triggered.connect(lambda: self._add_layer_break(name, bp.BACKWARD))
            check = menu.addAction(f"Gradient check {name}")
            check.triggered.connect(lambda: self.run_gradient_check([name]))
        if self.boundary.result is not None and name in self.boundary.result.responses:
            show = menu.addAction(f"Show {name}'s units over the input plane")
            show.triggered.connect(lambda: (self.show_panel("boundary"), self.boundary.show_response(name, 0)))
        return menu

    def _add_layer_break(self, name: str, phase: str) -> None:
        self.breakpoints_panel.add_layer_breakpoint(name, phase)
        self.show_panel("breakpoints")

    def _on_layer_menu(self, name: str, global_pos) -> None:
        """A node's context menu: break at it, check its gradient, time it (graph's request)."""
        if self.session.solver is not None:
            self.layer_menu(name).exec(global_pos)

    # -- actions -------------------------------------------------------------------
    def _pause_and_wait(self) -> None:
        self.slow_motion.stop("paused")
        self.window.pause()
        self.window.worker.wait_idle()

    def _prepare_restore(self) -> None:
        """Before a restore: no run, no half-done iteration, no NaN stop."""
        self._pause_and_wait()
        with self.session.lock:
            self.session.events = None
            self.session.last_event = None
            self.session.nonfinite = None

    def _after_restore(self) -> None:
        self._skip_start = None
        self.session.changed("rewound", rewound=True)  # the views follow (StateChanged)
        solver = self.session.solver
        self.window.statusBar().showMessage(f"Rewound to iteration {solver.iter}", 6000)

    def step_back(self) -> bool:
        """Shift+F10: undo a half-done iteration, else the last iteration or edit."""
        if self.session.solver is None:
            return False
        self._pause_and_wait()
        with self.session.lock:
            mid = self.session.mid_iteration
            target = self.timeline.position if mid else self.timeline.position - 1
            if target < 0:
                self.window.statusBar().showMessage("Nothing to step back to: the history is empty", 6000)
                return False
            self.session.events = None
            self.session.last_event = None
            self.session.nonfinite = None
            undone = self.timeline.marks[self.timeline.position].label if not mid else ""
            self.timeline.goto(self.session.solver, target)
        self._after_restore()
        edit = undone_edit_words(undone)
        if edit:
            self.window.statusBar().showMessage(f"Undid the edit of {edit}", 6000)
        return True

    def edit_weight(self, layer: str, j: int, index: tuple, value: float) -> None:
        """Set one weight while paused; recorded so Step Back undoes it."""
        self._prepare_restore()
        with self.session.lock:
            solver = self.session.solver
            self.timeline.edit_weight(solver, param_index(solver.net, layer, j), index, value)
        self.session.changed(EDITED)

    def time_layers(self, iterations: int):
        self._pause_and_wait()
        with self.session.lock:
            return time_solver(self.session.solver, iterations)

    def _net_for_check(self):
        self._pause_and_wait()
        return self.session.solver.net

    def run_gradient_check(self, layers: list[str] | None = None):
        self.show_panel("gradcheck")
        return self.gradcheck.start(layers)

    def _on_gradcheck_finished(self, report) -> None:
        graph = getattr(self.window, "graph", None)
        failed = report.failed_layers
        if graph is not None:
            graph.set_nonfinite(failed[0] if failed else None,
                                f"gradient check failed: {', '.join(failed)}" if failed else "")
        self.window.statusBar().showMessage(
            "Gradient check: " + (f"FAILED in {', '.join(failed)}" if failed else "every backward agrees"), 15000)

    def toggle_presenter(self) -> None:
        self.presenter.set_enabled(not self.presenter.on)
        self.presenter_action.setChecked(self.presenter.on)

    def toggle_slow_motion(self) -> None:
        if self.slow_motion.running:
            self.slow_motion.stop("paused")
        else:
            self.window.pause()
            self.slow_motion.start()
            self._set_slow_checked(True)

    def _set_slow_checked(self, on: bool, why: str = "") -> None:
        self.slow_action.setChecked(on)
        if not on and why and why != "paused":
            self.window.statusBar().showMessage(f"Slow motion stopped: {why}", 10000)

    def _slow_advance(self):
        """One slow-motion tick: stop on a NaN or a layer breakpoint, else ask for the next event."""
        session = self.session
        if self.window.worker.busy:
            return True  # the last event is still being computed
        if session.nonfinite is not None:
            self.slow_motion.stop(session.nonfinite.message)
            return True
        event = session.last_event
        if event is not None and session.mid_iteration and session.solver is not None:
            stop = self.breakpoints.check_event(event, session.solver.net)
            if stop is not None and event is not self._slow_stopped_at:
                self._slow_stopped_at = event  # resuming from here passes this breakpoint
                self.breakpoints_panel.show_stop(stop)
                self.slow_motion.stop(stop.reason)
                return True
        self.window.step_event()
        return True


def undone_edit_words(label: str) -> str:
    """``"ip1 W[2, 3]"`` for a timeline mark of a weight edit (``edit ip1.0[2, 3]: …``), else ""."""
    match = re.match(r"edit (.+)\.(\d+)\[(.*?)\]:", label or "")
    if match is None:
        return ""
    layer, j, index = match.groups()
    which = {"0": "W", "1": "b"}.get(j, f"param {j}")
    return f"{layer} {which}[{index}]"


def install(window) -> DebugController:
    """Mount the debugger panels and actions on ``window`` (idempotent)."""
    controller = getattr(window, "debug", None)
    if isinstance(controller, DebugController):
        return controller
    controller = DebugController(window)
    window.debug = controller
    return controller
