"""Threshold: ``y = 1 if x > threshold else 0``. Caffe has no backward for it
(NOT_IMPLEMENTED): a net that needs a gradient through it is refused at its backward."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("Threshold")
class ThresholdLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    # Caffe allows this layer in place (issue 13: in place exactly where Caffe allows it);
    # it has no backward, so in place cannot corrupt a gradient.

    def allow_force_backward(self, bottom_index: int) -> bool:
        return False

    def layer_setup(self, bottom, top):
        self.threshold = float(self.param.threshold_param.threshold)

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        mask = bottom[0].data > self.threshold
        xp.copyto(top[0].data, mask)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise NetDefinitionError(
                f"layer '{self.name}' (Threshold) has no backward (Caffe's is not implemented): a loss "
                f"below it cannot reach {self.bottom_name(0)}; give the layer propagate_down: false")
