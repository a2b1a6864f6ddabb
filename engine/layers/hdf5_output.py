"""HDF5Output: write a batch of data and labels to an HDF5 file (Caffe's HDF5OutputLayer).

``hdf5_output_param { file_name }``; two bottoms (data, label) with the same number
of items, no tops. As Caffe (src/caffe/layers/hdf5_output_layer.cpp, util/hdf5.cpp)
the file holds two datasets, "data" and "label", each in the net's float type and
in the legacy 4-axis shape ``num x channels x height x width`` (missing axes are 1:
an N x D bottom is saved as N x D x 1 x 1; more than 4 axes are refused, as Caffe's
legacy accessors CHECK-fail).

Caffe creates (truncates) the file when the layer is set up and writes the datasets
at the first forward; a second forward fails there, because the datasets exist
already. Here nothing is written at setup (building a net, e.g. to show it, leaves
the disk alone): the first forward writes the whole file at once (atomically), and
a second forward of the same net stops with an error, as Caffe does. Build the net
again to write another batch. ``file_name`` is opened as the net gives it: a relative
name is relative to the working directory, as in Caffe. No backward (Caffe's is a no-op).
"""
from __future__ import annotations

import os

from .. import backend
from ..atomic import atomic_path
from ..errors import DataError, NetDefinitionError, ShapeError
from ..layer import Layer, register

DATA_DATASET, LABEL_DATASET = "data", "label"


def legacy_shape(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Caffe's (num, channels, height, width) of a blob of at most 4 axes (missing axes are 1)."""
    padded = tuple(shape) + (1,) * (4 - len(shape))
    return padded[0], padded[1], padded[2], padded[3]


@register("HDF5Output")
class HDF5OutputLayer(Layer):
    num_bottoms = 2
    num_tops = 0
    min_tops = 0

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        self.file_name = self.param.hdf5_output_param.file_name
        if not self.file_name:
            raise NetDefinitionError(f"layer '{self.name}' (HDF5Output): hdf5_output_param.file_name is required")
        folder = os.path.dirname(os.path.abspath(self.file_name))
        if not os.path.isdir(folder):
            raise DataError(f"layer '{self.name}' (HDF5Output): cannot create '{self.file_name}': the folder "
                            f"'{folder}' does not exist")
        if os.path.isdir(self.file_name):
            raise DataError(f"layer '{self.name}' (HDF5Output): cannot create '{self.file_name}': it is a folder")
        self.written = False

    def reshape(self, bottom, top):
        for i, blob in enumerate(bottom):
            if blob.num_axes > 4:
                raise ShapeError(f"layer '{self.name}' (HDF5Output): bottom {self.bottom_name(i)} has "
                                 f"{blob.num_axes} axes, shape {blob.shape}; Caffe writes num x channels x "
                                 f"height x width and refuses more than 4 axes")
        data_num, label_num = legacy_shape(bottom[0].shape)[0], legacy_shape(bottom[1].shape)[0]
        if data_num != label_num:
            raise ShapeError(f"layer '{self.name}' (HDF5Output): data {self.bottom_name(0)} has {data_num} "
                             f"item(s) but label {self.bottom_name(1)} has {label_num}; they must match")

    def forward(self, bottom, top):
        if self.written:
            raise DataError(f"layer '{self.name}' (HDF5Output): '{self.file_name}' was written by the first "
                            f"forward; Caffe's HDF5Output writes one batch per net and fails on the next "
                            f"forward (its datasets exist already). Run one forward (e.g. one test "
                            f"iteration), or build the net again to write another batch")
        data = backend.to_numpy(bottom[0].data).reshape(legacy_shape(bottom[0].shape))
        label = backend.to_numpy(bottom[1].data).reshape(legacy_shape(bottom[1].shape))
        import h5py  # only a net that writes pays for the import
        try:
            with atomic_path(self.file_name) as tmp, h5py.File(tmp, "w") as out:
                out.create_dataset(DATA_DATASET, data=data)
                out.create_dataset(LABEL_DATASET, data=label)
        except OSError as exc:
            raise DataError(f"layer '{self.name}' (HDF5Output): cannot write '{self.file_name}': {exc}") from None
        self.written = True

    def backward(self, top, propagate_down, bottom):
        """Nothing: Caffe's HDF5Output has no gradient."""
