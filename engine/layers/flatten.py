"""Flatten: merge the axes ``axis .. end_axis`` into one (a copy of the data, same order)."""
from __future__ import annotations

from ..errors import ShapeError
from ..layer import Layer, register


def flattened_shape(shape: tuple[int, ...], axis: int, end_axis: int) -> tuple[int, ...]:
    """Caffe's Flatten output shape; ``axis``/``end_axis`` may be negative."""
    n = len(shape)
    start, end = (axis + n if axis < 0 else axis), (end_axis + n if end_axis < 0 else end_axis)
    if not (0 <= start < max(n, 1) and 0 <= end < max(n, 1)) or end < start:
        raise ShapeError(f"flatten axis {axis} .. end_axis {end_axis} out of range for shape {shape}")
    merged = 1
    for dim in shape[start:end + 1]:
        merged *= dim
    return tuple(shape[:start]) + (merged,) + tuple(shape[end + 1:])


@register("Flatten")
class FlattenLayer(Layer):
    in_place_allowed = False
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.flatten_param
        self.axis, self.end_axis = int(p.axis), int(p.end_axis)

    def reshape(self, bottom, top):
        try:
            top[0].reshape(flattened_shape(bottom[0].shape, self.axis, self.end_axis))
        except ShapeError as exc:
            raise ShapeError(f"layer '{self.name}' (Flatten): {exc}") from None

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff.reshape(bottom[0].shape)
