"""Clip: ``y = max(min, min(x, max))``; the gradient passes where ``min <= x <= max``
(both ends included, as Caffe's clip_layer). Computed in place (Caffe allows it), the
forward keeps which inputs were inside, so the gradient stays right."""
from __future__ import annotations

from ..layer import Layer, register


@register("Clip")
class ClipLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    # Caffe allows this layer in place (issue 13: in place exactly where Caffe allows it);
    # the forward keeps which inputs were inside, so in place is exact.

    def layer_setup(self, bottom, top):
        p = self.param.clip_param
        self.low, self.high = float(p.min), float(p.max)

    inside_memory = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def _inside(self, x):
        return (x >= self.low) & (x <= self.high)

    def forward(self, bottom, top):
        xp, y = bottom[0].xp, top[0].data
        self.inside_memory = self._inside(bottom[0].data) if top[0] is bottom[0] else None
        xp.minimum(bottom[0].data, self.high, out=y)
        xp.maximum(y, self.low, out=y)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            inside = self.inside_memory if top[0] is bottom[0] else self._inside(bottom[0].data)
            bottom[0].xp.multiply(top[0].diff, inside, out=bottom[0].diff)
