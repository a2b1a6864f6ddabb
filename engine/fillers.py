"""Weight fillers with Caffe's names and defaults: constant, uniform, gaussian, xavier, msra."""
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


def filled_array(filler, shape: tuple[int, ...], dtype=numpy.float32) -> numpy.ndarray:
    """A new numpy array of ``shape`` filled as ``filler`` (a FillerParameter) says."""
    kind = filler.type
    gen = rng.generator()
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
    raise NetDefinitionError(
        f"unknown filler type '{kind}' (supported: constant, uniform, gaussian, xavier, msra)")


def fill(blob, filler) -> None:
    """Fill ``blob.data`` in place."""
    values = filled_array(filler, blob.shape, blob.dtype)
    blob.data[...] = backend.to_device(values, blob.device)
