"""PReLU: ``y = max(x, 0) + a_c * min(x, 0)`` with a learned slope per channel (axis 1),
or one slope for all (``channel_shared``); slopes filled by ``prelu_param.filler``,
default constant 0.25.

Backward as Caffe: ``da_c += sum dy * x`` over ``x <= 0``, ``dx = dy * (x > 0 ? 1 : a_c)``.
In place, the forward keeps a copy of the input (Caffe's ``bottom_memory_``) for the backward.
"""
from __future__ import annotations

from ..errors import ShapeError
from ..fillers import fill
from ..layer import Layer, register
from .bias import accumulate_into, filler_or


@register("PReLU")
class PReLULayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        if bottom[0].num_axes < 2:
            raise ShapeError(f"layer '{self.name}' (PReLU): bottom {self.bottom_name(0)} needs at least 2 axes, "
                             f"got shape {bottom[0].shape}")
        p = self.param.prelu_param
        self.channel_shared = bool(p.channel_shared)
        self.blobs = [self.new_param_blob(() if self.channel_shared else (bottom[0].shape[1],))]
        fill(self.blobs[0], filler_or(p.filler, 0.25))
        self.bottom_memory = None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) < 2:
            raise ShapeError(f"layer '{self.name}' (PReLU): bottom {self.bottom_name(0)} needs at least 2 axes, "
                             f"got shape {shape}")
        if not self.channel_shared and self.blobs[0].count() != shape[1]:
            raise ShapeError(f"layer '{self.name}' (PReLU): {self.blobs[0].count()} slopes for the "
                             f"{shape[1]} channels of {self.bottom_name(0)} {shape}")
        self.dims = (shape[0], shape[1], bottom[0].count(2))
        top[0].reshape_like(bottom[0])

    def _slope(self):
        """The slopes shaped to broadcast over (N, C, H*W)."""
        slope = self.blobs[0].data
        return slope.reshape(1, 1, 1) if self.channel_shared else slope.reshape(1, -1, 1)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = bottom[0].data.reshape(self.dims)
        if top[0] is bottom[0]:
            self.bottom_memory = x.copy()
        negative = xp.minimum(x, 0) * self._slope()
        y = top[0].data.reshape(self.dims)
        xp.maximum(x, 0, out=y)
        y += negative

    def backward(self, top, propagate_down, bottom):
        xp = bottom[0].xp
        x = self.bottom_memory if top[0] is bottom[0] else bottom[0].data.reshape(self.dims)
        top_diff = top[0].diff.reshape(self.dims)
        # the slope gradient first: in place, writing the bottom diff overwrites the top diff
        if self.param_propagate_down[0]:
            per_element = top_diff * xp.where(x <= 0, x, 0)
            summed = per_element.sum() if self.channel_shared else per_element.sum(axis=(0, 2))
            accumulate_into(self.blobs[0], summed, True)
        if propagate_down[0]:
            slope = xp.where(x > 0, x.dtype.type(1), self._slope())
            xp.multiply(top_diff, slope, out=bottom[0].diff.reshape(self.dims))
