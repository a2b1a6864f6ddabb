"""Small helpers shared by the engine tests: build one layer, a tiny net, a solver."""
from __future__ import annotations

import numpy
from google.protobuf import text_format

import engine
from engine.blob import Blob
from engine.layer import create_layer
from engine.proto import caffe_pb2


def layer_param(spec: str, num_tops: int = 1) -> caffe_pb2.LayerParameter:
    """A LayerParameter from prototxt text; tops named top0.. when not given."""
    param = caffe_pb2.LayerParameter()
    text_format.Parse(spec, param)
    if not param.name:
        param.name = param.type
    if not param.top:
        param.top.extend([f"top{k}" for k in range(num_tops)])
    return param


def make_layer(spec: str, bottoms, *, num_tops: int = 1, phase: int = engine.TRAIN,
               dtype=numpy.float64):
    """(layer, bottom blobs, top blobs) for one layer set up on ``bottoms`` (arrays)."""
    param = layer_param(spec, num_tops)
    layer = create_layer(param, phase)
    layer.dtype, layer.device = numpy.dtype(dtype), "cpu"
    bottom = []
    for array in bottoms:
        blob = Blob(numpy.shape(array), dtype=dtype)
        blob.data[...] = array
        bottom.append(blob)
    top = [Blob((), dtype=dtype) for _ in param.top]
    layer.setup(bottom, top)
    return layer, bottom, top


def run_forward(spec: str, bottoms, **kwargs):
    """Set up one layer, run its forward, return (layer, bottom blobs, top blobs)."""
    layer, bottom, top = make_layer(spec, bottoms, **kwargs)
    layer.forward(bottom, top)
    return layer, bottom, top


# A tiny regression net: y = x . W^T + b against a target, EuclideanLoss.
def linear_net_text(num_inputs: int = 3, num_outputs: int = 2, batch: int = 4, extra: str = "") -> str:
    return f"""
name: "linear"
layer {{ name: "input" type: "Input" top: "data" top: "target"
        input_param {{ shape {{ dim: {batch} dim: {num_inputs} }} shape {{ dim: {batch} dim: {num_outputs} }} }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param {{ num_output: {num_outputs} weight_filler {{ type: "gaussian" std: 0.5 }}
                              bias_filler {{ type: "constant" value: 0.1 }} }} {extra} }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }}
"""


def solver_for(net_text: str, **fields) -> engine.Solver:
    """A solver (type, base_lr, ... as keyword arguments) over an inline net."""
    param = caffe_pb2.SolverParameter()
    text_format.Parse(net_text, param.net_param)
    defaults = {"base_lr": 0.1, "lr_policy": "fixed", "random_seed": 1701, "max_iter": 100}
    defaults.update(fields)
    for name, value in defaults.items():
        if isinstance(value, (list, tuple)):
            getattr(param, name).extend(value)
        else:
            setattr(param, name, value)
    return engine.get_solver(param)


