"""Silence: takes any number of bottoms and produces nothing (it marks blobs as used, so
they are not net outputs). A forced backward zeroes the bottoms' diffs."""
from __future__ import annotations

from ..errors import NetDefinitionError
from ..layer import Layer, register


@register("Silence")
class SilenceLayer(Layer):
    num_tops = 0
    min_tops = 0

    def layer_setup(self, bottom, top):
        if not bottom:
            raise NetDefinitionError(f"layer '{self.name}' (Silence) needs at least one bottom blob")

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        for blob, down in zip(bottom, propagate_down):
            if down:
                blob.diff_to_overwrite().fill(0)
