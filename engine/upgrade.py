"""Caffe's upgrade step (``src/caffe/util/upgrade_proto.cpp``): old net and solver
files are rewritten into today's form as they are read, as Caffe does.

Nets (:func:`upgrade_net`, Caffe's UpgradeNetAsNeeded), in Caffe's order:

1. V0 -> V1: ``layers { layer { type: "conv" ... } }``; padding layers fold
   into the convolution or pooling that reads them.
2. Data transformation: the deprecated ``scale`` / ``mean_file`` / ``crop_size``
   / ``mirror`` of Data, ImageData and WindowData layers move to ``transform_param``.
3. V1 -> V2: ``layers { type: INNER_PRODUCT blobs_lr: 1 weight_decay: 1 }``
   becomes ``layer { type: "InnerProduct" param { lr_mult: 1 decay_mult: 1 } }``.
4. Input fields: ``input`` / ``input_shape`` / ``input_dim`` become an Input layer.
5. BatchNorm: the three ``param`` specs old files gave BatchNorm are dropped.

Solvers (:func:`upgrade_solver`, UpgradeSolverAsNeeded): ``solver_type: NESTEROV``
becomes ``type: "Nesterov"``.

Each step taken gives one notice, with Caffe's wording: an
:class:`~engine.errors.EngineWarning` (the command line prints it as one
``warning:`` line).
``python -m engine upgrade IN OUT`` writes the upgraded file
(:func:`upgrade_file`), as Caffe's ``upgrade_net_proto_text`` /
``upgrade_solver_proto_text`` (and ``upgrade_net_proto_binary`` for a binary
``.caffemodel``).
"""
from __future__ import annotations

import os
import warnings

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from .atomic import write_bytes, write_text
from .errors import DataError, EngineWarning, NetDefinitionError, PrototxtError
from .proto import caffe_pb2

V1 = caffe_pb2.V1LayerParameter

#: V1 enum type -> today's type string (Caffe's UpgradeV1LayerType).
V1_TYPE_NAMES = {
    V1.NONE: "", V1.ABSVAL: "AbsVal", V1.ACCURACY: "Accuracy", V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL", V1.CONCAT: "Concat", V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution", V1.DECONVOLUTION: "Deconvolution", V1.DATA: "Data",
    V1.DROPOUT: "Dropout", V1.DUMMY_DATA: "DummyData", V1.EUCLIDEAN_LOSS: "EuclideanLoss",
    V1.ELTWISE: "Eltwise", V1.EXP: "Exp", V1.FLATTEN: "Flatten", V1.HDF5_DATA: "HDF5Data",
    V1.HDF5_OUTPUT: "HDF5Output", V1.HINGE_LOSS: "HingeLoss", V1.IM2COL: "Im2col",
    V1.IMAGE_DATA: "ImageData", V1.INFOGAIN_LOSS: "InfogainLoss", V1.INNER_PRODUCT: "InnerProduct",
    V1.LRN: "LRN", V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", V1.MVN: "MVN",
    V1.POOLING: "Pooling", V1.POWER: "Power", V1.RELU: "ReLU", V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax", V1.SOFTMAX_LOSS: "SoftmaxWithLoss", V1.SPLIT: "Split",
    V1.SLICE: "Slice", V1.TANH: "TanH", V1.WINDOW_DATA: "WindowData", V1.THRESHOLD: "Threshold",
}

#: V0 type string -> V1 enum (Caffe's UpgradeV0LayerType).
V0_TYPES = {
    "accuracy": V1.ACCURACY, "bnll": V1.BNLL, "concat": V1.CONCAT, "conv": V1.CONVOLUTION,
    "data": V1.DATA, "dropout": V1.DROPOUT, "euclidean_loss": V1.EUCLIDEAN_LOSS,
    "flatten": V1.FLATTEN, "hdf5_data": V1.HDF5_DATA, "hdf5_output": V1.HDF5_OUTPUT,
    "im2col": V1.IM2COL, "images": V1.IMAGE_DATA, "infogain_loss": V1.INFOGAIN_LOSS,
    "innerproduct": V1.INNER_PRODUCT, "lrn": V1.LRN,
    "multinomial_logistic_loss": V1.MULTINOMIAL_LOGISTIC_LOSS, "pool": V1.POOLING,
    "relu": V1.RELU, "sigmoid": V1.SIGMOID, "softmax": V1.SOFTMAX, "softmax_loss": V1.SOFTMAX_LOSS,
    "split": V1.SPLIT, "tanh": V1.TANH, "window_data": V1.WINDOW_DATA,
}

