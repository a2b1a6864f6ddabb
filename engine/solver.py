"""Solvers: Caffe's SGD family, with the update split into Caffe's named stages
(ClipGradients, Normalize, Regularize, ComputeUpdateValue), and a step-through
that stops between any two phases of an iteration."""
from __future__ import annotations

import math
import os
from typing import Callable, Iterator

import numpy

from . import backend, rng, validate
from .errors import NetDefinitionError, NonFiniteError, SnapshotError, SolverParameterError
from .events import (
    BACKWARD,
    CLIP,
    CLIP_GRADIENTS,
    COMPUTE_UPDATE_VALUE,
    FORWARD,
    ITERATION_END,
    NET_UPDATE,
    NONFINITE,
    NORMALIZE,
    REGULARIZE,
    TEST,
    UPDATE,
    UPDATE_VALUE,
    Event,
    Observer,
)
from .flatparams import FlatParams
from .lr_policy import learning_rate
from .net import TEST as TEST_PHASE
from .net import TRAIN, Net
from .products import describe
from .proto import caffe_pb2
from .prototxt import parse_solver, resolve_path
from .python_layers import access_of

_SOLVERS: dict[str, type["Solver"]] = {}
_LEGACY_TYPES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}


def register_solver(type_name: str):
    def decorate(cls):
        cls.type_name = type_name
        _SOLVERS[type_name] = cls
        return cls
    return decorate


def get_solver(source, device: str | None = None, *, python_layers=None, path: str | None = None) -> "Solver":
    """The solver of the prototxt's ``type`` (pycaffe's ``caffe.get_solver``);
    ``python_layers`` as for Net (where Python layers' modules may come from);
    ``path``: the file a SolverParameter given as ``source`` was read from."""
    param, parsed_path = _solver_param(source)
    path = path or parsed_path
    kind = param.type if param.HasField("type") or not param.HasField("solver_type") \
        else _LEGACY_TYPES[param.solver_type]
    return solver_class(kind)(param, device=device, path=path, python_layers=python_layers)


def solver_class(kind: str) -> type["Solver"]:
    """The solver class of a Caffe solver type name ("SGD", "Adam", ...)."""
    cls = _SOLVERS.get(kind)
    if cls is None:
        raise NetDefinitionError(f"unknown solver type '{kind}' (supported: {', '.join(_SOLVERS)})")
    return cls


def _solver_param(source):
    if isinstance(source, caffe_pb2.SolverParameter):
        return source, None
    return parse_solver(source)


