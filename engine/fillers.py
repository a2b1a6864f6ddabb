"""Weight fillers with Caffe's names and defaults: constant, uniform, gaussian, xavier, msra, bilinear."""
from __future__ import annotations

import math

import numpy

from . import backend, rng
from .errors import NetDefinitionError


def _fan(shape: tuple[int, ...], variance_norm: int) -> float:
    count = int(numpy.prod(shape)) if shape else 1
    fan_in = count / shape[0] if shape else 1
    fan_out = count / shape[1] if len(shape) > 1 else count
    if variance_norm == 1:  # FAN_OUT
        return fan_out
    if variance_norm == 2:  # AVERAGE
        return (fan_in + fan_out) / 2.0
    return fan_in


#: Filler types that draw nothing for a zero-size blob.
FILLER_TYPES = ("constant", "uniform", "gaussian", "xavier", "msra")


def filled_array(filler, shape: tuple[int, ...], dtype=numpy.float32) -> numpy.ndarray:
    """A new numpy array of ``shape`` filled as ``filler`` (a FillerParameter) says."""
    kind = filler.type
    gen = rng.generator()
    if kind in FILLER_TYPES and (int(numpy.prod(shape)) if shape else 1) == 0:
        return numpy.zeros(shape, dtype=dtype)  # nothing to draw (and a zero fan to divide by)
    if kind == "gaussian" and not filler.std >= 0:
        raise NetDefinitionError(f"gaussian filler: std is {filler.std}; it must be >= 0")
    if kind == "constant":
        return numpy.full(shape, filler.value, dtype=dtype)
    if kind == "uniform":
        return gen.uniform(filler.min, filler.max, size=shape).astype(dtype)
    if kind == "gaussian":
        values = gen.normal(filler.mean, filler.std, size=shape)
        if filler.sparse >= 0 and len(shape) >= 2:
            keep = gen.random(shape) < filler.sparse / shape[0]
            values = values * keep
        return values.astype(dtype)
    if kind == "xavier":
        scale = math.sqrt(3.0 / _fan(shape, filler.variance_norm))
        return gen.uniform(-scale, scale, size=shape).astype(dtype)
    if kind == "msra":
        std = math.sqrt(2.0 / _fan(shape, filler.variance_norm))
        return gen.normal(0.0, std, size=shape).astype(dtype)
    if kind == "bilinear":
        return bilinear_kernel(shape).astype(dtype)
    if kind == "positive_unitball":
        return _positive_unitball(gen, shape, dtype)
    raise NetDefinitionError(
        f"unknown filler type '{kind}' (supported: constant, uniform, gaussian, xavier, msra, bilinear, "
        f"positive_unitball)")


def _positive_unitball(gen, shape: tuple[int, ...], dtype) -> numpy.ndarray:
    """Caffe's PositiveUnitballFiller: uniform in [0, 1), then each of the shape[0]
    slices divided by its (Dtype) sum, so every slice is positive and sums to 1."""
    values = gen.uniform(0.0, 1.0, size=shape).astype(dtype)
    if values.size == 0:
        return values
    rows = values.reshape(shape[0], -1) if shape else values.reshape(1, 1)
    rows /= rows.sum(axis=1, keepdims=True, dtype=dtype)
    return values


def bilinear_kernel(shape: tuple[int, ...]) -> numpy.ndarray:
    """Caffe's BilinearFiller: every (kh x kw) slice is the upsampling kernel
    ``(1 - |x / f - c|) * (1 - |y / f - c|)`` with ``f = ceil(k / 2)``, ``c = (k - 1) / (2 f)``."""
    if len(shape) != 4 or shape[2] != shape[3]:
        raise NetDefinitionError(
            f"the bilinear filler needs a 4-D blob with square kernels, got shape {tuple(shape)}")
    size = shape[3]
    f = math.ceil(size / 2.0)
    c = (size - 1) / (2.0 * f)
    profile = 1.0 - numpy.abs(numpy.arange(size) / f - c)
    return numpy.broadcast_to(numpy.outer(profile, profile), shape).copy()


def fill(blob, filler) -> None:
    """Fill ``blob.data`` in place."""
    values = filled_array(filler, blob.shape, blob.dtype)
    blob.data[...] = backend.to_device(values, blob.device)
