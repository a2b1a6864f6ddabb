"""The update taken apart, for one parameter blob (Qt-free).

:class:`UpdateCapture` is an observer of the engine's iteration body
(``engine.events.Observer``): while the view is open it sits in
``solver.observers`` and keeps host copies of what each of Caffe's stages
actually produced for every learnable param (raw dW, after ClipGradients and
Normalize, the decay term Regularize added, the histories before and after
ComputeUpdateValue, the update, W before and after Update). :func:`decompose`
lays one param's copies out as terms with formulas; nothing is recomputed,
so ΔW and W after are the engine's own arrays:

raw dW → clipped / ÷ iter_size → + decay (λ·W or λ·sign W) → the solver rule
(its formula from ``engine.solver``) → ΔW → W − ΔW.

For SGD and Nesterov the update is also split, for reading, into additive
pieces (momentum, gradient, decay) whose sum is ΔW up to float32 rounding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy

from engine import backend
from engine.events import CLIP_GRADIENTS, COMPUTE_UPDATE_VALUE, NET_UPDATE, NORMALIZE, REGULARIZE, Observer
from engine.solver import solver_class


@dataclass
class Term:
    """One map of the decomposition."""

    key: str
    title: str
    formula: str
    array: numpy.ndarray
    numbers: str = ""


@dataclass
class Decomposition:
    param: str
    param_index: int
    solver_type: str
    numbers: dict[str, float]
    iteration: int = 0
    terms: list[Term] = field(default_factory=list)
    #: keys of the terms whose sum is ΔW (empty for adaptive solvers)
    pieces: list[str] = field(default_factory=list)

    def term(self, key: str) -> Term:
        for term in self.terms:
            if term.key == key:
                return term
        raise KeyError(f"no term '{key}' (have: {', '.join(t.key for t in self.terms)})")

    @property
    def update(self) -> numpy.ndarray:
        return self.term("update").array

    @property
    def w_after(self) -> numpy.ndarray:
        return self.term("W_after").array

    def pieces_sum(self) -> numpy.ndarray | None:
        if not self.pieces:
            return None
        total = numpy.zeros_like(self.update, dtype=numpy.float64)
        for key in self.pieces:
            total += self.term(key).array
        return total

    def numbers_text(self) -> str:
        return ", ".join(f"{k} = {v:g}" for k, v in self.numbers.items())


@dataclass
class CapturedUpdate:
    """What one iteration's update stages produced, as host copies (see UpdateCapture)."""

    solver_type: str
    iteration: int
    param: Any  # the SolverParameter (read-only)
    names: list[str]
    lr_mults: list[float]
    decay_mults: list[float]
    rate: float = float("nan")
    norm: float | None = None
    #: per param index: stage key -> array (dW, clipped, decay, gradient, update, W_before, W_after)
    arrays: dict[int, dict[str, numpy.ndarray]] = field(default_factory=dict)
    #: per param index: the histories before and after ComputeUpdateValue
    history_before: dict[int, list[numpy.ndarray]] = field(default_factory=dict)
    history_after: dict[int, list[numpy.ndarray]] = field(default_factory=dict)
    complete: bool = False


def _host(array) -> numpy.ndarray:
    return backend.to_numpy(array).copy()


