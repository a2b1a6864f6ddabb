"""Sigmoid: y = 1 / (1 + exp(-x)), computed as Caffe does, 0.5 * tanh(0.5 * x) + 0.5
(no overflow for large |x|); dx = dy * y * (1 - y)."""
from ..layer import Layer, register


@register("Sigmoid")
class SigmoidLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    _scratch = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        y = top[0].data
        half = y.dtype.type(0.5)
        xp.multiply(bottom[0].data, half, out=y)
        xp.tanh(y, out=y)
        y *= half
        y += half

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp, y, dx = bottom[0].xp, top[0].data, bottom[0].diff
            one_minus_y = self._scratch
            if one_minus_y is None or one_minus_y.shape != y.shape or type(one_minus_y) is not type(y) \
                    or one_minus_y.dtype != y.dtype:
                one_minus_y = self._scratch = xp.empty_like(y)
            xp.subtract(1, y, out=one_minus_y)
            xp.multiply(top[0].diff, y, out=dx)  # dy * y * (1 - y), no temporaries
            dx *= one_minus_y
