"""Shared machinery of the data layers: a cursor over in-memory arrays."""
from __future__ import annotations

import numpy

from .. import backend, rng
from ..errors import DataError
from ..layer import Layer


class ArrayBatcher:
    """Hands out consecutive rows of aligned arrays, wrapping around at the end
    (Caffe's data layers); optionally reshuffled at every epoch. Only BuiltinData (a
    Backprop Studio extension, no Caffe counterpart) shuffles; MemoryData never does, as
    Caffe's MemoryDataLayer has no shuffle. So the shuffle draws from the engine's numpy
    stream (:func:`engine.rng.generator`), not from one of Caffe's."""

    def __init__(self, arrays: list[numpy.ndarray], batch_size: int, shuffle: bool = False):
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.rows = arrays[0].shape[0]
        self.cursor = 0
        self.order = numpy.arange(self.rows)
        if shuffle:
            rng.generator().shuffle(self.order)

    def next_indices(self) -> numpy.ndarray:
        picked = numpy.empty(self.batch_size, dtype=numpy.intp)
        for i in range(self.batch_size):
            if self.cursor == self.rows:
                self.cursor = 0
                if self.shuffle:
                    rng.generator().shuffle(self.order)
            picked[i] = self.order[self.cursor]
            self.cursor += 1
        return picked

    def state(self) -> dict:
        return {"cursor": self.cursor, "order": self.order.copy()}

    def set_state(self, state: dict) -> None:
        self.cursor = state["cursor"]
        self.order = state["order"].copy()


class BatchDataLayer(Layer):
    """A data layer whose tops are rows of in-memory arrays (one array per top)."""

    num_bottoms = 0
    batcher: ArrayBatcher | None = None

    def top_shapes(self) -> list[tuple[int, ...]]:
        batcher = self.batcher
        if batcher is None:
            raise DataError(f"layer '{self.name}' has no data yet")
        return [(batcher.batch_size,) + a.shape[1:] for a in batcher.arrays]

    def reshape(self, bottom, top):
        if self.batcher is None:
            raise DataError(f"layer '{self.name}' has no data yet")
        for blob, shape in zip(top, self.top_shapes()):
            blob.reshape(shape)

    def forward(self, bottom, top):
        indices = self.batcher.next_indices()
        for blob, array in zip(top, self.batcher.arrays):
            blob.data[...] = backend.to_device(array[indices], blob.device)

    def backward(self, top, propagate_down, bottom):
        pass
