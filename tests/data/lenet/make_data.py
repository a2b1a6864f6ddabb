"""Regenerate the tiny LeNet data: the built-in 8x8 digits, each pixel repeated
3x3 (24x24) and padded by 2 to MNIST's 28x28, values in [0, 1] (already scaled:
HDF5Data does no transform). Two train files (256 rows each) show the
wrap-around across files; one test file (200 rows).

    python tests/data/lenet/make_data.py
"""
import os
import sys

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", ".."))

from engine import datasets  # noqa: E402
from engine.tools import to_hdf5, write_source_list  # noqa: E402


def mnist_shaped(images: numpy.ndarray) -> numpy.ndarray:
    big = images.repeat(3, axis=2).repeat(3, axis=3)
    return numpy.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2))).astype(numpy.float32)


def main() -> None:
    images, labels = datasets.digits()
    images = mnist_shaped(images)
    train = [(images[:256], labels[:256]), (images[256:512], labels[256:512])]
    test = (images[1597:], labels[1597:])
    names = []
    for k, (data, label) in enumerate(train):
        names.append(to_hdf5(data, label, os.path.join(HERE, f"train_{k}.h5"), compression="gzip"))
    write_source_list(names, os.path.join(HERE, "train_h5_list.txt"))
    test_path = to_hdf5(*test, os.path.join(HERE, "test.h5"), compression="gzip")
    write_source_list([test_path], os.path.join(HERE, "test_h5_list.txt"))


if __name__ == "__main__":
    main()
