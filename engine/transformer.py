"""Caffe's DataTransformer (``transform_param``): crop, mirror, mean and scale.

For every image, in Caffe's order: ``mirror`` draws first (a coin flip, in
TRAIN *and* TEST, as Caffe does), then the crop offsets (random in TRAIN,
centred in TEST); the output is ``(pixel - mean) * scale`` where the mean is
the ``mean_file`` image at the same (cropped) position or the channel's
``mean_value``; without a mean it is ``pixel * scale``. All in float32, one
rounding per operation, as Caffe's ``Dtype`` loop.

Random numbers: like Caffe, the transformer owns its random stream, and only
when it needs one (``mirror``, or ``crop_size`` in TRAIN). Its seed is one value
of Caffe's stream (:func:`engine.rng.caffe_stream`, ``caffe_rng_rand()``), taken
at setup as Caffe's ``InitRand`` takes it, so the fillers of later layers stay in
step with Caffe's (prefetching layers call ``InitRand`` a second time and take one
more value for their thread, as Caffe's do: ``PrefetchingDataLayer``). The stream
is Caffe's ``Caffe::RNG`` seeded with that value (a boost mt19937,
:class:`engine.caffe_rng.CaffeStream`) and ``Rand(n)`` is its raw 32-bit output
``% n``, so the flips and crops are the ones Caffe picks. Per image, in Caffe's
order (src/caffe/data_transformer.cpp, for a Datum and for a decoded image alike):
``Rand(2)`` for the mirror (only when ``mirror`` is set; odd = flip), then
``Rand(H - crop + 1)`` for the row offset and ``Rand(W - crop + 1)`` for the
column offset (only with ``crop_size`` in TRAIN). A batch takes those raw outputs
in one block, image after image.
"""
from __future__ import annotations

import numpy

from . import rng
from .caffe_rng import CaffeStream, saved_stream_state
from .errors import DataError, NetDefinitionError

TRAIN = 0


