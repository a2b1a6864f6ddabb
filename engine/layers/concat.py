"""Concat: join the bottoms along ``axis`` (or the legacy ``concat_dim``); backward slices the diff."""
from __future__ import annotations

from ..errors import NetDefinitionError, ShapeError
from ..layer import Layer, register


@register("Concat")
class ConcatLayer(Layer):
    in_place_allowed = False
    num_bottoms = None
    num_tops = 1

    def layer_setup(self, bottom, top):
        p = self.param.concat_param
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise NetDefinitionError(
                f"layer '{self.name}' (Concat): give either axis or concat_dim, not both")
        if not bottom:
            raise NetDefinitionError(f"layer '{self.name}' (Concat): needs at least one bottom")
        self.raw_axis = int(p.concat_dim) if p.HasField("concat_dim") else int(p.axis)

    def reshape(self, bottom, top):
        first = bottom[0].shape
        try:
            self.axis = bottom[0].canonical_axis(self.raw_axis)
        except IndexError:
            raise ShapeError(f"layer '{self.name}' (Concat): axis {self.raw_axis} out of range for "
                             f"bottom shape {first}") from None
        for blob in bottom[1:]:
            shape = blob.shape
            if len(shape) != len(first) or any(
                    a != b for k, (a, b) in enumerate(zip(shape, first)) if k != self.axis):
                raise ShapeError(f"layer '{self.name}' (Concat): bottom shapes {first} and {shape} "
                                 f"differ outside the concat axis {self.axis}")
        self.sizes = [blob.shape[self.axis] for blob in bottom]
        top[0].reshape(first[:self.axis] + (sum(self.sizes),) + first[self.axis + 1:])

    def _slices(self):
        start = 0
        for size in self.sizes:
            yield (slice(None),) * self.axis + (slice(start, start + size),)
            start += size

    def forward(self, bottom, top):
        for blob, where in zip(bottom, self._slices()):
            top[0].data[where] = blob.data

    def backward(self, top, propagate_down, bottom):
        for blob, where, down in zip(bottom, self._slices(), propagate_down):
            if down:
                blob.diff[...] = top[0].diff[where]
