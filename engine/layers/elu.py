"""ELU: ``y = max(x, 0) + alpha * (exp(min(x, 0)) - 1)``;
``dx = dy`` where x > 0, else ``dy * (y + alpha)`` (Caffe's form)."""
from __future__ import annotations

from ..layer import Layer, register
from ..mathops import float_exp


@register("ELU")
class ELULayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.alpha = float(self.param.elu_param.alpha)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp, x = bottom[0].xp, bottom[0].data
        negative_part = float_exp(xp, xp.minimum(x, 0)) if self.alpha else None  # expf
        xp.maximum(x, 0, out=top[0].data)
        if negative_part is not None:
            negative_part -= 1
            negative_part *= self.alpha
            top[0].data[...] += negative_part

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp, x, y = bottom[0].xp, bottom[0].data, top[0].data
        # in place, x holds y: y > 0 exactly where x > 0
        slope = xp.where(x > 0, x.dtype.type(1), y + self.alpha)
        xp.multiply(top[0].diff, slope, out=bottom[0].diff)
