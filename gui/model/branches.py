"""Branching runs (Qt-free): from any point of the rewind timeline, change something
and run on; the continuation that was there is kept as a branch.

How a branch is made: when the timeline is about to restore an earlier state while
its cursor is at the newest one (:attr:`Timeline.before_restore`), the state there
(the tip), the curve and the solver settings are put aside. Going back to the tip
forgets them; recording anything new from the earlier point (a step, a weight
edit) drops the timeline's later states, and the put-aside tip becomes a branch.

Each branch keeps its settings, its curve (the bounded in-memory copy), its tip
and the checkpoints on its path (shared objects, not copies); the states between
are reached by replaying from the nearest checkpoint on a scratch solver, as the
timeline does. Memory is bounded (``max_bytes``): the oldest branches lose their
in-between checkpoints first, then their tips (their curves stay).
"""
from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field

import numpy
from google.protobuf import text_format

from engine.atomic import write_text
from engine.backend import to_numpy
from engine.proto import caffe_pb2
from gui.model.events import EDITED
from gui.model.state import Checkpoint, capture, restore

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Settings whose differences are worth naming (others, e.g. snapshot paths, are not).
NAMED_FIELDS = ("type", "base_lr", "lr_policy", "gamma", "power", "stepsize", "momentum", "momentum2",
                "delta", "rms_decay", "weight_decay", "regularization_type", "clip_gradients", "iter_size")


@dataclass
class Branch:
    """One line of training: its name, what differs from the one it left, its settings,
    its curve (rows of iteration, loss, smoothed loss, lr) and its states."""

    name: str
    differs: str
    fork_iteration: int
    param: caffe_pb2.SolverParameter
    curve: numpy.ndarray
    tip: Checkpoint | None = None
    points: list[Checkpoint] = field(default_factory=list)  # checkpoints on its path, oldest first

    @property
    def iteration(self) -> int:
        return self.tip.iteration if self.tip is not None else int(self.curve[-1, 0]) if len(self.curve) else 0

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in _unique([self.tip] + self.points)) + self.curve.nbytes


def _unique(checkpoints) -> list[Checkpoint]:
    seen, found = set(), []
    for c in checkpoints:
        if c is not None and id(c) not in seen:
            seen.add(id(c))
            found.append(c)
    return found


def describe_differences(before: caffe_pb2.SolverParameter, after: caffe_pb2.SolverParameter) -> list[str]:
    """'base_lr 0.1 → 0.01', 'type SGD → Adam': the named settings that differ."""
    changes = []
    for name in NAMED_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(f"{name} {old:g} → {new:g}" if isinstance(old, float) else f"{name} {old} → {new}")
    return changes


def _curve(metrics) -> numpy.ndarray:
    iterations, losses, smoothed, lrs = metrics.train_arrays()
    return numpy.column_stack([iterations, losses, smoothed, lrs]).astype(numpy.float64)


def _copy_param(param: caffe_pb2.SolverParameter) -> caffe_pb2.SolverParameter:
    copy = caffe_pb2.SolverParameter()
    copy.CopyFrom(param)
    return copy


