"""Power: ``y = (shift + scale * x) ^ power``, with Caffe's special cases.

When ``scale`` or ``power`` is 0 the output is the constant ``shift ^ power`` (1 for
power 0) and the gradient is 0. Backward otherwise follows Caffe's cases: power 1 gives
``dx = scale * dy``; power 2 ``dx = 2 * scale * (shift + scale * x) * dy``; shift 0
``dx = power * y / x * dy``; else ``dx = power * scale * y / (shift + scale * x) * dy``
Computed in place (Caffe allows it), the forward keeps a copy of the input for the
backward, as PReLU's ``bottom_memory_`` does, so the gradient stays right.
"""
from __future__ import annotations

import math

from ..layer import Layer, register
from ..mathops import float_pow


@register("Power")
class PowerLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    # Caffe allows this layer in place (issue 13: in place exactly where Caffe allows it);
    # the forward keeps the input when the backward needs it, so in place is exact.

    def layer_setup(self, bottom, top):
        p = self.param.power_param
        self.power, self.scale, self.shift = float(p.power), float(p.scale), float(p.shift)
        self.diff_scale = self.power * self.scale
        self.bottom_memory = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp, x, y = bottom[0].xp, bottom[0].data, top[0].data
        if self.diff_scale == 0:
            y.fill(1.0 if self.power == 0 else _real_power(self.shift, self.power))
            return
        needs_input = self.power != 1  # backward reads x (diff_scale != 0 here)
        self.bottom_memory = x.copy() if y is x and needs_input else None
        if y is not x:
            xp.copyto(y, x)
        if self.scale != 1:
            y *= self.scale
        if self.shift != 0:
            y += self.shift
        if self.power != 1:
            y[...] = float_pow(xp, y, self.power)  # caffe_powx: powf

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp, dx = bottom[0].xp, bottom[0].diff
        if self.diff_scale == 0:
            dx.fill(0)
            return
        x = self.bottom_memory if top[0] is bottom[0] and self.bottom_memory is not None else bottom[0].data
        if self.power == 1:
            factor = self.diff_scale
        elif self.power == 2:
            factor = x * (self.diff_scale * self.scale)
            if self.shift != 0:
                factor += self.diff_scale * self.shift
        elif self.shift == 0:
            factor = top[0].data / x
            factor *= self.power
        else:
            base = x * self.scale if self.scale != 1 else x.copy()
            if self.shift != 0:
                base += self.shift
            factor = top[0].data / base
            if self.diff_scale != 1:
                factor *= self.diff_scale
        # the factor first: in place, dx is the top diff it multiplies
        xp.multiply(top[0].diff, factor, out=dx)


def _real_power(base: float, exponent: float) -> float:
    """C's pow for reals: NaN (not a complex number) for a negative base and a fractional
    exponent, inf for 0 to a negative power."""
    try:
        return math.pow(base, exponent)
    except ValueError:
        return math.nan
    except ZeroDivisionError:
        return math.inf
