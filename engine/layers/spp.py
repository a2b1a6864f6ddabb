"""SPP: spatial pyramid pooling (He et al.), as Caffe's SPPLayer (src/caffe/layers/spp_layer.cpp).

Level ``l`` (0 .. pyramid_height-1) pools the N x C x H x W bottom into about
``2^l x 2^l`` bins with an engine Pooling layer of Caffe's geometry, per axis:
``kernel = ceil(H / 2^l)``, ``pad = (kernel * 2^l - H + 1) / 2`` (integer division),
``stride = kernel``. Each level's output is flattened to N x (C*Ho*Wo) and the levels
are concatenated along axis 1, level 0 first. With ``pyramid_height: 1`` the top is
the single Pooling's own N x C x Ho x Wo output (Caffe skips Flatten/Concat there).
Backward: each level's pooling backward, summed in level order (Caffe's Split).

As in Caffe the inner Pooling layers are built from a fresh LayerParameter, whose
phase is TRAIN: ``pool: STOCHASTIC`` samples even in a TEST net. A level whose pad is
not smaller than its kernel (an input smaller than ``2^l`` pixels) is refused, as
Caffe's PoolingLayer CHECK-fails on it.
"""
from __future__ import annotations

import math

from ..blob import Blob
from ..errors import EngineError, NetDefinitionError, ShapeError
from ..layer import Layer, register
from ..proto import caffe_pb2
from .pooling import PoolingLayer

_POOL_METHODS = {
    caffe_pb2.SPPParameter.MAX: caffe_pb2.PoolingParameter.MAX,
    caffe_pb2.SPPParameter.AVE: caffe_pb2.PoolingParameter.AVE,
    caffe_pb2.SPPParameter.STOCHASTIC: caffe_pb2.PoolingParameter.STOCHASTIC,
}


def pyramid_geometry(level: int, size: int) -> tuple[int, int]:
    """(kernel, pad) of pyramid ``level`` along an axis of ``size`` pixels (Caffe's GetPoolingParam)."""
    bins = 2 ** level
    kernel = math.ceil(size / bins)
    remainder = kernel * bins - size
    return kernel, (remainder + 1) // 2


@register("SPP")
class SPPLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False
    #: one engine Pooling layer per pyramid level, and its output blob
    levels: list[PoolingLayer]
    outputs: list[Blob]
    input_shape: tuple[int, ...] | None

    def layer_setup(self, bottom, top):
        p = self.param.spp_param
        self.pyramid_height = int(p.pyramid_height)
        if self.pyramid_height <= 0:
            raise NetDefinitionError(f"layer '{self.name}' (SPP): spp_param.pyramid_height must be >= 1, "
                                     f"got {self.pyramid_height}")
        if p.pool not in _POOL_METHODS:
            raise NetDefinitionError(f"layer '{self.name}' (SPP): unknown pooling method {p.pool}")
        self.method = _POOL_METHODS[p.pool]
        self.input_shape = None  # the bottom shape the levels were built for
        self.levels, self.outputs = [], []

    def _pooling_param(self, level: int, height: int, width: int) -> caffe_pb2.LayerParameter:
        kernel_h, pad_h = pyramid_geometry(level, height)
        kernel_w, pad_w = pyramid_geometry(level, width)
        param = caffe_pb2.LayerParameter(name=f"{self.name}/level{level}", type="Pooling")
        pooling = param.pooling_param
        pooling.pool = self.method
        pooling.kernel_h, pooling.kernel_w = kernel_h, kernel_w
        pooling.pad_h, pooling.pad_w = pad_h, pad_w
        pooling.stride_h, pooling.stride_w = kernel_h, kernel_w
        return param

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4:
            raise ShapeError(f"layer '{self.name}' (SPP): input must have 4 axes (N x C x H x W), got shape {shape}")
        if shape[2] <= 0 or shape[3] <= 0:
            raise ShapeError(f"layer '{self.name}' (SPP): input height and width must be > 0, got shape {shape}")
        if shape != self.input_shape:
            self._build_levels(bottom[0])
        if self.pyramid_height == 1:
            self.levels[0].reshape(bottom, top)
            return
        for level, out in zip(self.levels, self.outputs):
            level.reshape(bottom, [out])
        self.widths = [out.count(1) for out in self.outputs]
        top[0].reshape((shape[0], sum(self.widths)))

    def _build_levels(self, bottom: Blob) -> None:
        """One engine Pooling layer (and its output blob) per level, for this input size."""
        height, width = bottom.shape[2:]
        self.levels, self.outputs = [], []
        for level in range(self.pyramid_height):
            pooling = PoolingLayer(self._pooling_param(level, height, width), caffe_pb2.TRAIN)
            pooling.dtype, pooling.device = bottom.dtype, bottom.device
            output = Blob((), dtype=bottom.dtype, device=bottom.device)
            try:
                if self.method == caffe_pb2.PoolingParameter.STOCHASTIC and \
                        (pooling.param.pooling_param.pad_h or pooling.param.pooling_param.pad_w):
                    raise NetDefinitionError("it needs padding, which Caffe's Pooling has only for MAX and AVE")
                pooling.setup([bottom], [output])
            except EngineError as exc:
                reason = str(exc).split("(Pooling): ", 1)[-1]
                raise type(exc)(f"layer '{self.name}' (SPP): pyramid level {level} of the {height}x{width} "
                                f"input cannot be pooled: {reason}") from None
            self.levels.append(pooling)
            self.outputs.append(output)
        self.input_shape = bottom.shape

    def _follow_device(self, bottom: Blob) -> None:
        """Move the level outputs to the bottom's device (after a net's ``to``)."""
        for level, out in zip(self.levels, self.outputs):
            level.device = bottom.device
            out.to(bottom.device)

    def forward(self, bottom, top):
        if self.pyramid_height == 1:
            self.levels[0].forward(bottom, top)
            return
        self._follow_device(bottom[0])
        rows = top[0].data
        start = 0
        for level, out, width in zip(self.levels, self.outputs, self.widths):
            level.forward(bottom, [out])
            rows[:, start:start + width] = out.data.reshape(out.shape[0], width)
            start += width

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.pyramid_height == 1:
            self.levels[0].backward(top, propagate_down, bottom)
            return
        self._follow_device(bottom[0])
        source = bottom[0]
        scratch = Blob((), dtype=source.dtype, device=source.device)
        scratch.share_data(source)
        total = source.diff
        start = 0
        for index, (level, out, width) in enumerate(zip(self.levels, self.outputs, self.widths)):
            out.diff = top[0].diff[:, start:start + width].reshape(out.shape)
            start += width
            level.backward([out], [True], [scratch if index else source])
            if index:
                total += scratch.diff