class BranchSet:
    """The branches of one session's solver. ``current`` names the live one (the
    session's solver, metrics and timeline are its state)."""

    def __init__(self, session, max_bytes: int = DEFAULT_MAX_BYTES):
        self.session = session
        self.max_bytes = int(max_bytes)
        self.branches: dict[str, Branch] = {}
        self.current = "A"
        self._differs = "the first run"  # what the live line's differs says when it has no parent
        self._parent: tuple[str, caffe_pb2.SolverParameter] | None = None  # (name, settings) it left
        self.current_fork = 0
        self._pending: tuple | None = None  # (tip checkpoint, curve, param, tip mark, timeline checkpoints)
        self._fork_state: Checkpoint | None = None
        self._switching = False
        self._live_points_extra: list[Checkpoint] = []  # the live line's own states the timeline lacks
        self.listeners: list = []
        session.timeline.before_restore.append(self._before_restore)
        session.timeline.subscribe(self._on_timeline)

    # -- the timeline's hooks -------------------------------------------------------
    def _before_restore(self, solver, _position: int) -> None:
        timeline = self.session.timeline
        if self._switching or self._pending is not None or timeline.position != len(timeline.marks) - 1:
            return
        param = self.session.effective_param()
        self._pending = (capture(solver, "tip", activations=False), _curve(self.session.metrics),
                         param, timeline.marks[-1], list(timeline.entries), self._describe(param, timeline.marks))

    def _on_timeline(self, timeline) -> None:
        if self._pending is None or self._switching:
            return
        tip_mark = self._pending[3]
        if any(mark is tip_mark for mark in timeline.marks):
            if timeline.position == len(timeline.marks) - 1:
                self._pending, self._fork_state = None, None  # back at the tip: nothing branched
            else:
                self._fork_state = capture(self.session.solver, "fork", activations=False)
            return
        self._branch_off()

    def _branch_off(self) -> None:
        """The continuation was dropped: keep it as a branch; the live line gets a new name."""
        assert self._pending is not None
        tip, curve, param, _mark, points, differs = self._pending
        fork = self._fork_state
        self._pending, self._fork_state = None, None
        fork_iteration = fork.iteration if fork is not None else self.session.iteration
        self.branches[self.current] = Branch(self.current, differs, self.current_fork, param,
                                             curve, tip, _unique(points + ([fork] if fork is not None else [])))
        self._parent = (self.current, param)
        self.current_fork = fork_iteration
        self.current = self._new_name()
        self._live_points_extra = [fork] if fork is not None else []
        self._bound_memory()
        self._changed()

    @property
    def current_differs(self) -> str:
        """What the live line changed from the one it left: settings (as they are now) and weight edits."""
        if self.session.solver is None:
            return self._differs
        return self._describe(self.session.effective_param(), self.session.timeline.marks)

    def _describe(self, param: caffe_pb2.SolverParameter, marks) -> str:
        """The live line's differences with settings ``param`` and timeline ``marks``."""
        if self._parent is None:
            return self._differs
        parent, parent_param = self._parent
        edits = [m.label for m in marks if m.iteration >= self.current_fork and m.label.startswith("edit")]
        changes = describe_differences(parent_param, param) + edits
        return (f"from {parent} at iteration {self.current_fork}: "
                + ("; ".join(changes) if changes else "no change (same settings)"))

    def _new_name(self) -> str:
        taken = set(self.branches) | {self.current}
        for letter in string.ascii_uppercase:
            if letter not in taken:
                return letter
        k = 2
        while f"Z{k}" in taken:
            k += 1
        return f"Z{k}"

    def _changed(self) -> None:
        for callback in list(self.listeners):
            callback(self)

    def reset(self) -> None:
        """Another net was loaded (or Reset): no branches, the live line is A again."""
        self.branches.clear()
        self.current, self._differs, self._parent, self.current_fork = "A", "the first run", None, 0
        self._pending, self._fork_state, self._live_points_extra = None, None, []
        self._changed()

    # -- reading -----------------------------------------------------------------
    def names(self) -> list[str]:
        """Every branch, the live one included, in name order."""
        return sorted(set(self.branches) | {self.current})

    def live_branch(self) -> Branch:
        """The live line as a Branch (its tip captured now)."""
        session = self.session
        tip = capture(session.solver, "tip", activations=False)
        points = self._live_points_extra + list(session.timeline.entries)
        return Branch(self.current, self.current_differs, self.current_fork, session.effective_param(),
                      _curve(session.metrics), tip, _unique(points))

    def get(self, name: str) -> Branch:
        if name == self.current:
            return self.live_branch()
        if name not in self.branches:
            raise KeyError(f"no branch named '{name}' (have: {', '.join(self.names())})")
        return self.branches[name]

    def curves(self) -> dict[str, tuple[numpy.ndarray, str]]:
        """name -> (curve rows, what differs), the live one included."""
        found = {name: (b.curve, b.differs) for name, b in self.branches.items()}
        found[self.current] = (_curve(self.session.metrics), self.current_differs)
        return found

    @property
    def memory_bytes(self) -> int:
        """Bytes the kept branches hold beyond the live timeline's own checkpoints."""
        live = {id(c) for c in self.session.timeline.entries}
        kept = _unique(c for b in self.branches.values() for c in [b.tip] + b.points)
        return sum(c.nbytes for c in kept if id(c) not in live) + sum(b.curve.nbytes for b in self.branches.values())

    def describe_memory(self) -> str:
        return f"{len(self.branches) + 1} branches, {self.memory_bytes / 1e6:.1f} MB of {self.max_bytes / 1e6:.0f} MB"

    # -- states at an iteration ---------------------------------------------------
    def scratch_solver(self, param: caffe_pb2.SolverParameter):
        """A solver like the session's, with ``param`` (its weights are then restored)."""
        solver = self.session.solver
        return type(solver)(_copy_param(param), device=solver.device, path=solver.path,
                            python_layers=solver.python_layers)

    def _start(self, branch: Branch, iteration: int) -> Checkpoint:
        usable = [c for c in _unique(branch.points + [branch.tip])
                  if branch.fork_iteration <= c.iteration <= iteration]
        if not usable:
            raise ValueError(f"branch {branch.name} keeps no state at or before iteration {iteration} "
                             f"(it starts at {branch.fork_iteration}; its tip is at {branch.iteration})")
        best = max(c.iteration for c in usable)
        return [c for c in usable if c.iteration == best][-1]  # the later recorded (an edit after the fork)

    def solver_at(self, name: str, iteration: int):
        """A scratch solver holding branch ``name``'s state at ``iteration`` (replayed from
        the nearest checkpoint on its path)."""
        branch = self.get(name)
        if iteration > branch.iteration:
            raise ValueError(f"branch {name} has only reached iteration {branch.iteration}, not {iteration}")
        start = self._start(branch, iteration)
        solver = self.scratch_solver(branch.param)
        restore(solver, start)
        if iteration > start.iteration:
            solver.step(iteration - start.iteration)
        return solver

    def weight_difference(self, a: str, b: str, layer: str, iteration: int | None = None) -> tuple[numpy.ndarray, int]:
        """(W(a) − W(b) of ``layer`` in float64, the iteration): at ``iteration``, or the later
        iteration both have reached."""
        if iteration is None:
            iteration = min(self.get(a).iteration, self.get(b).iteration)
        weights = []
        for name in (a, b):
            solver = self.solver_at(name, iteration)
            index = solver.net.layer_index(layer)
            weights.append(to_numpy(solver.net.layers[index].blobs[0].data).astype(numpy.float64))
        return weights[0] - weights[1], iteration

    def first_difference(self, a: str, b: str, limit: int = 5000) -> int | None:
        """The first iteration at which branches ``a`` and ``b`` hold different weights
        (None: the same up to where both have reached, or within ``limit`` iterations)."""
        branch_a, branch_b = self.get(a), self.get(b)
        start = max(branch_a.fork_iteration, branch_b.fork_iteration)
        end = min(branch_a.iteration, branch_b.iteration, start + limit)
        if start > end:
            return None
        solvers = [self.solver_at(a, start), self.solver_at(b, start)]
        for iteration in range(start, end + 1):
            if iteration > start:
                for solver in solvers:
                    solver.step(1)
            if not _same_weights(*solvers):
                return iteration
        return None

    # -- making a branch current ----------------------------------------------------
    def make_current(self, name: str) -> None:
        """Put the live line aside as a branch and continue branch ``name`` (its settings,
        weights, solver state and curve); the rewind timeline starts again at its tip."""
        if name == self.current:
            return
        target = self.get(name)
        if target.tip is None:
            raise ValueError(f"branch {name}'s state was dropped to keep memory bounded; only its curve is left")
        session = self.session
        self._switching = True
        try:
            with session.lock:
                live = self.live_branch()
                solver = session.solver
                new_type = target.param.type or "SGD"
                solver.param.CopyFrom(_copy_param(target.param))
                if new_type != solver.type_name:
                    from gui.model.session import _switch_solver_type
                    _switch_solver_type(solver, new_type)
                session.pending_edits = {}
                restore(solver, target.tip)
                session.metrics.clear()
                for row in target.curve:
                    session.metrics.append(int(row[0]), float(row[1]), float(row[2]), float(row[3]))
                session.timeline.clear()
                session.timeline.record(solver, f"branch {name}", checkpoint=True)
            del self.branches[name]
            self.branches[live.name] = live
            self.current, self._differs, self._parent, self.current_fork = (name, target.differs, None,
                                                                           target.fork_iteration)
            self._live_points_extra = list(target.points)
            self._pending, self._fork_state = None, None
        finally:
            self._switching = False
        self._bound_memory()
        session.changed(EDITED)
        self._changed()

    # -- memory -------------------------------------------------------------------
    def _bound_memory(self) -> None:
        """Drop in-between checkpoints of the oldest branches, then their tips, until the
        branches fit ``max_bytes``."""
        order = [b for b in self.branches.values()]  # insertion order: oldest first
        for branch in order:
            if self.memory_bytes <= self.max_bytes:
                return
            branch.points = []
        for branch in order:
            if self.memory_bytes <= self.max_bytes:
                return
            branch.tip = None

    # -- files --------------------------------------------------------------------
    def save(self, folder: str) -> list[str]:
        """Each branch as a Caffe snapshot (``<name>_iter_N.caffemodel`` + ``.solverstate``, with the
        engine's resume data) plus ``branches.json`` (names, what differs, settings) and each
        curve (``<name>_curve.csv``); returns the files written."""
        os.makedirs(folder, exist_ok=True)
        written, manifest = [], []
        for name in self.names():
            branch = self.get(name)
            entry = {"name": name, "differs": branch.differs, "fork_iteration": branch.fork_iteration,
                     "solver": text_format.MessageToString(branch.param), "current": name == self.current}
            if branch.tip is not None:
                solver = self.scratch_solver(branch.param)
                restore(solver, branch.tip)
                solver.param.snapshot_prefix = os.path.join(os.path.abspath(folder), name)
                paths = solver.snapshot()
                entry["caffemodel"], entry["solverstate"] = (os.path.basename(p) for p in paths)
                written += paths
            curve_path = os.path.join(folder, f"{name}_curve.csv")
            write_text(curve_path, "iteration,loss,smoothed,lr\n" + "".join(
                f"{int(r[0])},{float(r[1])!r},{float(r[2])!r},{float(r[3])!r}\n" for r in branch.curve))
            entry["curve"] = os.path.basename(curve_path)
            written.append(curve_path)
            manifest.append(entry)
        path = os.path.join(folder, "branches.json")
        write_text(path, json.dumps({"branches": manifest}, indent=1, ensure_ascii=False))
        return written + [path]

    def load(self, folder: str) -> list[str]:
        """Add the branches saved in ``folder`` (names that are taken get a suffix); returns their names.
        Every file is read and checked before any branch is added."""
        path = os.path.join(folder, "branches.json")
        try:
            with open(path, encoding="utf-8") as handle:
                manifest = json.load(handle)["branches"]
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a saved set of branches ({exc})") from None
        loaded: list[Branch] = []
        for entry in manifest:
            param = text_format.Parse(entry["solver"], caffe_pb2.SolverParameter())
            rows = numpy.loadtxt(os.path.join(folder, entry["curve"]), delimiter=",", skiprows=1, ndmin=2)
            tip = None
            if entry.get("solverstate"):
                solver = self.scratch_solver(param)
                solver.restore(os.path.join(folder, entry["solverstate"]))
                tip = capture(solver, "tip", activations=False)
            loaded.append(Branch(entry["name"], entry["differs"], int(entry["fork_iteration"]), param,
                                 rows.reshape(-1, 4), tip, [tip] if tip is not None else []))
        names = []
        for branch in loaded:
            name = branch.name
            while name in self.branches or name == self.current:
                name += "'"
            branch.name = name
            self.branches[name] = branch
            names.append(name)
        self._bound_memory()
        self._changed()
        return names


def _same_weights(first, second) -> bool:
    for a, b in zip(first.net.learnable_params, second.net.learnable_params):
        if not numpy.array_equal(to_numpy(a.data), to_numpy(b.data)):
            return False
    return True
