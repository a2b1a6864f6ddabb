"""Solvers: Caffe's SGD family, with the update split into Caffe's named stages
(ClipGradients, Normalize, Regularize, ComputeUpdateValue), and a step-through
that stops between any two phases of an iteration."""
from __future__ import annotations

import math
import os
from typing import Iterator

import numpy

from . import backend, rng
from .errors import NetDefinitionError, NonFiniteError
from .events import (BACKWARD, CLIP, FORWARD, ITERATION_END, NONFINITE, TEST, UPDATE, UPDATE_VALUE,
                     Event)
from .lr_policy import learning_rate
from .net import TEST as TEST_PHASE, TRAIN, Net
from .products import describe
from .prototxt import parse_solver, resolve_path
from .proto import caffe_pb2

_SOLVERS: dict[str, type["Solver"]] = {}
_LEGACY_TYPES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}


def register_solver(type_name: str):
    def decorate(cls):
        cls.type_name = type_name
        _SOLVERS[type_name] = cls
        return cls
    return decorate


def get_solver(source, device: str | None = None) -> "Solver":
    """The solver of the prototxt's ``type`` (pycaffe's ``caffe.get_solver``)."""
    param, path = _solver_param(source)
    kind = param.type if param.HasField("type") or not param.HasField("solver_type") \
        else _LEGACY_TYPES[param.solver_type]
    cls = _SOLVERS.get(kind)
    if cls is None:
        raise NetDefinitionError(f"unknown solver type '{kind}' (supported: {', '.join(_SOLVERS)})")
    return cls(param, device=device, path=path)


def _solver_param(source):
    if isinstance(source, caffe_pb2.SolverParameter):
        return source, None
    return parse_solver(source)


