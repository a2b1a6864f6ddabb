"""Sigmoid: y = 1 / (1 + exp(-x)), computed as Caffe does, 0.5 * tanh(0.5 * x) + 0.5 in
double (no overflow for large |x|), rounded once; dx = dy * y * (1. - y): Caffe's float
product dy * y times the double 1. - y, rounded once."""
import numpy

from ..layer import Layer, register
from ..mathops import caffe_sigmoid


@register("Sigmoid")
class SigmoidLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    _scratch = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        caffe_sigmoid(bottom[0].xp, bottom[0].data, top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp, y, dx = bottom[0].xp, top[0].data, bottom[0].diff
            one_minus_y = self._scratch
            if one_minus_y is None or one_minus_y.shape != y.shape or type(one_minus_y) is not type(y) \
                    or one_minus_y.dtype != y.dtype:
                one_minus_y = self._scratch = xp.empty_like(y)
            if y.dtype == numpy.float32:
                dy_times_y = one_minus_y  # the scratch, used for the float product first
                xp.multiply(top[0].diff, y, out=dy_times_y)
                dx[...] = dy_times_y.astype(numpy.float64) * (1.0 - y.astype(numpy.float64))
                return
            xp.subtract(1, y, out=one_minus_y)
            xp.multiply(top[0].diff, y, out=dx)  # dy * y * (1 - y), no temporaries
            dx *= one_minus_y
