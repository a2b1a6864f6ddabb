"""Data conversion: numpy arrays to HDF5Data files or to LMDB / LevelDB databases.

>>> from engine.tools import to_hdf5, to_lmdb, write_source_list
>>> to_hdf5(images, labels, "train.h5")          # images N x C x H x W, labels N
>>> write_source_list(["train.h5"], "train_list.txt")

and in the net: ``hdf5_data_param { source: "train_list.txt" batch_size: 64 }``
with tops ``data`` and ``label``. Or, for a ``Data`` layer:

>>> to_lmdb(images_uint8, labels, "train_lmdb")   # raw Datums (float_data if not uint8)

and ``data_param { source: "train_lmdb" backend: LMDB batch_size: 64 }``.
Images files go through ``python -m engine convert_imageset`` (engine.datatools).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy

from .atomic import atomic_path, write_text
from .errors import DataError


def to_hdf5(arrays, labels, path: str | os.PathLike, *, data_name: str = "data",
            label_name: str = "label", compression: str | None = None) -> str:
    """Write ``arrays`` (N x ...) and ``labels`` (N) as float32 datasets of one .h5
    file that an HDF5Data layer with tops ``data_name``, ``label_name`` reads.
    Returns the path. ``compression="gzip"`` makes smaller files Caffe still reads."""
    import h5py
    path = os.fspath(path)
    data = _as_float32(arrays, "arrays")
    label = _as_float32(labels, "labels")
    if data.ndim < 1 or data.shape[0] == 0:
        raise DataError(f"to_hdf5: arrays need at least one row, got shape {data.shape}")
    if label.ndim > 1 and label.shape[1:] != (1,) * (label.ndim - 1):
        raise DataError(f"to_hdf5: labels must be one per row (N or N x 1), got shape {label.shape}")
    label = label.reshape(-1)
    if label.shape[0] != data.shape[0]:
        raise DataError(f"to_hdf5: {data.shape[0]} rows of data but {label.shape[0]} labels")
    if data_name == label_name:
        raise DataError(f"to_hdf5: the data and label datasets need different names, both are '{data_name}'")
    options = {"compression": compression} if compression else {}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset(data_name, data=data, **options)
            handle.create_dataset(label_name, data=label, **options)
    return path


def write_source_list(h5_paths: Sequence[str | os.PathLike], list_path: str | os.PathLike) -> str:
    """Write the text file an ``hdf5_data_param.source`` names: one .h5 per line,
    relative to the list's folder where possible (HDF5Data resolves them there)."""
    list_path = os.fspath(list_path)
    folder = os.path.dirname(os.path.abspath(list_path))
    lines = []
    for name in h5_paths:
        full = os.path.abspath(os.fspath(name))
        relative = os.path.relpath(full, folder)
        lines.append(full if relative.startswith("..") else relative)
    write_text(list_path, "\n".join(lines) + "\n")
    return list_path


def load_array(path: str | os.PathLike) -> numpy.ndarray:
    """A numpy array from a .npy file (or a .npz holding exactly one array)."""
    path = os.fspath(path)
    try:
        loaded = numpy.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"array file '{path}' does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"array file '{path}' cannot be read as .npy/.npz: {exc}") from None
    if isinstance(loaded, numpy.lib.npyio.NpzFile):
        with loaded:
            if len(loaded.files) != 1:
                raise DataError(f"'{path}' holds {len(loaded.files)} arrays ({', '.join(loaded.files)}); "
                                f"give a .npy or a .npz with one array")
            return loaded[loaded.files[0]]
    return loaded


def _as_float32(values, what: str) -> numpy.ndarray:
    try:
        array = numpy.asarray(values, dtype=numpy.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"to_hdf5: {what} are not numeric: {exc}") from None
    if not numpy.isfinite(array).all():
        raise DataError(f"to_hdf5: {what} contain NaN or infinite values")
    return array


def to_lmdb(arrays, labels, path: str | os.PathLike, *, backend: str = "lmdb") -> int:
    """Write ``arrays`` (N x C x H x W; uint8 rows become Datum bytes, other types
    float_data) and integer ``labels`` (N) as a new LMDB (or LevelDB) database of
    Datums keyed ``%08d``, which a ``Data`` layer reads. Returns N. The database
    appears atomically; an existing ``path`` is refused."""
    from .datatools import write_arrays
    return write_arrays(arrays, labels, os.fspath(path), backend)


def backend_for_output(path: str | os.PathLike) -> str:
    """'lmdb' / 'leveldb' for an output named ``*.lmdb`` / ``*_lmdb`` / ``*.leveldb`` ..., else 'hdf5'."""
    name = os.path.basename(os.fspath(path).rstrip("/\\")).lower()
    for backend in ("lmdb", "leveldb"):
        if name.endswith((f".{backend}", f"_{backend}")):
            return backend
    return "hdf5"
