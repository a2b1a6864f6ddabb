"""The full training state of a solver at one moment: :func:`capture` and
:func:`restore` (Qt-free).

The one module that copies a solver's state out and puts it back: the rewind
timeline (:mod:`gui.model.timeline`) keeps these checkpoints, and the hand-over
of a run to the solver process (:mod:`gui.model.solver_process`) sends one each way.

A :class:`Checkpoint` holds everything that decides the next iteration's
numbers: the parameter values (and their diffs, so the views can show the last
update), the solver's histories, iteration, ``current_step``, learning rate and
smoothed-loss buffer, the data layers' positions (train and test nets; read and
set with the engine's own ``engine.io.layer_state`` / ``set_layer_state``, as
snapshots do), the engine's RNG state, and the net's activations for the views.
Restoring a checkpoint and stepping again reproduces the same numbers bit for bit.
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Any

import numpy

from engine import backend, rng
from engine.io import layer_state, set_layer_state


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


class Checkpoint:
    """The full training state at one moment (host copies).

    Every array is in one packed buffer (``flat``): a checkpoint is one allocation
    and one copy. ``params``, ``param_diffs``, ``history``, ``raw_gradients``,
    ``activations`` and ``captured`` are views into it, made when first read (most
    checkpoints are never read: making them at capture would cost more than the copy).
    """

    def __init__(self, iteration: int, label: str, flat: numpy.ndarray, shapes: list[list[tuple]],
                 activation_names: list[str], captured_keys: list[tuple[str, str]], scalars: dict[str, Any],
                 data_cursors: list[dict[int, dict]], rng_state: dict):
        self.iteration = iteration
        self.label = label
        self.flat = flat
        self._shapes = shapes  # per group (params, diffs, history, raw, act. data, act. diff, captured)
        self._activation_names = activation_names
        self._captured_keys = captured_keys
        self.scalars = scalars
        self.data_cursors = data_cursors
        self.rng_state = rng_state

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes)

    def __getstate__(self) -> dict:
        """Pickled (sent to or from the solver process) without the views made from ``flat``."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_views", "activations", "captured")}

    @functools.cached_property
    def _views(self) -> list[list[numpy.ndarray]]:
        views, offset = [], 0
        for shapes in self._shapes:
            group = []
            for shape in shapes:
                size = math.prod(shape)
                group.append(self.flat[offset:offset + size].reshape(shape))
                offset += size
            views.append(group)
        return views

    @property
    def params(self) -> list[numpy.ndarray]:
        return self._views[0]

    @property
    def param_diffs(self) -> list[numpy.ndarray]:
        return self._views[1]

    @property
    def history(self) -> list[numpy.ndarray]:
        return self._views[2]

    @property
    def raw_gradients(self) -> list[numpy.ndarray]:
        return self._views[3]

    @functools.cached_property
    def activations(self) -> dict[str, tuple[numpy.ndarray, numpy.ndarray]]:
        return {n: (d, g) for n, d, g in zip(self._activation_names, self._views[4], self._views[5])}

    @functools.cached_property
    def captured(self) -> dict[str, dict[str, numpy.ndarray]]:
        store: dict[str, dict[str, numpy.ndarray]] = {}
        for (layer, key), array in zip(self._captured_keys, self._views[6]):
            store.setdefault(layer, {})[key] = array
        return store


def _as_host(array) -> numpy.ndarray:
    return array if type(array) is numpy.ndarray else backend.to_numpy(array)


def _pack(groups: list[list]) -> tuple[numpy.ndarray, list[list[tuple]]]:
    """Copy every array of ``groups`` into one flat buffer; returns it and the groups' shapes."""
    host = [[_as_host(a) for a in group] for group in groups]
    arrays = [a for group in host for a in group]
    if not arrays:
        return numpy.empty(0, numpy.float32), [[] for _ in groups]
    dtypes = {a.dtype for a in arrays}
    dtype = dtypes.pop() if len(dtypes) == 1 else numpy.result_type(*dtypes)
    flat = numpy.concatenate(arrays, axis=None, dtype=dtype)  # each array flattened in C order
    return flat, [[a.shape for a in group] for group in host]