#: The V1 fields copied unchanged into the V2 layer (the same message types).
V1_COPIED_PARAMS = (
    "accuracy_param", "argmax_param", "concat_param", "contrastive_loss_param", "convolution_param",
    "data_param", "dropout_param", "dummy_data_param", "eltwise_param", "exp_param",
    "hdf5_data_param", "hdf5_output_param", "hinge_loss_param", "image_data_param",
    "infogain_loss_param", "inner_product_param", "lrn_param", "memory_data_param", "mvn_param",
    "pooling_param", "power_param", "relu_param", "sigmoid_param", "softmax_param", "slice_param",
    "tanh_param", "threshold_param", "window_data_param", "transform_param", "loss_param",
)

#: Solver enum -> type string (Caffe's UpgradeSolverType).
SOLVER_TYPE_NAMES = {
    caffe_pb2.SolverParameter.SGD: "SGD", caffe_pb2.SolverParameter.NESTEROV: "Nesterov",
    caffe_pb2.SolverParameter.ADAGRAD: "AdaGrad", caffe_pb2.SolverParameter.RMSPROP: "RMSProp",
    caffe_pb2.SolverParameter.ADADELTA: "AdaDelta", caffe_pb2.SolverParameter.ADAM: "Adam",
}


def _warn(text: str) -> None:
    warnings.warn(text, EngineWarning, stacklevel=4)


def _notice(what: str, source: str) -> None:
    _warn(f"Upgraded input file specified using deprecated {what}: {source}")


# ---------------------------------------------------------------------------
# nets
# ---------------------------------------------------------------------------
def net_needs_v0_upgrade(param: caffe_pb2.NetParameter) -> bool:
    return any(old.HasField("layer") for old in param.layers)


def net_needs_v1_upgrade(param: caffe_pb2.NetParameter) -> bool:
    return len(param.layers) > 0


