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

    _zero = None
    _mask = None

    def _zero_like(self, x):
        """A scalar 0 of the data's type, made once (a typed scalar is cheaper to
        apply than a Python int on every call)."""
        zero = self._zero
        if zero is None or type(zero) is not x.dtype.type:
            zero = self._zero = x.dtype.type(0)
        return zero

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x, y = bottom[0].data, top[0].data
        if self.negative_slope == 0:
            xp.maximum(x, self._zero_like(x), out=y)
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
            mask = self._mask  # a reused boolean buffer: dx = dy * (x > 0), no temporaries
            if mask is None or mask.shape != x.shape or type(mask) is not type(x):
                mask = self._mask = xp.empty(x.shape, dtype=bool)
            xp.greater(x, self._zero_like(x), out=mask)
            xp.multiply(dy, mask, out=dx)
        else:
            slope = x.dtype.type(self.negative_slope)
            xp.multiply(dy, xp.where(x > 0, x.dtype.type(1), slope), out=dx)
