"""AbsVal: ``y = |x|``, ``dx = sign(x) * dy`` (0 at x = 0). Not in place, as in Caffe."""
from __future__ import annotations

from ..layer import Layer, register


@register("AbsVal")
class AbsValLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    in_place_allowed = False

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        bottom[0].xp.absolute(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp, dx = bottom[0].xp, bottom[0].diff
            xp.sign(bottom[0].data, out=dx)
            dx *= top[0].diff
