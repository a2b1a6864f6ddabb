"""TanH: y = tanh(x); dx = dy * (1 - y^2)."""
from ..layer import Layer, register


@register("TanH")
class TanHLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        bottom[0].xp.tanh(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            bottom[0].diff[...] = top[0].diff * (1 - y * y)
