"""Reshape: a new shape for the same values; ``0`` copies a bottom dimension, ``-1`` is inferred.

``axis`` and ``num_axes`` choose the range of bottom axes that ``shape``
replaces (Caffe's ReshapeParameter).
"""
from __future__ import annotations

from ..errors import ShapeError
from ..layer import Layer, register


def reshaped(bottom_shape: tuple[int, ...], dims: list[int], axis: int = 0,
             num_axes: int = -1) -> tuple[int, ...]:
    """Caffe's Reshape output shape for ``bottom_shape``."""
    n = len(bottom_shape)
    start = axis if axis >= 0 else n + axis + 1
    if not 0 <= start <= n:
        raise ShapeError(f"axis {axis} out of range for a {n}-D bottom of shape {bottom_shape}")
    if num_axes < -1:
        raise ShapeError(f"num_axes must be >= 0, or -1 for all, got {num_axes}")
    end = n if num_axes == -1 else start + num_axes
    if end > n:
        raise ShapeError(f"axis {axis} + num_axes {num_axes} is out of range for shape {bottom_shape}")
    if sum(1 for d in dims if d == -1) > 1:
        raise ShapeError(f"shape {dims} has more than one -1 dimension")
    if any(d < -1 for d in dims):
        raise ShapeError(f"shape {dims} has a negative dimension other than -1")
    shape = list(bottom_shape[:start]) + list(dims) + list(bottom_shape[end:])
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= n:
                raise ShapeError(f"shape {dims} has a 0 at position {i}, but bottom shape "
                                 f"{bottom_shape} has no axis {start + i} to copy")
            shape[start + i] = bottom_shape[start + i]
    count = 1
    for d in bottom_shape:
        count *= d
    if -1 in dims:
        known = 1
        for j, d in enumerate(shape):
            if j != start + dims.index(-1):
                known *= d
        if known == 0 or count % known:
            raise ShapeError(f"bottom count {count} (shape {bottom_shape}) is not divisible by the "
                             f"product of the given dimensions ({known}) of shape {dims}")
        shape[start + dims.index(-1)] = count // known
    total = 1
    for d in shape:
        total *= d
    if total != count:
        raise ShapeError(f"shape {tuple(shape)} has {total} elements but the bottom {bottom_shape} "
                         f"has {count}")
    return tuple(shape)


@register("Reshape")
class ReshapeLayer(Layer):
    in_place_allowed = False
    num_bottoms = 1
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.reshape_param
        self.dims = [int(d) for d in p.shape.dim]
        self.axis, self.num_axes = int(p.axis), int(p.num_axes)

    def reshape(self, bottom, top):
        try:
            top[0].reshape(reshaped(bottom[0].shape, self.dims, self.axis, self.num_axes))
        except ShapeError as exc:
            raise ShapeError(f"layer '{self.name}' (Reshape): {exc}") from None

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff.reshape(bottom[0].shape)
