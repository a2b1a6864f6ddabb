"""The app's model, free of Qt (napari-style): the one owner of the app's state.

A :class:`Session` holds the engine solver, the step-through generator of the
iteration in progress, the training curves (:class:`gui.model.metrics.Metrics`)
and the last event, and tells the views what changed with typed events
(``session.emitter``, :mod:`gui.model.events`). The worker thread calls the
stepping methods; the GUI thread calls the others while the worker is idle.
Every method that touches the solver holds ``session.lock`` so the two never
interleave.
"""
from __future__ import annotations

import functools
import math
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

import engine
from engine.errors import NetDefinitionError, NonFiniteError, PrototxtError
from engine.events import BACKWARD, FORWARD, ITERATION_END, NONFINITE, TEST, UPDATE, Event
from engine.proto import caffe_pb2
from engine.prototxt import parse_net, parse_solver, resolve_path
from gui.model import frames
from gui.model.breakpoints import Breakpoints
from gui.model.events import (
    DEVICE,
    REWOUND,
    WEIGHTS,
    EventEmitter,
    FrameReady,
    NetLoaded,
    RunProgress,
    RunStatus,
    SettingChanged,
    StateChanged,
    Stopped,
)
from gui.model.metrics import Metrics
from gui.model.python_consent import PythonLayerConsent
from gui.model.runner import run_iteration_by_events
from gui.model.timeline import Timeline

#: The event kinds at which "Step event" stops (the rest are passed through).
STOP_KINDS = (FORWARD, BACKWARD, UPDATE, NONFINITE)

#: Editable solver fields and their Python types (the solver panel's fields).
EDITABLE_FIELDS = {
    "type": str, "base_lr": float, "lr_policy": str, "gamma": float, "power": float,
    "stepsize": int, "stepvalue": list, "max_iter": int, "momentum": float, "momentum2": float,
    "delta": float, "rms_decay": float, "weight_decay": float, "regularization_type": str,
    "clip_gradients": float,
}

SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")

#: ``wrapper(kind, proceed)`` run around each step (see :meth:`Session.add_step_wrapper`).
StepWrapper = Callable[[str, Callable[[], object]], object]


@dataclass
class NonFiniteStop:
    """Where the step-through (or a step) stopped on NaN/inf."""

    iteration: int
    layer: str
    blob: str
    phase: str
    message: str


def default_solver_param(net_path: str) -> caffe_pb2.SolverParameter:
    """Plain SGD for a net prototxt opened on its own (base_lr 0.01, momentum 0.9, fixed)."""
    param = caffe_pb2.SolverParameter()
    param.net = os.path.abspath(net_path)
    param.type = "SGD"
    param.base_lr = 0.01
    param.momentum = 0.9
    param.lr_policy = "fixed"
    param.max_iter = 10000
    param.snapshot_prefix = os.path.splitext(os.path.basename(net_path))[0]
    return param


def _error_line(error: PrototxtError) -> int:
    """The line number a prototxt parse error names (0 if none)."""
    match = re.search(r":(\d+):(\d+): ", str(error))
    return int(match.group(1)) if match else 0


def solver_source(path: str) -> caffe_pb2.SolverParameter | str:
    """What to build a solver from: the solver prototxt's path, or a default
    SolverParameter when ``path`` holds a net prototxt.

    Both parsers are tried; when both fail, the error of the one that got further
    into the file is raised (that is the kind of file the user meant).
    """
    try:
        solver_param, _ = parse_solver(path)
        solver_error = None
    except PrototxtError as exc:
        solver_param, solver_error = None, exc
    if solver_param is not None and _names_a_net(solver_param):
        return path
    try:
        net_param, _ = parse_net(path)
    except PrototxtError as net_error:
        if solver_error is None:
            return path  # a solver with no net: let the engine say so
        raise (net_error if _error_line(net_error) >= _error_line(solver_error) else solver_error) from None
    if not net_param.layer and not net_param.input and solver_error is None:
        return path
    return default_solver_param(path)


def _names_a_net(param: caffe_pb2.SolverParameter) -> bool:
    return any(param.HasField(f) for f in ("net", "net_param", "train_net", "train_net_param"))


