"""Built-in teaching datasets: 2-D spiral, XOR, circles, Gaussian blobs, and the
8x8 handwritten digits (shipped in ``resources/data/digits.npz``).

Every generator is seeded, so a dataset is the same on every machine.
"""
from __future__ import annotations

import math

import numpy

from . import resources


def spiral(num_points: int = 300, noise: float = 0.1, num_classes: int = 3, seed: int = 1):
    """Interleaved spiral arms, one class per arm (CS231n's classic)."""
    gen = numpy.random.default_rng(seed)
    per_class = max(1, num_points // num_classes)
    points, labels = [], []
    for k in range(num_classes):
        radius = numpy.linspace(0.0, 1.0, per_class)
        angle = numpy.linspace(k * 4.0, (k + 1) * 4.0, per_class) + gen.normal(0, noise * 2, per_class)
        points.append(numpy.c_[radius * numpy.sin(angle), radius * numpy.cos(angle)])
        labels.append(numpy.full(per_class, k))
    return _finish(points, labels, gen)


def xor(num_points: int = 200, noise: float = 0.1, num_classes: int = 2, seed: int = 1):
    """Four clusters at the corners of a square; opposite corners share a class."""
    gen = numpy.random.default_rng(seed)
    corners = numpy.array([[-1, -1], [1, 1], [-1, 1], [1, -1]], dtype=float) * 0.5
    which = numpy.arange(num_points) % 4
    points = corners[which] + gen.normal(0, noise, (num_points, 2))
    return _finish([points], [(which >= 2).astype(int)], gen)


def circles(num_points: int = 200, noise: float = 0.1, num_classes: int = 2, seed: int = 1):
    """An inner disc (class 0) inside a ring (class 1)."""
    gen = numpy.random.default_rng(seed)
    half = num_points // 2
    angle = gen.uniform(0, 2 * numpy.pi, 2 * half)
    radius = numpy.r_[gen.uniform(0.0, 0.4, half), gen.uniform(0.7, 1.0, half)]
    points = numpy.c_[radius * numpy.cos(angle), radius * numpy.sin(angle)]
    points += gen.normal(0, noise * 0.5, points.shape)
    return _finish([points], [numpy.r_[numpy.zeros(half), numpy.ones(half)]], gen)


def blobs(num_points: int = 200, noise: float = 0.1, num_classes: int = 3, seed: int = 1):
    """Gaussian blobs, one per class, centred on a circle."""
    gen = numpy.random.default_rng(seed)
    labels = numpy.arange(num_points) % num_classes
    angle = 2 * numpy.pi * labels / num_classes
    centres = numpy.c_[numpy.cos(angle), numpy.sin(angle)] * 0.6
    points = centres + gen.normal(0, 0.15 + noise, (num_points, 2))
    return _finish([points], [labels], gen)


def digits(num_points: int = 0, noise: float = 0.0, num_classes: int = 10, seed: int = 1):
    """The 8x8 handwritten digits (1797 images, values 0..1), shape N x 1 x 8 x 8."""
    with numpy.load(resources.path("data", "digits.npz")) as archive:
        images = archive["images"].astype(numpy.float32) / 16.0
        labels = archive["labels"].astype(numpy.float32)
    if num_points and num_points < len(labels):
        images, labels = images[:num_points], labels[:num_points]
    return images[:, None, :, :], labels


def _finish(points, labels, gen):
    data = numpy.concatenate(points).astype(numpy.float32)
    label = numpy.concatenate(labels).astype(numpy.float32)
    order = gen.permutation(len(label))
    return data[order], label[order]


#: Limits of the generated datasets' parameters (beyond them a teaching set makes no sense).
MAX_POINTS = 10_000_000
MAX_CLASSES = 1000

GENERATORS = {"spiral": spiral, "xor": xor, "circles": circles, "blobs": blobs, "digits": digits}


def load(name: str, num_points: int = 300, noise: float = 0.1, num_classes: int = 3, seed: int = 1):
    """(data, labels) of a built-in dataset by name."""
    if name not in GENERATORS:
        raise KeyError(f"unknown built-in dataset '{name}' (available: {', '.join(GENERATORS)})")
    if not 0 <= num_points <= MAX_POINTS:
        raise ValueError(f"dataset '{name}': num_points is {num_points}; it must be in [0, {MAX_POINTS}]")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"dataset '{name}': noise is {noise}; it must be a finite number >= 0")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"dataset '{name}': num_classes is {num_classes}; it must be in [1, {MAX_CLASSES}]")
    if seed < 0:
        raise ValueError(f"dataset '{name}': seed is {seed}; it must be >= 0")
    return GENERATORS[name](num_points=num_points, noise=noise, num_classes=num_classes, seed=seed)


def split(data, labels, test_fraction: float, seed: int):
    """((train_data, train_labels), (test_data, test_labels)), a seeded split."""
    if not (math.isfinite(test_fraction) and 0.0 <= test_fraction < 1.0):
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    count = len(labels)
    n_test = int(round(count * test_fraction))
    order = numpy.random.default_rng(seed + 7919).permutation(count)
    test_rows, train_rows = order[:n_test], order[n_test:]
    return (data[train_rows], labels[train_rows]), (data[test_rows], labels[test_rows])
