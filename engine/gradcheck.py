"""Numeric gradient checking (Caffe's GradientChecker, Chainer's check_backward).

Central differences of a scalar objective are compared with the analytic
backward, element by element, with Caffe's rule
``|analytic - numeric| <= threshold * max(|analytic|, |numeric|, 1)``.
Points at a kink (ReLU at 0, max-pooling ties) are skipped: explicitly with
``kink``/``kink_range`` as Caffe does, and automatically where the two one-sided
differences disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy

from . import backend, rng
from .blob import Blob
from .layer import create_layer
from .proto import caffe_pb2


@dataclass
class BlobCheck:
    """The check of one blob: worst relative error and per-element errors (NaN where skipped)."""

    name: str
    worst_error: float
    worst_index: tuple
    checked: int
    skipped: int
    error: numpy.ndarray
    analytic: numpy.ndarray
    numeric: numpy.ndarray
    passed: bool


@dataclass
class GradientCheckResult:
    threshold: float
    blobs: list[BlobCheck] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.blobs)

    @property
    def worst(self) -> BlobCheck | None:
        return max(self.blobs, key=lambda b: b.worst_error, default=None)

    def summary(self) -> str:
        lines = [f"{b.name:30s} worst relative error {b.worst_error:.3e} "
                 f"({b.checked} checked, {b.skipped} skipped) {'ok' if b.passed else 'FAIL'}"
                 for b in self.blobs]
        return "\n".join(lines)


def _compare(name: str, analytic: numpy.ndarray, objective: Callable[[], float], target: numpy.ndarray,
             stepsize: float, threshold: float, kink: float | None, kink_range: float,
             indices: Sequence[tuple] | None) -> BlobCheck:
    """Perturb ``target`` (a numpy array the objective reads) element by element."""
    error = numpy.full(target.shape, numpy.nan)
    numeric = numpy.full(target.shape, numpy.nan)
    checked = skipped = 0
    worst, worst_index = 0.0, ()
    for index in (indices if indices is not None else numpy.ndindex(*target.shape)):
        original = float(target[index])
        if kink is not None and abs(original - kink) < kink_range:
            skipped += 1
            continue
        target[index] = original + stepsize
        plus = objective()
        target[index] = original - stepsize
        minus = objective()
        target[index] = original
        estimate = (plus - minus) / (2 * stepsize)
        a = float(analytic[index])
        scale = max(abs(a), abs(estimate), 1.0)
        relative = abs(a - estimate) / scale
        if relative > threshold:
            centre = objective()
            right, left = (plus - centre) / stepsize, (centre - minus) / stepsize
            if abs(right - left) > threshold * max(abs(right), abs(left), 1.0):
                skipped += 1  # a kink between x - h and x + h
                continue
        numeric[index] = estimate
        error[index] = relative
        checked += 1
        if relative >= worst:
            worst, worst_index = relative, index
    return BlobCheck(name, worst, worst_index, checked, skipped, error, numpy.array(analytic), numeric,
                     worst <= threshold)


def _sample(shape, limit: int | None, seed: int):
    if limit is None or int(numpy.prod(shape)) <= limit:
        return None
    gen = numpy.random.default_rng(seed)
    flat = gen.choice(int(numpy.prod(shape)), size=limit, replace=False)
    return [numpy.unravel_index(k, shape) for k in sorted(flat)]


def _layer_param(spec) -> caffe_pb2.LayerParameter:
    if isinstance(spec, caffe_pb2.LayerParameter):
        return spec
    from google.protobuf import text_format
    param = caffe_pb2.LayerParameter()
    text_format.Parse(spec, param)
    if not param.name:
        param.name = param.type
    return param


def check_layer(spec, bottoms: Sequence, *, num_tops: int = 1, phase: int = caffe_pb2.TRAIN,
                check_bottoms: Sequence[int] | None = None, stepsize: float = 1e-6,
                threshold: float = 1e-5, kink: float | None = None, kink_range: float = -1.0,
                seed: int = 1701, max_elements: int | None = None, layer_factory=None,
                params: Sequence | None = None) -> GradientCheckResult:
    """Check one layer's backward (bottom diffs and param diffs) in float64.

    ``spec`` is a LayerParameter or its prototxt text; ``bottoms`` are arrays
    (float64 is used for the check). ``params`` optionally sets the layer's
    parameter values. ``layer_factory(param, phase)`` may build a (deliberately
    broken) layer for tests of the checker itself.
    """
    param = _layer_param(spec)
    if not param.top:
        param.top.extend([f"top{k}" for k in range(num_tops)])
    layer = (layer_factory or create_layer)(param, phase)
    layer.dtype, layer.device = numpy.dtype(numpy.float64), "cpu"
    bottom = []
    for array in bottoms:
        blob = Blob(numpy.shape(array), dtype=numpy.float64)
        blob.data[...] = numpy.asarray(array, dtype=numpy.float64)
        bottom.append(blob)
    top = [Blob((), dtype=numpy.float64) for _ in param.top]
    rng.set_seed(seed)
    layer.setup(bottom, top)
    for blob, values in zip(layer.blobs, params or []):
        blob.data[...] = values
    weights_gen = numpy.random.default_rng(seed)
    top_weights = [weights_gen.normal(size=t.shape) if t.shape else numpy.array(1.0) for t in top]

    def objective() -> float:
        rng.set_seed(seed)  # the same Dropout mask every time
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
        return float(sum((w * t.data).sum() for w, t in zip(top_weights, top)))

    objective()
    for t, w in zip(top, top_weights):
        t.diff[...] = w
    for blob in layer.blobs:
        blob.diff.fill(0)
        blob.diff_is_clear = True
    for blob in bottom:
        blob.diff.fill(0)
    which = list(range(len(bottom))) if check_bottoms is None else list(check_bottoms)
    propagate = [i in which and layer.allow_force_backward(i) for i in range(len(bottom))]
    layer.param_propagate_down = [True] * len(layer.blobs)
    layer.backward(top, propagate, bottom)
    analytic_bottoms = [b.diff.copy() for b in bottom]
    analytic_params = [b.diff.copy() for b in layer.blobs]
    result = GradientCheckResult(threshold)
    for i in which:
        if propagate[i]:
            result.blobs.append(_compare(f"{param.name}/bottom{i}", analytic_bottoms[i], objective,
                                         bottom[i].data, stepsize, threshold, kink, kink_range,
                                         _sample(bottom[i].shape, max_elements, seed)))
    for j, blob in enumerate(layer.blobs):
        result.blobs.append(_compare(f"{param.name}/param{j}", analytic_params[j], objective, blob.data,
                                     stepsize, threshold, None, -1.0, _sample(blob.shape, max_elements, seed)))
    return result


def _float64_clone(net):
    """A float64 CPU copy of ``net`` with its weights and its current data batch."""
    from .net import Net
    clone = Net(net.param, net.phase, dtype=numpy.float64, device="cpu",
                python_layers=getattr(net, "python_layers", None))  # the consent the net was built with
    for name, blobs in net.params.items():
        for mine, theirs in zip(clone.params.get(name, []), blobs):
            mine.data[...] = backend.to_numpy(theirs.data)
    return clone


def check_net(net, layers: Sequence[str] | None = None, *, stepsize: float = 1e-6,
              threshold: float = 1e-5, seed: int = 1701, max_elements: int | None = 64,
              progress: Callable[[int, int], None] | None = None) -> dict[str, GradientCheckResult]:
    """Check the gradients of a whole net on its current batch and weights, in float64.

    For each selected layer (default: every layer that runs backward) its
    parameter diffs and bottom diffs are compared with central differences of
    the net's loss. At most ``max_elements`` elements per blob are sampled.
    Returns {layer name: result}.
    """
    clone = _float64_clone(net)
    data_layers = [i for i in range(len(clone.layers)) if not clone.bottom_names[i]]
    for i in data_layers:  # freeze the batch: copy the source net's current data tops
        for name in clone.top_names[i]:
            clone.blobs[name].data[...] = backend.to_numpy(net.blobs[name].data)
    compute = [i for i in range(len(clone.layers)) if i not in data_layers]
    selected = [i for i in compute if clone.layer_need_backward[i]
                and (layers is None or clone.layers[i].name in layers)]

    def run_from(first: int) -> float:
        rng.set_seed(seed)
        loss = 0.0
        for i in compute:
            if i >= first:
                loss += clone.forward_layer(i)
        return loss

    # analytic gradients, with every layer's bottom diff captured right after its backward
    snapshots: dict[int, dict[str, numpy.ndarray]] = {}
    rng.set_seed(seed)
    for i in compute:
        snapshots[i] = {n: b.data.copy() for n, b in clone.blobs.items()}
        clone.forward_layer(i)
    clone.clear_param_diffs()
    for blob in clone.learnable_params:
        blob.diff.fill(0)
    bottom_diffs: dict[int, list[numpy.ndarray]] = {}
    for i in reversed(compute):
        clone.backward_layer(i)
        bottom_diffs[i] = [b.diff.copy() for b in clone.bottoms_of(i)]
    param_diffs = {i: [b.diff.copy() for b in clone.layers[i].blobs] for i in compute}

    results: dict[str, GradientCheckResult] = {}
    for count, i in enumerate(selected):
        layer = clone.layers[i]
        result = GradientCheckResult(threshold)
        base = snapshots[i]

        def restore(state: dict[str, numpy.ndarray]) -> None:
            for n, b in clone.blobs.items():
                b.data[...] = state[n]

        for j, (name, blob) in enumerate(zip(clone.bottom_names[i], clone.bottoms_of(i))):
            if not clone.bottom_need_backward[i][j]:
                continue
            probe = base[name].copy()

            def objective(first=i, name=name, probe=probe, base=base) -> float:
                restore(base)
                clone.blobs[name].data[...] = probe
                return run_from(first)

            # A Split top shares its data with its siblings: perturb a private copy, so that
            # only this consumer sees the change (its diff is the gradient of this copy alone).
            shared = blob.data
            blob.set_data_array(shared.copy())
            try:
                result.blobs.append(_compare(f"{layer.name}/{name}", bottom_diffs[i][j], objective, probe,
                                             stepsize, threshold, None, -1.0,
                                             _sample(blob.shape, max_elements, seed)))
            finally:
                blob.set_data_array(shared)
        start = snapshots[compute[0]]

        def whole_net(start=start) -> float:
            restore(start)
            return run_from(compute[0])

        for j, blob in enumerate(layer.blobs):
            if not layer.param_propagate_down[j]:
                continue
            result.blobs.append(_compare(f"{layer.name}/param{j}", param_diffs[i][j], whole_net,
                                         blob.data, stepsize, threshold, None, -1.0,
                                         _sample(blob.shape, max_elements, seed)))
        results[layer.name] = result
        if progress:
            progress(count + 1, len(selected))
    return results
