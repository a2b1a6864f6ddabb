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
        self.arrays = None
        self._load_file(self.file_order[0])
        self.current_row = 0

    def _load_file(self, index: int) -> None:
        """Load file number ``index`` of the source list (Caffe's LoadHDF5FileData)."""
        path = self.filenames[index]
        arrays = load_h5_datasets(path, self.top_names)
        rows = arrays[0].shape[0]
        if rows == 0:
            raise DataError(f"HDF5 file '{path}' has no rows")
        if getattr(self, "arrays", None) is not None:
            for name, old, new in zip(self.top_names, self.arrays, arrays):
                if old.shape[1:] != new.shape[1:]:
                    raise DataError(f"layer '{self.name}': dataset '{name}' has rows of shape {new.shape[1:]} "
                                    f"in '{path}' but {old.shape[1:]} in '{self.loaded_path}'")
        self.arrays, self.loaded_index, self.loaded_path = arrays, int(index), path
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
                self._load_file(self.file_order[self.current_file])
            self.current_row = 0
            if self.shuffle:
                rng.generator().shuffle(self.row_order)

    def forward(self, bottom, top):
        batches = [numpy.empty((self.batch_size,) + a.shape[1:], numpy.float32) for a in self.arrays]
        for i in range(self.batch_size):
            row = self.row_order[self.current_row]
            for batch, array in zip(batches, self.arrays):
                batch[i] = array[row]
            self._next_row()
        for blob, batch in zip(top, batches):
            blob.data[...] = backend.to_device(batch, blob.device)

    # -- position, for snapshots --------------------------------------------
    def state(self) -> dict:
        """Where the next row comes from: file, row and both shuffle orders."""
        return {"current_file": self.current_file, "current_row": self.current_row,
                "file_order": self.file_order.copy(), "row_order": self.row_order.copy()}

    def set_state(self, state: dict) -> None:
        """Continue from a :meth:`state` (reloads the file it points into)."""
        file_order = numpy.asarray(state["file_order"], dtype=numpy.intp).reshape(-1)
        current_file, current_row = int(state["current_file"]), int(state["current_row"])
        if len(file_order) != len(self.filenames) or not 0 <= current_file < len(file_order):
            raise DataError(f"layer '{self.name}': the saved position is for {len(file_order)} file(s) but "
                            f"'{self.param.hdf5_data_param.source}' lists {len(self.filenames)}")
        self.file_order = file_order
        if int(file_order[current_file]) != self.loaded_index:
            self._load_file(file_order[current_file])
        row_order = numpy.asarray(state["row_order"], dtype=numpy.intp).reshape(-1)
        rows = self.arrays[0].shape[0]
        if len(row_order) != rows or not 0 <= current_row < rows:
            raise DataError(f"layer '{self.name}': the saved position (row {current_row} of {len(row_order)}) "
                            f"does not fit '{self.loaded_path}', which has {rows} rows")
        self.current_file, self.current_row, self.row_order = current_file, current_row, row_order

    def backward(self, top, propagate_down, bottom):
        pass