_TRANSFORMED = {V1.DATA: "data_param", V1.IMAGE_DATA: "image_data_param",
                V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = (("scale", "scale"), ("mean_file", "mean_file"), ("crop_size", "crop_size"),
                     ("mirror", "mirror"))


def net_needs_data_upgrade(param: caffe_pb2.NetParameter) -> bool:
    for old in param.layers:
        field = _TRANSFORMED.get(old.type)
        if field and any(getattr(old, field).HasField(name) for name, _ in _TRANSFORM_FIELDS):
            return True
    return False


def net_needs_input_upgrade(param: caffe_pb2.NetParameter) -> bool:
    return len(param.input) > 0


def net_needs_batch_norm_upgrade(param: caffe_pb2.NetParameter) -> bool:
    return any(layer.type == "BatchNorm" and len(layer.param) == 3 for layer in param.layer)


def net_needs_upgrade(param: caffe_pb2.NetParameter) -> bool:
    return (net_needs_v0_upgrade(param) or net_needs_v1_upgrade(param) or net_needs_data_upgrade(param)
            or net_needs_input_upgrade(param) or net_needs_batch_norm_upgrade(param))


def upgrade_net(param: caffe_pb2.NetParameter, source: str = "<net>") -> bool:
    """Upgrade ``param`` in place as Caffe's UpgradeNetAsNeeded; True if anything changed.
    ``source`` names the file in the notices and errors."""
    changed = False
    if net_needs_v0_upgrade(param):
        _upgrade_v0_net(param, source)
        _notice("V0LayerParameter", source)
        changed = True
    if net_needs_data_upgrade(param):
        _upgrade_data_transformation(param)
        _notice("transformation parameters", source)
        changed = True
    if net_needs_v1_upgrade(param):
        _upgrade_v1_net(param, source)
        _notice("V1LayerParameter", source)
        changed = True
    if net_needs_input_upgrade(param):
        _upgrade_input(param)
        _notice("input fields", source)
        changed = True
    if net_needs_batch_norm_upgrade(param):
        for layer in param.layer:
            if layer.type == "BatchNorm" and len(layer.param) == 3:
                del layer.param[:]
        _notice("BatchNorm params", source)
        changed = True
    return changed


# -- V0 -> V1 ---------------------------------------------------------------
def _fold_padding_layers(param: caffe_pb2.NetParameter, source: str) -> list:
    """Caffe's UpgradeV0PaddingLayers: the V1 connections without the padding
    layers, each conv / pool that read one taking its ``pad`` and its input."""
    producer: dict[str, int] = {name: -1 for name in param.input}
    kept: list = []
    for i, connection in enumerate(param.layers):
        v0 = connection.layer
        if v0.type != "padding":
            copy = caffe_pb2.V1LayerParameter()
            copy.CopyFrom(connection)
            kept.append(copy)
        for j, blob in enumerate(connection.bottom):
            if blob not in producer:
                raise NetDefinitionError(f"{source}: layer '{v0.name}' reads blob '{blob}', which no "
                                         f"earlier layer produces")
            index = producer[blob]
            if index == -1 or param.layers[index].layer.type != "padding":
                continue
            padding = param.layers[index]
            if v0.type not in ("conv", "pool") or len(connection.bottom) != 1 \
                    or len(padding.bottom) != 1 or len(padding.top) != 1:
                raise NetDefinitionError(
                    f"{source}: padding layer '{padding.layer.name}' feeds layer '{v0.name}' "
                    f"({v0.type}); Caffe folds padding only into a one-input conv or pool layer")
            kept[-1].layer.pad = padding.layer.pad
            kept[-1].bottom[j] = padding.bottom[0]
        for blob in connection.top:
            producer[blob] = i
    return kept


# V0 field -> {V0 type: (V1 param message, field)}; None = the transform_param for any type
_V0_FIELDS: dict[str, dict[str, tuple[str, str]] | None] = {
    "num_output": {"conv": ("convolution_param", "num_output"),
                   "innerproduct": ("inner_product_param", "num_output")},
    "biasterm": {"conv": ("convolution_param", "bias_term"),
                 "innerproduct": ("inner_product_param", "bias_term")},
    "weight_filler": {"conv": ("convolution_param", "weight_filler"),
                      "innerproduct": ("inner_product_param", "weight_filler")},
    "bias_filler": {"conv": ("convolution_param", "bias_filler"),
                    "innerproduct": ("inner_product_param", "bias_filler")},
    "pad": {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")},
    "kernelsize": {"conv": ("convolution_param", "kernel_size"), "pool": ("pooling_param", "kernel_size")},
    "group": {"conv": ("convolution_param", "group")},
    "stride": {"conv": ("convolution_param", "stride"), "pool": ("pooling_param", "stride")},
    "pool": {"pool": ("pooling_param", "pool")},
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    "local_size": {"lrn": ("lrn_param", "local_size")},
    "alpha": {"lrn": ("lrn_param", "alpha")},
    "beta": {"lrn": ("lrn_param", "beta")},
    "k": {"lrn": ("lrn_param", "k")},
    "source": {"data": ("data_param", "source"), "hdf5_data": ("hdf5_data_param", "source"),
               "images": ("image_data_param", "source"), "window_data": ("window_data_param", "source"),
               "infogain_loss": ("infogain_loss_param", "source")},
    "batchsize": {"data": ("data_param", "batch_size"), "hdf5_data": ("hdf5_data_param", "batch_size"),
                  "images": ("image_data_param", "batch_size"),
                  "window_data": ("window_data_param", "batch_size")},
    "rand_skip": {"data": ("data_param", "rand_skip"), "images": ("image_data_param", "rand_skip")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode")},
    "hdf5_output_param": {"hdf5_output": ("hdf5_output_param", "")},
    "scale": None, "meanfile": None, "cropsize": None, "mirror": None,
}
_V0_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size", "mirror": "mirror"}


def _set_field(message, name: str, value) -> None:
    """message.name = value, for a scalar, a repeated scalar or a message field."""
    target = getattr(message, name)
    if hasattr(target, "CopyFrom"):
        target.CopyFrom(value)
    elif hasattr(target, "append"):
        target.append(value)
    else:
        setattr(message, name, value)


def _upgrade_v0_layer(connection, source: str) -> caffe_pb2.V1LayerParameter:
    """Caffe's UpgradeV0LayerParameter (problems are logged, as Caffe does, and skipped)."""
    result = caffe_pb2.V1LayerParameter()
    result.bottom.extend(connection.bottom)
    result.top.extend(connection.top)
    v0 = connection.layer
    if v0.HasField("name"):
        result.name = v0.name
    kind = v0.type
    if v0.HasField("type"):
        if kind not in V0_TYPES:
            raise NetDefinitionError(f"{source}: layer '{v0.name}' has the unknown V0 layer type '{kind}'")
        result.type = V0_TYPES[kind]
    for blob in v0.blobs:
        result.blobs.add().CopyFrom(blob)
    result.blobs_lr.extend(v0.blobs_lr)
    result.weight_decay.extend(v0.weight_decay)
    for field, targets in _V0_FIELDS.items():
        if not v0.HasField(field):
            continue
        value = getattr(v0, field)
        if targets is None:
            setattr(result.transform_param, _V0_TRANSFORM[field], value)
            continue
        if kind not in targets:
            _warn(f"{source}: layer '{v0.name}': unknown parameter {field} for layer type {kind} "
                  f"(ignored, as Caffe does)")
            continue
        message_name, name = targets[kind]
        if field == "pool":
            value = caffe_pb2.PoolingParameter.PoolMethod.Value(caffe_pb2.V0LayerParameter.PoolMethod.Name(value))
        if not name:
            getattr(result, message_name).CopyFrom(value)
        else:
            _set_field(getattr(result, message_name), name, value)
    return result


def _upgrade_v0_net(param: caffe_pb2.NetParameter, source: str) -> None:
    """Caffe's UpgradeV0Net: keeps the name, inputs and force_backward."""
    layers = [_upgrade_v0_layer(c, source) for c in _fold_padding_layers(param, source)]
    name, inputs, dims = param.name if param.HasField("name") else None, list(param.input), list(param.input_dim)
    force_backward = param.force_backward if param.HasField("force_backward") else None
    param.Clear()
    if name is not None:
        param.name = name
    for layer in layers:
        param.layers.add().CopyFrom(layer)
    param.input.extend(inputs)
    param.input_dim.extend(dims)
    if force_backward is not None:
        param.force_backward = force_backward


# -- data transformation ----------------------------------------------------
def _upgrade_data_transformation(param: caffe_pb2.NetParameter) -> None:
    for old in param.layers:
        field = _TRANSFORMED.get(old.type)
        if not field:
            continue
        holder = getattr(old, field)
        for name, target in _TRANSFORM_FIELDS:
            if holder.HasField(name):
                setattr(old.transform_param, target, getattr(holder, name))
                holder.ClearField(name)


# -- V1 -> V2 ---------------------------------------------------------------
def _upgrade_v1_layer(old, index: int, source: str) -> caffe_pb2.LayerParameter:
    """Caffe's UpgradeV1LayerParameter."""
    layer = caffe_pb2.LayerParameter()
    layer.bottom.extend(old.bottom)
    layer.top.extend(old.top)
    if old.HasField("name"):
        layer.name = old.name
    for rule in old.include:
        layer.include.add().CopyFrom(rule)
    for rule in old.exclude:
        layer.exclude.add().CopyFrom(rule)
    if old.HasField("type"):
        layer.type = V1_TYPE_NAMES[old.type]
    for blob in old.blobs:
        layer.blobs.add().CopyFrom(blob)

    def spec(i: int):
        while len(layer.param) <= i:
            layer.param.add()
        return layer.param[i]

    for i, name in enumerate(old.param):
        spec(i).name = name
    for i, mode in enumerate(old.blob_share_mode):
        spec(i).share_mode = mode  # STRICT / PERMISSIVE have the same numbers in ParamSpec
    for i, lr in enumerate(old.blobs_lr):
        spec(i).lr_mult = lr
    for i, decay in enumerate(old.weight_decay):
        spec(i).decay_mult = decay
    layer.loss_weight.extend(old.loss_weight)
    for name in V1_COPIED_PARAMS:
        if old.HasField(name):
            getattr(layer, name).CopyFrom(getattr(old, name))
    if old.HasField("layer"):
        _warn(f"{source}: V1 layer {index} ('{old.name}') still holds a V0 layer: ignored, as Caffe does")
    return layer


def _upgrade_v1_net(param: caffe_pb2.NetParameter, source: str) -> None:
    if len(param.layer):
        raise NetDefinitionError(
            f"{source}: refusing to upgrade a net that has both 'layer' and 'layers' fields. Today's "
            f"format is layer {{ type: \"Layer\" ... }}, not layers {{ type: LAYER ... }}: switch the "
            f"definition to 'layer' by hand")
    upgraded = [_upgrade_v1_layer(old, i, source) for i, old in enumerate(param.layers)]
    del param.layers[:]
    for layer in upgraded:
        param.layer.add().CopyFrom(layer)


# -- input fields -----------------------------------------------------------
def _upgrade_input(param: caffe_pb2.NetParameter) -> None:
    """Caffe's UpgradeNetInput: an Input layer first; inputs without shapes (old
    caffemodels) are simply dropped."""
    if len(param.input_shape) or len(param.input_dim):
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for k, name in enumerate(param.input):
            layer.top.append(name)
            shape = layer.input_param.shape.add()
            if len(param.input_shape):
                if k >= len(param.input_shape):
                    raise NetDefinitionError(f"net input '{name}' has no input_shape "
                                             f"({len(param.input_shape)} given for {len(param.input)} inputs)")
                shape.CopyFrom(param.input_shape[k])
            else:
                dims = list(param.input_dim[4 * k:4 * k + 4])
                if len(dims) != 4:
                    raise NetDefinitionError(f"net input '{name}' needs four input_dim values (num, "
                                             f"channels, height, width); the file gives "
                                             f"{len(param.input_dim)} for {len(param.input)} inputs")
                shape.dim.extend(dims)
        rest = list(param.layer)
        del param.layer[:]
        param.layer.add().CopyFrom(layer)
        for item in rest:
            param.layer.add().CopyFrom(item)
    del param.input[:], param.input_shape[:], param.input_dim[:]


# ---------------------------------------------------------------------------
# solvers
# ---------------------------------------------------------------------------
def solver_needs_upgrade(param: caffe_pb2.SolverParameter) -> bool:
    return param.HasField("solver_type")


def upgrade_solver(param: caffe_pb2.SolverParameter, source: str = "<solver>") -> bool:
    """Caffe's UpgradeSolverAsNeeded (``solver_type`` enum -> ``type`` string),
    and the nets written inline in the solver; True if anything changed."""
    changed = False
    if solver_needs_upgrade(param):
        if param.HasField("type"):
            raise NetDefinitionError(
                f"{source}: the old solver_type field (enum) and the new type field (string) cannot "
                f"both be given")
        param.type = SOLVER_TYPE_NAMES[param.solver_type]
        param.ClearField("solver_type")
        _notice("'solver_type' field (enum)", source)
        changed = True
    inline = []
    if param.HasField("net_param"):
        inline.append(param.net_param)
    if param.HasField("train_net_param"):
        inline.append(param.train_net_param)
    inline.extend(param.test_net_param)
    for net in inline:
        changed = upgrade_net(net, source) or changed
    return changed


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
BINARY_SUFFIXES = (".caffemodel", ".binaryproto", ".pb")


def _parse_text(text: str, message, where: str):
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        return str(exc)
    return None


def upgrade_text(text: str, where: str = "<text>") -> tuple[str, str, bool]:
    """(kind, upgraded text, whether anything changed) of a net or solver prototxt;
    kind is "net" or "solver"."""
    net, solver = caffe_pb2.NetParameter(), caffe_pb2.SolverParameter()
    net_error = _parse_text(text, net, where)
    solver_error = _parse_text(text, solver, where)
    if net_error is not None and solver_error is not None:
        raise PrototxtError(f"{where}: neither a net nor a solver prototxt (as a net: {net_error})")
    # A text both parse as holds only fields the two share (debug_info): a net unless it names a solver field.
    is_net = solver_error is not None or (net_error is None and not solver.ListFields())
    if is_net:
        changed = upgrade_net(net, where)
        return "net", text_format.MessageToString(net), changed
    changed = upgrade_solver(solver, where)
    return "solver", text_format.MessageToString(solver), changed


def upgrade_file(source: str, target: str) -> tuple[str, bool]:
    """Write the upgraded form of the net or solver ``source`` to ``target``
    (atomically; written even when already up to date, as Caffe's tools do). A
    binary ``.caffemodel`` is upgraded as a binary NetParameter. Returns the kind
    ("net", "solver" or "binary net") and whether anything was upgraded."""
    source, target = os.fspath(source), os.fspath(target)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DataError(f"cannot read '{source}': {exc.strerror}") from None
    if source.endswith(BINARY_SUFFIXES):
        net = caffe_pb2.NetParameter()
        try:
            net.ParseFromString(raw)
        except DecodeError as exc:
            raise DataError(f"'{source}' is not a binary Caffe NetParameter: {exc}") from None
        changed = upgrade_net(net, source)
        write_bytes(target, net.SerializeToString())
        return "binary net", changed
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"'{source}' is not a text prototxt (for a binary net, name it .caffemodel)") from None
    kind, upgraded, changed = upgrade_text(text, source)
    write_text(target, upgraded)
    return kind, changed
