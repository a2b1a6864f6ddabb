"""pycaffe's Blob and Layer objects: thin views of the engine's own blobs and layers.

On the CPU a blob's ``data`` and ``diff`` are the engine's numpy arrays. On the
GPU, pycaffe code still gets numpy arrays: host mirrors of the device arrays
(Caffe's SyncedMemory). Every pycaffe call that runs the engine first writes the
mirrors handed out so far to the device and afterwards refreshes them in place,
so a held array sees every update and writes into it reach the net.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator

import numpy

from .. import backend
from ..blob import Blob as EngineBlob
from ..errors import ShapeError
from ..layer import Layer as EngineLayer


class HostMirrors:
    """Numpy mirrors of device blob arrays, by engine blob and field ('data' / 'diff')."""

    def __init__(self) -> None:
        self._arrays: "weakref.WeakKeyDictionary[EngineBlob, dict[str, numpy.ndarray]]" = \
            weakref.WeakKeyDictionary()

    def __bool__(self) -> bool:
        return len(self._arrays) > 0

    def view(self, blob: EngineBlob, field: str) -> numpy.ndarray:
        """The host mirror of ``blob.<field>`` (made, and filled from the device, on first use)."""
        fields = self._arrays.setdefault(blob, {})
        host = fields.get(field)
        device = getattr(blob, field)
        if host is None or host.shape != device.shape or host.dtype != device.dtype:
            host = fields[field] = numpy.array(backend.to_numpy(device), copy=True)
        return host

    def upload(self) -> None:
        """Write every mirror to its device array (the user may have written into any)."""
        for blob, fields in list(self._arrays.items()):
            for field, host in list(fields.items()):
                device = getattr(blob, field)
                if backend.get_array_module(device) is numpy or device.shape != host.shape:
                    del fields[field]  # back on the CPU, or reshaped: the mirror is obsolete
                    continue
                device[...] = backend.get_array_module(device).asarray(host)
                if field == "diff":
                    blob.diff_is_clear = False

    def download(self) -> None:
        """Refresh every mirror in place from its device array."""
        for blob, fields in list(self._arrays.items()):
            for field, host in list(fields.items()):
                device = getattr(blob, field)
                if backend.get_array_module(device) is numpy or device.shape != host.shape:
                    del fields[field]
                    continue
                numpy.copyto(host, backend.to_numpy(device))


MIRRORS = HostMirrors()
_depth = [0]  # nested engine operations sync once, at the outermost


@contextlib.contextmanager
def device_synced() -> Iterator[None]:
    """Around an engine operation: mirrors to the device before, back after (GPU only)."""
    if _depth[0] or not MIRRORS:
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    MIRRORS.upload()
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        MIRRORS.download()


class ModeFollowers:
    """The nets and solvers pycaffe made: Caffe's mode is global, so set_mode_gpu /
    set_mode_cpu move them (Python-layer nets stay on the CPU)."""

    def __init__(self) -> None:
        self._members: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def add(self, member: Any) -> None:
        self._members.add(member)

    def move_all(self, device: str) -> None:
        with device_synced():
            for member in list(self._members):
                member._move_to(device)


FOLLOWERS = ModeFollowers()


def _host_array(blob: EngineBlob, field: str) -> Any:
    array = getattr(blob, field)
    if type(array) is numpy.ndarray:
        return array
    return MIRRORS.view(blob, field)


class Blob:
    """A net blob as pycaffe shows it: ``data`` and ``diff`` are the engine's own
    arrays (writes through, every update visible), plus Caffe's shape accessors."""

    __slots__ = ("_blob",)

    def __init__(self, blob: EngineBlob):
        self._blob = blob

    # -- arrays ----------------------------------------------------------
    @property
    def data(self) -> Any:
        """The blob's values: the engine's numpy array (its host mirror on the GPU)."""
        return _host_array(self._blob, "data")

    @data.setter
    def data(self, value) -> None:
        self.data[...] = value

    @property
    def diff(self) -> Any:
        """The blob's gradient array; the engine then no longer assumes it is zero
        (the caller may write into it, and Caffe's backward adds to what is there)."""
        array = _host_array(self._blob, "diff")
        self._blob.diff_is_clear = False
        return array

    @diff.setter
    def diff(self, value) -> None:
        self.diff[...] = value

    # -- shape -----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self._blob.shape

    @property
    def count(self) -> int:
        return self._blob.count()

    def _legacy_axis(self, index: int) -> int:
        """Caffe's LegacyShape: 1 for an axis the blob does not have (at most 4 axes)."""
        shape = self._blob.shape
        if len(shape) > 4:
            raise ShapeError(f"blob of shape {shape} has more than 4 axes: use .shape instead of "
                             f"num/channels/height/width")
        return shape[index] if index < len(shape) else 1

    @property
    def num(self) -> int:
        return self._legacy_axis(0)

    @property
    def channels(self) -> int:
        return self._legacy_axis(1)

    @property
    def height(self) -> int:
        return self._legacy_axis(2)

    @property
    def width(self) -> int:
        return self._legacy_axis(3)

    def reshape(self, *shape: int) -> None:
        """Give the blob a new shape (call ``net.reshape()`` afterwards to propagate it)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        with device_synced():
            self._blob.reshape(tuple(int(s) for s in shape))

    def __repr__(self) -> str:
        return f"<caffe Blob shape={self.shape}>"


class BlobCache:
    """One pycaffe Blob per engine blob, so that the same blob is the same object."""

    def __init__(self) -> None:
        self._views: dict[int, Blob] = {}

    def view(self, blob: EngineBlob) -> Blob:
        found = self._views.get(id(blob))
        if found is None or found._blob is not blob:
            found = self._views[id(blob)] = Blob(blob)
        return found


class BlobVec(list):
    """A layer's parameter blobs (pycaffe's BlobVec); ``add_blob(*shape)`` gives the
    layer a new one (what a Python layer's setup does to own parameters)."""

    def __init__(self, layer: EngineLayer, cache: BlobCache):
        super().__init__(cache.view(b) for b in layer.blobs)
        self._layer, self._cache = layer, cache

    def add_blob(self, *shape: int) -> None:
        blob = self._layer.new_param_blob(tuple(int(s) for s in shape))
        self._layer.blobs.append(blob)
        self.append(self._cache.view(blob))


class Layer:
    """``caffe.Layer``: a net layer as pycaffe shows it (``type``, ``blobs``, ``setup``,
    ``reshape``), and the base class of Python layers (``setup``, ``reshape``,
    ``forward``, ``backward`` written in Python; ``param_str``, ``phase``, ``blobs``)."""

    _layer: Any = None
    param_str: str = ""  # a Python layer's python_param.param_str
    phase: int = 0  # the phase of the net a Python layer is in

    def __init__(self, layer: Any = None, cache: BlobCache | None = None):
        if isinstance(layer, EngineLayer):  # else a Python layer made from its LayerParameter
            self._attach_engine_layer(layer, cache or BlobCache())

    def _attach_engine_layer(self, layer: EngineLayer, cache: BlobCache) -> None:
        self._layer = layer
        self._cache = cache

    @property
    def type(self) -> str:
        return self._layer.type_name if self._layer is not None else "Python"

    @property
    def name(self) -> str:
        return self._layer.name if self._layer is not None else ""

    @property
    def blobs(self) -> BlobVec:
        """The layer's parameter blobs (weights, bias, ...), the net's own."""
        if self._layer is None:
            raise AttributeError("this Python layer is not part of a net yet: it has no blobs")
        return BlobVec(self._layer, self._cache)

    def setup(self, bottom: list[Blob], top: list[Blob]) -> None:
        with device_synced():
            self._layer.setup([b._blob for b in bottom], [t._blob for t in top])

    def reshape(self, bottom: list[Blob], top: list[Blob]) -> None:
        with device_synced():
            self._layer.reshape([b._blob for b in bottom], [t._blob for t in top])

    def __repr__(self) -> str:
        return f"<caffe Layer '{self.name}' type={self.type}>"