class UpdateCapture(Observer):
    """Copies what each update stage produced for the params ``indices`` (all when
    None); ``last`` is the latest complete iteration's :class:`CapturedUpdate`."""

    def __init__(self, indices: list[int] | None = None):
        self.indices = indices
        self.last: CapturedUpdate | None = None
        self._current: CapturedUpdate | None = None

    def _wanted(self, solver) -> list[int]:
        count = len(solver.net.learnable_params)
        return list(range(count)) if self.indices is None else [i for i in self.indices if i < count]

    def _histories(self, solver, i: int) -> list[numpy.ndarray]:
        n = len(solver.net.learnable_params)
        return [_host(solver.history[i + k * n]) for k in range(solver.histories_per_param)]

    def on_gradients_ready(self, solver, loss: float) -> None:
        net = solver.net
        current = CapturedUpdate(solver.type_name, solver.iter, solver.param, list(net.param_display_names),
                                 list(net.lr_mults), list(net.decay_mults))
        for i in self._wanted(solver):
            blob = net.learnable_params[i]
            current.arrays[i] = {"dW": _host(blob.diff), "W_before": _host(blob.data)}
            current.history_before[i] = self._histories(solver, i)
        self._current = current

    def after_stage(self, solver, stage: str, param_index: int | None, detail: dict) -> None:
        current = self._current
        if current is None:
            return
        params = solver.net.learnable_params
        if stage == CLIP_GRADIENTS:
            current.norm = detail.get("norm")
        elif param_index is not None and param_index in current.arrays:
            arrays = current.arrays[param_index]
            diff = params[param_index].diff
            if stage == NORMALIZE:
                arrays["clipped"] = _host(diff)
            elif stage == REGULARIZE:
                term = detail.get("decay_term")
                arrays["decay"] = _host(term) if term is not None else numpy.zeros_like(arrays["clipped"])
                arrays["gradient"] = _host(diff)
            elif stage == COMPUTE_UPDATE_VALUE:
                arrays["update"] = _host(diff)
                current.history_after[param_index] = self._histories(solver, param_index)
                current.rate = float(detail["rate"])
        elif stage == NET_UPDATE:
            for i, arrays in current.arrays.items():
                arrays["W_after"] = _host(params[i].data)

    def on_iteration_end(self, solver, loss: float) -> None:
        if self._current is not None:
            self._current.complete = True
            self.last, self._current = self._current, None


def param_index(net, layer: str, j: int = 0) -> int:
    """Index in ``net.learnable_params`` of ``layer``'s j-th parameter (W=0, b=1)."""
    blob = net.params[layer][j]
    for i, candidate in enumerate(net.learnable_params):
        if candidate is blob:
            return i
    raise KeyError(f"layer '{layer}' parameter {j} is not learnable here")


def decompose(captured: CapturedUpdate, index: int) -> Decomposition:
    """The stages of learnable param ``index``'s update, as the engine produced them."""
    if not captured.complete or index not in captured.arrays:
        raise KeyError(f"param {index} was not captured in iteration {captured.iteration}")
    p, f32 = captured.param, numpy.float32
    arrays = captured.arrays[index]
    name = captured.names[index] if index < len(captured.names) else f"param{index}"
    local_rate = f32(captured.rate) * f32(captured.lr_mults[index])
    local_decay = f32(p.weight_decay) * f32(captured.decay_mults[index])
    numbers = {"lr": captured.rate, "lr_mult": captured.lr_mults[index], "local lr": float(local_rate),
               "weight_decay": p.weight_decay, "decay_mult": captured.decay_mults[index]}
    result = Decomposition(name, index, captured.solver_type, numbers, captured.iteration)
    add = result.terms.append
    add(Term("dW", "raw dW", "dW = δᵀ · a  (this iteration's backward)", arrays["dW"]))
    norm = captured.norm
    if norm is None:
        clip_text = "clip_gradients off"
    elif norm > p.clip_gradients:
        clip_text = f"‖g‖ = {norm:.4g} > clip = {p.clip_gradients:g}: × {p.clip_gradients / norm:.4g}"
    else:
        clip_text = f"‖g‖ = {norm:.4g}; clip_gradients = {p.clip_gradients:g} (no clipping)"
    if max(1, p.iter_size) > 1:
        clip_text += f"; ÷ iter_size {p.iter_size}"
    add(Term("clipped", "clipped / normalized dW", "dW · min(1, clip/‖g‖) / iter_size", arrays["clipped"],
             clip_text))
    kind = p.regularization_type
    decay_formula = "λ·W" if kind == "L2" else "λ·sign(W)"
    add(Term("decay", f"decay term {decay_formula}", f"λ = weight_decay · decay_mult = {float(local_decay):g}",
             arrays["decay"], f"regularization {kind}"))
    add(Term("gradient", "regularized gradient g", "g = clipped dW + " + decay_formula, arrays["gradient"]))
    _history_terms(captured, index, result)
    if captured.solver_type in ("SGD", "Nesterov"):
        _momentum_pieces(captured, index, local_rate, result)
    rule = solver_class(captured.solver_type).rule_text({"g": "g"})
    add(Term("update", "update ΔW", rule, arrays["update"]))
    add(Term("W_before", "W before", "", arrays["W_before"]))
    add(Term("W_after", "W after", "W − ΔW", arrays["W_after"]))
    return result