class Solver:
    """Plain SGD with momentum; subclasses change ``compute_update_value``."""

    type_name = "SGD"
    histories_per_param = 1
    #: The update rule as text (the one place the app takes it from; ``rule_text``
    #: fills in the numbers); ``{g}`` is the regularized gradient.
    update_formula = "V ← {momentum}·V + {lr}·{g};   W ← W − V"

    @classmethod
    def rule_text(cls, numbers: dict | None = None) -> str:
        """``update_formula`` with the given numbers (floats shown with %g) or symbols."""
        filled = {"lr": "lr", "momentum": "μ", "momentum2": "β₂", "delta": "δ", "rms_decay": "ρ", "g": "g"}
        for key, value in (numbers or {}).items():
            filled[key] = f"{value:g}" if isinstance(value, float) else str(value)
        return cls.update_formula.format_map(filled)

    def __init__(self, source, device: str | None = None, path: str | None = None, *, python_layers=None):
        if isinstance(source, caffe_pb2.SolverParameter):
            self.param, self.path = source, path
        else:
            self.param, self.path = parse_solver(source)
        validate.check_solver_param(self.param, self.path or "solver", self.type_name, warn=False)  # first
        if self.param.random_seed >= 0:
            rng.set_seed(self.param.random_seed)
        rng.reset_c_rand()  # glibc rand() as a fresh `caffe train` process has it (HDF5Data's shuffles)
        self.device = backend.normalize_device(device or backend.current_mode())
        #: where its nets' Python layers may be imported from (engine.python_layers); kept for rebuilds
        self.python_layers = access_of(python_layers).near(self.path)
        self.net = Net(self._train_net_param(), **self._state_arguments(self.param.train_state, TRAIN),
                       device=self.device, python_layers=self.python_layers)
        where = self.path or self.net.path or "solver"
        validate.warn_solver_param(self.param, where, self.type_name)
        validate.warn_if_nothing_to_learn(self.net, where)
        self.test_nets = [self._make_test_net(p, k) for k, p in enumerate(self._test_net_params())]
        if len(self.param.test_iter) != len(self.test_nets):
            if self.test_nets or self.param.test_iter:
                raise NetDefinitionError(
                    f"{self.path or 'solver'}: test_iter must be given once per test net "
                    f"({len(self.test_nets)} test net(s), {len(self.param.test_iter)} test_iter)")
        self.weights_reports = self._load_solver_weights()
        self.iter = 0
        self.current_step = 0
        self.history = [self._zeros_like(b) for _ in range(self.histories_per_param)
                        for b in self.net.learnable_params]
        self.losses: list[float] = []
        self.smoothed_loss = 0.0
        self.loss_window_start = 0  # Caffe's start_iter: the iteration the losses window began at
        self.learning_rate = float(learning_rate(self.param, 0, 0)[0])
        self.check_finite = True
        self.capture_gradients = False
        self.raw_gradients: list = []
        self.test_scores: list[tuple[int, dict[str, float]]] = ScoreLog()
        self._auto_snapshot = False
        self.on_snapshot: Callable[[list[str]], None] | None = None
        #: events.Observer instances: while any is here, step() runs the staged body
        self.observers: list[Observer] = []
        self._flat_params()  # params and history as views into contiguous buffers from the start

    # -- nets ----------------------------------------------------------
    def _train_net_param(self):
        p = self.param
        sources = [p.HasField("train_net_param"), p.HasField("train_net"), p.HasField("net_param"),
                   p.HasField("net")]
        if sum(sources) != 1:
            raise NetDefinitionError(
                f"{self.path or 'solver'}: give exactly one of train_net_param, train_net, net_param, net "
                f"(found {sum(sources)})")
        if p.HasField("train_net_param"):
            return _with_path(p.train_net_param, self.path)
        if p.HasField("train_net"):
            return self._net_text(p.train_net)
        if p.HasField("net_param"):
            return _with_path(p.net_param, self.path)
        return self._net_text(p.net)

    def _net_text(self, name: str):
        path = resolve_path(name, self.path)
        if not os.path.exists(path):
            raise NetDefinitionError(f"{self.path or 'solver'}: net file '{name}' not found (looked at {path})")
        return path

    def _test_net_params(self):
        p = self.param
        found = [_with_path(n, self.path) for n in p.test_net_param]
        found += [self._net_text(n) for n in p.test_net]
        remaining = len(p.test_iter) - len(found)  # Caffe: test_iters beyond them test the generic net
        if remaining > 0:
            if p.HasField("net_param"):
                found += [_with_path(p.net_param, self.path)] * remaining
            elif p.HasField("net"):
                found += [self._net_text(p.net)] * remaining
        return found

    def _state_arguments(self, state, phase: int) -> dict:
        """Net's phase / level / stages from a solver's train_state or test_state
        (Caffe merges it into the net's own state: fields it sets win, stages add up)."""
        return {"phase": state.phase if state.HasField("phase") else phase,
                "level": state.level if state.HasField("level") else None, "stages": list(state.stage)}

    def _make_test_net(self, source, index: int = 0) -> Net:
        states = self.param.test_state
        if states and len(states) != len(self._test_net_params()):
            raise NetDefinitionError(
                f"{self.path or 'solver'}: test_state must be unspecified or given once per test net "
                f"({len(states)} test_state for {len(self._test_net_params())} test net(s))")
        state = states[index] if states else caffe_pb2.NetState()
        net = Net(source, **self._state_arguments(state, TEST_PHASE), device=self.device,
                  python_layers=self.python_layers)
        net.share_weights(self.net)
        return net

    def _load_solver_weights(self) -> list:
        """The solver's ``weights`` field (Caffe's LoadNetWeights): each comma-separated
        file of each entry copied by layer name into the train net, then every test net.
        Returns the train net's WeightsReports."""
        from . import io
        paths = [resolve_path(name.strip(), self.path) for entry in self.param.weights for name in entry.split(",")]
        nets = [self.net, *self.test_nets]
        plans = [[io.plan_weights(net, path, require_match=False) for net in nets] for path in paths]
        for path, per_net in zip(paths, plans):  # all checked before any value is copied
            if not any(report.copied for report, _ in per_net):
                io.plan_weights(self.net, path)  # raises the error that names the file's layers
        for per_net in plans:
            for _, assignments in per_net:
                io.apply_weights(assignments)
        return [per_net[0][0] for per_net in plans]

    def _zeros_like(self, blob):
        return blob.xp.zeros(blob.shape, dtype=blob.dtype)

    # -- stages of one iteration ---------------------------------------
    def _begin_iteration(self) -> None:
        self.net.clear_param_diffs()

    def _should_test(self) -> bool:
        interval = self.param.test_interval
        return bool(self.test_nets) and interval > 0 and self.iter % interval == 0 and \
            (self.iter > 0 or self.param.test_initialization)

    def test_all(self) -> dict[str, float]:
        """Run every test net for its test_iter passes; the mean of each output element
        (Caffe's Solver::Test: each element summed over the passes in Dtype, then ÷ test_iter;
        an output of several elements gives ``name[j]`` for each)."""
        scores: dict[str, float] = {}
        for k, (net, count) in enumerate(zip(self.test_nets, self.param.test_iter)):
            net.share_weights(self.net)  # Caffe's Test: ShareTrainedLayersWith, every time
            totals: dict = {}
            for _ in range(count):
                for name, value in net.forward().items():
                    flat = backend.to_numpy(value).reshape(-1)
                    total = totals.get(name)
                    totals[name] = flat.copy() if total is None else total + flat
            prefix = "" if len(self.test_nets) == 1 else f"test{k}/"
            for name, total in totals.items():
                means = total / total.dtype.type(count)
                if means.size == 1:
                    scores[prefix + name] = float(means[0])
                else:
                    scores.update((f"{prefix}{name}[{j}]", float(v)) for j, v in enumerate(means))
        self.test_scores.append((self.iter, scores))
        return scores

    def _update_smoothed_loss(self, loss: float) -> None:
        average = max(1, self.param.average_loss)
        if not self.losses:
            self.loss_window_start = self.iter
        if len(self.losses) < average:
            self.losses.append(loss)
            self.smoothed_loss = (self.smoothed_loss * (len(self.losses) - 1) + loss) / len(self.losses)
        else:
            index = (self.iter - self.loss_window_start) % average  # the oldest loss in the window
            self.smoothed_loss += (loss - self.losses[index]) / average
            self.losses[index] = loss

    def _capture_raw_gradients(self) -> None:
        if len(self.raw_gradients) != len(self.net.learnable_params) or \
                (self.raw_gradients and type(self.raw_gradients[0]) is not type(self.net.learnable_params[0].diff)):
            self.raw_gradients = [b.diff.copy() for b in self.net.learnable_params]
        else:
            for buf, blob in zip(self.raw_gradients, self.net.learnable_params):
                buf[...] = blob.diff

    def _check_gradients_finite(self, flat_params=None) -> None:
        if flat_params is not None:  # one BLAS dot over all diffs: NaN/inf make it non-finite
            total = flat_params.diff.dot(flat_params.diff).item()  # one read
        else:
            squares = None  # summed where the diffs are (in float64): one read below
            for blob in self.net.learnable_params:
                diff = blob.diff
                flat = diff if diff.ndim == 1 else diff.reshape(-1)
                square = flat.dot(flat).astype(numpy.float64)
                squares = square if squares is None else squares + square
            total = 0.0 if squares is None else squares.item()
        if not math.isfinite(total):
            error = self.net.first_nonfinite(self.iter)
            if error is not None:
                raise error

    def _check_loss_finite(self, loss: float) -> None:
        if not math.isfinite(loss):
            raise self.net.first_nonfinite(self.iter) or NonFiniteError(self.iter, "loss", "loss", "forward")

    def clip_gradients(self) -> float | None:
        """Scale every diff by clip/‖g‖ when the global L2 norm exceeds ``clip_gradients``.
        Returns the norm (None when clipping is off)."""
        clip = self.param.clip_gradients
        if clip < 0:
            return None
        # Caffe: the Dtype sum of each blob's sumsq_diff, its sqrt, the test and clip/norm, all in Dtype
        params = self.net.learnable_params
        dtype = params[0].dtype.type if params else numpy.float32
        sumsq = dtype(0.0)
        for b in params:
            sumsq = dtype(sumsq + dtype((b.diff.reshape(-1) @ b.diff.reshape(-1)).item()))
        norm, clip_typed = dtype(math.sqrt(sumsq)), dtype(clip)
        if norm > clip_typed:
            scale = clip_typed / norm
            for blob in self.net.learnable_params:
                diff = blob.diff
                diff *= scale  # in place: the blob keeps its array
        return float(norm)

    def normalize(self, i: int) -> None:
        """Caffe's Normalize: param ``i``'s diff ÷ iter_size (gradients accumulated over passes)."""
        blob = self.net.learnable_params[i]
        scale = self._normalize_scale(blob.dtype.type)
        if scale is not None:
            diff = blob.diff
            diff *= scale

    def _normalize_scale(self, dtype):
        """The factor Normalize multiplies by, in ``dtype``; None when iter_size is 1."""
        return dtype(1.0 / self.param.iter_size) if self.param.iter_size > 1 else None

    def scratch(self, i: int, which: int = 0):
        """A reusable buffer shaped like param ``i`` (for the update's intermediate
        products, so no stage allocates per step); ``which`` picks one of two."""
        buffers = self.__dict__.setdefault("_scratch_buffers", [])
        slot = 2 * i + which
        if len(buffers) <= slot:
            buffers.extend([None] * (slot + 1 - len(buffers)))
        diff = self.net.learnable_params[i].diff
        buf = buffers[slot]
        if buf is None or buf.shape != diff.shape or type(buf) is not type(diff) or buf.dtype != diff.dtype:
            buf = buffers[slot] = backend.get_array_module(diff).empty_like(diff)
        return buf

    def _typed_constant(self, key, make):
        """A per-solver cache of the numpy scalars the update multiplies by (they are
        rebuilt only when a prototxt value, multiplier or dtype they come from changes)."""
        cache = self.__dict__.setdefault("_constants", {})
        value = cache.get(key)
        if value is None:
            if len(cache) > 4096:
                cache.clear()
            value = cache[key] = make()
        return value

    def regularize(self, i: int):
        """Caffe's Regularize: param ``i``'s diff += λ·W (L2) or λ·sign(W) (L1), λ =
        weight_decay · decay_mult. Returns the term added (a scratch buffer; None
        when λ is 0)."""
        blob = self.net.learnable_params[i]
        decay = self._decay(blob.dtype, self.net.decay_mults[i])
        if not decay:
            return None
        scratch = self.scratch(i)
        _add_decay(blob.xp, blob.diff, blob.data, decay, self.param.regularization_type, scratch)
        blob.diff_is_clear = False
        return scratch

    def _decay(self, dtype, decay_mult):
        """λ = weight_decay · decay_mult in ``dtype`` (float32 product, as Caffe); the
        regularization type is checked whenever λ is not 0."""
        weight_decay = self.param.weight_decay
        decay = self._typed_constant(
            ("decay", weight_decay, decay_mult, dtype),
            lambda: dtype.type(numpy.float32(weight_decay) * numpy.float32(decay_mult)))
        if decay and self.param.regularization_type not in ("L1", "L2"):
            raise NetDefinitionError(
                f"unknown regularization_type '{self.param.regularization_type}' (use L1 or L2)")
        return decay

    def local_rate(self, i: int, rate) -> numpy.float32:
        lr_mult = self.net.lr_mults[i]
        return self._typed_constant(("rate", rate, lr_mult),
                                    lambda: numpy.float32(rate) * numpy.float32(lr_mult))

    def _typed(self, name: str, value, blob):
        """``blob.dtype.type(value)``, cached."""
        return self._typed_constant((name, value, blob.dtype), lambda: blob.dtype.type(value))

    def compute_update_value(self, i: int, rate) -> None:
        """Turn param ``i``'s diff into its update with the solver's rule (``update_rule``)."""
        blob = self.net.learnable_params[i]
        n = len(self.net.learnable_params)
        histories = [self.history[i + k * n] for k in range(self.histories_per_param)]
        local_rate = self._typed("local_rate", self.local_rate(i, rate), blob)
        self.update_rule(blob.xp, blob.diff, histories, local_rate, lambda which=0: self.scratch(i, which))

    def update_rule(self, xp, diff, histories, local_rate, scratch) -> None:
        """SGD: h = m*h + local_rate*diff; diff = h.

        The rule of each solver type, elementwise on ``diff`` and its history
        arrays (one param's, or a whole group's side by side); ``scratch(k)``
        gives reusable buffers of the same shape, so nothing is allocated.
        """
        history = histories[0]
        history *= self._typed("momentum", self.param.momentum, diff)
        buf = scratch()
        xp.multiply(diff, local_rate, out=buf)
        history += buf
        xp.copyto(diff, history)

    def _apply_update_values(self, rate) -> None:
        """Normalize, Regularize and ComputeUpdateValue for every param, unobserved
        (Caffe's ApplyUpdate before Net::Update; pycaffe's ``apply_update``)."""
        for i in range(len(self.net.learnable_params)):
            self.normalize(i)
            self.regularize(i)
            self.compute_update_value(i, rate)

    # -- the same stages over contiguous parameter buffers (step's fast path) --
    def _flat_params(self):
        """The solver's FlatParams, laid out anew when a param or history array was
        replaced; None where the per-param path must run (a subclass changing a
        stage without an ``update_rule``, mixed dtypes or devices)."""
        net = self.net
        flat = self.__dict__.get("_flat")
        if flat is not None and flat.solver_class is type(self) and \
                flat.matches(net.learnable_params, self.history, net.lr_mults, net.decay_mults):
            return flat
        self._flat = None
        if not (_flat_capable(type(self)) and FlatParams.possible(net.learnable_params)
                and len(self.history) == self.histories_per_param * len(net.learnable_params)):
            return None
        self._flat = FlatParams(net.learnable_params, self.history, self.histories_per_param,
                                net.lr_mults, net.decay_mults)
        self._flat.solver_class = type(self)  # a solver whose class changes is checked again
        return self._flat

    def _apply_update_values_flat(self, flat, rate) -> None:
        """normalize, regularize, compute_update_value and the weight update (Net::Update)
        for every param, chunk by chunk of each group: the same elementwise operations
        (the same helpers) as the per-param stages, all done while a chunk is in cache."""
        xp, dtype = backend.get_array_module(flat.diff), flat.diff.dtype
        normalize = self._normalize_scale(dtype.type)
        kind = self.param.regularization_type
        update_rule = self.update_rule
        for group in flat.groups:
            decay = self._decay(dtype, group.decay_mult)
            lr_mult = group.lr_mult
            local_rate = self._typed_constant(
                ("local_rate", rate, lr_mult, dtype),
                lambda lr_mult=lr_mult: dtype.type(numpy.float32(rate) * numpy.float32(lr_mult)))
            for chunk in group.chunks:
                diff = chunk.diff
                if normalize is not None:
                    diff *= normalize
                if decay:
                    _add_decay(xp, diff, chunk.data, decay, kind, chunk.scratches[0])
                update_rule(xp, diff, chunk.histories, local_rate, chunk.scratch)
                chunk.data -= diff
        flat.mark_diffs_written()

    def _rate(self):
        rate, self.current_step = learning_rate(self.param, self.iter, self.current_step)
        self.learning_rate = float(rate)
        return rate

    def _forward_backward(self) -> float:
        loss = 0.0
        for _ in range(max(1, self.param.iter_size)):
            loss += self.net.forward_backward()
        return loss / max(1, self.param.iter_size)

    def _end_iteration(self) -> None:
        """After Update: count the iteration, snapshot when due."""
        self.iter += 1
        if self.auto_snapshot and self.param.snapshot and self.iter % self.param.snapshot == 0:
            self.snapshot()

    # -- public API ----------------------------------------------------
    def step(self, iterations: int = 1) -> float:
        """Run ``iterations`` training iterations; returns the last loss.

        With no observers and contiguous params this is the fast path: each stage
        runs over whole parameter groups at once. Otherwise every iteration goes
        through the staged body (:meth:`_staged_iteration`) with the same stage
        functions and the same result, bit for bit.
        """
        loss = float("nan")
        with numpy.errstate(all="ignore"):  # a divergence is reported once, as a NonFiniteError
            for _ in range(iterations):
                flat = None if self.observers else self._flat_params()
                loss = self._flat_iteration(flat) if flat is not None else self._observed_iteration()
        return loss

    def _flat_iteration(self, flat) -> float:
        """One iteration over contiguous parameter buffers (no observer sees it)."""
        flat.clear_diffs()
        if self._should_test():
            self.test_all()
        loss = self._forward_backward()
        flat.materialize_diffs()
        if self.check_finite:
            self._check_loss_finite(loss)
        self._update_smoothed_loss(loss)
        rate = self._rate()
        if self.check_finite:
            self._check_gradients_finite(flat)
        if self.capture_gradients:
            self._capture_raw_gradients()
        self.clip_gradients()
        self._apply_update_values_flat(flat, rate)  # Normalize .. Update, chunk by chunk
        self._end_iteration()
        return loss

    def _observed_iteration(self) -> float:
        """One iteration through the staged body, its observers notified; the loss.
        With no observer (params that cannot be laid out flat) the forward/backward
        is the solver's own ``_forward_backward``, as in the fast path."""
        loss = float("nan")
        for kind, _iteration, _index, detail in self._staged_iteration(self.observers,
                                                                        per_layer=bool(self.observers)):
            if kind == ITERATION_END:
                loss = detail["loss"]
        return loss

    def _staged_iteration(self, observers, per_layer: bool = True) -> Iterator[tuple]:
        """The iteration in Caffe's named stages, telling ``observers`` (events.Observer)
        about each, and yielding ``(kind, iteration, index, detail)`` at every stop of
        the step-through (kinds of engine.events; ``index`` a layer or a param).
        An observer raising NonFiniteError stops it before the weights change.
        ``per_layer=False``: forward and backward in one call, no layer stops."""
        self._begin_iteration()
        for observer in observers:
            observer.on_start(self)
        if self._should_test():
            yield TEST, self.iter, None, {"scores": self.test_all()}
        if per_layer:
            loss = yield from self._layer_by_layer(observers)
        else:
            loss = self._forward_backward()
        yield from self._staged_update(observers, loss)

    def _layer_by_layer(self, observers):
        """Forward then backward of every layer (iter_size passes), each between its
        observers' before_layer / after_layer and a stop; returns the mean loss."""
        net = self.net
        passes = max(1, self.param.iter_size)
        total = 0.0
        for _ in range(passes):
            loss = 0.0
            for i in range(len(net.layers)):
                for observer in observers:
                    observer.before_layer(self, FORWARD, i)
                loss += net.forward_layer(i)
                for observer in observers:
                    observer.after_layer(self, FORWARD, i)
                yield FORWARD, self.iter, i, None
            net.loss = loss
            total += loss
            for i in reversed(range(len(net.layers))):
                if not net.layer_need_backward[i]:
                    continue
                for observer in observers:
                    observer.before_layer(self, BACKWARD, i)
                net.backward_layer(i)
                for observer in observers:
                    observer.after_layer(self, BACKWARD, i)
                yield BACKWARD, self.iter, i, None
        return total / passes

    def _staged_update(self, observers, loss: float) -> Iterator[tuple]:
        """From the raw gradients to the weights changed, stage by stage (see _staged_iteration)."""
        net = self.net
        if self.check_finite:
            self._check_loss_finite(loss)
        self._update_smoothed_loss(loss)
        rate = self._rate()
        if self.check_finite:
            self._check_gradients_finite()
        if self.capture_gradients:
            self._capture_raw_gradients()
        for observer in observers:
            observer.on_gradients_ready(self, loss)
        norm = self.clip_gradients()
        _notify(observers, self, CLIP_GRADIENTS, None, {"norm": norm})
        yield CLIP, self.iter, None, {"norm": norm, "clip_gradients": self.param.clip_gradients,
                                      "rate": float(rate), "loss": loss}
        for i in range(len(net.learnable_params)):
            self.normalize(i)
            _notify(observers, self, NORMALIZE, i, {})
            decay_term = self.regularize(i)
            _notify(observers, self, REGULARIZE, i, {"decay_term": decay_term})
            self.compute_update_value(i, rate)
            _notify(observers, self, COMPUTE_UPDATE_VALUE, i, {"rate": rate})
            yield UPDATE_VALUE, self.iter, i, {"rate": rate}
        net.update()
        _notify(observers, self, NET_UPDATE, None, {"rate": rate})
        self._end_iteration()
        for observer in observers:
            observer.on_iteration_end(self, loss)
        yield UPDATE, self.iter - 1, None, {"rate": float(rate)}
        yield ITERATION_END, self.iter - 1, None, {"loss": loss, "smoothed_loss": self.smoothed_loss}

    def solve(self) -> None:
        """Train to max_iter, then end as Caffe's Solve does: the snapshot; one extra
        forward pass of the train net when ``display`` divides the last iteration
        (its loss enters the smoothed loss, which Caffe logs; it also moves data
        cursors and, in TRAIN, BatchNorm statistics); the final test."""
        self.step(max(0, self.param.max_iter - self.iter))
        if self.auto_snapshot and self.should_snapshot_after_train():
            self.snapshot()
        display = self.param.display
        if display and self.iter % display == 0:
            self.net.forward()
            self._update_smoothed_loss(self.net.loss)
        if self.test_nets and self.param.test_interval and self.iter % self.param.test_interval == 0:
            self.test_all()

    def should_snapshot_after_train(self) -> bool:
        """Caffe's Solve: snapshot at the end unless this iteration was just snapshotted."""
        snapshot = self.param.snapshot
        return bool(self.param.snapshot_after_train) and (not snapshot or self.iter % snapshot != 0)

    def iteration_events(self) -> Iterator[Event]:
        """One training iteration as a sequence of events (the step-through).

        The staged body of :meth:`step`, with the NaN trap (:class:`NonFiniteTrap`)
        and the solver's observers watching. Advancing it to the end changes the
        weights exactly as ``step(1)``. A non-finite value yields a ``nonfinite``
        event and stops the iteration before the weights are touched.
        """
        body = self._staged_iteration([NonFiniteTrap(), *self.observers])
        try:
            for kind, iteration, index, detail in body:
                yield self._stop_event(kind, iteration, index, detail)
        except NonFiniteError as error:
            yield self._nonfinite_event(error)

    def _stop_event(self, kind: str, iteration: int, index: int | None, detail: dict | None) -> Event:
        """The step-through's Event for one stop of the staged body."""
        if kind in (FORWARD, BACKWARD) and index is not None:
            return self._layer_event(kind, index)
        if kind == UPDATE_VALUE and index is not None and detail is not None:
            blob = self.net.learnable_params[index]
            name = self.net.param_display_names[index]
            return Event(UPDATE_VALUE, iteration, layer=name.rsplit(".", 1)[0],
                         detail={"param": name, "param_index": index,
                                 "local_rate": float(self.local_rate(index, detail["rate"])),
                                 "shape": blob.shape})
        return Event(kind, iteration, detail=dict(detail or {}))

    def _layer_event(self, kind: str, i: int) -> Event:
        net, layer = self.net, self.net.layers[i]
        dims, forward, backward = describe(layer)
        shapes = {n: b.shape for n, b in zip(net.bottom_names[i] + net.top_names[i],
                                              net.bottoms_of(i) + net.tops_of(i))}
        return Event(kind, self.iter, layer=layer.name, layer_index=i, layer_type=layer.type_name,
                     bottoms=list(net.bottom_names[i]), tops=list(net.top_names[i]), shapes=shapes,
                     products=forward if kind == FORWARD else backward, dims=dims)

    def _nonfinite_event(self, error: NonFiniteError) -> Event:
        names = [layer.name for layer in self.net.layers]
        if error.layer in names:
            event = self._layer_event(NONFINITE, names.index(error.layer))
        else:  # the loss as a whole, not one layer
            event = Event(NONFINITE, error.iteration, layer=error.layer)
        event.detail = {"blob": error.blob, "phase": error.phase, "error": error, "message": str(error)}
        return event

    # -- devices and files ---------------------------------------------
    def to(self, device: str) -> "Solver":
        """Move nets and history to ``device`` without changing a value."""
        device = backend.normalize_device(device)
        self.net.to(device)
        for net in self.test_nets:
            net.to(device)
        self.history = [backend.to_device(h, device) for h in self.history]
        self.raw_gradients = [backend.to_device(g, device) for g in self.raw_gradients]
        self.device = device
        return self

    @property
    def auto_snapshot(self) -> bool:
        """Whether step() writes snapshots (every ``snapshot`` iterations). Turning it on
        checks ``snapshot_prefix`` first (SnapshotError naming it, as Caffe's
        CheckSnapshotWritePermissions) and removes temporaries a killed run left there."""
        return self._auto_snapshot

    @auto_snapshot.setter
    def auto_snapshot(self, value: bool) -> None:
        if value and not self._auto_snapshot and (self.param.snapshot > 0 or self.param.snapshot_after_train):
            from . import io
            validate.check_prefix_place(self.param.snapshot_prefix, self.path)
            try:
                prefix = io.snapshot_prefix(self)
            except NetDefinitionError:  # no prefix at all: snapshot() says so if it is ever called
                prefix = None
            if prefix is not None:
                validate.check_snapshot_prefix(prefix)
                validate.sweep_stale_temporaries(prefix)
        self._auto_snapshot = bool(value)

    def snapshot(self) -> list[str]:
        """Write weights and solver state as Caffe names them; returns the paths."""
        from . import io
        validate.check_prefix_place(self.param.snapshot_prefix, self.path)
        try:
            paths = io.snapshot(self)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            prefix = self.param.snapshot_prefix
            raise SnapshotError(f"cannot write the snapshot of iteration {self.iter} to snapshot_prefix "
                                f"{prefix!r}: {getattr(exc, 'strerror', None) or exc}") from None
        if self.on_snapshot:
            self.on_snapshot(paths)
        return paths

    def restore(self, path: str):
        """Resume from a .solverstate or .solverstate.h5 file, all or nothing; returns an
        ``engine.io.RestoreReport`` (what was restored and what was not)."""
        from . import io
        return io.restore(self, os.fspath(path))


