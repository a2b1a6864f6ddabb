"""Decision boundaries of 2-input nets (Qt-free).

A TEST-phase copy of the train net is built with its data layer replaced by an
Input layer holding a grid of points, and the layers that need labels (loss,
accuracy) removed. It shares the train net's weights (``Net.share_weights``),
so it always shows the current model. :meth:`BoundaryModel.compute` returns the
class probabilities and argmax on the grid, and every InnerProduct /
activation layer's own response map (the hidden units, as TF Playground shows
per neuron).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy

from engine import backend, rng
from engine.errors import NetDefinitionError
from engine.net import TEST, Net
from engine.proto import caffe_pb2

RESPONSE_TYPES = {"InnerProduct", "ReLU", "Sigmoid", "TanH", "Softmax"}
LOSS_TYPES = {"SoftmaxWithLoss", "EuclideanLoss", "SigmoidCrossEntropyLoss", "Accuracy"}


@dataclass
class Grid:
    """``nx`` × ``ny`` points covering ``bounds`` = (xmin, xmax, ymin, ymax); row j is y, column i is x."""

    bounds: tuple[float, float, float, float]
    nx: int
    ny: int

    @property
    def xs(self) -> numpy.ndarray:
        return numpy.linspace(self.bounds[0], self.bounds[1], self.nx)

    @property
    def ys(self) -> numpy.ndarray:
        return numpy.linspace(self.bounds[2], self.bounds[3], self.ny)

    def points(self) -> numpy.ndarray:
        """(ny·nx, 2) points, row-major: point k is (xs[k % nx], ys[k // nx])."""
        gx, gy = numpy.meshgrid(self.xs, self.ys)
        return numpy.c_[gx.ravel(), gy.ravel()].astype(numpy.float32)


@dataclass
class BoundaryResult:
    grid: Grid
    probabilities: numpy.ndarray  # (ny, nx, classes)
    classes: numpy.ndarray        # (ny, nx) argmax
    scores: numpy.ndarray         # (ny, nx, classes) the raw outputs
    responses: dict[str, numpy.ndarray] = field(default_factory=dict)  # layer -> (ny, nx, units)


def _input_blob(net) -> str:
    """The data top feeding the first computing layer."""
    for i in range(len(net.layers)):
        if not net.bottom_names[i] and net.top_names[i]:
            return net.top_names[i][0]
    raise NetDefinitionError("the net has no data or input layer to replace with a grid")


def _score_blob(net) -> str:
    """The blob the loss reads the class scores from (else the last layer's top)."""
    for i, layer in enumerate(net.layers):
        if layer.type_name in LOSS_TYPES and layer.type_name != "Accuracy":
            return net.bottom_names[i][0]
    return net.top_names[-1][0]


def grid_net_param(net, grid_size: int) -> caffe_pb2.NetParameter:
    """``net``'s definition with the data layer turned into an Input of (grid_size, 2)."""
    source = net.param
    input_name = _input_blob(net)
    param = caffe_pb2.NetParameter(name=f"{source.name}_grid")
    grid_input = param.layer.add(name="grid", type="Input")
    grid_input.top.append(input_name)
    grid_input.input_param.shape.add().dim.extend([grid_size, 2])
    available = {input_name}
    for layer in source.layer:
        if not layer.bottom or layer.type in LOSS_TYPES:
            continue
        if not all(b in available for b in layer.bottom):
            continue
        copy = param.layer.add()
        copy.CopyFrom(layer)
        del copy.include[:], copy.exclude[:]
        del copy.loss_weight[:]
        available.update(copy.top)
    return param


def data_bounds(points: numpy.ndarray, margin: float = 0.15) -> tuple[float, float, float, float]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = (hi - lo) * margin + 1e-6
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def training_points(net) -> tuple[numpy.ndarray, numpy.ndarray] | None:
    """The whole training set of a BuiltinData/MemoryData net (points, labels), if it has one."""
    for layer in net.layers:
        batcher = getattr(layer, "batcher", None)
        if batcher is not None and len(batcher.arrays) >= 1 and batcher.arrays[0].ndim == 2 \
                and batcher.arrays[0].shape[1] == 2:
            labels = batcher.arrays[1] if len(batcher.arrays) > 1 else numpy.zeros(batcher.rows)
            return numpy.asarray(batcher.arrays[0]), numpy.asarray(labels).astype(int).ravel()
    return None


def _softmax(scores: numpy.ndarray) -> numpy.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = numpy.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


class BoundaryModel:
    """The grid copy of a 2-input train net; ``compute()`` after each step."""

    def __init__(self, train_net, resolution: int = 64, bounds=None):
        self.train_net = train_net
        input_blob = _input_blob(train_net)
        if train_net.blobs[input_blob].shape[1:] != (2,):
            raise NetDefinitionError(
                f"decision boundaries need a net with 2 inputs; '{input_blob}' has shape "
                f"{train_net.blobs[input_blob].shape}")
        if bounds is None:
            data = training_points(train_net)
            bounds = data_bounds(data[0]) if data is not None else (-1.0, 1.0, -1.0, 1.0)
        self.grid = Grid(tuple(bounds), resolution, resolution)
        self.input_blob = input_blob
        self.score_blob = _score_blob(train_net)
        saved = rng.get_state()  # the copy's fillers must not move the training random stream
        try:
            self.net = Net(grid_net_param(train_net, resolution * resolution), TEST,
                           dtype=train_net.dtype, device=train_net.device, python_layers=train_net.python_layers)
        finally:
            rng.set_state(saved)
        self.net.share_weights(train_net)

    def compute(self, responses: bool = True) -> BoundaryResult:
        net, grid = self.net, self.grid
        net.blobs[self.input_blob].data[...] = backend.to_device(grid.points(), net.device)
        maps: dict[str, numpy.ndarray] = {}
        for i, layer in enumerate(net.layers):
            net.forward_layer(i)
            if responses and layer.type_name in RESPONSE_TYPES:
                top = backend.to_numpy(net.tops_of(i)[0].data)
                maps[layer.name] = top.reshape(grid.ny, grid.nx, -1).copy()
        scores = backend.to_numpy(net.blobs[self.score_blob].data).reshape(grid.ny * grid.nx, -1)
        scores = scores.astype(numpy.float64)
        if scores.shape[1] == 1:
            p1 = 1.0 / (1.0 + numpy.exp(-scores[:, 0]))
            probabilities = numpy.c_[1.0 - p1, p1]
        else:
            probabilities = _softmax(scores)
        shape = (grid.ny, grid.nx)
        return BoundaryResult(grid, probabilities.reshape(shape + (-1,)),
                              probabilities.argmax(axis=1).reshape(shape),
                              scores.reshape(shape + (-1,)), maps)


def decision_boundary(train_net, resolution: int = 64, bounds=None) -> BoundaryResult:
    """One-shot: build the grid net and compute (a GUI keeps a BoundaryModel instead)."""
    return BoundaryModel(train_net, resolution, bounds).compute()
