"""Swish: ``y = x * sigmoid(beta * x)`` (sigmoid as Caffe's, ``0.5 tanh(z/2) + 0.5``);
``dx = dy * (beta * y + s * (1 - beta * y))`` with ``s = sigmoid(beta * x)`` kept from
the forward, so it also holds in place."""
from __future__ import annotations

from ..layer import Layer, register


@register("Swish")
class SwishLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.beta = float(self.param.swish_param.beta)
        self.sigmoid_output = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp, x = bottom[0].xp, bottom[0].data
        s = self.sigmoid_output
        if s is None or s.shape != x.shape or s.dtype != x.dtype or type(s) is not type(x):
            s = self.sigmoid_output = xp.empty_like(x)
        xp.multiply(x, 0.5 * self.beta, out=s)
        xp.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        xp.multiply(x, s, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            s, beta_y = self.sigmoid_output, top[0].data * self.beta
            slope = beta_y + s * (1 - beta_y)
            bottom[0].xp.multiply(top[0].diff, slope, out=bottom[0].diff)
