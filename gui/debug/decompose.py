"""The update taken apart, for one parameter blob (Qt-free).

At the moment after the backward pass and before the solver touches anything
(the step-through's ``clip`` event, with ``solver.capture_gradients`` on),
:class:`PreUpdate` copies the raw gradients, weights, histories and numbers.
:func:`decompose` then re-derives, in the engine's float32 order of operations,
every stage of the solver's update for one parameter:

raw dW → clipped dW (global L2 clip) → ÷ iter_size → + decay (λ·W or λ·sign W)
→ the solver rule (momentum / Adam / ... histories) → ΔW → W − ΔW.

Each stage is a :class:`Term` with its formula and the numbers substituted.
For SGD and Nesterov the update is also split into additive pieces (momentum,
gradient, decay) whose sum is ΔW.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

from engine import backend
from engine.events import CLIP


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
class PreUpdate:
    """Host copies of what the solver's update will read, taken before it runs."""

    solver_type: str
    iteration: int
    rate: float
    raw: list[numpy.ndarray]
    weights: list[numpy.ndarray]
    history: list[numpy.ndarray]
    lr_mults: list[float]
    decay_mults: list[float]
    names: list[str]
    param: object  # the SolverParameter (read-only)

    @classmethod
    def capture(cls, solver, rate: float | None = None) -> "PreUpdate":
        """Copy the state; call at the ``clip`` event (needs ``solver.capture_gradients``)."""
        net = solver.net
        if len(solver.raw_gradients) != len(net.learnable_params):
            raise RuntimeError("turn on solver.capture_gradients before the iteration to take the update apart")
        from engine.lr_policy import learning_rate
        if rate is None:
            rate = float(learning_rate(solver.param, solver.iter, solver.current_step)[0])
        return cls(solver_type=solver.type_name, iteration=solver.iter, rate=float(rate),
                   raw=[backend.to_numpy(g).copy() for g in solver.raw_gradients],
                   weights=[backend.to_numpy(b.data).copy() for b in net.learnable_params],
                   history=[backend.to_numpy(h).copy() for h in solver.history],
                   lr_mults=list(net.lr_mults), decay_mults=list(net.decay_mults),
                   names=list(net.param_display_names), param=solver.param)


    @classmethod
    def from_checkpoint(cls, checkpoint, solver) -> "PreUpdate":
        """The state before the iteration just finished: weights and histories from
        ``checkpoint`` (a rewind checkpoint taken before it), this iteration's raw
        gradients and learning rate from ``solver``."""
        net = solver.net
        if solver.iter != checkpoint.iteration + 1:
            raise ValueError(f"the checkpoint is of iteration {checkpoint.iteration}, not the one before "
                             f"{solver.iter}")
        if len(solver.raw_gradients) != len(net.learnable_params):
            raise RuntimeError("turn on solver.capture_gradients to take the update apart")
        order = {}
        for layer in net.layers:
            for blob in layer.blobs:
                order.setdefault(id(blob), len(order))
        weights = [checkpoint.params[order[id(b)]] for b in net.learnable_params]
        return cls(solver_type=solver.type_name, iteration=checkpoint.iteration, rate=float(solver.learning_rate),
                   raw=[backend.to_numpy(g).copy() for g in solver.raw_gradients], weights=weights,
                   history=list(checkpoint.history), lr_mults=list(net.lr_mults),
                   decay_mults=list(net.decay_mults), names=list(net.param_display_names), param=solver.param)


def param_index(net, layer: str, j: int = 0) -> int:
    """Index in ``net.learnable_params`` of ``layer``'s j-th parameter (W=0, b=1)."""
    blob = net.params[layer][j]
    for i, candidate in enumerate(net.learnable_params):
        if candidate is blob:
            return i
    raise KeyError(f"layer '{layer}' parameter {j} is not learnable here")


def _clip_scale(pre: PreUpdate) -> tuple[numpy.float32 | None, float]:
    clip = pre.param.clip_gradients
    sumsq = sum(float(g.reshape(-1) @ g.reshape(-1)) for g in pre.raw)
    norm = math.sqrt(sumsq)
    if clip < 0 or norm <= clip:
        return None, norm
    return numpy.float32(clip / norm), norm


