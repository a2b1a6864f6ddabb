"""Bias: ``top = bottom + b``, with ``b`` broadcast over the axes before ``axis`` and after its own.

``b`` is a learned parameter of shape ``bottom.shape[axis : axis + num_axes]``
(filler default constant 0), or the second bottom (then ``num_axes`` is
ignored and its shape must match ``bottom`` from ``axis`` on).
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..fillers import fill
from ..layer import Layer, register
from ..proto import caffe_pb2


def param_shape(layer: Layer, bottom_shape: tuple[int, ...], axis: int, num_axes: int) -> tuple[int, ...]:
    """The shape of a learned scale/bias: ``bottom_shape[axis : axis + num_axes]`` (-1: to the end)."""
    n = len(bottom_shape)
    start = axis + n if axis < 0 else axis
    if not 0 <= start <= n or num_axes < -1 or (num_axes != -1 and start + num_axes > n):
        raise ShapeError(f"layer '{layer.name}' ({layer.type_name}): axis {axis} with num_axes {num_axes} "
                         f"is out of range for bottom shape {bottom_shape}")
    return tuple(bottom_shape[start:] if num_axes == -1 else bottom_shape[start:start + num_axes])


def broadcast_dims(layer: Layer, bottom_shape: tuple[int, ...], operand_shape: tuple[int, ...],
                   axis: int) -> tuple[int, int, int]:
    """(outer, dim, inner) so that bottom = outer x dim x inner with the operand on ``dim``."""
    n = len(bottom_shape)
    start = 0 if not operand_shape else (axis + n if axis < 0 else axis)
    if not 0 <= start <= n or tuple(bottom_shape[start:start + len(operand_shape)]) != tuple(operand_shape):
        raise ShapeError(f"layer '{layer.name}' ({layer.type_name}): operand shape {operand_shape} does not "
                         f"match bottom shape {bottom_shape} at axis {axis}")
    outer = 1
    for d in bottom_shape[:start]:
        outer *= d
    dim = 1
    for d in operand_shape:
        dim *= d
    inner = 1
    for d in bottom_shape[start + len(operand_shape):]:
        inner *= d
    return outer, dim, inner


def filler_or(filler, value: float):
    """``filler`` when given, else constant ``value`` (Caffe's Scale/Bias defaults)."""
    if filler.ByteSize():
        return filler
    return caffe_pb2.FillerParameter(type="constant", value=value)


def accumulate_into(blob, values, as_param: bool) -> None:
    """Param diffs accumulate; a bottom's diff is overwritten."""
    target = blob.diff.reshape(values.shape)
    if as_param and not blob.diff_is_clear:
        target += values
    else:
        target[...] = values
    if as_param:
        blob.diff_is_clear = False


@register("Bias")
class BiasLayer(Layer):
    num_bottoms = None
    num_tops = 1

    def layer_setup(self, bottom, top):
        if len(bottom) not in (1, 2):
            raise NetDefinitionError(f"layer '{self.name}' (Bias): takes one or two bottoms, got {len(bottom)}")
        p = self.param.bias_param
        self.axis = int(p.axis)
        if len(bottom) == 1:
            shape = param_shape(self, bottom[0].shape, self.axis, int(p.num_axes))
            self.blobs = [self.new_param_blob(shape)]
            fill(self.blobs[0], filler_or(p.filler, 0.0))

    def _bias(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        self.dims = broadcast_dims(self, bottom[0].shape, self._bias(bottom).shape, self.axis)
        if top[0] is not bottom[0]:
            top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        bias = self._bias(bottom).data.reshape(1, self.dims[1], 1)
        x = bottom[0].data.reshape(self.dims)
        bottom[0].xp.add(x, bias, out=top[0].data.reshape(self.dims))

    def backward(self, top, propagate_down, bottom):
        top_diff = top[0].diff.reshape(self.dims)
        bias_is_param = len(bottom) == 1
        if (bias_is_param and self.param_propagate_down[0]) or (not bias_is_param and propagate_down[1]):
            accumulate_into(self._bias(bottom), top_diff.sum(axis=(0, 2)), bias_is_param)
        if propagate_down[0] and top[0] is not bottom[0]:
            bottom[0].diff[...] = top[0].diff