class NonFiniteTrap(Observer):
    """The NaN trap: after each layer's forward (its tops) and backward (the
    bottom diffs it sends and its param diffs), raise NonFiniteError at the
    first NaN/inf, before the weights are touched."""

    def after_layer(self, solver, phase: str, index: int) -> None:
        net = solver.net
        if phase == FORWARD:
            arrays = [(n, b.data) for n, b in zip(net.top_names[index], net.tops_of(index))]
        else:
            arrays = [(n, b.diff) for n, b, need in zip(net.bottom_names[index], net.bottoms_of(index),
                                                          net.bottom_need_backward[index]) if need]
            name = net.layers[index].name
            arrays += [(f"{name}.param{j}", b.diff) for j, b in enumerate(net.layers[index].blobs)]
        for blob_name, array in arrays:
            if not backend.get_array_module(array).isfinite(array).all().item():
                raise NonFiniteError(solver.iter, net.layers[index].name, blob_name, phase)


def _notify(observers, solver, stage: str, param_index: int | None, detail: dict) -> None:
    for observer in observers:
        observer.after_stage(solver, stage, param_index, detail)


def _add_decay(xp, diff, data, decay, kind: str, term) -> None:
    """The Regularize rule: ``term`` = decay·data (L2) or decay·sign(data) (L1), then
    diff += term (``term`` is a scratch buffer shaped like diff; nothing is allocated)."""
    if kind == "L2":
        xp.multiply(data, decay, out=term)
    else:
        xp.sign(data, out=term)
        term *= decay
    diff += term