def capture(solver, label: str = "", *, activations: bool = True) -> Checkpoint:
    """Copy the solver's full state (see the module docstring)."""
    net = solver.net
    nets = [net] + list(solver.test_nets)
    cursors = [{i: s for i, layer in enumerate(n.layers) if (s := layer_state(layer)) is not None}
               for n in nets]
    blobs = _unique_param_blobs(net)
    act_names = list(net.blobs) if activations else []
    captured_keys = [(layer, key) for layer, store in net.captured.items() for key in store]
    flat, shapes = _pack([
        [b.data for b in blobs], [b.diff for b in blobs], list(solver.history), list(solver.raw_gradients),
        [net.blobs[n].data for n in act_names], [net.blobs[n].diff for n in act_names],
        [net.captured[layer][key] for layer, key in captured_keys]])
    scalars = {"iter": solver.iter, "current_step": solver.current_step,
               "learning_rate": solver.learning_rate, "losses": list(solver.losses),
               "smoothed_loss": solver.smoothed_loss, "test_scores": list(solver.test_scores),
               "loss": net.loss, "loss_window_start": solver.loss_window_start}
    return Checkpoint(solver.iter, label or f"iteration {solver.iter}", flat, shapes, act_names,
                      captured_keys, scalars, cursors,
                      rng.get_state())  # a fresh dict of ints: nothing shared with the generator


def restore(solver, checkpoint: Checkpoint) -> None:
    """Put ``checkpoint`` back into ``solver`` (values written in place, on its device)."""
    net = solver.net
    for blob, data, diff in zip(_unique_param_blobs(net), checkpoint.params, checkpoint.param_diffs):
        _put(blob.data, data)
        _put(blob.diff, diff)
        blob.diff_is_clear = not bool(diff.any())
    for target, saved in zip(solver.history, checkpoint.history):
        _put(target, saved)
    _restore_raw_gradients(solver, checkpoint.raw_gradients)
    for name, (data, diff) in checkpoint.activations.items():
        blob = net.blobs.get(name)
        if blob is not None and blob.shape == data.shape:
            _put(blob.data, data)
            _put(blob.diff, diff)
    _restore_captured(net, checkpoint.captured)
    s = checkpoint.scalars
    solver.iter, solver.current_step = s["iter"], s["current_step"]
    solver.learning_rate, solver.smoothed_loss = s["learning_rate"], s["smoothed_loss"]
    solver.losses = list(s["losses"])
    solver.loss_window_start = s["loss_window_start"]  # where the smoothing window began
    solver.test_scores[:] = s["test_scores"]  # (iteration, scores) pairs: never changed once made
    net.loss = s["loss"]
    for n, cursors in zip([net] + list(solver.test_nets), checkpoint.data_cursors):
        for i, state in cursors.items():
            set_layer_state(n.layers[i], state)
    rng.set_state(copy.deepcopy(checkpoint.rng_state))  # the generator must never hold our dict


def _restore_raw_gradients(solver, saved: list[numpy.ndarray]) -> None:
    """The solver's raw gradients as saved; none (a state before the first iteration): none."""
    if saved and len(solver.raw_gradients) == len(saved):
        for target, array in zip(solver.raw_gradients, saved):
            _put(target, array)
    else:
        solver.raw_gradients = [backend.to_device(array.copy(), solver.net.device) for array in saved]


def _restore_captured(net, saved: dict[str, dict[str, numpy.ndarray]]) -> None:
    """``net.captured`` as saved: arrays captured after the saved state are dropped."""
    for layer in [name for name in net.captured if name not in saved]:
        del net.captured[layer]
    for layer, store in saved.items():
        mine = net.captured.setdefault(layer, {})
        for key in [key for key in mine if key not in store]:
            del mine[key]
        for key, array in store.items():
            mine[key] = backend.to_device(array.copy(), net.device)
