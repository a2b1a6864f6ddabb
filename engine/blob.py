"""Blob: Caffe's N-d array pair, ``data`` (values) and ``diff`` (gradients)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy

from . import backend, validate


class Blob:
    """Two arrays of one shape: ``data`` and ``diff``, float32 by default.

    Like Caffe's Blob, two blobs can share their data (a Split layer's tops)
    while keeping separate diffs. As in Caffe (whose SyncedMemory allocates on
    first use), the diff array is allocated only when something first asks for
    it: a net that only runs forward holds no diffs. It reads as zeros then.
    """

    #: The blob's name in its net (set by the net; for error messages)
    name: str | None = None

    def __init__(self, shape: Sequence[int] = (), dtype=numpy.float32, device: str = "cpu"):
        self.dtype = numpy.dtype(dtype)
        self.device = backend.normalize_device(device)
        self._data: Any = None  # a numpy or cupy array
        self._diff: Any = None  # allocated on first use
        self.diff_is_clear = True  # True while diff is known to be all zeros
        self._diff_stale = False  # True after a lazy clear_diff, until the zeros are written
        self.reshape(*shape)

    # -- shape ---------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def num_axes(self) -> int:
        return self._data.ndim

    def count(self, start: int = 0, end: int | None = None) -> int:
        """Product of the axes in ``[start, end)``."""
        shape = self.shape
        end = len(shape) if end is None else end
        result = 1
        for dim in shape[start:end]:
            result *= dim
        return result

    def canonical_axis(self, axis: int) -> int:
        """Turn a possibly negative axis into its index, checking the range."""
        n = self.num_axes
        if not -n <= axis < max(n, 1):
            raise IndexError(f"axis {axis} out of range for a blob of shape {self.shape}")
        return axis + n if axis < 0 else axis

    def reshape(self, *shape) -> None:
        """Give the blob a new shape; contents are kept only if the shape is unchanged."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"negative dimension in blob shape {shape}")
        if self._data is not None and self.shape == shape:
            return
        nbytes = validate.shape_bytes(shape, self.dtype.itemsize) * 2  # data and diff
        if nbytes >= validate.CHECK_MEMORY_FROM:
            label = f"blob '{self.name}'" if self.name else "a blob"
            validate.require_memory(nbytes, f"{label} of shape {shape} (data and diff)", self.device)
        xp = backend.array_module_for(self.device)
        self._data = xp.zeros(shape, dtype=self.dtype)
        self._diff = None  # allocated (zeros) on first use
        self.diff_is_clear = True
        self._diff_stale = False

    def reshape_like(self, other: "Blob") -> None:
        self.reshape(other.shape)

    # -- arrays --------------------------------------------------------
    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value) -> None:
        self._data[...] = value

    @property
    def diff(self):
        diff = self._diff
        if diff is None:  # first use: allocated as zeros
            diff = self._diff = self._new_diff()
            self._diff_stale = False
        elif self._diff_stale:  # cleared lazily: the zeros are written on first read
            diff.fill(0)
            self._diff_stale = False
        return diff

    @diff.setter
    def diff(self, value) -> None:
        if self._diff is None:
            self._diff = self._new_diff(zeros=False)
        self._diff[...] = value
        self._diff_stale = False
        self.diff_is_clear = False

    def _new_diff(self, zeros: bool = True):
        data = self._data
        xp = numpy if type(data) is numpy.ndarray else backend.get_array_module(data)
        return (xp.zeros if zeros else xp.empty)(data.shape, dtype=data.dtype)

    @property
    def has_diff(self) -> bool:
        """Whether the diff array exists yet (it is allocated on first use)."""
        return self._diff is not None

    def diff_to_overwrite(self):
        """The diff array for a write that replaces every element (a GEMM or a
        reduction with ``out=``): a lazily cleared diff is not zero-filled first."""
        if self._diff is None:
            self._diff = self._new_diff(zeros=False)
        self._diff_stale = False
        return self._diff


    @property
    def xp(self):
        """numpy or cupy: the module of this blob's arrays."""
        data = self._data
        if type(data) is numpy.ndarray:  # the hot path: no module-name inspection
            return numpy
        return backend.get_array_module(data)

    def share_data(self, other: "Blob") -> None:
        """Use ``other``'s data array (same memory), keeping an own diff."""
        self._data = other._data

    def adopt_arrays(self, data, diff) -> None:
        """Use ``data`` and ``diff`` (this blob's shape, values already in them; e.g.
        views into a solver's contiguous parameter buffers) as the blob's arrays."""
        shape = self._data.shape
        if data.shape != shape or diff.shape != shape:
            raise ValueError(f"adopt_arrays: shapes {data.shape}/{diff.shape} differ from the blob's {shape}")
        self._data, self._diff = data, diff
        self._diff_stale = False

    def share_diff(self, other: "Blob") -> None:
        self._diff = other.diff
        self._diff_stale = False

    def set_data_array(self, array) -> None:
        """Replace the data array itself (shape may change; diff follows)."""
        self._data = array
        if self._diff is not None and self._diff.shape != array.shape:
            self._diff = None  # zeros of the new shape on first use
            self.diff_is_clear = True
            self._diff_stale = False

    def clear_diff(self) -> None:
        """Zero the diff (Caffe's ClearParamDiffs). Lazily: the zeros are written when
        the diff is next read, and never when a full overwrite comes first."""
        if not self.diff_is_clear:
            self._diff_stale = True
            self.diff_is_clear = True

    def to(self, device: str) -> "Blob":
        """Move both arrays to ``device`` in place (values unchanged); returns self."""
        device = backend.normalize_device(device)
        if device != self.device:
            self._data = backend.to_device(self._data, device)
            if self._diff is not None:
                self._diff = backend.to_device(self._diff, device)
            self.device = device
        return self

    def __repr__(self) -> str:
        return f"Blob(shape={self.shape}, dtype={self.dtype.name}, device={self.device})"