def _with_path(net_param, path):
    """A NetParameter given inline in a solver: data paths resolve against the solver file."""
    if path is None:
        return net_param
    copy = caffe_pb2.NetParameter()
    copy.CopyFrom(net_param)
    for layer in copy.layer:
        if layer.HasField("hdf5_data_param") and layer.hdf5_data_param.source:
            layer.hdf5_data_param.source = resolve_path(layer.hdf5_data_param.source, path)
    return copy


@register_solver("SGD")
class SGDSolver(Solver):
    pass


@register_solver("Nesterov")
class NesterovSolver(Solver):
    update_formula = "V' ← {momentum}·V + {lr}·{g};   W ← W − ((1+{momentum})·V' − {momentum}·V)"

    def update_rule(self, xp, diff, histories, local_rate, scratch):
        """h_old = h; h = m*h + local_rate*diff; diff = (1+m)*h - m*h_old."""
        history, previous = histories[0], scratch()
        momentum = self._typed("momentum", self.param.momentum, diff)
        xp.copyto(previous, history)
        history *= momentum
        diff *= local_rate
        history += diff
        xp.multiply(history, self._typed("1+momentum", diff.dtype.type(1) + momentum, diff), out=diff)
        previous *= momentum
        diff -= previous


@register_solver("AdaGrad")
class AdaGradSolver(Solver):
    update_formula = 'h ← h + {g}²;   W ← W − {lr}·{g} / (√h + {delta})'

    def update_rule(self, xp, diff, histories, local_rate, scratch):
        """h += diff^2; diff = local_rate * diff / (sqrt(h) + delta)."""
        history, buf = histories[0], scratch()
        xp.multiply(diff, diff, out=buf)
        history += buf
        xp.sqrt(history, out=buf)
        buf += self._typed("delta", self.param.delta, diff)
        diff /= buf
        diff *= local_rate