class Solver:
    """Plain SGD with momentum; subclasses change ``compute_update_value``."""

    type_name = "SGD"
    histories_per_param = 1

    def __init__(self, source, device: str | None = None, path: str | None = None):
        if isinstance(source, caffe_pb2.SolverParameter):
            self.param, self.path = source, path
        else:
            self.param, self.path = parse_solver(source)
        if self.param.random_seed >= 0:
            rng.set_seed(self.param.random_seed)
        self.device = backend.normalize_device(device or backend.current_mode())
        self.net = Net(self._train_net_param(), TRAIN, device=self.device)
        self.test_nets = [self._make_test_net(p) for p in self._test_net_params()]
        if len(self.param.test_iter) != len(self.test_nets):
            if self.test_nets or self.param.test_iter:
                raise NetDefinitionError(
                    f"{self.path or 'solver'}: test_iter must be given once per test net "
                    f"({len(self.test_nets)} test net(s), {len(self.param.test_iter)} test_iter)")
        self.iter = 0
        self.current_step = 0
        self.history = [self._zeros_like(b) for _ in range(self.histories_per_param)
                        for b in self.net.learnable_params]
        self.losses: list[float] = []
        self.smoothed_loss = 0.0
        self._loss_origin = 0  # Caffe's start_iter: the iteration the losses window began at
        self.learning_rate = float(learning_rate(self.param, 0, 0)[0])
        self.check_finite = True
        self.capture_gradients = False
        self.raw_gradients: list = []
        self.test_scores: list[tuple[int, dict[str, float]]] = []
        self.auto_snapshot = False
        self.on_snapshot = None

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
        if not found and len(p.test_iter):
            if p.HasField("net_param"):
                found = [_with_path(p.net_param, self.path)] * len(p.test_iter)
            elif p.HasField("net"):
                found = [self._net_text(p.net)] * len(p.test_iter)
        return found

    def _make_test_net(self, source) -> Net:
        net = Net(source, TEST_PHASE, device=self.device)
        net.share_weights(self.net)
        return net

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
        """Run every test net for its test_iter passes; mean of each output."""
        scores: dict[str, float] = {}
        for k, (net, count) in enumerate(zip(self.test_nets, self.param.test_iter)):
            totals: dict[str, float] = {}
            loss = 0.0
            for _ in range(count):
                outputs = net.forward()
                loss += net.loss
                for name, value in outputs.items():
                    totals[name] = totals.get(name, 0.0) + float(value.sum()) * \
                        (1.0 if value.size == 1 else 1.0)
            prefix = "" if len(self.test_nets) == 1 else f"test{k}/"
            for name, total in totals.items():
                scores[prefix + name] = total / max(count, 1)
        self.test_scores.append((self.iter, scores))
        return scores

    def _update_smoothed_loss(self, loss: float) -> None:
        average = max(1, self.param.average_loss)
        if not self.losses:
            self._loss_origin = self.iter
        if len(self.losses) < average:
            self.losses.append(loss)
            self.smoothed_loss = (self.smoothed_loss * (len(self.losses) - 1) + loss) / len(self.losses)
        else:
            index = (self.iter - self._loss_origin) % average  # the oldest loss in the window
            self.smoothed_loss += (loss - self.losses[index]) / average
            self.losses[index] = loss

    def _capture_raw_gradients(self) -> None:
        if len(self.raw_gradients) != len(self.net.learnable_params) or \
                (self.raw_gradients and type(self.raw_gradients[0]) is not type(self.net.learnable_params[0].diff)):
            self.raw_gradients = [b.diff.copy() for b in self.net.learnable_params]
        else:
            for buf, blob in zip(self.raw_gradients, self.net.learnable_params):
                buf[...] = blob.diff

    def _check_gradients_finite(self) -> None:
        total = 0.0
        for blob in self.net.learnable_params:
            diff = blob.diff
            flat = diff if diff.ndim == 1 else diff.reshape(-1)
            total += float(flat.dot(flat))  # one BLAS dot per param: NaN/inf make it non-finite
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
        sumsq = sum(float(b.diff.reshape(-1) @ b.diff.reshape(-1)) for b in self.net.learnable_params)
        norm = math.sqrt(sumsq)
        if norm > clip:
            scale = numpy.float32(clip / norm)
            for blob in self.net.learnable_params:
                blob.diff *= scale
        return norm

    def normalize(self, i: int) -> None:
        if self.param.iter_size > 1:
            blob = self.net.learnable_params[i]
            blob.diff *= blob.dtype.type(1.0 / self.param.iter_size)

    def scratch(self, i: int):
        """A reusable buffer shaped like param ``i`` (for the update's intermediate
        products, so no stage allocates per step)."""
        buffers = self.__dict__.setdefault("_scratch_buffers", [])
        if len(buffers) <= i:
            buffers.extend([None] * (i + 1 - len(buffers)))
        diff = self.net.learnable_params[i].diff
        buf = buffers[i]
        if buf is None or buf.shape != diff.shape or type(buf) is not type(diff) or buf.dtype != diff.dtype:
            buf = buffers[i] = backend.get_array_module(diff).empty_like(diff)
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

    def regularize(self, i: int) -> None:
        blob = self.net.learnable_params[i]
        weight_decay, decay_mult = self.param.weight_decay, self.net.decay_mults[i]
        decay = self._typed_constant(
            ("decay", weight_decay, decay_mult, blob.dtype),
            lambda: blob.dtype.type(numpy.float32(weight_decay) * numpy.float32(decay_mult)))
        if not decay:
            return
        kind = self.param.regularization_type
        scratch = self.scratch(i)
        if kind == "L2":
            blob.xp.multiply(blob.data, decay, out=scratch)  # diff += decay * data, no temporary
        elif kind == "L1":
            blob.xp.sign(blob.data, out=scratch)
            scratch *= decay
        else:
            raise NetDefinitionError(f"unknown regularization_type '{kind}' (use L1 or L2)")
        blob.diff += scratch
        blob.diff_is_clear = False

    def local_rate(self, i: int, rate) -> numpy.float32:
        lr_mult = self.net.lr_mults[i]
        return self._typed_constant(("rate", rate, lr_mult),
                                    lambda: numpy.float32(rate) * numpy.float32(lr_mult))

    def _typed(self, name: str, value, blob):
        """``blob.dtype.type(value)``, cached."""
        return self._typed_constant((name, value, blob.dtype), lambda: blob.dtype.type(value))

    def compute_update_value(self, i: int, rate) -> None:
        """SGD: h = m*h + local_rate*diff; diff = h."""
        blob, history = self.net.learnable_params[i], self.history[i]
        history *= self._typed("momentum", self.param.momentum, blob)
        scratch = self.scratch(i)
        blob.xp.multiply(blob.diff, self._typed("local_rate", self.local_rate(i, rate), blob), out=scratch)
        history += scratch
        blob.xp.copyto(blob.diff, history)

    def _apply_update_values(self, rate) -> None:
        for i in range(len(self.net.learnable_params)):
            self.normalize(i)
            self.regularize(i)
            self.compute_update_value(i, rate)

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
        self.net.update()
        self.iter += 1
        if self.auto_snapshot and self.param.snapshot and self.iter % self.param.snapshot == 0:
            self.snapshot()

    # -- public API ----------------------------------------------------
    def step(self, iterations: int = 1) -> float:
        """Run ``iterations`` training iterations; returns the last loss."""
        loss = float("nan")
        for _ in range(iterations):
            self._begin_iteration()
            if self._should_test():
                self.test_all()
            loss = self._forward_backward()
            if self.check_finite:
                self._check_loss_finite(loss)
            self._update_smoothed_loss(loss)
            rate = self._rate()
            if self.check_finite:
                self._check_gradients_finite()
            if self.capture_gradients:
                self._capture_raw_gradients()
            self.clip_gradients()
            self._apply_update_values(rate)
            self._end_iteration()
        return loss

    def solve(self) -> None:
        """Train to max_iter, then snapshot / test as Caffe's Solve does."""
        self.step(max(0, self.param.max_iter - self.iter))
        if self.auto_snapshot and self.should_snapshot_after_train():
            self.snapshot()
        if self.test_nets and self.param.test_interval and self.iter % self.param.test_interval == 0:
            self.test_all()

    def should_snapshot_after_train(self) -> bool:
        """Caffe's Solve: snapshot at the end unless this iteration was just snapshotted."""
        snapshot = self.param.snapshot
        return bool(self.param.snapshot_after_train) and (not snapshot or self.iter % snapshot != 0)

    def iteration_events(self) -> Iterator[Event]:
        """One training iteration as a sequence of events (the step-through).

        Advancing it to the end changes the weights exactly as ``step(1)``. A
        non-finite value yields a ``nonfinite`` event and stops the iteration
        before the weights are touched.
        """
        net = self.net
        self._begin_iteration()
        if self._should_test():
            scores = self.test_all()
            yield Event(TEST, self.iter, detail={"scores": scores})
        passes = max(1, self.param.iter_size)
        total = 0.0
        for _ in range(passes):
            loss = 0.0
            for i, layer in enumerate(net.layers):
                loss += net.forward_layer(i)
                event = self._layer_event(FORWARD, i)
                bad = self._nonfinite([(n, b.data) for n, b in zip(net.top_names[i], net.tops_of(i))])
                if bad:
                    yield self._nonfinite_event(i, bad, "forward")
                    return
                yield event
            net.loss = loss
            total += loss
            for i in reversed(range(len(net.layers))):
                if not net.layer_need_backward[i]:
                    continue
                net.backward_layer(i)
                event = self._layer_event(BACKWARD, i)
                arrays = [(n, b.diff) for n, b, need in zip(net.bottom_names[i], net.bottoms_of(i),
                                                              net.bottom_need_backward[i]) if need]
                arrays += [(f"{layer_name}.param{j}", b.diff)
                           for layer_name in [net.layers[i].name] for j, b in enumerate(net.layers[i].blobs)]
                bad = self._nonfinite(arrays)
                if bad:
                    yield self._nonfinite_event(i, bad, "backward")
                    return
                yield event
        loss = total / passes
        self._update_smoothed_loss(loss)
        rate = self._rate()
        if self.capture_gradients:
            self._capture_raw_gradients()
        norm = self.clip_gradients()
        yield Event(CLIP, self.iter, detail={"norm": norm, "clip_gradients": self.param.clip_gradients,
                                             "rate": float(rate), "loss": loss})
        for i, blob in enumerate(net.learnable_params):
            self.normalize(i)
            self.regularize(i)
            self.compute_update_value(i, rate)
            name = net.param_display_names[i]
            yield Event(UPDATE_VALUE, self.iter, layer=name.rsplit(".", 1)[0],
                        detail={"param": name, "param_index": i, "local_rate": float(self.local_rate(i, rate)),
                                "shape": blob.shape})
        self._end_iteration()
        yield Event(UPDATE, self.iter - 1, detail={"rate": float(rate)})
        yield Event(ITERATION_END, self.iter - 1, detail={"loss": loss, "smoothed_loss": self.smoothed_loss})

    def _layer_event(self, kind: str, i: int) -> Event:
        net, layer = self.net, self.net.layers[i]
        dims, forward, backward = describe(layer)
        shapes = {n: b.shape for n, b in zip(net.bottom_names[i] + net.top_names[i],
                                              net.bottoms_of(i) + net.tops_of(i))}
        return Event(kind, self.iter, layer=layer.name, layer_index=i, layer_type=layer.type_name,
                     bottoms=list(net.bottom_names[i]), tops=list(net.top_names[i]), shapes=shapes,
                     products=forward if kind == FORWARD else backward, dims=dims)

    @staticmethod
    def _nonfinite(named_arrays) -> str | None:
        for name, array in named_arrays:
            if not bool(backend.get_array_module(array).isfinite(array).all()):
                return name
        return None

    def _nonfinite_event(self, i: int, blob: str, phase: str) -> Event:
        error = NonFiniteError(self.iter, self.net.layers[i].name, blob, phase)
        event = self._layer_event(NONFINITE, i)
        event.detail = {"blob": blob, "phase": phase, "error": error, "message": str(error)}
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

    def snapshot(self) -> list[str]:
        """Write weights and solver state as Caffe names them; returns the paths."""
        from . import io
        paths = io.snapshot(self)
        if self.on_snapshot:
            self.on_snapshot(paths)
        return paths

    def restore(self, path: str) -> None:
        """Resume from a .solverstate or .solverstate.h5 file."""
        from . import io
        io.restore(self, os.fspath(path))


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
    def compute_update_value(self, i, rate):
        """h_old = h; h = m*h + local_rate*diff; diff = (1+m)*h - m*h_old."""
        blob, history = self.net.learnable_params[i], self.history[i]
        dtype, momentum = blob.dtype.type, blob.dtype.type(self.param.momentum)
        previous = history.copy()
        history *= momentum
        history += dtype(self.local_rate(i, rate)) * blob.diff
        blob.diff[...] = (dtype(1) + momentum) * history - momentum * previous


