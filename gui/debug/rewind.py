"""Rewind: keep the last N iterations' full training state and step back exactly.

Qt-free. A :class:`Checkpoint` holds everything that decides the next
iteration's numbers: the parameter values (and their diffs, so the views can
show the last update), the solver's histories, iteration, ``current_step``,
learning rate and smoothed-loss buffer, the data layers' cursors (train and
test nets), the engine's RNG state, and the net's activations for the views.
Restoring a checkpoint and stepping again therefore reproduces the same
numbers bit for bit.

:class:`History` is the list of checkpoints with a cursor (like an undo stack):
``record`` after every iteration (or edit), ``step_back`` / ``goto`` to scrub,
and recording from a rewound position drops the states after it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy

from engine import backend, rng

DEFAULT_MAX_BYTES = 200 * 1024 * 1024


# -- one state ----------------------------------------------------------------
def _host_copy(array) -> numpy.ndarray:
    """A host copy (never a view) of a numpy or cupy array."""
    return numpy.array(backend.to_numpy(array), copy=True)


def _put(target, saved: numpy.ndarray) -> None:
    """Write ``saved`` into ``target`` (numpy or cupy) in place."""
    target[...] = backend.to_device(saved, backend.device_of(target))


def _unique_param_blobs(net) -> list:
    seen, blobs = set(), []
    for layer in net.layers:
        for blob in layer.blobs:
            if id(blob) not in seen:
                seen.add(id(blob))
                blobs.append(blob)
    return blobs


def _data_layer_state(layer) -> dict | None:
    """The cursor of a data layer (ArrayBatcher or HDF5Data), or None for other layers."""
    batcher = getattr(layer, "batcher", None)
    if batcher is not None and hasattr(batcher, "state"):
        return {"kind": "batcher", "state": batcher.state()}
    if layer.type_name == "HDF5Data" and hasattr(layer, "current_row"):
        return {"kind": "hdf5", "current_file": layer.current_file, "current_row": layer.current_row,
                "row_order": layer.row_order.copy(), "file_order": layer.file_order.copy(),
                "arrays": layer.arrays}  # a reference: the loaded file is never written
    return None


def _set_data_layer_state(layer, state: dict) -> None:
    if state["kind"] == "batcher":
        layer.batcher.set_state(state["state"])
        return
    layer.current_file = state["current_file"]
    layer.current_row = state["current_row"]
    layer.row_order = state["row_order"].copy()
    layer.file_order = state["file_order"].copy()
    layer.arrays = state["arrays"]


@dataclass
class Checkpoint:
    """The full training state at one moment (host copies)."""

    iteration: int
    label: str
    params: list[numpy.ndarray]
    param_diffs: list[numpy.ndarray]
    history: list[numpy.ndarray]
    raw_gradients: list[numpy.ndarray]
    activations: dict[str, tuple[numpy.ndarray, numpy.ndarray]]
    captured: dict[str, dict[str, numpy.ndarray]]
    scalars: dict[str, Any]
    data_cursors: list[dict[int, dict]]
    rng_state: dict
    nbytes: int = field(default=0)

    def __post_init__(self) -> None:
        arrays = self.params + self.param_diffs + self.history + self.raw_gradients
        arrays += [a for pair in self.activations.values() for a in pair]
        arrays += [a for store in self.captured.values() for a in store.values()]
        self.nbytes = int(sum(a.nbytes for a in arrays))


def capture(solver, label: str = "", *, activations: bool = True) -> Checkpoint:
    """Copy the solver's full state (see the module docstring)."""
    net = solver.net
    nets = [net] + list(solver.test_nets)
    cursors = [{i: s for i, layer in enumerate(n.layers) if (s := _data_layer_state(layer)) is not None}
               for n in nets]
    blobs = _unique_param_blobs(net)
    acts = {}
    if activations:
        acts = {name: (_host_copy(b.data), _host_copy(b.diff)) for name, b in net.blobs.items()}
    scalars = {"iter": solver.iter, "current_step": solver.current_step,
               "learning_rate": solver.learning_rate, "losses": list(solver.losses),
               "smoothed_loss": solver.smoothed_loss, "test_scores": len(solver.test_scores),
               "loss": net.loss}
    return Checkpoint(
        iteration=solver.iter, label=label or f"iteration {solver.iter}",
        params=[_host_copy(b.data) for b in blobs], param_diffs=[_host_copy(b.diff) for b in blobs],
        history=[_host_copy(h) for h in solver.history],
        raw_gradients=[_host_copy(g) for g in solver.raw_gradients],
        activations=acts,
        captured={layer: {k: _host_copy(v) for k, v in store.items()} for layer, store in net.captured.items()},
        scalars=scalars, data_cursors=cursors, rng_state=copy.deepcopy(rng.get_state()))


