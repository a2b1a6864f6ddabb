"""Weight fillers with Caffe's names and defaults: constant, uniform, gaussian, xavier, msra, bilinear,
positive_unitball."""
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


class CaffeStream:
    """Caffe's own random stream (``Caffe::rng_stream``): boost::mt19937 seeded with the
    seed as an unsigned int, read through ``boost::uniform_real<Dtype>`` as
    ``caffe_rng_uniform`` does. The uniform, xavier and positive_unitball fillers draw
    from it, so with the solver's ``random_seed`` they give Caffe's initial weights bit
    for bit (gaussian and msra do not: boost's normal_distribution is not reproduced)."""

    def __init__(self, seed: int):
        key = [int(seed) & 0xFFFFFFFF]
        for i in range(1, 624):  # the Mersenne Twister's init_genrand
            previous = key[-1]
            key.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
        self.bits = numpy.random.MT19937()
        self.bits.state = {"bit_generator": "MT19937",
                           "state": {"key": numpy.array(key, dtype=numpy.uint32), "pos": 624}}

    def uniform(self, count: int, low, high, dtype=numpy.float32) -> numpy.ndarray:
        """``count`` values in [low, high] in ``dtype`` (Caffe: the upper bound is
        nextafter(high), and boost redraws a value that reaches it)."""
        kind = numpy.dtype(dtype).type
        if not (numpy.isfinite(kind(low)) and numpy.isfinite(kind(high)) and low <= high):
            raise NetDefinitionError(f"uniform filler: the range [{low}, {high}] is not finite and ordered")
        low, high = kind(low), numpy.nextafter(kind(high), kind(numpy.inf))
        span, divisor = high - low, kind(4294967295.0) + kind(1)  # boost: float(max - min) + 1
        out = numpy.empty(count, dtype=kind)
        filled = 0
        while filled < count:
            raw = self.bits.random_raw(count - filled).astype(kind)
            with numpy.errstate(over="ignore", invalid="ignore"):
                values = raw / divisor * span + low
            kept = values[values < high]
            out[filled:filled + kept.size] = kept
            filled += kept.size
        return out


_stream: list = [None, None]  # (the engine generator it was seeded after, its CaffeStream)


def caffe_stream() -> CaffeStream:
    """The Caffe stream, reseeded whenever the engine's stream is (``rng.set_seed``):
    from the same seed (a random one when the engine's stream was not seeded)."""
    gen = rng.generator()
    if _stream[0] is not gen:
        seed_seq = getattr(gen.bit_generator, "seed_seq", None)
        entropy = getattr(seed_seq, "entropy", None)
        seed = entropy if isinstance(entropy, int) else int(gen.integers(2 ** 32))
        _stream[:] = [gen, CaffeStream(seed)]
    return _stream[1]


def _caffe_uniform(filler, shape: tuple[int, ...], dtype) -> numpy.ndarray:
    """The uniform-drawing fillers from the Caffe stream, in Dtype arithmetic as Caffe."""
    kind, dtype_type = filler.type, numpy.dtype(dtype).type
    count = int(numpy.prod(shape)) if shape else 1
    if kind == "uniform":
        return caffe_stream().uniform(count, filler.min, filler.max, dtype).reshape(shape)
    if kind == "xavier":  # scale = sqrt(Dtype(3) / n), n in Dtype
        scale = dtype_type(math.sqrt(dtype_type(3) / dtype_type(_fan(shape, filler.variance_norm))))
        return caffe_stream().uniform(count, -scale, scale, dtype).reshape(shape)
    values = caffe_stream().uniform(count, 0, 1, dtype)  # positive_unitball
    rows = values.reshape(shape[0] if shape else 1, -1)
    rows /= numpy.add.accumulate(rows, axis=1, dtype=dtype_type)[:, -1:]  # Caffe's sequential sum
    return values.reshape(shape)


#: The fillers that draw from the Caffe stream when ``fill`` is asked to.
CAFFE_STREAM_FILLERS = ("uniform", "xavier", "positive_unitball")


def filled_array(filler, shape: tuple[int, ...], dtype=numpy.float32,
                 caffe_random: bool = False) -> numpy.ndarray:
    """A new numpy array of ``shape`` filled as ``filler`` (a FillerParameter) says.
    ``caffe_random``: uniform, xavier and positive_unitball draw from Caffe's stream."""
    kind = filler.type
    gen = rng.generator()
    if kind in FILLER_TYPES and (int(numpy.prod(shape)) if shape else 1) == 0:
        return numpy.zeros(shape, dtype=dtype)  # nothing to draw (and a zero fan to divide by)
    if kind == "gaussian" and not filler.std >= 0:
        raise NetDefinitionError(f"gaussian filler: std is {filler.std}; it must be >= 0")
    if caffe_random and kind in CAFFE_STREAM_FILLERS and (int(numpy.prod(shape)) if shape else 1) > 0:
        if kind == "uniform" and not filler.min <= filler.max:
            raise NetDefinitionError(f"uniform filler: min {filler.min} is above max {filler.max}")
        return _caffe_uniform(filler, shape, dtype)
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


def fill(blob, filler, caffe_random: bool = True) -> None:
    """Fill ``blob.data`` in place (uniform-drawing fillers from Caffe's stream unless
    ``caffe_random`` is False: then from the engine's, which snapshots save)."""
    values = filled_array(filler, blob.shape, blob.dtype, caffe_random)
    blob.data[...] = backend.to_device(values, blob.device)
