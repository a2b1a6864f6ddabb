"""A net builder in the spirit of TensorFlow Playground (Qt-free): a built-in dataset,
hidden InnerProduct layers with an activation each, an output layer and a loss.

A :class:`NetDesign` writes a Caffe NetParameter (train and test data layers of a
``BuiltinData`` dataset, or an ``HDF5Data`` source for drawn points), a solver
prototxt that reloads into the same net, and reads such a net back
(:func:`design_from_net_param`). :func:`rebuild` makes a solver of an edited design
and copies over the weights of every layer whose name and shapes did not change.
Each hidden layer keeps the name it was given when added (ip1, ip2, …) and the
output layer is ``out``, so inserting a layer keeps the others' weights.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy
from google.protobuf import text_format

from engine.atomic import write_text
from engine.backend import to_device, to_numpy
from engine.proto import caffe_pb2

ACTIVATIONS = ("ReLU", "Sigmoid", "TanH", "ELU")
LOSSES = ("SoftmaxWithLoss", "HingeLoss")
#: dataset -> number of classes (2-D point sets only: the builder draws them)
DATASETS = {"spiral": 3, "xor": 2, "circles": 2, "blobs": 3}
OUTPUT = "out"
MAX_UNITS = 256


@dataclass
class Hidden:
    name: str
    num_output: int
    activation: str = "ReLU"


@dataclass
class NetDesign:
    """What the builder shows: the dataset, the hidden layers, the loss."""

    dataset: str = "spiral"
    num_points: int = 300
    noise: float = 0.1
    batch_size: int = 32
    seed: int = 1
    hidden: list[Hidden] = field(default_factory=lambda: [Hidden("ip1", 16), Hidden("ip2", 16)])
    loss: str = "SoftmaxWithLoss"
    name: str = "built_net"
    drawn_source: str = ""  # an HDF5 list file of drawn points (gui.model.drawn_data): used instead of the dataset
    drawn_classes: int = 0
    output_name: str = OUTPUT  # the output InnerProduct's name (a loaded net keeps its own)

    @property
    def num_classes(self) -> int:
        return self.drawn_classes if self.drawn_source else DATASETS.get(self.dataset, 2)

    # -- editing ----------------------------------------------------------------
    def _new_name(self) -> str:
        taken = {h.name for h in self.hidden} | {self.output_name}
        k = 1
        while f"ip{k}" in taken:
            k += 1
        return f"ip{k}"

    def add_layer(self, index: int | None = None, num_output: int = 8, activation: str = "ReLU") -> Hidden:
        """A new hidden layer at ``index`` (default: last, just before the output)."""
        _check_activation(activation)
        layer = Hidden(self._new_name(), _units(num_output), activation)
        self.hidden.insert(len(self.hidden) if index is None else index, layer)
        return layer

    def remove_layer(self, index: int) -> Hidden:
        return self.hidden.pop(index)

    def change_units(self, index: int, delta: int) -> int:
        """num_output + delta (kept within 1..MAX_UNITS); returns the new count."""
        layer = self.hidden[index]
        layer.num_output = _units(layer.num_output + delta)
        return layer.num_output

    def set_activation(self, index: int, activation: str) -> None:
        _check_activation(activation)
        self.hidden[index].activation = activation

    def set_loss(self, loss: str) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss '{loss}' (use one of {', '.join(LOSSES)})")
        self.loss = loss

    def summary(self) -> str:
        """'2 → 16 ReLU → 16 ReLU → 3, SoftmaxWithLoss'."""
        parts = ["2"] + [f"{h.num_output} {h.activation}" for h in self.hidden] + [str(self.num_classes)]
        return " → ".join(parts) + f", {self.loss}"

    # -- writing --------------------------------------------------------------
    def net_param(self) -> caffe_pb2.NetParameter:
        param = caffe_pb2.NetParameter(name=self.name)
        for phase, size in ((caffe_pb2.TRAIN, self.batch_size), (caffe_pb2.TEST, self.batch_size)):
            self._data_layer(param, phase, size)
        bottom = "data"
        for layer in self.hidden + [Hidden(self.output_name, self.num_classes, "")]:
            ip = param.layer.add(name=layer.name, type="InnerProduct", bottom=[bottom], top=[layer.name])
            ip.inner_product_param.num_output = layer.num_output
            ip.inner_product_param.weight_filler.type = "xavier"
            ip.inner_product_param.bias_filler.type = "constant"
            ip.inner_product_param.bias_filler.value = 0.0 if layer.name == self.output_name else 0.1
            if layer.activation:
                param.layer.add(name=f"{layer.name}_{layer.activation.lower()}", type=layer.activation,
                                bottom=[layer.name], top=[layer.name])
            bottom = layer.name
        param.layer.add(name="loss", type=self.loss, bottom=[self.output_name, "label"], top=["loss"])
        accuracy = param.layer.add(name="accuracy", type="Accuracy", bottom=[self.output_name, "label"],
                                   top=["accuracy"])
        accuracy.include.add(phase=caffe_pb2.TEST)
        return param

    def _data_layer(self, param: caffe_pb2.NetParameter, phase: int, batch_size: int) -> None:
        if self.drawn_source:
            layer = param.layer.add(name="data", type="HDF5Data", top=["data", "label"])
            layer.hdf5_data_param.source = self.drawn_source
            layer.hdf5_data_param.batch_size = batch_size
        else:
            layer = param.layer.add(name="data", type="BuiltinData", top=["data", "label"])
            p = layer.builtin_data_param
            p.dataset, p.num_points, p.noise = self.dataset, self.num_points, self.noise
            p.num_classes, p.seed, p.batch_size, p.test_fraction = self.num_classes, self.seed, batch_size, 0.2
        layer.include.add(phase=phase)

    def prototxt(self) -> str:
        return text_format.MessageToString(self.net_param())


def solver_text(net_file: str, settings: caffe_pb2.SolverParameter | None = None) -> str:
    """A solver prototxt for ``net_file`` (relative to the solver's folder), with ``settings``
    (type, lr, momentum, …) or the spiral example's."""
    param = caffe_pb2.SolverParameter()
    if settings is not None:
        param.CopyFrom(settings)
    else:
        param.type, param.base_lr, param.momentum, param.weight_decay = "SGD", 0.1, 0.9, 1e-4
        param.lr_policy, param.max_iter, param.random_seed = "fixed", 4000, 1701
        param.test_interval, param.display, param.average_loss = 100, 100, 20
        param.test_iter.append(1)
    for name in ("net_param", "train_net", "train_net_param", "test_net", "test_net_param", "snapshot_prefix"):
        param.ClearField(name)
    param.net = net_file
    param.snapshot_prefix = os.path.splitext(net_file)[0]
    return text_format.MessageToString(param)


def save(design: NetDesign, folder: str, settings: caffe_pb2.SolverParameter | None = None) -> tuple[str, str]:
    """Write ``net.prototxt`` and ``solver.prototxt`` into ``folder`` (atomically); returns both paths."""
    os.makedirs(folder, exist_ok=True)
    if design.drawn_source:  # the drawn points go beside the net, named relative to it
        from gui.model.drawn_data import LIST_NAME, DrawnData
        DrawnData.load(os.path.dirname(os.path.abspath(design.drawn_source))).save(folder)
        design = dataclasses.replace(design, drawn_source=LIST_NAME)
    net_path, solver_path = os.path.join(folder, "net.prototxt"), os.path.join(folder, "solver.prototxt")
    header = f"# Made with Backprop Studio's net builder: {design.summary()}\n"
    write_text(net_path, header + design.prototxt())
    write_text(solver_path, solver_text("net.prototxt", settings))
    return net_path, solver_path


def design_from_net_param(param: caffe_pb2.NetParameter) -> NetDesign:
    """The design of a net the builder wrote (or any MLP of the same shape)."""
    design = NetDesign(hidden=[], name=param.name or "built_net")
    activations = {layer.bottom[0]: layer.type for layer in param.layer if layer.type in ACTIVATIONS}
    ips = [layer for layer in param.layer if layer.type == "InnerProduct"]
    for layer in param.layer:
        if layer.type == "BuiltinData":
            p = layer.builtin_data_param
            design.dataset, design.num_points, design.noise = p.dataset, p.num_points, p.noise
            design.seed, design.batch_size = int(p.seed), p.batch_size
        elif layer.type == "HDF5Data":
            design.drawn_source, design.batch_size = layer.hdf5_data_param.source, layer.hdf5_data_param.batch_size
        elif layer.type in LOSSES:
            design.loss = layer.type
    for layer in ips[:-1]:
        design.hidden.append(Hidden(layer.name, layer.inner_product_param.num_output,
                                    activations.get(layer.name, "ReLU")))
    if ips:
        design.output_name = ips[-1].name
    if ips and design.drawn_source:
        design.drawn_classes = ips[-1].inner_product_param.num_output
    return design


def rebuild(old_solver, design: NetDesign, settings: caffe_pb2.SolverParameter | None = None):
    """A solver of ``design`` (settings from ``settings``, else ``old_solver``'s), with the weights of
    each layer whose name and blob shapes are unchanged copied from ``old_solver``'s net.
    Returns (solver, kept layer names, new layer names)."""
    param = caffe_pb2.SolverParameter()
    param.CopyFrom(settings if settings is not None else old_solver.param)
    for name in ("net", "train_net", "train_net_param", "test_net", "test_net_param"):
        param.ClearField(name)
    param.net_param.CopyFrom(design.net_param())
    solver = type(old_solver)(param, device=old_solver.device, path=old_solver.path,
                              python_layers=old_solver.python_layers)
    kept, fresh = copy_matching_weights(old_solver.net, solver.net)
    return solver, kept, fresh


def copy_matching_weights(source_net, target_net) -> tuple[list[str], list[str]]:
    """Copy every learnable layer's blobs from ``source_net`` where name and shapes match."""
    kept, fresh = [], []
    source = {layer.name: layer for layer in source_net.layers if layer.blobs}
    for layer in target_net.layers:
        if not layer.blobs:
            continue
        old = source.get(layer.name)
        if old is None or [b.shape for b in old.blobs] != [b.shape for b in layer.blobs]:
            fresh.append(layer.name)
            continue
        for target, blob in zip(layer.blobs, old.blobs):
            target.data[...] = to_device(numpy.array(to_numpy(blob.data)), target_net.device)
        kept.append(layer.name)
    return kept, fresh


def _units(count: int) -> int:
    return max(1, min(MAX_UNITS, int(count)))


def _check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}' (use one of {', '.join(ACTIVATIONS)})")
