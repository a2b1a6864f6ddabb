"""pycaffe's ``caffe.Net`` over the engine's Net: the same constructors, ordered
dicts, forward/backward return values and file methods as BVLC's pycaffe."""
from __future__ import annotations

import os
from collections import OrderedDict
from itertools import zip_longest
from typing import Any, Callable, Iterator

import numpy

from .. import io as engine_io
from ..errors import DataError, NetDefinitionError, ShapeError
from ..net import TEST, TRAIN
from ..net import Net as EngineNet
from ._blob import FOLLOWERS, Blob, BlobCache, Layer, device_synced
from .python_layer import PYCAFFE_ACCESS

_NET_ARGS = ("phase", "level", "stages", "weights")


def check_file(path, what: str = "file") -> str:
    """``path`` as a string if it can be opened (pycaffe's CheckFile), else an error naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"Could not open {what} {path}: no such file")
    return path


def check_phase(phase) -> int:
    if isinstance(phase, bool) or phase not in (TRAIN, TEST):
        raise ValueError(f"phase must be caffe.TRAIN ({TRAIN}) or caffe.TEST ({TEST}), got {phase!r}")
    return int(phase)


def _constructor_args(args: tuple, kwargs: dict) -> dict:
    """The four settings of ``Net(file, phase, level=0, stages=None, weights=None)`` or of
    the legacy ``Net(file, weights, phase)``."""
    if args and isinstance(args[0], (str, bytes, os.PathLike)):
        if len(args) != 2 or kwargs:
            raise TypeError("the legacy constructor is Net(network_file, weights_file, phase)")
        return {"phase": args[1], "level": 0, "stages": None, "weights": args[0]}
    if len(args) > len(_NET_ARGS):
        raise TypeError(f"Net() takes at most {len(_NET_ARGS) + 1} positional arguments")
    values = dict(zip(_NET_ARGS, args))
    for key, value in kwargs.items():
        if key not in _NET_ARGS:
            raise TypeError(f"Net() got an unexpected keyword argument '{key}'")
        if key in values:
            raise TypeError(f"Net() got multiple values for argument '{key}'")
        values[key] = value
    if "phase" not in values:
        raise TypeError("Net() needs a phase: caffe.Net(network_file, caffe.TEST) or caffe.TRAIN")
    return {"level": 0, "stages": None, "weights": None, **values}


class Net:
    """``caffe.Net``: ``Net(network_file, phase, level=0, stages=None, weights=None)``
    or the legacy ``Net(network_file, weights_file, phase)``."""

    def __init__(self, network_file, *args, **kwargs):
        settings = _constructor_args(args, kwargs)
        path = check_file(network_file, "network file")
        phase = check_phase(settings["phase"])
        weights = settings["weights"]
        if weights is not None:
            weights = check_file(weights, "weights file")
        net = EngineNet(path, phase, level=int(settings["level"]), stages=list(settings["stages"] or ()),
                        python_layers=PYCAFFE_ACCESS)  # pycaffe imports Python layers from sys.path
        self._attach(net)
        if weights is not None:
            net.copy_from(weights)
        FOLLOWERS.add(self)

    def _move_to(self, device: str) -> None:
        """Follow caffe.set_mode_gpu / set_mode_cpu (a net with Python layers stays on the CPU)."""
        if self._net.device != device and not any(layer.type_name == "Python" for layer in self._net.layers):
            self._net.to(device)

    @classmethod
    def wrap(cls, net: EngineNet) -> "Net":
        """The pycaffe view of an engine Net (a solver's train or test net)."""
        view = cls.__new__(cls)
        view._attach(net)
        return view

    def _attach(self, net: EngineNet) -> None:
        self._net = net
        self._cache = BlobCache()
        self.layers = [self._layer_view(layer) for layer in net.layers]
        self._blobs_dict = OrderedDict((name, self._cache.view(b)) for name, b in net.blobs.items())
        self._callbacks: dict[str, list[Callable[[int], Any]]] = {
            "before_forward": [], "after_forward": [], "before_backward": [], "after_backward": []}

    def _layer_view(self, layer) -> Layer:
        """A Python layer is its own object (as in pycaffe); other layers get a view."""
        instance = getattr(layer, "instance", None)
        return instance if isinstance(instance, Layer) else Layer(layer, self._cache)

    # -- what pycaffe exposes from C++ ----------------------------------------
    @property
    def _blob_names(self) -> list[str]:
        return list(self._blobs_dict)

    @property
    def _blobs(self) -> list[Blob]:
        return list(self._blobs_dict.values())

    @property
    def _layer_names(self) -> list[str]:
        return [layer.name for layer in self._net.layers]

    @property
    def _inputs(self) -> list[int]:
        names = self._blob_names
        return [names.index(n) for n in self._net.inputs]

    @property
    def _outputs(self) -> list[int]:
        names = self._blob_names
        return [names.index(n) for n in self._net.outputs]

    @property
    def _blob_loss_weights(self) -> list[float]:
        """The loss weight of every blob (Caffe's blob_loss_weights), in blob order."""
        weights = dict.fromkeys(self._blobs_dict, 0.0)
        for i, tops in enumerate(self._net.top_names):
            for name, weight in zip(tops, self._net.loss_weights_of(i)):
                weights[name] = float(weight)
        return list(weights.values())

    def _top_ids(self, i: int) -> list[int]:
        names = self._blob_names
        return [names.index(n) for n in self._net.top_names[i]]

    def _bottom_ids(self, i: int) -> list[int]:
        names = self._blob_names
        return [names.index(n) for n in self._net.bottom_names[i]]

    # -- the Python-side dictionaries ------------------------------------------
    @property
    def blobs(self) -> "OrderedDict[str, Blob]":
        """Every blob by name, input to output."""
        return self._blobs_dict

    @property
    def blob_loss_weights(self) -> "OrderedDict[str, float]":
        return OrderedDict(zip(self._blob_names, self._blob_loss_weights))

    @property
    def layer_dict(self) -> "OrderedDict[str, Layer]":
        return OrderedDict(zip(self._layer_names, self.layers))

    @property
    def params(self) -> "OrderedDict[str, list[Blob]]":
        """The parameter blobs (weights, bias, ...) of each layer that has some."""
        return OrderedDict((layer.name, layer.blobs) for layer in self.layers if layer._layer.blobs)

    @property
    def inputs(self) -> list[str]:
        return list(self._net.inputs)

    @property
    def outputs(self) -> list[str]:
        return list(self._net.outputs)

    @property
    def top_names(self) -> "OrderedDict[str, list[str]]":
        return OrderedDict(zip(self._layer_names, (list(t) for t in self._net.top_names)))

    @property
    def bottom_names(self) -> "OrderedDict[str, list[str]]":
        return OrderedDict(zip(self._layer_names, (list(b) for b in self._net.bottom_names)))

    # -- running ---------------------------------------------------------------
    def _layer_index(self, name: str) -> int:
        try:
            return self._layer_names.index(name)
        except ValueError:
            raise ValueError(f"no layer named '{name}' in net '{self._net.name}' "
                             f"(layers: {', '.join(self._layer_names)})") from None

    def _forward(self, start: int, end: int) -> float:
        """Run layers ``start`` to ``end`` (inclusive) forward; returns their loss.
        Each layer is reshaped to its bottoms first, as Caffe's Layer::Forward does,
        so ``blobs['data'].reshape(...)`` then ``forward()`` works without ``reshape()``."""
        net, loss = self._net, 0.0
        before, after = self._callbacks["before_forward"], self._callbacks["after_forward"]
        with device_synced():
            for i in range(start, end + 1):
                for run in before:
                    run(i)
                net.layers[i].reshape(net.bottoms_of(i), net.tops_of(i))
                loss += net.forward_layer(i)
                for run in after:
                    run(i)
        net.loss = loss
        return loss

    def _backward(self, start: int, end: int) -> None:
        """Run layers ``start`` down to ``end`` (inclusive) backward."""
        net = self._net
        before, after = self._callbacks["before_backward"], self._callbacks["after_backward"]
        with device_synced():
            for i in range(start, end - 1, -1):
                for run in before:
                    run(i)
                net.backward_layer(i)
                for run in after:
                    run(i)

    def _forward_backward(self) -> float:
        """Forward then backward over the whole net (Caffe's ForwardBackward); the loss."""
        last = len(self.layers) - 1
        loss = self._forward(0, last)
        self._backward(last, 0)
        return loss

    def _has_callbacks(self) -> bool:
        return any(self._callbacks.values())

    def _feed(self, values: dict, expected: list[str], field: str, what: str) -> None:
        """Write ``values`` (name -> array) into the blobs' ``field`` with pycaffe's checks."""
        if set(values) != set(expected):
            raise ValueError(f"{what} arguments {sorted(values)} do not match the net's "
                             f"{'inputs' if field == 'data' else 'outputs'} {sorted(expected)}")
        for name, value in values.items():
            blob = self._net.blobs[name]
            value = numpy.asarray(value) if not hasattr(value, "shape") else value
            if not blob.shape or value.shape[:1] != blob.shape[:1]:
                raise ShapeError(f"{what} '{name}' is not batch sized: its shape is {value.shape}, "
                                 f"the blob's is {blob.shape}")
            view = self._blobs_dict[name]
            target = view.data if field == "data" else view.diff
            try:
                target[...] = value
            except ValueError:
                raise ShapeError(f"{what} '{name}' has shape {value.shape} but the blob has shape "
                                 f"{blob.shape} (reshape the blob and call net.reshape() first)") from None

    def forward(self, blobs: list[str] | None = None, start: str | None = None, end: str | None = None,
                **kwargs) -> dict:
        """Run forward (from layer ``start`` to layer ``end``, inclusive), inputs given by
        blob name. Returns {name: data} of the net outputs (``end``'s tops when ``end`` is
        given) plus the blobs named in ``blobs``."""
        blobs = list(blobs or [])
        start_index = self._layer_index(start) if start is not None else 0
        if end is not None:
            end_index = self._layer_index(end)
            wanted = set(self._net.top_names[end_index] + blobs)
        else:
            end_index = len(self.layers) - 1
            wanted = set(self.outputs + blobs)
        if kwargs:
            self._feed(kwargs, self.inputs, "data", "input")
        self._forward(start_index, end_index)
        return {name: self._blobs_dict[name].data for name in wanted}

    def backward(self, diffs: list[str] | None = None, start: str | None = None, end: str | None = None,
                 **kwargs) -> dict:
        """Run backward from layer ``start`` down to layer ``end`` (inclusive), top diffs
        given by output name. Returns {name: diff} of the net inputs (``end``'s bottoms
        when ``end`` is given) plus the blobs named in ``diffs``."""
        diffs = list(diffs or [])
        start_index = self._layer_index(start) if start is not None else len(self.layers) - 1
        if end is not None:
            end_index = self._layer_index(end)
            wanted = set(self._net.bottom_names[end_index] + diffs)
        else:
            end_index = 0
            wanted = set(self.inputs + diffs)
        if kwargs:
            self._feed(kwargs, self.outputs, "diff", "top diff")
        self._backward(start_index, end_index)
        return {name: self._blobs_dict[name].diff for name in wanted}

    def _batch(self, arrays: dict) -> Iterator[dict]:
        """Split {name: array of N rows} into batches of the net's batch size; the last
        one padded with zero rows."""
        if not arrays:
            return
        count = len(next(iter(arrays.values())))
        batch_size = next(iter(self._blobs_dict.values())).shape[0]
        for start in range(0, count - count % batch_size, batch_size):
            yield {name: values[start:start + batch_size] for name, values in arrays.items()}
        remainder = count % batch_size
        if remainder:
            padded = {}
            for name, values in arrays.items():
                values = numpy.asarray(values)
                padding = numpy.zeros((batch_size - remainder,) + values.shape[1:])
                padded[name] = numpy.concatenate([values[-remainder:], padding])
            yield padded

    @staticmethod
    def _unpad(collected: dict, count: int) -> dict:
        packed = {name: numpy.asarray(rows) for name, rows in collected.items()}
        return {name: rows[:count] for name, rows in packed.items()}

    def forward_all(self, blobs: list[str] | None = None, **kwargs) -> dict:
        """forward() over inputs of any length, in batches; {name: all rows}."""
        collected: dict[str, list] = {name: [] for name in set(self.outputs + list(blobs or []))}
        if not kwargs:
            outs = self.forward(blobs=blobs)
            return {name: numpy.array(value, copy=True) for name, value in outs.items()}
        for batch in self._batch(kwargs):
            for name, value in self.forward(blobs=blobs, **batch).items():
                collected[name].extend(value.copy())
        return self._unpad(collected, len(next(iter(kwargs.values()))))

    def forward_backward_all(self, blobs: list[str] | None = None, diffs: list[str] | None = None,
                             **kwargs) -> tuple[dict, dict]:
        """forward() and backward() over inputs/top diffs of any length, in batches."""
        outs: dict[str, list] = {name: [] for name in set(self.outputs + list(blobs or []))}
        grads: dict[str, list] = {name: [] for name in set(self.inputs + list(diffs or []))}
        forward_batches = self._batch({n: kwargs[n] for n in self.inputs if n in kwargs})
        backward_batches = self._batch({n: kwargs[n] for n in self.outputs if n in kwargs})
        nothing: dict[str, Any] = {}
        for forward_batch, backward_batch in zip_longest(forward_batches, backward_batches, fillvalue=nothing):
            for name, value in self.forward(blobs=blobs, **forward_batch).items():
                outs[name].extend(value.copy())
            for name, value in self.backward(diffs=diffs, **backward_batch).items():
                grads[name].extend(value.copy())
        count = len(next(iter(kwargs.values()))) if kwargs else None
        if count is None:
            return ({n: numpy.asarray(v) for n, v in outs.items()}, {n: numpy.asarray(v) for n, v in grads.items()})
        return self._unpad(outs, count), self._unpad(grads, count)

    def reshape(self) -> None:
        """Propagate changed input shapes through every layer (Caffe's Net::Reshape)."""
        with device_synced():
            self._net.reshape()

    def clear_param_diffs(self) -> None:
        """Zero every parameter diff in place (arrays already held see the zeros)."""
        with device_synced():
            for blob in self._net.learnable_params:
                blob.diff.fill(0)
                blob.diff_is_clear = True

    def set_input_arrays(self, data, labels) -> None:
        """Hand arrays to the net's first layer, a MemoryData layer (N x C x H x W float32
        C-contiguous data, N labels)."""
        labels = numpy.asarray(labels)
        if labels.ndim == 1:
            labels = numpy.ascontiguousarray(labels[:, None, None, None])
        layer: Any = self._net.layers[0] if self._net.layers else None
        if layer is None or layer.type_name != "MemoryData":
            raise NetDefinitionError("set_input_arrays may only be called if the first layer is a MemoryData layer")
        for array, name, shape in ((data, "data array", layer.sample_shape), (labels, "labels array", (1, 1, 1))):
            _check_memory_array(array, name, shape)
        if data.shape[0] != labels.shape[0]:
            raise ShapeError("set_input_arrays: data and labels must have the same first dimension")
        if data.shape[0] % layer.batch_size:
            raise ShapeError(f"set_input_arrays: the first dimension ({data.shape[0]}) must be a multiple "
                             f"of the batch size {layer.batch_size}")
        layer.set_arrays(data, labels.reshape(-1))

    # -- weights -----------------------------------------------------------------
    def copy_from(self, path) -> None:
        """Load weights by layer name from a .caffemodel (or HDF5 .caffemodel.h5)."""
        path = check_file(path, "weights file")
        with device_synced():
            self._net.copy_from(path)

    def share_with(self, other: "Net") -> None:
        """Use ``other``'s parameter blobs for the layers of the same name."""
        with device_synced():
            self._net.share_weights(other._net)

    def save(self, path) -> None:
        """Write the weights as a binary .caffemodel (whatever the name, as pycaffe)."""
        with device_synced():
            engine_io.save_weights_binary(self._net, os.fspath(path))

    def save_hdf5(self, path) -> None:
        """Write the weights as Caffe's HDF5 (``data/<layer>/<i>``)."""
        with device_synced():
            engine_io._save_weights_h5(self._net, os.fspath(path), False)

    def load_hdf5(self, path) -> None:
        """Load weights written by save_hdf5 (or Caffe's .caffemodel.h5)."""
        path = check_file(path, "weights file")
        with device_synced():
            engine_io._load_weights_h5(self._net, path)

    # -- callbacks ---------------------------------------------------------------
    def before_forward(self, run: Callable[[int], Any]) -> None:
        """Call ``run(layer_index)`` before each layer's forward."""
        self._callbacks["before_forward"].append(run)

    def after_forward(self, run: Callable[[int], Any]) -> None:
        self._callbacks["after_forward"].append(run)

    def before_backward(self, run: Callable[[int], Any]) -> None:
        self._callbacks["before_backward"].append(run)

    def after_backward(self, run: Callable[[int], Any]) -> None:
        self._callbacks["after_backward"].append(run)

    def __repr__(self) -> str:
        return f"<caffe Net '{self._net.name}': {len(self.layers)} layers>"


def _check_memory_array(array, name: str, sample_shape) -> None:
    """pycaffe's CheckContiguousArray."""
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"set_input_arrays: {name} must be a numpy array")
    if not array.flags["C_CONTIGUOUS"]:
        raise ShapeError(f"set_input_arrays: {name} must be C contiguous")
    if array.ndim != 4:
        raise ShapeError(f"set_input_arrays: {name} must be 4-d, got shape {array.shape}")
    if array.dtype != numpy.float32:
        raise ShapeError(f"set_input_arrays: {name} must be float32, got {array.dtype}")
    if tuple(array.shape[1:]) != tuple(sample_shape):
        raise ShapeError(f"set_input_arrays: {name} rows have shape {array.shape[1:]}, "
                         f"the layer wants {tuple(sample_shape)}")