@register_solver("RMSProp")
class RMSPropSolver(Solver):
    update_formula = 'h ← {rms_decay}·h + (1−{rms_decay})·{g}²;   W ← W − {lr}·{g} / (√h + {delta})'

    def update_rule(self, xp, diff, histories, local_rate, scratch):
        """h = rms_decay*h + (1-rms_decay)*diff^2; diff = local_rate * diff / (sqrt(h) + delta)."""
        history, buf = histories[0], scratch()
        decay = self._typed("rms_decay", self.param.rms_decay, diff)
        history *= decay
        xp.multiply(diff, diff, out=buf)
        buf *= self._typed("1-rms_decay", diff.dtype.type(1) - decay, diff)
        history += buf
        xp.sqrt(history, out=buf)
        buf += self._typed("delta", self.param.delta, diff)
        diff /= buf
        diff *= local_rate


@register_solver("AdaDelta")
class AdaDeltaSolver(Solver):
    update_formula = 'h ← {momentum}·h + (1−{momentum})·{g}²;   u = {g}·√((h₂ + {delta}) / (h + {delta}));   h₂ ← {momentum}·h₂ + (1−{momentum})·u²;   W ← W − {lr}·u'
    histories_per_param = 2

    def update_rule(self, xp, diff, histories, local_rate, scratch):
        """h = m*h + (1-m)*g^2; g *= sqrt((h2 + d) / (h + d)); h2 = m*h2 + (1-m)*g^2; g *= local_rate."""
        h, h2 = histories
        buf, buf2 = scratch(0), scratch(1)
        momentum = self._typed("momentum", self.param.momentum, diff)
        one_minus = self._typed("1-momentum", diff.dtype.type(1) - momentum, diff)
        delta = self._typed("delta", self.param.delta, diff)
        h *= momentum
        xp.multiply(diff, diff, out=buf)
        buf *= one_minus
        h += buf
        xp.add(h2, delta, out=buf)
        xp.add(h, delta, out=buf2)
        buf /= buf2
        xp.sqrt(buf, out=buf)
        diff *= buf
        h2 *= momentum
        xp.multiply(diff, diff, out=buf)
        buf *= one_minus
        h2 += buf
        diff *= local_rate