class DataTransformer:
    """The transform of one data layer (built from its ``transform_param``)."""

    def __init__(self, param, phase: int, where: str, mean_file_path: str | None = None):
        self.where = where
        self.phase = phase
        self.scale = numpy.float32(param.scale)
        self.mirror = bool(param.mirror)
        self.crop_size = int(param.crop_size)
        self.force_color = bool(getattr(param, "force_color", False))
        self.force_gray = bool(getattr(param, "force_gray", False))
        if self.force_color and self.force_gray:
            raise NetDefinitionError(f"{where}: transform_param cannot set both force_color and force_gray")
        has_mean_file = param.HasField("mean_file")
        if has_mean_file and len(param.mean_value):
            raise NetDefinitionError(f"{where}: transform_param cannot specify mean_file and mean_value "
                                     f"at the same time")
        self.mean_image: numpy.ndarray | None = None
        if has_mean_file:
            from .datatools import read_mean_file
            self.mean_image = read_mean_file(mean_file_path or param.mean_file, where)
        self.mean_values = numpy.asarray(list(param.mean_value), dtype=numpy.float32)
        self.needs_random = self.mirror or (phase == TRAIN and self.crop_size > 0)
        self.generator: CaffeStream | None = None
        self.init_rand()

    def init_rand(self) -> None:
        """Caffe's ``InitRand``: when the transform is random, a ``Caffe::RNG`` of its own
        seeded with one value of Caffe's stream (prefetching layers call it twice at setup)."""
        if self.needs_random:
            self.generator = CaffeStream(rng.caffe_stream().rand())

    # -- what the layer asks -------------------------------------------------
    @property
    def decode_mode(self) -> str:
        """How encoded images are decoded: "color", "gray" or "native"."""
        return "color" if self.force_color else "gray" if self.force_gray else "native"

    def output_shape(self, channels: int, height: int, width: int) -> tuple[int, int, int]:
        """Caffe's InferBlobShape for one C x H x W input (checks crop_size and the mean)."""
        if self.crop_size:
            if height < self.crop_size or width < self.crop_size:
                raise DataError(f"{self.where}: crop_size {self.crop_size} is larger than the images "
                                f"({height} x {width})")
            height = width = self.crop_size
        return channels, height, width

    def check_input(self, shape: tuple[int, int, int]) -> None:
        """The mean fits images of this C x H x W shape (else DataError, as Caffe's CHECKs)."""
        self.output_shape(*shape)
        if self.mean_image is not None and self.mean_image.shape != tuple(shape):
            raise DataError(f"{self.where}: the mean_file image has shape {self.mean_image.shape} but the "
                            f"data has {tuple(shape)} (C x H x W)")
        if len(self.mean_values) not in (0, 1, shape[0]):
            raise DataError(f"{self.where}: specify either 1 mean_value or as many as channels "
                            f"({shape[0]}), got {len(self.mean_values)}")

    # -- random stream, for snapshots -----------------------------------------
    def random_state(self) -> dict | None:
        """The stream's position (JSON-ready), None when the transform draws nothing."""
        return None if self.generator is None else self.generator.state()

    def checked_random_state(self, state) -> dict | None:
        """A saved position this transformer can go to, or None to stay where it is: when it
        draws nothing, when nothing was saved, or for a numpy stream's state (saved before the
        draws were Caffe's). DataError for anything else that is not a stream position."""
        return None if self.generator is None else saved_stream_state(state, self.where, "transform_param")

    def set_random_state(self, state: dict | None) -> None:
        """Go to a saved position (see :meth:`checked_random_state`; None leaves the stream)."""
        state = self.checked_random_state(state)
        if state is not None and self.generator is not None:
            self.generator.set_state(state)

    # -- the transform ----------------------------------------------------------
    def draws(self, count: int, height: int, width: int) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """Per image: mirror flag, row offset, column offset, drawn as Caffe draws them:
        per image ``Rand(2)`` (with ``mirror``), then ``Rand(H - crop + 1)`` and
        ``Rand(W - crop + 1)`` (with ``crop_size`` in TRAIN), image after image."""
        random_crop = bool(self.crop_size) and self.phase == TRAIN
        per_image = int(self.mirror) + 2 * int(random_crop)
        gen = self.generator
        raw = gen.raws(count * per_image).reshape(count, per_image) if gen is not None and per_image \
            else numpy.zeros((count, 0), numpy.uint64)
        flips = (raw[:, 0] % 2).astype(bool) if self.mirror else numpy.zeros(count, bool)
        if random_crop:
            first = int(self.mirror)
            rows = (raw[:, first] % (height - self.crop_size + 1)).astype(numpy.int64)
            cols = (raw[:, first + 1] % (width - self.crop_size + 1)).astype(numpy.int64)
        elif self.crop_size:
            rows = numpy.full(count, (height - self.crop_size) // 2)
            cols = numpy.full(count, (width - self.crop_size) // 2)
        else:
            rows = cols = numpy.zeros(count, numpy.int64)
        return flips, rows, cols

    def transform(self, batch: numpy.ndarray) -> numpy.ndarray:
        """N x C x H x W pixels (uint8 or float32) -> N x C x h x w float32, transformed."""
        count, channels, height, width = batch.shape
        self.check_input((channels, height, width))
        flips, rows, cols = self.draws(count, height, width)
        out_c, out_h, out_w = self.output_shape(channels, height, width)
        values = batch.astype(numpy.float32)
        mean = self._mean_planes(channels, height, width)
        if mean is not None:
            values -= mean
        if self.scale != 1:
            values *= self.scale
        if not self.crop_size and not flips.any():
            return values
        out = numpy.empty((count, out_c, out_h, out_w), numpy.float32)
        for i in range(count):
            piece = values[i, :, rows[i]:rows[i] + out_h, cols[i]:cols[i] + out_w]
            out[i] = piece[:, :, ::-1] if flips[i] else piece
        return out

    def _mean_planes(self, channels: int, height: int, width: int) -> numpy.ndarray | None:
        """The mean to subtract, broadcastable to C x H x W (None when there is none)."""
        if self.mean_image is not None:
            return self.mean_image
        if len(self.mean_values):
            values = self.mean_values if len(self.mean_values) == channels \
                else numpy.repeat(self.mean_values, channels)
            return values.reshape(channels, 1, 1)
        return None