@register_solver("AdaGrad")
class AdaGradSolver(Solver):
    def compute_update_value(self, i, rate):
        """h += diff^2; diff = local_rate * diff / (sqrt(h) + delta)."""
        blob, history = self.net.learnable_params[i], self.history[i]
        dtype, xp = blob.dtype.type, blob.xp
        history += blob.diff * blob.diff
        blob.diff /= xp.sqrt(history) + dtype(self.param.delta)
        blob.diff *= dtype(self.local_rate(i, rate))


@register_solver("RMSProp")
class RMSPropSolver(Solver):
    def compute_update_value(self, i, rate):
        """h = rms_decay*h + (1-rms_decay)*diff^2; diff = local_rate * diff / (sqrt(h) + delta)."""
        blob, history = self.net.learnable_params[i], self.history[i]
        dtype, xp = blob.dtype.type, blob.xp
        decay = dtype(self.param.rms_decay)
        history *= decay
        history += (dtype(1) - decay) * (blob.diff * blob.diff)
        blob.diff /= xp.sqrt(history) + dtype(self.param.delta)
        blob.diff *= dtype(self.local_rate(i, rate))


@register_solver("AdaDelta")
class AdaDeltaSolver(Solver):
    histories_per_param = 2

    def compute_update_value(self, i, rate):
        """h = m*h + (1-m)*g^2; g *= sqrt((h2 + d) / (h + d)); h2 = m*h2 + (1-m)*g^2; g *= local_rate."""
        n = len(self.net.learnable_params)
        blob, h, h2 = self.net.learnable_params[i], self.history[i], self.history[i + n]
        dtype, xp = blob.dtype.type, blob.xp
        momentum, delta = dtype(self.param.momentum), dtype(self.param.delta)
        h *= momentum
        h += (dtype(1) - momentum) * (blob.diff * blob.diff)
        blob.diff *= xp.sqrt((h2 + delta) / (h + delta))
        h2 *= momentum
        h2 += (dtype(1) - momentum) * (blob.diff * blob.diff)
        blob.diff *= dtype(self.local_rate(i, rate))


@register_solver("Adam")
class AdamSolver(Solver):
    histories_per_param = 2

    def compute_update_value(self, i, rate):
        """m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
        g = local_rate * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps), t = iter + 1."""
        n = len(self.net.learnable_params)
        blob, m, v = self.net.learnable_params[i], self.history[i], self.history[i + n]
        dtype, xp = blob.dtype.type, blob.xp
        beta1, beta2 = dtype(self.param.momentum), dtype(self.param.momentum2)
        t = self.iter + 1
        m *= beta1
        m += (dtype(1) - beta1) * blob.diff
        v *= beta2
        v += (dtype(1) - beta2) * (blob.diff * blob.diff)
        correction = dtype(math.sqrt(1.0 - float(beta2) ** t) / (1.0 - float(beta1) ** t))
        xp.divide(m, xp.sqrt(v) + dtype(self.param.delta), out=blob.diff)
        blob.diff *= dtype(self.local_rate(i, rate)) * correction
