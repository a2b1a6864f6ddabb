"""HDF5Data: rows of datasets named after the tops, read from the .h5 files a
``source`` list names, in order with wrap-around across files as Caffe does.

``shuffle`` is Caffe's (src/caffe/layers/hdf5_data_layer.cpp): ``std::random_shuffle``
without a generator, i.e. libstdc++'s over glibc ``rand()``, which Caffe never
seeds (:func:`engine.rng.c_rand`, back to seed 1 when a Solver is built;
:func:`engine.caffe_rng.libstdcxx_random_shuffle`). At setup the file order is
shuffled (nothing drawn for one file), then the first file's rows; after the last
row of a file: with several files the next one is loaded (the file order
reshuffled first when it wraps), its rows shuffled as it loads, and then (one file
or several) the rows are shuffled once more. The draws come from the process's
one ``rand()``, so a Caffe run's HDF5 shuffles are matched when the engine builds
and runs its nets in Caffe's order, whatever ``random_seed`` is.
"""
from __future__ import annotations

import os

import numpy

from .. import backend, rng
from ..caffe_rng import libstdcxx_random_shuffle
from ..errors import DataError, ResourceError
from ..layer import Layer, register
from ..validate import CHECK_MEMORY_FROM, check_input_file, format_bytes, require_memory, shape_bytes

#: Largest source list read (a list of file names; 64 MB is millions of them).
MAX_SOURCE_LIST_BYTES = 64 * 2**20
#: A dataset stored in fewer bytes than its size / this was never written (deflate
#: compresses at most ~1032:1): its rows would be fill values, allocated for nothing.
MAX_COMPRESSION_RATIO = 1100


def _source_lines(source: str) -> list[str]:
    check_input_file(source, "HDF5Data source list", limit=MAX_SOURCE_LIST_BYTES)
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise DataError(f"HDF5Data source list '{source}' cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"HDF5Data source list '{source}': line {line} is not UTF-8 text "
                        f"(byte 0x{raw[exc.start]:02x}); the list names one .h5 file per line") from None
    if "\0" in text:
        raise DataError(f"HDF5Data source list '{source}' holds a NUL character (a binary file, not a list)")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_source_list(source: str) -> list[str]:
    """The .h5 paths named in ``source``, one per line (a name may hold spaces; a line
    of several names that exist is read as those names). Relative ones resolve against
    the list's folder, falling back to the working directory as Caffe does."""
    folder = os.path.dirname(os.path.abspath(source))

    def resolve(name: str) -> str:
        beside = os.path.join(folder, name)
        return beside if os.path.isabs(name) or os.path.exists(beside) or not os.path.exists(name) \
            else os.path.abspath(name)

    resolved: list[str] = []
    for line in _source_lines(source):
        whole = resolve(line)
        parts = line.split()
        if not os.path.exists(whole) and len(parts) > 1 and all(os.path.exists(resolve(p)) for p in parts):
            resolved.extend(resolve(p) for p in parts)
        else:
            resolved.append(whole)
    if not resolved:
        raise DataError(f"HDF5Data source list '{source}' names no .h5 files")
    return resolved


def _dataset(handle, path: str, name: str):
    """The dataset ``name`` of an open file, or DataError saying what is there instead."""
    import h5py

    try:
        link = handle.get(name, getlink=True)
    except (KeyError, ValueError, RuntimeError, OSError) as exc:
        raise DataError(f"HDF5 file '{path}': '{name}' cannot be read ({exc})") from None
    if link is None:
        raise DataError(f"HDF5 file '{path}' has no dataset '{name}' "
                        f"(it has: {', '.join(sorted(handle.keys())) or 'nothing'})")
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"HDF5 file '{path}': '{name}' is an external link to '{link.filename}'; "
                        f"store the data in the file itself")
    try:
        dataset = handle[name]
    except (KeyError, ValueError, RuntimeError, OSError) as exc:
        raise DataError(f"HDF5 file '{path}': '{name}' is a link that leads nowhere ({exc})") from None
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(f"HDF5 file '{path}': '{name}' is a group, not a dataset")
    return dataset


def _check_dataset(dataset, path: str, name: str) -> None:
    """Numbers, at least one axis, and a size the memory and the file can hold."""
    if dataset.dtype.kind not in "biuf":
        raise DataError(f"HDF5 file '{path}': dataset '{name}' holds {dataset.dtype} values, not numbers")
    shape = tuple(dataset.shape or ())
    if len(shape) < 1:
        raise DataError(f"HDF5 file '{path}': dataset '{name}' is a scalar; it needs one row per sample")
    needed = shape_bytes(shape, 4)
    if needed >= CHECK_MEMORY_FROM:
        stored = dataset.id.get_storage_size()
        if stored * MAX_COMPRESSION_RATIO < shape_bytes(shape, dataset.dtype.itemsize):
            raise DataError(f"HDF5 file '{path}': dataset '{name}' declares shape {shape} "
                            f"({format_bytes(needed)} as float32) but stores only {format_bytes(stored)}: "
                            f"its rows were never written")
        require_memory(needed, f"HDF5 file '{path}': dataset '{name}' of shape {shape}")


