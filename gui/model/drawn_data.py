"""Points drawn by hand on a 2-D dataset (Qt-free): click to add a point of the chosen
class, drag to paint (a point at most every ``spacing``), right-click to erase.

The points are written as Caffe reads them: an HDF5 file with ``data`` (N×2
float32) and ``label`` (N float32) and a source list naming it, for an
``HDF5Data`` layer (the net builder's design points its data layer there, so the
net trains on them at once, in the window's thread or in the solver process).
Saved beside the net's files; :meth:`DrawnData.to_hdf5` also exports them alone.
"""
from __future__ import annotations

import os

import numpy

from engine import datasets
from engine.atomic import atomic_path, write_text

H5_NAME, LIST_NAME = "drawn_points.h5", "drawn_points.txt"


class DrawnData:
    """The drawn points and their classes."""

    def __init__(self, points=None, labels=None, num_classes: int = 2):
        self.points = numpy.zeros((0, 2), numpy.float32) if points is None else \
            numpy.asarray(points, numpy.float32).reshape(-1, 2)
        self.labels = numpy.zeros(0, numpy.int64) if labels is None else numpy.asarray(labels, numpy.int64).ravel()
        if self.points.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.points.shape[0]} points but {self.labels.shape[0]} labels")
        self.num_classes = max(int(num_classes), int(self.labels.max()) + 1 if self.labels.size else 0)

    @classmethod
    def from_dataset(cls, name: str, num_points: int = 200, noise: float = 0.1, seed: int = 1,
                     num_classes: int | None = None) -> DrawnData:
        """Start from a built-in 2-D dataset (then add or erase points)."""
        data, labels = datasets.load(name, num_points=num_points, noise=noise, seed=seed,
                                     num_classes=3 if num_classes is None else num_classes)
        data = numpy.asarray(data, numpy.float32).reshape(len(labels), -1)
        if data.shape[1] != 2:
            raise ValueError(f"dataset '{name}' is not 2-D points (rows of {data.shape[1]} values)")
        return cls(data, numpy.asarray(labels).astype(int), int(numpy.max(labels)) + 1)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    # -- drawing ------------------------------------------------------------------
    def add(self, x: float, y: float, label: int) -> None:
        if label < 0:
            raise ValueError(f"a class is 0 or more, not {label}")
        self.points = numpy.vstack([self.points, numpy.array([[x, y]], numpy.float32)])
        self.labels = numpy.append(self.labels, int(label))
        self.num_classes = max(self.num_classes, int(label) + 1)

    def paint(self, x: float, y: float, label: int, spacing: float) -> bool:
        """Add a point unless one is closer than ``spacing`` (a drag leaves a trail); True if added."""
        if len(self):
            nearest = float(numpy.min(numpy.hypot(self.points[:, 0] - x, self.points[:, 1] - y)))
            if nearest < spacing:
                return False
        self.add(x, y, label)
        return True

    def erase(self, x: float, y: float, radius: float) -> int:
        """Remove the points within ``radius`` of (x, y); returns how many went."""
        keep = numpy.hypot(self.points[:, 0] - x, self.points[:, 1] - y) > radius
        gone = int((~keep).sum())
        self.points, self.labels = self.points[keep], self.labels[keep]
        return gone

    def counts(self) -> list[int]:
        return [int((self.labels == k).sum()) for k in range(self.num_classes)]

    # -- files ----------------------------------------------------------------------
    def to_hdf5(self, path: str) -> str:
        """Write ``data`` (N×2 float32) and ``label`` (N float32) to ``path`` atomically."""
        import h5py
        if not len(self):
            raise ValueError("no points drawn: nothing to write")
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
            handle.create_dataset("data", data=self.points.astype(numpy.float32))
            handle.create_dataset("label", data=self.labels.astype(numpy.float32))
        return path

    def save(self, folder: str) -> str:
        """The HDF5 file and its source list in ``folder``; returns the list's path (for HDF5Data)."""
        os.makedirs(folder, exist_ok=True)
        self.to_hdf5(os.path.join(folder, H5_NAME))
        list_path = os.path.join(folder, LIST_NAME)
        write_text(list_path, H5_NAME + "\n")
        return list_path

    @classmethod
    def load(cls, folder_or_h5: str) -> DrawnData:
        import h5py
        path = folder_or_h5 if folder_or_h5.endswith(".h5") else os.path.join(folder_or_h5, H5_NAME)
        with h5py.File(path, "r") as handle:
            return cls(handle["data"][...], handle["label"][...].astype(int))
