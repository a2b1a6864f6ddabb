"""Exp: ``y = base ^ (shift + scale * x)`` (``base`` -1 means e), computed as Caffe:
``outer * exp(inner * x)`` with ``inner = scale * ln(base)``, ``outer = base ^ shift``;
``dx = inner * y * dy``."""
from __future__ import annotations

import math

from ..errors import NetDefinitionError
from ..layer import Layer, register
from ..mathops import float_exp


def log_of_base(layer: Layer, base: float) -> float:
    """ln(base), exactly 1 for Caffe's ``base: -1`` (e); NetDefinitionError for base <= 0."""
    if base == -1:
        return 1.0
    if not base > 0:
        raise NetDefinitionError(
            f"layer '{layer.name}' ({layer.type_name}): base must be strictly positive (or -1 for e), got {base:g}")
    return math.log(base)


@register("Exp")
class ExpLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.exp_param
        base, scale, shift = float(p.base), float(p.scale), float(p.shift)
        self.inner_scale = log_of_base(self, base) * scale
        if shift == 0:
            self.outer_scale = 1.0
        else:
            self.outer_scale = math.exp(shift) if base == -1 else base ** shift

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp, y = bottom[0].xp, top[0].data
        if self.inner_scale == 1:
            y[...] = float_exp(xp, bottom[0].data)  # caffe_exp: glibc's expf
        else:
            xp.multiply(bottom[0].data, self.inner_scale, out=y)
            y[...] = float_exp(xp, y)
        if self.outer_scale != 1:
            y *= self.outer_scale

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            dx = bottom[0].diff
            bottom[0].xp.multiply(top[0].data, top[0].diff, out=dx)
            if self.inner_scale != 1:
                dx *= self.inner_scale
