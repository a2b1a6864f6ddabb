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
        _REGISTRY[type_name] = cls
        return cls
    return decorate


def supported_types() -> list[str]:
    return sorted(_REGISTRY)


def create_layer(param, phase: int) -> "Layer":
    """Build the layer a LayerParameter describes, or say which types exist."""
    cls = _REGISTRY.get(param.type)
    if cls is None:
        hint = UNSUPPORTED_HINTS.get(param.type, "")
        raise NetDefinitionError(
            f"layer '{param.name}': unknown layer type '{param.type}'{hint}. "
            f"Supported types: {', '.join(supported_types())}")
    return cls(param, phase)


UNSUPPORTED_HINTS = {
    "Data": " (LMDB/LevelDB databases are not supported: convert the data to HDF5 "
            "with engine.tools.to_hdf5(arrays, labels, path) and use an HDF5Data layer)",
    "ImageData": " (image folders are not supported: convert them to HDF5 "
                 "with engine.tools.to_hdf5 and use an HDF5Data layer)",
}


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
        self.layer_setup(bottom, top)
        if len(self.param_propagate_down) != len(self.blobs):
            self.param_propagate_down = [True] * len(self.blobs)
        self.reshape(bottom, top)

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
            raise NetDefinitionError(f"layer '{self.name}' ({self.type_name}): cannot be computed in place")

    def bottom_name(self, index: int) -> str:
        """The prototxt name of bottom ``index`` (for error messages)."""
        names = self.param.bottom
        return f"'{names[index]}'" if index < len(names) else f"bottom {index}"

    def new_param_blob(self, shape) -> Blob:
        return Blob(shape, dtype=self.dtype, device=self.device)
