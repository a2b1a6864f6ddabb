"""Blob: Caffe's N-d array pair, ``data`` (values) and ``diff`` (gradients)."""
from __future__ import annotations

from typing import Sequence

import numpy

from . import backend


class Blob:
    """Two arrays of one shape: ``data`` and ``diff``, float32 by default.

    Like Caffe's Blob, two blobs can share their data (a Split layer's tops)
    while keeping separate diffs.
    """

    def __init__(self, shape: Sequence[int] = (), dtype=numpy.float32, device: str = "cpu"):
        self.dtype = numpy.dtype(dtype)
        self.device = backend.normalize_device(device)
        self._data = None
        self._diff = None
        self.diff_is_clear = True  # True while diff is known to be all zeros
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
        xp = backend.array_module_for(self.device)
        self._data = xp.zeros(shape, dtype=self.dtype)
        self._diff = xp.zeros(shape, dtype=self.dtype)
        self.diff_is_clear = True

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
        return self._diff

    @diff.setter
    def diff(self, value) -> None:
        self._diff[...] = value
        self.diff_is_clear = False

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

    def share_diff(self, other: "Blob") -> None:
        self._diff = other._diff

    def set_data_array(self, array) -> None:
        """Replace the data array itself (shape may change; diff follows)."""
        self._data = array
        if self._diff is None or self._diff.shape != array.shape:
            self._diff = backend.get_array_module(array).zeros_like(array)
            self.diff_is_clear = True

    def clear_diff(self) -> None:
        if not self.diff_is_clear:
            self._diff.fill(0)
            self.diff_is_clear = True

    def to(self, device: str) -> "Blob":
        """Move both arrays to ``device`` in place (values unchanged); returns self."""
        device = backend.normalize_device(device)
        if device != self.device:
            self._data = backend.to_device(self._data, device)
            self._diff = backend.to_device(self._diff, device)
            self.device = device
        return self

    def __repr__(self) -> str:
        return f"Blob(shape={self.shape}, dtype={self.dtype.name}, device={self.device})"
