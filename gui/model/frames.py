"""Qt-free copies of the engine state that the views draw.

The worker thread that steps the solver calls these functions between
iterations (or events) and hands the copies to the GUI thread, so the GUI never
reads arrays the solver is writing. GPU arrays are copied to the host only for
what is asked for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy

from engine.backend import to_numpy
from engine.products import describe


@dataclass
class InnerProductView:
    """Everything the inspector shows for one InnerProduct layer.

    Shapes (Caffe's names): ``W`` N_×K_ (K_×N_ when transposed), ``b`` / ``db`` N_,
    ``a`` = bottom data M_×K_, ``delta`` = top diff M_×N_ (δ arriving),
    ``delta_down`` = bottom diff M_×K_ (δ sent down; None where the input takes
    no gradient, e.g. the first layer above the data: then ``propagate_down`` is
    False; ``bottom_name`` names the input blob). ``pending_backward``: mid-iteration,
    this layer's backward has not run yet, so dW, db, δ and δ_down are None. ``dW`` / ``db`` are the raw
    gradients of the last backward (before decay, momentum and lr), ``update_W`` /
    ``update_b`` the update ΔW the solver applied (None until one was applied).
    """

    layer: str
    dims: dict[str, int]
    transpose: bool
    W: numpy.ndarray
    b: numpy.ndarray | None
    dW: numpy.ndarray | None = None
    db: numpy.ndarray | None = None
    a: numpy.ndarray | None = None
    delta: numpy.ndarray | None = None
    delta_down: numpy.ndarray | None = None
    update_W: numpy.ndarray | None = None
    update_b: numpy.ndarray | None = None
    forward_products: list[str] = field(default_factory=list)
    backward_products: list[str] = field(default_factory=list)
    bottom_name: str = ""
    propagate_down: bool = True
    pending_backward: bool = False


@dataclass
class SolverInfo:
    """The numbers of the update rule, for display beside the maps."""

    type: str
    iteration: int
    learning_rate: float
    momentum: float
    weight_decay: float
    regularization: str
    clip_gradients: float
    loss: float
    smoothed_loss: float

    def rule_text(self) -> str:
        """The solver's update rule (the engine's ``update_formula``) with the current numbers."""
        from engine.solver import solver_class
        decay = (f"{self.weight_decay:g}·W" if self.regularization == "L2"
                 else f"{self.weight_decay:g}·sign(W)")
        return solver_class(self.type).rule_text(
            {"lr": float(self.learning_rate), "momentum": float(self.momentum), "g": f"(dW + {decay})"})


def inner_product_layers(net) -> list[str]:
    """Names of the net's InnerProduct layers, in order."""
    return [layer.name for layer in net.layers if layer.type_name == "InnerProduct"]


def prepare_for_inspection(solver) -> None:
    """Ask the engine to keep raw gradients and the δ of every InnerProduct layer (and of
    the other layers the inspector shows: gui.model.param_layer_frames.inspected_layers)."""
    from gui.model.param_layer_frames import inspected_layers
    solver.capture_gradients = True
    solver.net.capture_layers = set(inner_product_layers(solver.net)) | set(inspected_layers(solver.net))


def _param_indices(net) -> dict[int, int]:
    """id(param blob) -> index into net.learnable_params / solver.raw_gradients."""
    return {id(blob): i for i, blob in enumerate(net.learnable_params)}


def inner_product_views(solver, names: list[str] | None = None, *, update_applied: bool = True,
                        last_event=None) -> dict[str, InnerProductView]:
    """Host copies of W, b, dW, db, a, δ, δ_down and ΔW for the named layers.

    ``update_applied`` says whether the param diffs hold the solver's update (after
    a full iteration; dW / db then come from the raw gradients the solver captured)
    or this iteration's raw gradient so far (mid-iteration: forward and backward
    stops of the step-through; dW / db are then the param diffs themselves, and no
    update is shown). ``last_event`` (the step-through's last stop, mid-iteration)
    tells which layers have not run their backward yet in this iteration: their
    dW, db, δ and δ_down are left out (``pending_backward``) instead of showing the
    previous iteration's.
    """
    net = solver.net
    wanted = inner_product_layers(net) if names is None else names
    pending = set() if update_applied else _pending_backward(net, last_event)
    return {name: _any_view(solver, name, update_applied, name in pending) for name in wanted}


def _any_view(solver, name: str, update_applied: bool, pending: bool):
    """An InnerProductView; for a data layer its batch (gui.model.data_batch), for any other
    layer its LayerFrame (gui.model.param_layer_frames)."""
    net = solver.net
    index = net.layer_index(name)
    if net.layers[index].type_name == "InnerProduct":
        return _layer_view(solver, name, update_applied, pending)
    from gui.model import data_batch, param_layer_frames
    if data_batch.is_data_layer(net, index):
        return data_batch.data_batch(net, name)
    return param_layer_frames.layer_frame(solver, name, update_applied=update_applied, pending=pending)


def _pending_backward(net, last_event) -> set[str]:
    """Layers whose backward has not run yet in the current iteration (mid-iteration)."""
    if last_event is None:
        return set()
    kind = getattr(last_event, "kind", None)
    if kind == "forward":
        return {layer.name for layer in net.layers}
    if kind == "backward" and last_event.layer_index is not None:
        return {layer.name for layer in net.layers[:last_event.layer_index]}
    return set()