def build_solver(path: str, device: str = "cpu", python_layers=None):
    """An engine solver from a solver prototxt, or from a net prototxt with plain SGD;
    ``python_layers``: the folders its Python layers may come from (engine.python_layers)."""
    return engine.get_solver(solver_source(os.fspath(path)), device=device, python_layers=python_layers)


#: Test passes the engine solver keeps after the session recorded them (the metrics hold them all).
KEEP_TEST_SCORES = 16


class Session:
    """The solver being studied and everything the views need to know about it.

    ``emitter`` sends the typed events of :mod:`gui.model.events`: NetLoaded (open,
    Reset, regenerated data), StateChanged (rewound, weights, device, edited),
    SettingChanged, Stopped (NaN/inf; emitted on the stepping thread), RunStatus
    (``running``), and
    FrameReady with the state to draw (``frame``, the latest; which layers beyond
    the InnerProduct ones it copies: ``frame_layers``).
    """

    def __init__(self) -> None:
        self.solver: Any = None  # an engine.solver.Solver once a net is loaded
        self.path: str | None = None
        self.source_param: caffe_pb2.SolverParameter | None = None
        self.source_path: str | None = None
        self.metrics = Metrics()  # the curves; the same object for every net (cleared on load)
        self.timeline = Timeline()  # the rewind timeline (recorded by the debugger's step wrapper)
        self.breakpoints = Breakpoints()  # the break conditions (checked by the debugger's step wrapper)
        self.emitter = EventEmitter()
        self.events: Any = None  # the generator of the iteration being stepped through
        self.last_event: Event | None = None
        self.last_loss = float("nan")
        self.nonfinite: NonFiniteStop | None = None
        self.pending_edits: dict[str, object] = {}
        self.frame: frames.Frame | None = None  # the latest frame drawn (show_frame)
        self.running = False  # a run the window started is going (set_running)
        #: the layers frames copy (None: every InnerProduct layer; the inspector adds its selection)
        self.frame_layers: list[str] | None = None
        self.lock = threading.RLock()
        self._step_wrappers: list[StepWrapper] = []  # see add_step_wrapper
        self.run_hooks: list = []  # see add_run_hook
        #: asks the user before a net's Python layer runs code (the window gives it its dialog)
        self.python_consent = PythonLayerConsent()

    # -- loading -------------------------------------------------------
    @property
    def device(self) -> str:
        return self.solver.device if self.solver is not None else "cpu"

    @property
    def iteration(self) -> int:
        return self.solver.iter if self.solver is not None else 0

    @property
    def mid_iteration(self) -> bool:
        """True while a step-through iteration has started but not finished."""
        return self.events is not None

    def load(self, path: str, device: str | None = None) -> None:
        """Open a solver or net prototxt. On error the current solver stays loaded."""
        solver = self.python_consent.build(lambda access: build_solver(path, device or self.device, access))
        self._install(solver, path)

    def _install(self, solver, path: str | None, reason: str = "opened") -> None:
        with self.lock:
            frames.prepare_for_inspection(solver)
            solver.check_finite = True
            self.solver = solver
            self.path = os.path.abspath(path) if path else None
            self.metrics.clear()
            self.events = None
            self.last_event = None
            self.last_loss = float("nan")
            self.nonfinite = None
            self.pending_edits = {}
            self.frame = None
            self.frame_layers = None
        self.emitter.emit(NetLoaded(solver, self.path, reason))

    def install_solver(self, solver, reason: str = "edited") -> None:
        """Put a solver built elsewhere in place (the net builder's rebuilt net), as a load."""
        self._install(solver, self.path, reason)

    def reset(self) -> None:
        """Rebuild the solver from its settings: weights re-drawn from the fillers and
        the seed, iteration 0, history cleared; the device is kept."""
        if self.solver is None:
            return
        with self.lock:
            param = caffe_pb2.SolverParameter()
            param.CopyFrom(self.solver.param)
            for name, value in self.pending_edits.items():
                _set_field(param, name, value)
            solver = type(self.solver)(param, device=self.solver.device, path=self.solver.path,
                                       python_layers=self.solver.python_layers)  # the consent given at opening
        self._install(solver, self.path, "reset")

    def dataset_settings(self) -> dict | None:
        """The built-in dataset's settings (first BuiltinData layer), or None when the
        net reads no built-in dataset."""
        param = dataset_net_param(self.solver) if self.solver is not None else None
        layers: list = builtin_data_layers(param) if param is not None else []
        if not layers:
            return None
        p = layers[0].builtin_data_param
        return {"dataset": p.dataset, "num_points": p.num_points, "noise": p.noise,
                "test_fraction": p.test_fraction, "seed": p.seed}

    def regenerate_data(self, **changes) -> None:
        """Rebuild the solver with new built-in dataset settings (``num_points``,
        ``noise``, ``test_fraction``, ``seed``) in every BuiltinData layer of both
        phases; solver settings are kept, weights re-drawn (iteration 0)."""
        if self.solver is None:
            return
        with self.lock:
            net_param = dataset_net_param(self.solver)
            layers = builtin_data_layers(net_param) if net_param is not None else []
            if not layers:
                raise NetDefinitionError(
                    "this net reads no built-in dataset (no BuiltinData layer given by net or net_param)")
            for layer in layers:
                for name, value in changes.items():
                    setattr(layer.builtin_data_param, name, value)
            param = self.effective_param()
            param.ClearField("net")
            param.net_param.CopyFrom(net_param)
            solver = type(self.solver)(param, device=self.solver.device, path=self.solver.path,
                                       python_layers=self.solver.python_layers)  # the consent given at opening
        self._install(solver, self.path, "regenerated")

    def load_weights(self, path: str) -> None:
        """Copy weights from a .caffemodel(.h5) into the net (by layer name)."""
        with self.lock:
            self.solver.net.copy_from(path)
        self.emitter.emit(StateChanged(WEIGHTS, self.iteration))

    def save_snapshot(self, prefix: str) -> list[str]:
        """Write Caffe's snapshot files (weights and solver state) under ``prefix``."""
        with self.lock:
            old = self.solver.param.snapshot_prefix
            self.solver.param.snapshot_prefix = prefix
            try:
                return self.solver.snapshot()
            finally:
                self.solver.param.snapshot_prefix = old

    def move_to(self, device: str) -> None:
        """Move the whole state (weights, history, captured arrays) to ``device``."""
        with self.lock:
            previous = self.solver.device
            try:
                self.solver.to(device)
            except Exception:
                self.solver.to(previous)
                raise
        self.emitter.emit(StateChanged(DEVICE, self.iteration))

    # -- editing -------------------------------------------------------
    def edit(self, name: str, value) -> None:
        """Change a solver setting; applied from the next iteration (queued while
        an iteration is being stepped through)."""
        if name not in EDITABLE_FIELDS:
            raise KeyError(f"'{name}' is not an editable solver setting")
        _check_value(name, value)
        with self.lock:
            self.pending_edits[name] = value
            if not self.mid_iteration:
                self.apply_pending_edits()
        self.emitter.emit(SettingChanged(name, value))

    def effective_param(self) -> caffe_pb2.SolverParameter:
        """The solver settings with edits not yet applied folded in."""
        param = caffe_pb2.SolverParameter()
        param.CopyFrom(self.solver.param)
        for name, value in self.pending_edits.items():
            _set_field(param, name, value)
        return param

    def apply_pending_edits(self) -> None:
        """Apply the queued setting edits now (the next iteration would)."""
        if not self.pending_edits:
            return
        solver = self.solver
        new_type = self.pending_edits.pop("type", None)
        for name, value in self.pending_edits.items():
            _set_field(solver.param, name, value)
        self.pending_edits = {}
        if new_type and new_type != solver.type_name:
            _switch_solver_type(solver, str(new_type))

    # -- step wrappers ---------------------------------------------------
    def add_step_wrapper(self, wrapper: StepWrapper) -> None:
        """Run ``wrapper(kind, proceed)`` around every :meth:`step_iteration` (kind
        ``"iteration"``) and :meth:`step_event` (kind ``"event"``), on the stepping
        thread with ``lock`` held. ``proceed()`` does the step (the session's own, or
        the next wrapper's) and returns its result, which the wrapper returns or
        replaces; a wrapper may instead take the step its own way (e.g. event by
        event with ``step_event(wrapped=False)``). A wrapper added later runs inside
        the earlier ones."""
        with self.lock:
            if wrapper not in self._step_wrappers:
                self._step_wrappers.append(wrapper)

    def remove_step_wrapper(self, wrapper: StepWrapper) -> None:
        with self.lock:
            if wrapper in self._step_wrappers:
                self._step_wrappers.remove(wrapper)

    def add_run_hook(self, hook) -> None:
        """Let ``hook`` take part in runs made in the solver process (gui.model.solver_process):
        ``hook.allows_process_run()`` says whether it can do without seeing each step,
        ``hook.process_run_options()`` adds to what the process is sent (a dict), and
        ``hook.absorb_process_run(result)`` takes the run's outcome (the stepping thread,
        ``lock`` held). Step wrappers are not called for the steps the process takes."""
        if hook not in self.run_hooks:
            self.run_hooks.append(hook)

    def remove_run_hook(self, hook) -> None:
        if hook in self.run_hooks:
            self.run_hooks.remove(hook)

    def _wrapped(self, kind: str, step: Callable):
        for wrapper in reversed(self._step_wrappers):
            step = functools.partial(wrapper, kind, step)
        return step()

    # -- stepping (worker thread) ----------------------------------------
    def step_iteration(self, *, wrapped: bool = True) -> float:
        """Finish the iteration in progress, or run one whole iteration.

        Returns the loss; NaN when a non-finite value stopped it (see ``nonfinite``).
        ``wrapped=False`` skips the step wrappers (for a wrapper that steps itself).
        """
        with self.lock:
            return self._wrapped("iteration", self._step_iteration) if wrapped else self._step_iteration()

    def step_event(self, *, wrapped: bool = True) -> Event | None:
        """Advance the step-through to its next stop: the forward or backward of the
        next layer, or the whole update stage. Returns the event (None at the end).
        ``wrapped=False`` skips the step wrappers (for a wrapper that steps itself)."""
        with self.lock:
            return self._wrapped("event", self._step_event) if wrapped else self._step_event()

    def _step_iteration(self) -> float:
        with self.lock:
            if self.events is not None:  # finish the iteration in progress, stop by stop
                run_iteration_by_events(self._advance)
                return float("nan") if self.nonfinite else self.last_loss
            self.apply_pending_edits()
            solver = self.solver
            tests_before = len(solver.test_scores)
            try:
                loss = float(solver.step(1))
            except NonFiniteError as exc:
                self._stop_nonfinite(exc.iteration, exc.layer, exc.blob, exc.phase, str(exc))
                return float("nan")
            self.nonfinite = None
            self.last_event = None
            self._record(loss, tests_before)
            return loss

    def _step_event(self) -> Event | None:
        with self.lock:
            if self.events is None:
                self.apply_pending_edits()
                self.nonfinite = None
            return self._advance()

    def _advance(self) -> Event | None:
        """Pull events until a stop kind; record finished iterations and tests."""
        solver = self.solver
        if self.events is None:
            self.events = solver.iteration_events()
            self._tests_before = len(solver.test_scores)
        for event in self.events:
            if event.kind == TEST:
                continue
            if event.kind == UPDATE:
                self._finish_iteration()
                self.last_event = event
                return event
            if event.kind in STOP_KINDS:
                self.last_event = event
                if event.kind == NONFINITE:
                    detail = event.detail
                    self.events = None
                    self._stop_nonfinite(event.iteration, event.layer, detail.get("blob", ""),
                                         detail.get("phase", ""), detail.get("message", ""))
                return event
        self.events = None
        return None

    def _finish_iteration(self) -> None:
        loss = float("nan")
        for event in self.events:  # the iteration_end that follows the update
            if event.kind == ITERATION_END:
                loss = float(event.detail.get("loss", float("nan")))
        self.events = None
        self._record(loss, self._tests_before)

    def _record(self, loss: float, tests_before: int) -> None:
        solver = self.solver
        self.last_loss = loss
        self.metrics.append(solver.iter, loss, float(solver.smoothed_loss), float(solver.learning_rate))
        if len(solver.test_scores) > tests_before:
            self.metrics.add_tests(solver.test_scores[tests_before:])
            del solver.test_scores[:-KEEP_TEST_SCORES]  # the metrics keep them: memory stays bounded

    def _stop_nonfinite(self, iteration, layer, blob, phase, message) -> None:
        self.stop_on_nonfinite(NonFiniteStop(iteration, layer, blob, phase, message))

    def stop_on_nonfinite(self, stop: NonFiniteStop) -> None:
        """Record a NaN/inf stop (found here, or by the solver process) and tell the listeners."""
        self.events = None
        self.nonfinite = stop
        self.emitter.emit(Stopped("nonfinite", stop.message, stop))

    def changed(self, reason: str, *, rewound: bool = False) -> None:
        """The solver's state was set from outside the stepping methods (the rewind
        timeline restored a checkpoint, a weight was edited): drop the half-done
        iteration and the NaN stop; after a rewind the curves are cut back to the
        iteration now current and the loss shown is the one recorded for it."""
        with self.lock:
            self.events, self.last_event, self.nonfinite = None, None, None
            iteration = self.iteration
            if rewound:
                self.metrics.truncate_after(iteration)
                self.last_loss = self.metrics.loss_at(iteration)
        self.emitter.emit(StateChanged(REWOUND if rewound else reason, iteration))

    # -- views ---------------------------------------------------------
    def views(self, names: list[str] | None = None) -> dict:
        """Host copies of the InnerProduct layers' arrays (see gui.model.frames)."""
        with self.lock:
            return frames.inner_product_views(self.solver, names, update_applied=not self.mid_iteration,
                                                last_event=self.last_event if self.mid_iteration else None)

    def set_running(self, running: bool) -> None:
        """The window's run began or ended (GUI thread): tell the views once per change."""
        if running != self.running:
            self.running = running
            self.emitter.emit(RunStatus(running))

    def report_progress(self, iteration: int, done: int, total: int) -> None:
        """A run's progress between its frames (GUI thread): tell the views."""
        self.emitter.emit(RunProgress(iteration, done, total))

    def show_frame(self, frame: frames.Frame) -> None:
        """Make ``frame`` the state the views draw, and tell them (GUI thread)."""
        self.frame = frame
        self.emitter.emit(FrameReady(frame))

    def info(self):
        with self.lock:
            return frames.solver_info(self.solver, self.last_loss)

    def inner_product_layers(self) -> list[str]:
        return frames.inner_product_layers(self.solver.net) if self.solver is not None else []