_HISTORY_TITLES = {
    "SGD": [("history", "momentum history V (before)", "V = previous ΔW", False)],
    "Nesterov": [("history", "momentum history V (before)", "", False)],
    "AdaGrad": [("history", "Σ g² (after)", "h ← h + g²", True)],
    "RMSProp": [("history", "mean g² (after)", "h ← ρ·h + (1−ρ)·g²", True)],
    "AdaDelta": [("history", "mean g² (after)", "", True), ("history2", "mean Δ² (after)", "", True)],
    "Adam": [("history", "first moment m (after)", "m ← β1·m + (1−β1)·g", True),
             ("history2", "second moment v (after)", "v ← β2·v + (1−β2)·g²", True)],
}


def _history_terms(captured: CapturedUpdate, index: int, result: Decomposition) -> None:
    """The solver's history arrays (before the update for momentum, after for the adaptive rules)."""
    for which, (key, title, formula, after) in enumerate(_HISTORY_TITLES.get(captured.solver_type, [])):
        source = captured.history_after if after else captured.history_before
        result.terms.append(Term(key, title, formula, source[index][which]))
    if captured.solver_type in ("SGD", "Nesterov", "AdaDelta", "Adam"):
        result.numbers["momentum"] = float(numpy.float32(captured.param.momentum))
    if captured.solver_type == "Adam":
        result.numbers.update({"beta1": float(numpy.float32(captured.param.momentum)),
                               "beta2": float(numpy.float32(captured.param.momentum2)),
                               "t": captured.iteration + 1})


def _momentum_pieces(captured: CapturedUpdate, index: int, local_rate, result: Decomposition) -> None:
    """SGD / Nesterov: ΔW as momentum + gradient + decay pieces (for reading; float64)."""
    m = numpy.float64(numpy.float32(captured.param.momentum))
    lr = numpy.float64(local_rate)
    old = captured.history_before[index][0].astype(numpy.float64)
    clipped = result.term("clipped").array.astype(numpy.float64)
    decay = result.term("decay").array.astype(numpy.float64)
    if captured.solver_type == "SGD":
        result.terms += [Term("momentum_term", "momentum term μ·V", f"μ = {float(m):g}", m * old),
                         Term("gradient_term", "gradient term lr·dW", f"lr = {float(lr):g}", lr * clipped),
                         Term("decay_step", "decay term lr·λ·W", "", lr * decay)]
    else:
        result.terms += [Term("momentum_term", "momentum term μ²·V", "(1+μ)·μ·V − μ·V", m ** 2 * old),
                         Term("gradient_term", "gradient term (1+μ)·lr·dW", "", (1 + m) * lr * clipped),
                         Term("decay_step", "decay term (1+μ)·lr·λ·W", "", (1 + m) * lr * decay)]
    result.pieces = ["momentum_term", "gradient_term", "decay_step"]


def step_with_decomposition(solver, indices=None) -> tuple[dict[int, Decomposition], float]:
    """Run one iteration with an :class:`UpdateCapture` watching; the decomposition
    of the params ``indices`` (default: all) and the loss."""
    capture = UpdateCapture(indices)
    solver.observers.append(capture)
    try:
        loss = float(solver.step(1))
    finally:
        solver.observers.remove(capture)
    captured = capture.last
    if captured is None:
        return {}, loss
    return {i: decompose(captured, i) for i in captured.arrays}, loss
