"""Layer base class and the registry of layer types by their Caffe type name."""
from __future__ import annotations

from typing import Callable

from .blob import Blob
from .errors import NetDefinitionError

_REGISTRY: dict[str, type["Layer"]] = {}


def register(type_name: str) -> Callable[[type["Layer"]], type["Layer"]]:
    """Class decorator: make a Layer available under its Caffe ``type`` name."""
    def decorate(cls: type["Layer"]) -> type["Layer"]:
        cls.type_name = type_name
        if type_name in IN_PLACE_REFUSED and "in_place_allowed" not in vars(cls):  # a layer's own rule stays
            cls.in_place_allowed = False
        _REGISTRY[type_name] = cls
        return cls
    return decorate


#: Caffe's in-place rule, the types it refuses itself (CHECK_NE(top[0], bottom[0])
#: in their setup), and why. Beyond these a layer states its own rule
#: (``in_place_allowed``, e.g. where its backward reads the bottom the top would
#: overwrite), and Layer.setup refuses any layer that would change the shape of a
#: blob it computes in place (an InnerProduct, Convolution, Pooling, Concat ...).
IN_PLACE_REFUSED: dict[str, str] = {
    "AbsVal": "Caffe refuses it: its backward reads the bottom it would overwrite",
    "Flatten": "Caffe refuses it: the top is a reshaped view of the bottom",
    "Reshape": "Caffe refuses it: the top is a reshaped view of the bottom",
    "Split": "Caffe refuses it: the tops share the bottom's data",
}


def supported_types() -> list[str]:
    return sorted(_REGISTRY)


def create_layer(param, phase: int, *, python_layers=None, net: str | None = None) -> "Layer":
    """Build the layer a LayerParameter describes. The one place where layer types
    are refused: called only for the layers of the net being built (after the
    NetState filtering), so an unsupported layer excluded from it costs nothing.
    ``python_layers`` (a Python layer only): where its module may be imported from
    (engine.python_layers; None: the folders engine.allow_python_layers allowed);
    ``net``: the net's file or name, for the refusal."""
    cls = _REGISTRY.get(param.type)
    if cls is None:
        raise NetDefinitionError(refusal_message(param))
    if param.type == "Python":
        return cls(param, phase, python_layers=python_layers, net=net)  # type: ignore[call-arg]
    return cls(param, phase)


#: Caffe's own layer types (BVLC's registry), to tell "not supported here" from "not Caffe".
CAFFE_LAYER_TYPES = frozenset("""
    AbsVal Accuracy ArgMax BNLL BatchNorm BatchReindex Bias Clip Concat ContrastiveLoss
    Convolution Crop Data Deconvolution Dropout DummyData ELU Eltwise Embed EuclideanLoss
    Exp Filter Flatten HDF5Data HDF5Output HingeLoss Im2col ImageData InfogainLoss
    InnerProduct Input LRN LSTM LSTMUnit Log MVN MemoryData MultinomialLogisticLoss PReLU
    Parameter Pooling Power Python RNN ReLU Reduction Reshape SPP Scale Sigmoid
    SigmoidCrossEntropyLoss Silence Slice Softmax SoftmaxWithLoss Split Swish TanH
    Threshold Tile WindowData""".split())


def refusal_message(param) -> str:
    """Why the layer ``param`` cannot be built: its name, its type, and what is supported."""
    supported = f"Supported types: {', '.join(supported_types())}"
    if param.type == "Python":  # registered by engine.layers.python: its import is refused there
        from .python_layers import PythonLayerAccess, refusal
        return str(refusal(param, PythonLayerAccess(), None))
    hint = UNSUPPORTED_HINTS.get(param.type, "")
    if param.type not in CAFFE_LAYER_TYPES:
        return (f"layer '{param.name}': unknown layer type '{param.type}' (not a Caffe layer type; "
                f"not supported by Backprop Studio){hint}. {supported}")
    return f"layer '{param.name}' of type '{param.type}' is not supported by Backprop Studio{hint}. {supported}"


UNSUPPORTED_HINTS: dict[str, str] = {}