def dataset_net_param(solver) -> caffe_pb2.NetParameter | None:
    """A copy of the solver's whole net definition (both phases) when it is given by
    ``net`` or ``net_param``; None otherwise."""
    param = caffe_pb2.NetParameter()
    if solver.param.HasField("net_param"):
        param.CopyFrom(solver.param.net_param)
        return param
    if solver.param.HasField("net"):
        parsed, _ = parse_net(resolve_path(solver.param.net, solver.path))
        return parsed
    return None


def builtin_data_layers(net_param: caffe_pb2.NetParameter) -> list:
    return [layer for layer in net_param.layer if layer.type == "BuiltinData"]


def _check_value(name: str, value) -> None:
    if name == "type" and value not in SOLVER_TYPES:
        raise ValueError(f"unknown solver type '{value}' (use one of {', '.join(SOLVER_TYPES)})")
    if name == "lr_policy":
        from engine.lr_policy import POLICIES
        if value not in POLICIES:
            raise ValueError(f"unknown lr_policy '{value}' (use one of {', '.join(POLICIES)})")
    if name == "regularization_type" and value not in ("L1", "L2"):
        raise ValueError(f"regularization must be L1 or L2, not '{value}'")
    if EDITABLE_FIELDS[name] is float and not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, not {value}")


def _set_field(param: caffe_pb2.SolverParameter, name: str, value) -> None:
    if name == "stepvalue":
        del param.stepvalue[:]
        param.stepvalue.extend(int(v) for v in value)
    elif name == "type":
        param.type = str(value)
        param.ClearField("solver_type")
    else:
        setattr(param, name, EDITABLE_FIELDS[name](value))


def _switch_solver_type(solver, new_type: str) -> None:
    """Turn a live solver into another type; its history restarts at zero."""
    from engine.solver import solver_class
    cls = solver_class(new_type)
    solver.__class__ = cls
    solver.param.type = new_type
    solver.history = [solver._zeros_like(b) for _ in range(cls.histories_per_param)
                      for b in solver.net.learnable_params]