def _layer_view(solver, name: str, update_applied: bool, pending: bool) -> InnerProductView:
    net = solver.net
    i = net.layer_index(name)
    layer = net.layers[i]
    dims, forward, backward = describe(layer)
    weight = layer.blobs[0]
    bias = layer.blobs[1] if len(layer.blobs) > 1 else None
    view = InnerProductView(
        layer=name, dims=dims, transpose=layer.transpose,
        W=to_numpy(weight.data).copy(), b=None if bias is None else to_numpy(bias.data).copy(),
        a=to_numpy(net.bottoms_of(i)[0].data).reshape(dims["M_"], dims["K_"]).copy(),
        forward_products=forward, backward_products=backward,
        bottom_name=net.bottom_names[i][0], propagate_down=bool(net.bottom_need_backward[i][0]),
        pending_backward=pending)
    if pending:
        return view
    if update_applied:
        view.dW, view.db = _raw_gradients(solver, weight, bias)
        if solver.iter > 0:
            view.update_W = to_numpy(weight.diff).copy()
            view.update_b = None if bias is None else to_numpy(bias.diff).copy()
    else:
        view.dW = to_numpy(weight.diff).copy()
        view.db = None if bias is None else to_numpy(bias.diff).copy()
    captured = net.captured.get(name, {})
    if "top_diff" in captured:
        view.delta = to_numpy(captured["top_diff"]).reshape(dims["M_"], dims["N_"]).copy()
    if "bottom_diff" in captured and net.bottom_need_backward[i][0]:
        view.delta_down = to_numpy(captured["bottom_diff"]).reshape(dims["M_"], dims["K_"]).copy()
    return view


def _raw_gradients(solver, weight, bias):
    """(dW, db) host copies of the raw gradients the solver captured, or None where there are none."""
    raw = solver.raw_gradients
    index_of = _param_indices(solver.net)
    found = []
    for blob in (weight, bias):
        k = index_of.get(id(blob)) if blob is not None else None
        found.append(to_numpy(raw[k]).copy() if raw and k is not None and k < len(raw) else None)
    return found[0], found[1]


def solver_info(solver, loss: float = float("nan")) -> SolverInfo:
    p = solver.param
    return SolverInfo(type=solver.type_name, iteration=solver.iter, learning_rate=solver.learning_rate,
                      momentum=p.momentum, weight_decay=p.weight_decay,
                      regularization=p.regularization_type, clip_gradients=p.clip_gradients,
                      loss=loss, smoothed_loss=solver.smoothed_loss)


def stats(array: numpy.ndarray | None) -> dict[str, Any]:
    """min, max, mean |x| and L2 norm of an array, cheap enough for every frame.

    Also ``nonfinite`` (count of NaN/inf), ``first_nonfinite`` (index tuple of the
    first one, or None) and ``finite_min`` / ``finite_max`` (over the finite
    entries; what symmetric colour levels are computed from).
    """
    nan = float("nan")
    if array is None or array.size == 0:
        return {"min": nan, "max": nan, "mean_abs": nan, "l2": nan, "nonfinite": 0,
                "first_nonfinite": None, "finite_min": nan, "finite_max": nan}
    flat = numpy.ascontiguousarray(array).reshape(-1)
    lo, hi = float(flat.min()), float(flat.max())
    result: dict[str, Any] = {"min": lo, "max": hi, "nonfinite": 0, "first_nonfinite": None,
              "finite_min": lo, "finite_max": hi}
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = numpy.isfinite(flat)
        bad = numpy.flatnonzero(~finite)
        result["nonfinite"] = int(bad.size)
        result["first_nonfinite"] = tuple(int(i) for i in numpy.unravel_index(int(bad[0]), array.shape))
        good = flat[finite]
        result["finite_min"] = float(good.min()) if good.size else nan
        result["finite_max"] = float(good.max()) if good.size else nan
    result["mean_abs"] = float(numpy.abs(flat).sum(dtype=numpy.float64)) / flat.size
    result["l2"] = l2_norm(flat)
    return result


def l2_norm(flat: numpy.ndarray) -> float:
    """Euclidean norm, accumulated in float64 without a float64 copy (and without BLAS threads)."""
    flat = numpy.asarray(flat).reshape(-1)
    return math.sqrt(float(numpy.einsum("i,i->", flat, flat, dtype=numpy.float64)))


@dataclass
class Frame:
    """One redraw's worth of state, copied out of the solver."""

    iteration: int
    loss: float
    smoothed_loss: float
    learning_rate: float
    device: str
    views: dict
    info: object
    event: object = None
    nonfinite: object = None  # a session.NonFiniteStop
    mid_iteration: bool = False
    #: from the solver process only: the curve points made since its last frame
    #: (the worker adds them to the session's metrics; the window reads the metrics)
    train_points: tuple = ((), (), (), ())
    test_points: list = field(default_factory=list)
    rate: float = 0.0
    running: bool = False
    progress: tuple[int, int] = (0, 0)
