"""Scale: ``top = bottom * s (+ b)``, ``s`` broadcast like Bias's operand.

``s`` is a learned parameter of shape ``bottom.shape[axis : axis + num_axes]``
(filler default constant 1), or the second bottom. ``bias_term`` adds a learned
bias of the same shape (``bias_filler``, default constant 0), as Caffe's Scale
does with an inner Bias layer. In place, the bottom data is kept for backward.
"""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..fillers import fill
from ..layer import Layer, register
from .bias import accumulate_into, broadcast_dims, filler_or, param_shape


@register("Scale")
class ScaleLayer(Layer):
    num_bottoms = None
    num_tops = 1

    def layer_setup(self, bottom, top):
        if len(bottom) not in (1, 2):
            raise NetDefinitionError(f"layer '{self.name}' (Scale): takes one or two bottoms, got {len(bottom)}")
        p = self.param.scale_param
        self.axis = int(p.axis)
        self.blobs = []
        if len(bottom) == 1:
            shape = param_shape(self, bottom[0].shape, self.axis, int(p.num_axes))
            self.blobs.append(self.new_param_blob(shape))
            fill(self.blobs[0], filler_or(p.filler, 1.0))
        self.bias_index = None
        if p.bias_term:
            self.bias_index = len(self.blobs)
            self.blobs.append(self.new_param_blob(self._scale(bottom).shape))
            fill(self.blobs[-1], filler_or(p.bias_filler, 0.0))
        self._saved = None

    def _scale(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        self.dims = broadcast_dims(self, bottom[0].shape, self._scale(bottom).shape, self.axis)
        if top[0] is not bottom[0]:
            top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xp = bottom[0].xp
        x = bottom[0].data.reshape(self.dims)
        if top[0] is bottom[0]:
            self._saved = x.copy()  # in place: backward needs the input
        out = top[0].data.reshape(self.dims)
        xp.multiply(x, self._scale(bottom).data.reshape(1, self.dims[1], 1), out=out)
        if self.bias_index is not None:
            out += self.blobs[self.bias_index].data.reshape(1, self.dims[1], 1)

    def backward(self, top, propagate_down, bottom):
        top_diff = top[0].diff.reshape(self.dims)
        scale_is_param = len(bottom) == 1
        if self.bias_index is not None and self.param_propagate_down[self.bias_index]:
            accumulate_into(self.blobs[self.bias_index], top_diff.sum(axis=(0, 2)), True)
        if (scale_is_param and self.param_propagate_down[0]) or (not scale_is_param and propagate_down[1]):
            x = self._saved if top[0] is bottom[0] else bottom[0].data.reshape(self.dims)
            accumulate_into(self._scale(bottom), (top_diff * x).sum(axis=(0, 2)), scale_is_param)
        if propagate_down[0]:
            scale = self._scale(bottom).data.reshape(1, self.dims[1], 1)
            bottom[0].diff.reshape(self.dims)[...] = top_diff * scale
