"""BNLL (binomial normal log-likelihood, softplus): ``y = log(1 + e^x)``, computed as
Caffe without overflow (``x + log(1 + e^-x)`` for x > 0); ``dx = dy * e / (e + 1)``
with ``e = exp(min(x, 50))``. Computed in place (Caffe allows it), the forward keeps a
copy of the input for the backward."""
from __future__ import annotations

import numpy

from ..layer import Layer, register
from ..mathops import float_exp

BNLL_THRESHOLD = 50.0


@register("BNLL")
class BNLLLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    # Caffe allows this layer in place (issue 13: in place exactly where Caffe allows it);
    # the forward keeps the input for the backward, so in place is exact.

    bottom_memory = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp, x = bottom[0].xp, bottom[0].data
        self.bottom_memory = x.copy() if top[0] is bottom[0] else None
        # both of Caffe's branches at once: max(x, 0) + log(1. + exp(-|x|)), exp of the float
        # (expf), then double (the constant 1.), rounded once
        e = float_exp(xp, -xp.absolute(x))
        wide = xp.log(1.0 + e.astype(numpy.float64))
        wide += xp.maximum(x, 0)
        top[0].data[...] = wide

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp = bottom[0].xp
            x = self.bottom_memory if top[0] is bottom[0] else bottom[0].data
            e = float_exp(xp, xp.minimum(x, BNLL_THRESHOLD))
            # Caffe: dy * expval / (expval + 1.): a float product over a double sum, rounded once
            bottom[0].diff[...] = (top[0].diff * e).astype(numpy.float64) / (e.astype(numpy.float64) + 1.0)
