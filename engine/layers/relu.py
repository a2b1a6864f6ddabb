"""ReLU: y = max(x, 0) + negative_slope * min(x, 0)."""
from ..layer import Layer, register


@register("ReLU")
class ReLULayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.negative_slope = float(self.param.relu_param.negative_slope)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x, y = bottom[0].data, top[0].data
        if self.negative_slope == 0:
            xp.maximum(x, 0, out=y)
        else:
            slope = x.dtype.type(self.negative_slope)
            xp.add(xp.maximum(x, 0), slope * xp.minimum(x, 0), out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        # In place, bottom data is y; y > 0 exactly where x > 0 (slope >= 0).
        x, dy, dx = bottom[0].data, top[0].diff, bottom[0].diff
        if self.negative_slope == 0:
            xp.multiply(dy, x > 0, out=dx)
        else:
            slope = x.dtype.type(self.negative_slope)
            xp.multiply(dy, xp.where(x > 0, x.dtype.type(1), slope), out=dx)