def params_numpy(net) -> list[numpy.ndarray]:
    """Copies of every learnable parameter's data as numpy arrays."""
    return [engine.backend.to_numpy(b.data).copy() for b in net.learnable_params]


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max |expected| (0 for two zero arrays)."""
    actual = numpy.asarray(actual, dtype=numpy.float64)
    expected = numpy.asarray(expected, dtype=numpy.float64)
    scale = float(numpy.abs(expected).max()) if expected.size else 0.0
    diff = float(numpy.abs(actual - expected).max()) if expected.size else 0.0
    return diff / scale if scale else diff


def mt19937_outputs(seed: int, count: int) -> list[int]:
    """The first ``count`` outputs of boost::mt19937(seed): Matsumoto & Nishimura's generator
    written out in plain Python, independent of engine.caffe_rng (the tests' reference)."""
    state = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        state.append((1812433253 * (state[-1] ^ (state[-1] >> 30)) + i) & 0xFFFFFFFF)
    out: list[int] = []
    index = 624
    while len(out) < count:
        if index == 624:
            for i in range(624):
                y = (state[i] & 0x80000000) | (state[(i + 1) % 624] & 0x7FFFFFFF)
                state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ (0x9908B0DF if y & 1 else 0)
            index = 0
        y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        out.append(y)
    return out


def forward_backward_ramp(layer, bottom, top, grads, device: str = "cpu") -> None:
    """One forward and backward of ``layer``: top diffs are ones for a loss top, a ramp in
    [-1, 1] otherwise; bottoms in ``grads`` get a diff (nothing backward for a layer with
    neither gradients asked nor parameters)."""
    from engine import backend
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    if not grads and not layer.blobs:
        return
    for k, blob in enumerate(top):
        delta = numpy.ones(blob.shape, numpy.float32) if layer.is_loss and k == 0 else \
            numpy.linspace(-1, 1, blob.count()).reshape(blob.shape).astype(numpy.float32)
        blob.diff[...] = backend.to_device(delta, device)
    layer.backward(top, [k in grads for k in range(len(bottom))], bottom)


def assert_layer_same_on_device(gpu_kind: str, kind: str, body: str, bottoms, grads, tops: int,
                                weights=None) -> None:
    """Run one layer (its Caffe type and prototxt body) forward and backward on the CPU and
    on the device with the same parameters (``weights``: a function of the CPU layer's blobs
    giving their values; default: what the fillers drew). On the strict stand-in (numpy
    underneath) the same operations must give the same bits; on CUDA, close values."""
    from engine import backend, rng

    def build():
        rng.set_seed(3)
        return make_layer(f'type: "{kind}" {body}', bottoms, num_tops=tops, dtype=numpy.float32)

    def arrays(layer, bottom, top):
        found = [("top data", b.data) for b in top] + [(f"bottom {k} diff", bottom[k].diff) for k in grads]
        found += [(f"param {j} diff", b.diff) for j, b in enumerate(layer.blobs)]
        return [(name, backend.to_numpy(a)) for name, a in found]

    cpu = build()
    values = weights(cpu[0].blobs) if weights is not None else [b.data.copy() for b in cpu[0].blobs]
    for blob, value in zip(cpu[0].blobs, values):
        blob.data[...] = value
    forward_backward_ramp(*cpu, grads, "cpu")
    layer, bottom, top = build()
    layer.device = "gpu"
    for blob in bottom + top + layer.blobs:
        blob.to("gpu")
    for blob, value in zip(layer.blobs, values):
        blob.data[...] = backend.to_device(value, "gpu")
    forward_backward_ramp(layer, bottom, top, grads, "gpu")
    assert all(backend.device_of(b.data) == "gpu" for b in top)
    for (name, mine), (_, theirs) in zip(arrays(layer, bottom, top), arrays(*cpu)):
        if gpu_kind == "strict":
            numpy.testing.assert_array_equal(mine, theirs, err_msg=f"{kind}: {name}")
        else:
            numpy.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=2e-6, err_msg=f"{kind}: {name}")


def check_caffe_iteration(solver, recorded: dict, used: dict, param_layers, k: int, *,
                          weights: float, tensors: float) -> None:
    """One recorded Caffe iteration against the engine's: the weights it used (``used``,
    {(layer, i): array}), each raw parameter gradient, and every blob's data and diff
    (``recorded``: the run's tensors/iter_k.h5 as {name: array}), within the relative
    tolerances ``weights`` and ``tensors``. The nets have no in-place layers, so the
    engine's blob names are Caffe's."""
    net = solver.net
    for (layer, i), values in used.items():
        assert relative_error(values, recorded[f"param_data/{layer}/{i}"]) <= weights, (k, layer, i)
    order = net.param_display_names
    for layer in param_layers:
        for i in (0, 1):
            raw = solver.raw_gradients[order.index(f"{layer}.{i}")]
            error = relative_error(raw, recorded[f"param_diff/{layer}/{i}"])
            assert error <= tensors, (k, "param_diff", layer, i, error)
    names = {name.split("/", 2)[2] for name in recorded if name.startswith("sub0/data/")}
    assert names == set(net.blobs)
    for name in names:
        for kind in ("data", "diff"):
            error = relative_error(getattr(net.blobs[name], kind), recorded[f"sub0/{kind}/{name}"])
            assert error <= tensors, (k, kind, name, error)