def restore(solver, checkpoint: Checkpoint) -> None:
    """Put ``checkpoint`` back into ``solver`` (values written in place, on its device)."""
    net = solver.net
    for blob, data, diff in zip(_unique_param_blobs(net), checkpoint.params, checkpoint.param_diffs):
        _put(blob.data, data)
        _put(blob.diff, diff)
        blob.diff_is_clear = not bool(diff.any())
    for target, saved in zip(solver.history, checkpoint.history):
        _put(target, saved)
    if checkpoint.raw_gradients and len(solver.raw_gradients) == len(checkpoint.raw_gradients):
        for target, saved in zip(solver.raw_gradients, checkpoint.raw_gradients):
            _put(target, saved)
    for name, (data, diff) in checkpoint.activations.items():
        blob = net.blobs.get(name)
        if blob is not None and blob.shape == data.shape:
            _put(blob.data, data)
            _put(blob.diff, diff)
    for layer, store in checkpoint.captured.items():
        mine = net.captured.setdefault(layer, {})
        for key, saved in store.items():
            mine[key] = backend.to_device(saved.copy(), net.device)
    s = checkpoint.scalars
    solver.iter, solver.current_step = s["iter"], s["current_step"]
    solver.learning_rate, solver.smoothed_loss = s["learning_rate"], s["smoothed_loss"]
    solver.losses = list(s["losses"])
    del solver.test_scores[s["test_scores"]:]
    net.loss = s["loss"]
    for n, cursors in zip([net] + list(solver.test_nets), checkpoint.data_cursors):
        for i, state in cursors.items():
            _set_data_layer_state(n.layers[i], state)
    rng.set_state(copy.deepcopy(checkpoint.rng_state))


# -- the history ----------------------------------------------------------------
class History:
    """The last checkpoints with a cursor; bounded by count and by memory.

    ``capacity`` is the most checkpoints kept (N); ``max_bytes`` bounds their
    total size (default ~200 MB), so the effective N is the smaller of the two.
    """

    def __init__(self, capacity: int = 1000, max_bytes: int = DEFAULT_MAX_BYTES, *, activations: bool = True):
        if capacity < 2:
            raise ValueError("the rewind history needs room for at least 2 states")
        self.capacity = int(capacity)
        self.max_bytes = int(max_bytes)
        self.activations = activations
        self.entries: list[Checkpoint] = []
        self.position = -1
        self.listeners: list = []

    # -- observing ------------------------------------------------------
    def subscribe(self, callback) -> None:
        """``callback(history)`` runs after every change (for widgets)."""
        self.listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self.listeners):
            callback(self)

    # -- sizes ------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        return sum(c.nbytes for c in self.entries)

    def effective_capacity(self) -> int:
        """N after the memory bound: how many checkpoints of the current size fit."""
        if not self.entries:
            return self.capacity
        per_entry = max(1, self.entries[-1].nbytes)
        return max(2, min(self.capacity, self.max_bytes // per_entry))

    def set_capacity(self, capacity: int) -> None:
        self.capacity = max(2, int(capacity))
        self._trim()
        self._changed()

    def describe(self) -> str:
        """'12 / 500 states, 3.4 MB' for a status line."""
        return (f"{len(self.entries)} / {self.effective_capacity()} states, "
                f"{self.memory_bytes / 1e6:.1f} MB")

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def current(self) -> Checkpoint | None:
        return self.entries[self.position] if 0 <= self.position < len(self.entries) else None

    # -- recording ----------------------------------------------------------
    def record(self, solver, label: str = "") -> Checkpoint:
        """Append the solver's current state (dropping any states after the cursor)."""
        del self.entries[self.position + 1:]
        checkpoint = capture(solver, label, activations=self.activations)
        self.entries.append(checkpoint)
        self._trim()
        self.position = len(self.entries) - 1
        self._changed()
        return checkpoint

    def _trim(self) -> None:
        limit = self.effective_capacity()
        extra = len(self.entries) - limit
        if extra > 0:
            del self.entries[:extra]
            self.position = max(0, self.position - extra)

    def ensure_recorded(self, solver) -> None:
        """Record the current state unless the cursor already holds it."""
        current = self.current
        if current is not None and current.iteration == solver.iter:
            del self.entries[self.position + 1:]  # continuing from a rewound state
            return
        self.record(solver)

    def step(self, solver, iterations: int = 1) -> float:
        """Run ``iterations`` solver steps, recording after each; returns the last loss."""
        self.ensure_recorded(solver)
        loss = float("nan")
        for _ in range(iterations):
            loss = solver.step(1)
            self.record(solver)
        return loss

    def edit_weight(self, solver, param_index: int, index: tuple, value: float) -> None:
        """Set one weight (while paused) and record it, so Step Back undoes the edit."""
        self.ensure_recorded(solver)
        blob = solver.net.learnable_params[param_index]
        old = float(backend.to_numpy(blob.data[index]))
        blob.data[index] = value
        name = solver.net.param_display_names[param_index]
        self.record(solver, f"edit {name}{list(index)}: {old:g} → {float(value):g}")

    # -- moving ---------------------------------------------------------------
    def can_step_back(self) -> bool:
        return self.position > 0

    def step_back(self, solver) -> Checkpoint:
        """Restore the state before the last iteration or edit."""
        if not self.can_step_back():
            raise IndexError("nothing to step back to: the history holds no earlier state")
        return self.goto(solver, self.position - 1)

    def goto(self, solver, position: int) -> Checkpoint:
        """Restore the checkpoint at ``position`` (the history slider); later ones are kept
        until something new is recorded."""
        if not 0 <= position < len(self.entries):
            raise IndexError(f"history position {position} out of range 0..{len(self.entries) - 1}")
        checkpoint = self.entries[position]
        restore(solver, checkpoint)
        self.position = position
        self._changed()
        return checkpoint

    def clear(self) -> None:
        self.entries.clear()
        self.position = -1
        self._changed()
