"""TanH: y = tanh(x) (Caffe's float tanh, glibc's tanhf: see engine.mathops.float_tanh);
dx = dy * (1 - y^2) in float."""
from ..layer import Layer, register
from ..mathops import float_tanh


@register("TanH")
class TanHLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    _scratch = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        top[0].data[...] = float_tanh(bottom[0].xp, bottom[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp, y = bottom[0].xp, top[0].data
            slope = self._scratch
            if slope is None or slope.shape != y.shape or type(slope) is not type(y) or slope.dtype != y.dtype:
                slope = self._scratch = xp.empty_like(y)
            xp.multiply(y, y, out=slope)
            xp.subtract(1, slope, out=slope)
            xp.multiply(top[0].diff, slope, out=bottom[0].diff)  # dy * (1 - y^2), no temporaries