@register_solver("Adam")
class AdamSolver(Solver):
    update_formula = 'm ← {momentum}·m + (1−{momentum})·{g};   v ← {momentum2}·v + (1−{momentum2})·{g}²;   W ← W − {lr}·√(1−{momentum2}ᵗ)/(1−{momentum}ᵗ)·m / (√v + {delta})'
    histories_per_param = 2

    def update_rule(self, xp, diff, histories, local_rate, scratch):
        """m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
        g = local_rate * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps), t = iter + 1."""
        m, v = histories
        buf = scratch()
        dtype = diff.dtype.type
        beta1 = self._typed("momentum", self.param.momentum, diff)
        beta2 = self._typed("momentum2", self.param.momentum2, diff)
        t = self.iter + 1
        xp.multiply(diff, dtype(1) - beta1, out=buf)
        m *= beta1
        m += buf
        xp.multiply(diff, diff, out=buf)
        buf *= dtype(1) - beta2
        v *= beta2
        v += buf
        bias1, bias2 = 1.0 - float(beta1) ** t, 1.0 - float(beta2) ** t
        if bias1 <= 0 or bias2 < 0:  # momentum or momentum2 >= 1 (edited after construction)
            raise SolverParameterError(f"Adam needs momentum and momentum2 in [0, 1), not "
                                       f"{float(beta1):g} and {float(beta2):g}")
        correction = dtype(math.sqrt(bias2) / bias1)
        xp.sqrt(v, out=buf)
        buf += self._typed("delta", self.param.delta, diff)
        xp.divide(m, buf, out=diff)
        diff *= local_rate * correction


