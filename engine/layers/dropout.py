"""Dropout: TRAIN keeps a unit with probability 1-p and scales it by 1/(1-p); TEST is identity."""
from .. import backend, rng
from ..errors import NetDefinitionError
from ..layer import Layer, register

TRAIN = 0


@register("Dropout")
class DropoutLayer(Layer):
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        self.ratio = float(self.param.dropout_param.dropout_ratio)
        if not 0.0 <= self.ratio < 1.0:
            raise NetDefinitionError(
                f"layer '{self.name}': dropout_ratio must be in [0, 1), got {self.ratio}")
        self.scale = 1.0 / (1.0 - self.ratio)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        x, y = bottom[0].data, top[0].data
        if self.phase != TRAIN:
            if y is not x:
                y[...] = x
            return
        # Drawn on the CPU so CPU and GPU runs with one seed use one mask.
        keep = rng.generator().random(x.shape) >= self.ratio
        self.mask = backend.to_device(keep.astype(x.dtype) * x.dtype.type(self.scale), bottom[0].device)
        bottom[0].xp.multiply(x, self.mask, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.phase != TRAIN:
            if bottom[0].diff is not top[0].diff:
                bottom[0].diff[...] = top[0].diff
            return
        bottom[0].xp.multiply(top[0].diff, self.mask, out=bottom[0].diff)