def load_h5_datasets(path: str, names: list[str]) -> list[numpy.ndarray]:
    """Load the named datasets of one .h5 file as float32 arrays with equal row counts."""
    import h5py  # imported here: only nets with HDF5 data pay for it

    check_input_file(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as handle:
            datasets = [_dataset(handle, path, name) for name in names]
            for name, dataset in zip(names, datasets):
                _check_dataset(dataset, path, name)
            arrays = []
            for name, dataset in zip(names, datasets):
                try:
                    arrays.append(numpy.asarray(dataset, dtype=numpy.float32))
                except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
                    raise DataError(f"HDF5 file '{path}': dataset '{name}' cannot be read "
                                    f"(corrupt or truncated): {exc}") from None
    except DataError:
        raise
    except MemoryError:
        raise ResourceError(f"HDF5 file '{path}': not enough memory to load {', '.join(names)}") from None
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise DataError(f"HDF5 file '{path}' cannot be read (corrupt or not HDF5): {exc}") from None
    for name, array in zip(names, arrays):
        if array.shape[0] != arrays[0].shape[0]:
            raise DataError(f"HDF5 file '{path}': dataset '{name}' has shape {array.shape}; every "
                            f"dataset needs {arrays[0].shape[0]} rows like '{names[0]}'")
    return arrays


def h5_row_count(path: str, name: str) -> int:
    """Rows of dataset ``name`` in ``path``, without loading it."""
    import h5py

    check_input_file(path, "HDF5 file")
    try:
        with h5py.File(path, "r") as handle:
            dataset = _dataset(handle, path, name)
            shape = tuple(dataset.shape or ())
    except DataError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise DataError(f"HDF5 file '{path}' cannot be read (corrupt or not HDF5): {exc}") from None
    if not shape:
        raise DataError(f"HDF5 file '{path}': dataset '{name}' is a scalar; it needs one row per sample")
    return int(shape[0])


def _shuffled(order: numpy.ndarray) -> numpy.ndarray:
    """A new array: ``order`` through ``std::random_shuffle`` on the process's glibc ``rand()``."""
    items = order.tolist()
    libstdcxx_random_shuffle(items, rng.c_rand())
    return numpy.asarray(items, dtype=numpy.intp)


def _permutation(values, count: int, what: str, layer: str) -> numpy.ndarray:
    try:
        order = numpy.asarray(values, dtype=numpy.intp).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"layer '{layer}': the saved {what} is not a list of integers") from None
    if len(order) != count or not numpy.array_equal(numpy.sort(order), numpy.arange(count)):
        raise DataError(f"layer '{layer}': the saved {what} is not an order of {count} item(s) "
                        f"(it has {len(order)}); the state was saved for other data")
    return order


@register("HDF5Data")
class HDF5DataLayer(Layer):
    num_bottoms = 0
    min_tops = 1
    loaded_path = ""
    loaded_index = -1

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
            self.file_order = _shuffled(self.file_order)
        self.current_file = 0
        self.arrays = None
        self._load_file(self.file_order[0])
        self.current_row = 0

    def _load_file(self, index: int, shuffle_rows: bool = True) -> None:
        """Load file number ``index`` of the source list (Caffe's LoadHDF5FileData: the rows
        shuffled with ``shuffle``; not when a saved position brings its own order)."""
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
        if self.shuffle and shuffle_rows:
            self.row_order = _shuffled(self.row_order)

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
                        self.file_order = _shuffled(self.file_order)
                self._load_file(self.file_order[self.current_file])
            self.current_row = 0
            if self.shuffle:
                self.row_order = _shuffled(self.row_order)

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

    def check_state(self, state: dict) -> dict:
        """The saved position, validated against this layer's files without changing
        anything (DataError naming the layer when it cannot be right)."""
        try:
            current_file, current_row = int(state["current_file"]), int(state["current_row"])
            file_values, row_values = state["file_order"], state["row_order"]
        except KeyError as exc:
            raise DataError(f"layer '{self.name}': the saved position lacks '{exc.args[0]}'") from None
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"layer '{self.name}': the saved position is not a pair of integers") from None
        source = self.param.hdf5_data_param.source
        file_order = numpy.asarray(file_values).reshape(-1)
        if len(file_order) != len(self.filenames) or not 0 <= current_file < len(file_order):
            raise DataError(f"layer '{self.name}': the saved position is for {len(file_order)} file(s) "
                            f"(file #{current_file}) but '{source}' lists {len(self.filenames)}")
        file_order = _permutation(file_order, len(self.filenames), "file order", self.name)
        index = int(file_order[current_file])
        rows = self.arrays[0].shape[0] if index == self.loaded_index else \
            h5_row_count(self.filenames[index], self.top_names[0])
        if not 0 <= current_row < rows:
            raise DataError(f"layer '{self.name}': the saved position (row {current_row}) does not fit "
                            f"'{self.filenames[index]}', which has {rows} rows")
        row_order = _permutation(row_values, rows, "row order", self.name)
        return {"current_file": current_file, "current_row": current_row, "file_order": file_order,
                "row_order": row_order}

    def set_state(self, state: dict) -> None:
        """Continue from a :meth:`state` (reloads the file it points into)."""
        state = self.check_state(state)
        file_order, current_file = state["file_order"], state["current_file"]
        if int(file_order[current_file]) != self.loaded_index:
            self._load_file(file_order[current_file], shuffle_rows=False)  # draws nothing: the order is saved
        self.file_order = file_order
        self.current_file, self.current_row = current_file, state["current_row"]
        self.row_order = state["row_order"]

    def backward(self, top, propagate_down, bottom):
        pass
