"""Reduction: SUM, ASUM (sum of |x|), SUMSQ (sum of x^2) or MEAN over all axes from
``axis`` on (default 0: everything, a scalar top), times ``coeff``. The top keeps the
axes before ``axis``. Backward: ``coeff * dy`` (MEAN: divided by the count),
``coeff * sign(x) * dy``, ``2 * coeff * x * dy``."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register

SUM, ASUM, SUMSQ, MEAN = 1, 2, 3, 4  # ReductionParameter.ReductionOp


@register("Reduction")
class ReductionLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.operation = int(self.param.reduction_param.operation)
        if self.operation not in (SUM, ASUM, SUMSQ, MEAN):
            raise NetDefinitionError(f"layer '{self.name}' (Reduction): unknown operation {self.operation}")

    def reshape(self, bottom, top):
        p = self.param.reduction_param
        self.axis = bottom[0].canonical_axis(int(p.axis)) if bottom[0].num_axes else 0
        self.num, self.dim = bottom[0].count(0, self.axis), bottom[0].count(self.axis)
        top[0].reshape(bottom[0].shape[:self.axis])
        self.coeff = float(p.coeff) / (self.dim if self.operation == MEAN else 1)

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = bottom[0].data.reshape(self.num, self.dim)
        if self.operation == ASUM:
            x = xp.absolute(x)
        elif self.operation == SUMSQ:
            x = x * x
        y = top[0].data.reshape(self.num)
        x.sum(axis=1, out=y)
        if self.coeff != 1:
            y *= self.coeff

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        scale = top[0].diff.reshape(self.num, 1) * self.coeff
        dx = bottom[0].diff_to_overwrite().reshape(self.num, self.dim)
        if self.operation in (SUM, MEAN):
            dx[...] = scale
        elif self.operation == ASUM:
            xp.sign(bottom[0].data.reshape(self.num, self.dim), out=dx)
            dx *= scale
        else:
            xp.multiply(bottom[0].data.reshape(self.num, self.dim), 2 * scale, out=dx)