def decompose(pre: PreUpdate, index: int) -> Decomposition:
    """Every stage of the update of learnable parameter ``index`` (see module docstring)."""
    p, f32 = pre.param, numpy.float32
    W = pre.weights[index]
    raw = pre.raw[index]
    name = pre.names[index] if index < len(pre.names) else f"param{index}"
    local_rate = f32(pre.rate) * f32(pre.lr_mults[index])
    local_decay = f32(p.weight_decay) * f32(pre.decay_mults[index])
    numbers = {"lr": pre.rate, "lr_mult": pre.lr_mults[index], "local lr": float(local_rate),
               "weight_decay": p.weight_decay, "decay_mult": pre.decay_mults[index]}
    result = Decomposition(name, index, pre.solver_type, numbers, pre.iteration)
    add = result.terms.append
    add(Term("dW", "raw dW", "dW = δᵀ · a  (this iteration's backward)", raw))

    g = raw.copy()
    scale, norm = _clip_scale(pre)
    if scale is not None:
        g *= scale
    clip_text = (f"‖g‖ = {norm:.4g} > clip = {p.clip_gradients:g}: × {float(scale):.4g}" if scale is not None
                 else f"‖g‖ = {norm:.4g}; clip_gradients = {p.clip_gradients:g} (no clipping)")
    iter_size = max(1, p.iter_size)
    if iter_size > 1:
        g *= g.dtype.type(1.0 / iter_size)
        clip_text += f"; ÷ iter_size {iter_size}"
    add(Term("clipped", "clipped / normalized dW", "dW · min(1, clip/‖g‖) / iter_size", g.copy(), clip_text))

    kind = p.regularization_type
    if local_decay:
        decay_base = W if kind == "L2" else numpy.sign(W)
        decay = local_decay * decay_base
        g += decay
    else:
        decay = numpy.zeros_like(W)
    decay_formula = "λ·W" if kind == "L2" else "λ·sign(W)"
    add(Term("decay", f"decay term {decay_formula}", f"λ = weight_decay · decay_mult = {float(local_decay):g}",
             decay, f"regularization {kind}"))
    add(Term("gradient", "regularized gradient g", "g = clipped dW + " + decay_formula, g.copy()))

    rule = _RULES.get(pre.solver_type)
    if rule is None:
        raise ValueError(f"no decomposition for solver type '{pre.solver_type}'")
    update = rule(pre, index, g, local_rate, result)
    add(Term("update", "update ΔW", "W ← W − ΔW", update))
    add(Term("W_before", "W before", "", W))
    add(Term("W_after", "W after", "W − ΔW", W - update))
    return result


def _history(pre: PreUpdate, index: int, which: int = 0) -> numpy.ndarray:
    return pre.history[index + which * len(pre.weights)].copy()


def _momentum_step(pre, index, g, local_rate, result, note: str):
    """SGD's and Nesterov's common part: μ, V before, and V' = μ·V + lr·g as the engine computes it."""
    m = numpy.float32(pre.param.momentum)
    old = _history(pre, index)
    result.numbers["momentum"] = float(m)
    result.terms.append(Term("history", "momentum history V (before)", note, old.copy()))
    h = old.copy()
    h *= m
    h += local_rate * g
    return m, old, h


def _sgd(pre, index, g, local_rate, result):
    m, old, h = _momentum_step(pre, index, g, local_rate, result, "V = previous ΔW")
    clipped, decay = result.term("clipped").array, result.term("decay").array
    result.terms += [
        Term("momentum_term", "momentum term μ·V", f"μ = {float(m):g}", m * old),
        Term("gradient_term", "gradient term lr·dW", f"lr = {float(local_rate):g}", local_rate * clipped),
        Term("decay_step", "decay term lr·λ·W", "", local_rate * decay)]
    result.pieces = ["momentum_term", "gradient_term", "decay_step"]
    return h