class Layer:
    """One computation of the net: setup/reshape, forward, backward.

    ``blobs`` holds the learnable parameters (W, b, ...). Layers read their
    array module from the blobs they are given (``blob.xp``), so one body runs
    on numpy and cupy.
    """

    type_name = "Layer"
    #: exact number of bottoms/tops, or None for any
    num_bottoms: int | None = None
    num_tops: int | None = None
    min_tops = 1
    #: True for layers whose top[0] is a loss (loss_weight defaults to 1)
    is_loss = False
    #: False for layers whose top may not be one of their bottoms (checked at setup)
    in_place_allowed = True
    #: True for layers whose forward sizes their tops from the data (Filter): the net then
    #: reshapes the layers after them when a top's shape changed (Caffe reshapes every
    #: layer at every forward; the engine only when something changed)
    reshapes_in_forward = False
    #: False for bottoms that never take a gradient (labels)
    def allow_force_backward(self, bottom_index: int) -> bool:
        return True

    def __init__(self, param, phase: int):
        self.param = param
        self.name = param.name
        self.phase = phase
        self.blobs: list[Blob] = []
        self.param_propagate_down: list[bool] = []
        self.dtype = None
        self.device = "cpu"

    # -- the contract ----------------------------------------------------
    def layer_setup(self, bottom: list[Blob], top: list[Blob]) -> None:
        """One-time setup from the parameters (create and fill ``blobs``)."""

    def reshape(self, bottom: list[Blob], top: list[Blob]) -> None:
        """Size the tops (and internal buffers) for the bottoms' shapes."""
        raise NotImplementedError

    def forward(self, bottom: list[Blob], top: list[Blob]) -> None:
        raise NotImplementedError

    def backward(self, top: list[Blob], propagate_down: list[bool], bottom: list[Blob]) -> None:
        """Compute bottom diffs (where ``propagate_down``) and accumulate param diffs."""

    # -- helpers used by the net ------------------------------------------
    def setup(self, bottom: list[Blob], top: list[Blob]) -> None:
        self.check_blob_counts(bottom, top)
        in_place = [(t, t.shape) for t in top if any(t is b for b in bottom)]
        self.layer_setup(bottom, top)
        if len(self.param_propagate_down) != len(self.blobs):
            self.param_propagate_down = [True] * len(self.blobs)
        self.reshape(bottom, top)
        for blob, shape in in_place:  # the in-place rule, part two: the top keeps the bottom's shape
            if blob.shape != shape:
                raise NetDefinitionError(
                    f"layer '{self.name}' ({self.type_name}): cannot be computed in place: it turns blob "
                    f"'{blob.name}' of shape {shape} into {blob.shape} (give the top another name)")

    def check_blob_counts(self, bottom: list[Blob], top: list[Blob]) -> None:
        if self.num_bottoms is not None and len(bottom) != self.num_bottoms:
            raise NetDefinitionError(
                f"layer '{self.name}' ({self.type_name}) takes {self.num_bottoms} bottom blob(s), "
                f"got {len(bottom)}")
        if self.num_tops is not None and len(top) != self.num_tops:
            raise NetDefinitionError(
                f"layer '{self.name}' ({self.type_name}) produces {self.num_tops} top blob(s), "
                f"got {len(top)}")
        if len(top) < self.min_tops:
            raise NetDefinitionError(
                f"layer '{self.name}' ({self.type_name}) needs at least {self.min_tops} top blob(s)")
        if not self.in_place_allowed and any(t is b for t in top for b in bottom):
            reason = IN_PLACE_REFUSED.get(self.type_name, "its backward needs the bottom it would overwrite")
            raise NetDefinitionError(f"layer '{self.name}' ({self.type_name}): cannot be computed in place "
                                     f"({reason}; give the top another name)")

    def bottom_name(self, index: int) -> str:
        """The prototxt name of bottom ``index`` (for error messages)."""
        names = self.param.bottom
        return f"'{names[index]}'" if index < len(names) else f"bottom {index}"

    def new_param_blob(self, shape) -> Blob:
        return Blob(shape, dtype=self.dtype, device=self.device)
