"""Crop: cut bottom[0] to the shape of bottom[1] from ``crop_param.axis`` on (FCN's score crop).

Axes before ``axis`` (default 2) keep bottom[0]'s sizes; every axis from ``axis`` on
takes bottom[1]'s size, starting at its ``offset``: none given means 0, one value is
used for every cropped axis, otherwise one value per cropped axis (Caffe's rules).
Backward copies the top diff into the cropped window of bottom[0]'s diff (zero
elsewhere); bottom[1] only gives the shape and gets no gradient.
"""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register


@register("Crop")
class CropLayer(Layer):
    num_bottoms = 2
    num_tops = 1
    in_place_allowed = False

    def allow_force_backward(self, bottom_index: int) -> bool:
        return bottom_index == 0

    def layer_setup(self, bottom, top):
        p = self.param.crop_param
        self.raw_axis = int(p.axis)
        self.raw_offsets = [int(v) for v in p.offset]

    def reshape(self, bottom, top):
        source, reference = bottom[0].shape, bottom[1].shape
        if len(source) != len(reference):
            raise ShapeError(f"layer '{self.name}' (Crop): bottoms {self.bottom_name(0)} {source} and "
                             f"{self.bottom_name(1)} {reference} must have the same number of axes")
        try:
            axis = bottom[0].canonical_axis(self.raw_axis)
        except IndexError:
            raise ShapeError(f"layer '{self.name}' (Crop): axis {self.raw_axis} out of range for "
                             f"bottom shape {source}") from None
        cropped = len(source) - axis
        if len(self.raw_offsets) not in (0, 1, cropped):
            raise NetDefinitionError(
                f"layer '{self.name}' (Crop): give no offset, one, or one per cropped axis "
                f"({cropped}, axes {axis}..{len(source) - 1}); got {len(self.raw_offsets)}")
        offsets = [0] * len(source)
        shape = list(source)
        for d in range(axis, len(source)):
            offset = self.raw_offsets[0] if len(self.raw_offsets) == 1 else (
                self.raw_offsets[d - axis] if self.raw_offsets else 0)
            if offset < 0 or offset + reference[d] > source[d]:
                raise ShapeError(
                    f"layer '{self.name}' (Crop): axis {d}: a crop of {reference[d]} at offset {offset} "
                    f"does not fit in {source[d]} (bottom shapes {source} and {reference})")
            offsets[d], shape[d] = offset, reference[d]
        self.window = tuple(slice(o, o + s) for o, s in zip(offsets, shape))
        top[0].reshape(tuple(shape))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[self.window]

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        diff = bottom[0].diff
        diff.fill(0)
        diff[self.window] = top[0].diff