def _nesterov(pre, index, g, local_rate, result):
    m, old, h = _momentum_step(pre, index, g, local_rate, result, "")
    update = (numpy.float32(1) + m) * h - m * old
    clipped, decay = result.term("clipped").array, result.term("decay").array
    one_m = numpy.float64(1) + numpy.float64(m)
    result.terms += [
        Term("momentum_term", "momentum term μ²·V", "(1+μ)·μ·V − μ·V", numpy.float64(m) ** 2 * old),
        Term("gradient_term", "gradient term (1+μ)·lr·dW", "", one_m * numpy.float64(local_rate) * clipped),
        Term("decay_step", "decay term (1+μ)·lr·λ·W", "", one_m * numpy.float64(local_rate) * decay)]
    result.pieces = ["momentum_term", "gradient_term", "decay_step"]
    return update


def _adagrad(pre, index, g, local_rate, result):
    h = _history(pre, index)
    h += g * g
    delta = numpy.float32(pre.param.delta)
    result.terms.append(Term("history", "Σ g² (after)", "h ← h + g²", h.copy()))
    update = g.copy()
    update /= numpy.sqrt(h) + delta
    update *= local_rate
    return update


def _rmsprop(pre, index, g, local_rate, result):
    h = _history(pre, index)
    decay = numpy.float32(pre.param.rms_decay)
    h *= decay
    h += (numpy.float32(1) - decay) * (g * g)
    result.terms.append(Term("history", "mean g² (after)", f"h ← {float(decay):g}·h + (1−{float(decay):g})·g²",
                             h.copy()))
    update = g.copy()
    update /= numpy.sqrt(h) + numpy.float32(pre.param.delta)
    update *= local_rate
    return update


def _adadelta(pre, index, g, local_rate, result):
    f32 = numpy.float32
    h, h2 = _history(pre, index, 0), _history(pre, index, 1)
    m, delta = f32(pre.param.momentum), f32(pre.param.delta)
    h *= m
    h += (f32(1) - m) * (g * g)
    update = g.copy()
    update *= numpy.sqrt((h2 + delta) / (h + delta))
    h2 *= m
    h2 += (f32(1) - m) * (update * update)
    update *= local_rate
    result.terms += [Term("history", "mean g² (after)", "", h), Term("history2", "mean Δ² (after)", "", h2)]
    return update


def _adam(pre, index, g, local_rate, result):
    f32 = numpy.float32
    mom, v = _history(pre, index, 0), _history(pre, index, 1)
    beta1, beta2 = f32(pre.param.momentum), f32(pre.param.momentum2)
    t = pre.iteration + 1
    mom *= beta1
    mom += (f32(1) - beta1) * g
    v *= beta2
    v += (f32(1) - beta2) * (g * g)
    correction = f32(math.sqrt(1.0 - float(beta2) ** t) / (1.0 - float(beta1) ** t))
    update = numpy.divide(mom, numpy.sqrt(v) + f32(pre.param.delta))
    update *= local_rate * correction
    result.numbers.update({"beta1": float(beta1), "beta2": float(beta2), "t": t,
                           "bias correction": float(correction)})
    result.terms += [Term("history", "first moment m (after)", f"m ← {float(beta1):g}·m + (1−β1)·g", mom),
                     Term("history2", "second moment v (after)", f"v ← {float(beta2):g}·v + (1−β2)·g²", v)]
    return update


_RULES = {"SGD": _sgd, "Nesterov": _nesterov, "AdaGrad": _adagrad, "RMSProp": _rmsprop,
          "AdaDelta": _adadelta, "Adam": _adam}


def step_with_decomposition(solver, indices=None) -> tuple[dict[int, Decomposition], float]:
    """Run one iteration through the step-through, taking the update of the
    parameters ``indices`` (default: all) apart at the clip event."""
    solver.capture_gradients = True
    found: dict[int, Decomposition] = {}
    loss = float("nan")
    for event in solver.iteration_events():
        if event.kind == CLIP:
            pre = PreUpdate.capture(solver, event.detail.get("rate"))
            for i in (indices if indices is not None else range(len(pre.weights))):
                found[i] = decompose(pre, i)
        if event.kind == "iteration_end":
            loss = float(event.detail["loss"])
    return found, loss
