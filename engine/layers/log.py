"""Log: ``y = log_base(shift + scale * x)`` (``base`` -1 means e);
``dx = dy * scale / (ln(base) * (shift + scale * x))``. Computed in place (Caffe allows
it), the forward keeps a copy of the input for the backward."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register
from ..mathops import float_log
from .exp import log_of_base


@register("Log")
class LogLayer(Layer):
    num_bottoms = 1
    num_tops = 1
    # Caffe allows this layer in place (issue 13: in place exactly where Caffe allows it);
    # the forward keeps the input for the backward, so in place is exact.

    def layer_setup(self, bottom, top):
        p = self.param.log_param
        log_base = log_of_base(self, float(p.base))
        if log_base == 0:
            raise NetDefinitionError(f"layer '{self.name}' (Log): base 1 has no logarithm (1/ln(base) is infinite)")
        self.base_scale = 1.0 / log_base
        self.input_scale, self.input_shift = float(p.scale), float(p.shift)
        self.backward_num_scale = self.input_scale / log_base
        self.bottom_memory = None

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def _shifted_input(self, xp, x, out) -> None:
        """``out = shift + scale * x``."""
        if out is not x:
            xp.copyto(out, x)
        if self.input_scale != 1:
            out *= self.input_scale
        if self.input_shift != 0:
            out += self.input_shift

    def forward(self, bottom, top):
        xp, y = bottom[0].xp, top[0].data
        self.bottom_memory = bottom[0].data.copy() if top[0] is bottom[0] else None
        self._shifted_input(xp, bottom[0].data, y)
        y[...] = float_log(xp, y)  # caffe_log: logf
        if self.base_scale != 1:
            y *= self.base_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        xp = bottom[0].xp
        x = self.bottom_memory if top[0] is bottom[0] else bottom[0].data
        factor = xp.empty_like(x)  # in place, the bottom diff is the top diff: keep it until the end
        self._shifted_input(xp, x, factor)
        xp.reciprocal(factor, out=factor)
        if self.backward_num_scale != 1:
            factor *= self.backward_num_scale
        xp.multiply(top[0].diff, factor, out=bottom[0].diff)
