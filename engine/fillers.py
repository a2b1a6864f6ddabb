"""Weight fillers with Caffe's names and defaults: constant, uniform, gaussian, xavier, msra, bilinear,
positive_unitball."""
from __future__ import annotations

import math

import numpy

from . import backend, rng
from .caffe_rng import CaffeStream
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
ALL_FILLER_TYPES = FILLER_TYPES + ("bilinear", "positive_unitball")


def caffe_stream() -> CaffeStream:
    """The Caffe stream (:func:`engine.rng.caffe_stream`, reseeded with the engine's)."""
    return rng.caffe_stream()


def _caffe_filled(filler, shape: tuple[int, ...], dtype) -> numpy.ndarray:
    """A filler drawn from the Caffe stream, in Dtype arithmetic as Caffe's filler.hpp."""
    kind, dtype_type = filler.type, numpy.dtype(dtype).type
    count = int(numpy.prod(shape)) if shape else 1
    stream = caffe_stream()
    if kind == "uniform":
        return stream.uniform(count, filler.min, filler.max, dtype).reshape(shape)
    if kind == "xavier":  # scale = sqrt(Dtype(3) / n), n in Dtype
        scale = dtype_type(math.sqrt(dtype_type(3) / dtype_type(_fan(shape, filler.variance_norm))))
        return stream.uniform(count, -scale, scale, dtype).reshape(shape)
    if kind == "gaussian":
        values = stream.normal(count, filler.mean, filler.std)
        if filler.sparse >= 0 and shape:  # mask of Bernoulli(sparse / shape[0]) draws
            values *= stream.bernoulli(count, F32(filler.sparse) / F32(shape[0]))
        return values.reshape(shape)
    if kind == "msra":  # std = sqrt(Dtype(2) / n)
        std = F32(math.sqrt(F32(2) / F32(_fan(shape, filler.variance_norm))))
        return stream.normal(count, 0.0, std).reshape(shape)
    values = stream.uniform(count, 0, 1, dtype)  # positive_unitball
    rows = values.reshape(shape[0] if shape else 1, -1)
    rows /= numpy.add.accumulate(rows, axis=1, dtype=dtype_type)[:, -1:]  # Caffe's sequential sum
    return values.reshape(shape)


def _draws_from_caffe_stream(filler, shape: tuple[int, ...], dtype) -> bool:
    """Whether Caffe's stream gives this filler: a non-empty blob; gaussian and msra
    only in float32 (boost's float normal) and gaussian with std > 0 (Caffe CHECKs it)."""
    if filler.type not in CAFFE_STREAM_FILLERS or (int(numpy.prod(shape)) if shape else 1) == 0:
        return False
    if filler.type in ("gaussian", "msra"):
        return numpy.dtype(dtype) == numpy.float32 and (filler.type == "msra" or filler.std > 0)
    return True


#: The fillers that draw from the Caffe stream when ``fill`` is asked to.
CAFFE_STREAM_FILLERS = ("uniform", "xavier", "positive_unitball", "gaussian", "msra")
F32 = numpy.float32


def filled_array(filler, shape: tuple[int, ...], dtype=numpy.float32,
                 caffe_random: bool = False) -> numpy.ndarray:
    """A new numpy array of ``shape`` filled as ``filler`` (a FillerParameter) says.
    ``caffe_random``: the random fillers draw from Caffe's stream (engine.caffe_rng)."""
    kind = filler.type
    gen = rng.generator()
    if kind in FILLER_TYPES and (int(numpy.prod(shape)) if shape else 1) == 0:
        return numpy.zeros(shape, dtype=dtype)  # nothing to draw (and a zero fan to divide by)
    check_filler(filler)
    if caffe_random and _draws_from_caffe_stream(filler, shape, dtype):
        return _caffe_filled(filler, shape, dtype)
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
    raise AssertionError(kind)  # check_filler refused it


def check_filler(filler) -> None:
    """What Caffe CHECKs of a filler before it draws (NetDefinitionError), without drawing:
    a layer that fills later (DummyData refills at every forward) refuses at setup."""
    if filler.type not in ALL_FILLER_TYPES:
        raise NetDefinitionError(f"unknown filler type '{filler.type}' (supported: {', '.join(ALL_FILLER_TYPES)})")
    if filler.type == "gaussian" and not filler.std >= 0:
        raise NetDefinitionError(f"gaussian filler: std is {filler.std}; it must be >= 0")
    if filler.type == "uniform" and not filler.min <= filler.max:
        raise NetDefinitionError(f"uniform filler: min {filler.min} is above max {filler.max}")


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


def fill(blob, filler, caffe_random: bool = True) -> None:
    """Fill ``blob.data`` in place (uniform-drawing fillers from Caffe's stream unless
    ``caffe_random`` is False: then from the engine's, which snapshots save)."""
    values = filled_array(filler, blob.shape, blob.dtype, caffe_random)
    blob.data[...] = backend.to_device(values, blob.device)
