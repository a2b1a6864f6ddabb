"""Softmax over ``axis`` (default 1), numerically stable."""
import numpy

from ..backend import get_array_module
from ..layer import Layer, register
from ..mathops import float_exp


def softmax_into(x, axis: int, out) -> None:
    """out = exp(x - max) / sum(exp(x - max)) along ``axis`` (out may be x)."""
    xp = numpy if type(x) is numpy.ndarray else get_array_module(x)
    xp.subtract(x, x.max(axis=axis, keepdims=True), out=out)
    out[...] = float_exp(xp, out)  # caffe_exp: glibc's expf
    out /= out.sum(axis=axis, keepdims=True)


@register("Softmax")
class SoftmaxLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.axis = bottom[0].canonical_axis(self.param.softmax_param.axis)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        softmax_into(bottom[0].data, self.axis, top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y, dy = top[0].data, top[0].diff
            dot = (dy * y).sum(axis=self.axis, keepdims=True)
            bottom[0].diff[...] = (dy - dot) * y
