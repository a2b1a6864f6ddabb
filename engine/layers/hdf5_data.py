"""HDF5Data: rows of datasets named after the tops, read from the .h5 files a
``source`` list names, in order with wrap-around across files as Caffe does."""
from __future__ import annotations

import os

import numpy

from .. import backend, rng
from ..errors import DataError
from ..layer import Layer, register


def read_source_list(source: str) -> list[str]:
    """The .h5 paths named in ``source``; relative ones resolve against its folder,
    falling back to the working directory as Caffe does."""
    try:
        with open(source, encoding="utf-8") as handle:
            names = handle.read().split()
    except OSError as exc:
        raise DataError(f"HDF5Data source list '{source}' cannot be read: {exc.strerror}") from None
    if not names:
        raise DataError(f"HDF5Data source list '{source}' names no .h5 files")
    folder = os.path.dirname(os.path.abspath(source))
    resolved = []
    for name in names:
        beside = os.path.join(folder, name)
        resolved.append(beside if os.path.isabs(name) or os.path.exists(beside) or not os.path.exists(name)
                        else os.path.abspath(name))
    return resolved


def load_h5_datasets(path: str, names: list[str]) -> list[numpy.ndarray]:
    """Load the named datasets of one .h5 file as float32 arrays with equal row counts."""
    import h5py  # imported here: only nets with HDF5 data pay for it

    try:
        with h5py.File(path, "r") as handle:
            arrays = []
            for name in names:
                if name not in handle:
                    raise DataError(f"HDF5 file '{path}' has no dataset '{name}' "
                                    f"(it has: {', '.join(sorted(handle.keys())) or 'nothing'})")
                arrays.append(numpy.asarray(handle[name], dtype=numpy.float32))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"HDF5 file '{path}' does not exist") from None
    except OSError as exc:
        raise DataError(f"HDF5 file '{path}' cannot be read (corrupt or not HDF5): {exc}") from None
    for name, array in zip(names, arrays):
        if array.ndim < 1 or array.shape[0] != arrays[0].shape[0]:
            raise DataError(f"HDF5 file '{path}': dataset '{name}' has shape {array.shape}; every "
                            f"dataset needs {arrays[0].shape[0]} rows like '{names[0]}'")
    return arrays


@register("HDF5Data")
class HDF5DataLayer(Layer):
    num_bottoms = 0
    min_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.hdf5_data_param
        self.batch_size = int(p.batch_size)
        if self.batch_size <= 0:
            raise DataError(f"layer '{self.name}': hdf5_data_param.batch_size must be > 0")
        self.shuffle = p.shuffle
        self.top_names = list(self.param.top)
        self.filenames = read_source_list(p.source)
        self.file_order = numpy.arange(len(self.filenames))
        if self.shuffle:
            rng.generator().shuffle(self.file_order)
        self.current_file = 0
        self._load_file(self.filenames[self.file_order[0]])
        self.current_row = 0

    def _load_file(self, path: str) -> None:
        self.arrays = load_h5_datasets(path, self.top_names)
        rows = self.arrays[0].shape[0]
        if rows == 0:
            raise DataError(f"HDF5 file '{path}' has no rows")
        self.row_order = numpy.arange(rows)
        if self.shuffle:
            rng.generator().shuffle(self.row_order)

    def reshape(self, bottom, top):
        for blob, array in zip(top, self.arrays):
            blob.reshape((self.batch_size,) + array.shape[1:])

    def _next_row(self) -> None:
        self.current_row += 1
        if self.current_row == self.arrays[0].shape[0]:
            if len(self.filenames) > 1:
                self.current_file += 1
                if self.current_file == len(self.filenames):
                    self.current_file = 0
                    if self.shuffle:
                        rng.generator().shuffle(self.file_order)
                self._load_file(self.filenames[self.file_order[self.current_file]])
            self.current_row = 0
            if self.shuffle:
                rng.generator().shuffle(self.row_order)

    def forward(self, bottom, top):
        batches = [numpy.empty((self.batch_size,) + a.shape[1:], numpy.float32) for a in self.arrays]
        for i in range(self.batch_size):
            row = self.row_order[self.current_row]
            for batch, array in zip(batches, self.arrays):
                if array.shape[1:] != batch.shape[1:]:
                    raise DataError(f"layer '{self.name}': files in '{self.param.hdf5_data_param.source}' "
                                    f"disagree on the shape of rows: {array.shape[1:]} vs {batch.shape[1:]}")
                batch[i] = array[row]
            self._next_row()
        for blob, batch in zip(top, batches):
            blob.data[...] = backend.to_device(batch, blob.device)

    def backward(self, top, propagate_down, bottom):
        pass