def _flat_capable(cls) -> bool:
    """Whether step may run ``cls``'s stages over whole param groups: its update is an
    ``update_rule`` (not a per-param ``compute_update_value`` of a subclass) and it
    keeps the base normalize / regularize."""
    def owner(name):
        return next(k for k in cls.__mro__ if name in k.__dict__)
    return (issubclass(owner("update_rule"), owner("compute_update_value"))
            and owner("regularize") is Solver and owner("normalize") is Solver)


class ScoreLog(list):
    """``test_scores``: (iteration, scores) pairs, the last ``keep`` of them kept.

    Indices count every pair ever added: ``len()`` keeps growing, so the idiom
    ``before = len(log); solver.step(1); log[before:]`` sees the new pairs even
    after old ones were dropped (iteration and equality see the kept ones)."""

    keep = 10000
    dropped = 0

    def append(self, item) -> None:
        super().append(item)
        if super().__len__() > 2 * self.keep:  # dropped in batches: amortized O(1)
            cut = super().__len__() - self.keep
            super().__delitem__(slice(0, cut))
            self.dropped += cut

    def __len__(self) -> int:
        return self.dropped + super().__len__()

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, stride = index.indices(len(self))
            start, stop = max(start - self.dropped, 0), max(stop - self.dropped, 0)
            return list.__getitem__(self, slice(start, stop, stride))
        if index < 0:
            return list.__getitem__(self, index)
        if index < self.dropped:
            raise IndexError(f"test score #{index} was dropped (the last {self.keep} are kept)")
        return list.__getitem__(self, index - self.dropped)

    def __setitem__(self, index, value) -> None:
        if isinstance(index, slice) and index == slice(None):
            self.clear()
            self.extend(value)
            return
        list.__setitem__(self, index if isinstance(index, slice) or index < 0 else index - self.dropped, value)

    def clear(self) -> None:
        super().clear()
        self.dropped = 0

    def extend(self, items) -> None:
        for item in items:
            self.append(item)
