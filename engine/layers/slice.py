"""Slice: split the bottom along ``axis`` (or the legacy ``slice_dim``) into the tops.

``slice_point`` (one fewer than the tops, strictly increasing, inside the axis)
gives where each top starts; without it the axis is cut into equal parts, which
must divide it. Backward writes each top's diff back into its part of the bottom diff.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register


@register("Slice")
class SliceLayer(Layer):
    num_bottoms = 1
    num_tops = None
    in_place_allowed = False

    def layer_setup(self, bottom, top):
        p = self.param.slice_param
        if p.HasField("axis") and p.HasField("slice_dim"):
            raise NetDefinitionError(
                f"layer '{self.name}' (Slice): give either axis or slice_dim, not both")
        self.raw_axis = int(p.slice_dim) if p.HasField("slice_dim") else int(p.axis)
        self.slice_points = [int(v) for v in p.slice_point]
        if self.slice_points and len(self.slice_points) != len(top) - 1:
            raise NetDefinitionError(
                f"layer '{self.name}' (Slice): {len(top)} tops need {len(top) - 1} slice_point "
                f"value(s), got {len(self.slice_points)}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        try:
            self.axis = bottom[0].canonical_axis(self.raw_axis)
        except IndexError:
            raise ShapeError(f"layer '{self.name}' (Slice): axis {self.raw_axis} out of range for "
                             f"bottom shape {shape}") from None
        length = shape[self.axis]
        if self.slice_points:
            bounds = [0] + self.slice_points + [length]
            if any(b <= a for a, b in zip(bounds, bounds[1:])):
                raise ShapeError(
                    f"layer '{self.name}' (Slice): slice_point {self.slice_points} must increase "
                    f"strictly and stay inside axis {self.axis} of size {length}")
        else:
            if length % len(top):
                raise ShapeError(
                    f"layer '{self.name}' (Slice): axis {self.axis} of size {length} cannot be cut "
                    f"into {len(top)} equal parts (give slice_point)")
            part = length // len(top)
            bounds = [part * k for k in range(len(top) + 1)]
        self.parts = [(slice(None),) * self.axis + (slice(a, b),) for a, b in zip(bounds, bounds[1:])]
        for blob, (a, b) in zip(top, zip(bounds, bounds[1:])):
            blob.reshape(shape[:self.axis] + (b - a,) + shape[self.axis + 1:])

    def forward(self, bottom, top):
        for blob, where in zip(top, self.parts):
            blob.data[...] = bottom[0].data[where]

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        diff = bottom[0].diff
        for blob, where in zip(top, self.parts):
            diff[where] = blob.diff
